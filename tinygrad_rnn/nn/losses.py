"""Loss functions: each takes the model's output Tensor and a target, and returns a scalar Tensor.

    mse(pred, target)                 mean of (pred - target)²                 (torch's mse_loss)
    mae(pred, target)                 mean of |pred - target|                  (torch's l1_loss)
    cross_entropy(logits, target)     mean of -log softmax(logits)[target]     (torch's cross_entropy)
    bce_with_logits(logits, target)   mean of -[y log σ(x) + (1 - y) log(1 - σ(x))]

Targets may be NumPy/CuPy arrays or Tensors. `mask` (0 for padded steps, 1 for real ones; it
broadcasts against the loss entries) makes the mean run over the counted entries only, as torch's
mean over non-ignored entries does. Where nothing is counted the loss is 0, not torch's 0/0 = nan,
so that a batch chunk made only of padding does not end training.
"""
import numpy as np

from .. import backend
from ..backend import array_module
from ..errors import ShapeError
from ..function import Function
from ..ops import sigmoid_array, unbroadcast
from ..tensor import Tensor

__all__ = ["mse", "mae", "cross_entropy", "bce_with_logits"]


class SquaredError(Function):
    """sum(mask · (pred - target)²) / count as one op: it keeps only the difference for backward,
    not the squares and products a composition of ops would keep (a training step's largest arrays
    are the size of the model's output)."""

    @staticmethod
    def forward(ctx, pred, target, mask, count):
        ctx.shapes = pred.shape, target.shape
        diff = pred - target
        if mask is not None:
            diff *= mask  # mask is 0 or 1, so masking the difference masks its square
        ctx.save_for_backward(diff)
        ctx.count = count
        return (diff * diff).sum() / count

    @staticmethod
    def backward(ctx, grad):
        diff, = ctx.saved_tensors
        g = diff * (2 * grad / ctx.count)
        return (unbroadcast(g, ctx.shapes[0]) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g, ctx.shapes[1]) if ctx.needs_input_grad[1] else None, None, None)


def mse(pred, target, mask=None):
    """Mean squared error over the counted entries."""
    target = _target(target, pred)
    shape = np.broadcast_shapes(pred.shape, target.shape)
    if mask is None:
        count = float(np.prod(shape))
    else:
        count = _count(mask, shape, pred.dtype)
        mask = array_module(pred.data).broadcast_to(_plain(mask, pred).astype(pred.dtype), shape)
    return SquaredError.apply(pred, target, mask, count)


def mae(pred, target, mask=None):
    """Mean absolute error over the counted entries."""
    return masked_mean((pred - _target(target, pred)).abs(), mask)


def cross_entropy(logits, target, mask=None, ignore_index=None):
    """-log softmax(logits)[target], averaged over the counted entries.

    logits (..., C) with the classes on the last axis; target (...) integer class ids. An entry counts
    when its mask is 1 and its target is not `ignore_index`. log_softmax subtracts the maximum before
    exponentiating, so logits of ±1000 give finite losses and gradients.
    """
    # the class-id check reads the ids: done on the host copy when there is one, not on the GPU's
    host_target = np.asarray(target) if isinstance(target, (np.ndarray, list)) else None
    target = _plain(target, logits)
    num_classes = logits.shape[-1]
    if tuple(target.shape) != logits.shape[:-1]:
        raise ShapeError(f"cross_entropy: logits of shape {logits.shape} (classes last) need targets of "
                         f"shape {logits.shape[:-1]}, got {tuple(target.shape)}")
    xp = array_module(logits.data)
    target = target.astype(np.int64)
    counted = xp.ones(target.shape, logits.dtype)
    if ignore_index is not None:
        counted = counted * (target != ignore_index)
        target = xp.where(target == ignore_index, 0, target)
    _check_class_ids(host_target if host_target is not None else target, num_classes, ignore_index)
    if mask is not None:
        counted = counted * _plain(mask, logits).astype(logits.dtype)
    # pick log p[target] as a sum against a one-hot table: one Mul, no scatter in the backward
    one_hot = (xp.arange(num_classes) == target[..., None]).astype(logits.dtype)
    picked = (logits.log_softmax(axis=-1) * Tensor(one_hot)).sum(axis=-1)
    return masked_mean(-picked, counted)


class BCEWithLogits(Function):
    """Elementwise -[y log σ(x) + (1 - y) log(1 - σ(x))] = max(x, 0) - x y + log(1 + e^-|x|), a form that
    never exponentiates a positive number; its derivative is σ(x) - y (and -x for y)."""

    @staticmethod
    def forward(ctx, x, y):
        xp = array_module(x)
        ctx.save_for_backward(x, y)
        return xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = grad * (sigmoid_array(x) - y) if ctx.needs_input_grad[0] else None
        gy = grad * -x if ctx.needs_input_grad[1] else None
        return gx, gy


def bce_with_logits(logits, target, mask=None):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], in the stable logits form."""
    target = _target(target, logits)
    if target.shape != logits.shape:
        raise ShapeError(f"bce_with_logits: logits of shape {logits.shape} need targets of the same shape, "
                         f"got {target.shape}")
    return masked_mean(BCEWithLogits.apply(logits, target), mask)


def masked_mean(losses, mask=None):
    """The mean of a Tensor of per-entry losses over the entries where `mask` (broadcast to it) is 1."""
    if mask is None:
        return losses.mean()
    xp = array_module(losses.data)
    count = _count(mask, losses.shape, losses.dtype)
    mask = xp.broadcast_to(_plain(mask, losses).astype(losses.dtype), losses.shape)
    return (losses * Tensor(mask)).sum() * (1.0 / count)


def _count(mask, shape, dtype):
    """max(number of counted entries, 1): a float from a host mask; from a device mask a 0-d array of
    `dtype` that stays on the device (reading it would make every loss wait for the GPU)."""
    mask = mask.data if isinstance(mask, Tensor) else mask
    if not hasattr(mask, "dtype") or isinstance(mask, (np.ndarray, np.generic)):
        return max(float(np.broadcast_to(np.asarray(mask, np.float64), shape).sum()), 1.0)
    xp = array_module(mask)
    total = xp.broadcast_to(mask.astype(np.float64), shape).sum()
    return xp.maximum(total, 1.0).astype(dtype)


def _check_class_ids(target, num_classes, ignore_index):
    """ShapeError unless every target id (but ignore_index) is in [0, num_classes). On a device array
    this reads two numbers back (one transfer); the trainer passes host targets, where it is free."""
    if ignore_index is not None:
        target = target[target != ignore_index] if isinstance(target, np.ndarray) else target
    if not target.size:
        return
    if isinstance(target, np.ndarray):
        low, high = int(target.min()), int(target.max())
    else:
        low, high = backend.to_numpy(array_module(target).stack([target.min(), target.max()])).tolist()
    if low < 0 or high >= num_classes:
        raise ShapeError(f"cross_entropy: target class ids must be in [0, {num_classes}) for {num_classes} "
                         f"classes, got ids from {low} to {high}")


def _plain(x, like):
    """A Tensor's or list's data as an array on `like`'s backend."""
    x = x.data if isinstance(x, Tensor) else x
    return backend.convert(np.asarray(x) if not hasattr(x, "dtype") else x, like.backend)


def _target(target, like):
    """Targets as a Tensor: a Tensor stays (it may need gradients), an array takes `like`'s float dtype."""
    if isinstance(target, Tensor):
        return target
    return Tensor(_plain(target, like).astype(like.dtype, copy=False))
