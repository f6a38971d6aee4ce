"""Gradient clipping: the classic remedy for exploding gradients (Pascanu, Mikolov & Bengio 2013).

By norm (default): if the global L2 norm g of all gradients exceeds the threshold, scale every
gradient by threshold / g, keeping its direction. By value (the seeds' "cut gradients to [-1, 1]"):
clamp each entry to [-threshold, threshold].

    rnnrun --cell rnn --data adding --reg clip:1.0
    rnnrun --cell rnn --data adding --reg clip:1.0,mode=value
"""
from tinygrad_rnn import ConfigError, Regularizer, register_regularizer
from tinygrad_rnn.nn import clip_grad_norm, clip_grad_value

MODES = ("norm", "value")


@register_regularizer("clip")
class Clip(Regularizer):
    """Clip gradients by global norm (default 1.0) or by value, after every backward."""

    events = ("clipped",)  # counted in every batch where clipping changed a gradient

    def __init__(self, threshold=1.0, mode="norm"):
        if mode not in MODES:
            raise ConfigError(f"clip: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        if threshold <= 0:
            raise ConfigError(f"clip: threshold must be positive, got {threshold}")
        self.threshold, self.mode = float(threshold), mode

    def after_backward(self, trainer):
        params = trainer.model.parameters()
        # the comparisons stay arrays on the training backend: the trainer adds them up and reads
        # them once per epoch, so clipping costs a GPU run no wait per batch
        if self.mode == "norm":
            trainer.count("clipped", clip_grad_norm(params, self.threshold) > self.threshold)
        else:
            for p in params:
                if p.grad is not None:
                    trainer.count("clipped", abs(p.grad).max() > self.threshold)
            clip_grad_value(params, self.threshold)
