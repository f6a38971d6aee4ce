"""`rnnrun sweep`: many ordinary runs over a grid (or a random sample) of settings and seeds, in one table.

    rnnrun sweep --cell rnn,lstm,gru --data adding:T=100 --lr 1e-3,3e-3 --hidden 32,64 --seeds 3
    rnnrun sweep --cell gru --data sine --lr 1e-4:1e-2 --hidden 16:128 --random 20 --workers 4
    rnnrun sweep ... --scheduler tcp://10.0.0.5:8786        trials as tasks on a Dask cluster
    rnnrun sweep --resume 20261123-142501-adding             run only what the sweep still lacks
    rnnrun runs --sweep 20261123-142501-adding               its trials, one per line
"""
import contextlib
import os
import shlex
import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ...errors import ConfigError
from .. import sweeper as sweeps
from .. import options as shared
from ..app import check_runs_dir, config_from_flags
from ..config import MAX_EPOCHS, parse_spec, spec_label
from ..output import Fail, console, print_json
from ..report import fmt
from ..signals import exit_code, on_stop

# the flags that define a sweep; --resume takes all of them from the sweep's sweep.toml
DEFINING = ("cell", "data", "optimizer", "lr", "hidden", "layers", "batch_size", "reg", "epochs", "bidirectional",
            "seeds", "samples", "sample_seed")


@click.command("sweep")
@click.option("--cell", multiple=True, metavar="NAME[,NAME...]", help="Cells to compare: rnn,lstm,gru.")
@click.option("--data", multiple=True, metavar="SPEC[,SPEC...]", help="Dataset(s), with options: adding:T=100.")
@click.option("--optimizer", multiple=True, metavar="SPEC[,SPEC...]", help="Optimiser(s): adam,sgd:momentum=0.9.")
@click.option("--lr", multiple=True, metavar="LIST|RANGE",
              help="Learning rates: 1e-3,3e-3, or 1e-4:1e-2 with --random.")
@click.option("--hidden", multiple=True, metavar="LIST|RANGE", help="Hidden sizes: 32,64, or 16:128 with --random.")
@click.option("--layers", multiple=True, metavar="LIST|RANGE", help="Stacked layers: 1,2.")
@click.option("--batch-size", multiple=True, metavar="LIST|RANGE", help="Batch sizes: 16,32.")
@click.option("--reg", multiple=True, metavar="NAME[:k=v,...]", help="Regulariser for every trial (repeatable).")
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), help="Training epochs (default: the dataset's).")
@click.option("--bidirectional/--unidirectional", default=None, help="Run each layer in both directions.")
@click.option("--seeds", type=click.IntRange(1, 10_000), metavar="N",
              help="Run seeds 0..N-1 of every configuration (default 1).")
@click.option("--random", "samples", type=click.IntRange(1, 100_000), metavar="K",
              help="Sample K configurations (ranges LOW:HIGH[:log|linear], lists as choices) instead of a grid.")
@click.option("--sample-seed", type=shared.SEED, metavar="S", help="Seed of the --random draws (default 0).")
@click.option("--workers", type=shared.WORKERS, metavar="N",
              help="Local worker processes (default: the number of cores); 1 runs the trials here, one by one.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run the trials on this Dask scheduler instead.")
@click.option("--resume", "resume_id", metavar="SWEEP_ID", help="Run only the trials this sweep still lacks.")
@shared.plugin(help="Load plugins from a .py file or module, here and in every worker (repeatable).")
@shared.log(help="Log every trial to NAME too (tensorboard, mlflow: the sweep is a parent run), repeatable.")
@shared.runs_dir(help="Where runs are stored (default ./runs); sweeps go in its sweeps/.")
@shared.as_json()
@shared.quiet(help="No progress lines.")
@click.pass_context
def sweep_cmd(ctx, resume_id, workers, scheduler, plugins, log, runs_dir, as_json, quiet, **defining):
    """Run a grid (or --random sample) of configurations over several seeds; one table of mean ± std.

    \b
    Each trial is an ordinary run, stored under RUNS/sweeps/SWEEP_ID/ beside the sweep's
    sweep.toml (its definition) and summary.json (results, written as they arrive).
    A failed or diverged trial is recorded and the others go on; Ctrl-C keeps the finished
    ones, and --resume SWEEP_ID runs the rest.
    """
    if workers is not None and scheduler:
        raise ConfigError("--workers is for the local pool; with --scheduler the Dask cluster's workers run the trials")
    sweeps.check_scheduler(scheduler)  # a malformed address is a usage error, before anything connects
    root = check_runs_dir(shared.runs_dir_of(ctx, runs_dir))
    group_plugins = shared.plugins_of(ctx, ())
    sweeps.mark_loaded(group_plugins)  # `rnnrun --plugin X sweep` loaded them already
    sweeps.load_plugins_once(plugins)
    plugins = [sweeps.plugin_ref(p) for p in group_plugins + list(plugins)]
    if resume_id:
        given = [k for k in DEFINING if defining[k] not in (None, ())]
        if given:
            names = ", ".join("--random" if k == "samples" else sweeps.flag(k) for k in given)
            raise ConfigError(f"--resume takes the sweep's definition from its sweep.toml; drop {names}")
        sweep, trials, plugins = _resumed(root, resume_id, plugins, log)
        create = None
    else:
        sweep, (trials, create) = None, _new(root, plugins, defining, log)
    client = sweeps.connect(scheduler) if scheduler else None
    with client or contextlib.nullcontext():
        sweep = sweep or create()  # only now: a usage error or an unreachable scheduler leaves no folder
        doc = _run(sweep, trials, plugins, workers or os.cpu_count() or 1, client, scheduler, as_json or quiet)
    if as_json:
        print_json(doc)
    else:
        _print(doc)
    if any(t["status"] != "finished" for t in doc["trials"]):
        raise Fail()


def _new(root, plugins, d, log=()):
    """The trials of a new sweep, and a function that makes its folder and writes its sweep.toml."""
    axes = {axis: sweeps.parse_axis(axis, d[axis]) for axis in sweeps.AXES if d[axis]}
    if "cell" not in axes or "data" not in axes:
        raise ConfigError("a sweep needs --cell and --data, e.g. rnnrun sweep --cell rnn,gru --data adding:T=100")
    base = config_from_flags(None, data=None, optimizer=None, reg=d["reg"], epochs=d["epochs"],
                             bidirectional=d["bidirectional"], log=log)
    seeds = list(range(d["seeds"] or 1))
    sample_seed = d["sample_seed"] or 0
    trials = sweeps.plan(base, sweeps.configurations(axes, d["samples"], sample_seed), seeds)
    from ..experiment import check_all
    check_all([t["config"] for t in trials])  # a bad option fails the sweep now (exit 2), not each trial

    def create():
        sweep = sweeps.create_sweep(root, "_".join(dict.fromkeys(parse_spec(spec)[0] for spec in axes["data"])))
        # for people reading sweep.toml; when called as a library (tests) argv is someone else's
        command = ("rnnrun " + " ".join(shlex.quote(a) for a in sys.argv[1:])
                   if os.path.basename(sys.argv[0]) == "rnnrun" else "")
        sweep.write_definition(sweeps.definition(sweep, axes, base, seeds, d["samples"], sample_seed, plugins,
                                                 trials, command))
        return sweep
    return trials, create


def _resumed(root, resume_id, plugins, log=()):
    sweep = sweeps.find_sweep(root, resume_id)
    definition = sweep.definition()
    plugins = list(dict.fromkeys(definition.get("plugins", []) + plugins))
    sweeps.load_plugins_once(plugins)
    trials = definition.get("trials", [])
    if log:  # the loggers of the trials still to run (a trial's key leaves its loggers out)
        loggers = config_from_flags(None, log=log)["log"]
        trials = [{**t, "config": {**t["config"], "log": loggers}} for t in trials]
    from ..experiment import check_all, resolve
    # unknown names and options fail here (exit 2), not in every trial
    check_all([resolve(dict(trial["config"])) for trial in trials])
    return sweep, trials, plugins


def _run(sweep, trials, plugins, workers, client, scheduler, silent):
    err = console(stderr=True)
    progress = Progress(TextColumn("[bold]sweep {task.fields[id]}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, disable=silent, transient=True)

    def on_result(trial, result):
        progress.advance(task)
        if silent:
            return
        where = f"{sweeps.label(trial['settings'])} seed {trial['seed']}"
        if result["status"] == "finished":
            err.print(f"[green]done[/] {where}: test {result.get('metric')} {fmt(result.get('test_metric'))} "
                      f"({fmt(result.get('seconds'), 3)}s)", soft_wrap=True)
        else:
            err.print(f"[red]{result['status']}[/] {where}: {result.get('message', '')}", soft_wrap=True)

    done = len(sweep.done().keys() & {t["key"] for t in trials})
    if not silent:
        where = f"on {scheduler}" if scheduler else "here" if workers == 1 else f"on {workers} workers"
        err.print(f"[dim]sweep {sweep.id}: {len(trials)} trials, {len(trials) - done} to run {where} "
                  f"({sweep.path})[/]", soft_wrap=True)
    with progress:
        task = progress.add_task("sweep", total=len(trials), completed=done, id=sweep.id)
        try:
            with on_stop():  # SIGTERM and SIGHUP stop a sweep as Ctrl-C does
                return sweeps.run_sweep(sweep, trials, workers=workers, client=client, plugins=plugins,
                                        on_result=on_result)
        except KeyboardInterrupt as e:
            progress.stop()
            err.print(f"[yellow]interrupted:[/] finished trials are kept in {sweep.path}; "
                      f"run the rest with rnnrun sweep --resume {sweep.id}", soft_wrap=True)
            sys.exit(exit_code(e))


def _print(doc):
    out = console()
    out.print(sweep_table(doc))
    broken = [t for t in doc["trials"] if t["status"] not in ("finished", "pending")]
    if broken:
        table = Table(title="Trials that did not finish", title_justify="left")
        for column in ("configuration", "seed", "status", "message", "run"):
            table.add_column(column)
        for t in broken:
            table.add_row(sweeps.label(t["settings"]), str(t["seed"]), t["status"], t.get("message", ""),
                          t.get("run_id", "–"))
        out.print(table)
    counts = ", ".join(f"{doc[s]} {s}" for s in ("finished", "diverged", "failed", "interrupted", "pending") if doc[s])
    out.print(f"[dim]sweep {doc['id']}: {counts}; trials in {doc['path']} (rnnrun runs --sweep {doc['id']})[/]",
              soft_wrap=True)


def sweep_table(doc):
    """One row per configuration: mean ± std over seeds; the best configuration in bold green."""
    rows = doc["configurations"]
    axes = [a for a in sweeps.AXES if len({str(r["settings"].get(a)) for r in rows}) > 1]
    if not axes:
        axes = [a for a in sweeps.AXES if any(a in r["settings"] for r in rows)]
    metric = next((r["metric"] for r in rows if r["metric"]), "metric")
    shown = lambda r, a: spec_label(r["settings"][a]) if a == "data" and a in r["settings"] else \
        r["settings"].get(a, "–")  # noqa: E731  (a csv file's data: its name and options, not its path)
    best = [sweeps.label({a: shown(r, a) for a in axes}) for r in rows if r["best"]]
    caption = "mean ± std over seeds" + (f"; best (bold): {', '.join(best)}" if best and len(rows) > 1 else "")
    table = Table(title=f"Sweep {doc['id']}", title_justify="left", caption=caption, caption_justify="left")
    for axis in axes:
        table.add_column(axis.replace("_", " "), overflow="fold")
    for column in ("seeds", f"test {metric}", "val loss", "baseline", "params", "s/trial"):
        table.add_column(column, justify="left" if column == "seeds" else "right",
                         no_wrap=column in (f"test {metric}", "val loss"))
    for r in rows:
        seeds = f"{r['finished']}/{r['trials']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        table.add_row(*(str(shown(r, a)) for a in axes), seeds,
                      _pm(r["test_metric_mean"], r["test_metric_std"]), _pm(r["val_loss_mean"], r["val_loss_std"]),
                      fmt(r["baseline_mean"]), f"{r['params']:,}" if r.get("params") else "–", fmt(r["seconds_mean"], 3),
                      style="bold green" if r["best"] and len(rows) > 1 else None)
    return table


def _pm(mean, std):
    if mean is None:
        return "–"
    return fmt(mean) + (f" ± {fmt(std, 2)}" if std is not None else "")
