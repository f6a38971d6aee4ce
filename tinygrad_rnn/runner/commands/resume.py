"""`rnnrun resume RUN`: continue a run that stopped (killed, interrupted, failed) from its last checkpoint.

    rnnrun resume last                      train the epochs it still lacks, in its own folder
    rnnrun resume 20261123-142501 --epochs 50   a new total: train a finished run further
    rnnrun resume last --plugin moved/cells.py  a run of a plugin's cell whose file has moved

metrics.csv goes on from the checkpoint's epoch (no row twice, none missing), and summary.json,
model.npz and the plots end as an uninterrupted run's would; on NumPy with the same numbers, bit for bit.
"""
import sys

import click

from .. import options as shared
from ..app import load_plugins, load_run_plugins, store_for
from ..output import Fail
from ..signals import exit_code


@click.command("resume")
@click.argument("run_id", metavar="RUN")
@click.option("--epochs", type=int, metavar="N",
              help="A new total of epochs (default: the run's own); more than done trains a finished run further.")
@shared.plugin(help="Load plugins (repeatable); the run's recorded ones load by themselves unless their file is gone.")
@shared.runs_dir()
@shared.as_json()
@shared.threads()
@shared.quiet()
@click.pass_context
def resume_cmd(ctx, run_id, epochs, plugins, runs_dir, as_json, quiet):
    """Continue RUN (id, id prefix, path or 'last') from its last checkpoint, in its own folder.

    The plugins the run was trained with (recorded in its config.toml) are loaded again; pass
    --plugin only for one whose file has moved."""
    from ..training import print_results, resume_run
    run = store_for(ctx, runs_dir).get(run_id)
    load_plugins(plugins)
    load_run_plugins(run)
    show = not as_json and not quiet
    try:
        summary = resume_run(run, epochs, progress=show, verbose=show, notes=True)
    except KeyboardInterrupt as e:  # said in one line already, the run's files kept
        sys.exit(exit_code(e))
    print_results([summary], as_json, quiet)
    if summary["status"] != "finished":
        raise Fail()
