"""Batch normalisation of each recurrent layer's input x_t, after Laurent et al. 2016 ("Batch normalized
recurrent neural networks"), who normalise the input-to-hidden product W_ih x_t; this normalises x_t
itself, before the product (BN(W x) and W BN(x) differ: the statistics are of x's features, not of W x's).

Placement: before every layer's input projection W_ih x_t — for the first layer its input features,
for stacked layers the previous layer's outputs — with statistics over the batch and all time steps,
per feature. Not on the recurrent path W_hh h: Laurent et al. found normalising it hurts, and doing
it properly needs separate statistics per time step (Cooijmans et al. 2016). The recurrent layer's
`input_transforms` hook holds one module per layer, so this works with every cell, user cells too.
In training it uses batch statistics and updates running ones; in evaluation the running ones.
(Zero-padded steps of variable-length batches take part in the statistics.)
The running statistics are buffers of the inserted modules, so the model's own `state_dict()` (and
with it every checkpoint) carries them: this regulariser keeps no state of its own.

    rnnrun --cell rnn --data adding --reg batchnorm
"""
from tinygrad_rnn import Regularizer, register_regularizer
from tinygrad_rnn.nn import BatchNormOverTime, Recurrent


@register_regularizer("batchnorm")
class BatchNorm(Regularizer):
    """BatchNorm on each recurrent layer's input (batch and time statistics; eval uses running ones)."""

    def __init__(self, momentum=0.1, eps=1e-5):
        self.momentum, self.eps = float(momentum), float(eps)

    def on_model_built(self, trainer):
        for module in trainer.model.modules():
            if isinstance(module, Recurrent):
                for layer in range(module.num_layers):
                    size = module.input_size if layer == 0 else module.hidden_size * module.num_directions
                    module.input_transforms[layer] = BatchNormOverTime(size, eps=self.eps, momentum=self.momentum)
