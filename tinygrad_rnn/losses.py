"""The loss functions, which live in `tinygrad_rnn.nn` (as PyTorch's do in `torch.nn`); this name is
kept so that `from tinygrad_rnn.losses import mse` goes on working."""
from .nn.losses import bce_with_logits, cross_entropy, mae, masked_mean, mse  # noqa: F401

__all__ = ["mse", "mae", "cross_entropy", "bce_with_logits"]
