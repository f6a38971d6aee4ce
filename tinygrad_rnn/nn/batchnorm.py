"""Batch normalisation (Ioffe & Szegedy 2015), as torch.nn.BatchNorm1d, and its batch-first
sequence form for recurrent layers' inputs.

    y = (x - mean) / sqrt(var + eps) · weight + bias           per feature

In training, mean and var are the batch's (var biased, dividing by n), and the running statistics
move towards them: running ← (1 - momentum) · running + momentum · batch, with the unbiased variance
(n / (n - 1) · var) going into running_var. In evaluation the running statistics are used.
With momentum=None the running statistics are the plain average over all batches seen so far.

    BatchNorm1d(C)         input (N, C) or (N, C, L): features on axis 1 (torch's layout)
    BatchNormOverTime(C)   input (N, T, C), batch-first sequences: features last, statistics over
                           the batch and all time steps (what a recurrent layer's input needs);
                           forward(x, mask) leaves padded steps (mask 0) out of the statistics.
"""
import numpy as np

from .. import backend
from ..errors import ConfigError, ShapeError
from ..function import no_grad
from ..tensor import Tensor
from .module import Module


class _BatchNorm(Module):
    """The shared maths; subclasses say which axis holds the features."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ConfigError(f"{type(self).__name__}: num_features must be a positive integer, got {num_features!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"{type(self).__name__}: momentum must be in [0, 1] or None, got {momentum!r}")
        if eps <= 0:
            raise ConfigError(f"{type(self).__name__}: eps must be positive, got {eps!r}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        xp = backend.default_module()
        self.weight = Tensor(xp.ones(num_features, np.float32), requires_grad=True) if affine else None
        self.bias = Tensor(xp.zeros(num_features, np.float32), requires_grad=True) if affine else None
        if track_running_stats:  # buffers: Tensors without requires_grad, saved in state_dict
            self.running_mean = Tensor(xp.zeros(num_features, np.float32))
            self.running_var = Tensor(xp.ones(num_features, np.float32))
            self.num_batches_tracked = Tensor(xp.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def feature_axis(self, x):
        raise NotImplementedError

    def forward(self, x, mask=None):
        axis = self.feature_axis(x)
        axes = tuple(a for a in range(x.ndim) if a != axis)
        stat_shape = tuple(self.num_features if a == axis else 1 for a in range(x.ndim))
        if self.training or not self.track_running_stats:
            mean, var, n = _batch_statistics(x, axes, mask)
            if n <= 1 and self.training:
                raise ShapeError(f"{type(self).__name__}: training needs more than one value per feature "
                                 f"to estimate a variance, got input of shape {x.shape}")
            if self.training and self.track_running_stats:
                self._update_running(mean, var, n)
        else:
            mean = self.running_mean.reshape(stat_shape)
            var = self.running_var.reshape(stat_shape)
        y = (x - mean) / (var + self.eps).sqrt()
        if self.affine:
            y = y * self.weight.reshape(stat_shape) + self.bias.reshape(stat_shape)
        return y

    def _update_running(self, mean, var, n):
        with no_grad():
            self.num_batches_tracked.data += 1
            dtype = self.running_mean.dtype
            if self.momentum is None:  # 1 / batches so far, computed where the counter is (not read back)
                m = 1.0 / self.num_batches_tracked.data.astype(np.float64)
                keep, m = (1 - m).astype(dtype), m.astype(dtype)
            else:
                keep, m = 1 - self.momentum, self.momentum
            unbiased = var.data.reshape(-1) * (n / (n - 1))
            self.running_mean.data[...] = keep * self.running_mean.data + m * mean.data.reshape(-1)
            self.running_var.data[...] = keep * self.running_var.data + m * unbiased

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


def _batch_statistics(x, axes, mask=None):
    """(mean, biased var, count n) over `axes`, kept as broadcastable Tensors; with a mask (broadcast
    to x without the feature axis) only entries where it is 1 count."""
    if mask is None:
        n = int(np.prod([x.shape[a] for a in axes]))
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        return mean, (centred * centred).mean(axis=axes, keepdims=True), n
    weights = Tensor(mask)
    n = float(mask.sum())  # one read of a device mask: the ShapeError check and the unbiased variance need it
    mean = (x * weights).sum(axis=axes, keepdims=True) * (1.0 / n)
    centred = x - mean
    return mean, (centred * centred * weights).sum(axis=axes, keepdims=True) * (1.0 / n), n


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) input, features on axis 1, exactly as torch.nn.BatchNorm1d."""

    def feature_axis(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ShapeError(f"BatchNorm1d({self.num_features}) needs input (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {x.shape}; for batch-first sequences "
                             "(N, T, C) use BatchNormOverTime")
        return 1

    def forward(self, x):
        return super().forward(x)


class BatchNormOverTime(_BatchNorm):
    """BatchNorm over batch-first sequences (N, T, C) (or (N, C)), statistics per feature over the batch
    and all steps: the same as torch's BatchNorm1d on x.transpose(1, 2).

    forward(x, mask=None): mask (N, T) of 1 (real step) and 0 (padding) leaves padded steps out of
    the batch statistics (their outputs are still computed; the recurrent layer ignores them).
    """

    def feature_axis(self, x):
        if x.ndim not in (2, 3) or x.shape[-1] != self.num_features:
            raise ShapeError(f"BatchNormOverTime({self.num_features}) needs input (N, T, {self.num_features}) "
                             f"or (N, {self.num_features}), got {x.shape}")
        return x.ndim - 1

    def forward(self, x, mask=None):
        if mask is not None:
            mask = mask.data if isinstance(mask, Tensor) else mask
            mask = backend.convert(np.asarray(mask) if not hasattr(mask, "dtype") else mask, x.backend)
            if tuple(mask.shape) != x.shape[:-1]:
                raise ShapeError(f"BatchNormOverTime: mask must have shape {x.shape[:-1]} (the input's "
                                 f"without features), got {tuple(mask.shape)}")
            mask = mask.astype(x.dtype)[..., None]
        return super().forward(x, mask)
