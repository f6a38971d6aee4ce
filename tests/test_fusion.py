"""Elementwise fusion (tinygrad_rnn/fusion.py): each run of elementwise ops of a compiled step is one
generated numba kernel, forward and backward; it must give what the op-by-op replay gives."""
import os

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, fusion, registry
from tinygrad_rnn.nn import Recurrent, compile_cell

from helpers import load_example_cells, restored_registry

pytest.importorskip("numba")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELLS = ["rnn", "rnn:nonlinearity=relu", "lstm", "gru", "gru:variant=cho", "peephole", "mgu", "indrnn"]


@pytest.fixture(autouse=True)
def example_cells():
    with restored_registry():
        load_example_cells()
        yield


def replay(name, fuse, dtype, monkeypatch, bidirectional=False):
    """Outputs, final states and every gradient of a 2-layer layer on the compiled path; the step's ops."""
    monkeypatch.setenv(fusion.ENV, "1" if fuse else "0")
    cell, _, option = name.partition(":")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get(cell), 2, 5, num_layers=2, bidirectional=bidirectional, path="compiled",
                    **dict([option.split("=")] if option else [])).to(dtype=dtype)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)).astype(dtype), requires_grad=True)
    out, final = rnn(x, lengths=[6, 4, 1])
    states = [s for state in final for s in state]
    ((out * out).sum() + sum((s * s * 0.5).sum() for s in states)).backward()
    (tape,) = compile_cell(rnn.cells[0]).tapes.values()
    ops = [e.cls.__name__ for e in tape.program.step]
    return [out.numpy()] + [s.numpy() for s in states] + [x.grad] + [p.grad for p in rnn.parameters()], ops


@pytest.mark.parametrize("name", CELLS)
def test_fused_replay_equals_op_by_op_replay_to_float32_rounding(name, monkeypatch):
    fused, ops = replay(name, True, np.float32, monkeypatch, bidirectional=True)
    plain, plain_ops = replay(name, False, np.float32, monkeypatch, bidirectional=True)
    assert any(op.startswith("Fused[") for op in ops) and not any(op.startswith("Fused[") for op in plain_ops)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", CELLS)
def test_fused_replay_is_exact_in_float64(name, monkeypatch):
    fused, ops = replay(name, True, np.float64, monkeypatch)
    plain, _ = replay(name, False, np.float64, monkeypatch)
    assert any(op.startswith("Fused[") for op in ops)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_an_lstm_step_is_one_product_and_one_kernel(monkeypatch):
    _, ops = replay("lstm", True, np.float32, monkeypatch)
    assert ops == ["Linear", "Fused[Add, Chunk, Sigmoid, Sigmoid, Tanh, Sigmoid, Mul, Mul, Add, Tanh, Mul]"]


@pytest.mark.parametrize("name", ["lstm", "gru", "mgu", "indrnn"])
def test_gradcheck_passes_on_the_fused_compiled_path(name, monkeypatch):
    from tinygrad_rnn.runner import lessons
    monkeypatch.setenv(fusion.ENV, "1")
    check = lessons.check_cell(name, layers=2, bidirectional=True, hidden=3, steps=3, batch=2, path="compiled")
    assert check.ok, check


def test_the_float32_tanh_and_sigmoid_are_within_float32_rounding():
    kernels = fusion._load("import numpy as np\nfrom numba import njit\nT = np.float32\n" + fusion.HELPERS["float32"],
                           "helpers_float32_test")
    x = np.linspace(-12, 12, 40001).astype(np.float32)
    tanh = np.array([kernels.tanh(v) for v in x[::40]])
    sigmoid = np.array([kernels.sigmoid(v) for v in x[::40]])
    exact = x[::40].astype(np.float64)
    assert np.abs(tanh - np.tanh(exact)).max() < 5e-7
    assert np.abs(sigmoid - 1 / (1 + np.exp(-exact))).max() < 5e-7


def test_fusion_switched_off_replays_op_by_op(monkeypatch):
    _, ops = replay("gru", False, np.float32, monkeypatch)
    assert "Sigmoid" in ops and not any(op.startswith("Fused[") for op in ops)


def test_by_default_a_tape_is_fused_only_once_it_has_run_often_enough(monkeypatch):
    monkeypatch.delenv(fusion.ENV, raising=False)  # auto: a short run never pays for numba
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get("gru"), 2, 4, path="compiled")
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)).astype(np.float32))
    ops = []
    for _ in range(fusion.AFTER):
        rnn(x)
        (tape,) = compile_cell(rnn.cells[0]).tapes.values()
        ops.append(any(e.cls.__name__.startswith("Fused[") for e in tape.program.step))
    assert ops == [False] * (fusion.AFTER - 1) + [True]
