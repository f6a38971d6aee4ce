"""`Optimizer`, the base of every optimiser plugin, and the learning-rate schedules.

An optimiser plugin writes only the update of one parameter; the base class loops over the
parameters, skips those without a gradient and runs the update under `no_grad`:

    from tinygrad_rnn import register_optimizer
    from tinygrad_rnn.optim import Optimizer, array_module

    @register_optimizer("signsgd")
    class SignSGD(Optimizer):
        '''Sign SGD: p ← p - lr · sign(g).'''

        def update(self, p, grad, state):
            p.data -= self.lr * array_module(grad).sign(grad)

`p.data` and `grad` are backend arrays (NumPy or CuPy); the update changes `p.data` in place with
array methods or `array_module(array)` (numpy or cupy), so it runs on either backend. `state` is a
dict kept per parameter between steps (moment estimates, a step counter). `lr` is a plain
attribute: the schedules below (one `.step()` per epoch, as PyTorch's) set it.

Every registered optimiser is also a class of this module, as in `torch.optim`:

    from tinygrad_rnn.optim import Adam
    optimizer = Adam(model.parameters(), lr=1e-2)

The built-in optimisers are plugins (plugins/optimizers/), which the library never names; the module's
`__getattr__` at the bottom finds them in the registry by class name when first asked for.
"""
import math

import numpy as np

from . import backend
from .backend import array_module
from .errors import ConfigError
from .function import no_grad
from .tensor import Tensor

__all__ = ["Optimizer", "LRScheduler", "StepLR", "CosineAnnealingLR", "array_module"]


class Optimizer:
    """Base class: `step()` applies `update(p, grad, state)` to every parameter that has a gradient."""

    def __init__(self, params, lr):
        self.params = [params] if isinstance(params, Tensor) else list(params)
        if not self.params:
            raise ConfigError(f"{type(self).__name__} got an empty parameter list: the model has no "
                              "parameters with requires_grad=True")
        self.lr = check_number(type(self).__name__, "lr", lr, low=0.0)
        self.state = [{} for _ in self.params]
        self.scheduler = None  # a schedule attaches itself here; the trainer steps it once per epoch

    def update(self, p, grad, state):
        """Change p.data in place, given its gradient (an array) and its state dict."""
        raise NotImplementedError(f"{type(self).__name__} must define update(p, grad, state)")

    def step(self):
        with no_grad():
            for p, state in zip(self.params, self.state):
                if p.grad is not None:
                    self.update(p, p.grad, state)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    # ---- saving and resuming --------------------------------------------------------------------------
    def state_dict(self):
        """{'lr', 'state': one dict per parameter, arrays as host NumPy copies (read from a GPU all
        at once, not one transfer per array)."""
        host = iter(backend.to_numpy_all([v for s in self.state for v in s.values() if hasattr(v, "shape")]))
        return {"lr": self.lr, "state": [{k: next(host) if hasattr(v, "shape") else v for k, v in s.items()}
                                         for s in self.state]}

    def load_state_dict(self, state_dict):
        if len(state_dict["state"]) != len(self.params):
            raise ConfigError(f"optimizer state has {len(state_dict['state'])} parameters, "
                              f"this optimizer has {len(self.params)}")
        self.lr = state_dict["lr"]
        self.state = [{k: backend.convert(np.asarray(v), p.backend) if isinstance(v, np.ndarray) else v
                       for k, v in s.items()} for s, p in zip(state_dict["state"], self.params)]
        return self

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr}, {len(self.params)} parameters)"


def check_number(owner, name, value, low=None, high=None, high_open=False):
    """`value` as a float, or a ConfigError naming it and its valid range ([low, high] or [low, high))."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or math.isnan(value):
        raise ConfigError(f"{owner}: {name} must be a number, got {value!r}")
    too_high = high is not None and (value >= high if high_open else value > high)
    if (low is not None and value < low) or too_high:
        hi = "" if high is None else f", {high}{')' if high_open else ']'}"
        valid = f"[{low}{hi}" if high is not None else f">= {low}"
        raise ConfigError(f"{owner}: {name} must be {'in ' if high is not None else ''}{valid}, got {value!r}")
    return float(value)


# ---- learning-rate schedules ---------------------------------------------------------------------------
class LRScheduler:
    """Sets optimizer.lr from the epoch count; call `step()` once at the end of every epoch.

    The schedule attaches itself as `optimizer.scheduler`, where the trainer finds and steps it.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        optimizer.scheduler = self

    def lr_at(self, epoch):
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self):
        return [self.optimizer.lr]

    def state_dict(self):
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.base_lr, self.last_epoch = state["base_lr"], state["last_epoch"]
        self.optimizer.lr = self.lr_at(self.last_epoch)


class StepLR(LRScheduler):
    """lr = base_lr · gamma^⌊epoch / step_size⌋: decay by gamma every step_size epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
            raise ConfigError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = check_number("StepLR", "gamma", gamma, low=0.0)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) · (1 + cos(π · epoch / T_max)) / 2 (Loshchilov & Hutter 2017,
    SGDR, without restarts): from base_lr down to eta_min over T_max epochs (and back up after)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if isinstance(T_max, bool) or not isinstance(T_max, (int, np.integer)) or T_max < 1:
            raise ConfigError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        self.T_max = int(T_max)
        self.eta_min = check_number("CosineAnnealingLR", "eta_min", eta_min, low=0.0)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


# The schedules the runner offers as `--schedule NAME[:k=v]` (stepped once per epoch).
SCHEDULES = {"step": StepLR, "cosine": CosineAnnealingLR}


def check_schedule(name, options=None):
    """Raise ConfigError unless `name` is a schedule and `options` give what it needs."""
    from .errors import ConfigError
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; valid schedules: {', '.join(SCHEDULES)}")
    if name == "step" and "step_size" not in (options or {}):
        raise ConfigError("schedule 'step' needs step_size, e.g. --schedule step:step_size=10,gamma=0.5")


def make_schedule(optimizer, name, options=None, epochs=None):
    """Attach schedule `name` to `optimizer`; cosine anneals over all `epochs` unless T_max is given."""
    from .errors import ConfigError
    check_schedule(name, options)
    options = dict(options or {})
    if name == "cosine":
        options.setdefault("T_max", epochs)
    try:
        return SCHEDULES[name](optimizer, **options)
    except TypeError as e:
        raise ConfigError(f"schedule {name!r}: {e}") from None


# ---- the optimiser plugins as classes of this module (`from tinygrad_rnn.optim import Adam`) -------------
def registered_classes():
    """{class name: class} of every registered optimiser: Adam, AdamW, RMSprop, SGD and any plugin's."""
    from .registry import optimizers
    return {optimizers.get(name).__name__: optimizers.get(name) for name in optimizers.names()}


def __getattr__(name):
    """A registered optimiser by its class name (PEP 562: called only for names not defined above)."""
    if not name.startswith("_"):  # dunder look-ups (copy, pickle, inspect) must not import the plugins
        found = registered_classes().get(name)
        if found is not None:
            return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}" +
                         ("" if name.startswith("_") else
                          f"; the optimisers are {', '.join(sorted(registered_classes()))}"))


def __dir__():
    return sorted(set(globals()) | set(registered_classes()))
