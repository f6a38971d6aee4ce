"""LSTM with peephole connections (Gers & Schmidhuber 2000, "Recurrent nets that time and count"):
the gates also look at the cell, each through its own diagonal weights w_c* (a vector, elementwise).

    i = sigmoid(W_ii x + b_ii + W_hi h_{t-1} + b_hi + w_ci * c_{t-1})
    f = sigmoid(W_if x + b_if + W_hf h_{t-1} + b_hf + w_cf * c_{t-1})
    g = tanh(W_ig x + b_ig + W_hg h_{t-1} + b_hg)
    c_t = f * c_{t-1} + i * g
    o = sigmoid(W_io x + b_io + W_ho h_{t-1} + b_ho + w_co * c_t)       (o sees the new cell)
    h_t = o * tanh(c_t)

Gate order and the other parameters are those of the `lstm` cell (PyTorch's). Peepholes let the gates
time their opening precisely, which the paper's counting and timing tasks need.

    rnnrun --cell peephole --data adding

This file holds the equations; `peephole_fused.py` subclasses the cell with a fused `sequence()` (all
steps as one hand-written op) and registers it as "peephole", which is what `rnnrun --cell peephole` runs.
"""
import math

from tinygrad_rnn import Tensor
from tinygrad_rnn.nn import Module, uniform_parameter


class PeepholeLSTM(Module):
    """LSTM whose gates also see the cell: i, f through c_{t-1}, o through c_t (Gers & Schmidhuber 2000)."""

    def __init__(self, input_size, hidden_size, forget_bias=0.0):
        self.input_size, self.hidden_size, self.forget_bias = input_size, hidden_size, float(forget_bias)
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = uniform_parameter((4 * hidden_size, input_size), bound)
        self.weight_hh = uniform_parameter((4 * hidden_size, hidden_size), bound)
        self.bias_ih = uniform_parameter((4 * hidden_size,), bound)
        self.bias_hh = uniform_parameter((4 * hidden_size,), bound)
        self.bias_ih.data[hidden_size:2 * hidden_size] += self.forget_bias
        self.weight_ci = uniform_parameter((hidden_size,), bound)
        self.weight_cf = uniform_parameter((hidden_size,), bound)
        self.weight_co = uniform_parameter((hidden_size,), bound)

    def initial_state(self, batch_size):
        w = self.weight_hh
        zeros = lambda: Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend)  # noqa: E731
        return zeros(), zeros()  # (h, c)

    def forward(self, x, state):
        h, c = state
        gates = x.linear(self.weight_ih, self.bias_ih) + h.linear(self.weight_hh, self.bias_hh)  # x W^T + b
        i, f, g, o = gates.chunk(4, axis=1)
        i = (i + self.weight_ci * c).sigmoid()  # i and f peek at the old cell c_{t-1}
        f = (f + self.weight_cf * c).sigmoid()
        g = g.tanh()
        c = f * c + i * g
        o = (o + self.weight_co * c).sigmoid()  # o peeks at the new cell c_t
        h = o * c.tanh()
        return h, (h, c)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, forget_bias={self.forget_bias}"
