"""The adding problem (Hochreiter & Schmidhuber, 1997): add the two marked numbers of a long sequence.

Each step carries two channels: a value drawn from U(0, 1) and a marker. Exactly two steps are
marked, one in each half of the sequence; the target is the sum of their values:

    x (N, T, 2): x[:, t, 0] ~ U(0, 1),   x[:, t, 1] = 1 at steps i < T/2 and j >= T/2, else 0
    y (N, 1)   = x[:, i, 0] + x[:, j, 0]

The first marked value has to be remembered for at least T/2 steps, which plain RNNs fail to do as
T grows while LSTMs and GRUs succeed. The metric is the mean squared error; the baseline predicts
1.0 always, whose MSE is the variance of a sum of two U(0, 1) values, 2/12 ≈ 0.167. (Setting
from Le, Jaitly & Hinton, 2015; Arjovsky, Shah & Bengio, 2016.)
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split


@register_dataset("adding", default=True)  # what `rnnrun vanish` measures when no --data is given
class Adding(Dataset):
    """The adding problem: sum the two marked values of a sequence of T (long memory)."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "mse", False
    baseline_name = "always 1.0"
    synthetic = True
    # T=100: a GRU solves it in a few epochs; an LSTM (forget bias 0) sits on the 0.167 plateau for
    # about 29 epochs before it drops (seed 0), so 40 shows it. A plain RNN stays at 0.167.
    defaults = {"hidden": 32, "epochs": 40, "lr": 1e-2, "batch_size": 50}

    def __init__(self, seed=0, T=100, n_train=2000):
        super().__init__(seed)
        if not isinstance(T, int) or T < 2:
            raise ConfigError(f"adding option T (sequence length) must be an integer >= 2, got {T!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"adding option n_train must be an integer >= 4, got {n_train!r}")
        self.T, self.n_train = T, n_train
        self.input_size, self.output_size = 2, 1

    def sample(self, rng, n):
        """n sequences of the adding problem as a Split."""
        values = rng.uniform(0, 1, (n, self.T))
        half = self.T // 2
        first = rng.integers(0, half, n)
        second = rng.integers(half, self.T, n)
        markers = np.zeros((n, self.T))
        markers[np.arange(n), first] = 1
        markers[np.arange(n), second] = 1
        x = np.stack([values, markers], axis=-1).astype(np.float32)
        y = (values[np.arange(n), first] + values[np.arange(n), second])[:, None].astype(np.float32)
        return Split(x, y)

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        return {"train": self.sample(rng, self.n_train), "val": self.sample(rng, self.n_train // 4),
                "test": self.sample(rng, self.n_train // 4)}

    def metric(self, outputs, split):
        return float(np.mean((np.asarray(outputs, np.float64) - split.y) ** 2))

    def baseline(self, split):
        return self.metric(np.ones(split.y.shape), split)
