"""Small datasets and builders shared by the trainer, regulariser and CLI tests."""
import numpy as np

from tinygrad_rnn.data import Dataset, Split


class EchoDataset(Dataset):
    """Per-step regression: y_t = x_{t-1} (a one-step memory), for exact BPTT checks."""

    kind, problem = "seq2seq", "regression"
    defaults = {"hidden": 8, "epochs": 2, "lr": 0.01, "batch_size": 8}

    def __init__(self, seed=0, T=12, n=16, lengths=False):
        super().__init__(seed)
        self.T, self.n, self.with_lengths = T, n, lengths
        self.input_size = self.output_size = 1

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.n, self.T, 1)).astype(np.float32)
        y = np.concatenate([np.zeros((self.n, 1, 1), np.float32), x[:, :-1]], axis=1)
        lengths = rng.integers(self.T // 2, self.T + 1, self.n) if self.with_lengths else None
        if lengths is not None:
            lengths[0] = self.T
            x = x * (np.arange(self.T)[None, :, None] < lengths[:, None, None])
        split = Split(x, y, lengths)
        return {"train": split, "val": split, "test": split}

    def baseline(self, split):
        return float(np.sqrt(np.mean(split.y ** 2)))
