"""L2 weight decay: adds decay · w to every weight's gradient (the gradient of decay/2 · ||w||²),
pulling weights towards zero. Biases are not decayed. (For Adam, decoupled decay is `--optimizer adamw`.)

    rnnrun --cell gru --data airline --reg weight_decay:1e-4
"""
from tinygrad_rnn import ConfigError, Regularizer, register_regularizer


@register_regularizer("weight_decay")
class WeightDecay(Regularizer):
    """L2 penalty on weights (not biases), added to the gradients after backward."""

    def __init__(self, decay=1e-4):
        if decay < 0:
            raise ConfigError(f"weight_decay: decay must be >= 0, got {decay}")
        self.decay = float(decay)

    def after_backward(self, trainer):
        for name, p in trainer.model.named_parameters():
            if p.grad is not None and "bias" not in name.rsplit(".", 1)[-1]:
                p.grad = p.grad + self.decay * p.data
