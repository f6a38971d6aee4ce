"""Free-running forecasts feed the model its own predictions, and nothing else, after the seed window."""
import numpy as np

from tinygrad_rnn import Tensor
from tinygrad_rnn.forecast import forecast, free_run


class Recorder:
    """A stand-in model: predicts last value + 1, and remembers every window it was shown."""

    def __init__(self):
        self.windows = []

    def eval(self):
        return self

    def train(self):
        return self

    def predict(self, x):
        window = x.numpy()[0]
        self.windows.append(window.copy())
        return Tensor(window[-1:] + 1.0)


def test_after_the_seed_window_only_the_models_own_outputs_go_in():
    seed = np.arange(5, dtype=np.float32)[:, None]  # 0 1 2 3 4
    model = Recorder()
    predictions = free_run(model, seed, steps=4)
    np.testing.assert_array_equal(predictions[:, 0], [5, 6, 7, 8])
    np.testing.assert_array_equal(model.windows[0][:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(model.windows[1][:, 0], [1, 2, 3, 4, 5])   # x = concat(x[1:], x_next)
    np.testing.assert_array_equal(model.windows[3][:, 0], [3, 4, 5, 6, 7])


class PoisonedTruth:
    """A dataset whose true continuation is NaN: if the loop ever read it, the forecast would be NaN."""
    forecastable = True

    def forecast_start(self, source="data", steps=None):
        return np.ones((3, 1), np.float32), np.full((steps, 1), np.nan, np.float32)

    def denormalize(self, y):
        return y


def test_the_true_continuation_is_only_returned_never_fed_in():
    predictions, truth = forecast(Recorder(), PoisonedTruth(), steps=6)
    assert np.isfinite(predictions).all() and np.isnan(truth).all()
    np.testing.assert_array_equal(predictions[:, 0], [2, 3, 4, 5, 6, 7])
