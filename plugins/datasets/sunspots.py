"""Yearly mean sunspot numbers, 1700–2008: forecast next year's from the last `window` years.

Source: the yearly sunspot record as shipped by statsmodels (`statsmodels.datasets.sunspots`),
from the SILSO / NGDC record (public domain), 309 rows, in `data/sunspots_yearly_1700_2008.csv`.

The ~11-year cycle with varying amplitude is a classic test of nonlinear forecasting.

    z_i = (s_i − μ) / σ,    μ, σ from the training years only
    x = z_{i−window} ... z_{i−1}  (window, 1),    y = z_i  (1,)

Windows are split by the year of their target: the last `test_years` targets are the test split,
the `val_years` before them validation, the rest training. The metric is RMSE in sunspot numbers;
the baseline is persistence (next year equals this year).
"""
from pathlib import Path

import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, next_step_times, next_step_windows, rmse, series_forecast_start, series_predictions

DATA = Path(__file__).with_name("data") / "sunspots_yearly_1700_2008.csv"


@register_dataset("sunspots")
class Sunspots(Dataset):
    """Yearly sunspot numbers 1700–2008 (SILSO, via statsmodels): next-year forecast."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "rmse", False
    baseline_name = "persistence"
    forecastable = True
    input_options = ("window",)    # the test and validation targets are the same whatever the window
    synthetic = False              # a fixed record: the seed changes nothing in the data
    defaults = {"hidden": 32, "epochs": 100, "lr": 1e-2, "batch_size": 16}

    def __init__(self, seed=0, window=20, test_years=40, val_years=40):
        super().__init__(seed)
        if not isinstance(window, int) or not 2 <= window <= 100:
            raise ConfigError(f"sunspots option window must be an integer from 2 to 100 years, got {window!r}")
        for name, value in (("test_years", test_years), ("val_years", val_years)):
            if not isinstance(value, int) or not 1 <= value <= 80:
                raise ConfigError(f"sunspots option {name} must be an integer from 1 to 80, got {value!r}")
        self.window, self.test_years, self.val_years = window, test_years, val_years
        self.input_size = self.output_size = 1

    def _raw_series(self):
        """(309,) sunspot numbers; the last `test_years` values are the test targets."""
        return np.loadtxt(DATA, delimiter=",", skiprows=1, usecols=1, dtype=np.float64)

    def make_splits(self):
        spots = self._raw_series()
        test_start = len(spots) - self.test_years
        val_start = test_start - self.val_years
        self.normalizer = (spots[:val_start].mean(), spots[:val_start].std())
        z = ((spots - self.normalizer[0]) / self.normalizer[1]).astype(np.float32)
        self._z, self.test_start = z, test_start
        self._times = next_step_times(np.loadtxt(DATA, delimiter=",", skiprows=1, usecols=0, dtype=str),
                                      self.window, val_start, test_start)
        return next_step_windows(z, self.window, val_start, test_start)

    def series_and_times(self, name):
        self.splits()
        return None, self._times[name]   # the year of each target

    def denormalize(self, y):
        mean, std = self.normalizer
        return np.asarray(y, np.float64) * std + mean

    def baseline(self, split):
        return rmse(self.denormalize(split.x[:, -1]), self.denormalize(split.y))

    def forecast_start(self, source="data", steps=None):
        self.splits()  # NaN truth past 2008
        return series_forecast_start(self._z, self.window, self.test_start, source, steps or self.forecast_steps)

    # ---- rnnrun predict: the next values after a file of the same shape ------------------------------
    def preprocessing(self):
        return {"normalizer": [float(v) for v in self.normalizer], "input_size": 1, "output_size": 1}

    def restore(self, preprocessing):
        self.normalizer = tuple(preprocessing["normalizer"])

    def predict_file(self, path, predict, steps=None):
        mean, std = self.normalizer
        return series_predictions(self, path, "sunactivity", predict, steps or 1, lambda p: (p - mean) / std)
