"""Elementwise fusion (tinygrad_rnn/fusion.py): each run of elementwise ops of a compiled step is one
generated numba kernel, forward and backward; it must give what the op-by-op replay gives."""
import hashlib
import os

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, fusion, registry
from tinygrad_rnn.nn import Recurrent, compile_cell


pytest.importorskip("numba")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELLS = ["rnn", "rnn:nonlinearity=relu", "lstm", "gru", "gru:variant=cho", "peephole", "mgu", "indrnn"]


pytestmark = pytest.mark.usefixtures("example_cells")  # mgu and indrnn (tests/conftest.py)


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


def test_the_float32_tanh_and_sigmoid_are_close_to_exact_and_stay_in_their_ranges():
    loop = ("\n@njit\ndef on_all(xs):\n    t, s = np.empty_like(xs), np.empty_like(xs)\n"
            "    for i in range(xs.size):\n        t[i], s[i] = tanh(xs[i]), sigmoid(xs[i])\n    return t, s\n")
    source = "import numpy as np\nfrom numba import njit\nT = np.float32\n" + fusion.HELPERS["float32"] + loop
    kernels = fusion._load(source, "test_" + hashlib.sha1(source.encode()).hexdigest()[:16])  # a file per text
    # a dense grid, every float32 where the rational meets its clamp (|x| from 7 to 9: an older clamp at
    # 9 gave 1 + 2 ulp there) and where sigmoid's tanh(x/2) does (|x| 14 to 18), and the special values
    grid = np.linspace(-40, 40, 2_000_001, dtype=np.float32)
    bits = [np.float32([lo, hi]).view(np.int32) for lo, hi in ((7, 9), (14, 18))]
    near = np.concatenate([np.arange(lo, hi, dtype=np.int32).view(np.float32) for lo, hi in bits])
    x = np.concatenate([grid, near, -near, np.float32([np.inf, -np.inf, 0.0])])
    tanh, sigmoid = kernels.on_all(x)
    exact = x.astype(np.float64)
    assert np.abs(tanh - np.tanh(exact)).max() < 4.5e-7
    assert np.abs(sigmoid - 1 / (1 + np.exp(-exact))).max() < 4.5e-7
    assert np.abs(tanh).max() <= 1 and sigmoid.min() >= 0 and sigmoid.max() <= 1
    nan_tanh, nan_sigmoid = kernels.on_all(np.float32([np.nan]))
    assert np.isnan(nan_tanh[0]) and np.isnan(nan_sigmoid[0])


def test_a_fused_relu_passes_nan_on_as_the_op_by_op_replay_does(monkeypatch):
    def run(fuse):
        monkeypatch.setenv(fusion.ENV, "1" if fuse else "0")
        tg.manual_seed(0)
        rnn = Recurrent(registry.cells.get("rnn"), 2, 3, path="compiled", nonlinearity="relu")
        x = np.random.default_rng(1).standard_normal((2, 4, 2)).astype(np.float32)
        x[0, 1, 0] = np.nan
        out, _ = rnn(Tensor(x))
        (tape,) = compile_cell(rnn.cells[0]).tapes.values()
        assert any(e.cls.__name__.startswith("Fused[") for e in tape.program.step) == fuse
        return out.numpy()
    fused, plain = run(True), run(False)
    assert np.isnan(plain[0, 1:]).all()
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(plain))


def test_fusion_switched_off_replays_op_by_op(monkeypatch):
    _, ops = replay("gru", False, np.float32, monkeypatch)
    assert "Sigmoid" in ops and not any(op.startswith("Fused[") for op in ops)


def test_by_default_a_tape_is_fused_from_its_first_replay_and_stays_so(monkeypatch):
    # not "once it has run often enough": a resumed run's first replays would then differ in the last
    # bits from the uninterrupted run's (tests/test_resume.py's fused_zoneout case runs that)
    monkeypatch.delenv(fusion.ENV, raising=False)
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get("gru"), 2, 4, path="compiled")
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)).astype(np.float32))
    ops = []
    for _ in range(25):
        rnn(x)
        (tape,) = compile_cell(rnn.cells[0]).tapes.values()
        ops.append(any(e.cls.__name__.startswith("Fused[") for e in tape.program.step))
    assert ops == [True] * 25
