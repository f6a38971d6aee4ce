"""tinygrad_rnn: a small tensor autograd engine on NumPy (CuPy on a GPU), and recurrent nets on it.

The public API that users and plugins write against lives here, in `tinygrad_rnn.nn`,
`tinygrad_rnn.registry`, `tinygrad_rnn.data` (datasets) and `tinygrad_rnn.optim` (optimisers).
The runner's Python API (`train`, `load_run`, `sweep`, `tune`) is in `tinygrad_rnn.runner`, and
reachable from here too: `tinygrad_rnn.train(...)` imports the runner on first use.
"""
from .backend import array_module, get_backend, set_backend
from .errors import (BackendError, ConfigError, DivergedError, DTypeError, GraphError, PluginError, ShapeError,
                     TinygradRNNError, UnknownPluginError)
from .function import Function, is_grad_enabled, no_grad, record_ops
from .fusion import available as fusion_available
from .gradcheck import gradcheck
from .ops import sigmoid_array, unbroadcast
from .random import manual_seed
from .logger import Logger
from .registry import (load_plugin, register_cell, register_dataset, register_logger, register_optimizer,
                       register_regularizer, register_regulariser)
from .regulariser import Regularizer, Regulariser
from .selection import selection_key
from .tensor import Tensor, topological_order

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "no_grad", "is_grad_enabled", "record_ops", "topological_order", "gradcheck",
           "array_module", "sigmoid_array", "unbroadcast", "set_backend", "get_backend", "manual_seed", "load_plugin",
           "fusion_available",  # numba there and TINYGRAD_RNN_FUSE not 0: plugins' own kernels follow the tape's switch
           "register_cell", "register_dataset", "register_optimizer", "register_regularizer", "Regularizer",
           "register_logger", "Logger",
           "register_regulariser", "Regulariser",  # the -ise spellings of earlier releases: aliases
           "TinygradRNNError", "ShapeError", "DTypeError", "BackendError", "GraphError", "UnknownPluginError",
           "PluginError", "ConfigError", "DivergedError", "selection_key", "__version__"]


# ---- the one door from the package into the runner ------------------------------------------------------
RUNNER_API = ("train", "load_run", "sweep", "tune", "Run")


def __getattr__(name):
    """`tinygrad_rnn.train` and the rest of RUNNER_API: the runner (the application, at the bottom of
    the layout) is imported on first use, so `import tinygrad_rnn` stays the engine and the library.
    tests/test_layout.py allows this function, and nothing else above the runner, to import it."""
    if name in RUNNER_API:
        from . import runner
        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(RUNNER_API))
