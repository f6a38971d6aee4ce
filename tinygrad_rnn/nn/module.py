"""`Module`: the base of layers, cells and models, with PyTorch's habits.

A module's parameters are found from its attributes: a Tensor with requires_grad=True is a
parameter, a Tensor without it is a buffer (saved in state_dict, not trained, e.g. BatchNorm's
running mean), and sub-modules (also inside lists and tuples) are searched recursively.
"""
import numpy as np

from .. import backend
from ..errors import ConfigError
from ..tensor import Tensor


class Module:
    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ---- what a module holds --------------------------------------------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_tensors(self, prefix=""):
        """Every Tensor attribute, parameters and buffers, with dotted names, each once."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                items = [(name, value)] if isinstance(value, Tensor) else \
                    [(f"{name}.{i}", v) for i, v in enumerate(value) if isinstance(v, Tensor)] \
                    if isinstance(value, (list, tuple)) else []
                for item_name, t in items:
                    if id(t) not in seen:
                        seen.add(id(t))
                        yield (f"{module_name}.{item_name}" if module_name else item_name), t

    def named_parameters(self):
        return [(n, t) for n, t in self.named_tensors() if t.requires_grad]

    def parameters(self):
        return [t for _, t in self.named_parameters()]

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    # ---- saving and loading -------------------------------------------------------------------------
    def state_dict(self):
        """{name: host NumPy copy} of every parameter and buffer (from a GPU in one transfer per dtype:
        the trainer takes one whenever the validation loss improves)."""
        tensors = list(self.named_tensors())
        return dict(zip([name for name, _ in tensors], backend.to_numpy_all([t.data for _, t in tensors])))

    def load_state_dict(self, state, strict=True):
        tensors = dict(self.named_tensors())
        missing = sorted(set(tensors) - set(state))
        unexpected = sorted(set(state) - set(tensors))
        if strict and (missing or unexpected):
            raise ConfigError(f"state_dict does not fit {type(self).__name__}: missing {missing}, "
                              f"unexpected {unexpected}")
        for name, value in state.items():
            if name not in tensors:
                continue
            t = tensors[name]
            value = np.asarray(value)
            if tuple(value.shape) != t.shape:
                raise ConfigError(f"state_dict entry {name!r} has shape {tuple(value.shape)}, "
                                  f"the module expects {t.shape}")
            t.data = backend.convert(value.astype(t.dtype), t.backend)
        return self

    # ---- modes and housekeeping ---------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, backend_name=None, dtype=None):
        """Move every parameter and buffer, in place, to a backend and/or dtype (e.g. float64)."""
        for _, t in self.named_tensors():
            if backend_name is not None:
                t.data = backend.convert(t.data, backend_name)
            if dtype is not None and t.data.dtype.kind == "f":
                t.data = t.data.astype(dtype)
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        inner = "\n".join(f"  ({n}): " + repr(c).replace("\n", "\n  ") for n, c in children)
        return f"{type(self).__name__}({self.extra_repr()}\n{inner}\n)"
