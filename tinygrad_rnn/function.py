"""`Function`: the one way an op is defined, built-in or user-written (PyTorch's autograd.Function habits).

An op is a class with two static methods that work on plain backend arrays:

    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return 2 * x * grad_output

    y = Square.apply(t)          # t is a Tensor; y is a Tensor that remembers how it was made

`apply` unwraps Tensor arguments into arrays, runs `forward`, wraps the result(s) in Tensors and, when
any input needs a gradient, records the op in the graph. The Function instance *is* the ctx and the
graph node: it keeps its parent Tensors and whatever forward saved. `backward` returns one gradient
per positional argument of `forward` (None for arguments that are not tensors or need none).
"""
import contextlib

import numpy as np

from . import backend
from .errors import BackendError, GraphError

_grad_enabled = True
_recording = []  # the lists that record_ops() blocks opened: every applied op is appended to the innermost


@contextlib.contextmanager
def no_grad():
    """Within this block (or decorated function) ops record no graph: for evaluation and updates."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def record_ops():
    """Within this block every applied op is also appended to the list it yields, as
    `(op class, args, kwargs, outputs)`: a Wengert list, in the order the ops ran. tape.py records one
    step of a cell this way and replays it for every step. Blocks nest; each sees the ops of its own."""
    record = []
    _recording.append(record)
    try:
        yield record
    finally:
        _recording.pop()


class Function:
    """Base class of every op. Subclass it and write `forward(ctx, *args)` and `backward(ctx, *grads)`."""

    saved_tensors = ()  # what forward saved with save_for_backward

    def save_for_backward(self, *arrays):
        """Keep arrays that backward will need; released after backward unless retain_graph=True."""
        self.saved_tensors = arrays

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        # This runs once per op (tens of thousands of times per training step of a composed RNN), so it
        # is written for speed: plain loops, no per-call import, and the common cases tested first.
        Tensor = _Tensor
        ctx = cls()
        arrays, needs_grad, first_type = [], [], None
        for a in args:
            if isinstance(a, Tensor):
                data = a.data
                if first_type is None:
                    first_type = type(data)
                elif type(data) is not first_type and not _same_backend(first_type, type(data)):
                    raise BackendError(f"{cls.__name__}: inputs live on different backends "
                                       f"({_describe(args)}); move them with .to('numpy') or .to('cupy')")
                arrays.append(data)
                needs_grad.append(a.requires_grad)
            else:
                arrays.append(a)
                needs_grad.append(False)
        ctx.needs_input_grad = tuple(needs_grad)  # a tuple: the garbage collector stops tracking it
        out = cls.forward(ctx, *arrays, **kwargs)
        requires_grad = _grad_enabled and True in needs_grad
        if not isinstance(out, tuple):  # the usual case: one output
            o = Tensor._from_op(out, requires_grad)
            if requires_grad:
                ctx.parents = args
                ctx.output_meta = ((o.data.shape, o.data.dtype),)
                o._ctx = ctx
            else:
                ctx.saved_tensors = None  # no backward will come: free what forward saved right away
            if _recording:  # a Wengert list entry: the op, where its inputs came from, its outputs
                _recording[-1].append((cls, args, kwargs, (o,)))
            return o
        outputs = tuple(Tensor._from_op(o, requires_grad) for o in out)
        if requires_grad:
            ctx.parents = args
            ctx.output_meta = tuple((o.data.shape, o.data.dtype) for o in outputs)
            for i, o in enumerate(outputs):
                o._ctx, o._out_index = ctx, i
        else:
            ctx.saved_tensors = None
        if _recording:
            _recording[-1].append((cls, args, kwargs, outputs))
        return outputs

    def _run_backward(self, grads):
        """Called by Tensor.backward: fill missing output grads with zeros and call backward."""
        if self.saved_tensors is _RELEASED:
            raise GraphError(f"backward through {type(self).__name__} a second time: its saved arrays "
                             "were freed after the first backward; pass retain_graph=True to the first call")
        for i, g in enumerate(grads):
            if g is None:
                shape, dtype = self.output_meta[i]
                xp = backend.array_module(next(x for x in grads if x is not None))
                grads[i] = xp.zeros(shape, dtype)
        result = type(self).backward(self, *grads)
        return result if isinstance(result, tuple) else (result,)


_RELEASED = ("<released>",)
_Tensor = None  # tensor.py sets this to its Tensor class (it imports this module, so it cannot be imported here)


def _same_backend(t1, t2):
    return (issubclass(t1, (np.ndarray, np.generic))) == (issubclass(t2, (np.ndarray, np.generic)))


def _describe(args):
    return ", ".join(backend.name_of(a.data) for a in args if hasattr(a, "data"))
