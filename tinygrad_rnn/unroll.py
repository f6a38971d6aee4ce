"""`unroll`: the composed loop over time, one `cell(x_t, state)` call per step through the autograd graph.

It is the reference every faster path (a cell's fused `sequence`, the compiled tape of `tape.py`) is
checked against, and the fallback when neither applies.
"""
import contextlib
import gc

from .tensor import Tensor


@contextlib.contextmanager
def _no_cycle_collection():
    """Pause Python's cyclic garbage collector while an unrolled loop builds the graph.

    Each step adds some 50-80 Python objects (Tensors, op nodes, index tuples) and none of them form
    reference cycles, so the collector finds nothing; but it keeps rescanning the whole growing graph,
    which costs up to 40% of a 1000-step unroll. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_no_cycle_collection()
def unroll(cell, x, state, mask=None, on_step=None):
    """Run `cell` over x (N, T, D) one step at a time: (outputs (N, T, H), final state).

    This composed loop is the reference path and every cell's fallback for `sequence`.
    `mask` is None or an (N, T) array of 1 (real step) and 0 (padding).
    `on_step(t, h)` is called with the hidden state after each step.
    """
    outputs = []
    for t in range(x.shape[1]):
        h, new_state = cell(x[:, t], state)
        if mask is not None:
            # padding keeps the old state: state + keep * (new - state) is new where keep = 1, old where 0
            keep = Tensor(mask[:, t:t + 1])
            new_state = tuple(old + keep * (new - old) for new, old in zip(new_state, state))
            h = h * keep
        state = tuple(new_state)
        if on_step is not None:
            on_step(t, state[0])
        outputs.append(h)
    return Tensor.stack(outputs, axis=1), state
