"""The stand-in is as strict as CuPy: what CuPy refuses, it refuses; it offers only CuPy's names."""
import os

import numpy as np
import pytest

from tinygrad_rnn import BackendError, Tensor, backend

from . import standin as cp

HERE = os.path.dirname(os.path.abspath(__file__))


def device(shape=(2, 3)):
    return cp.asarray(np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape))


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda a: np.mean([a.sum(), a.sum()]),
                                     lambda a: np.float32(1) + np.ones(3) * np.asarray(a[0])],
                         ids=["np.asarray", "np.array", "np.mean of a list", "inside an expression"])
def test_implicit_conversion_to_numpy_is_refused_with_cupys_message(convert):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        convert(device())


@pytest.mark.parametrize("mix", [lambda a, h: a + h, lambda a, h: h * a, lambda a, h: cp.multiply(a, h),
                                 lambda a, h: np.add(h, a), lambda a, h: cp.where(a > 1, a, h),
                                 lambda a, h: np.concatenate([a, h]), lambda a, h: a.__setitem__(0, h[0]),
                                 lambda a, h: cp.tanh(a, out=h), lambda a, h: cp.ascontiguousarray(h)],
                         ids=["a + host", "host * a", "cupy ufunc", "numpy ufunc", "where", "concatenate",
                              "assignment", "out=", "ascontiguousarray"])
def test_a_numpy_array_mixed_into_a_device_operation_is_refused(mix):
    with pytest.raises(TypeError):
        mix(device(), np.ones((2, 3), np.float32))


def test_what_cupy_allows_works_and_stays_on_the_device():
    a = device()
    with cp.SYNCS.counting() as syncs:
        assert isinstance(np.exp(a), cp.ndarray)  # NumPy's ufuncs dispatch to CuPy's
        assert isinstance(np.float32(2) * a + 1, cp.ndarray)  # scalars, NumPy's included, are fine
        assert isinstance(a[np.array([1, 0])], cp.ndarray) and isinstance(a[[1, 0]], cp.ndarray)  # host indices
        total = a.sum()
        assert isinstance(total, cp.ndarray) and total.shape == ()  # reductions: 0-d arrays, not scalars
    assert not syncs


@pytest.mark.parametrize("read", [lambda a: a.get(), lambda a: cp.asnumpy(a), lambda a: a.sum().item(),
                                  lambda a: a.tolist(), lambda a: float(a.sum()), lambda a: int(a.sum()),
                                  lambda a: bool(a.sum() > 0), lambda a: f"{a.sum():.3f}", repr],
                         ids=["get", "asnumpy", "item", "tolist", "float", "int", "bool", "format", "repr"])
def test_every_read_back_to_the_host_is_counted_as_a_sync(read):
    cp.SYNCS.reset()
    read(device())
    assert cp.SYNCS.count == 1, cp.SYNCS.summary()


def test_cupys_narrower_arguments_are_refused():
    a = device()
    with pytest.raises(TypeError, match="initial"):
        a.max(initial=0)
    with pytest.raises(NotImplementedError):
        cp.multiply.at(a, [0], 2.0)  # CuPy has .at for add, subtract, maximum, minimum only
    with pytest.raises(TypeError):
        range(a.sum().astype(np.int64))  # no __index__ on cupy.ndarray


def test_the_standin_offers_only_names_cupy_has():
    with open(os.path.join(HERE, "cupy_names.txt")) as f:
        cupy_names = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    extra = sorted(cp.public_names() - cupy_names)
    assert not extra, f"the stand-in offers names CuPy does not: {extra}"


def test_the_fixture_plugs_it_in_where_cupy_would_be(cupy):
    t = Tensor([1.0, 2.0], requires_grad=True).to("cupy")
    assert t.backend == "cupy" and isinstance(t.data, cp.ndarray)
    backend.set_backend("cupy")
    assert isinstance(Tensor.zeros(2).data, cp.ndarray) and isinstance(Tensor([1.0]).data, cp.ndarray)
    with pytest.raises(BackendError, match=r"\.to\("):
        Tensor([1.0]).to("numpy") + t
