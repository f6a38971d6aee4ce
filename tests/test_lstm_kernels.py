"""The fused LSTM's numba step kernels (plugins/cells/lstm_kernels.py, the `fast` extra) compute what its
NumPy loop computes, to float32 rounding, and are used exactly where they apply."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_rnn import Tensor
from tinygrad_rnn_plugins.cells import lstm_fused
from tinygrad_rnn_plugins.cells.lstm_fused import LSTMSequence

pytest.importorskip("numba")

FUSE = "TINYGRAD_RNN_FUSE"


def problem(N, T, D, H, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(H)
    arrays = [rng.standard_normal((N, T, D)), rng.standard_normal((N, H)) * 0.5, rng.standard_normal((N, H)) * 0.5,
              rng.uniform(-bound, bound, (4 * H, D)), rng.uniform(-bound, bound, (4 * H, H)),
              rng.uniform(-bound, bound, 4 * H), rng.uniform(-bound, bound, 4 * H)]
    weights_out = rng.standard_normal((N, T, H)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    return [a.astype(dtype) for a in arrays], [w.astype(dtype) for w in weights_out]


def run(arrays, weights_out, mask=None):
    """Outputs, final states and the gradient of every input of a random linear loss on them."""
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    out, h, c = LSTMSequence.apply(*inputs, mask)
    loss = sum(((y * Tensor(w)).sum() for y, w in zip((out, h, c), weights_out)), Tensor(np.float32(0)))
    loss.backward()
    return [out.numpy(), h.numpy(), c.numpy()] + [t.grad for t in inputs]


NAMES = ["outputs", "h_last", "c_last", "d x", "d h0", "d c0", "d weight_ih", "d weight_hh", "d bias_ih", "d bias_hh"]


@pytest.mark.parametrize("shape", [(32, 50, 1, 32), (3, 7, 4, 5), (1, 4, 3, 17), (16, 30, 8, 64)],
                         ids=lambda s: "x".join(map(str, s)))
def test_numba_kernels_agree_with_the_numpy_loop_to_float32_rounding(shape, monkeypatch):
    arrays, weights_out = problem(*shape)
    monkeypatch.setenv(FUSE, "auto")
    assert lstm_fused.step_kernels(arrays[4], None) is not None  # the kernels are what runs by default
    fast = run(arrays, weights_out)
    monkeypatch.setenv(FUSE, "0")
    assert lstm_fused.step_kernels(arrays[4], None) is None
    numpy_loop = run(arrays, weights_out)
    for name, got, want in zip(NAMES, fast, numpy_loop):
        assert got.dtype == np.float32, name
        # a few float32 roundings of each gate's tanh, carried through T steps and summed over T * N
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6 * scale, err_msg=name)


def test_numba_kernels_are_reproducible_bit_for_bit(monkeypatch):
    monkeypatch.setenv(FUSE, "auto")
    arrays, weights_out = problem(8, 20, 3, 16, seed=3)
    first, second = run(arrays, weights_out), run(arrays, weights_out)
    for name, a, b in zip(NAMES, first, second):
        assert np.array_equal(a, b), name


def test_fast_tanh_is_within_float32_rounding_of_tanh():
    from tinygrad_rnn_plugins.cells import lstm_kernels
    forward_step, _ = lstm_kernels.compiled()
    x = np.linspace(-12, 12, 200_001).astype(np.float32)
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
    assert abs(a[0, 3][worst] - exact[worst]) <= allowed[worst], f"tanh({x[worst]}) off by {a[0, 3][worst] - exact[worst]}"


@pytest.mark.parametrize("case", ["float64", "padding mask"])
def test_float64_and_padding_keep_the_numpy_loop(case, monkeypatch):
    monkeypatch.setenv(FUSE, "auto")
    weight = np.zeros((8, 2), np.float64 if case == "float64" else np.float32)
    mask = np.ones((1, 3)) if case == "padding mask" else None
    assert lstm_fused.step_kernels(weight, mask) is None


def test_discovering_the_plugins_does_not_import_numba():
    """numba costs about half a second to import: only a run that uses the LSTM's kernels pays it."""
    code = ("import sys\nfrom tinygrad_rnn.registry import cells\ncells.get('lstm')\n"
            "assert 'numba' not in sys.modules, 'numba imported at plugin discovery'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, FUSE: "auto"})
    assert result.returncode == 0, result.stderr
