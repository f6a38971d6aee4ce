"""Weight initialisation, in place on a Tensor's data, with torch.nn.init's names and formulas.

Random draws come from the package's seeded generator (`tinygrad_rnn.manual_seed`), on the host, and
are then copied to the tensor's backend and dtype. Each function returns the tensor.

Fans, as torch: for a weight of shape (out, in, *kernel), fan_in = in · prod(kernel) and
fan_out = out · prod(kernel); for a 2-D (out, in) matrix simply fan_in = shape[1], fan_out = shape[0].
"""
import math

import numpy as np

from .. import backend
from .. import random as _random
from ..errors import ConfigError, ShapeError

GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3,
         "relu": math.sqrt(2.0), "leaky_relu": None, "selu": 3.0 / 4}


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activations' variance steady through `nonlinearity` (torch's table):
    linear, sigmoid 1; tanh 5/3; relu √2; leaky_relu √(2 / (1 + slope²)) (slope `param`, default 0.01);
    selu 3/4."""
    if nonlinearity not in GAINS:
        raise ConfigError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; valid: {', '.join(GAINS)}")
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    return GAINS[nonlinearity]


def fans(t):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if t.ndim < 2:
        raise ShapeError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {t.shape}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fill(t, host):
    """Write host values into t.data in place, on t's backend and in t's dtype."""
    t.data[...] = backend.convert(np.asarray(host, dtype=t.dtype), t.backend)
    return t


def xavier_uniform(t, gain=1.0):
    """U(-a, a) with a = gain · √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fans(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(t, _random.generator().uniform(-bound, bound, t.shape))


def xavier_normal(t, gain=1.0):
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fans(t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(t, _random.generator().normal(0.0, std, t.shape))


def _kaiming_std(t, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(t)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = gain · √(3 / fan) (He et al. 2015); `a` is leaky_relu's negative slope."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return _fill(t, _random.generator().uniform(-bound, bound, t.shape))


def kaiming_normal(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std²) with std = gain / √fan (He et al. 2015); `a` is leaky_relu's negative slope."""
    return _fill(t, _random.generator().normal(0.0, _kaiming_std(t, a, mode, nonlinearity), t.shape))


def orthogonal(t, gain=1.0):
    """A (semi-)orthogonal matrix times gain (Saxe et al. 2014): the Q of the QR decomposition of a
    Gaussian matrix, signs fixed by R's diagonal so Q is uniformly distributed. Rows are orthonormal
    when rows <= columns (W Wᵀ = gain² I), columns otherwise. Dimensions past the 2nd are flattened."""
    if t.ndim < 2:
        raise ShapeError(f"orthogonal: needs a tensor with at least 2 dimensions, got shape {t.shape}")
    rows = t.shape[0]
    cols = t.size // rows
    flat = _random.generator().standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, (gain * q).reshape(t.shape))


def zeros(t):
    return constant(t, 0.0)


def constant(t, value):
    t.data[...] = value
    return t
