"""A planted dataset whose test split is adversarial to its validation split (issue 25's check that
every chooser chooses on validation).

The test split holds the very same windows as the validation split, but its score is reversed:

    val rmse  = RMSE(outputs, y)          test rmse = REVERSED − RMSE(outputs, y)

so the epoch, run, configuration or trial with the best validation score has the *worst* test score,
and any chooser that peeks at the test split picks a different one. Loaded with --plugin.
"""
import numpy as np

from tinygrad_rnn import register_dataset
from tinygrad_rnn.data import Dataset, Split, rmse

REVERSED = 10.0


@register_dataset("adversarial")
class Adversarial(Dataset):
    """Sum of a 5-step window; the test score is the validation score reversed."""

    kind, problem = "seq2vec", "regression"
    metric_name, higher_is_better = "rmse", False
    baseline_name = "zero"
    defaults = {"hidden": 4, "epochs": 4, "lr": 0.05, "batch_size": 16}

    def __init__(self, seed=0, n=64):
        super().__init__(seed)
        self.n = n
        self.input_size = self.output_size = 1

    def make_splits(self):
        rng = np.random.default_rng(0)  # the same data for every seed: runs and seeds are comparable
        x = rng.standard_normal((self.n + self.n // 2, 5, 1)).astype(np.float32)
        y = x.sum(axis=1) / np.sqrt(5)
        val = Split(x[self.n:], y[self.n:])
        return {"train": Split(x[:self.n], y[:self.n]), "val": val, "test": Split(val.x.copy(), val.y.copy())}

    def metric(self, outputs, split):
        error = rmse(outputs, split.y)
        return REVERSED - error if split is self.splits()["test"] else error

    def baseline(self, split):
        return self.metric(np.zeros_like(split.y), split)
