"""`Tensor`: an n-dimensional array (NumPy or CuPy) that remembers the op that made it.

This file holds the data, the gradient, every method (each arithmetic one a line that applies an op
of `ops.py`) and `backward()`, which walks the recorded graph from the output back to the leaves,
calling each op's backward once, in reverse topological order (found without recursion, so a
100,000-step unrolled graph is fine).
"""
import numpy as np

from . import backend, ops
from . import random as _random
from .errors import GraphError, ShapeError
from .function import _RELEASED, no_grad  # noqa: F401  (no_grad re-exported for convenience)


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_out_index", "_retains_grad", "name",
                 "__weakref__")
    __array_ufunc__ = None  # `np.float32(2) * t` and `array * t` defer to Tensor's reflected ops

    def __init__(self, data, requires_grad=False, dtype=None):
        """From a scalar, a (nested) list, a NumPy/CuPy array or another Tensor.

        Python floats and lists of them become float32; an array keeps its dtype (as torch.from_numpy
        does), so float64 arrays stay float64 for gradient checks. `dtype` overrides both.
        """
        if isinstance(data, Tensor):
            data = data.data
        if _is_array(data):
            array = data if dtype is None else data.astype(dtype, copy=False)
        else:
            array = np.asarray(data, dtype=dtype)
            if dtype is None and array.dtype == np.float64:
                array = array.astype(np.float32)
        if isinstance(array, np.generic):
            array = np.asarray(array)
        self.data = backend.convert(array, backend.get_backend()) if isinstance(array, np.ndarray) else array
        self.grad, self.requires_grad = None, bool(requires_grad)
        self._ctx, self._out_index, self._retains_grad, self.name = None, 0, False, None

    @classmethod
    def _from_op(cls, data, requires_grad):
        """Wrap an op's output array without any conversion (the fast path used by Function.apply)."""
        t = cls.__new__(cls)
        if type(data) is not np.ndarray and (not hasattr(data, "ndim") or isinstance(data, np.generic)):
            data = np.asarray(data)  # NumPy reductions return scalars; keep everything an array
        t.data, t.grad, t.requires_grad = data, None, requires_grad
        t._ctx, t._out_index, t._retains_grad, t.name = None, 0, False, None
        return t

    # ---- what a tensor is -------------------------------------------------------------------------
    @property
    def shape(self): return tuple(self.data.shape)
    @property
    def dtype(self): return self.data.dtype
    @property
    def ndim(self): return self.data.ndim
    @property
    def size(self): return int(self.data.size)
    @property
    def backend(self): return backend.name_of(self.data)
    @property
    def is_leaf(self): return self._ctx is None
    def __len__(self): return self.data.shape[0]

    def __repr__(self):
        extra = f", grad_fn={type(self._ctx).__name__}" if self._ctx is not None else \
            ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_numpy(self.data)!r}{extra})"

    def numpy(self):
        """A host NumPy copy of the data."""
        return np.array(backend.to_numpy(self.data), copy=True)

    def item(self): return self.data.item()

    def detach(self):
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor._from_op(self.data, False)

    def to(self, name):
        """A copy on backend `name` ('numpy' or 'cupy'), keeping requires_grad; a leaf of the graph."""
        return Tensor._from_op(backend.convert(self.data, name), self.requires_grad)

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward (as PyTorch's retain_grad)."""
        self._retains_grad = True
        return self

    def zero_grad(self): self.grad = None

    # ---- arithmetic: each method applies one op of ops.py ------------------------------------------
    def __add__(self, other): return ops.Add.apply(self, _wrap(other, self))
    def __radd__(self, other): return ops.Add.apply(_wrap(other, self), self)
    def __sub__(self, other): return ops.Sub.apply(self, _wrap(other, self))
    def __rsub__(self, other): return ops.Sub.apply(_wrap(other, self), self)
    def __mul__(self, other): return ops.Mul.apply(self, _wrap(other, self))
    def __rmul__(self, other): return ops.Mul.apply(_wrap(other, self), self)
    def __truediv__(self, other): return ops.Div.apply(self, _wrap(other, self))
    def __rtruediv__(self, other): return ops.Div.apply(_wrap(other, self), self)
    def __matmul__(self, other): return ops.MatMul.apply(self, _wrap(other, self))
    def __rmatmul__(self, other): return ops.MatMul.apply(_wrap(other, self), self)
    def matmul(self, other): return ops.MatMul.apply(self, _wrap(other, self))
    def linear(self, weight, bias=None): return ops.Linear.apply(self, weight, bias)
    def __neg__(self): return ops.Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):  # a tensor exponent: x^p = e^(p log x)
            return (exponent * self.log()).exp()
        if isinstance(exponent, np.generic):  # a NumPy float64 scalar would turn float32 data into float64
            exponent = exponent.item()
        return ops.Pow.apply(self, exponent)

    def __rpow__(self, base): return (self * float(np.log(base))).exp()

    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def sqrt(self): return ops.Sqrt.apply(self)
    def tanh(self): return ops.Tanh.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def relu(self): return ops.ReLU.apply(self)
    def leaky_relu(self, slope=0.01): return ops.LeakyReLU.apply(self, slope)
    def elu(self, alpha=1.0): return ops.ELU.apply(self, alpha)
    def abs(self): return ops.Abs.apply(self)
    def clip(self, lo=None, hi=None): return ops.Clip.apply(self, lo, hi)
    def astype(self, dtype): return self if self.data.dtype == dtype else ops.Cast.apply(self, dtype)

    # ---- reductions ---------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return ops.Sum.apply(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return ops.Max.apply(self, axis, keepdims)
    def softmax(self, axis=-1): return ops.Softmax.apply(self, axis)
    def log_softmax(self, axis=-1): return ops.LogSoftmax.apply(self, axis)

    def mean(self, axis=None, keepdims=False):
        axes = ops.normalize_axis(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(axis, keepdims) * (1.0 / count)

    # ---- shape ops ----------------------------------------------------------------------------------
    def reshape(self, *shape): return ops.Reshape.apply(self, _shape(shape))
    def transpose(self, *axes): return ops.Transpose.apply(self, _shape(axes) or tuple(reversed(range(self.ndim))))
    @property
    def T(self): return self.transpose()
    def chunk(self, n, axis=0): return ops.Chunk.apply(self, n, axis)
    @staticmethod
    def concatenate(tensors, axis=0): return ops.Concatenate.apply(*tensors, axis=axis)
    @staticmethod
    def stack(tensors, axis=0): return ops.Stack.apply(*tensors, axis=axis)

    def __getitem__(self, index):
        index = tuple(map(_plain_index, index)) if isinstance(index, tuple) else _plain_index(index)
        return ops.GetItem.apply(self, index)

    # ---- constructors -------------------------------------------------------------------------------
    @staticmethod
    def zeros(*shape, requires_grad=False, dtype=np.float32):
        return Tensor(backend.default_module().zeros(_shape(shape), dtype), requires_grad)

    @staticmethod
    def ones(*shape, requires_grad=False, dtype=np.float32):
        return Tensor(backend.default_module().ones(_shape(shape), dtype), requires_grad)

    @staticmethod
    def randn(*shape, requires_grad=False, dtype=np.float32):
        """Standard normal entries from the package's seeded generator (see `manual_seed`)."""
        host = _random.generator().standard_normal(_shape(shape)).astype(dtype)
        return Tensor(backend.convert(host, backend.get_backend()), requires_grad, dtype=dtype)

    # ---- backpropagation ------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad that requires it.

        `grad` defaults to 1 for a scalar. Gradients add up across calls until zeroed. The arrays the
        ops saved are released afterwards unless `retain_graph=True`.
        """
        xp = backend.array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise GraphError(f"backward() without a gradient needs a scalar, got shape {self.shape}; "
                                 "pass grad= with the output's shape or reduce first (e.g. .sum())")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.data.dtype)
            if tuple(grad.shape) != self.shape:
                raise ShapeError(f"backward(grad=...): grad has shape {tuple(grad.shape)} but the tensor "
                                 f"has shape {self.shape}; they must be equal")
        if not self.requires_grad:
            raise GraphError("backward() on a tensor that does not require grad: no input had "
                             "requires_grad=True, or it was computed under no_grad()")
        if self._ctx is None or self._retains_grad:
            self.grad = _accumulate(self.grad, grad)
        if self._ctx is None:
            return
        pending = {id(self._ctx): [None] * len(self._ctx.output_meta)}  # node → its outputs' gradients
        pending[id(self._ctx)][self._out_index] = grad
        with no_grad():
            for node in reversed(topological_order(self._ctx)):
                grads = pending.pop(id(node), None)
                if grads is None:
                    continue
                input_grads = node._run_backward(grads)
                for parent, g in zip(node.parents, input_grads):
                    if g is None or not isinstance(parent, Tensor) or not parent.requires_grad:
                        continue
                    if parent._ctx is None or parent._retains_grad:  # a leaf: its .grad collects
                        parent.grad = _accumulate(parent.grad, g)
                    if parent._ctx is not None:  # an op's output: its gradient waits for that op
                        slots = pending.setdefault(id(parent._ctx), [None] * len(parent._ctx.output_meta))
                        i = parent._out_index
                        slots[i] = g if slots[i] is None else slots[i] + g
                input_grads = None  # delivered: drop this node's references before the next op runs
                if not retain_graph:
                    node.saved_tensors = _RELEASED


def _accumulate(total, g):
    """total + g, where a first gradient is copied: an op may hand the same array (or a read-only
    broadcast view) to several inputs, and each .grad must be its own array that may be changed in place."""
    return g.copy() if total is None else total + g


def topological_order(root):
    """Graph nodes (Functions) ordered so that each comes after every node that feeds it.

    `root` is a graph node (a tensor's `_ctx`); `backward()` calls the nodes' backward in the reverse
    of this order. Iterative depth-first search with an explicit stack: recursion would overflow on
    long unrolls.
    """
    order, visited = [], {id(root)}
    stack = [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for p in parents:
            child = getattr(p, "_ctx", None)
            if child is not None and id(child) not in visited:
                visited.add(id(child))
                stack.append((child, iter(child.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def _shape(shape):
    """(2, 3) from either (2, 3) or ((2, 3),): a shape given as separate numbers or as one tuple."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _is_array(x):
    return isinstance(x, (np.ndarray, np.generic)) or hasattr(x, "__cuda_array_interface__")



def _wrap(x, like):
    """Python numbers and arrays become constant Tensors of `like`'s dtype (no float64 creep), except
    a float constant beside an integer tensor, which stays float (int_tensor * 0.5 must not be 0)."""
    if isinstance(x, Tensor):
        return x
    x = backend.array_module(like.data).asarray(x)
    if x.dtype.kind == "f" and like.data.dtype.kind != "f":
        return Tensor(x)
    return Tensor(x.astype(like.data.dtype, copy=False))


def _plain_index(i):
    """Tensors and lists used as indices, alone or inside a tuple, become arrays."""
    return i.data if isinstance(i, Tensor) else np.asarray(i) if isinstance(i, list) else i
