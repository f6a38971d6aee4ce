"""Car trajectories: from the last T noisy GPS fixes, forecast the next K positions.

Positions are planar metres east and north (a local projection of latitude and longitude), one fix
a second. Each car follows the constant-turn-rate-and-velocity (CTRV) model of vehicle tracking,
with its turn rate changing once, at a random moment, in half the trajectories:

    θ_{t+1} = θ_t + ω_t,    v_{t+1} = v_t + 0.1 ε_t,    p_{t+1} = p_t + v_t (cos θ_t, sin θ_t)
    v_0 ~ U(5, 15) m/s,   ω ~ U(−0.15, 0.15) rad/s,   observed fix = p_t + noise · N(0, I)

Every trajectory is shifted so its last observed fix is the origin (where a car is does not matter,
only how it moves), then scaled by one length s, the std of the training inputs:

    x (N, T, 2) = fixes t−T+1 … t,    y (N, 2K) = fixes t+1 … t+K, flattened (x1, y1, x2, y2, ...)

The metric is the average displacement error (ADE): the mean distance in metres between forecast
and observed future positions. The baseline is constant-velocity extrapolation from the last two
fixes, p_{t+k} = p_t + k (p_t − p_{t−1}) — strong on straight roads, hurt by noise and turns.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split


@register_dataset("trajectory")
class Trajectory(Dataset):
    """Car trajectories (CTRV motion, noisy fixes): forecast the next K positions; ADE in metres."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "ade", False
    baseline_name = "constant velocity"
    synthetic = True
    defaults = {"hidden": 32, "epochs": 20, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=20, K=5, noise=1.0, n_train=1000):
        super().__init__(seed)
        if not isinstance(T, int) or T < 2:
            raise ConfigError(f"trajectory option T (observed fixes) must be an integer >= 2, got {T!r}")
        if not isinstance(K, int) or K < 1:
            raise ConfigError(f"trajectory option K (positions to forecast) must be an integer >= 1, got {K!r}")
        if noise < 0:
            raise ConfigError(f"trajectory option noise (metres) must be >= 0, got {noise!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"trajectory option n_train must be an integer >= 4, got {n_train!r}")
        self.T, self.K, self.noise, self.n_train = T, K, noise, n_train
        self.input_size, self.output_size = 2, 2 * K
        self.test_start = n_train + n_train // 4   # rows of `_raw()` from here on are the test split

    def _raw(self):
        """(N, T + K, 2) observed fixes in metres: training rows, then validation, then test."""
        rng = np.random.default_rng(self.seed)
        n, steps = self.n_train + 2 * (self.n_train // 4), self.T + self.K
        turn, new_turn = rng.uniform(-0.15, 0.15, (2, n, 1))
        changes = rng.random((n, 1)) < 0.5
        after = np.arange(steps)[None, :] >= rng.integers(0, steps, (n, 1))   # from the moment of change
        turn = np.where(changes & after, new_turn, turn)
        heading = rng.uniform(0, 2 * np.pi, (n, 1)) + np.cumsum(turn, axis=1)
        speed = rng.uniform(5, 15, (n, 1)) + np.cumsum(0.1 * rng.standard_normal((n, steps)), axis=1)
        step = speed[:, :, None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        start = rng.uniform(-500, 500, (n, 1, 2))
        path = start + np.cumsum(step, axis=1)
        return path + self.noise * rng.standard_normal(path.shape)

    def make_splits(self):
        fixes = self._raw()
        fixes = fixes - fixes[:, self.T - 1:self.T]                # the last observed fix at the origin
        x, future = fixes[:, :self.T], fixes[:, self.T:]
        n_val = self.n_train // 4
        self.normalizer = (0.0, float(x[:self.n_train].std()))  # (mean, s): one length for both axes
        scale = self.normalizer[1]
        split = Split((x / scale).astype(np.float32), (future / scale).reshape(len(x), -1).astype(np.float32))
        return {"train": split.subset(slice(0, self.n_train)),
                "val": split.subset(slice(self.n_train, self.n_train + n_val)),
                "test": split.subset(slice(self.test_start, None))}

    def denormalize(self, y):
        mean, scale = self.normalizer
        return np.asarray(y, np.float64) * scale + mean

    def metric(self, outputs, split):
        forecast = self.denormalize(outputs).reshape(len(split), self.K, 2)
        truth = self.denormalize(split.y).reshape(len(split), self.K, 2)
        return float(np.linalg.norm(forecast - truth, axis=-1).mean())

    def baseline(self, split):
        last, before = split.x[:, -1], split.x[:, -2]
        ahead = np.arange(1, self.K + 1)[None, :, None]
        forecast = last[:, None] + ahead * (last - before)[:, None]
        return self.metric(forecast.reshape(len(split), -1), split)
