"""Square or sine? Tell noisy square waves from noisy sine waves of the same frequency (a user's dataset).

Each sequence is a wave of random frequency f (cycles per step, uniform in [0.03, 0.15]) and phase φ,
with Gaussian noise; half of them are squared off:

    s_t = sin(2π f t + φ)            class 0 (sine)
    s_t = sign(sin(2π f t + φ))      class 1 (square)
    x_t = s_t + noise · ε_t,  ε_t ~ N(0, 1);   x (N, T, 1),  y (N,) in {0, 1}

With noise near 1 a single step says little; the net has to gather evidence over the sequence.
The metric is accuracy (the `Dataset` default for classification); the baseline guesses the
training split's majority class.

    rnnrun --plugin examples/noisy_square_dataset.py --cell gru --data noisy_square --epochs 2
    rnnrun --plugin examples/noisy_square_dataset.py --cell gru --data noisy_square:noise=1.0,T=60
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split


@register_dataset("noisy_square")
class NoisySquare(Dataset):
    """Square wave or sine wave? Classify noisy waves of random frequency (seq2vec, 2 classes)."""

    kind, problem = "seq2vec", "classification"
    metric_name, higher_is_better = "accuracy", True
    baseline_name = "majority class"
    synthetic = True
    defaults = {"hidden": 16, "epochs": 5, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=30, noise=0.5, n_train=600):
        super().__init__(seed)
        if not isinstance(T, int) or T < 2:
            raise ConfigError(f"noisy_square option T (sequence length) must be an integer >= 2, got {T!r}")
        if noise < 0:
            raise ConfigError(f"noisy_square option noise must be >= 0, got {noise!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"noisy_square option n_train must be an integer >= 4, got {n_train!r}")
        self.T, self.noise, self.n_train = T, float(noise), n_train
        self.input_size, self.output_size = 1, 2  # one feature; two classes

    def sample(self, rng, n):
        """n labelled waves as a Split."""
        f = rng.uniform(0.03, 0.15, (n, 1))
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        wave = np.sin(2 * np.pi * f * np.arange(self.T)[None, :] + phase)
        label = rng.integers(0, 2, n)
        s = np.where(label[:, None] == 1, np.sign(wave), wave)
        x = s + self.noise * rng.standard_normal((n, self.T))
        return Split(x[:, :, None].astype(np.float32), label.astype(np.int64))

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        return {"train": self.sample(rng, self.n_train), "val": self.sample(rng, self.n_train // 4),
                "test": self.sample(rng, self.n_train // 4)}

    def baseline(self, split):
        majority = np.bincount(self.splits()["train"].y, minlength=2).argmax()
        return float(np.mean(split.y == majority))
