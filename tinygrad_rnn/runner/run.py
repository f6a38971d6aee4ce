"""A run as Python sees it: `Run`, what `train()` and `load_run()` return, over one run folder.

    run = load_run("last")                      # or an id, an id prefix, a folder; runs_dir="runs"
    run.id, run.dir, run.status                 # the folder's name and path, its status now
    run.config, run.summary, run.history        # config.toml, summary.json, metrics.csv (one dict per epoch)
    run.model                                   # the SequenceModel with the run's saved weights
    run.predict("new_rows.csv", steps=12)       # what `rnnrun predict` computes, as `Predictions`
    run.resume(epochs=10)                       # what `rnnrun resume` does; returns the run
    run.plot()                                  # a matplotlib Figure: the loss, and the forecast

Every attribute reads the folder when asked, so a `Run` held in a notebook sees a run that another
process is still training. In a notebook a run shows as its results table (`_repr_html_`), and in a
rich console too (`__rich__`). `rnnrun predict` and `rnnrun resume` call the same methods.
"""
import io
import os
import sys

import numpy as np

from .. import backend
from ..errors import ConfigError
from ..forecast import predictor
from ..registry import datasets
from .config import MAX_FORECAST_STEPS, check_config, construct, load_recorded_plugins
from .store import PREPROCESSING, DamagedRun, RunStore


def load_run(run="last", runs_dir="runs", plugin=()):
    """The `Run` named by `run`: an id, a unique id prefix, a run folder's path, or "last" (the newest
    in `runs_dir`). `plugin`: files or modules to load first, as `--plugin` does (a run's recorded
    plugins load by themselves; pass one only when its file has moved)."""
    from .inputs import load_plugins  # the helper every command uses
    load_plugins(_tuple(plugin))
    if isinstance(run, Run):
        return run
    if isinstance(run, os.PathLike):
        run = os.fspath(run)
    if not isinstance(run, str) or not run:
        raise ConfigError(f"load_run: run must be an id, an id prefix, a folder or 'last', got {run!r}")
    return Run(RunStore(os.fspath(runs_dir)).get(run).path, plugins_moved=bool(plugin))


class ShownAsTable:
    """What shows as its `table()`, a rich renderable: in a rich console (`__rich__`) and in a
    notebook (`_repr_html_`). Run, Runs, Predictions and the search results share it."""

    def __rich__(self):
        return self.table()

    def _repr_html_(self):
        return html(self.table())


class Run(ShownAsTable):
    """One run folder (see the module's docstring)."""

    def __init__(self, path, plugins_moved=False):
        from .store import Run as Folder
        self._folder = Folder(path)
        self._plugins_moved = plugins_moved
        self._model = None

    # ---- what the folder holds ------------------------------------------------------------------
    @property
    def id(self):
        return self._folder.id

    @property
    def dir(self):
        """The run's folder."""
        return self._folder.path

    @property
    def status(self):
        """finished, running, interrupted, diverged, failed, pruned or killed, or `damaged (FILE: reason)`
        where a file of the run does not read back: what `rnnrun runs` lists."""
        return self._folder.checked_status()

    @property
    def config(self):
        """The run's settings as in its config.toml (without the "meta" bookkeeping)."""
        config = self._folder.config()
        config.pop("meta", None)
        return config

    @property
    def summary(self):
        """summary.json: the results (test metric, baseline, losses, seconds, ...) or how far it got."""
        return self._folder.summary()

    @property
    def history(self):
        """metrics.csv: one dict per epoch (epoch, train_loss, val_loss, val_metric, ...)."""
        return self._folder.metrics()

    @property
    def model(self):
        """The trained `SequenceModel`, its saved weights (model.npz) loaded, in evaluation mode."""
        if self._model is None:
            self._model = self._build_model()[1]
        return self._model

    @property
    def dataset(self):
        """The run's dataset as it was built for training (same seed, same splits)."""
        config = self._resolved_config()
        backend.set_backend(config.get("backend", "numpy"))
        return construct(datasets.get(config["data"]), "dataset", config["data"], config["data_options"],
                         seed=config["seed"])

    # ---- what can be done with it ---------------------------------------------------------------
    def predict(self, input, steps=None, split=None, _predict_with=None):
        """The model's predictions, as `rnnrun predict` makes them.

        `input` a CSV file (a path) with the run's columns: `Predictions`, one row per series (a
        forecaster's next values, `steps` of them, or a classifier's label and probabilities), the
        preprocessing fitted on the training rows applied as it was (nothing refitted). `input` an
        array shaped as the dataset's inputs, (sequences, steps, features), preprocessed as the
        splits' `x` are: the model's outputs as a NumPy array. `split` ("train", "val" or "test"): a
        classifier predicts only the series the file's split column marks so."""
        import inspect
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                                  or not 1 <= steps <= MAX_FORECAST_STEPS):
            raise ConfigError(f"--steps must be an integer in [1, {MAX_FORECAST_STEPS}], got {steps!r}")
        if split not in (None, "train", "val", "test"):
            raise ConfigError(f"--split must be train, val or test, got {split!r}")
        if isinstance(input, (str, os.PathLike)):
            dataset, model = self._build_model(from_files=True)
            if split and "split" not in inspect.signature(dataset.predict_file).parameters:
                raise ConfigError(f"--split: dataset {self.config['data']!r} marks no splits in its files; "
                                  "it predicts them whole")
            columns, rows = dataset.predict_file(os.fspath(input), _predict_with or predictor(model), steps,
                                                 **({"split": split} if split else {}))
            return Predictions(columns, rows, run_id=self.id, source=os.fspath(input))
        if steps is not None or split is not None:
            raise ConfigError("predict: steps and split are for a CSV file; an array gets the model's outputs")
        return predictor(self.model)(np.asarray(input, dtype=np.float32))

    def resume(self, epochs=None, progress=False, quiet=True):
        """Continue the run from its checkpoint, as `rnnrun resume` does (`epochs`: a new total);
        returns the run. Refusals (finished, diverged, still running) raise ConfigError."""
        from .training import print_results, resume_run
        folder = self._folder
        load_recorded_plugins(folder.config(), folder.file("config.toml"), moved=self._plugins_moved)
        summary = resume_run(folder, epochs, progress=progress or not quiet, verbose=not quiet, notes=not quiet)
        if not quiet:
            print_results([summary])
        self._model = None
        return self

    def plot(self):
        """A matplotlib Figure: the loss per epoch, and the free-running forecast where there is one.
        Needs matplotlib (pip install 'tinygrad_rnn[plot]')."""
        try:
            from .plots import run_figure
        except ImportError:
            raise ConfigError("plot needs matplotlib: pip install 'tinygrad_rnn[plot]'") from None
        forecast = self.summary.get("forecast") or {}
        predictions = truth = None
        if forecast.get("prediction"):
            column = lambda values: None if values is None else np.array(  # noqa: E731
                [np.nan if v is None else v for v in values], float)[:, None]
            predictions, truth = column(forecast["prediction"]), column(forecast.get("truth"))
        figure = run_figure(self.history, predictions, truth, title=f"{self.id} ({self.status})")
        _display_once(figure)
        return figure

    # ---- how it shows -----------------------------------------------------------------------------
    def table(self):
        """The rich results table that `rnnrun` prints after training."""
        from .report import results_table
        summary = self._listed_summary()
        return results_table([summary], title=f"Run {self.id}: {summary.get('cell')} on {summary.get('data')}")

    def __repr__(self):
        status = self.status
        if status.startswith("damaged"):
            return f"Run({self.id!r}, {status})"
        s = self.summary
        score = (f", test {s['metric']} {s['test_metric']:.4g}"
                 if isinstance(s.get("test_metric"), (int, float)) and s.get("metric") else "")
        return f"Run({self.id!r}, {status}{score})"

    def _listed_summary(self):
        """summary.json with the status `rnnrun runs` lists (a damaged run is `damaged`, not finished)."""
        status = self.status
        return {**self.summary, **({"status": "damaged"} if status.startswith("damaged") else {})}

    def __eq__(self, other):
        return isinstance(other, Run) and os.path.abspath(other.dir) == os.path.abspath(self.dir)

    def __hash__(self):
        return hash(os.path.abspath(self.dir))

    # ---- helpers ----------------------------------------------------------------------------------
    def _resolved_config(self):
        """config.toml checked, its recorded plugins loaded, every name resolved (as every command does)."""
        from .experiment import resolve
        folder = self._folder
        config = check_config(folder.config(), folder.file("config.toml"))
        config.pop("meta", None)
        load_recorded_plugins(config, folder.file("config.toml"), moved=self._plugins_moved)
        return resolve(config)

    def _build_model(self, from_files=False):
        """(dataset, model with the saved weights). The dataset is restored from preprocessing.json
        where the run has one (no training data read); otherwise (`from_files` False) rebuilt.
        Refusals and damaged files are what `rnnrun predict` says, in its order."""
        from .experiment import build_model
        folder = self._folder.verify()  # a damaged file: one line naming it
        config = self._resolved_config()  # its recorded plugins loaded, its names and options checked
        status = folder.status()
        if status not in ("finished", "interrupted"):
            raise ConfigError(f"run {self.id} has status {status!r}, with no trained model to predict with; "
                              f"see `rnnrun show {self.id}`")
        dataset_class = datasets.get(config["data"])
        preprocessing = folder.preprocessing()  # garbage or not a JSON object: DamagedRun naming the file
        if preprocessing is None and _predicts(dataset_class):
            raise DamagedRun(folder, PREPROCESSING, f"missing (dataset {config['data']!r} saves one with every run; "
                                                    "without it the run's scaling is lost: train the run again)")
        if preprocessing is None and from_files:
            able = [n for n in datasets.names() if _predicts(datasets.get(n))]
            raise ConfigError(f"run {self.id} is on dataset {config.get('data')!r}, which does not predict from "
                              f"files; predict works for runs on: {', '.join(able)}")
        backend.set_backend(config.get("backend", "numpy"))
        dataset = construct(dataset_class, "dataset", config["data"], config["data_options"], seed=config["seed"])
        if preprocessing is None:
            dataset.splits()  # the sizes of the model's input and output are known from the data
        else:
            folder.restore_preprocessing(dataset, config["data"], preprocessing)
        model = build_model(config, dataset)
        if not os.path.exists(folder.file("model.npz")):
            raise ConfigError(f"run {self.id} has no saved weights (model.npz) yet; wait for it to finish")
        folder.load_weights_into(model)
        model.eval()
        return dataset, model


def predict_together(runs, input, steps=None, split=None):
    """Several runs of the same data (dataset, options, file and fitted preprocessing: e.g. the seeds of
    `train(..., seeds=5)`) predict `input` (a CSV file) as one ensemble: the mean of their outputs (of
    their probabilities for a classifier), as `rnnrun predict RUN RUN ...` does. Runs on different
    data are refused with a ConfigError naming what differs."""
    runs = list(runs)
    if len(runs) == 1:
        return runs[0].predict(input, steps, split)
    if not isinstance(input, (str, os.PathLike)):
        raise ConfigError("predict: several runs predict a CSV file together; an array goes to one run's predict")
    built = [run._build_model(from_files=True) for run in runs]
    first = runs[0]
    for run, _ in zip(runs[1:], built[1:]):
        differs = _different_data(first, run)
        if differs:
            raise ConfigError(f"runs {first.id} and {run.id} are on different data ({differs}); an ensemble "
                              "averages runs of the same data only")
    from ..breakdowns import ensemble
    dataset = built[0][0]
    members = [predictor(model) for _, model in built]

    def predict(x, lengths=None):
        return ensemble([member(x, lengths) for member in members], dataset.problem).astype(np.float32)
    predictions = first.predict(input, steps, split, _predict_with=predict)
    predictions.run_ids = [run.id for run in runs]
    return predictions


def _different_data(run, other):
    """What differs between two runs' data ('' when nothing): the dataset, an option, or what was fitted."""
    config, other_config = run.config, other.config
    if config["data"] != other_config["data"]:
        return f"datasets {config['data']!r} and {other_config['data']!r}"
    options, other_options = config.get("data_options", {}), other_config.get("data_options", {})
    for key in sorted(set(options) | set(other_options)):
        if options.get(key) != other_options.get(key):
            return f"option {key}: {options.get(key)!r} and {other_options.get(key)!r}"
    if run._folder.preprocessing() != other._folder.preprocessing():
        return "their preprocessing.json, fitted on different training rows"
    return ""


class Runs(ShownAsTable, list):
    """Several `Run`s (what `train` returns for several cells or seeds): a list that shows as one
    results table, the runs side by side, the best by test metric marked ★ when there are several."""

    @property
    def groups(self):
        """One dict per configuration over its seeds, as `rnnrun --seeds N --json` prints them: n, the
        mean and sd of every metric, and the ensemble's test metric (runner/seeds.py)."""
        from .seeds import seed_groups
        return seed_groups([run.summary for run in self], [run._resolved_config() for run in self])

    def table(self):
        from .report import results_table
        summaries = [run._listed_summary() for run in self]
        data = ", ".join(dict.fromkeys(str(s.get("data")) for s in summaries))
        cells = [s.get("cell") for s in summaries]
        if len(set(cells)) < len(cells):  # several seeds of a cell: say which column is which
            summaries = [{**s, "cell": f"{s.get('cell')} seed {s.get('seed')}"} for s in summaries]
        return results_table(summaries, title=f"Results on {data}")

    def _repr_html_(self):
        return super()._repr_html_() if self else None  # an empty list shows as []


def _predicts(cls):
    """Whether a dataset class implements prediction from a file (overrides the protocol's default)."""
    from ..data import Dataset
    return cls.predict_file is not Dataset.predict_file


class Predictions(ShownAsTable):
    """What `Run.predict(file)` returns, and `rnnrun predict` prints: `columns` and `rows` (lists).

    `to_dict()` is the `--json` document; `to_pandas()` a DataFrame (where pandas is installed);
    `column(name)` one column as a NumPy array; in a notebook it shows as a table."""

    def __init__(self, columns, rows, run_id=None, source=None):
        self.columns, self.rows, self.run_id, self.source = list(columns), [list(r) for r in rows], run_id, source

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return (dict(zip(self.columns, row)) for row in self.rows)

    def column(self, name):
        if name not in self.columns:
            raise ConfigError(f"no column {name!r}; the columns are {', '.join(self.columns)}")
        i = self.columns.index(name)
        return np.array([row[i] for row in self.rows])

    run_ids = None  # the runs of an ensemble (`predict_together`)

    def to_dict(self):
        several = {"runs": self.run_ids} if self.run_ids and len(self.run_ids) > 1 else {}
        return {"run": self.run_id, **several, "columns": self.columns, "rows": self.rows}

    def to_pandas(self):
        import pandas
        return pandas.DataFrame(self.rows, columns=self.columns)

    def table(self, widest=5):
        """A compact rich table. Probabilities (columns of floats within [0, 1]) show with two decimals,
        one column each; past `widest` of them, only the highest (the predicted label's) fits a terminal."""
        from rich import box
        from rich.table import Table
        columns, rows = self.columns, self.rows
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

    def __repr__(self):
        return f"Predictions({len(self.rows)} rows; columns {', '.join(self.columns)})"


# ---- display ----------------------------------------------------------------------------------------
def html(renderable):
    """A rich renderable (a table) as an HTML fragment, for a notebook's `_repr_html_`."""
    from rich.console import Console
    console = Console(record=True, file=io.StringIO(), width=1000, force_jupyter=False, force_terminal=False)
    console.print(renderable)
    return console.export_html(inline_styles=True, code_format="<pre style=\"font-family: monospace\">{code}</pre>")


def _display_once(figure):
    """In IPython (Jupyter), make sure a returned Figure shows as a picture. The figure is not pyplot's
    (plots.py), so the notebook does not also show it at the end of the cell; but then nothing may
    have told IPython how to draw a Figure yet (pyplot's inline backend does that when it first
    loads): where no format is registered, PNG is, as the inline backend would."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return figure
    from functools import partial

    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure
    formatters = shell.display_formatter.formatters
    if not any(Figure in getattr(f, "type_printers", {}) for f in formatters.values()):
        formatters["image/png"].for_type(Figure, partial(print_figure, fmt="png", base64=True))
    return figure


def _tuple(value):
    """A flag that may be given once or many times: None → (), "x" → ("x",), a list → a tuple."""
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        return (value,)
    return tuple(value)
