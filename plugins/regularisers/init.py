"""Weight initialisation schemes, applied once when the model is built.

- xavier (Glorot & Bengio 2010): Var(W) = gain² · 2 / (fan_in + fan_out), keeping activations' and
  gradients' variance roughly constant from layer to layer; uniform or normal.
- orthogonal (Saxe et al. 2014): each recurrent gate block W_hh is an orthogonal matrix, whose
  eigenvalues all have modulus 1, so repeated multiplication neither shrinks nor blows up h.
- he (He et al. 2015): Var(W) = 2 / fan_in, for ReLU-family units.

Weights are found by name: every 2-D `weight*` for xavier and he, `weight_hh*` (the recurrent
weights of the cell protocol) for orthogonal. Biases are left as they are.
"""
import numpy as np

from tinygrad_rnn import ConfigError, Regularizer, Tensor, register_regularizer
from tinygrad_rnn.nn import init

DISTRIBUTIONS = ("uniform", "normal")


def _weights(model, prefix="weight"):
    for name, p in model.named_parameters():
        if name.rsplit(".", 1)[-1].startswith(prefix) and p.ndim == 2:
            yield name, p


@register_regularizer("xavier")
class Xavier(Regularizer):
    """Xavier/Glorot initialisation of every weight matrix (gain; uniform or normal)."""

    def __init__(self, gain=1.0, distribution="uniform"):
        if distribution not in DISTRIBUTIONS:
            raise ConfigError(f"xavier: unknown distribution {distribution!r}; valid: {', '.join(DISTRIBUTIONS)}")
        self.gain, self.distribution = float(gain), distribution

    def on_model_built(self, trainer):
        fill = init.xavier_uniform if self.distribution == "uniform" else init.xavier_normal
        for _, w in _weights(trainer.model):
            fill(w, gain=self.gain)


@register_regularizer("orthogonal")
class Orthogonal(Regularizer):
    """Orthogonal initialisation of each recurrent gate block (weight_hh)."""

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def on_model_built(self, trainer):
        for _, w in _weights(trainer.model, "weight_hh"):
            hidden = w.shape[1]
            blocks = []
            for _ in range(w.shape[0] // hidden):  # one orthogonal H x H matrix per gate
                block = Tensor(np.empty((hidden, hidden), w.dtype))
                blocks.append(init.orthogonal(block, gain=self.gain).numpy())
            w.data = Tensor(np.concatenate(blocks, axis=0)).to(w.backend).data


@register_regularizer("he")
class He(Regularizer):
    """He/Kaiming initialisation of every weight matrix, for ReLU-family cells."""

    def __init__(self, distribution="uniform"):
        if distribution not in DISTRIBUTIONS:
            raise ConfigError(f"he: unknown distribution {distribution!r}; valid: {', '.join(DISTRIBUTIONS)}")
        self.distribution = distribution

    def on_model_built(self, trainer):
        fill = init.kaiming_uniform if self.distribution == "uniform" else init.kaiming_normal
        for _, w in _weights(trainer.model):
            fill(w, nonlinearity="relu")
