"""The `cupy` fixture: the stand-in plugged in where tinygrad_rnn.backend keeps the CuPy module it
imports lazily, so `set_backend("cupy")`, `Tensor.to("cupy")` and `rnnrun --backend cupy` all reach it.
Only the tests see it; afterwards the backend is NumPy again and CuPy is unimported, as before."""
import pytest

from tinygrad_rnn import backend

from . import standin


@pytest.fixture
def cupy(monkeypatch):
    monkeypatch.setattr(backend, "_cupy_module", standin)
    previous = backend.get_backend()
    standin.SYNCS.reset()
    yield standin
    backend.set_backend(previous)


@pytest.fixture
def on_device(cupy):
    """The stand-in as the default backend: new tensors and modules' parameters are made on it."""
    backend.set_backend("cupy")
    yield cupy
