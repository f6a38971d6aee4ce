"""Neural-network building blocks: modules, layers, the recurrent layer, init, clipping, BatchNorm."""
from .layers import Dropout, Embedding, Linear, Sequential, dropout_mask, uniform_parameter
from .module import Module

__all__ = ["Module", "Linear", "Embedding", "Dropout", "Sequential", "dropout_mask", "uniform_parameter"]

from .recurrent import Recurrent, unroll  # noqa: E402

__all__ += ["Recurrent", "unroll"]
