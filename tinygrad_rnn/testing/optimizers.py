"""The checks every optimiser plugin must pass, on the convex quadratic

    f(p) = ½ Σ a_i (p_i - c_i)²,   ∇f = a ⊙ (p - c),   a_i in [1, 3]

whose gradient is set by hand (no graph), for two parameters of different shapes.
"""
import copy

import numpy as np

from ..errors import ConfigError
from ..registry import plugin_options
from ..tensor import Tensor
from .base import assert_close, check_bad_options

LR = 0.01
_rng = np.random.default_rng(0)
CURVATURE = [_rng.uniform(1, 3, (3, 2)), _rng.uniform(1, 3, (4,))]
CENTRE = [_rng.uniform(-1, 1, (3, 2)), _rng.uniform(-1, 1, (4,))]
START = [_rng.uniform(-1, 1, (3, 2)), _rng.uniform(-1, 1, (4,))]


def parameters(dtype=np.float64, start=START):
    return [Tensor(np.array(s, dtype), requires_grad=True) for s in start]


def make(cls, options, params, lr=None):
    """cls(params, lr, **options): lr as given here, else the options' lr, else LR."""
    options = dict(options)
    chosen = options.pop("lr", LR)
    return cls(params, lr=chosen if lr is None else lr, **options)


def loss(params):
    return sum(0.5 * float((a * (p.numpy() - c) ** 2).sum()) for p, a, c in zip(params, CURVATURE, CENTRE))


def set_gradients(params, scale=1.0):
    for p, a, c in zip(params, CURVATURE, CENTRE):
        p.grad = (scale * a * (p.data - c)).astype(p.dtype)


def steps(optimizer, params, n):
    for _ in range(n):
        set_gradients(params)
        optimizer.step()


def values(params):
    return [p.numpy().copy() for p in params]


def without_decay(cls, options):
    """The options with every numeric *decay* option set to 0 (decay moves weights without a gradient)."""
    return {**options, **{k: 0.0 for k, v in plugin_options(cls).items()
                          if "decay" in k and isinstance(v, (int, float)) and not isinstance(v, bool)}}


# ---- the checks -----------------------------------------------------------------------------------
def check_bad_options_raise_config_error(cls, options):
    """lr < 0 and option values out of range raise ConfigError (or the optimiser steps with them)."""
    def build(opts):
        params = parameters()
        optimizer = make(cls, opts, params)
        steps(optimizer, params, 1)
    check_bad_options(cls, options, build)
    try:
        build({**options, "lr": -1.0})
    except ConfigError:
        return
    raise AssertionError("lr=-1.0: expected a ConfigError, got an optimiser that accepts it")


def check_reduces_a_convex_quadratic(cls, options):
    """50 steps on a convex quadratic at lr 0.01 halve the loss or better, and end below where they began."""
    params = parameters()
    optimizer = make(cls, options, params)
    start = loss(params)
    steps(optimizer, params, 50)
    end = loss(params)
    assert np.isfinite(end) and end < 0.5 * start, f"expected the loss {start:.4g} to fall below half, got {end:.4g}"


def check_respects_lr(cls, options):
    """lr = 0 leaves the weights where they are; twice the lr gives twice the first step; and setting
    optimizer.lr after construction (what a schedule does) acts as giving it at construction."""
    moved = {}
    for label, lr, late in (("lr=0", 0.0, None), ("lr", LR, None), ("2 lr", 2 * LR, None), ("lr set late", LR, 2 * LR)):
        params = parameters()
        optimizer = make(cls, options, params, lr)
        if late is not None:
            optimizer.lr = late
        steps(optimizer, params, 1)
        moved[label] = [v - s for v, s in zip(values(params), START)]
    for i, step in enumerate(moved["lr=0"]):
        assert_close(step, np.zeros_like(step), f"parameter {i} after a step with lr=0 (expected no change)", atol=0)
    for i, (one, two, late) in enumerate(zip(moved["lr"], moved["2 lr"], moved["lr set late"])):
        assert_close(two, 2 * one, f"parameter {i}: the first step at 2 lr versus twice the step at lr", rtol=1e-6)
        assert_close(late, two, f"parameter {i}: the first step after setting optimizer.lr = 2 lr versus "
                                "constructing with 2 lr (a schedule sets .lr)", rtol=1e-9)


def check_state_dict_round_trip(cls, options):
    """A new optimiser given state_dict() after three steps takes the same fourth step as the original."""
    params = parameters()
    original = make(cls, options, params)
    steps(original, params, 3)
    state, at = copy.deepcopy(original.state_dict()), values(params)
    steps(original, params, 1)
    copies = parameters(start=at)
    resumed = make(cls, options, copies, lr=LR * 3)  # load_state_dict must bring lr back too
    resumed.load_state_dict(state)
    steps(resumed, copies, 1)
    for i, (got, expected) in enumerate(zip(values(copies), values(params))):
        assert_close(got, expected, f"parameter {i}: the fourth step after load_state_dict versus without a break",
                     rtol=1e-12, atol=0)


def check_zero_gradient_moves_nothing(cls, options):
    """From a fresh start, zero gradients (with weight decay off) leave the weights unchanged, and a
    parameter without a gradient is never touched."""
    params = parameters()
    optimizer = make(cls, without_decay(cls, options), params)
    for _ in range(3):
        set_gradients(params, scale=0.0)
        params[1].grad = None
        optimizer.step()
    for i, (got, start) in enumerate(zip(values(params), START)):
        what = "with a zero gradient" if i == 0 else "without a gradient (grad None)"
        assert_close(got, start, f"parameter {i} after 3 steps {what} (expected unchanged)", rtol=0, atol=0)


def check_keeps_dtype_and_shape(cls, options):
    """float32 parameters stay float32 arrays of their shape after steps (no silent float64 upcast)."""
    params = parameters(np.float32)
    optimizer = make(cls, options, params)
    steps(optimizer, params, 3)
    for i, (p, s) in enumerate(zip(params, START)):
        assert p.dtype == np.float32 and p.shape == s.shape, \
            f"parameter {i}: expected float32 {s.shape}, got {p.dtype} {p.shape}"


CHECKS = [check_bad_options_raise_config_error, check_reduces_a_convex_quadratic, check_respects_lr,
          check_state_dict_round_trip, check_zero_gradient_moves_nothing, check_keeps_dtype_and_shape]
