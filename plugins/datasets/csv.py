"""Your own data: sequences read from a CSV file, to forecast a column or classify whole sequences.

    --data csv:path=sales.csv,target=units,series=store,time=date,window=28,horizon=7,season=7
    --data csv:path=gestures.csv,label=gesture,series=recording,time=t,features=acc_x+acc_y+acc_z
    --data csv:path=macro.csv,target=unemp,time=year+quarter,test_from=2000,val_from=1993

The file has a header row; the delimiter (comma, semicolon, tab, bar) is sniffed or given
(`delimiter=;` or `delimiter=tab`); column lists join names with `+`. Every non-empty line is a row
or an error naming its line (a quote left open, a row of the wrong width): no row is lost without a
word. Rows are grouped by `series` (one sequence each, in natural order: s2 before s10; without it
the file is one series) and ordered by `time` within a series: numbers as numbers, ISO dates as dates
(tinygrad_rnn/times.py), a key of several columns (`time=year+quarter`) by each in turn (a
duplicate time is an error; without it, file order). Missing values (empty, NA, NaN, null) are an
error unless `missing=drop` (the row goes), `ffill` (the last value before it, within the series)
or `interpolate` (linear within the series; gaps at either end take the nearest value).

**Forecasting** (`target=COL`). Window i of a series reads rows i−W … i−1 of `features` (default:
the target alone) and predicts the target y at rows i … i+K−1 (W = `window`, K = `horizon`). The
last `test` fraction of each series' rows are test targets, the `val` fraction before them
validation; or the rows whose time is ≥ `test_from` (≥ `val_from`) are; or a column `split=COL`
says each row's split. `val=0` means no validation split. A window belongs to the split of its
targets and is dropped where they straddle two, so no target is in two splits. With g the target
transform (`transform=log`, `none`, or `auto`: log when every value of the target is positive, else
none) and a = g(y_{i−1}) the last observed value, the model sees and predicts

    x_target = g(y_{i−W..i−1}) − a       (scale=window: every window starts from its own level)
               g(y_{i−W..i−1})           (scale=global)
    y_k      = g(y_{i+k}) − a            (relative=true: the change from the last observed value)
               g(y_{i+k})                (relative=false)

each then standardised with the mean and std of the training windows (other features with those
of the training rows); the forecast is ŷ_{i+k} = g⁻¹(ẑ_k σ_k + μ_k + a) in the target's own units,
where RMSE over the K steps is reported against persistence (ŷ_{i+k} = y_{i−1}) and, with
`season=S`, seasonal naive (ŷ_{i+k} = y_{i+k−S⌈(k+1)/S⌉}). The defaults (relative=true,
transform=auto, scale=window) won on the shipped airline and sunspots series (the measurements:
bench/csv_choices.py, and the table in docs/07-your-own-data.md).

**Classification** (`label=COL`, `series` required): one sequence per series, of any length (zero-
padded, with lengths), `features` defaulting to every numeric column but series, time, label and
split. The split is stratified by label and random by series from the seed (`val`, `test`), or read
from a column `split=COL` holding train, val and test (without val rows, validation is drawn from
the training series). Features are standardised with the training series' rows. Accuracy against
the majority class; the class names are kept for `rnnrun predict`.

A run records the file's absolute path and SHA-256 (options `path`, `sha256` of its config.toml),
and warns when the file has changed since; tables name its data `csv:FILE(options)` (`data_label`).
What fitting learned (scalers, columns, class names) is `preprocessing()`, saved by the run as
preprocessing.json for `rnnrun predict`, which never refits; its forecasts continue the file's
times where they step regularly (else they are numbered 1…K), and `free_run` and
`forecast_picture` give `rnnrun forecast` and the run's forecast.png.
"""
import difflib
import inspect
import os
import re

import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, accuracy, majority_baseline, read_rows, rmse, sha256_of, warn
from tinygrad_rnn.times import TimeKey, composite_continuation, continuation

MISSING_TOKENS = ["", "na", "nan", "null", "none", "n/a"]
MISSING_SPELLINGS = [spelling for token in MISSING_TOKENS for spelling in {token, token.upper(), token.title()}]
MISSING = ("error", "drop", "ffill", "interpolate")
TRANSFORMS = ("none", "log", "auto")
SCALES = ("window", "global")
SPLIT_VALUES = ("train", "val", "test")
# the largest |value| a column may hold: the scalers and metrics square values (or their differences),
# and above about 1e154 a square overflows float64 into inf, so a run would "finish" with NaN metrics
LARGEST = 1e150
# what preprocessing.json holds besides input_size and output_size, by the run's shape (predict reads them all)
FITTED_KEYS = {"forecasting": ("transform", "features", "target_in_inputs", "feature_mean", "feature_std",
                               "window_mean", "window_std", "target_mean", "target_std"),
               "classification": ("features", "classes", "feature_mean", "feature_std")}


@register_dataset("csv")
class CSVDataset(Dataset):
    """Your own CSV file: forecast a column (target=COL) or classify sequences (label=COL, series=COL)."""

    kind = "seq2vec"
    # what the model reads, not which targets are scored: the targets are assigned by their own row
    input_options = ("window", "features", "relative", "transform", "scale")
    # a forecaster's; an instance given label= is a classifier (accuracy against the majority class)
    problem, metric_name, higher_is_better, baseline_name = "regression", "rmse", False, "persistence"
    synthetic = False              # a user's file: the seed changes the split of a classifier, not the data
    defaults = {"hidden": 32, "epochs": 100, "lr": 1e-2, "batch_size": 16}

    # an empty string is an option not given ("" for target: not a forecast; for series: one series ...)
    def __init__(self, seed=0, path="", target="", label="", series="", time="", features="",
                 window=12, horizon=1, season=0, val=0.15, test=0.15, relative=True, transform="auto",
                 scale="window", missing="error", split="", delimiter="auto", sha256="", test_from="",
                 val_from=""):
        super().__init__(seed)
        if not path:
            raise ConfigError("dataset 'csv' needs path=FILE, e.g. --data csv:path=sales.csv,target=units")
        target, label, series, time, split = map(_name, (target, label, series, time, split))
        if (target is None) == (label is None):
            raise ConfigError("dataset 'csv' needs exactly one of target=COL (forecast that column) or "
                              "label=COL (classify each series)")
        for name, value, low in (("window", window, 1), ("horizon", horizon, 1), ("season", season, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"csv option {name} must be an integer ≥ {low}, got {value!r}")
        if not 0 <= val < 1:    # val=0: no validation split (the last epoch is kept)
            raise ConfigError(f"csv option val must be a fraction from 0 (no validation split) up to 1, got {val!r}")
        if not 0 < test < 1:
            raise ConfigError(f"csv option test must be a fraction between 0 and 1, got {test!r}")
        if val + test >= 1:
            raise ConfigError(f"csv options val + test must leave rows to train on, got {val} + {test}")
        for name, value, valid in (("transform", transform, TRANSFORMS), ("scale", scale, SCALES),
                                   ("missing", missing, MISSING)):
            if value not in valid:
                raise ConfigError(f"csv option {name} must be one of {', '.join(valid)}, got {value!r}")
        if label is not None and series is None:
            raise ConfigError("csv classification needs series=COL: the column that says which rows form "
                              "one sequence")
        self.path, self.sha256 = str(path), sha256 or None
        self.target, self.label, self.series, self.time, self.split_column = target, label, series, time, split
        self.features = [str(f) for f in str(features).split("+") if f] or None
        self.window, self.horizon, self.season = window, horizon, season
        self.val, self.test = val, test
        self.times = time.split("+") if time else []     # time=year+quarter: sorted by year, then quarter
        self.test_from, self.val_from = _name(test_from), _name(val_from)
        if (self.test_from or self.val_from) and not self.times:
            raise ConfigError("csv options test_from and val_from compare each target's time: they need time=COL")
        if self.split_column and (self.test_from or self.val_from):
            raise ConfigError(f"csv option split={split} says each row's split; test_from and val_from cannot "
                              "say it too")
        if label is not None and (self.test_from or self.val_from):
            raise ConfigError("csv options test_from and val_from split a forecast by time; a classifier's "
                              "series are split by split=COL or at random")
        self.relative, self.transform, self.scale = relative, transform, scale
        self.missing, self.delimiter = missing, None if delimiter == "auto" else delimiter
        if self.label is not None:
            self.problem, self.metric_name, self.higher_is_better = "classification", "accuracy", True
            self.baseline_name = "majority class"
        self.fitted = {}

    # The sizes are known once the file is read (or the preprocessing restored): asking reads it.
    @property
    def input_size(self):
        if self._input_size is None and self.path and not self.fitted:
            self.splits()
        return self._input_size

    @input_size.setter
    def input_size(self, value):
        self._input_size = value

    @property
    def output_size(self):
        if self._output_size is None and self.path and not self.fitted:
            self.splits()
        return self._output_size

    @output_size.setter
    def output_size(self, value):
        self._output_size = value

    # ---- the file, read the same way for training and for prediction ----------------------------------
    def load(self, path, training=True):
        """The file's rows, grouped by series and ordered by time, missing values handled:
        {"ids" (S,) series names in natural order (test-2 before test-10), "codes" (n,) series of each
        row, "starts", "sizes" (S,), "values" (n, C) float64 of `columns`, "columns", "labels" and
        "splits" (n,) str or None, "times" (n,) str (a composite key's parts joined by +) or None,
        "time_key" a TimeKey of the rows or None, "lines" (n,) each row's line in the file}."""
        names, table, file_lines = read_rows(path, self.delimiter)
        wanted = [c for c in (self.target, self.series, *self.times) if c]
        for optional in (self.label, self.split_column):   # not needed to predict
            if optional and (training or optional in table):
                wanted.append(optional)
        for column in wanted + (self.features or []):
            if column not in table:
                close = difflib.get_close_matches(column, names, 1)
                raise ConfigError(f"{path} has no column {column!r}" + (f" (did you mean {close[0]!r}?)" if close
                                  else "") + f"; its columns: {', '.join(names)}")
        features = self.features or self._default_features(names, table)
        columns = list(dict.fromkeys(([self.target] if self.target else []) + features))
        n = len(table[names[0]])
        ids_text = table[self.series] if self.series else np.full(n, "")
        for column in (self.series, *self.times, *(c for c in (self.label, self.split_column) if c in wanted)):
            empty = _is_missing(table[column]) if column else None
            if column and empty.any():
                raise ConfigError(f"{path} line {file_lines[np.flatnonzero(empty)[0]]}: column {column!r} is empty; "
                                  f"every row needs its {column} (missing= fills only numeric columns)")
        ids, codes = np.unique(ids_text, return_inverse=True)
        natural = np.array(sorted(range(len(ids)), key=lambda k: _natural(str(ids[k]))), np.int64)
        rank = np.empty(len(ids), np.int64)
        rank[natural] = np.arange(len(ids))
        ids, codes = ids[natural], rank[codes.reshape(-1)]     # series in natural order: test-2 before test-10
        time_key = TimeKey([table[c] for c in self.times], self.times) if self.times else None
        if time_key:
            order = time_key.order(codes)
            same = (codes[order][1:] == codes[order][:-1]) & time_key.same(order[1:], order[:-1])
            if same.any():
                row = order[1:][same][0]
                when = "+".join(str(table[c][row]) for c in self.times)
                raise ConfigError(f"{path} line {file_lines[row]}: time {when!r} appears twice in "
                                  f"{_series_text(self.series, ids_text[row])}; times must be unique")
        else:
            order = np.argsort(codes, kind="stable")
        values = np.stack([_numbers(path, c, table[c], file_lines) for c in columns], axis=1)[order]
        lines, codes = file_lines[order], codes[order]
        labels = table[self.label][order] if self.label in wanted else None
        splits = table[self.split_column][order] if self.split_column in wanted else None
        times = _joined([table[c][order] for c in self.times]) if self.times else None
        keep = self._fill_missing(path, values, codes, lines, columns)
        if keep is not None:
            if not keep.any():
                gone = [c for k, c in enumerate(columns) if np.isnan(values[:, k]).all()]
                raise ConfigError(f"{path}: no rows left after dropping the rows with missing values (missing=drop)"
                                  + (f": column {gone[0]!r} is missing in every row" if gone else
                                     f"; every row misses one of {', '.join(map(repr, columns))}"))
            order = order[keep]
            values, codes, lines = values[keep], codes[keep], lines[keep]
            labels = None if labels is None else labels[keep]
            splits = None if splits is None else splits[keep]
            times = None if times is None else times[keep]
        sizes = np.bincount(codes, minlength=len(ids))
        present = sizes > 0          # a series whose every row was dropped is gone
        ids, sizes = ids[present], sizes[present]
        codes = np.cumsum(present)[codes] - 1
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        if time_key:
            time_key = time_key.take(order)
        return {"ids": ids, "codes": codes, "starts": starts, "sizes": sizes, "values": values,
                "columns": columns, "features": features, "labels": labels, "splits": splits, "lines": lines,
                "times": times, "time_key": time_key}

    def _default_features(self, names, table):
        if self.target:
            return [self.target]
        skip = {self.series, self.time, self.label, self.split_column}
        found = [c for c in names if c not in skip and _looks_numeric(table[c])]
        if not found:
            raise ConfigError(f"{self.path} has no numeric column to use as features besides "
                              f"{', '.join(sorted(s for s in skip if s))}; its columns: {', '.join(names)}")
        return found

    def _fill_missing(self, path, values, codes, lines, columns):
        """Handle NaNs in place by `missing`; returns the rows to keep (drop) or None."""
        gaps = np.isnan(values)
        if not gaps.any():
            return None
        if self.missing == "error":
            column = int(np.flatnonzero(gaps.any(axis=0))[0])
            where = np.sort(lines[gaps[:, column]])
            shown = ", ".join(map(str, where[:3])) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
            raise ConfigError(f"{path}: column {columns[column]!r} has missing values at line(s) {shown}; "
                              "pass missing=drop, ffill or interpolate")
        if self.missing == "drop":
            return ~gaps.any(axis=1)
        boundaries = np.flatnonzero(np.diff(codes)) + 1
        for rows in np.split(np.arange(len(codes)), boundaries):
            for column in np.flatnonzero(gaps[rows].any(axis=0)):
                known = rows[~gaps[rows, column]]
                if not len(known):
                    raise ConfigError(f"{path}: column {columns[column]!r} has no value at all in series "
                                      f"starting at line {lines[rows[0]]}; nothing to fill from")
                if self.missing == "interpolate":
                    values[rows, column] = np.interp(rows, known, values[known, column])
                else:  # ffill: the index of the last known row at or before each row (the first before it)
                    last = np.maximum.accumulate(np.where(gaps[rows, column], -1, np.arange(len(rows))))
                    values[rows, column] = values[rows[np.maximum(last, 0)], column]
                    lead = last < 0
                    values[rows[lead], column] = values[known[0], column]
        return None

    # ---- building the splits ------------------------------------------------------------------------------
    def make_splits(self):
        self._check_source()
        data = self.load(self.path)
        return self._forecasting(data) if self.target else self._classification(data)

    def _check_source(self):
        if not os.path.isfile(self.path):
            raise ConfigError(f"no such file: {self.path}" if not os.path.exists(self.path)
                              else f"{self.path} is a folder, not a file")
        digest = sha256_of(self.path)
        if self.sha256 and self.sha256 != digest:
            warn(f"{self.path} has changed since the run that recorded it (SHA-256 {self.sha256[:12]}…, "
                 f"now {digest[:12]}…): the numbers will differ")
        self.source = {"path": os.path.abspath(self.path), "sha256": digest}

    def recorded_options(self):
        return {"path": self.source["path"], "sha256": self.source["sha256"]}

    # forecasting ------------------------------------------------------------------------------------------
    def _forecasting(self, data):
        W, K = self.window, self.horizon
        short = data["sizes"] < W + K
        if short.any():
            s = int(np.flatnonzero(short)[0])
            raise ConfigError(f"{_series_text(self.series, data['ids'][s])} has {data['sizes'][s]} rows, fewer "
                              f"than window + horizon = {W + K}; lower window or horizon, or drop that series")
        y = data["values"][:, 0]
        # auto: logs where the target is positive throughout (the whole file: a log must exist for every row)
        self.fitted = {"transform": self.transform if self.transform != "auto" else
                       "log" if (y > 0).all() else "none"}
        gy = self._g(y, data["lines"])
        G = self._transformed(data, gy)
        codes, starts, sizes = data["codes"], data["starts"], data["sizes"]
        row_split = self._row_splits(data)                                # 0 train, 1 val, 2 test per row
        local = np.arange(len(y)) - starts[codes]
        i = np.flatnonzero((local >= W) & (local <= sizes[codes] - K))        # first target row of each window
        targets = i[:, None] + np.arange(K)
        # a window belongs to the split of its targets, and is dropped where they straddle two
        whole = (row_split[targets] == row_split[i][:, None]).all(axis=1)
        masks = {name: whole & (row_split[i] == k) for k, name in enumerate(SPLIT_VALUES)}
        for name, mask in masks.items():
            if not mask.any() and not (name == "val" and self.without_validation):
                raise ConfigError(f"{self.path}: no {name} window (series of {sizes.min()}–{sizes.max()} rows, "
                                  f"window {W}, horizon {K}, {self._split_text()}); use longer series, a smaller "
                                  "window or horizon, or other split options" + ("; val=0 trains without a "
                                                                                  "validation split" * (name == "val")))
        self._fit_forecasting(G, gy, i[masks["train"]], row_split == 0, data["features"])
        self._rows, self._windows, splits = {}, {}, {}
        for name, mask in masks.items():
            at = i[mask]
            splits[name] = Split(self._inputs(G, gy, at), self._targets(gy, at).astype(np.float32))
            self._rows[name] = self._references(y, gy, at, starts[codes[at]])
            self._windows[name] = {"series": data["ids"][codes[at]],
                                   "times": None if data["times"] is None else data["times"][targets[mask]]}
        self.input_size, self.output_size = G.shape[1], K
        self._file = {**data, "y": y, "first_test": int(i[masks["test"]][0])}  # for forecast pictures
        return splits

    @property
    def without_validation(self):
        """Whether the options allow an empty validation split: val=0, and no val_from naming one."""
        return self.val == 0 and not self.val_from

    def _split_text(self):
        if self.split_column:
            return f"split from column {self.split_column!r}"
        return ", ".join([f"val_from {self.val_from}" if self.val_from else f"val {self.val}",
                          f"test_from {self.test_from}" if self.test_from else f"test {self.test}"])

    def _row_splits(self, data):
        """(n,) 0 train, 1 val, 2 test for each row: from the split column, from the time cutoffs
        (test_from, val_from), or the last `test` fraction of each series' rows and the `val` before them."""
        if self.split_column:
            return self._split_values(data["splits"], data["lines"])
        codes, starts, sizes = data["codes"], data["starts"], data["sizes"]
        local = np.arange(len(codes)) - starts[codes]
        if self.test_from:  # ≥ the cutoff: the last rows of their series, since rows are ordered by time
            test = data["time_key"].at_least(self.test_from)
        else:
            test = local >= (sizes - np.round(self.test * sizes).astype(np.int64))[codes]
        if self.val_from:
            val = data["time_key"].at_least(self.val_from) & ~test
        else:
            n_test = np.bincount(codes, weights=test, minlength=len(sizes)).astype(np.int64)
            val_start = sizes - n_test - np.round(self.val * sizes).astype(np.int64)
            val = (local >= val_start[codes]) & ~test
        return np.where(test, 2, np.where(val, 1, 0))

    def _split_values(self, text, lines):
        """(n,) 0 train, 1 val, 2 test from a split column's text; its first other value is an error."""
        given = np.char.lower(np.char.strip(text))
        bad = ~np.isin(given, SPLIT_VALUES)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"{self.path} line {lines[row]}: column {self.split_column!r} holds "
                              f"{str(text[row])!r}; valid values: {', '.join(SPLIT_VALUES)}")
        return np.where(given == "test", 2, np.where(given == "val", 1, 0))

    def _g(self, y, lines):
        if self.fitted["transform"] == "log":
            bad = np.flatnonzero(y <= 0)
            if len(bad):
                raise ConfigError(f"{self.path} line {lines[bad[0]]}: transform=log needs positive values of "
                                  f"{self.target!r}, got {y[bad[0]]:g}; use transform=none")
            return np.log(y)
        return y

    def _g_inverse(self, values):
        return np.exp(values) if self.fitted["transform"] == "log" else values

    def _transformed(self, data, gy):
        """The input features (n, D), the target among them (if it is) transformed by g."""
        G = data["values"][:, [data["columns"].index(f) for f in data["features"]]]
        if self.target in data["features"]:
            G[:, data["features"].index(self.target)] = gy
        return G

    def _fit_forecasting(self, G, gy, i_train, train_rows, features):
        """Scalers from training rows and windows only: nothing later is seen."""
        W, target_in = self.window, self.target in features
        mean, std = G[train_rows].mean(axis=0), G[train_rows].std(axis=0) + 1e-8
        window_mean, window_std = 0.0, 1.0
        if target_in and self.scale == "window":
            levels = np.lib.stride_tricks.sliding_window_view(gy, W)[i_train - W] - gy[i_train - 1][:, None]
            window_mean, window_std = float(levels.mean()), float(levels.std() + 1e-8)
        changes = self._raw_targets(gy, i_train)
        self.fitted = {**self.fitted, "shape": "forecasting", "features": features, "target_in_inputs": target_in,
                       "feature_mean": mean.tolist(), "feature_std": std.tolist(),
                       "window_mean": window_mean, "window_std": window_std,
                       "target_mean": changes.mean(axis=0).tolist(),
                       "target_std": (changes.std(axis=0) + 1e-8).tolist()}

    def _inputs(self, G, gy, i):
        """x (N, W, D) float32 of the windows ending just before rows i, with the fitted scalers."""
        f, W = self.fitted, self.window
        scaled = ((G - f["feature_mean"]) / f["feature_std"]).astype(np.float32)
        window_scaled = f["target_in_inputs"] and self.scale == "window"
        column = f["features"].index(self.target) if window_scaled else None
        x = np.empty((len(i), W, G.shape[1]), np.float32)
        for step in range(W):  # one gather of whole rows per step: fast, where a (N, W) index is not
            x[:, step] = scaled[i - W + step]
            if window_scaled:
                x[:, step, column] = (gy[i - W + step] - gy[i - 1] - f["window_mean"]) / f["window_std"]
        return x

    def _raw_targets(self, gy, i):
        target = np.lib.stride_tricks.sliding_window_view(gy, self.horizon)[i]
        return target - gy[i - 1][:, None] if self.relative else target

    def _targets(self, gy, i):
        f = self.fitted
        return (self._raw_targets(gy, i) - f["target_mean"]) / f["target_std"]

    def to_units(self, outputs, anchors):
        """Model outputs (N, K), normalised, → forecasts in the target's own units; `anchors` (N,) are
        g(y) at each window's last observed row."""
        f = self.fitted
        values = np.asarray(outputs, np.float64) * f["target_std"] + f["target_mean"]
        return self._g_inverse(values + (np.asarray(anchors)[:, None] if self.relative else 0))

    def _references(self, y, gy, i, series_start):
        """What metric and baselines need per window: anchor g(y_{i−1}), truth, persistence, seasonal naive."""
        k = np.arange(self.horizon)
        reference = {"anchor": gy[i - 1],
                     "truth": y[i[:, None] + k], "persistence": np.repeat(y[i - 1][:, None], self.horizon, 1)}
        if self.season:
            back = i[:, None] + k - self.season * ((k + self.season) // self.season)
            reference["seasonal"] = y[np.maximum(back, series_start[:, None])]
        return reference

    def _split_name(self, split):
        return next(name for name, s in self.splits().items() if s is split)

    def references(self, split):
        """{"anchor", "truth", "persistence", "seasonal"}: per window of `split`, g(y) at its last observed
        row, the true targets and the two baselines' forecasts, in the target's own units."""
        return self._rows[self._split_name(split)]

    def forecasts(self, outputs, split):
        """(N, K) forecasts in the target's units for the windows of `split` (one of this dataset's)."""
        return self.to_units(outputs, self._rows[self._split_name(split)]["anchor"])

    def baselines(self, name="test"):
        """The standard ones, with seasonal naive (given `season`) in the target's units; with relative=true
        the model predicts changes, so the training mean of its targets is the mean change ("mean drift")."""
        scores = super().baselines(name)
        if self.problem == "regression":
            if self.relative and "training mean" in scores:
                scores["mean drift"] = scores.pop("training mean")
            if self.season:
                reference = self._rows[name]
                scores["seasonal naive"] = rmse(reference["seasonal"], reference["truth"])
        return scores

    def target_units(self, outputs, name):
        return self.forecasts(outputs, self.splits()[name])

    def class_names(self):
        return self.fitted["classes"] if self.problem == "classification" else None

    def series_and_times(self, name):
        """(series, times) of the windows of split `name`: each window's series id, and the time of each
        of its K targets as the file writes it (a composite key's parts joined by +); times None
        without time=COL."""
        self.splits()
        if self.problem == "classification":
            return self.series_ids(self.splits()[name]), None
        windows = self._windows[name]
        return [str(s) for s in windows["series"]], windows["times"]

    def metric(self, outputs, split):
        if self.problem == "classification":
            return accuracy(outputs, split)
        # the truth as the stored (float32) targets mapped back: the file's values to float32 precision,
        # so that outputs equal to the targets score exactly 0
        return rmse(self.forecasts(outputs, split), self.forecasts(split.y, split))

    def baseline(self, split):
        if self.problem == "classification":
            return majority_baseline(self.splits()["train"], split)
        reference = self._rows[self._split_name(split)]
        return rmse(reference["persistence"], reference["truth"])

    def extra_metrics(self, outputs, split):
        """Forecasting: the mean absolute error in the target's units, and seasonal naive's RMSE (with `season`)."""
        if self.problem == "classification":
            return {}
        errors = self.forecasts(outputs, split) - self.forecasts(split.y, split)
        extra = {"mae": float(np.mean(np.abs(errors)))}
        if self.season:
            reference = self._rows[self._split_name(split)]
            extra["seasonal_naive"] = rmse(reference["seasonal"], reference["truth"])
        return extra

    # free-running forecasts: rnnrun forecast and the run's forecast.png ---------------------------------------
    def free_run(self, predict, steps, source="data"):
        """From the first test window of the first series with one: `steps` forecasts fed back, K at a
        time, against the truth that follows (NaN past the end of the file)."""
        if self.problem == "classification":
            raise ConfigError("a csv classifier names labels: it has no series to forecast")
        if source != "data":
            raise ConfigError(f"a csv forecaster starts from its file's data (--from data), not from {source}: its "
                              "inputs are changes from the window's last value")
        self.splits()
        y, start = self._file["y"], self._file["first_test"]
        predictions = self.continue_series(y[None, start - self.window:start], predict, steps)[0]
        truth = np.full(steps, np.nan)
        end = self._file["starts"][self._file["codes"][start]] + self._file["sizes"][self._file["codes"][start]]
        known = y[start:min(end, start + steps)]
        truth[:len(known)] = known
        return predictions[:, None], truth[:, None]

    def forecast_picture(self, predict, future=None):
        """The first series with test targets: their truth and the model's forecasts (each from the window
        just before it; the last window's later steps K−1, …, 2 ahead), then
        `future` steps (default: the horizon, or a season where longer) past the file's end, fed back as
        `rnnrun predict --steps` does (only the horizon where other features are inputs)."""
        if self.problem == "classification":
            return None
        test = self.splits()["test"]
        f, W, K = self._file, self.window, self.horizon
        code = f["codes"][f["first_test"]]
        mine = self._windows["test"]["series"] == f["ids"][code]
        start, end = f["starts"][code], f["starts"][code] + f["sizes"][code]
        # each test target as forecast by the window just before it; the last window's later steps too
        forecast = self.to_units(predict(test.x[mine], None), self._rows["test"]["anchor"][mine])
        forecast = np.concatenate([forecast[:, 0], forecast[-1, 1:]])
        truth = self._rows["test"]["truth"][mine]
        truth = np.concatenate([truth[:, 0], truth[-1, 1:]])
        times = self._windows["test"]["times"]
        times = None if times is None else np.concatenate([times[mine][:, 0], times[mine][-1, 1:]])
        label = (lambda k: f"t{k + 1}") if times is None else (lambda k: str(times[k]))
        future = future or max(K, self.season)
        recent = f["y"][None, end - W:end]
        if self.fitted["features"] != [self.target]:
            future = K
            gy = self._g(f["y"], f["lines"])
            ahead = self.to_units(predict(self._inputs(self._transformed(f, gy), gy, np.array([end])), None),
                                  gy[end - 1:end])[0]
        else:
            ahead = self.continue_series(recent, predict, future)[0]
        following = (self._following_times({**f, "starts": [start], "sizes": [end - start]}, future) or
                     [[f"+{k}" for k in range(1, future + 1)]])[0]
        return {"series": str(f["ids"][code]), "time": [label(k) for k in range(len(truth))],
                "truth": truth.tolist(), "prediction": forecast.tolist(), "future_time": following,
                "future": ahead[:future].tolist(), "target": self.target}

    @classmethod
    def data_label(cls, name, options):
        """`csv:FILE(option=value,...)`: the file's name and every option that differs from its default
        (not the path's folder, nor the SHA-256, which the config keeps)."""
        defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        shown = [f"{k}={_option_text(options[k])}" for k in defaults    # in the signature's order
                 if k in options and k not in ("path", "sha256", "seed") and options[k] != defaults[k]]
        return f"{name}:{os.path.basename(str(options.get('path', '')))}({','.join(shown)})"

    # classification ---------------------------------------------------------------------------------------
    def _classification(self, data):
        codes, starts, sizes = data["codes"], data["starts"], data["sizes"]
        labels = data["labels"]
        series_label = labels[starts]
        mixed = series_label[codes] != labels
        if mixed.any():
            row = int(np.flatnonzero(mixed)[0])
            which = _series_text(self.series, data["ids"][codes[row]])
            raise ConfigError(f"{self.path} line {data['lines'][row]}: {which} has labels "
                              f"{str(series_label[codes[row]])!r} and {str(labels[row])!r}; a sequence has one label")
        classes = _sorted_names(np.unique(series_label))
        if len(classes) < 2:
            raise ConfigError(f"{self.path}: column {self.label!r} holds one class only ({classes[0]!r}); "
                              "classification needs two or more")
        index = {name: k for k, name in enumerate(classes)}
        y = np.array([index[name] for name in series_label])
        assigned = self._assign(y, data)
        train_rows = (assigned == 0)[codes]
        values = data["values"]
        self.fitted = {"shape": "classification", "features": data["features"], "classes": classes,
                       "feature_mean": values[train_rows].mean(axis=0).tolist(),
                       "feature_std": (values[train_rows].std(axis=0) + 1e-8).tolist()}
        x = self._padded(values, codes, starts, sizes)
        split = Split(x, y.astype(np.int64), sizes.astype(np.int64))
        self.input_size, self.output_size = x.shape[2], len(classes)
        self._ids = {name: data["ids"][assigned == k] for k, name in enumerate(SPLIT_VALUES)}
        return {name: split.subset(np.flatnonzero(assigned == k)) for k, name in enumerate(SPLIT_VALUES)}

    def series_ids(self, split):
        """The series names of a classification split's sequences, in its order."""
        return self._ids[self._split_name(split)].tolist()

    def _assign(self, y, data):
        """(S,) 0 train, 1 val, 2 test per series: from the split column, or stratified by label at random."""
        rng = np.random.default_rng(self.seed)
        if self.split_column:
            assigned = self._split_values(data["splits"], data["lines"])[data["starts"]]
            if not (assigned == 1).any():  # validation drawn from the training series, stratified
                train = np.flatnonzero(assigned == 0)
                for c in np.unique(y[train]):
                    members = rng.permutation(train[y[train] == c])
                    assigned[members[:int(round(self.val * len(members)))]] = 1
        else:
            assigned = np.zeros(len(y), np.int64)
            for c in range(y.max() + 1):
                members = rng.permutation(np.flatnonzero(y == c))
                n_test, n_val = int(round(self.test * len(members))), int(round(self.val * len(members)))
                assigned[members[:n_test]] = 2
                assigned[members[n_test:n_test + n_val]] = 1
        for k, name in enumerate(SPLIT_VALUES):
            if not (assigned == k).any() and not (name == "val" and self.without_validation):
                raise ConfigError(f"{self.path}: no {name} series ({len(y)} series in all, val {self.val}, "
                                  f"test {self.test}); give more series or larger fractions")
        return assigned

    def _padded(self, values, codes, starts, sizes):
        f = self.fitted
        x = np.zeros((len(sizes), int(sizes.max()), values.shape[1]), np.float32)
        x[codes, np.arange(len(codes)) - starts[codes]] = (values - f["feature_mean"]) / f["feature_std"]
        return x

    # ---- prediction from a new file, with the saved preprocessing ----------------------------------------
    def preprocessing(self):
        return {**self.fitted, "source": getattr(self, "source", None), "input_size": self.input_size,
                "output_size": self.output_size,
                "options": {k: getattr(self, k) for k in ("target", "label", "series", "time", "features", "window",
                                                          "horizon", "relative", "transform", "scale", "missing")}}

    def restore(self, preprocessing):
        # every key predict_file reads, checked here: a file missing one is damaged, not a fault of this plugin
        self.input_size, self.output_size = preprocessing["input_size"], preprocessing["output_size"]
        shape = preprocessing["shape"]
        if shape not in FITTED_KEYS:
            raise ValueError(f"shape {shape!r} is neither forecasting nor classification")
        missing = [key for key in FITTED_KEYS[shape] if key not in preprocessing]
        if missing:
            raise KeyError(missing[0])
        self.fitted = {k: v for k, v in preprocessing.items() if k not in ("source", "options")}
        self.source = preprocessing.get("source") or {}
        if not isinstance(self.source, dict):
            raise TypeError(f"source must be an object of path and sha256, got {self.source!r}")

    def predict_file(self, path, predict, steps=None, split=None):
        """`split` ("train", "val" or "test"): a classifier predicts only the series its split column marks so."""
        source = getattr(self, "source", None) or {}
        if source.get("path") and os.path.isfile(source["path"]) and sha256_of(source["path"]) != source.get("sha256"):
            warn(f"{source['path']}, which this run was trained on, has changed since")
        self.features = self.fitted["features"]   # the run's columns, in the run's order
        data = self.load(path, training=False)
        if split is not None:
            data = self._only_split(path, data, split)
        if self.fitted["shape"] == "classification":
            return self._predict_labels(data, predict)
        return self._predict_values(data, predict, steps)

    def _only_split(self, path, data, split):
        """`data` cut to the series whose split column says `split` (in their first row)."""
        if self.fitted["shape"] != "classification":
            raise ConfigError("--split picks a classification file's series by their split column; a forecast "
                              "continues every series from its end")
        if not self.split_column:
            raise ConfigError("--split needs the split column the run was trained with; this run split its "
                              "series at random (it was given no split=COL)")
        if data["splits"] is None:
            raise ConfigError(f"{path} has no column {self.split_column!r}, which --split {split} reads")
        keep = self._split_values(data["splits"], data["lines"])[data["starts"]] == SPLIT_VALUES.index(split)
        if not keep.any():
            raise ConfigError(f"{path}: no series has {split!r} in column {self.split_column!r}")
        rows = keep[data["codes"]]
        sizes = data["sizes"][keep]
        return {**data, "ids": data["ids"][keep], "sizes": sizes, "codes": (np.cumsum(keep) - 1)[data["codes"][rows]],
                "starts": np.concatenate([[0], np.cumsum(sizes)[:-1]]), "values": data["values"][rows],
                "lines": data["lines"][rows], "splits": data["splits"][rows],
                "times": None if data["times"] is None else data["times"][rows]}

    def _predict_labels(self, data, predict):
        x = self._padded(data["values"], data["codes"], data["starts"], data["sizes"])
        logits = np.asarray(predict(x, data["sizes"].astype(np.int64)), np.float64)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        classes = self.fitted["classes"]
        columns = [self.series, self.label] + [f"p_{c}" for c in classes]
        return columns, [[str(sid), classes[int(k)], *(round(float(v), 6) for v in row)]
                         for sid, k, row in zip(data["ids"], p.argmax(1), p)]

    def _predict_values(self, data, predict, steps):
        W, K = self.window, self.horizon
        short = data["sizes"] < W
        if short.any():
            s = int(np.flatnonzero(short)[0])
            raise ConfigError(f"{_series_text(self.series, data['ids'][s])} has {data['sizes'][s]} rows; "
                              f"predicting needs the last window = {W} of them")
        steps = steps or K
        y = data["values"][:, 0]
        ends = data["starts"] + data["sizes"]
        if steps <= K:
            gy = self._g(y, data["lines"])
            values = self.to_units(predict(self._inputs(self._transformed(data, gy), gy, ends), None), gy[ends - 1])
        else:
            values = self.continue_series(y[ends[:, None] + np.arange(-W, 0)], predict, steps)
        times = self._following_times(data, steps)
        when = [self.time] if times is not None else ["step"]
        columns = ([self.series] if self.series else []) + when + [self.target]
        rows = [([str(sid)] if self.series else []) + [times[s][k] if times is not None else k + 1, float(v)]
                for s, (sid, row) in enumerate(zip(data["ids"], values)) for k, v in enumerate(row[:steps])]
        return columns, rows

    def continue_series(self, recent, predict, steps):
        """(N, steps) forecasts in the target's units after each row of `recent` (N, W), the target's last
        W values: K at a time, each forecast appended and fed back as input (the target must be the
        only input: the other features' future is unknown)."""
        W, K = self.window, self.horizon
        if self.fitted["features"] != [self.target]:
            raise ConfigError(f"{steps} steps ahead feeds forecasts back as inputs, which needs the target as the "
                              f"only input; this run reads {self.fitted['features']} and predicts {K} step(s)")
        history = np.asarray(recent, np.float64)
        while history.shape[1] - W < steps:
            last = history[:, -W:]
            g = self._g(last.reshape(-1), np.zeros(last.size, np.int64))
            at = np.arange(1, len(last) + 1) * W
            more = self.to_units(predict(self._inputs(g[:, None], g, at), None), g[at - 1])
            history = np.concatenate([history, more], axis=1)
        return history[:, W:W + steps]

    def _following_times(self, data, steps):
        """(S, steps) the time values after each series' last row, where one time column steps regularly
        in every series (see tinygrad_rnn/times.py); None otherwise (the rows are then numbered 1…K)."""
        if not self.times or len(self.times) > 2:
            return None
        follow = continuation if len(self.times) == 1 else composite_continuation
        following = [follow(data["times"][start:start + size], steps)
                     for start, size in zip(data["starts"], data["sizes"])]
        return None if any(f is None for f in following) else following


# ---- reading columns ------------------------------------------------------------------------------------
def _name(value):
    """A column option: None when not given (empty), else its text (a column may be named 2019)."""
    return None if value is None or value == "" else str(value)


def _series_text(series, sid):
    return f"series {str(sid)!r}" if series else "the series"


def _is_missing(text):
    return np.isin(text, MISSING_SPELLINGS)


def _numbers(path, column, text, lines):
    """A column's float64 values, NaN where missing; a value that is no number is one error line
    (`lines`: each row's line in the file)."""
    try:
        values = text.astype(np.float64)
    except ValueError:
        missing = _is_missing(text)
        values = np.full(len(text), np.nan)
        try:
            values[~missing] = text[~missing].astype(np.float64)
        except ValueError:
            for row in np.flatnonzero(~missing):
                try:
                    float(text[row])
                except ValueError:
                    raise ConfigError(f"{path} line {lines[row]}: column {column!r} holds {str(text[row])!r}, not a "
                                      "number") from None
    bad = np.isinf(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{path} line {lines[row]}: column {column!r} holds {str(text[row])!r}, not a finite "
                          "number")
    huge = np.abs(values) > LARGEST  # NaN (missing) compares False
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise ConfigError(f"{path} line {lines[row]}: column {column!r} holds {str(text[row])!r}, too large to "
                          f"standardise (its square overflows); valid values lie within ±{LARGEST:g}: rescale "
                          "the column (other units)")
    return values


def _looks_numeric(text):
    """Whether a column's first present value is a number (its full check comes in `_numbers`)."""
    head = text[:100]
    present = head[~_is_missing(head)]
    try:
        float(present[0])
        return True
    except (IndexError, ValueError):
        return False


def _option_text(value):
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _joined(columns):
    """(n,) str: the time of each row as written, a composite key's parts joined by + (2005+3)."""
    joined = columns[0].astype(str)
    for column in columns[1:]:
        joined = np.char.add(np.char.add(joined, "+"), column.astype(str))
    return joined


def _natural(name):
    """A sort key in which the numbers inside a name count as numbers: test-2 before test-10."""
    return [int(part) if k % 2 else part for k, part in enumerate(re.split(r"(\d+)", name))]


def _all_numbers(names):
    try:
        [float(n) for n in names]
        return True
    except ValueError:
        return False


def _sorted_names(names):
    """Class names in order: numerically when they are all numbers (2 before 10), else alphabetically."""
    names = [str(n) for n in names]
    return sorted(names, key=float) if _all_numbers(names) else sorted(names)
