"""Synthetic hourly weather (temperature, pressure, humidity): forecast the next K hours of temperature.

The series is synthetic, generated from the seed; its ingredients are those of real mid-latitude
weather. With h the hour of day and s = cos(2π (day − 200) / 365) the season (1 in mid-July):

    temperature  11 + 9 s  +  (4 + 2 s)(1 − ½ cloud) cos(2π (h − 15) / 24)     warmest at 15:00
    pressure     1015 − 2 s  +  0.6 cos(4π (h − 10) / 24)                        the semi-diurnal tide
    humidity     75 − 10 s  −  12 cos(2π (h − 15) / 24)                          driest in the afternoon

plus passing fronts, arriving as a Poisson process (one every `front_every` hours on average), each of
strength a ~ U(0.5, 1.5) and width w ~ U(8, 20) h; with u the hours since the front passed:

    pressure     −10 a · exp(−u² / 2(1.5w)²)                 falls ahead of the front, rises behind it
    temperature  +2.5 a · exp(−(u + w)² / 2w²)                the warm sector ahead ...
                 −6 a · σ(u/2) · exp(−max(u, 0) / 36)         ... then cold air behind, fading in ~1.5 days
    humidity     +18 a · exp(−u² / 2(0.7w)²)  −10 a · σ(u/2) · exp(−max(u, 0) / 30)   rain, then drier air
    cloud        exp(−u² / 2(1.5w)²)                          (damps the daily temperature cycle)

and slow anomalies (AR(1) processes: temperature sd 2.5 °C, pressure 5 hPa, humidity 5%, over ~8 days)
and measurement noise (0.3 °C, 0.2 hPa, 2%); humidity is clipped to [10, 100] %. So falling pressure
warns of the cold air to come, which a forecaster reading all three variables can use.

The record is `train_years` years of training data, then one year for validation and one for test.
Windows of T hours start every `stride` hours (11: prime to 24, so forecasts start at every hour
of the day in turn), each window wholly inside its own split:

    x (N, T, 5)  temperature, pressure, humidity (standardised with the training years' mean and
                 std only) and sin, cos of the hour of day (a forecaster knows the clock)
    y (N, K)     the next K hourly temperatures, standardised like the input temperature

The metric is RMSE in °C over all K hours. The baseline is persistence (the last temperature,
repeated K times); `extra_metrics` also reports climatology: the training years' mean temperature for
the target's month and hour of day.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, rmse

HOURS_A_YEAR = 365 * 24
VARIABLES = ("temperature", "pressure", "humidity")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@register_dataset("weather")
class Weather(Dataset):
    """Synthetic hourly weather with daily and yearly cycles and fronts: 6-hour temperature forecast."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "rmse", False
    baseline_name = "persistence"
    synthetic = True
    target_inputs = [0]            # input feature 0 is the standardised temperature y is made of
    defaults = {"hidden": 32, "epochs": 10, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=48, K=6, train_years=2, stride=11, front_every=96.0):
        super().__init__(seed)
        for name, value, low, high in (("T", T, 2, 24 * 30), ("K", K, 1, 72), ("train_years", train_years, 1, 20),
                                       ("stride", stride, 1, 24 * 7)):
            if not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"weather option {name} must be an integer from {low} to {high}, got {value!r}")
        if not front_every >= 12:
            raise ConfigError(f"weather option front_every (mean hours between fronts) must be >= 12, "
                              f"got {front_every!r}")
        self.T, self.K, self.train_years, self.stride, self.front_every = T, K, train_years, stride, front_every
        self.input_size, self.output_size = len(VARIABLES) + 2, K

    # ---- the record -----------------------------------------------------------------------------------
    def _raw_series(self):
        """(n, 3): temperature °C, pressure hPa, humidity % for every hour n of the whole record."""
        rng = np.random.default_rng(self.seed)
        n = (self.train_years + 2) * HOURS_A_YEAR
        t = np.arange(n, dtype=np.float64)
        hour, day = t % 24, (t / 24) % 365
        season = np.cos(2 * np.pi * (day - 200) / 365)
        daily = np.cos(2 * np.pi * (hour - 15) / 24)
        temperature = 11 + 9 * season
        pressure = 1015 - 2 * season + 0.6 * np.cos(4 * np.pi * (hour - 10) / 24)
        humidity = 75 - 10 * season - 12 * daily
        cloud = np.zeros(n)
        c = rng.exponential(self.front_every)
        while c < n + 100:
            a, w = rng.uniform(0.5, 1.5), rng.uniform(8, 20)
            near = slice(max(int(c) - 150, 0), min(int(c) + 150, n))  # a front's effects fade within days
            u = t[near] - c
            behind = sigmoid(u / 2)
            pressure[near] += -10 * a * np.exp(-u ** 2 / (2 * (1.5 * w) ** 2))
            temperature[near] += 2.5 * a * np.exp(-(u + w) ** 2 / (2 * w ** 2)) \
                - 6 * a * behind * np.exp(-np.maximum(u, 0) / 36)
            humidity[near] += 18 * a * np.exp(-u ** 2 / (2 * (0.7 * w) ** 2)) \
                - 10 * a * behind * np.exp(-np.maximum(u, 0) / 30)
            cloud[near] = np.maximum(cloud[near], np.exp(-u ** 2 / (2 * (1.5 * w) ** 2)))
            c += rng.exponential(self.front_every)
        temperature += (4 + 2 * season) * (1 - 0.5 * cloud) * daily
        values = np.stack([temperature, pressure, humidity], axis=1)
        values += self.anomalies(rng, n)
        values += rng.standard_normal((n, 3)) * [0.3, 0.2, 2.0]
        values[:, 2] = np.clip(values[:, 2], 10, 100)
        return values

    @staticmethod
    def anomalies(rng, n, sd=(2.5, 5.0, 5.0), phi=0.995, block=256):
        """(n, 3) AR(1) anomalies a_t = φ a_{t−1} + ε_t with stationary standard deviations `sd`.

        Unrolled, a_{s+j} = φ^j (φ a_{s−1} + Σ_{i≤j} φ^{−i} ε_{s+i}): one cumulative sum per block
        of steps instead of a Python loop over every hour (φ^{−block} stays small)."""
        eps = rng.standard_normal((n, 3)) * np.asarray(sd) * np.sqrt(1 - phi ** 2)
        out = np.empty((n, 3))
        a = rng.standard_normal(3) * np.asarray(sd)
        for s in range(0, n, block):
            e = eps[s:s + block]
            powers = phi ** np.arange(len(e))[:, None]
            out[s:s + len(e)] = powers * (phi * a + np.cumsum(e / powers, axis=0))
            a = out[s + len(e) - 1]
        return out

    def make_splits(self):
        values = self._raw_series()
        hour = np.arange(len(values)) % 24
        train_end = self.train_years * HOURS_A_YEAR
        self.test_start = train_end + HOURS_A_YEAR
        bounds = {"train": (0, train_end), "val": (train_end, self.test_start),
                  "test": (self.test_start, len(values))}
        # statistics of the training years only: nothing from validation or test leaks into the inputs
        self.normalizer = (values[:train_end].mean(axis=0), values[:train_end].std(axis=0))
        z = (values - self.normalizer[0]) / self.normalizer[1]
        clock = np.stack([np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)], axis=1)
        features = np.concatenate([z, clock], axis=1).astype(np.float32)
        self.climatology = self.monthly_hourly_means(values[:train_end, 0])
        self.target_hours, splits = {}, {}
        for name, (a, b) in bounds.items():
            starts = np.arange(a, b - self.T - self.K + 1, self.stride)
            inputs = starts[:, None] + np.arange(self.T)[None, :]
            targets = starts[:, None] + self.T + np.arange(self.K)[None, :]
            splits[name] = Split(features[inputs], z[targets, 0].astype(np.float32))
            self.target_hours[name] = targets
        return splits

    def series_and_times(self, name):
        self.splits()
        return None, self.target_hours[name]   # hours since the record's start, one per step ahead

    @staticmethod
    def month_and_hour(hours):
        day = (hours // 24) % 365
        return np.minimum(day * 12 // 365, 11).astype(np.int64), (hours % 24).astype(np.int64)

    def monthly_hourly_means(self, temperature):
        """(12, 24): the mean temperature of each month and hour of day over the given (training) hours."""
        month, hour = self.month_and_hour(np.arange(len(temperature)))
        sums, counts = np.zeros((12, 24)), np.zeros((12, 24))
        np.add.at(sums, (month, hour), temperature)
        np.add.at(counts, (month, hour), 1)
        return sums / np.maximum(counts, 1)

    # ---- scores (in °C) -----------------------------------------------------------------------------
    def denormalize(self, y):
        mean, std = self.normalizer
        return np.asarray(y, np.float64) * std[0] + mean[0]

    def baseline(self, split):
        last = np.repeat(split.x[:, -1:, 0], self.K, axis=1)
        return rmse(self.denormalize(last), self.denormalize(split.y))

    def extra_metrics(self, outputs, split):
        """Persistence and climatology RMSE (°C) on `split`, to read the model's RMSE against."""
        name = next((n for n, s in self.splits().items() if s is split), None)
        if name is None:  # not one of this dataset's splits: no target times to look climatology up
            return {"persistence_rmse": self.baseline(split)}
        month, hour = self.month_and_hour(self.target_hours[name])
        return {"persistence_rmse": self.baseline(split),
                "climatology_rmse": rmse(self.climatology[month, hour], self.denormalize(split.y))}
