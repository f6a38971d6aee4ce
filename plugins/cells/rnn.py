"""The simple recurrent network (Elman 1990, "Finding structure in time"), as torch.nn.RNN:

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

act is tanh (the default), relu (Le et al. 2015's IRNN uses it with identity W_hh), leaky_relu
(slope 0.01) or elu (alpha 1). The same W_hh multiplies the gradient at every step backwards through
time, which is why its gradients vanish or explode over long sequences (Bengio et al. 1994).

    rnnrun --cell rnn --data adding
    rnnrun --cell rnn:nonlinearity=relu --data adding

This file holds the equations; `rnn_fused.py` subclasses the cell with a fused `sequence()` (all
steps as one hand-written op) and registers it as "rnn", which is what `rnnrun --cell rnn` runs.
"""
import math

from tinygrad_rnn import ConfigError, Tensor
from tinygrad_rnn.nn import Module, uniform_parameter

NONLINEARITIES = {
    "tanh": lambda z: z.tanh(),
    "relu": lambda z: z.relu(),
    "leaky_relu": lambda z: z.leaky_relu(0.01),
    "elu": lambda z: z.elu(1.0),
}


class RNN(Module):
    """Elman RNN: h = act(W_ih x + b_ih + W_hh h + b_hh), act tanh, relu, leaky_relu or elu."""

    def __init__(self, input_size, hidden_size, nonlinearity="tanh"):
        if nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"cell 'rnn': unknown nonlinearity {nonlinearity!r}; "
                              f"valid: {', '.join(NONLINEARITIES)}")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's initialisation, so results compare
        self.weight_ih = uniform_parameter((hidden_size, input_size), bound)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), bound)
        self.bias_ih = uniform_parameter((hidden_size,), bound)
        self.bias_hh = uniform_parameter((hidden_size,), bound)

    def initial_state(self, batch_size):
        w = self.weight_hh
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend),)

    def forward(self, x, state):
        h, = state
        act = NONLINEARITIES[self.nonlinearity]
        h = act(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)
        return h, (h,)

    # tinygrad_rnn.interop copies weights to and from torch.nn.RNN (which has tanh and relu only)
    torch_equivalent = "RNN"

    @staticmethod
    def options_from_torch(module):
        return {"nonlinearity": module.nonlinearity}

    def torch_options(self):
        if self.nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"torch.nn.RNN has no nonlinearity {self.nonlinearity!r}; it has tanh and relu")
        return {"nonlinearity": self.nonlinearity}

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"
