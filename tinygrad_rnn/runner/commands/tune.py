"""`rnnrun tune`: a hyper-parameter search that learns where to look (Optuna) and stops hopeless trials early.

    rnnrun tune --cell gru --data sine --lr 1e-4:1e-1 --hidden 4:64 --trials 12 --epochs 4
    rnnrun tune --cell lstm,gru --data airline --lr 1e-3:1e-1 --layers 1,2 --workers 2
    rnnrun tune ... --scheduler tcp://10.0.0.5:8786          trials on a Dask cluster, sharing the study
"""
import os
import shlex
import sys

import click
from rich.table import Table

from .. import sweeper as sweeps
from .. import tuner as tuning
from .. import options as shared
from ..app import check_runs_dir, config_from_flags
from ..config import MAX_EPOCHS
from ..output import Fail, console, print_json
from ..report import fmt
from ..signals import exit_code, ignoring_stops, on_stop
from ...errors import ConfigError

BEST_SHOWN = 10


@click.command("tune")
@click.option("--cell", multiple=True, metavar="NAME[,NAME...]", help="Cell(s) to choose from: lstm,gru.")
@click.option("--data", multiple=True, metavar="SPEC", help="The dataset, with options: adding:T=50.")
@click.option("--optimizer", multiple=True, metavar="SPEC[,SPEC...]", help="Optimiser(s) to choose from.")
@click.option("--lr", multiple=True, metavar="LIST|RANGE", help="Learning rates: 1e-4:1e-1 (log) or 1e-3,1e-2.")
@click.option("--hidden", multiple=True, metavar="LIST|RANGE", help="Hidden sizes: 8:128 or 16,32,64.")
@click.option("--layers", multiple=True, metavar="LIST|RANGE", help="Stacked layers: 1,2 or 1:3.")
@click.option("--batch-size", multiple=True, metavar="LIST|RANGE", help="Batch sizes: 16,64 or 8:128:log.")
@click.option("--reg", multiple=True, metavar="NAME[:k=v,...]", help="Regulariser for every trial (repeatable).")
@click.option("--schedule", metavar="NAME[:k=v]", help="Learning-rate schedule for every trial: cosine, step:...")
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), help="Epochs per trial, at most (default: the dataset's).")
@click.option("--bidirectional/--unidirectional", default=None, help="Run each layer in both directions.")
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Trials to add to the study in this command.")
@click.option("--sampler", type=click.Choice(tuning.SAMPLERS), default="tpe", show_default=True,
              help="How settings are proposed: TPE learns from the trials so far; random does not.")
@click.option("--pruner", type=click.Choice(tuning.PRUNERS), default="median", show_default=True,
              help="When a trial is stopped early: worse than the median at the same epoch, successive halving, never.")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True, metavar="EPOCHS",
              help="Epochs every trial trains before the pruner may stop it.")
@click.option("--objective", type=click.Choice(list(tuning.OBJECTIVES)), default="val_loss", show_default=True,
              help="What is optimised: the best validation loss, or the dataset's validation metric.")
@click.option("--direction", type=click.Choice(["minimize", "maximize"]),
              help="Checked against the objective (default: what fits it: a loss is minimised).")
@shared.seed(default=0, show_default=True, help="Seed of every trial's run (data, weights) and of the sampler.")
@click.option("--study", "study_name", metavar="NAME",
              help="The study to add trials to (default: named after the dataset and the search, "
                   "so the same command continues the same study).")
@click.option("--storage", metavar="URL", help="A shared database for many machines (default: SQLite in the "
                                              "study's folder), e.g. postgresql://host/db.")
@click.option("--workers", type=shared.WORKERS, metavar="N",
              help="Local worker processes sharing the study (default 1: the trials run here, one by one).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run the trials on this Dask scheduler's workers.")
@shared.plugin(help="Load plugins from a .py file or module, here and in every worker (repeatable).")
@shared.log(help="Log every trial to NAME too (tensorboard, mlflow: the study is a parent run), repeatable.")
@shared.runs_dir(help="Where runs are stored (default ./runs); studies go in its tunes/.")
@shared.as_json(help="Print only a JSON document of the study.")
@shared.quiet(help="No line per trial.")
@click.pass_context
def tune_cmd(ctx, trials, sampler, pruner, warmup, objective, direction, seed, study_name, storage, workers, scheduler,
             plugins, log, runs_dir, as_json, quiet, **flags):
    """Search hyper-parameters with Optuna: TPE proposes, the pruner stops losing trials early.

    \b
    Axes take the sweep's syntax: a list (--cell lstm,gru) is a choice, a range
    (--lr 1e-4:1e-1, --hidden 8:128[:log|linear]) a distribution; one value is fixed.
    Every trial is an ordinary run under RUNS/tunes/STUDY/, reporting its validation
    value after each epoch; a pruned one stops and is marked "pruned". The study is kept
    in RUNS/tunes/STUDY/study.db: the same command again adds --trials more to it.
    The best trial's config is written to best.toml: rnnrun --config best.toml repeats it.
    """
    tuning.require_optuna()
    if workers is not None and scheduler:
        raise ConfigError("--workers is for the local pool; with --scheduler the Dask cluster's workers run the trials")
    sweeps.check_scheduler(scheduler)  # a malformed address is a usage error, before anything connects
    root = check_runs_dir(shared.runs_dir_of(ctx, runs_dir))
    group_plugins = shared.plugins_of(ctx, ())
    sweeps.mark_loaded(group_plugins)  # `rnnrun --plugin X tune` loaded them already
    sweeps.load_plugins_once(plugins)
    plugins = [sweeps.plugin_ref(p) for p in group_plugins + list(plugins)]
    job = _job(root, flags, trials, sampler, pruner, objective, direction, seed, study_name, storage, plugins, log)
    job["epochs"] = tuning.check_search(job)["epochs"]  # bad names, options, sizes fail here, before any folder
    job["warmup"] = warmup
    client = sweeps.connect(scheduler) if scheduler else None
    err = console(stderr=True)
    try:
        study = tuning.open_study(job)
        before = len(study.trials)
        job["sampler_seed"] = seed + before  # a continued study does not replay the first trials' draws
        if not (as_json or quiet):
            where = f"on {scheduler}" if scheduler else "here" if (workers or 1) == 1 else f"on {workers} workers"
            err.print(f"[dim]study {job['study']}: {before} trials so far, {trials} more {where} "
                      f"({sampler} sampler, {pruner} pruner; {shown(job['folder'])})[/]", soft_wrap=True)
        say = None if as_json or quiet else _say(err)
        try:
            with on_stop():  # SIGTERM and SIGHUP stop a study as Ctrl-C does: the running trial "interrupted"
                tuning.run_study(job, workers or 1, client, say)
        except KeyboardInterrupt as e:
            with ignoring_stops():  # a second signal must not cut the note or best.toml short
                tuning.write_best(tuning.summarise(job, new_trials=trials))
                err.print(f"[yellow]interrupted:[/] finished trials are kept in the study; the same command "
                          f"adds more ({job['folder']})", soft_wrap=True)
            sys.exit(exit_code(e))
    finally:
        if client is not None:
            client.close()
    doc = tuning.summarise(job, new_trials=trials)
    best_toml = tuning.write_best(doc)
    plots = tuning.write_plots(job)
    if as_json:
        print_json(doc)  # strict: a NaN objective is null
    else:
        _print(doc, best_toml, plots)
    if doc["best"] is None:
        err.print(f"[red]no trial of study {job['study']} has finished[/]: see the runs' messages "
                  f"(rnnrun runs --runs-dir {root})", soft_wrap=True)
        raise Fail()
    lost = tuning.unreadable_runs(doc)
    if lost:  # the study has their values, but `rnnrun runs`, best.toml and resume need the folders
        where = ", ".join(sorted({t["host"] or "a worker" for t in lost}))
        raise tuning.TuneError(f"{len(lost)} of the trials wrote their runs where this machine cannot read them "
                               f"(on {where}, e.g. {lost[0]['run_dir']}): give the workers --runs-dir on a file "
                               "system this machine shares")


def _job(root, flags, trials, sampler, pruner, objective, direction, seed, study_name, storage, plugins, log=()):
    """Everything a worker needs to run its share of the study, as plain picklable values."""
    axes = {axis: sweeps.parse_axis(axis, flags[axis]) for axis in sweeps.AXES if flags[axis]}
    if "cell" not in axes or "data" not in axes:
        raise ConfigError("tune needs --cell and --data, e.g. rnnrun tune --cell gru --data sine --lr 1e-4:1e-1")
    fixed, tuned = tuning.search_space(axes)
    direction = tuning.check_direction(fixed["data"], objective, direction)
    base = config_from_flags(None, data=None, optimizer=None, reg=flags["reg"], schedule=flags["schedule"],
                             epochs=flags["epochs"], bidirectional=flags["bidirectional"], log=log)
    # the loggers change no number: the same search with or without --log is the same study
    definition = tuning.definition(fixed, tuned, {k: v for k, v in base.items() if k != "log"}, objective,
                                   direction, seed, plugins)
    name = study_name or tuning.default_study_name(definition)
    folder = tuning.study_folder(root, name)
    command = ("rnnrun " + " ".join(shlex.quote(a) for a in sys.argv[1:])
               if os.path.basename(sys.argv[0]) == "rnnrun" else "")
    return {"root": root, "group": os.path.relpath(folder, root), "folder": folder, "study": name,
            "storage": tuning.storage_url(root, name, storage), "definition": definition, "command": command,
            "fixed": fixed, "tuned": tuned, "base": base, "seed": seed, "objective": objective,
            "direction": direction, "sampler": sampler, "pruner": pruner, "sampler_seed": seed,
            "trials": trials, "plugins": plugins}


def _say(err):
    """One line per trial as it ends (trials that run here; pool and Dask workers stay silent)."""
    def say(number, settings, summary, key):
        where = sweeps.label({k: fmt(v, 3) for k, v in settings.items()})
        status = summary["status"]
        colour = {"finished": "green", "pruned": "yellow"}.get(status, "red")
        value = fmt(summary.get(key)) if status in ("finished", "pruned") else summary.get("message", "")
        n = summary.get("epochs")
        epochs = f" after {n} epoch{'s' if n > 1 else ''}" if n else ""
        err.print(f"[{colour}]{status}[/] trial {number}: {where}: {key} {value}{epochs}", soft_wrap=True)
    return say


def _print(doc, best_toml, plots):
    out, study = console(), doc["study"]
    out.print(best_table(doc))
    if doc["importances"]:
        table = Table(title="Parameter importances (PED-ANOVA over finished trials)", title_justify="left")
        table.add_column("parameter")
        table.add_column("importance", justify="right")
        table.add_column("")
        for name, share in doc["importances"].items():
            table.add_row(name, f"{share:.2f}", "█" * round(20 * share))
        out.print(table)
    epochs = f"{study['epochs']} epochs trained of {study['max_epochs']} without pruning"
    out.print(f"[dim]study {study['name']} on {study['data']}: {study['trials']} trials ({study['complete']} finished, "
              f"{study['pruned']} pruned, {study['fail']} failed), {epochs}; {shown(study['path'])}[/]", soft_wrap=True)
    if doc["best"]:
        best = doc["best"]
        out.print(f"best: trial {best['number']}, {study['objective'].replace('_', ' ')} {fmt(best['value'])}: "
                  f"{sweeps.label({k: fmt(v, 3) for k, v in best['params'].items()})}", soft_wrap=True)
    if best_toml:
        out.print(f"[dim]best config: {shown(best_toml)} (rnnrun --config {shown(best_toml)} repeats it)[/]",
                  soft_wrap=True)
    for path in plots:
        out.print(f"[dim]plot: {shown(path)}[/]", soft_wrap=True)


def shown(path):
    """A path as the user would type it: relative to the current directory when it lies below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def best_table(doc):
    """The best trials, best first: their settings, value, epochs run, and whether they were pruned."""
    study = doc["study"]
    scored = [t for t in doc["trials"] if t["value"] is not None and t["state"] in ("complete", "pruned")]
    reverse = study["direction"] == "maximize"
    # finished trials before pruned ones: a pruned trial's value is where it stopped, not what it reached
    ranked = sorted(scored, key=lambda t: (t["state"] != "complete", -t["value"] if reverse else t["value"]))
    names = list(dict.fromkeys(k for t in doc["trials"] for k in t["params"]))
    table = Table(title=f"Best trials of study {study['name']} ({len(ranked[:BEST_SHOWN])} of {study['trials']})",
                  title_justify="left")
    table.add_column("trial", justify="right")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column(study["objective"].replace("_", " "), justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("state")
    table.add_column("run", overflow="fold")
    best = doc["best"]["number"] if doc["best"] else None
    for t in ranked[:BEST_SHOWN]:
        table.add_row(str(t["number"]), *(fmt(t["params"].get(n), 3) for n in names), fmt(t["value"]),
                      fmt(t["epochs"]), t["state"], t["run_id"] or "–",
                      style="bold green" if t["number"] == best else None)
    return table
