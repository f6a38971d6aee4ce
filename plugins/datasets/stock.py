"""Synthetic stock prices with regime shifts: predict tomorrow's log-return from the last T days.

Prices follow geometric Brownian motion whose drift μ and volatility σ switch between three
regimes (calm, bull, bear) as a Markov chain that leaves its regime with probability `switch`
a day:

    r_t = log(p_t / p_{t−1}) = (μ_k − σ_k² / 2) + σ_k ε_t,    ε_t ~ N(0, 1),   k = regime on day t

    regime   μ (a day)   σ (a day)
    calm     +0.0002     0.006
    bull     +0.0010     0.010
    bear     −0.0012     0.025

x = the last T log-returns (T, 1), y = the next one (1,), both standardised with the training
days' mean and std. The days are split in time order: 70% train, 15% validation, 15% test.

A random walk is not predictable: within a regime tomorrow's return is independent of the past,
so the best a model can do is guess the regime's small drift (and recognise its volatility). Expect
RMSE barely under the baseline of predicting a zero return, and a direction accuracy (how often
the sign of the prediction is right, `extra_metrics`) near 0.5 — that is the lesson.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, next_step_windows, rmse

REGIMES = {"calm": (0.0002, 0.006), "bull": (0.0010, 0.010), "bear": (-0.0012, 0.025)}


@register_dataset("stock")
class Stock(Dataset):
    """Synthetic GBM prices with drift/volatility regimes: next log-return (unpredictable, by design)."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "rmse", False
    baseline_name = "zero return"
    synthetic = True
    defaults = {"hidden": 32, "epochs": 10, "lr": 1e-3, "batch_size": 32}

    def __init__(self, seed=0, T=30, days=2500, switch=0.01):
        super().__init__(seed)
        if not isinstance(T, int) or T < 2:
            raise ConfigError(f"stock option T (window length) must be an integer >= 2, got {T!r}")
        if not isinstance(days, int) or days < 10 * T:
            raise ConfigError(f"stock option days must be an integer >= 10*T = {10 * T}, got {days!r}")
        if not 0 <= switch <= 1:
            raise ConfigError(f"stock option switch (daily regime-change probability) must be in [0, 1], "
                              f"got {switch!r}")
        self.T, self.days, self.switch = T, days, switch
        self.input_size = self.output_size = 1

    def _raw_series(self):
        """(days,) daily log-returns; the last 15% of the windows' targets are the test split."""
        rng = np.random.default_rng(self.seed)
        drift = np.array([mu for mu, _ in REGIMES.values()])
        vol = np.array([sigma for _, sigma in REGIMES.values()])
        regime = np.empty(self.days, np.int64)
        regime[0] = rng.integers(len(REGIMES))
        for t in range(1, self.days):
            stay = rng.random() >= self.switch
            regime[t] = regime[t - 1] if stay else rng.integers(len(REGIMES))
        mu, sigma = drift[regime], vol[regime]
        return (mu - sigma ** 2 / 2) + sigma * rng.standard_normal(self.days)

    def prices(self, start=100.0):
        """The price path the returns come from: p_t = p_0 exp(r_1 + ... + r_t)."""
        return start * np.exp(np.cumsum(self._raw_series()))

    def make_splits(self):
        returns = self._raw_series()
        targets = np.arange(self.T, self.days)
        val_start = targets[int(0.70 * len(targets))]
        test_start = targets[int(0.85 * len(targets))]
        self.test_start = test_start       # returns from here on are only ever test targets
        self.normalizer = (returns[:val_start].mean(), returns[:val_start].std())
        z = ((returns - self.normalizer[0]) / self.normalizer[1]).astype(np.float32)
        return next_step_windows(z, self.T, val_start, test_start)

    def denormalize(self, y):
        mean, std = self.normalizer
        return np.asarray(y, np.float64) * std + mean

    def baseline(self, split):
        return rmse(np.zeros(split.y.shape), self.denormalize(split.y))

    def extra_metrics(self, outputs, split):
        up_predicted = self.denormalize(outputs) > 0
        up_actual = self.denormalize(split.y) > 0
        return {"direction_acc": float((up_predicted == up_actual).mean())}
