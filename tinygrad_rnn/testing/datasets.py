"""The checks every dataset plugin must pass: the protocol of `tinygrad_rnn.data` (its table of shapes),
and what makes a score mean something: no leaks between splits, a seed that decides the data, a
baseline that a perfect model beats.
"""
import math
import warnings

import numpy as np

from ..data import KINDS, PROBLEMS, Dataset, Split, one_hot, sequence_keys
from .base import PluginCheckWarning, SkipCheck, check_bad_options, same_arrays

SPLITS = ("train", "val", "test")


def build(cls, options, seed=0):
    dataset = cls(seed=seed, **options)
    return dataset, dataset.splits()


def required(dataset):
    """The splits that must hold sequences: all three, but val where the dataset is built without one."""
    return tuple(k for k in SPLITS if not (k == "val" and dataset.without_validation))


# ---- the checks -----------------------------------------------------------------------------------
def check_declares_its_task(cls, options):
    """kind, problem, metric_name, baseline_name and higher_is_better are declared and valid."""
    assert cls.kind in KINDS, f"expected kind one of {', '.join(KINDS)}, got {cls.kind!r}"
    assert cls.problem in PROBLEMS, f"expected problem one of {', '.join(PROBLEMS)}, got {cls.problem!r}"
    if cls.kind in ("vec2seq", "encdec"):
        assert cls.problem == "classification", f"expected a {cls.kind} task to be classification (tokens), " \
                                                f"got {cls.problem!r}"
    for name in ("metric_name", "baseline_name"):
        value = getattr(cls, name)
        declared = any(name in vars(c) for c in cls.__mro__ if c not in (Dataset, object))
        assert declared and isinstance(value, str) and value, \
            f"expected the class to declare {name}, what its score is (e.g. 'rmse', 'persistence'), got {value!r}"
    assert isinstance(cls.higher_is_better, bool), f"expected higher_is_better a bool, got {cls.higher_is_better!r}"


def check_bad_options_raise_config_error(cls, options):
    """An option value out of range raises ConfigError, or the dataset builds with it: non-empty, finite splits."""
    def build_and_look(opts):
        with np.errstate(all="ignore"):
            dataset, splits = build(cls, opts)
        for key in required(dataset):
            split = splits[key]
            if not len(split) or not np.isfinite(split.x).all():
                given = ", ".join(f"{k}={v!r}" for k, v in opts.items())
                raise AssertionError(f"{given}: expected a ConfigError, got an accepted value that gives an "
                                     f"{'empty' if not len(split) else 'non-finite'} {key} split")
    check_bad_options(cls, options, build_and_look)


def check_splits_exist(cls, options):
    """splits() gives non-empty train, val and test Splits whose x, y (and lengths) have one row per sequence."""
    dataset, splits = build(cls, options)
    for key in SPLITS:
        split = splits[key]
        assert isinstance(split, Split), f"{key}: expected a tinygrad_rnn.data.Split, got {type(split).__name__}"
        assert len(split.x) > 0 or key not in required(dataset), f"{key}: expected at least one sequence, got none"
        rows = {"x": len(split.x), "y": len(split.y)}
        if split.lengths is not None:
            rows["lengths"] = len(split.lengths)
        assert len(set(rows.values())) == 1, f"{key}: expected one row per sequence in each array, got {rows}"


def check_shapes_and_dtypes(cls, options):
    """Each split has the shapes and dtypes its kind requires (the table in tinygrad_rnn.data): float32
    inputs, int64 class targets, lengths within T with zero padding after them."""
    dataset, splits = build(cls, options)
    for key in SPLITS:
        s = splits[key]
        what = f"{key} ({dataset.kind}, {dataset.problem})"
        x_dims = 2 if dataset.kind == "vec2seq" else 3
        assert s.x.dtype == np.float32 and s.x.ndim == x_dims, \
            f"{what}: expected x float32 with {x_dims} axes, got {s.x.dtype} {s.x.shape}"
        classes = dataset.problem == "classification"
        want = np.int64 if classes else np.float32
        y_dims = {"seq2vec": 1 if classes else 2, "seq2seq": 2 if classes else 3}.get(dataset.kind, 2)
        assert s.y.dtype == want and s.y.ndim == y_dims, \
            f"{what}: expected y {np.dtype(want)} with {y_dims} axes, got {s.y.dtype} {s.y.shape}"
        if dataset.kind == "seq2seq":
            assert s.y.shape[:2] == s.x.shape[:2], f"{what}: expected y's first two axes {s.x.shape[:2]} " \
                                                   f"(a target every step), got {s.y.shape[:2]}"
        if s.lengths is not None:
            t = s.x.shape[1]
            assert np.issubdtype(s.lengths.dtype, np.integer), f"{key}: expected integer lengths, got {s.lengths.dtype}"
            assert s.lengths.min() >= 1 and s.lengths.max() <= t, \
                f"{key}: expected lengths within [1, {t}], got [{s.lengths.min()}, {s.lengths.max()}]"
            padding = np.arange(t)[None, :] >= s.lengths[:, None]
            assert not s.x[padding].any(), f"{key}: expected x zero after each sequence's length, found " \
                                           f"{int((s.x[padding] != 0).any(axis=-1).sum())} nonzero padded steps"


def check_sizes_match_the_arrays(cls, options):
    """input_size is x's last axis; output_size is y's last axis (regression) or more than every class id."""
    dataset, splits = build(cls, options)
    for name in ("input_size", "output_size"):
        value = getattr(dataset, name)
        assert isinstance(value, (int, np.integer)) and value >= 1, f"expected {name} a positive int, got {value!r}"
    for key in SPLITS:
        s = splits[key]
        assert s.x.shape[-1] == dataset.input_size, \
            f"{key}: expected x's last axis to be input_size {dataset.input_size}, got {s.x.shape[-1]}"
        if dataset.problem == "regression":
            assert s.y.shape[-1] == dataset.output_size, \
                f"{key}: expected y's last axis to be output_size {dataset.output_size}, got {s.y.shape[-1]}"
        else:
            assert s.y.min() >= 0 and s.y.max() < dataset.output_size, \
                f"{key}: expected class ids in [0, output_size = {dataset.output_size}), got [{s.y.min()}, {s.y.max()}]"


def check_values_are_finite(cls, options):
    """No NaN or inf in any x or y."""
    _, splits = build(cls, options)
    for key in SPLITS:
        for name in ("x", "y"):
            a = getattr(splits[key], name)
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                bad = int((~np.isfinite(a)).sum())
                raise AssertionError(f"{key}.{name}: expected finite values, got {bad} NaN or inf")


def check_same_seed_same_data(cls, options):
    """Two datasets built with the same seed give identical arrays (same --seed, same numbers)."""
    (_, a), (_, b) = build(cls, options, seed=3), build(cls, options, seed=3)
    for key in SPLITS:
        for name in ("x", "y", "lengths"):
            u, v = getattr(a[key], name), getattr(b[key], name)
            if (u is None) != (v is None) or (u is not None and not same_arrays(u, v)):
                raise AssertionError(f"{key}.{name}: expected identical arrays from seed 3 twice, got different ones "
                                     "(draw from np.random.default_rng(self.seed), not np.random's global state)")


def check_seed_changes_the_data(cls, options):
    """A new seed gives new data where the data is generated (synthetic = True); a dataset that does
    not say so and ignores its seed gets a warning."""
    (_, a), (_, b) = build(cls, options, seed=0), build(cls, options, seed=1)
    same = all(same_arrays(a[k].x, b[k].x) and same_arrays(a[k].y, b[k].y) for k in SPLITS)
    if not same:
        return
    if cls.synthetic:
        raise AssertionError("expected seeds 0 and 1 to generate different data (synthetic = True), got "
                             "identical splits: the seed is ignored")
    if not any("synthetic" in vars(c) for c in cls.__mro__ if c not in (Dataset, object)):
        warnings.warn("seeds 0 and 1 give identical splits: right for a fixed real data set (say so with "
                      "synthetic = False), a bug if the data is generated (set synthetic = True)", PluginCheckWarning)


def check_no_sequence_in_two_splits(cls, options):
    """No input sequence appears in two splits (a test sequence seen in training is a leak)."""
    _, splits = build(cls, options)
    seen = {}
    for key in SPLITS:
        for i, k in enumerate(sequence_keys(splits[key])):
            seen.setdefault(k, {}).setdefault(key, i)
    shared = [where for where in seen.values() if len(where) > 1]
    if shared:
        pairs = {}
        for where in shared:
            names = sorted(where, key=SPLITS.index)
            pairs[" and ".join(names)] = pairs.get(" and ".join(names), 0) + 1
        first = ", ".join(f"{k} row {i}" for k, i in shared[0].items())
        raise AssertionError("expected every sequence in one split only, got "
                             + "; ".join(f"{n} in both {p}" for p, n in pairs.items()) + f" (first: {first})")


def check_windows_share_no_target(cls, options):
    """For a windowed series (forecastable: y is the next steps of x) no target step is a target in two
    splits, identified by the window of the series that ends at it."""
    if not cls.forecastable:
        raise SkipCheck("not a windowed series (forecastable = False)")
    _, splits = build(cls, options)
    owner = {}
    for key in SPLITS:
        s = splits[key]
        if s.x.ndim != 3 or s.y.ndim != 2 or s.y.shape[1] % s.x.shape[2]:
            raise SkipCheck(f"y {s.y.shape} is not the next steps of x {s.x.shape}")
        t, d = s.x.shape[1:]
        steps = s.y.shape[1] // d
        for i in range(len(s.x)):
            series = np.concatenate([s.x[i], s.y[i].reshape(steps, d)])
            for k in range(steps):  # target step k, with the t steps of the series that lead to it
                where = owner.setdefault(series[k + 1:t + k + 1].tobytes(), (key, i))
                if where[0] != key:
                    raise AssertionError(f"expected each target step in one split only; {key} row {i} step {k} "
                                         f"is also a target of {where[0]} row {where[1]}")


def perfect_outputs(dataset, split):
    """What a flawless model would output: the targets, or logits that pick them."""
    if dataset.problem == "classification":
        return one_hot(split.y, dataset.output_size) * 100
    return split.y.copy()


def check_perfect_prediction_beats_the_baseline(cls, options):
    """The baseline is finite, and the targets themselves score at least as well as it on val and test."""
    dataset, splits = build(cls, options)
    for key in ("val", "test")[1 if "val" not in required(dataset) else 0:]:
        split = splits[key]
        baseline = float(dataset.baseline(split))
        assert math.isfinite(baseline), f"{key}: expected a finite baseline, got {baseline}"
        perfect = float(dataset.metric(perfect_outputs(dataset, split), split))
        better = perfect >= baseline if dataset.higher_is_better else perfect <= baseline
        assert math.isfinite(perfect) and better, \
            f"{key}: expected a perfect prediction's {dataset.metric_name} to be at least as good as the " \
            f"baseline's {baseline:.6g} ({'higher' if dataset.higher_is_better else 'lower'} is better), " \
            f"got {perfect:.6g}"


CHECKS = [check_declares_its_task, check_bad_options_raise_config_error, check_splits_exist, check_shapes_and_dtypes,
          check_sizes_match_the_arrays, check_values_are_finite, check_same_seed_same_data,
          check_seed_changes_the_data, check_no_sequence_in_two_splits, check_windows_share_no_target,
          check_perfect_prediction_beats_the_baseline]
