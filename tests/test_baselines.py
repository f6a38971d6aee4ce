"""tinygrad_rnn/baselines.py: each baseline against a hand computation, and every built-in forecasting and
classification dataset reporting them (issue 25 item 2)."""
import numpy as np
import pytest

from helpers import SMALL, restored_registry
from tinygrad_rnn import baselines
from tinygrad_rnn.data import Split, rmse


def windows(series, T, K=1):
    """Split of windows x = s[i-T:i] (T, 1), y = s[i:i+K] (K,)."""
    i = np.arange(T, len(series) - K + 1)
    x = np.stack([series[j - T:j] for j in i])[:, :, None]
    y = np.stack([series[j:j + K] for j in i])
    return Split(x.astype(np.float64), y.astype(np.float64))


def test_persistence_repeats_the_last_value_for_every_step_ahead():
    split = windows(np.arange(10.0), T=3, K=2)
    assert np.array_equal(baselines.persistence(split, [0]), np.repeat(split.x[:, -1, :], 2, axis=1))


def test_seasonal_naive_looks_back_one_season_and_wraps_past_it():
    s = np.arange(40.0)
    split = windows(s, T=4, K=6)
    out = baselines.seasonal_naive(split, [0], season=4)
    # target t+k is predicted by t+k-4⌈k/4⌉: k=1..4 one season back, k=5,6 two
    t = split.x[:, -1, 0]
    expected = np.stack([t + k - 4 * np.ceil(k / 4) for k in range(1, 7)], axis=1)
    assert np.array_equal(out, expected)
    assert baselines.seasonal_naive(windows(s, T=3), [0], season=4) is None  # the window is shorter than a season


def test_training_mean_is_the_mean_training_target():
    train, test = windows(np.arange(10.0), 2), windows(np.arange(5.0), 2)
    assert np.allclose(baselines.training_mean(train, test), np.arange(2, 10).mean())


def test_linear_recovers_an_autoregression_exactly_and_chooses_its_penalty_on_validation():
    rng = np.random.default_rng(0)
    s = np.zeros(400)
    s[:2] = rng.standard_normal(2)
    for t in range(2, 400):  # s_t = 1.2 s_{t-1} − 0.5 s_{t-2} + 0.3 + noise
        s[t] = 1.2 * s[t - 1] - 0.5 * s[t - 2] + 0.3 + 0.01 * rng.standard_normal()
    train, val, test = windows(s[:250], 4), windows(s[250:320], 4), windows(s[320:], 4)
    score = lambda out, split: rmse(out, split.y)  # noqa: E731
    predict, alpha = baselines.linear(train, val, score)
    assert score(predict(test), test) < 0.012  # the noise's sd is 0.01
    # the chosen penalty is the one best on validation, not on test
    fitted = baselines.ridge_fit(train)
    assert alpha == min(fitted, key=lambda item: score(item[1](val), val))[0]
    assert alpha < 1.0  # no shrinkage is needed to fit noise-free dynamics


def test_majority_predicts_the_most_common_training_class():
    train = Split(np.zeros((5, 3, 1)), np.array([2, 2, 1, 0, 2]))
    test = Split(np.zeros((3, 3, 1)), np.array([0, 1, 2]))
    out = baselines.majority(train, test, classes=3)
    assert (out.argmax(1) == 2).all() and np.allclose(np.exp(out).sum(1), 1)


def test_one_nearest_neighbour_is_blind_to_scale_and_offset_after_z_normalisation():
    t = np.linspace(0, 2 * np.pi, 30)
    train = Split(np.stack([np.sin(t), np.sign(np.sin(t))])[:, :, None], np.array([0, 1]))
    # a sine scaled by 50 and shifted by 7 is still a sine; a square wave in small units still a square wave
    test = Split(np.stack([50 * np.sin(t) + 7, 0.01 * np.sign(np.sin(t)) - 3])[:, :, None], np.array([0, 1]))
    assert list(baselines.nearest_neighbour(train, test, 2).argmax(1)) == [0, 1]


def test_one_nearest_neighbour_resamples_unequal_lengths_to_compare_shapes():
    long_t, short_t = np.linspace(0, 2 * np.pi, 40), np.linspace(0, 2 * np.pi, 13)
    x = np.zeros((2, 40, 1))
    x[0, :, 0], x[1, :, 0] = np.sin(long_t), np.cos(long_t)
    train = Split(x, np.array([0, 1]), np.array([40, 40]))
    x_test = np.zeros((2, 40, 1))
    x_test[0, :13, 0], x_test[1, :13, 0] = np.cos(short_t), np.sin(short_t)  # padding after 13 steps
    test = Split(x_test, np.array([1, 0]), np.array([13, 13]))
    assert list(baselines.nearest_neighbour(train, test, 2).argmax(1)) == [1, 0]


def test_best_respects_the_metric_direction():
    assert baselines.best({"a": 2.0, "b": 1.0}) == {"name": "b", "value": 1.0}
    assert baselines.best({"a": 2.0, "b": 1.0}, higher_is_better=True) == {"name": "a", "value": 2.0}
    assert baselines.best({"a": float("nan")}) is None


FORECASTING = ["sine", "airline", "sunspots", "stock", "weather", "trajectory"]
CLASSIFICATION = ["vowels", "heartbeat", "agreement", "sentiment"]


@pytest.mark.parametrize("name", FORECASTING + CLASSIFICATION)
def test_every_built_in_forecasting_and_classification_dataset_reports_the_strong_baselines(name):
    with restored_registry():
        from tinygrad_rnn.registry import datasets
        cls = datasets.get(name)
        options = {k: v for k, v in SMALL.get(name, {}).items() if k in datasets.options(name)}
        dataset = cls(seed=0, **options)
        scores = dataset.baselines("test")
    expected = {"linear", "training mean"} if name in FORECASTING else {"majority", "1-nn"}
    assert expected <= set(scores) and dataset.baseline_name in scores
    assert scores[dataset.baseline_name] == pytest.approx(dataset.baseline(dataset.splits()["test"]))
    if dataset.forecastable or dataset.target_inputs:
        assert "persistence" in scores
    assert all(np.isfinite(v) for v in scores.values())


def test_airline_linear_and_seasonal_naive_are_scored_in_passengers_on_the_test_months():
    with restored_registry():
        from tinygrad_rnn.registry import datasets
        airline = datasets.get("airline")()
        scores = airline.baselines("test")
        test = airline.splits()["test"]
    truth = airline.denormalize(test.y)
    # seasonal naive by hand: the value 12 months before each test target, from the window
    assert scores["seasonal naive"] == pytest.approx(rmse(airline.denormalize(test.x[:, -12]), truth))
    assert scores["seasonal naive"] == pytest.approx(airline.baseline(test))
    assert scores["linear"] < scores["seasonal naive"]  # a linear AR on log passengers is a strong model
