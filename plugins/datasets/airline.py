"""Monthly international airline passengers, 1949–1960: forecast next month from the last year.

Source: Box, Jenkins & Reinsel, *Time Series Analysis: Forecasting and Control*, Series G
(thousands of passengers a month, January 1949 – December 1960, 144 rows), shipped in
`data/airline_passengers_1949_1960.csv`.

The series grows and its seasonal swing grows with it, so it is modelled in logs:

    z_i = (log p_i − μ) / σ,    μ, σ from the training months only
    x = z_{i−window} ... z_{i−1}  (window, 1),    y = z_i  (1,)

Windows are split by the month of their target: the last `test_months` targets are the test split,
the `val_months` before them validation, the rest training. The metric is RMSE in passengers
(thousands) on the test months; the baseline is the seasonal-naive forecast p_i = p_{i−12}.
"""
from pathlib import Path

import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, next_step_times, next_step_windows, rmse, series_forecast_start, series_predictions

DATA = Path(__file__).with_name("data") / "airline_passengers_1949_1960.csv"


@register_dataset("airline")
class Airline(Dataset):
    """Monthly airline passengers 1949–1960 (Box & Jenkins series G): next-month forecast."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "rmse", False
    baseline_name = "seasonal naive"
    forecastable = True
    input_options = ("window",)    # the test and validation targets are the same whatever the window
    synthetic = False              # a fixed record: the seed changes nothing in the data
    forecast_steps = 24
    season = 12                    # monthly data: the seasonal-naive baseline looks back a year
    defaults = {"hidden": 32, "epochs": 150, "lr": 1e-2, "batch_size": 16}

    def __init__(self, seed=0, window=12, test_months=24, val_months=12):
        super().__init__(seed)
        if not isinstance(window, int) or not 12 <= window <= 48:
            raise ConfigError(f"airline option window must be an integer from 12 to 48 months "
                              f"(the seasonal-naive baseline needs a year), got {window!r}")
        for name, value in (("test_months", test_months), ("val_months", val_months)):
            if not isinstance(value, int) or not 1 <= value <= 36:
                raise ConfigError(f"airline option {name} must be an integer from 1 to 36, got {value!r}")
        self.window, self.test_months, self.val_months = window, test_months, val_months
        self.input_size = self.output_size = 1

    def _raw_series(self):
        """(144,) passengers (thousands); the last `test_months` values are the test targets."""
        return np.loadtxt(DATA, delimiter=",", skiprows=1, usecols=1, dtype=np.float64)

    def make_splits(self):
        passengers = self._raw_series()
        test_start = len(passengers) - self.test_months
        val_start = test_start - self.val_months
        log = np.log(passengers)
        # μ and σ from the months the training windows see (inputs and targets), nothing later
        self.normalizer = (log[:val_start].mean(), log[:val_start].std())
        z = ((log - self.normalizer[0]) / self.normalizer[1]).astype(np.float32)
        self._z, self.test_start = z, test_start
        self._times = next_step_times(np.loadtxt(DATA, delimiter=",", skiprows=1, usecols=0, dtype=str),
                                      self.window, val_start, test_start)
        return next_step_windows(z, self.window, val_start, test_start)

    def series_and_times(self, name):
        self.splits()
        return None, self._times[name]   # the month of each target

    def denormalize(self, y):
        mean, std = self.normalizer
        return np.exp(np.asarray(y, np.float64) * std + mean)

    def baseline(self, split):
        # the value 12 months before the target sits 12 steps from the end of the window
        return rmse(self.denormalize(split.x[:, -12]), self.denormalize(split.y))

    def forecast_start(self, source="data", steps=None):
        self.splits()  # NaN truth past December 1960
        return series_forecast_start(self._z, self.window, self.test_start, source, steps or self.forecast_steps)

    # ---- rnnrun predict: the next values after a file of the same shape ------------------------------
    def preprocessing(self):
        return {"normalizer": [float(v) for v in self.normalizer], "input_size": 1, "output_size": 1}

    def restore(self, preprocessing):
        self.normalizer = tuple(preprocessing["normalizer"])

    def predict_file(self, path, predict, steps=None):
        mean, std = self.normalizer
        return series_predictions(self, path, "passengers", predict, steps or 1, lambda p: (np.log(p) - mean) / std)
