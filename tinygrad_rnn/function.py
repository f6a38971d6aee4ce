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
        """Run the op on `args`: Tensors become their arrays, the rest is passed as it is. The result (a
        tuple of them when forward returns a tuple) is a Tensor of the inputs' class, in the graph when
        an input needs a gradient."""
        ctx = cls()
        arrays, needs_grad, tensor_class = [], [], None
        for a in args:
            if hasattr(a, "requires_grad"):  # a Tensor (known by what it has: tensor.py imports this file)
                if tensor_class is None:
                    tensor_class, first = type(a), a.data
                elif type(a.data) is not type(first) and backend.name_of(a.data) != backend.name_of(first):
                    names = ", ".join(backend.name_of(t.data) for t in args if hasattr(t, "requires_grad"))
                    raise BackendError(f"{cls.__name__}: inputs live on different backends ({names}); "
                                       "move them with .to('numpy') or .to('cupy')")
                arrays.append(a.data)
                needs_grad.append(a.requires_grad)
            else:
                arrays.append(a)
                needs_grad.append(False)
        if tensor_class is None:
            raise GraphError(f"{cls.__name__}.apply needs at least one Tensor argument")
        ctx.needs_input_grad = tuple(needs_grad)  # a tuple: the garbage collector stops tracking it
        out = cls.forward(ctx, *arrays, **kwargs)
        requires_grad = _grad_enabled and True in needs_grad
        if requires_grad:  # this ctx becomes the graph node of the outputs
            ctx.parents, ctx.output_meta = args, []  # output_meta: each output's (shape, dtype)
        else:
            ctx.saved_tensors = None  # no backward will come: free what forward saved right away
        outputs = []
        for i, o in enumerate(out if isinstance(out, tuple) else (out,)):
            t = tensor_class._from_op(o, requires_grad)
            if requires_grad:
                t._ctx, t._out_index = ctx, i
                ctx.output_meta.append((t.data.shape, t.data.dtype))
            outputs.append(t)
        if _recording:  # a Wengert list entry: the op, where its inputs came from, its outputs
            _recording[-1].append((cls, args, kwargs, tuple(outputs)))
        return tuple(outputs) if isinstance(out, tuple) else outputs[0]

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

