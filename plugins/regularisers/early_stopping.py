"""Early stopping: end training when the validation loss has not improved by at least `min_delta`
for `patience` epochs. The trainer then restores the best epoch's weights, as it always does.

    rnnrun --cell gru --data airline --epochs 200 --reg early_stopping:patience=10
"""
import math

from tinygrad_rnn import ConfigError, Regularizer, register_regularizer


@register_regularizer("early_stopping")
class EarlyStopping(Regularizer):
    """Stop when the validation loss stops improving for `patience` epochs."""

    needs_validation = True   # a dataset without a validation split (csv's val=0) refuses it

    def __init__(self, patience=5, min_delta=0.0):
        if int(patience) != patience or patience < 1:
            raise ConfigError(f"early_stopping: patience must be a positive integer, got {patience}")
        self.patience, self.min_delta = int(patience), float(min_delta)
        self._best, self._waited = math.inf, 0

    def on_epoch_end(self, trainer, metrics):
        if metrics["val_loss"] < self._best - self.min_delta:
            self._best, self._waited = metrics["val_loss"], 0
        else:
            self._waited += 1
            if self._waited >= self.patience:
                trainer.should_stop = True

    # the best loss so far and the epochs waited since: a resumed run must stop where this one would
    def state_dict(self):
        return {"best": self._best, "waited": self._waited}

    def load_state_dict(self, state):
        self._best, self._waited = float(state["best"]), int(state["waited"])
