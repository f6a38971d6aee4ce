"""Every built-in op: a `Function` with its forward and backward side by side (`Tensor`'s methods in
tensor.py apply them, one line each). Ops see plain backend arrays (NumPy or CuPy) and use only array
methods or `array_module(x)`, so the same code runs on both backends.

Reading order for students: `unbroadcast`, the binary ops (the chain rule for + - * / and @), the
unary ops (each backward is the derivative of its forward), reductions, and shape ops.
"""
import numpy as np

from .backend import array_module
from .errors import ShapeError
from .function import Function


def unbroadcast(grad, shape):
    """Sum `grad` over the axes that broadcasting stretched, so it has the input's `shape` again."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    return grad.sum(axis=axes).reshape(shape)


# ---- binary ops -----------------------------------------------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(-grad, sb) if ctx.needs_input_grad[1] else None


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """x ** p for a constant exponent p (a tensor exponent is exp(p * log x), see `Tensor.__pow__`)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x ** p

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad * ctx.p * x ** (ctx.p - 1), None


class MatMul(Function):
    """a @ b with NumPy's rules: batch dimensions broadcast, 1-D operands are promoted and squeezed."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: "
                             "the last axis of the first must equal the "
                             f"{'second-to-last' if b.ndim > 1 else 'only'} axis of the second")
        ctx.save_for_backward(a, b)
        try:
            return a @ b
        except ValueError:  # batch dimensions that do not broadcast
            raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: "
                             "their batch dimensions do not broadcast") from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a2 = a if a.ndim > 1 else a[None, :]  # promote vectors as NumPy's matmul does
        b2 = b if b.ndim > 1 else b[:, None]
        g = grad
        if b.ndim == 1:  # restore the axes matmul squeezed away, the last one first (grad may be 0-d)
            g = g[..., None]
        if a.ndim == 1:
            g = g[..., None, :]
        ga = unbroadcast(g @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(a2.swapaxes(-1, -2) @ g, b2.shape).reshape(b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Linear(Function):
    """x W^T + b in one op (PyTorch's F.linear): x (..., in), W (out, in), b (out,) or None.

    The same maths as `x @ W.T + b`, without the transpose and add as ops of their own; every
    recurrent step does two of these, so the saving is paid back T times per sequence."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise ShapeError(f"linear: input of shape {tuple(x.shape)} does not fit weight of shape "
                             f"{tuple(weight.shape)}: the input's last axis must be {weight.shape[1]}")
        ctx.save_for_backward(x, weight)
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1])  # batch axes flattened: dW sums over all of them
        gx = grad @ weight if needs[0] else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if needs[1] else None
        gb = g2.sum(axis=0) if len(needs) > 2 and needs[2] else None
        return gx, gw, gb


# ---- unary ops ------------------------------------------------------------------------------------
class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad * y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return array_module(x).log(x)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = array_module(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad / (2 * y)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad * (1 - y * y)


def sigmoid_array(x):
    """1 / (1 + e^-x), computed as 0.5 + 0.5 tanh(x / 2): one transcendental call and no overflow."""
    xp = array_module(x)
    y = xp.multiply(x, 0.5, dtype=x.dtype)
    xp.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = sigmoid_array(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad * y * (1 - y)


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x > 0)
        return array_module(x).maximum(x, 0).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        positive, = ctx.saved_tensors
        return grad * positive


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x > 0)
        ctx.slope = slope
        return array_module(x).where(x > 0, x, x * slope).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        positive, = ctx.saved_tensors
        return array_module(grad).where(positive, grad, grad * ctx.slope), None


class ELU(Function):
    """x for x > 0, alpha (e^x - 1) otherwise."""

    @staticmethod
    def forward(ctx, x, alpha):
        xp = array_module(x)
        negative_part = alpha * xp.expm1(xp.minimum(x, 0))
        ctx.save_for_backward(x > 0, negative_part)
        ctx.alpha = alpha
        return xp.where(x > 0, x, negative_part).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        positive, negative_part = ctx.saved_tensors
        return array_module(grad).where(positive, grad, grad * (negative_part + ctx.alpha)), None


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        ctx.save_for_backward(xp.sign(x))
        return xp.abs(x)

    @staticmethod
    def backward(ctx, grad):
        sign, = ctx.saved_tensors
        return grad * sign


class Clip(Function):
    """Clamp to [lo, hi]; the gradient passes where lo <= x <= hi (as torch.clamp)."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = array_module(x)
        inside = xp.ones(x.shape, bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        ctx.save_for_backward(inside)
        return xp.clip(x, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        inside, = ctx.saved_tensors
        return grad * inside, None, None


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


# ---- reductions -----------------------------------------------------------------------------------
def normalize_axis(axis, ndim):
    """`axis` (None, an int or a tuple, negatives allowed) as the sorted tuple of axes it names."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axes = x.shape, normalize_axis(axis, x.ndim)
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        kept = tuple(1 if i in ctx.axes else n for i, n in enumerate(ctx.shape))
        return array_module(grad).broadcast_to(grad.reshape(kept), ctx.shape)


class Max(Function):
    """Maximum over axes; the gradient is shared equally between tied maxima (as torch.amax)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = normalize_axis(axis, x.ndim)
        m = x.max(axis=axes, keepdims=True)
        is_max = x == m
        ctx.save_for_backward(is_max / is_max.sum(axis=axes, keepdims=True))
        ctx.kept = m.shape
        return m if keepdims else m.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))

    @staticmethod
    def backward(ctx, grad):
        share, = ctx.saved_tensors
        return (grad.reshape(ctx.kept) * share).astype(grad.dtype, copy=False)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """x - logsumexp(x), with the maximum subtracted first so large logits do not overflow."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad - array_module(y).exp(y) * grad.sum(axis=ctx.axis, keepdims=True)


# ---- shape ops ------------------------------------------------------------------------------------
class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ShapeError(f"cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} entries) to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Transpose(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = tuple(a % x.ndim for a in axes) if x.ndim else axes  # argsort needs them non-negative
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = sorted(range(len(ctx.axes)), key=ctx.axes.__getitem__)  # the permutation that undoes axes
        return grad.transpose(inverse), None


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        full = xp.zeros(ctx.shape, ctx.dtype)
        if _is_basic_index(ctx.index):
            full[ctx.index] = grad  # basic indexing selects each entry once: assignment is enough
        else:
            xp.add.at(full, ctx.index, grad)  # an integer array may pick the same entry twice
        return full, None


def _is_basic_index(index):
    for i in (index if isinstance(index, tuple) else (index,)):
        if not (isinstance(i, (slice, int, np.integer)) or i is None or i is Ellipsis):
            return False
    return True


class Concatenate(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return array_module(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(array_module(grad).split(grad, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        return array_module(arrays[0]).stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        n = grad.shape[ctx.axis]
        return tuple(grad.take(i, axis=ctx.axis) for i in range(n))


class Chunk(Function):
    """n equal parts along an axis (torch.chunk), as n outputs; the backward joins their gradients.

    One op instead of n slices: each slice's backward would build a zero array of the whole input."""

    @staticmethod
    def forward(ctx, x, n, axis):
        if x.shape[axis] % n:
            raise ShapeError(f"chunk: axis {axis} of shape {tuple(x.shape)} does not split into {n} equal parts")
        ctx.axis = axis
        size, before = x.shape[axis] // n, (slice(None),) * (axis % x.ndim)
        return tuple(x[before + (slice(i * size, (i + 1) * size),)] for i in range(n))  # views, as split's

    @staticmethod
    def backward(ctx, *grads):
        return array_module(grads[0]).concatenate(grads, axis=ctx.axis), None, None
