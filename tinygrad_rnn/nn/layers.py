"""The feed-forward building blocks: Linear, Embedding, Dropout, Sequential."""
import numpy as np

from .. import backend
from .. import random as _random
from ..errors import ShapeError
from ..tensor import Tensor
from .module import Module


def uniform_parameter(shape, bound, dtype=np.float32):
    """A trainable tensor with entries from U(-bound, bound), drawn from the package's seeded generator."""
    host = _random.generator().uniform(-bound, bound, shape).astype(dtype)
    return Tensor(backend.convert(host, backend.get_backend()), requires_grad=True)


class Linear(Module):
    """y = x W^T + b, initialised as PyTorch does: U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features, out_features, bias=True):
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / np.sqrt(in_features)
        self.weight = uniform_parameter((out_features, in_features), bound)
        self.bias = uniform_parameter((out_features,), bound) if bias else None

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ShapeError(f"Linear({self.in_features}, {self.out_features}) got input of shape "
                             f"{x.shape}; its last axis must be {self.in_features}")
        return x.linear(self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}"


class Embedding(Module):
    """A lookup table: integer ids (any shape) → vectors, initialised N(0, 1) as PyTorch."""

    def __init__(self, num_embeddings, embedding_dim):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        host = _random.generator().standard_normal((num_embeddings, embedding_dim)).astype(np.float32)
        self.weight = Tensor(backend.convert(host, backend.get_backend()), requires_grad=True)

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else ids
        if not hasattr(ids, "dtype"):  # a list or a number
            ids = np.asarray(ids)
        return self.weight[backend.convert(ids, self.weight.backend).astype(np.int64)]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


def dropout_mask(shape, p, like):
    """A {0, 1/(1-p)} mask (inverted dropout), drawn on the host from the seeded generator."""
    keep = (_random.generator().random(shape) >= p).astype(like.dtype) / (1.0 - p)
    return Tensor(backend.convert(keep, like.backend))


class Dropout(Module):
    """Zero each entry with probability p in training and scale the rest by 1/(1-p); identity in eval."""

    def __init__(self, p=0.5):
        if not 0.0 <= p < 1.0:
            from ..errors import ConfigError
            raise ConfigError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        return x * dropout_mask(x.shape, self.p, x)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
