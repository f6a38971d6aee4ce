"""Free-running forecasts: the model fed its own predictions, step after step.

The seeds' loop: predict the next value from the last window, append it, drop the oldest step,
repeat — `x = concat(x[1:], x_next)`. After the seed window, only the model's outputs go in.
"""
import numpy as np

from . import backend
from .function import no_grad
from .tensor import Tensor


def forecast(model, dataset, steps, source="data"):
    """(predictions (K, D), truth (K, D) or None), both in original units. A dataset whose model output
    is not its next input (csv) runs its own loop, `Dataset.free_run`."""
    own = dataset.free_run(predictor(model), steps, source)
    if own is not None:
        return own
    window, truth = dataset.forecast_start(source=source, steps=steps)
    predictions = free_run(model, window, steps)
    return dataset.denormalize(predictions), None if truth is None else dataset.denormalize(truth)


def free_run(model, window, steps):
    """Feed `window` (T, D), then the model's own predictions, for `steps` steps (normalised units).

    The window lives where the model does and the predictions are read back once, at the end: on a
    GPU, reading each step's prediction would make every step wait for the device."""
    window = Tensor(np.asarray(window, np.float32)).data  # on the default backend, the model's
    xp = backend.array_module(window)
    predictions = []
    model.eval()
    with no_grad():
        for _ in range(steps):
            next_value = model.predict(Tensor(window[None])).data[0]
            predictions.append(next_value)
            window = xp.concatenate([window[1:], next_value[None, :]], axis=0)
    model.train()
    return backend.to_numpy(xp.stack(predictions)) if predictions else np.zeros((0,) + window.shape[1:], np.float32)


def predictor(model, batch_size=256):
    """predict(x, lengths) → the model's outputs for inputs x (N, T, D) as host NumPy, in evaluation mode
    and batch by batch: how a dataset's own loops (`free_run`, `predict_file`) call a model."""
    def predict(x, lengths=None):
        model.eval()
        parts = []
        with no_grad():
            for start in range(0, len(x), batch_size):
                part = slice(start, start + batch_size)
                xs = Tensor(backend.convert(np.ascontiguousarray(x[part], np.float32), backend.get_backend()))
                parts.append(backend.to_numpy(model.predict(xs, lengths=None if lengths is None
                                                            else lengths[part]).data))
        model.train()
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)
    return predict

