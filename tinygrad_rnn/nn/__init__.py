"""Neural-network building blocks: modules, layers, the recurrent layer, init, clipping, BatchNorm."""
from .layers import Dropout, Embedding, Linear, Sequential, dropout_mask, uniform_parameter
from .module import Module

__all__ = ["Module", "Linear", "Embedding", "Dropout", "Sequential", "dropout_mask", "uniform_parameter"]

from ..tape import CompileWarning, compile_cell  # noqa: E402  (the tape sits beside the engine: it is autodiff)
from ..unroll import unroll  # noqa: E402
from .recurrent import Recurrent  # noqa: E402
from .step_masks import VariationalDropout, bernoulli  # noqa: E402

__all__ += ["Recurrent", "unroll", "compile_cell", "CompileWarning", "VariationalDropout", "bernoulli"]

from . import init  # noqa: E402
from .batchnorm import BatchNorm1d, BatchNormOverTime  # noqa: E402
from .clip import clip_grad_norm, clip_grad_value  # noqa: E402

__all__ += ["init", "BatchNorm1d", "BatchNormOverTime", "clip_grad_norm", "clip_grad_value"]

# what a training loop of your own needs beside the model: the losses (the optimisers are in
# tinygrad_rnn.optim: `from tinygrad_rnn.optim import Adam`)
from .losses import bce_with_logits, cross_entropy, mae, mse  # noqa: E402

__all__ += ["mse", "mae", "cross_entropy", "bce_with_logits"]
