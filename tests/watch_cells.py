"""What the tests of the compiled tape's watch share (tests/test_tape_watch*.py): a small cell to build on,
and modules made in memory, as a plugin's other files would be."""
import sys
import textwrap
import types

import numpy as np

from tinygrad_rnn import Tensor
from tinygrad_rnn.nn import Module, compile_cell, uniform_parameter, unroll


class Base(Module):
    """h = f(x W_ihᵀ + h W_hhᵀ), f left to each test's forward (`self.pre` is the pre-activation)."""

    def __init__(self, input_size=2, hidden_size=3):
        self.hidden_size = hidden_size
        self.weight_ih = uniform_parameter((hidden_size, input_size), 0.5)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), 0.5)

    def initial_state(self, batch_size):
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=self.weight_hh.dtype),)

    def pre(self, x, state):
        return x @ self.weight_ih.T + state[0] @ self.weight_hh.T


def library(name, source, **names):
    """A module named `name`, registered in sys.modules (so `import name` finds it), running `source`:
    another file, as far as the watch can tell."""
    module = types.ModuleType(name)
    module.__dict__.update(names)
    sys.modules[name] = module
    exec(textwrap.dedent(source), module.__dict__)
    return module


def compiled_and_composed(cell, x):
    """The outputs of one compiled sequence and of the composed unroll, as NumPy arrays."""
    outputs = []
    for runner in (compile_cell(cell).sequence, lambda x, s: unroll(cell, x, s)):
        out, _ = runner(x, cell.initial_state(x.shape[0]))
        outputs.append(out.numpy())
    return outputs


def last_watch(cell):
    """The watch of the tape the cell's last compiled sequence used."""
    return next(reversed(compile_cell(cell).tapes.values())).watch


def follows_the_change(cell, change, restore=lambda: None):
    """One compiled call, `change()`, then the compiled answer must be the composed one, which the change
    must have moved (a case whose change does nothing could not fail). The failure says what the watch
    said: complete and unchanged() both True is a stale tape the watch let through."""
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    compiled, before = compiled_and_composed(cell, x)
    np.testing.assert_allclose(compiled, before, rtol=1e-12, atol=1e-12)
    try:
        change()
        watch = last_watch(cell)
        complete, unchanged = watch.complete, watch.unchanged()
        compiled, after = compiled_and_composed(cell, x)
        assert not np.allclose(after, before), "the change does not change the composed answer"
        np.testing.assert_allclose(compiled, after, rtol=1e-12, atol=1e-12,
                                   err_msg=f"stale tape: watch.complete={complete}, unchanged()={unchanged}")
    finally:
        restore()


def outputs_and_gradients(cell, x):
    """[(outputs, dL/dW_hh)] of one compiled sequence and of the composed unroll, L = sum of squares."""
    results = []
    for runner in (compile_cell(cell).sequence, lambda x, s: unroll(cell, x, s)):
        cell.weight_hh.grad = None
        out, _ = runner(x, cell.initial_state(x.shape[0]))
        (out * out).sum().backward()
        results.append((out.numpy(), cell.weight_hh.grad.copy()))
    return results
