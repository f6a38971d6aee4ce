"""The fused LSTM's, GRU's and peephole LSTM's numba step kernels (plugins/cells/kernels.py, the `fast` extra) compute what
their NumPy loops compute, to float32 rounding, and are used exactly where they apply."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_rnn import Tensor
from tinygrad_rnn_plugins.cells.gru_fused import GRUSequence
from tinygrad_rnn_plugins.cells.lstm_fused import LSTMSequence
from tinygrad_rnn_plugins.cells.peephole_fused import PeepholeSequence
from tinygrad_rnn_plugins.cells.rnn_fused import numba_kernels

pytest.importorskip("numba")

FUSE = "TINYGRAD_RNN_FUSE"


GATES = {"lstm": 4, "gru": 3, "peephole": 4}
CELLS = list(GATES)


def problem(cell, N, T, D, H, seed=0, dtype=np.float32):
    """The inputs of cell's sequence Function (x, initial states, weights, biases) and the weights of a
    random linear loss on its outputs and final states."""
    rng = np.random.default_rng(seed)
    bound, G, states = 1 / np.sqrt(H), GATES[cell], 1 if cell == "gru" else 2
    arrays = [rng.standard_normal((N, T, D))] + [rng.standard_normal((N, H)) * 0.5] * states
    arrays += [rng.uniform(-bound, bound, s) for s in [(G * H, D), (G * H, H), (G * H,), (G * H,)]]
    arrays += [rng.uniform(-bound, bound, H) for _ in range(3 if cell == "peephole" else 0)]  # w_ci, w_cf, w_co
    loss_weights = [rng.standard_normal((N, T, H))] + [rng.standard_normal((N, H))] * states
    return [a.astype(dtype) for a in arrays], [w.astype(dtype) for w in loss_weights]


def run(cell, arrays, loss_weights, mask=None):
    """Outputs, final states and the gradient of every input of a random linear loss on them."""
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    if cell == "gru":
        results = GRUSequence.apply(*inputs, mask, "pytorch")
    else:
        results = (LSTMSequence if cell == "lstm" else PeepholeSequence).apply(*inputs, mask)
    loss = sum(((y * Tensor(w)).sum() for y, w in zip(results, loss_weights)), Tensor(np.float32(0)))
    loss.backward()
    return [y.numpy() for y in results] + [t.grad for t in inputs]


def names(cell):
    states = ["h_last"] if cell == "gru" else ["h_last", "c_last"]
    return (["outputs"] + states + ["d x"] + [f"d {s}0" for s in ("h", "c")[:len(states)]]
            + ["d weight_ih", "d weight_hh", "d bias_ih", "d bias_hh"]
            + (["d weight_ci", "d weight_cf", "d weight_co"] if cell == "peephole" else []))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", [(32, 50, 1, 32), (3, 7, 4, 5), (1, 4, 3, 17), (16, 30, 8, 64)],
                         ids=lambda s: "x".join(map(str, s)))
def test_numba_kernels_agree_with_the_numpy_loop_to_float32_rounding(cell, shape, monkeypatch):
    arrays, loss_weights = problem(cell, *shape)
    weight_hh = arrays[(2 if cell == "gru" else 3) + 1]
    monkeypatch.setenv(FUSE, "auto")
    assert numba_kernels(weight_hh, None) is not None  # the kernels are what runs by default
    fast = run(cell, arrays, loss_weights)
    monkeypatch.setenv(FUSE, "0")
    assert numba_kernels(weight_hh, None) is None
    numpy_loop = run(cell, arrays, loss_weights)
    for name, got, want in zip(names(cell), fast, numpy_loop):
        assert got.dtype == np.float32, name
        # a few float32 roundings of each gate's tanh, carried through T steps and summed over T * N
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6 * scale, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_numba_kernels_are_reproducible_bit_for_bit(cell, monkeypatch):
    monkeypatch.setenv(FUSE, "auto")
    arrays, loss_weights = problem(cell, 8, 20, 3, 16, seed=3)
    first, second = run(cell, arrays, loss_weights), run(cell, arrays, loss_weights)
    for name, a, b in zip(names(cell), first, second):
        assert np.array_equal(a, b), name


def test_fast_tanh_is_within_float32_rounding_of_tanh():
    from tinygrad_rnn_plugins.cells import kernels
    forward_step = kernels.compiled().lstm_forward
    x = np.linspace(-12, 12, 2_000_001).astype(np.float32)
    # the kernel's g gate is tanh(a + hw): read the compiled tanh through it (a = x, hw = 0)
    a = np.zeros((1, 4, x.size), np.float32)
    a[0, 3] = x
    c = np.zeros((1, x.size), np.float32)
    forward_step(a, np.zeros_like(a), c, c.copy(), c.copy())
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    # near 0: within 4 roundings of the value; near saturation (|x| ~ 6) within 3 roundings of 1 (3.6e-7)
    allowed = np.maximum(4 * ulp, 3 * np.spacing(np.float32(1)))
    worst = np.argmax(np.abs(a[0, 3] - exact) / allowed)
    error = a[0, 3][worst] - exact[worst]
    assert abs(error) <= allowed[worst], f"tanh({x[worst]}) off by {error}"
    # and never out of [-1, 1]: a gate out of its range would make sigma' or tanh' negative
    assert np.abs(a[0, 3]).max() <= 1


@pytest.mark.parametrize("case", ["float64", "padding mask"])
def test_float64_and_padding_keep_the_numpy_loop(case, monkeypatch):
    monkeypatch.setenv(FUSE, "auto")
    weight = np.zeros((8, 2), np.float64 if case == "float64" else np.float32)
    mask = np.ones((1, 3)) if case == "padding mask" else None
    assert numba_kernels(weight, mask) is None


def test_discovering_the_plugins_does_not_import_numba():
    """numba costs about half a second to import: only a run that uses the kernels pays it."""
    code = ("import sys\nfrom tinygrad_rnn.registry import cells\ncells.get('lstm'), cells.get('gru')\n"
            "assert 'numba' not in sys.modules, 'numba imported at plugin discovery'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, FUSE: "auto"})
    assert result.returncode == 0, result.stderr
