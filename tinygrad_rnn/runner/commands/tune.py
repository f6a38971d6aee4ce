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

from .. import options as shared
from .. import report
from .. import sweeper as sweeps
from .. import tuner as tuning
from ..api import check_readable, shown
from ..app import check_runs_dir
from ..config import MAX_EPOCHS
from ..output import Fail, console, print_json
from ..report import exact, fmt
from ..signals import exit_code


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
@click.option("--objective", type=click.Choice(list(tuning.OBJECTIVES)), default="val_metric", show_default=True,
              help="What is optimised: the dataset's metric on the validation split, or the validation loss.")
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
@shared.threads()
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
    from ..api import _check_where, run_study_job  # one code path: the API's tune() runs these too
    tuning.require_optuna()
    where = _check_where(workers, scheduler)
    root = check_runs_dir(shared.runs_dir_of(ctx, runs_dir))
    group_plugins = shared.plugins_of(ctx, ())
    sweeps.mark_loaded(group_plugins)  # `rnnrun --plugin X tune` loaded them already
    sweeps.load_plugins_once(plugins)
    command = ("rnnrun " + " ".join(shlex.quote(a) for a in sys.argv[1:])
               if os.path.basename(sys.argv[0]) == "rnnrun" else "")
    job = tuning.plan_study(root, flags, trials, sampler, pruner, warmup, objective, direction, seed, study_name,
                            storage, group_plugins + list(plugins), command, log=log)
    silent = as_json or quiet
    try:
        doc, best_toml, plots = run_study_job(job, where, progress=False, lines=not silent, notes=True)
    except KeyboardInterrupt as e:  # said in one line already; the finished trials are kept in the study
        sys.exit(exit_code(e))
    if as_json:
        print_json(doc)  # strict: a NaN objective is null
    else:
        _print(doc, best_toml, plots)
    if doc["best"] is None:
        console(stderr=True).print(f"[red]no trial of study {job['study']} has finished[/]: see the runs' "
                                   f"messages (rnnrun runs --runs-dir {root})", soft_wrap=True)
        raise Fail()
    check_readable(doc)


def _print(doc, best_toml, plots):
    out, study = console(), doc["study"]
    out.print(report.best_table(doc))
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
                  f"{sweeps.label({k: exact(v) for k, v in best['params'].items()})}", soft_wrap=True)
    if best_toml:
        out.print(f"[dim]best config: {shown(best_toml)} (rnnrun --config {shown(best_toml)} repeats it)[/]",
                  soft_wrap=True)
    for path in plots:
        out.print(f"[dim]plot: {shown(path)}[/]", soft_wrap=True)

