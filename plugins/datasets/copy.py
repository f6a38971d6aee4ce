"""The copy-memory task (Arjovsky, Shah & Bengio, 2016): recall S symbols after a delay of T steps.

Tokens: 0 is blank, 1 … `alphabet` are the symbols, `alphabet + 1` is the delimiter. A sequence has
T + 2S steps:

    input    a_1 … a_S   blank × (T − 1)   delimiter   blank × S
    target   blank × (T + S)                           a_1 … a_S

with a_i drawn uniformly from the alphabet. The model reads one-hot tokens and must emit a token
at every step (seq2seq classification over blank and the symbols). The metric is the accuracy on
the S recall steps only (the blanks are easy). The baseline is the memoryless strategy: blanks,
then a random symbol at each recall step, right 1/alphabet of the time (1/8 by default).
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, distinct_splits, one_hot


@register_dataset("copy")
class Copy(Dataset):
    """Copy memory: repeat S symbols after T blanks and a delimiter (per-step classification)."""

    kind, problem = "seq2seq", "classification"
    metric_name, higher_is_better = "recall_acc", True
    baseline_name = "memoryless"
    synthetic = True
    defaults = {"hidden": 64, "epochs": 25, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=10, S=5, alphabet=8, n_train=1000):
        super().__init__(seed)
        if not isinstance(T, int) or T < 1:
            raise ConfigError(f"copy option T (delay) must be an integer >= 1, got {T!r}")
        if not isinstance(S, int) or S < 1:
            raise ConfigError(f"copy option S (symbols to copy) must be an integer >= 1, got {S!r}")
        if not isinstance(alphabet, int) or alphabet < 2:
            raise ConfigError(f"copy option alphabet must be an integer >= 2, got {alphabet!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"copy option n_train must be an integer >= 4, got {n_train!r}")
        self.T, self.S, self.alphabet, self.n_train = T, S, alphabet, n_train
        self.input_size = alphabet + 2         # blank, the symbols, the delimiter
        self.output_size = alphabet + 1        # blank and the symbols

    def sample(self, rng, n):
        T, S = self.T, self.S
        symbols = rng.integers(1, self.alphabet + 1, (n, S))
        tokens = np.zeros((n, T + 2 * S), np.int64)
        tokens[:, :S] = symbols
        tokens[:, S + T - 1] = self.alphabet + 1
        targets = np.zeros((n, T + 2 * S), np.int64)
        targets[:, -S:] = symbols
        return Split(one_hot(tokens, self.input_size), targets)

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        # val and test hold no sequence of an earlier split (short sequences of few symbols repeat by chance)
        sizes = {"train": self.n_train, "val": self.n_train // 4, "test": self.n_train // 4}
        return distinct_splits(self.sample, rng, sizes)

    def metric(self, outputs, split):
        recalled = np.asarray(outputs)[:, -self.S:].argmax(axis=-1)
        return float((recalled == split.y[:, -self.S:]).mean())

    def baseline(self, split):
        guesses = np.zeros(split.y.shape, np.int64)
        rng = np.random.default_rng([self.seed, 1])     # a stream of its own: not the one the data came from
        guesses[:, -self.S:] = rng.integers(1, self.alphabet + 1, (len(split), self.S))
        return self.metric(one_hot(guesses, self.output_size), split)
