"""Four plugins with one defect each, which the conformance kit (`tinygrad_rnn.testing`) must catch.

Each is otherwise a correct plugin, so the check that fails is the one named for its defect. Loaded
as a plugin file by tests/test_testing_kit.py (`rnnrun check --plugin tests/broken_plugins.py`).
"""
import numpy as np

from tinygrad_rnn import ConfigError, Function, Tensor, array_module, register_cell, register_dataset
from tinygrad_rnn.data import Dataset, Split, rmse, standardize
from tinygrad_rnn.nn import Module, uniform_parameter, unroll


class WrongTanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad * (1 - y)          # the defect: tanh' is 1 - y**2


class Elman(Module):
    """h = tanh(W_ih x + b_ih + W_hh h)."""

    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.weight_ih = uniform_parameter((hidden_size, input_size), 0.5)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), 0.5)
        self.bias_ih = uniform_parameter((hidden_size,), 0.5)

    def initial_state(self, batch_size):
        w = self.weight_hh
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend),)

    def forward(self, x, state):
        h = (x.linear(self.weight_ih, self.bias_ih) + state[0].linear(self.weight_hh)).tanh()
        return h, (h,)


@register_cell("broken_backward")
class WrongBackward(Elman):
    """An Elman RNN whose tanh has a wrong backward."""

    def forward(self, x, state):
        h = WrongTanh.apply(x.linear(self.weight_ih, self.bias_ih) + state[0].linear(self.weight_hh))
        return h, (h,)


@register_cell("broken_sequence")
class WrongSequence(Elman):
    """An Elman RNN whose fast sequence() forgets the input bias that forward() adds."""

    def sequence(self, x, state, mask=None):
        bias, self.bias_ih = self.bias_ih, self.bias_ih * 0   # the defect
        try:
            return unroll(self, x, state, mask)
        finally:
            self.bias_ih = bias


class Ramp(Dataset):
    """Predict the slope of a noisy ramp (the README's example dataset)."""

    kind, problem, metric_name, baseline_name = "seq2vec", "regression", "rmse", "mean slope"
    synthetic = True

    def __init__(self, seed=0, T=10, n=200):
        super().__init__(seed)
        if T < 2 or n < 10:
            raise ConfigError(f"ramp: T must be at least 2 and n at least 10, got T={T}, n={n}")
        self.T, self.n = T, n
        self.input_size, self.output_size = 1, 1

    def rng(self):
        return np.random.default_rng(self.seed)

    def make_splits(self):
        rng = self.rng()
        slope = rng.uniform(-1, 1, (self.n, 1))
        x = slope[:, None, :] * np.linspace(0, 1, self.T)[None, :, None] + 0.05 * rng.standard_normal((self.n, self.T, 1))
        a, b = int(0.7 * self.n), int(0.85 * self.n)
        (self.mean, self.std), (ytr, yva, yte) = standardize(slope[:a], slope[a:b], slope[b:])
        x, cast = x.astype(np.float32), lambda y: y.astype(np.float32)
        return {"train": Split(x[:a], cast(ytr)), "val": Split(x[a:b], cast(yva)), "test": self.test(x, cast(yte), b)}

    def test(self, x, y, start):
        return Split(x[start:], y)

    def baseline(self, split):
        return rmse(np.zeros_like(split.y), split.y)


@register_dataset("broken_leaky")
class LeakyRamp(Ramp):
    """A ramp whose test split repeats five training sequences."""

    def test(self, x, y, start):
        x = np.concatenate([x[start:-5], x[:5]])     # the defect: rows 0-4 are training rows
        return Split(x, y)


@register_dataset("broken_seedless")
class SeedlessRamp(Ramp):
    """A generated ramp that ignores its seed."""

    def rng(self):
        return np.random.default_rng(0)               # the defect: always seed 0
