"""Solutions to the exercises of docs/04-plugins.md."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from tinygrad_rnn import ConfigError, Regulariser, Tensor, register_dataset, register_regulariser
from tinygrad_rnn.data import Dataset, Split
from tinygrad_rnn.nn import clip_grad_norm, clip_grad_value


@register_dataset("delayed_echo")
class DelayedEcho(Dataset):
    """y_t = x_{t-d} (0 for t < d), x_t ~ N(0, 1): a memory of exactly d steps (seq2seq regression).
    The baseline predicts 0 everywhere (y's mean), an RMSE of about 1."""

    kind, problem = "seq2seq", "regression"
    metric_name, baseline_name = "rmse", "always 0"
    synthetic = True
    defaults = {"hidden": 16, "epochs": 5, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=20, delay=3, n_train=200):
        super().__init__(seed)
        if not isinstance(delay, int) or not 0 <= delay < T:
            raise ConfigError(f"delayed_echo option delay must be an integer in [0, T), got {delay!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"delayed_echo option n_train must be an integer >= 4, got {n_train!r}")
        self.T, self.delay, self.n_train = T, delay, n_train
        self.input_size = self.output_size = 1

    def sample(self, rng, n):
        x = rng.standard_normal((n, self.T, 1)).astype(np.float32)
        y = np.zeros_like(x)
        y[:, self.delay:] = x[:, :self.T - self.delay]
        return Split(x, y)

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        return {"train": self.sample(rng, self.n_train), "val": self.sample(rng, self.n_train // 4),
                "test": self.sample(rng, self.n_train // 4)}

    def baseline(self, split):
        return self.metric(np.zeros_like(split.y), split)


def exercise_1():
    """Write a dataset: the delayed echo above passes every dataset check."""
    from tinygrad_rnn.testing import check_dataset
    results = check_dataset(DelayedEcho, T=12, delay=3, n_train=40)
    return f"{sum(r.status == 'pass' for r in results)} checks pass"


@register_regulariser("grad_watch")
class GradientWatch(Regulariser):
    """Records the largest |gradient entry| of each epoch as metrics['grad_abs_max']; changes nothing."""

    def __init__(self):
        self.largest = 0.0

    def after_backward(self, trainer):
        for p in trainer.model.parameters():
            if p.grad is not None:
                self.largest = max(self.largest, float(abs(p.grad).max()))

    def on_epoch_end(self, trainer, metrics):
        metrics["grad_abs_max"], self.largest = self.largest, 0.0


def exercise_2():
    """Write a regulariser that only watches: it passes the regulariser checks (among them: one that
    only watches changes nothing in the run)."""
    from tinygrad_rnn.testing import check_regulariser
    results = check_regulariser(GradientWatch)
    return f"{sum(r.status == 'pass' for r in results)} checks pass"


def exercise_3():
    """Fix wrong_backward.py (tanh' is 1 - y², not 1 - y) and gradcheck passes: exit 0, every entry agrees."""
    here = os.path.dirname(os.path.abspath(__file__))
    chapter = open(os.path.join(here, os.pardir, "04-plugins.md"), encoding="utf-8").read()
    source = re.search(r"```python\n(# wrong_backward.py\n.*?)```", chapter, re.S).group(1)
    fixed = source.replace("return grad * (1 - y)          # the bug: tanh' is 1 - y**2", "return grad * (1 - y ** 2)")
    assert fixed != source
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fixed_backward.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(fixed)
        done = subprocess.run([sys.executable, "-m", "tinygrad_rnn", "gradcheck", "--plugin", path, "--cell", "bad_rnn"],
                              capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gradients agree with finite differences" in " ".join(done.stdout.split())
    return "every gradient agrees with finite differences (exit 0)"


def exercise_4():
    """Clip by value or by norm: which keeps the gradient's direction? By norm rescales the whole
    gradient (cosine with the original exactly 1); by value clips each entry on its own, so the large
    entries shrink and the small ones do not: the direction turns."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal(100) * np.where(np.arange(100) < 5, 50.0, 1.0)   # five large entries
    cosines = {}
    for mode, clip in (("norm", clip_grad_norm), ("value", clip_grad_value)):
        p = Tensor(np.zeros(100), requires_grad=True)
        p.grad = g.copy()
        clip([p], 1.0)
        cosines[mode] = float(p.grad @ g / np.linalg.norm(p.grad) / np.linalg.norm(g))
    assert abs(cosines["norm"] - 1) < 1e-12 and cosines["value"] < 0.9
    return {mode: round(c, 3) for mode, c in cosines.items()}


if __name__ == "__main__":
    for name in sorted(n for n in dir() if n.startswith("exercise_")):
        print(name, "→", globals()[name]())
