"""Elementwise fusion on a real GPU (tinygrad_rnn/fusion_cupy.py): the generated ElementwiseKernels,
compiled by CuPy's NVRTC, give what the op-by-op replay gives on the same GPU, forward and backward.
Marked `gpu`: skipped without CuPy and a GPU; bench/gpu_check.sh runs them (pytest -m gpu). On a CPU
the same comparisons run on the stand-in (tests/cupy_standin/test_fusion_on_device.py)."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, fusion, registry
from tinygrad_rnn.nn import Recurrent, compile_cell

from helpers import load_example_cells, restored_registry
from test_backend import CUPY

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(CUPY is None, reason="needs CuPy and a GPU")]


@pytest.fixture(autouse=True)
def example_cells():
    with restored_registry():
        load_example_cells()
        yield


def replay(name, fuse, dtype, monkeypatch):
    monkeypatch.setenv(fusion.ENV, "1" if fuse else "0")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get(name), 2, 5, num_layers=2, bidirectional=True, path="compiled")
    rnn.to(dtype=dtype).to("cupy")
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)).astype(dtype), requires_grad=True).to("cupy")
    out, final = rnn(x, lengths=np.array([6, 4, 1]))
    states = [s for state in final for s in state]
    ((out * out).sum() + sum((s * s * 0.5).sum() for s in states)).backward()
    (tape,) = compile_cell(rnn.cells[0]).tapes.values()
    ops = [e.cls.__name__ for e in tape.program.step]
    return [backend.to_numpy(a) for a in [out.data, x.grad] + [p.grad for p in rnn.parameters()]], ops


@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 2e-5), (np.float64, 1e-12)], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "peephole", "mgu", "indrnn"])
def test_fused_kernels_on_the_gpu_equal_the_op_by_op_replay(name, dtype, tolerance, monkeypatch):
    got, ops = replay(name, True, dtype, monkeypatch)
    want, plain = replay(name, False, dtype, monkeypatch)
    assert any(op.startswith("Fused[") for op in ops) and not any(op.startswith("Fused[") for op in plain)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)
