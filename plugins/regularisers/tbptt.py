"""Truncated backpropagation through time (Williams & Peng 1990).

The sequence is cut into chunks of k steps. Each chunk runs forward from the state the previous one
left, detached, so gradients flow back at most k steps: memory grows with k, not with T. For
per-step targets every chunk's loss is backpropagated (the gradients add up, one optimiser step per
batch); with one target per sequence the earlier chunks only carry the state forward.
The carried state lives within a batch (or, for stateful datasets, within an epoch, held by the
trainer), never across a checkpoint: this regulariser keeps no state of its own.

    rnnrun --cell lstm --data sine --reg tbptt:k=25
"""
from tinygrad_rnn import ConfigError, Regularizer, register_regularizer


@register_regularizer("tbptt")
class TruncatedBPTT(Regularizer):
    """Truncated BPTT: backpropagate through chunks of k steps, carrying the state detached."""

    def __init__(self, k=25):
        if int(k) != k or k < 1:
            raise ConfigError(f"tbptt: k must be a positive integer, got {k}")
        self.k = int(k)

    def split_sequence(self, length):
        return [(start, min(start + self.k, length)) for start in range(0, length, self.k)]
