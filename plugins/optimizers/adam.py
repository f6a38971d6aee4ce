"""Adam (Kingma & Ba 2015, "Adam: a method for stochastic optimization"), as torch.optim.Adam:
running means of the gradient and of its square, corrected for their start at zero.

    g ← ∇p + weight_decay · p                 (L2 penalty added to the gradient, when weight_decay > 0)
    m ← β1 · m + (1 - β1) · g
    v ← β2 · v + (1 - β2) · g²
    v̂ ← max(v̂, v)  (amsgrad, Reddi et al. 2018)   otherwise v̂ ← v
    p ← p - lr / (1 - β1^t) · m / (sqrt(v̂ / (1 - β2^t)) + eps)         (t = 1, 2, ... the step count)

betas is a pair; on the command line write it as betas=0.9/0.999.

    rnnrun --cell lstm --data adding --optimizer adam:amsgrad=true --lr 3e-3
"""
import math

from tinygrad_rnn import ConfigError, register_optimizer
from tinygrad_rnn.optim import Optimizer, array_module, check_number


def parse_betas(owner, betas):
    """(β1, β2) from a pair or from 'b1/b2', each in [0, 1)."""
    if isinstance(betas, str):
        betas = betas.split("/")
        try:
            betas = [float(b) for b in betas]
        except ValueError:
            raise ConfigError(f"{owner}: betas must be two numbers like 0.9/0.999, got {'/'.join(betas)!r}") from None
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ConfigError(f"{owner}: betas must be a pair (beta1, beta2), e.g. 0.9/0.999; got {betas!r}")
    return tuple(check_number(owner, f"beta{i + 1}", b, low=0.0, high=1.0, high_open=True)
                 for i, b in enumerate(betas))


@register_optimizer("adam", default=True)  # used when no --optimizer is given
class Adam(Optimizer):
    """Adam: steps from bias-corrected running means of g and g² (L2 weight decay; optional AMSGrad)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, lr)
        self.betas = parse_betas(self.plugin_name, betas)
        self.eps = check_number(self.plugin_name, "eps", eps, low=0.0)
        self.weight_decay = check_number(self.plugin_name, "weight_decay", weight_decay, low=0.0)
        self.amsgrad = bool(amsgrad)

    def update(self, p, grad, state):
        g = grad + self.weight_decay * p.data if self.weight_decay else grad
        self.adam_step(p, g, state)

    def adam_step(self, p, g, state):
        """The moment updates and the step, for a gradient g that already holds any L2 term."""
        xp = array_module(p.data)
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
            if self.amsgrad:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denominator = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        p.data -= self.lr / (1 - beta1 ** t) * m / denominator
