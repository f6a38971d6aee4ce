"""Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (Pascanu et al. 2013).

Both change the parameters' .grad after backward and before the optimiser step; parameters without a
gradient are skipped.
"""
import math

from ..backend import array_module
from ..tensor import Tensor


def _with_grads(params):
    params = [params] if isinstance(params, Tensor) else params
    return [p for p in params if p.grad is not None]


def clip_grad_norm(params, max_norm, norm_type=2.0):
    """Scale all gradients together so that their global norm is at most `max_norm`.

        total = (Σ_p Σ_i |g_pi|^norm_type)^(1/norm_type)      (max_i |g_pi| for norm_type inf)
        g ← g · min(1, max_norm / (total + 1e-6))

    Returns the total norm before clipping as a 0-d float64 array on the gradients' backend, as
    torch returns a tensor: the scaling is computed where the gradients are, without reading the norm
    back (on a GPU a read waits for the device). `float()` it to read it.
    """
    params = _with_grads(params)
    if not params:
        return 0.0
    xp = array_module(params[0].grad)
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = xp.stack([abs(p.grad).max().astype("float64") for p in params]).max()
    else:
        total = 0.0
        for p in params:
            total = total + (abs(p.grad.astype("float64")) ** norm_type).sum()
        total = total ** (1.0 / norm_type)
    coefficient = xp.minimum(max_norm / (total + 1e-6), 1.0)  # 1 (no change) when the norm is within bounds
    for p in params:
        # in the gradient's own dtype: a float64 0-d array would turn float32 gradients into float64
        p.grad = p.grad * coefficient.astype(p.grad.dtype)
    return total


def clip_grad_value(params, clip_value):
    """Clamp every gradient entry to [-clip_value, clip_value]."""
    for p in _with_grads(params):
        p.grad = array_module(p.grad).clip(p.grad, -clip_value, clip_value)
