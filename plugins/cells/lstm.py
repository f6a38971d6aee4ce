"""Long short-term memory (Hochreiter & Schmidhuber 1997; the forget gate from Gers et al. 2000),
with PyTorch's equations and gate order (i, f, g, o):

    i = sigmoid(W_ii x + b_ii + W_hi h_{t-1} + b_hi)      input gate
    f = sigmoid(W_if x + b_if + W_hf h_{t-1} + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h_{t-1} + b_hg)         candidate cell
    o = sigmoid(W_io x + b_io + W_ho h_{t-1} + b_ho)      output gate
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

The cell c_t is updated by addition, not by a matrix product, so a gradient can flow back through
many steps as long as f stays near 1. Starting f there helps learn long dependencies
(Jozefowicz et al. 2015): `forget_bias` is added to the forget gate's bias at initialisation.

    rnnrun --cell lstm --data adding
    rnnrun --cell lstm:forget_bias=1.0 --data adding

This file holds the equations; `lstm_fused.py` subclasses the cell with a fused `sequence()` (all
steps as one hand-written op) and registers it as "lstm", which is what `rnnrun --cell lstm` runs.
"""
import math

from tinygrad_rnn import Tensor
from tinygrad_rnn.nn import Module, uniform_parameter


class LSTM(Module):
    """LSTM as torch.nn.LSTM: gates i, f, g, o; c = f*c + i*g; h = o*tanh(c)."""

    def __init__(self, input_size, hidden_size, forget_bias=0.0):
        self.input_size, self.hidden_size, self.forget_bias = input_size, hidden_size, float(forget_bias)
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's initialisation, so results compare
        self.weight_ih = uniform_parameter((4 * hidden_size, input_size), bound)
        self.weight_hh = uniform_parameter((4 * hidden_size, hidden_size), bound)
        self.bias_ih = uniform_parameter((4 * hidden_size,), bound)
        self.bias_hh = uniform_parameter((4 * hidden_size,), bound)
        self.bias_ih.data[hidden_size:2 * hidden_size] += self.forget_bias

    def initial_state(self, batch_size):
        w = self.weight_hh
        zeros = lambda: Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend)  # noqa: E731
        return zeros(), zeros()  # (h, c)

    def forward(self, x, state):
        h, c = state
        # x.linear(W, b) is x @ W.T + b as one op (PyTorch's F.linear): all four gates in one product each
        gates = x.linear(self.weight_ih, self.bias_ih) + h.linear(self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, axis=1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        return h, (h, c)

    # tinygrad_rnn.interop copies weights to and from torch.nn.LSTM
    torch_equivalent = "LSTM"

    @staticmethod
    def options_from_torch(module):
        return {}

    def torch_options(self):
        return {}

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, forget_bias={self.forget_bias}"
