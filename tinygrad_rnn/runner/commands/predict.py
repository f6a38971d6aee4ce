"""`rnnrun predict RUN --input FILE`: a finished run's model applied to new rows of the same columns.

    rnnrun predict last --input next_year.csv                  a table: each series' next values
    rnnrun predict last --input recordings.csv --output labels.csv   each series' label and probabilities

The preprocessing the run fitted on its training rows (scalers, column order, class names) is read
back from its preprocessing.json and applied as it is: nothing is refitted on the new file.
"""
import csv
import inspect
import os

import click
import numpy as np
from rich import box
from rich.table import Table

from .. import options as shared
from ..app import run_config, store_for
from ..experiment import build_model
from ..config import MAX_FORECAST_STEPS, construct
from ..output import console, print_json
from ..store import PREPROCESSING, DamagedRun
from ... import backend
from ...errors import ConfigError, TinygradRNNError
from ...function import no_grad
from ...registry import datasets
from ...tensor import Tensor


@click.command("predict")
@click.argument("run_id", metavar="RUN")
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
def predict_cmd(ctx, run_id, input_path, output_path, steps, split, runs_dir, as_json):
    """Predict with a finished run (RUN: id, id prefix, path or 'last') on a new CSV file: for a
    forecaster each series' next values, for a classifier each series' label and class probabilities."""
    run = store_for(ctx, runs_dir).get(run_id).verify()  # a damaged file: one line naming it, exit 1
    config = run_config(run)  # its recorded plugins loaded, its names and options checked
    status = run.status()
    if status not in ("finished", "interrupted"):
        raise ConfigError(f"run {run.id} has status {status!r}, with no trained model to predict with; "
                          "see `rnnrun show " + run.id + "`")
    dataset_class = datasets.get(config["data"])
    preprocessing = run.preprocessing()  # garbage or not a JSON object: DamagedRun naming the file
    if preprocessing is None and _predicts(dataset_class):
        raise DamagedRun(run, PREPROCESSING, f"missing (dataset {config['data']!r} saves one with every run; "
                                             "without it the run's scaling is lost: train the run again)")
    if preprocessing is None:
        able = [n for n in datasets.names() if _predicts(datasets.get(n))]
        raise ConfigError(f"run {run.id} is on dataset {config.get('data')!r}, which does not predict from files; "
                          f"predict works for runs on: {', '.join(able)}")
    backend.set_backend(config.get("backend", "numpy"))
    dataset = construct(dataset_class, "dataset", config["data"], config["data_options"], seed=config["seed"])
    try:
        dataset.restore(preprocessing)
    except TinygradRNNError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:  # the file, not the plugin
        raise DamagedRun(run, PREPROCESSING, f"does not fit dataset {config['data']!r} "
                                             f"({type(e).__name__}: {e}); not what the run wrote") from None
    model = build_model(config, dataset)
    if not os.path.exists(run.file("model.npz")):
        raise ConfigError(f"run {run.id} has no saved weights (model.npz) yet; wait for it to finish")
    run.load_weights_into(model)
    if split and "split" not in inspect.signature(dataset.predict_file).parameters:
        raise ConfigError(f"--split: dataset {config['data']!r} marks no splits in its files; it predicts them whole")
    columns, rows = dataset.predict_file(input_path, _predictor(model), steps, **({"split": split} if split else {}))
    if output_path:
        _write_csv(output_path, columns, rows)
    if as_json:
        print_json({"run": run.id, "columns": columns, "rows": rows})
    elif output_path:
        console().print(f"{len(rows)} predictions written to {output_path}")
    else:
        out = console()
        out.print(f"Predictions of run {run.id} for {os.path.basename(input_path)}:", soft_wrap=True)
        out.print(_table(columns, rows))


def _predictor(model, batch_size=256):
    """predict(x, lengths) → the model's outputs as NumPy, in evaluation mode, batch by batch."""
    def predict(x, lengths=None):
        model.eval()
        parts = []
        with no_grad():
            for start in range(0, len(x), batch_size):
                part = slice(start, start + batch_size)
                xs = Tensor(backend.convert(np.ascontiguousarray(x[part]), backend.get_backend()))
                parts.append(model.predict(xs, lengths=None if lengths is None else lengths[part]).numpy())
        return np.concatenate(parts)
    return predict


def _predicts(cls):
    """Whether a dataset class implements prediction from a file (overrides the protocol's default)."""
    from ...data import Dataset
    return cls.predict_file is not Dataset.predict_file


def _write_csv(path, columns, rows):
    try:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(rows)
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}") from None


def _table(columns, rows, widest=5):
    """A compact table. Probabilities (columns of floats within [0, 1]) show with two decimals, one
    column each; past `widest` of them, only the highest (the predicted label's) fits a terminal."""
    shares = [c for c in range(len(columns)) if rows and all(isinstance(r[c], float) and 0 <= r[c] <= 1
                                                              for r in rows)]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    if len(shares) > widest:
        keep = [c for c in range(len(columns)) if c not in shares]
        columns = [columns[c] for c in keep] + ["probability"]
        rows = [[r[c] for c in keep] + [max(r[c] for c in shares)] for r in rows]
        table.caption = f"the predicted label's probability; --json or --output give all {len(shares)}"
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(f"{v:.2f}" if isinstance(v, float) and 0 <= v <= 1 and len(shares) else
                        f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    return table
