"""Array backends: NumPy always, CuPy when it is installed and a GPU is present.

Ops never import a backend themselves: they receive plain arrays and use their methods, or ask
`array_module(a)` for the module that made `a` (``numpy`` or ``cupy``). CuPy is imported lazily, the
first time someone asks for it, so importing this package never needs a GPU.
"""
import numpy as np

from .errors import BackendError

BACKENDS = ("numpy", "cupy")
_default = "numpy"
_cupy_module = None


def _cupy():
    """Import CuPy and check that it can reach a GPU; raise a BackendError that says what to do."""
    global _cupy_module
    if _cupy_module is None:
        try:
            import cupy
        except ImportError as e:
            raise BackendError("backend 'cupy' needs CuPy: pip install 'tinygrad_rnn[gpu]' on a machine "
                               f"with an NVIDIA GPU, or use backend 'numpy' ({e})") from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDA driver missing or broken
            raise BackendError(f"backend 'cupy' found no usable GPU ({e}); use backend 'numpy'") from None
        if count < 1:
            raise BackendError("backend 'cupy' found no GPU; use backend 'numpy'")
        _cupy_module = cupy
    return _cupy_module


def module(name):
    """The array module for a backend name: ``numpy`` or ``cupy``."""
    if name == "numpy":
        return np
    if name == "cupy":
        return _cupy()
    raise BackendError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")


def set_backend(name):
    """Pick the backend that new tensors (and modules' parameters) are created on."""
    global _default
    module(name)  # fail now, with a clear message, if it cannot run
    _default = name


def get_backend():
    """The name of the default backend for new tensors."""
    return _default


def default_module():
    return np if _default == "numpy" else _cupy()


def name_of(array):
    """'numpy' or 'cupy' for an array."""
    return "numpy" if isinstance(array, (np.ndarray, np.generic)) else "cupy"


def array_module(array):
    """The module (numpy or cupy) that owns `array`, so backend-agnostic code can call xp.exp etc."""
    return np if isinstance(array, (np.ndarray, np.generic)) else _cupy()


def to_numpy(array):
    """A host NumPy copy (or view, for NumPy input) of any backend array."""
    if isinstance(array, np.ndarray):
        return array
    if isinstance(array, np.generic):
        return np.asarray(array)
    return array.get()


def to_numpy_all(arrays):
    """Host NumPy copies of many arrays, in order. From a GPU they come in one transfer per dtype (all
    of a dtype joined on the device, then split on the host), not one per array: every transfer
    waits for the device, and a model or an optimiser holds dozens of arrays."""
    host, groups = [None] * len(arrays), {}
    for i, a in enumerate(arrays):
        if isinstance(a, (np.ndarray, np.generic)):
            host[i] = np.array(a, copy=True)
        else:
            groups.setdefault(a.dtype, []).append(i)
    for indices in groups.values():
        xp = array_module(arrays[indices[0]])
        flat = to_numpy(xp.concatenate([arrays[i].reshape(-1) for i in indices]))
        ends = np.cumsum([arrays[i].size for i in indices])[:-1]
        for i, part in zip(indices, np.split(flat, ends)):
            host[i] = part.reshape(arrays[i].shape)
    return host


def convert(array, name):
    """Move `array` to backend `name`."""
    if name_of(array) == name:
        return array
    if name == "numpy":
        return to_numpy(array)
    return module(name).asarray(array)
