"""Gated recurrent unit, gate order (r, z, n). Two variants differ only in where the reset gate acts.

variant="pytorch" (the default; torch.nn.GRU, cuDNN): r scales the recurrent product
    r = sigmoid(W_ir x + b_ir + W_hr h_{t-1} + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h_{t-1} + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

variant="cho" (Cho et al. 2014, "Learning phrase representations using RNN encoder-decoder"):
r scales h before the product
    n = tanh(W_in x + b_in + W_hn (r * h_{t-1}) + b_hn)

The pytorch form lets all three recurrent products W_h{r,z,n} h be done as one matrix product.

    rnnrun --cell gru --data sine
    rnnrun --cell gru:variant=cho --data sine

This file holds the equations; `gru_fused.py` subclasses the cell with a fused `sequence()` (all
steps as one hand-written op) and registers it as "gru", which is what `rnnrun --cell gru` runs.
"""
import math

from tinygrad_rnn import ConfigError, Tensor
from tinygrad_rnn.nn import Module, uniform_parameter

VARIANTS = ("pytorch", "cho")


class GRU(Module):
    """GRU (r, z, n gates); variant pytorch (r * (W_hn h)) or cho (W_hn (r * h))."""

    def __init__(self, input_size, hidden_size, variant="pytorch"):
        if variant not in VARIANTS:
            raise ConfigError(f"cell 'gru': unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        self.input_size, self.hidden_size, self.variant = input_size, hidden_size, variant
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's initialisation, so results compare
        self.weight_ih = uniform_parameter((3 * hidden_size, input_size), bound)
        self.weight_hh = uniform_parameter((3 * hidden_size, hidden_size), bound)
        self.bias_ih = uniform_parameter((3 * hidden_size,), bound)
        self.bias_hh = uniform_parameter((3 * hidden_size,), bound)

    def initial_state(self, batch_size):
        w = self.weight_hh
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend),)

    def forward(self, x, state):
        h, = state
        H = self.hidden_size
        i_r, i_z, i_n = x.linear(self.weight_ih, self.bias_ih).chunk(3, axis=1)  # x W_ih^T + b_ih: the input's share
        if self.variant == "pytorch":  # h's share of all three gates in one product
            h_r, h_z, h_n = h.linear(self.weight_hh, self.bias_hh).chunk(3, axis=1)
            r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
            n = (i_n + r * h_n).tanh()
        else:  # cho: W_hn multiplies r * h, so that product has to wait for r
            h_r, h_z = h.linear(self.weight_hh[:2 * H], self.bias_hh[:2 * H]).chunk(2, axis=1)
            r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
            n = (i_n + (r * h).linear(self.weight_hh[2 * H:], self.bias_hh[2 * H:])).tanh()
        h = (1 - z) * n + z * h
        return h, (h,)

    # tinygrad_rnn.interop copies weights to and from torch.nn.GRU (the "pytorch" variant only)
    torch_equivalent = "GRU"

    @staticmethod
    def options_from_torch(module):
        return {}

    def torch_options(self):
        if self.variant != "pytorch":
            raise ConfigError(f"torch.nn.GRU is the 'pytorch' variant, not {self.variant!r}")
        return {}

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, variant={self.variant!r}"
