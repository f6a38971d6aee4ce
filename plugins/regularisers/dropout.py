"""Dropout for recurrent nets.

Between layers (Zaremba et al. 2014): each stacked layer's input is dropped with probability p,
a fresh mask every step. Variational (Gal & Ghahramani 2016, `variational=true`): also the hidden
state fed back to the next step, with one mask per sequence reused at every step, so the recurrence
itself is regularised without drowning the memory in noise. Nothing is dropped in evaluation.

    rnnrun --cell lstm --data sine --layers 2 --reg dropout:p=0.2,variational=true
"""
from tinygrad_rnn import ConfigError, Regularizer, register_regularizer
from tinygrad_rnn.nn import Recurrent


@register_regularizer("dropout")
class RecurrentDropout(Regularizer):
    """Dropout between stacked layers; variational (recurrent) dropout on h as an option."""

    def __init__(self, p=0.2, variational=False):
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"dropout: p must be in [0, 1), got {p}")
        self.p, self.variational = float(p), bool(variational)

    def on_model_built(self, trainer):
        for module in trainer.model.modules():
            if isinstance(module, Recurrent):
                module.dropout = self.p
                if self.variational:
                    module.recurrent_dropout = self.p
