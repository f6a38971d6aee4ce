"""Independently recurrent neural network (Li, Li, Cook, Zhu & Gao 2018, "Independently recurrent
neural network (IndRNN): building a longer and deeper RNN"):

    h_t = relu(W_ih x_t + b_ih + u ⊙ h_{t-1})

Each neuron sees only its own past: the recurrent weight is a vector u (elementwise ⊙), not a matrix.
Back through time the gradient of neuron k is multiplied by u_k at every step (where the ReLU is
open), so it vanishes or explodes at a rate each neuron controls with one number: keeping
|u_k| <= 1 (here: initialised in [0, recurrent_init]) lets it survive hundreds of steps.

A user's cell, loaded with --plugin; nothing in the package knows it:

    rnnrun --plugin examples/indrnn_cell.py --cell indrnn --data sine --epochs 2
    rnnrun gradcheck --plugin examples/indrnn_cell.py --cell indrnn
    rnnrun vanish --plugin examples/indrnn_cell.py --cell rnn,indrnn --data adding:T=100
"""
import math

from tinygrad_rnn import ConfigError, Tensor, register_cell
from tinygrad_rnn.nn import Module, uniform_parameter


@register_cell("indrnn")
class IndRNN(Module):
    """IndRNN (Li et al. 2018): h = relu(W_ih x + b_ih + u * h), u a vector (one weight per neuron)."""

    def __init__(self, input_size, hidden_size, recurrent_init=1.0):
        if not 0 < recurrent_init <= 2:
            raise ConfigError(f"cell 'indrnn': recurrent_init must be in (0, 2], got {recurrent_init!r}")
        self.input_size, self.hidden_size, self.recurrent_init = input_size, hidden_size, float(recurrent_init)
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = uniform_parameter((hidden_size, input_size), bound)
        self.bias_ih = uniform_parameter((hidden_size,), bound)
        # u ~ U(0, recurrent_init): a 1-D weight_hh, so matrix initialisers (xavier, orthogonal) leave it alone
        half = self.recurrent_init / 2
        self.weight_hh = uniform_parameter((hidden_size,), half)
        self.weight_hh.data += half

    def initial_state(self, batch_size):
        w = self.weight_hh
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend),)

    def forward(self, x, state):
        h, = state
        h = (x @ self.weight_ih.T + self.bias_ih + self.weight_hh * h).relu()
        return h, (h,)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, recurrent_init={self.recurrent_init}"
