"""`rnnrun resume RUN`: continue a run that stopped (killed, interrupted, failed) from its last checkpoint.

    rnnrun resume last                      train the epochs it still lacks, in its own folder
    rnnrun resume 20261123-142501 --epochs 50   a new total: train a finished run further

metrics.csv goes on from the checkpoint's epoch (no row twice, none missing), and summary.json,
model.npz and the plots end as an uninterrupted run's would; on NumPy with the same numbers, bit for bit.
"""
import click

from ..app import cli, runs_dir_option, store_for


@cli.command("resume")
@click.argument("run_id", metavar="RUN")
@click.option("--epochs", type=click.IntRange(min=1), metavar="N",
              help="A new total of epochs (default: the run's own); more than done trains a finished run further.")
@runs_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON document of the results.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or model summary.")
@click.pass_context
def resume_cmd(ctx, run_id, epochs, runs_dir, as_json, quiet):
    """Continue RUN (id, id prefix, path or 'last') from its last checkpoint, in its own folder."""
    from ..training import resume_run
    resume_run(store_for(ctx, runs_dir).get(run_id), epochs, as_json, quiet)
