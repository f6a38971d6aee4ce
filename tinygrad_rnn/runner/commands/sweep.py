"""`rnnrun sweep`: many ordinary runs over a grid (or a random sample) of settings and seeds, in one table.

    rnnrun sweep --cell rnn,lstm,gru --data adding:T=100 --lr 1e-3,3e-3 --hidden 32,64 --seeds 3
    rnnrun sweep --cell gru --data sine --lr 1e-4:1e-2 --hidden 16:128 --random 20 --workers 4
    rnnrun sweep ... --scheduler tcp://10.0.0.5:8786        trials as tasks on a Dask cluster
    rnnrun sweep --resume 20261123-142501-adding             run only what the sweep still lacks
    rnnrun runs --sweep 20261123-142501-adding               its trials, one per line
"""
import os
import shlex
import sys

import click
from rich.table import Table

from .. import options as shared
from .. import report
from .. import sweeper as sweeps
from ..app import check_runs_dir
from ..config import MAX_EPOCHS
from ..output import Fail, console, print_json
from ..signals import exit_code


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
@shared.threads()
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
    from ..api import _check_where, run_sweep_plan  # one code path: the API's sweep() runs these too
    where = _check_where(workers, scheduler)
    root = check_runs_dir(shared.runs_dir_of(ctx, runs_dir))
    group_plugins = shared.plugins_of(ctx, ())
    sweeps.mark_loaded(group_plugins)  # `rnnrun --plugin X sweep` loaded them already
    sweeps.load_plugins_once(plugins)
    # for people reading sweep.toml; when called as a library (tests) argv is someone else's
    command = ("rnnrun " + " ".join(shlex.quote(a) for a in sys.argv[1:])
               if os.path.basename(sys.argv[0]) == "rnnrun" else "")
    plan = sweeps.plan_sweep(root, defining, group_plugins + list(plugins), resume_id, command, log=log)
    silent = as_json or quiet
    try:
        doc = run_sweep_plan(plan, where, progress=not silent, lines=not silent, notes=True)
    except KeyboardInterrupt as e:  # said in one line already; the finished trials are kept
        sys.exit(exit_code(e))
    if as_json:
        print_json(doc)
    else:
        _print(doc)
    if any(t["status"] != "finished" for t in doc["trials"]):
        raise Fail()


def _print(doc):
    out = console()
    out.print(report.sweep_table(doc))
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
