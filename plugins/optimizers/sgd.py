"""Stochastic gradient descent with optional momentum (Polyak 1964) and Nesterov momentum
(Sutskever et al. 2013), as torch.optim.SGD:

    g ← ∇p + weight_decay · p                         (L2 penalty, when weight_decay > 0)
    b ← g at the first step, then momentum · b + (1 - dampening) · g
    g ← g + momentum · b  (nesterov)   or   g ← b    (when momentum > 0)
    p ← p - lr · g

    rnnrun --cell gru --data sine --optimizer sgd:momentum=0.9,nesterov=true --lr 0.05
"""
from tinygrad_rnn import ConfigError, register_optimizer
from tinygrad_rnn.optim import Optimizer, check_number


@register_optimizer("sgd")
class SGD(Optimizer):
    """SGD: p ← p - lr · g, with optional (Nesterov) momentum and L2 weight decay."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = check_number("sgd", "momentum", momentum, low=0.0)
        self.dampening = check_number("sgd", "dampening", dampening)
        self.weight_decay = check_number("sgd", "weight_decay", weight_decay, low=0.0)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ConfigError(f"sgd: nesterov=true needs momentum > 0 and dampening = 0, got momentum="
                              f"{self.momentum} and dampening={self.dampening}")
        self.nesterov = bool(nesterov)

    def update(self, p, grad, state):
        g = grad + self.weight_decay * p.data if self.weight_decay else grad
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                b = state["momentum_buffer"]
                b *= self.momentum
                b += (1 - self.dampening) * g
            b = state["momentum_buffer"]
            g = g + self.momentum * b if self.nesterov else b
        p.data -= self.lr * g
