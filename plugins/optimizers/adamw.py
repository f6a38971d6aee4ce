"""AdamW (Loshchilov & Hutter 2019, "Decoupled weight decay regularization"), as torch.optim.AdamW:
Adam whose weight decay shrinks the weights directly instead of joining the gradient, so the decay is
not rescaled by Adam's per-weight step sizes.

    p ← p - lr · weight_decay · p                  (decoupled decay, first)
    then Adam's step without the L2 term:
    m ← β1 · m + (1 - β1) · g,   v ← β2 · v + (1 - β2) · g²,   v̂ ← max(v̂, v) (amsgrad) or v
    p ← p - lr / (1 - β1^t) · m / (sqrt(v̂ / (1 - β2^t)) + eps)

    rnnrun --cell gru --data airline --optimizer adamw:weight_decay=0.05
"""
from tinygrad_rnn import register_optimizer

from .adam import Adam


@register_optimizer("adamw")
class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (default 0.01) applied to the weights directly."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)

    def update(self, p, grad, state):
        p.data *= 1 - self.lr * self.weight_decay
        self.adam_step(p, grad, state)
