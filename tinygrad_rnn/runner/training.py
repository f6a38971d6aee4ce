"""The default command's driver (and `rnnrun resume`'s): train each resolved config in turn with a
progress bar, then print the results table (or one JSON document). Ctrl-C, SIGTERM and SIGHUP keep
the run's files, say where they are and how to resume, and exit 130, 143 or 129."""
import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .output import Fail, console, print_json
from .signals import Stop, exit_code, on_stop


def train_all(configs, store, as_json, quiet, checkpoint_every=1):
    """Train every config in a new run folder of `store`."""
    from .experiment import execute

    def job(config):
        return lambda **hooks: execute(config, store, checkpoint_every=checkpoint_every, **hooks)
    with on_stop():
        return _drive([(config, job(config)) for config in configs], as_json, quiet)


def resume_run(run, epochs, as_json, quiet):
    """Continue `run` from its checkpoint, shown as a training run is."""
    from .experiment import continue_run, prepare_resume
    config, checkpoint = prepare_resume(run, epochs)  # refusals come before any output
    if not as_json and not quiet:
        console().print(f"[dim]resuming run {run.id} after epoch {checkpoint['epoch']} of {config['epochs']}[/]")
    with on_stop():
        return _drive([(config, lambda **hooks: continue_run(run, config, checkpoint, **hooks))], as_json, quiet)


def _drive(jobs, as_json, quiet):
    from .config import data_label
    from .report import forecast_lines, model_table, results_table
    out, err = console(), console(stderr=True)
    show = not as_json and not quiet
    summaries, configs = [], [config for config, _ in jobs]
    for config, train in jobs:
        progress = Progress(TextColumn("[bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("epoch {task.fields[epoch]}"), TextColumn("loss {task.fields[loss]}"),
                            TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), console=err,
                            disable=as_json or quiet, transient=False)
        task, current = None, None

        def on_start(run, dataset, model):
            nonlocal task, current
            current = run
            if show:
                out.print(f"[dim]run {run.id}: {config['cell']} on {config['data']} "
                          f"({dataset.kind}, {dataset.problem}; {len(dataset.splits()['train'])} training sequences)[/]")
                out.print(model_table(model, title=f"Model: {config['cell']} on {config['data']}"))
            task = progress.add_task("train", total=config["epochs"], name=f"{config['cell']}/{config['data']}",
                                     epoch=0, loss="–", speed="")

        def on_batch(trainer, batch, batches, loss):
            # the batch's loss stays unread: on a GPU, reading it would make every batch wait for the
            # device; the epoch's losses are read together and shown at the epoch's end
            Stop.check()
            progress.update(task, speed=f"batch {batch}/{batches}")

        def on_epoch(trainer, metrics):
            Stop.check()
            progress.update(task, completed=metrics["epoch"], epoch=metrics["epoch"],
                            loss=f"{metrics['train_loss']:.4g} (train) {metrics['val_loss']:.4g} (val)",
                            speed=f"{metrics['seconds']:.1f}s/epoch")

        with progress:
            try:
                summary = train(on_start=on_start, on_epoch=on_epoch, on_batch=on_batch)
            except KeyboardInterrupt as e:
                progress.stop()
                if current is None:
                    err.print("[yellow]interrupted[/] before training started")
                else:
                    err.print(f"[yellow]interrupted:[/] the run's config, metrics so far, last weights and "
                              f"checkpoint are kept in {current.path}; continue it with "
                              f"{current.resume_command()}", soft_wrap=True)
                sys.exit(exit_code(e))
        summaries.append(summary)
        if summary["status"] == "diverged":
            err.print(f"[red]diverged:[/] {summary['message']} (run kept in {summary['run_dir']})", soft_wrap=True)
    if as_json:
        keys = ("cell", "data", "params", "epochs", "train_loss", "val_loss", "val_metric", "test_metric",
                "test_loss", "metric", "baseline", "baseline_name", "seconds", "run_dir", "run_id", "status",
                "grad_norm_mean", "grad_norm_max", "clip_rate", "seed", "forecast")
        docs = [{k: s.get(k) for k in keys} | {k: v for k, v in s.items() if k.startswith("test_")} for s in summaries]
        print_json(docs[0] if len(docs) == 1 else docs)  # a diverged run's NaN losses: null
    else:
        out.print(results_table(summaries, title=f"Results on {data_label(configs[0])}"))
        for s in summaries:
            if s.get("forecast"):
                out.print(forecast_lines(s))
        if not quiet:
            for s in summaries:
                out.print(f"[dim]{s['cell']}: {s['run_dir']}[/]")
    if any(s["status"] != "finished" for s in summaries):
        raise Fail()
