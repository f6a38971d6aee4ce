"""Every op of the engine, forward and backward, on the CuPy stand-in: the same numbers as on NumPy,
the results and gradients on the device, and not one read back to the host on the way."""
import numpy as np
import pytest

from tinygrad_rnn import Tensor, backend

from test_ops_gradcheck import AWAY_FROM_ZERO, CASES

# long double exists on NumPy only (CuPy's dtypes stop at float64); the op itself (Cast) is covered below
ON_DEVICE = {name: case for name, case in CASES.items() if name != "astype"}
ON_DEVICE["astype"] = (lambda x: x.astype(np.float64).exp().astype(np.float32), [(2, 3)], (-2.0, 2.0))


def inputs(shapes, kind):
    rng = np.random.default_rng(0)
    if kind == AWAY_FROM_ZERO:
        return [(rng.uniform(0.5, 2.0, s) * rng.choice([-1.0, 1.0], s)).astype(np.float32) for s in shapes]
    return [rng.uniform(*kind, s).astype(np.float32) for s in shapes]


def run(fn, arrays, where):
    """The op's output and every input's gradient (of a fixed weighted sum of the output), as host arrays."""
    leaves = [Tensor(a, requires_grad=True).to(where) for a in arrays]
    out = fn(*leaves)
    weights = Tensor(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)).to(where)
    out.backward(weights)
    assert out.backend == where and all(backend.name_of(t.grad) == where for t in leaves)
    return [out.numpy()] + [backend.to_numpy(t.grad) for t in leaves]


@pytest.mark.parametrize("name", ON_DEVICE)
def test_op_forward_and_backward_on_the_device_equal_numpy(cupy, name):
    fn, shapes, kind = ON_DEVICE[name]
    arrays = inputs(shapes, kind)
    expected = run(fn, arrays, "numpy")
    with cupy.SYNCS.counting() as syncs:
        leaves = [Tensor(a, requires_grad=True).to("cupy") for a in arrays]
        out = fn(*leaves)
        out.backward(Tensor(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)).to("cupy"))
    assert not syncs, f"{name} read the device: {cupy.SYNCS.summary(syncs)}"
    for got, want in zip(run(fn, arrays, "cupy"), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gradcheck_runs_on_the_device(on_device):
    # the finite-difference checker reads each perturbed loss back by itself (one sync per evaluation:
    # it is a teaching and testing tool, not a training loop)
    from tinygrad_rnn import gradcheck
    from tinygrad_rnn.nn import Recurrent
    from tinygrad_rnn.registry import cells
    layer = Recurrent(cells.get("gru"), 2, 2)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 2)), requires_grad=True)
    result = gradcheck(lambda x, *params: layer(x)[0], [x] + layer.parameters())
    assert result, str(result)
    assert x.backend == "cupy"
