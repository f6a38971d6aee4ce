"""tinygrad_rnn: a small tensor autograd engine on NumPy (CuPy on a GPU), and recurrent nets on it.

The public API that users and plugins write against lives here, in `tinygrad_rnn.nn`,
`tinygrad_rnn.registry`, `tinygrad_rnn.data` (datasets) and `tinygrad_rnn.optim` (optimisers).
"""
from .backend import array_module, get_backend, set_backend
from .errors import (BackendError, ConfigError, DivergedError, GraphError, PluginError, ShapeError,
                     TinygradRNNError, UnknownPluginError)
from .function import Function, is_grad_enabled, no_grad, record_ops
from .gradcheck import gradcheck
from .ops import sigmoid_array, unbroadcast
from .random import manual_seed
from .logger import Logger
from .registry import (load_plugin, register_cell, register_dataset, register_logger, register_optimizer,
                       register_regularizer, register_regulariser)
from .regulariser import Regularizer, Regulariser
from .tensor import Tensor, topological_order

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "no_grad", "is_grad_enabled", "record_ops", "topological_order", "gradcheck",
           "array_module", "sigmoid_array", "unbroadcast", "set_backend", "get_backend", "manual_seed", "load_plugin",
           "register_cell", "register_dataset", "register_optimizer", "register_regularizer", "Regularizer",
           "register_logger", "Logger",
           "register_regulariser", "Regulariser",  # the -ise spellings of earlier releases: aliases
           "TinygradRNNError", "ShapeError", "BackendError", "GraphError", "UnknownPluginError", "PluginError",
           "ConfigError", "DivergedError", "__version__"]
