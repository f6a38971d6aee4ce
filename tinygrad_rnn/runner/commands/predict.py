"""`rnnrun predict RUN --input FILE`: a finished run's model applied to new rows of the same columns.

    rnnrun predict last --input next_year.csv                  a table: each series' next values
    rnnrun predict last --input recordings.csv --output labels.csv   each series' label and probabilities

The preprocessing the run fitted on its training rows (scalers, column order, class names) is read
back from its preprocessing.json and applied as it is: nothing is refitted on the new file.
"""
import csv
import os

import click

from .. import options as shared
from ..app import store_for
from ..config import MAX_FORECAST_STEPS
from ..output import console, print_json
from ..run import Run, predict_together
from ...errors import ConfigError


@click.command("predict")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN [RUN...]")
@click.option("--input", "input_path", required=True, metavar="FILE.csv",
              help="Rows with the run's columns (a classifier's label column may be absent).")
@click.option("--output", "output_path", metavar="OUT.csv", help="Write the predictions here as CSV.")
@click.option("--steps", type=click.IntRange(1, MAX_FORECAST_STEPS),
              help="Forecast this many steps (default: the run's horizon); past the horizon the forecasts "
                   "are fed back as inputs, which needs the target as the only input.")
@click.option("--split", type=click.Choice(["train", "val", "test"]),
              help="A classifier: predict only the series the file's split column (the run's split=COL) "
                   "marks so.")
@shared.runs_dir()
@shared.as_json(help="Print a JSON document instead of a table.")
@click.pass_context
def predict_cmd(ctx, run_ids, input_path, output_path, steps, split, runs_dir, as_json):
    """Predict with a finished run (RUN: id, id prefix, path or 'last') on a new CSV file: for a
    forecaster each series' next values, for a classifier each series' label and class probabilities.

    Several RUNs of the same data (dataset, options, file and fitted preprocessing: e.g. the seeds of
    `rnnrun --seeds 5`) predict as one ensemble: the mean of their outputs (of their probabilities for
    a classifier). Runs on different data are refused."""
    store, moved = store_for(ctx, runs_dir), bool(shared.plugins_of(ctx, ()))
    runs = [Run(store.get(run_id).path, plugins_moved=moved) for run_id in run_ids]
    run = runs[0]
    predictions = predict_together(runs, input_path, steps, split)  # one code path: the API's
    if output_path:
        _write_csv(output_path, predictions.columns, predictions.rows)
    if as_json:
        print_json(predictions.to_dict())
    elif output_path:
        console().print(f"{len(predictions)} predictions written to {output_path}")
    else:
        out = console()
        what = f"run {run.id}" if len(runs) == 1 else \
            f"the ensemble of {len(runs)} runs ({', '.join(r.id for r in runs)})"
        out.print(f"Predictions of {what} for {os.path.basename(input_path)}:", soft_wrap=True)
        out.print(predictions.table())


def _write_csv(path, columns, rows):
    try:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(rows)
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}") from None
