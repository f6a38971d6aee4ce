"""Backends: NumPy always; CuPy only when asked for, and then with errors that say what to do.

Tests marked `gpu` need CuPy and a GPU and are skipped otherwise.
"""
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn
from tinygrad_rnn import BackendError, Tensor, backend


def _cupy_with_a_gpu():
    try:
        import cupy
        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:
        return None


CUPY = _cupy_with_a_gpu()
needs_no_gpu = pytest.mark.skipif(CUPY is not None, reason="CuPy and a GPU are present here")
gpu = pytest.mark.gpu


@pytest.fixture(autouse=True)
def restore_backend():
    previous = tinygrad_rnn.get_backend()
    yield
    tinygrad_rnn.set_backend(previous)


def test_importing_tinygrad_rnn_does_not_import_cupy():
    code = "import sys, tinygrad_rnn; print('cupy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_numpy_is_the_default_backend():
    assert tinygrad_rnn.get_backend() == "numpy"
    t = Tensor([1.0, 2.0])
    assert t.backend == "numpy" and isinstance(t.data, np.ndarray)


def test_an_unknown_backend_is_a_backend_error_listing_the_valid_ones():
    with pytest.raises(BackendError, match=r"'tpu'.*numpy, cupy"):
        tinygrad_rnn.set_backend("tpu")
    assert tinygrad_rnn.get_backend() == "numpy"


@needs_no_gpu
def test_asking_for_cupy_without_it_is_a_backend_error_saying_how_to_fix_it():
    with pytest.raises(BackendError) as error:
        tinygrad_rnn.set_backend("cupy")
    message = str(error.value)
    assert "pip install" in message or "GPU" in message
    assert "numpy" in message  # the alternative that works
    assert tinygrad_rnn.get_backend() == "numpy"  # a failed switch changes nothing


@needs_no_gpu
def test_moving_a_tensor_to_cupy_without_it_is_a_backend_error():
    with pytest.raises(BackendError, match="cupy"):
        Tensor([1.0]).to("cupy")


def test_to_numpy_on_a_numpy_tensor_keeps_data_and_requires_grad():
    t = Tensor([1.0, 2.0], requires_grad=True)
    moved = t.to("numpy")
    assert moved.backend == "numpy" and moved.requires_grad and moved.is_leaf
    np.testing.assert_array_equal(moved.numpy(), t.numpy())


class ForeignArray:
    """Stands in for a CuPy array: anything with __cuda_array_interface__ counts as a GPU array."""

    __cuda_array_interface__ = {}

    def __init__(self, shape):
        self.shape, self.ndim, self.dtype = shape, len(shape), np.dtype(np.float32)


def test_mixing_backends_in_one_op_is_a_backend_error_saying_how_to_move_tensors():
    host = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    device = Tensor._from_op(ForeignArray((3,)), requires_grad=False)
    assert device.backend == "cupy"
    with pytest.raises(BackendError) as error:
        host + device
    message = str(error.value)
    assert "numpy" in message and "cupy" in message and ".to(" in message


# ---- on a GPU -----------------------------------------------------------------------------------
GPU_OPS = {
    "add broadcast": (lambda a, b: a + b, [(3, 4), (4,)]),
    "mul": (lambda a, b: a * b, [(3, 4), (3, 4)]),
    "div": (lambda a, b: a / (b * b + 1), [(3, 4), (3, 1)]),
    "matmul batch": (lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    "tanh sigmoid": (lambda a: a.tanh() * a.sigmoid(), [(3, 4)]),
    "relu exp": (lambda a: a.relu() + a.exp(), [(3, 4)]),
    "log_softmax": (lambda a: a.log_softmax(axis=-1), [(3, 4)]),
    "softmax": (lambda a: a.softmax(axis=0), [(3, 4)]),
    "max mean": (lambda a: a.max(axis=1) + a.mean(axis=1), [(3, 4)]),
    "getitem repeated": (lambda a: a[[0, 0, 2]], [(3, 4)]),
    "concatenate": (lambda a, b: Tensor.concatenate([a, b], axis=1), [(3, 4), (3, 2)]),
}


@gpu
@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a GPU")
@pytest.mark.parametrize("name", GPU_OPS)
def test_cupy_forward_and_backward_match_numpy(name):
    fn, shapes = GPU_OPS[name]
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-2, 2, s).astype(np.float32) for s in shapes]
    results = {}
    for where in ("numpy", "cupy"):
        inputs = [Tensor(a.copy(), requires_grad=True).to(where) for a in arrays]
        out = fn(*inputs)
        assert out.backend == where and out.dtype == np.float32
        (out * out).sum().backward()
        results[where] = [out.numpy()] + [backend.to_numpy(t.grad) for t in inputs]
        assert all(backend.name_of(t.grad) == where for t in inputs)
    for got, expected in zip(results["cupy"], results["numpy"]):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@gpu
@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a GPU")
def test_set_backend_cupy_creates_new_tensors_on_the_gpu():
    tinygrad_rnn.set_backend("cupy")
    assert Tensor([1.0]).backend == "cupy" and Tensor.zeros(2).backend == "cupy" and Tensor.randn(2).backend == "cupy"
    tinygrad_rnn.set_backend("numpy")
    assert Tensor([1.0]).backend == "numpy"


@gpu
@pytest.mark.skipif(CUPY is None, reason="needs CuPy and a GPU")
def test_mixing_a_numpy_and_a_cupy_tensor_is_a_backend_error():
    with pytest.raises(BackendError, match=r"\.to\("):
        Tensor([1.0]) + Tensor([1.0]).to("cupy")
