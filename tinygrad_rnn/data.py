"""The dataset plugin protocol: what a dataset declares and what it hands to the trainer.

A dataset plugin subclasses `Dataset`, sets the class attributes that describe its task, and builds
its three splits in `make_splits()`. Everything is NumPy on the host; the trainer moves batches to
the backend. Shapes, with N sequences of T steps and D features:

    kind        x                      y (targets)                         model
    ---------   --------------------   ---------------------------------   ---------------------------
    seq2vec     (N, T, D) float32      regression (N, O) float32;          recurrent layer, then a
                                       classification (N,) int64           head on the last valid step
    seq2seq     (N, T, D) float32      regression (N, T, O) float32;       a head on every step
                                       classification (N, T) int64
    vec2seq     (N, D) float32         (N, T_out) int64 tokens             vector → initial state →
                                                                           decoder, one token a step
    encdec      (N, T, D) float32      (N, T_out) int64 tokens             encoder → final state →
                                                                           decoder, one token a step

`lengths` (N,) int64 gives each sequence's valid steps when they vary (x is zero-padded after them;
per-step targets there are ignored). A decoder's input at step t is the one-hot previous token
(teacher forcing in training, its own prediction when evaluating), zeros at step 0.

Regression data is normalised with statistics of the training split only; `denormalize` maps model
outputs back to the original units, in which `metric` and `baseline` report.

A dataset read from a user's file may also support `rnnrun predict`: `preprocessing()` returns what
fitting learned from the training rows (scalers, column order, class names) as a small JSON-able dict,
which the runner saves as the run's `preprocessing.json`; `restore(preprocessing)` puts it back into a
fresh instance without reading the training data; `predict_file(path, predict, steps)` then applies
the model to a new file of the same columns, never refitting anything. `recorded_options()` names the
options a run should write back into its config.toml (a file's absolute path and SHA-256, say).
`read_table`, `sha256_of` and `warn` below are the helpers such a dataset reads files with.
"""
import csv
import hashlib
import io
import sys
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import ConfigError

KINDS = ("seq2vec", "seq2seq", "vec2seq", "encdec")
PROBLEMS = ("regression", "classification")


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray
    lengths: Optional[np.ndarray] = None

    def __len__(self):
        return len(self.x)

    def subset(self, index):
        """The rows `index` (an int array or slice) of this split."""
        return Split(self.x[index], self.y[index], None if self.lengths is None else self.lengths[index])


class Dataset:
    """Base class of dataset plugins. Subclasses set the attributes below and write `make_splits`.

    This class is the whole protocol: every attribute and method the trainer and the runner use is
    declared here with its default, so a plugin overrides what it needs and nothing is looked up with
    a fallback elsewhere."""

    kind = "seq2vec"               # one of KINDS
    problem = "regression"         # "regression" or "classification"
    metric_name = "rmse"           # shown in tables; computed by `metric`
    higher_is_better = False       # for the metric (loss is always lower-is-better)
    baseline_name = "baseline"     # what `baseline` computes, e.g. "persistence", "majority class"
    forecastable = False           # True for time series whose y is the next step of x (see below)
    synthetic = False              # True when the data is generated from the seed (a new seed, new data)
    # True for one long stream cut into consecutive chunks (character language models): the train
    # split's rows [b*streams:(b+1)*streams] are chunk b of `streams` parallel streams, so row j of
    # each batch continues row j of the batch before; the trainer then keeps that order (no
    # shuffling), uses `streams` as the batch size and carries the recurrent state across batches.
    stateful = False
    streams = None
    forecast_steps = 50            # K of the forecast a run keeps and plots (forecastable datasets)
    # Sizes the runner's memory check reads before the splits are built, where the options give them
    # (a synthetic dataset's T and n_train); None: unknown, counted as 1
    T = None
    n_train = None
    vocab = None                   # a character-level dataset's tokens, in id order (with encode, decode)
    # True where the options ask for no validation split (the csv dataset's val=0): "val" is then an
    # empty Split, the trainer keeps the last epoch, and early stopping and tune refuse the data
    without_validation = False
    # What makes `rnnrun --cell gru --data NAME` a good run on a 2-core CPU in well under a minute.
    defaults = {"hidden": 32, "epochs": 20, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0):
        self.seed = seed
        self._splits = None
        self.input_size = None     # D
        self.output_size = None    # O for regression; number of classes (or tokens) for classification

    # ---- what a plugin writes ----------------------------------------------------------------------
    def make_splits(self):
        """Return {"train": Split, "val": Split, "test": Split}, deterministic given self.seed."""
        raise NotImplementedError

    def metric(self, outputs, split):
        """The dataset's own score of model `outputs` on `split`, in original units.

        `outputs` is what the model produced for split.x: regression values (normalised, y's shape)
        or classification logits (y's shape + (classes,)). The default is RMSE or accuracy.
        """
        if self.problem == "classification":
            return accuracy(outputs, split)
        return rmse(self.denormalize(outputs), self.denormalize(split.y))

    def baseline(self, split):
        """The same metric for the trivial predictor this dataset is judged against."""
        raise NotImplementedError

    def extra_metrics(self, outputs, split):
        """More scores of `outputs` on `split` beside the metric, as {name: value} (none by default):
        the trainer reports them with the metric at every evaluation."""
        return {}

    def denormalize(self, y):
        """Map normalised regression targets or outputs back to original units (identity by default)."""
        return y

    # ---- forecasting (time series only) ----------------------------------------------------------
    def forecast_start(self, source="data", steps=None):
        """(window (T, D), truth (K, D) or None): where a free-running forecast starts.

        `source="data"` takes the last real window before the test targets and the true continuation;
        `source="zeros"` starts from an all-zero window (no truth). Only for forecastable datasets.
        Where the record ends before `steps`, the truth's missing rows are NaN (it is always (K, D)).
        `forecast_steps` is the K a run's forecast uses when none is asked for.
        """
        raise ConfigError(f"dataset {getattr(self, 'plugin_name', type(self).__name__)!r} is not a "
                          "time series: it cannot forecast")

    def free_run(self, predict, steps, source="data"):
        """(predictions (K, 1), truth (K, 1) or None) in the data's units, for a dataset whose model output
        is not its next input (the csv dataset's models predict changes, K steps at a time), which runs
        its free-running forecast itself with `predict(x, lengths)` (the model's normalised outputs).
        None (the default): a forecastable dataset's output is its next input, and `tinygrad_rnn.forecast`
        feeds it back from `forecast_start`."""
        return None

    def forecast_picture(self, predict):
        """What a run's forecast.png draws for a dataset that runs its own `free_run`: {"series" (its id),
        "time" (the test targets' times), "truth", "prediction" (the model's one-step forecasts of
        them), "future_time", "future" (forecasts past the end of the data, fed back)}; None: no picture
        (the default: forecastable datasets draw the free-running forecast of `forecast_start`)."""
        return None

    # ---- how tables name a run's data -------------------------------------------------------------------
    @classmethod
    def data_label(cls, name, options):
        """How `runs`, `compare`, `sweep` and `tune` name the data of a run of this dataset, `options` its
        config.toml's data_options: the dataset's name by default. A dataset read from a user's file
        names the file and the options that shape the task, so that runs on different data never read
        alike (the csv dataset: `csv:elnino.csv(target=sst,window=24)`)."""
        return name

    # ---- predicting from a file (datasets read from a user's file) --------------------------------------
    def preprocessing(self):
        """What fitting learned from the training rows, as a JSON-able dict (None: nothing to predict with).

        Called after `splits()`; the runner writes it to the run folder as `preprocessing.json`."""
        return None

    def restore(self, preprocessing):
        """Take back a `preprocessing()` dict, so that `predict_file` works without the training data."""
        raise ConfigError(f"dataset {getattr(self, 'plugin_name', type(self).__name__)!r} cannot predict "
                          "from a file")

    def predict_file(self, path, predict, steps=None):
        """(columns, rows): the model's predictions for the sequences of the file at `path`.

        `predict(x, lengths)` returns the model's outputs (normalised, as in training) for inputs built
        with the restored preprocessing; `steps` asks a forecaster for that many steps ahead. A dataset
        whose files mark each sequence's split may take `split=NAME` too (`rnnrun predict --split`),
        predicting only those sequences."""
        raise ConfigError(f"dataset {getattr(self, 'plugin_name', type(self).__name__)!r} cannot predict "
                          "from a file")

    # ---- text (character-level language models: `vocab` set) -------------------------------------
    def encode(self, text):
        """Token ids of `text` (a text dataset; `rnnrun sample` prompts with it)."""
        raise ConfigError(f"dataset {getattr(self, 'plugin_name', type(self).__name__)!r} is not a text dataset")

    def decode(self, ids):
        """The text of token ids (a text dataset)."""
        raise ConfigError(f"dataset {getattr(self, 'plugin_name', type(self).__name__)!r} is not a text dataset")

    def recorded_options(self):
        """Options the run writes back into its config.toml after building the dataset ({} by default)."""
        return {}

    def series_and_times(self, name):
        """(series, times) of the rows of split `name`, for the run's predictions.csv: `series` a list of
        N series ids (str), `times` an (N, K) array of each target step's own time value (K the horizon;
        a date string or a number), or None where the dataset has no clock. Default: (None, None).
        (The same hook as branch `results` declares; the csv dataset gives its file's times.)"""
        return None, None

    # ---- used by the trainer ------------------------------------------------------------------------
    def splits(self):
        if self._splits is None:
            self._splits = self.make_splits()
            missing = {"train", "val", "test"} - set(self._splits)
            if missing:
                raise ConfigError(f"{type(self).__name__}.make_splits() returned no {sorted(missing)} split")
        return self._splits

    @property
    def splits_made(self):
        """Whether `splits()` has built the splits already (a check that reads them need not build them)."""
        return self._splits is not None

    def describe(self):
        s = self.splits()
        return {"kind": self.kind, "problem": self.problem, "metric": self.metric_name,
                "input_size": self.input_size, "output_size": self.output_size,
                **{f"n_{k}": len(v) for k, v in s.items()}}


# ---- metrics the built-in datasets share --------------------------------------------------------
def rmse(prediction, truth):
    return float(np.sqrt(np.mean((np.asarray(prediction, np.float64) - truth) ** 2)))


def step_mask(split):
    """(N, T) bool: which steps of each sequence are real (all of them without lengths)."""
    n, t = split.y.shape[:2]
    if split.lengths is None:
        return np.ones((n, t), bool)
    return np.arange(t)[None, :] < split.lengths[:, None]


def accuracy(logits, split):
    """Fraction of correct argmax predictions; per-step targets count only real (unpadded) steps."""
    predicted = np.asarray(logits).argmax(axis=-1)
    correct = predicted == split.y
    if split.y.ndim == 2 and split.lengths is not None and correct.shape == split.lengths.shape + correct.shape[1:]:
        mask = step_mask(split)
        return float(correct[mask].mean())
    return float(correct.mean())


def majority_baseline(train, split):
    """Accuracy on `split` of always answering the most common class of the `train` split's targets."""
    majority = np.bincount(train.y.reshape(-1)).argmax()
    return float(np.mean(split.y == majority))


def exact_match(logits, split):
    """Fraction of sequences whose every token is right (for vec2seq and encdec)."""
    predicted = np.asarray(logits).argmax(axis=-1)
    return float((predicted == split.y).all(axis=1).mean())


def standardize(train, *others):
    """(mean, std) of the training array, and every array normalised with them (no test leak)."""
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-8
    return (mean, std), [(a - mean) / std for a in (train, *others)]


def sequence_keys(split):
    """One bytes key per sequence: its real steps (and length), so that padding does not tell copies apart."""
    if split.lengths is None:
        return [row.tobytes() for row in split.x]
    return [row[:n].tobytes() + np.int64(n).tobytes() for row, n in zip(split.x, split.lengths)]


def distinct_splits(sample, rng, sizes, rounds=100):
    """{name: Split} of the given sizes, drawn in order by `sample(rng, n)`, with no sequence in two splits.

    A small task space (a short grammar, few symbols) repeats sequences by chance; a test sequence
    seen in training measures memory, not generalisation. Rows of a later split that an earlier split
    holds are drawn again (the first split is exactly what `sample` gives).
    """
    splits, seen = {}, set()
    for name, n in sizes.items():
        split = sample(rng, n)
        for _ in range(rounds):
            again = [i for i, key in enumerate(sequence_keys(split)) if key in seen]
            if not again:
                break
            fresh = sample(rng, len(again))
            for field in ("x", "y", "lengths"):
                if getattr(split, field) is not None:
                    getattr(split, field)[again] = getattr(fresh, field)
        else:
            raise ConfigError(f"could not draw {n} {name} sequences unlike the earlier splits' in {rounds} "
                              "tries: the task has too few distinct sequences for these sizes")
        seen.update(sequence_keys(split))
        splits[name] = split
    return splits


# ---- one real series cut into next-step windows (airline, sunspots, stock) ----------------------
FORECAST_SOURCES = ("data", "zeros")


def next_step_windows(z, window, val_start, test_start):
    """Splits of windows x = z[i-window:i] (window, 1) with target y = z[i] (1,) of a 1-D series `z`,
    assigned by the position i of their target: before val_start train, then validation, from
    test_start test. Earlier windows never see a test target as a target."""
    targets = np.arange(window, len(z))
    x = np.stack([z[i - window:i] for i in targets])[:, :, None]
    split = Split(x, z[targets][:, None])
    return {"train": split.subset(targets < val_start),
            "val": split.subset((targets >= val_start) & (targets < test_start)),
            "test": split.subset(targets >= test_start)}


def series_forecast_start(z, window, test_start, source, steps):
    """`Dataset.forecast_start` for a 1-D series: the last real window before the test targets and
    their true continuation (NaN where the record ends first), or an all-zero window."""
    if source not in FORECAST_SOURCES:
        raise ConfigError(f"forecast source must be 'data' or 'zeros', got {source!r}")
    if source == "zeros":
        return np.zeros((window, 1), np.float32), None
    truth = np.full((steps, 1), np.nan, np.float32)
    known = z[test_start:test_start + steps]
    truth[:len(known), 0] = known
    return z[test_start - window:test_start, None].astype(np.float32), truth


def series_predictions(dataset, path, column, predict, steps, normalize):
    """`Dataset.predict_file` for one series cut into next-step windows (airline, sunspots): the last
    `dataset.window` values of the file's `column`, normalised by `normalize` as in training, then
    `steps` next values, each fed back as the newest input, mapped back by `dataset.denormalize`."""
    _, table = read_table(path)
    if column not in table:
        raise ConfigError(f"{path} has no column {column!r}; its columns: {', '.join(table)}")
    try:
        values = table[column].astype(np.float64)
    except ValueError:
        raise ConfigError(f"{path}: column {column!r} must hold numbers only (no gaps)") from None
    if len(values) < dataset.window:
        raise ConfigError(f"{path} has {len(values)} rows; predicting needs the last {dataset.window}")
    window = np.asarray(normalize(values[-dataset.window:]), np.float32)[:, None]
    outputs = []
    for _ in range(steps):
        next_value = np.asarray(predict(window[None], None), np.float32)[0]
        outputs.append(next_value)
        window = np.concatenate([window[1:], next_value[None]], axis=0)
    predicted = dataset.denormalize(np.asarray(outputs))[:, 0]
    return ["step", column], [[k + 1, float(v)] for k, v in enumerate(predicted)]


def one_hot(ids, size, dtype=np.float32):
    return np.eye(size, dtype=dtype)[ids]


# ---- reading a user's file --------------------------------------------------------------------------
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\t": "\t", "|": "|"}


def read_table(path, delimiter=None):
    """(names, columns) of a delimited text file with a header row: columns maps name → (rows,) str array.
    `read_rows` says how it reads, and gives each row's line number as well."""
    names, columns, _ = read_rows(path, delimiter)
    return names, columns


def read_rows(path, delimiter=None):
    """(names, columns, line numbers): `read_table`'s columns, and the (rows,) int64 line number (1-based)
    of each row in the file, for errors that name a row's line.

    The delimiter is sniffed from the first lines (comma, semicolon, tab or bar) unless given; a UTF-8
    byte-order mark is dropped; quoted fields may hold the delimiter, not a line break. Any problem is
    one ConfigError naming the file and, where it is one row's, its line: missing, unreadable, empty,
    not UTF-8, a NUL byte, a repeated column name, a quote left open, a row of the wrong width. Every
    non-empty line after the header is one row or an error: no row is lost without a word. The rows
    are parsed by NumPy's C reader (`np.loadtxt`), about a second per million short rows."""
    if delimiter is not None and delimiter not in DELIMITERS:
        raise ConfigError(f"delimiter {delimiter!r} is not one of: {', '.join(repr(d) for d in DELIMITERS)}")
    try:
        with open(path, encoding="utf-8-sig") as f:   # universal newlines: \n, \r\n and \r all end a line
            lines = f.read().split("\n")
    except FileNotFoundError:
        raise ConfigError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start}); save it as UTF-8 CSV") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    header = next((k for k, line in enumerate(lines) if line.strip()), None)
    if header is None:
        raise ConfigError(f"{path} is empty: expected a header row of column names, then data rows")
    if lines[-1] == "":
        lines.pop()   # the end of the last line, not a line
    nul = next((k for k, line in enumerate(lines) if "\0" in line), None)
    if nul is not None:   # NumPy's reader would end the field there without a word
        raise ConfigError(f"{path} line {nul + 1} holds a NUL byte: this is not a text CSV file")
    head = [line for line in lines[header:header + 20] if line.strip()]
    sep = DELIMITERS[delimiter] if delimiter else _sniff(head)
    names = [name.strip() for name in next(csv.reader([lines[header]], delimiter=sep))]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated or "" in names:
        raise ConfigError(f"{path}: the header has {'repeated' if repeated else 'empty'} column names "
                          f"{repeated or ''}; every column needs a name of its own")
    # the line number (1-based) of each row: NumPy's reader skips empty lines and nothing else
    row_lines = [k + 1 for k in range(header + 1, len(lines)) if lines[k]]
    if not row_lines:
        raise ConfigError(f"{path} has a header but no data rows")
    # a quote opened and not closed would run on over the lines after it, which would then be lost
    unclosed = next((number for number in row_lines if '"' in lines[number - 1]
                     and _leaves_a_quote_open(lines[number - 1], sep)), None)
    if unclosed is not None:
        raise ConfigError(f"{path} line {unclosed}: a quote opened and not closed; a quoted field ends on its "
                          "own line")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported above
            body = np.loadtxt(io.StringIO("\n".join(lines[header + 1:])), dtype=str, delimiter=sep,
                              comments=None, quotechar='"', ndmin=2)
    except ValueError:  # rows of different widths: find the first that differs from the header
        _raise_bad_width(path, lines, row_lines, sep, len(names))
    if len(body) != len(row_lines) or body.shape[1] != len(names):
        _raise_bad_width(path, lines, row_lines, sep, len(names))
    return names, {name: body[:, k] for k, name in enumerate(names)}, np.array(row_lines, np.int64)


def _leaves_a_quote_open(line, sep):
    """Whether a field of `line` opens a quote that the line does not close. As NumPy's reader reads
    it: a quote opens only as a field's first character; inside, "" is a quote and " closes."""
    quoted, start, k = False, True, 0
    while k < len(line):
        char = line[k]
        if quoted:
            if char == '"':
                if line[k + 1:k + 2] == '"':
                    k += 1
                else:
                    quoted = False
        elif char == sep:
            start = True
            k += 1
            continue
        elif char == '"' and start:
            quoted = True
        start = False
        k += 1
    return quoted


def _raise_bad_width(path, lines, row_lines, sep, width):
    """ConfigError naming the first row whose number of fields is not the header's `width`."""
    for number in row_lines:
        fields = next(csv.reader([lines[number - 1]], delimiter=sep), [])
        if len(fields) != width:
            raise ConfigError(f"{path} line {number} has {len(fields)} field{'s' * (len(fields) != 1)}, the header "
                              f"{width} (delimiter {sep!r}; pass delimiter=... if that is wrong)")
    raise ConfigError(f"{path}: the rows cannot be read as {width} fields each (delimiter {sep!r}; pass "
                      "delimiter=... if that is wrong)")


def _sniff(lines):
    """The candidate delimiter that splits the header into the most fields, consistently in the lines
    after; where none is consistent (a ragged row), the one that splits the header into the most, so
    that the ragged row is then named by its line."""
    best, best_width, header_best, header_width = None, 1, ",", 1
    for sep in (",", ";", "\t", "|"):
        widths = [len(row) for row in csv.reader(lines, delimiter=sep) if row]
        if widths and widths[0] > best_width and all(w == widths[0] for w in widths):
            best, best_width = sep, widths[0]
        if widths and widths[0] > header_width:
            header_best, header_width = sep, widths[0]
    return best or header_best


def sha256_of(path):
    """The hex SHA-256 of a file's bytes: what a run records to notice later that its data changed."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def warn(message):
    """One line on stderr that does not stop anything, e.g. a data file changed since a run used it."""
    print(f"warning: {message}", file=sys.stderr)
