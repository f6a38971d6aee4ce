"""Training runs one after the other, shown as they go: the one driver behind `rnnrun train`,
`rnnrun resume` and the Python API's `train()` and `Run.resume()`.

    train_all(configs, store)       train each resolved config in a new run folder → their summaries
    resume_run(run, epochs)         continue a stopped run from its checkpoint → its summary
    print_results(summaries, ...)   what `rnnrun` prints afterwards: the results table or one JSON document

What is shown while training is asked for: `progress` (rich's bar, which renders in Jupyter too),
`verbose` (each run's first line and model table) and `notes` (a diverged or interrupted run said in
one line on stderr). The API shows nothing unless asked; the command line shows all three unless
--quiet or --json. Ctrl-C (and, with `signals`, SIGTERM and SIGHUP) stops a run: its files are kept
and `Stopped`, a KeyboardInterrupt, goes up to the caller (the command line exits 130, 143 or 129).
"""
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .output import console, print_json
from .signals import STOP_SIGNALS, Stop, on_stop


def train_all(configs, store, checkpoint_every=1, progress=False, verbose=False, notes=False, signals=STOP_SIGNALS):
    """Train every config in a new run folder of `store`; their summaries, in order."""
    from .experiment import execute

    def job(config):
        return lambda **hooks: execute(config, store, checkpoint_every=checkpoint_every, **hooks)
    with on_stop(signals):
        return _drive([(config, job(config)) for config in configs], progress, verbose, notes)


def resume_run(run, epochs=None, progress=False, verbose=False, notes=False, signals=STOP_SIGNALS):
    """Continue `run` (a run folder) from its checkpoint, shown as a training run is; its summary."""
    from .experiment import continue_run, prepare_resume
    config, checkpoint = prepare_resume(run, epochs)  # refusals come before any output
    if verbose:
        console().print(f"[dim]resuming run {run.id} after epoch {checkpoint['epoch']} of {config['epochs']}[/]")
    with on_stop(signals):
        return _drive([(config, lambda **hooks: continue_run(run, config, checkpoint, **hooks))],
                      progress, verbose, notes)[0]


def _drive(jobs, progress, verbose, notes):
    from .report import model_table
    out, err = console(), console(stderr=True)
    summaries = []
    for config, train in jobs:
        bar = Progress(TextColumn("[bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("epoch {task.fields[epoch]}"), TextColumn("loss {task.fields[loss]}"),
                            TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), console=err,
                            disable=not progress, transient=False)
        task, current = None, None

        def on_start(run, dataset, model):
            nonlocal task, current
            current = run
            if verbose:
                out.print(f"[dim]run {run.id}: {config['cell']} on {config['data']} "
                          f"({dataset.kind}, {dataset.problem}; {len(dataset.splits()['train'])} training sequences)[/]")
                out.print(model_table(model, title=f"Model: {config['cell']} on {config['data']}"))
            task = bar.add_task("train", total=config["epochs"], name=f"{config['cell']}/{config['data']}",
                                     epoch=0, loss="–", speed="")

        def on_batch(trainer, batch, batches, loss):
            # the batch's loss stays unread: on a GPU, reading it would make every batch wait for the
            # device; the epoch's losses are read together and shown at the epoch's end
            Stop.check()
            bar.update(task, speed=f"batch {batch}/{batches}")

        def on_epoch(trainer, metrics):
            Stop.check()
            bar.update(task, completed=metrics["epoch"], epoch=metrics["epoch"],
                            loss=f"{metrics['train_loss']:.4g} (train) {metrics['val_loss']:.4g} (val)",
                            speed=f"{metrics['seconds']:.1f}s/epoch")

        with bar:
            try:
                summary = train(on_start=on_start, on_epoch=on_epoch, on_batch=on_batch)
            except KeyboardInterrupt:
                bar.stop()
                if not notes:
                    raise
                if current is None:
                    err.print("[yellow]interrupted[/] before training started")
                else:
                    err.print(f"[yellow]interrupted:[/] the run's config, metrics so far, last weights and "
                              f"checkpoint are kept in {current.path}; continue it with "
                              f"{current.resume_command()}", soft_wrap=True)
                raise
        summaries.append(summary)
        if notes and summary["status"] == "diverged":
            err.print(f"[red]diverged:[/] {summary['message']} (run kept in {summary['run_dir']})", soft_wrap=True)
    return summaries


JSON_KEYS = ("cell", "data", "params", "epochs", "train_loss", "val_loss", "val_metric", "test_metric", "test_loss",
             "metric", "baseline", "baseline_name", "seconds", "run_dir", "run_id", "status", "grad_norm_mean",
             "grad_norm_max", "clip_rate", "seed", "forecast", "baselines", "best_baseline")


def json_docs(summaries):
    """What --json prints of each run: the keys above and every test_* result."""
    return [{k: s.get(k) for k in JSON_KEYS} | {k: v for k, v in s.items() if k.startswith("test_")}
            for s in summaries]


def json_doc(summaries):
    """The --json document of trained runs: one object, or a list of them."""
    docs = json_docs(summaries)
    return docs[0] if len(docs) == 1 else docs


def print_results(summaries, as_json=False, quiet=False, configs=None, seeds=None):
    """What `rnnrun` prints after training: one JSON document, or the results table (and each run's
    forecast and folder); `configs`, the runs' configs, name the data as the tables do. With `seeds`
    (the configs differ by seed within each cell), the results per cell over the seeds and their ensemble."""
    from .config import data_label
    from .report import forecast_lines, results_table
    if not summaries:
        return
    out = console()
    if seeds:
        _show_seeds(summaries, configs, as_json, quiet)
    elif as_json:
        print_json(json_doc(summaries))  # a diverged run's NaN losses: null
    else:
        data = data_label(configs[0]) if configs else summaries[0]["data"]
        out.print(results_table(summaries, title=f"Results on {data}"))
        for s in summaries:
            if s.get("forecast"):
                out.print(forecast_lines(s))
        if not quiet:
            for s in summaries:
                out.print(f"[dim]{s['cell']}: {s['run_dir']}[/]")


def _show_seeds(summaries, configs, as_json, quiet):
    """--seeds: {"runs", "groups"} as JSON, or the runs' table then one row per cell over its seeds."""
    from .config import data_label
    from .report import seeds_table
    from .seeds import seed_groups
    groups = seed_groups(summaries, configs)
    if as_json:
        print_json({"runs": json_docs(summaries), "groups": groups})
        return
    out = console()
    if not quiet:
        out.print(results_table_of(summaries, configs))
    out.print(seeds_table(groups, title=f"Over seeds on {data_label(configs[0])}"))
    for g in groups:
        if g.get("ensemble_note"):
            out.print(f"[dim]{g['cell']}: no ensemble: {g['ensemble_note']}[/]", soft_wrap=True)


def results_table_of(summaries, configs):
    from .config import data_label
    from .report import results_table
    shown = [{**s, "cell": f"{s.get('cell')} seed {c['seed']}"} for s, c in zip(summaries, configs)]
    return results_table(shown, title=f"Results on {data_label(configs[0])}, every seed")
