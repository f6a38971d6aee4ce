"""Free-running forecasts: the model fed its own predictions, step after step.

The seeds' loop: predict the next value from the last window, append it, drop the oldest step,
repeat — `x = concat(x[1:], x_next)`. After the seed window, only the model's outputs go in.
"""
import numpy as np

from .function import no_grad
from .tensor import Tensor


def forecast(model, dataset, steps, source="data"):
    """(predictions (K, D), truth (K, D) or None), both in original units."""
    window, truth = dataset.forecast_start(source=source, steps=steps)
    predictions = free_run(model, window, steps)
    return dataset.denormalize(predictions), None if truth is None else dataset.denormalize(truth)


def free_run(model, window, steps):
    """Feed `window` (T, D), then the model's own predictions, for `steps` steps (normalised units)."""
    window = np.asarray(window, np.float32)
    predictions = []
    model.eval()
    with no_grad():
        for _ in range(steps):
            next_value = model.predict(Tensor(window[None])).numpy()[0]
            predictions.append(next_value)
            window = np.concatenate([window[1:], next_value[None, :]], axis=0)
    model.train()
    return np.asarray(predictions)
