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
"""
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
    """Base class of dataset plugins. Subclasses set the attributes below and write `make_splits`."""

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

    def denormalize(self, y):
        """Map normalised regression targets or outputs back to original units (identity by default)."""
        return y

    # ---- forecasting (time series only) ----------------------------------------------------------
    def forecast_start(self, source="data", steps=None):
        """(window (T, D), truth (K, D) or None): where a free-running forecast starts.

        `source="data"` takes the last real window before the test targets and the true continuation;
        `source="zeros"` starts from an all-zero window (no truth). Only for forecastable datasets.
        Where the record ends before `steps`, the truth's missing rows are NaN (it is always (K, D)).
        A dataset may set `forecast_steps`, the K its forecast plot uses when none is asked for.
        """
        raise ConfigError(f"dataset {getattr(self, 'plugin_name', type(self).__name__)!r} is not a "
                          "time series: it cannot forecast")

    # ---- used by the trainer ------------------------------------------------------------------------
    def splits(self):
        if self._splits is None:
            self._splits = self.make_splits()
            missing = {"train", "val", "test"} - set(self._splits)
            if missing:
                raise ConfigError(f"{type(self).__name__}.make_splits() returned no {sorted(missing)} split")
        return self._splits

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


def one_hot(ids, size, dtype=np.float32):
    return np.eye(size, dtype=dtype)[ids]
