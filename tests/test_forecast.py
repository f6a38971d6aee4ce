"""Free-running forecasts feed the model its own predictions, and nothing else, after the seed window."""
import numpy as np
import pytest

from tinygrad_rnn import Tensor
from tinygrad_rnn.data import Dataset
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


class PoisonedTruth(Dataset):
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


# ---- a csv forecaster runs its own loop: its model predicts changes, K steps at a time -------------------
def persistence_model(dataset):
    """predict(x, lengths) whose forecasts, mapped back, repeat each window's last value (a change of 0)."""
    def predict(x, lengths=None):
        fitted = dataset.fitted   # fitted when the splits are made
        return np.tile((0 - np.asarray(fitted["target_mean"])) / fitted["target_std"], (len(x), 1))
    return predict


def monthly_csv(tmp_path):
    from tinygrad_rnn.registry import datasets, discover
    discover()
    path = tmp_path / "m.csv"
    path.write_text("month,y\n" + "".join(f"{2000 + m // 12}-{m % 12 + 1:02d},{10 + m % 7}\n" for m in range(60)))
    return datasets.get("csv")(path=str(path), target="y", time="month", window=6, horizon=2, season=12,
                               transform="none")


def test_a_csv_free_run_starts_at_the_first_test_target_and_feeds_its_forecasts_back(tmp_path):
    dataset = monthly_csv(tmp_path)
    dataset.splits()
    predictions, truth = dataset.free_run(persistence_model(dataset), steps=15)
    first_test = dataset.references(dataset.splits()["test"])["truth"][0, 0]
    y = np.array([10 + m % 7 for m in range(60)], float)
    start = 60 - 9   # the test targets: the last 15% of 60 rows
    assert truth[0, 0] == first_test == y[start]
    np.testing.assert_array_equal(truth[:9, 0], y[start:])          # then the record ends: NaN
    assert np.isnan(truth[9:, 0]).all() and predictions.shape == (15, 1)
    np.testing.assert_allclose(predictions[:, 0], y[start - 1], rtol=1e-6)   # persistence, fed back: constant


def test_a_csv_forecast_picture_has_the_test_months_then_the_months_after_the_file(tmp_path):
    dataset = monthly_csv(tmp_path)
    picture = dataset.forecast_picture(persistence_model(dataset))
    assert picture["time"][0] == "2004-04" and picture["time"][-1] == "2004-12"   # one-step targets of the test windows
    assert picture["future_time"] == [f"2005-{m:02d}" for m in range(1, 13)]      # a season ahead
    assert picture["truth"] == [10 + m % 7 for m in range(51, 60)][:len(picture["truth"])]
    np.testing.assert_allclose(picture["future"], 10 + 59 % 7, rtol=1e-6)


def test_the_generic_forecast_dispatches_to_a_datasets_own_free_run(tmp_path):
    dataset = monthly_csv(tmp_path)
    dataset.splits()

    class Model:   # what `predictor` calls: eval, train, predict(Tensor) -> Tensor
        def eval(self):
            pass

        def train(self):
            pass

        def predict(self, x, lengths=None):
            return Tensor(persistence_model(dataset)(x.numpy()).astype(np.float32))
    predictions, truth = forecast(Model(), dataset, 5)
    np.testing.assert_allclose(predictions[:, 0], dataset.free_run(persistence_model(dataset), 5)[0][:, 0], rtol=1e-6)


def test_rnnrun_forecast_and_the_forecast_picture_work_for_a_csv_run(tmp_path):
    import json
    import os

    from click.testing import CliRunner

    from tinygrad_rnn.runner.cli import cli
    path = tmp_path / "m.csv"
    path.write_text("month,y\n" + "".join(f"{2000 + m // 12}-{m % 12 + 1:02d},{10 + m % 7}\n" for m in range(60)))
    runs = str(tmp_path / "runs")

    def rnnrun(*argv):
        return CliRunner().invoke(cli, ["--runs-dir", runs, *argv], prog_name="rnnrun")
    trained = rnnrun("--cell", "gru", "--data", f"csv:path={path},target=y,time=month,window=6,horizon=2,season=12",
                     "--epochs", "2", "--hidden", "4", "--quiet")
    assert trained.exit_code == 0, trained.output
    folder = [os.path.join(runs, name) for name in os.listdir(runs)][0]
    pytest.importorskip("matplotlib")
    assert os.path.exists(os.path.join(folder, "forecast.png"))
    result = rnnrun("forecast", "last", "--steps", "12", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["predictions"]) == 12
    assert [row[0] for row in document["truth"][:9]] == [10 + m % 7 for m in range(51, 60)]   # the test months
    assert document["truth"][9:] == [[None]] * 3                                                # past the file
    zeros = rnnrun("forecast", "last", "--from", "zeros")
    assert zeros.exit_code == 2 and "starts from its file's data" in zeros.stderr
    listed = rnnrun("runs", "--json")
    assert json.loads(listed.stdout)[0]["data"] == "csv:m.csv(target=y,time=month,window=6,horizon=2,season=12)"


def test_a_csv_picture_with_other_features_looks_only_a_horizon_ahead_and_numbers_steps_without_times(tmp_path):
    from tinygrad_rnn.registry import datasets, discover
    discover()
    path = tmp_path / "f.csv"
    path.write_text("y,x\n" + "".join(f"{10 + k % 7},{k % 3}\n" for k in range(60)))
    dataset = datasets.get("csv")(path=str(path), target="y", features="y+x", window=6, horizon=3, season=12,
                                  transform="none")
    picture = dataset.forecast_picture(persistence_model(dataset))
    assert len(picture["future"]) == 3 and picture["future_time"] == ["+1", "+2", "+3"]   # the horizon only
    assert picture["time"][0] == "t1" and len(picture["time"]) == len(picture["truth"]) == len(picture["prediction"])
    from tinygrad_rnn import ConfigError
    with pytest.raises(ConfigError, match="needs the target as the only input"):
        dataset.free_run(persistence_model(dataset), 5)
