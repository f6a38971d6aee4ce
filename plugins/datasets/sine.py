"""Windows of a noisy sine wave: predict the next value from the last T.

Each sequence is a fresh wave with its own frequency f (cycles per step, uniform in
[freq_min, freq_max]) and phase φ (uniform in [0, 2π)), plus Gaussian noise:

    s_t = sin(2π f t + φ) + noise · ε_t,    ε_t ~ N(0, 1)
    x = s_0 ... s_{T-1}  (T, 1),    y = s_T  (1,)

so the net has to infer the frequency from the window before it can extrapolate. The values
already lie in about [-1, 1], so they are used as they are (no normalisation). The baseline is
persistence: predict that the next value equals the last one.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, rmse


@register_dataset("sine")
class Sine(Dataset):
    """Noisy sine waves of random frequency and phase: next-step regression (time series)."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "rmse", False
    baseline_name = "persistence"
    forecastable = True
    synthetic = True
    forecast_steps = 50
    defaults = {"hidden": 32, "epochs": 30, "lr": 5e-3, "batch_size": 32}

    def __init__(self, seed=0, T=20, noise=0.05, freq_min=0.03, freq_max=0.12, n_train=1000):
        super().__init__(seed)
        if not isinstance(T, int) or T < 2:
            raise ConfigError(f"sine option T (window length) must be an integer >= 2, got {T!r}")
        if noise < 0:
            raise ConfigError(f"sine option noise must be >= 0, got {noise!r}")
        if not 0 < freq_min <= freq_max <= 0.5:
            raise ConfigError(f"sine options need 0 < freq_min <= freq_max <= 0.5 (cycles per step), "
                              f"got freq_min={freq_min!r}, freq_max={freq_max!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"sine option n_train must be an integer >= 4, got {n_train!r}")
        self.T, self.noise, self.freq_min, self.freq_max, self.n_train = T, noise, freq_min, freq_max, n_train
        self.input_size = self.output_size = 1

    def waves(self, rng, n, length):
        """(n, length, 1) float32: n noisy waves of random frequency and phase."""
        f = rng.uniform(self.freq_min, self.freq_max, (n, 1))
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        t = np.arange(length)[None, :]
        s = np.sin(2 * np.pi * f * t + phase) + self.noise * rng.standard_normal((n, length))
        return s[:, :, None].astype(np.float32)

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        splits = {}
        for name, n in (("train", self.n_train), ("val", self.n_train // 4), ("test", self.n_train // 4)):
            s = self.waves(rng, n, self.T + 1)
            splits[name] = Split(s[:, :-1], s[:, -1])
        return splits

    def baseline(self, split):
        return rmse(split.x[:, -1], split.y)

    def forecast_start(self, source="data", steps=None):
        steps = steps or self.forecast_steps
        if source not in ("data", "zeros"):
            raise ConfigError(f"forecast source must be 'data' or 'zeros', got {source!r}")
        if source == "zeros":
            return np.zeros((self.T, 1), np.float32), None
        # one more wave, drawn after the splits' so it is unseen in training
        s = self.waves(np.random.default_rng([self.seed, 1]), 1, self.T + steps)[0]
        return s[:self.T], s[self.T:]
