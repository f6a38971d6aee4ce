"""RMSprop (Hinton, Coursera lecture 6e, 2012; centred form from Graves 2013), as torch.optim.RMSprop:
divide each gradient by a running root-mean-square of its recent values.

    g ← ∇p + weight_decay · p                       (L2 penalty, when weight_decay > 0)
    v ← alpha · v + (1 - alpha) · g²
    m ← alpha · m + (1 - alpha) · g   and   d ← sqrt(v - m²) + eps       (centered)
                                    otherwise d ← sqrt(v) + eps
    b ← momentum · b + g / d   and   p ← p - lr · b                      (momentum > 0)
                     otherwise   p ← p - lr · g / d

    rnnrun --cell lstm --data adding --optimizer rmsprop:alpha=0.9 --lr 1e-3
"""
from tinygrad_rnn import register_optimizer
from tinygrad_rnn.optim import Optimizer, array_module, check_number


@register_optimizer("rmsprop")
class RMSprop(Optimizer):
    """RMSprop: scale each step by a running RMS of the gradient (optionally centred, with momentum)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.alpha = check_number("rmsprop", "alpha", alpha, low=0.0, high=1.0)
        self.eps = check_number("rmsprop", "eps", eps, low=0.0)
        self.momentum = check_number("rmsprop", "momentum", momentum, low=0.0)
        self.weight_decay = check_number("rmsprop", "weight_decay", weight_decay, low=0.0)
        self.centered = bool(centered)

    def update(self, p, grad, state):
        xp = array_module(p.data)
        g = grad + self.weight_decay * p.data if self.weight_decay else grad
        if not state:
            state["square_avg"] = xp.zeros_like(p.data)
            if self.centered:
                state["grad_avg"] = xp.zeros_like(p.data)
            if self.momentum:
                state["momentum_buffer"] = xp.zeros_like(p.data)
        v = state["square_avg"]
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            m = state["grad_avg"]
            m *= self.alpha
            m += (1 - self.alpha) * g
            d = xp.sqrt(v - m * m) + self.eps
        else:
            d = xp.sqrt(v) + self.eps
        if self.momentum:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += g / d
            p.data -= self.lr * b
        else:
            p.data -= self.lr * g / d
