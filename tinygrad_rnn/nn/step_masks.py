"""Random masks in a recurrent step, drawn outside it and passed in as step inputs.

A compiled cell (tinygrad_rnn/tape.py) is one traced step replayed T times, so its step must do the same thing
at every step: a mask drawn inside `forward` would be baked into the tape and replayed (the tape
refuses such a cell). Zoneout, recurrent dropout and their kin need a fresh or a fixed random mask per
step, so the masks are drawn *before* the sequence runs, for all T steps at once, from the package's
seeded generator, and reach the step the way x_t does: as columns beside it.

    x (N, T, D)  ++  masks (N, T, k)   →   x' (N, T, D + k)
    step t:  x_t, m_t = x'_t[:, :D], x'_t[:, D:]        (the tape reads both as it reads x_t)
             h_t, state_t = rule.step(cell, x_t, state_{t-1}, m_t)

So the same step runs on both the composed path (step by step through the graph) and the compiled one
(the tape: the slices of x' are hoisted with the input projection, and the masks are plain inputs of
every replayed step), and, as nothing else changes, gradients are exact on both. A cell's own fused
`sequence` kernel cannot take part: it computes the recurrence inside one op, where no rule can reach;
a layer with an active rule runs its cells compiled instead (the built-in cells' tapes are about twice
the fused kernels' time, bench/RESULTS.md).

A rule is any object with these methods (`VariationalDropout` below, which `Recurrent.recurrent_dropout`
uses, and the zoneout regulariser's, plugins/regularisers/zoneout.py, the example to copy):

    active(training)                        → bool: does it change anything now? (no: the cell runs alone)
    draw(state, steps, dtype, training)     → [array (N, steps, k), ...]: this sequence's masks, on the
                                              host, from tinygrad_rnn.random.generator(); [] for none
    step(cell, x, state, masks, training)   → (h, new_state): one step, masks[i] (N, k_i) Tensors

Add rules to a layer with `recurrent.step_masks.append(rule)` (a regulariser's `on_model_built`).
Per-sequence masks (variational dropout: one mask reused at every step) are drawn once and repeated
over the T steps. Everything a rule holds that the step reads (its p) is a plain attribute: the tape
sees it and re-traces when it changes.
"""
import numpy as np

from .. import backend
from .. import random as _random
from ..tensor import Tensor
from .module import Module


class MaskedCell(Module):
    """`cell` with the rules' masks read from the extra columns of its input (see the module docstring).

    Kept by `Recurrent` per cell, outside its parameters (its weights are the cell's own)."""

    def __init__(self, cell):
        self.cell = cell
        self.rules, self.counts, self.widths, self.input_size, self.training = (), (), (), 0, True

    def initial_state(self, batch_size):
        return self.cell.initial_state(batch_size)

    def forward(self, x, state):
        masks, start = [], self.input_size
        for width in self.widths:
            masks.append(x[:, start:start + width])
            start += width
        x = x[:, :self.input_size] if self.widths else x
        h, state = self._step(0, x, tuple(state), masks)
        return h, state

    def _step(self, i, x, state, masks):
        """Rule i's step, whose cell is the rest: rule i+1's step, and so on to the cell itself."""
        if i == len(self.rules):
            return self.cell(x, state)
        own, rest = masks[:self.counts[i]], masks[self.counts[i]:]
        return self.rules[i].step(lambda x_, s_: self._step(i + 1, x_, tuple(s_), rest), x, state, own,
                                  self.training)


def with_masks(masked, rules, x, state, training):
    """(masked cell ready to run, x with this sequence's masks appended): called by `Recurrent` per
    layer and direction, before the sequence runs."""
    drawn = [rule.draw(state, x.shape[1], x.dtype, training) for rule in rules]
    masked.rules, masked.training, masked.input_size = tuple(rules), bool(training), x.shape[2]
    masked.counts = tuple(len(arrays) for arrays in drawn)         # masks per rule
    drawn = [a for arrays in drawn for a in arrays]
    masked.widths = tuple(a.shape[2] for a in drawn)              # columns per mask
    if not drawn:
        return masked, x
    columns = np.concatenate([np.asarray(a, dtype=x.dtype) for a in drawn], axis=2)
    return masked, Tensor.concatenate([x, Tensor(backend.convert(columns, x.backend))], axis=2)


def bernoulli(shape, p, dtype):
    """1 with probability p, else 0, drawn on the host from the package's seeded generator."""
    return (_random.generator().random(shape) < p).astype(dtype)


class VariationalDropout:
    """Variational (recurrent) dropout (Gal & Ghahramani 2016): the h fed back into the cell is
    multiplied by one {0, 1/(1-p)} mask per sequence, the same at every step; nothing in evaluation."""

    def __init__(self, p):
        self.p = float(p)

    def active(self, training):
        return training and self.p > 0

    def draw(self, state, steps, dtype, training):
        h = state[0]
        keep = (_random.generator().random(h.shape) >= self.p).astype(dtype) / (1.0 - self.p)
        return [np.broadcast_to(keep[:, None, :], (h.shape[0], steps, h.shape[1]))]  # one mask, every step

    def step(self, cell, x, state, masks, training):
        return cell(x, (state[0] * masks[0],) + tuple(state[1:]))
