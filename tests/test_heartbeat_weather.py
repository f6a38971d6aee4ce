"""The synthetic ECG (`heartbeat`) and weather (`weather`) datasets mean what their docstrings say."""
import numpy as np
import pytest

from tinygrad_rnn import ConfigError
from tinygrad_rnn.data import one_hot
from tinygrad_rnn.registry import datasets

HEARTBEAT = {"n_train": 120}
WEATHER = {"train_years": 1, "stride": 23}


def heartbeat(seed=0, **options):
    return datasets.get("heartbeat")(seed=seed, **{**HEARTBEAT, **options})


def weather(seed=0, **options):
    return datasets.get("weather")(seed=seed, **{**WEATHER, **options})


@pytest.fixture(scope="module")
def ecg():
    return heartbeat()


@pytest.fixture(scope="module")
def wx():
    return weather()


@pytest.mark.parametrize("make", [heartbeat, weather])
def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(make):
    a, b, c = make(seed=2).splits(), make(seed=2).splits(), make(seed=3).splits()
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(a[name].x, b[name].x)
        np.testing.assert_array_equal(a[name].y, b[name].y)
        assert not np.array_equal(a[name].x, c[name].x)


# ---- heartbeat ----------------------------------------------------------------------------------------
def test_heartbeat_windows_are_single_channel_and_labelled_normal_or_abnormal(ecg):
    sizes = {"train": 120, "val": 30, "test": 30}
    for name, split in ecg.splits().items():
        assert split.x.shape == (sizes[name], 100, 1) and split.x.dtype == np.float32
        assert split.y.dtype == np.int64 and set(np.unique(split.y)) <= {0, 1}
        assert ((ecg.kinds[name] == "normal") == (split.y == 0)).all()
    assert ecg.kind == "seq2vec" and ecg.output_size == 2


def test_about_the_asked_fraction_of_windows_is_abnormal_half_of_each_kind():
    dataset = heartbeat(n_train=600, abnormal=0.3)
    _, y, kinds = dataset._raw()
    assert y.mean() == pytest.approx(0.3, abs=0.05)
    assert np.mean(kinds == "pvc") == pytest.approx(0.15, abs=0.04)
    assert np.mean(kinds == "st") == pytest.approx(0.15, abs=0.04)


def test_heartbeat_baseline_is_the_training_majority_and_extra_metrics_are_rates(ecg):
    train, test = ecg.splits()["train"], ecg.splits()["test"]
    assert np.bincount(train.y).argmax() == 0
    assert ecg.baseline(test) == pytest.approx(np.mean(test.y == 0))
    everything_normal = one_hot(np.zeros(len(test), np.int64), 2)
    assert ecg.extra_metrics(everything_normal, test) == {"sensitivity": 0.0, "specificity": 1.0}


def test_a_pvc_beat_is_wider_than_a_normal_one():
    # without noise or wander, the widest excursion above half the R wave lasts longer in a PVC window
    dataset = heartbeat(noise=0.0)
    x, _, kinds = dataset._raw()

    def widest_peak(signal):
        above, run, best = signal > 0.5 * signal.max(), 0, 0
        for a in above:
            run = run + 1 if a else 0
            best = max(best, run)
        return best
    widths = np.array([widest_peak(row) for row in x])
    assert np.median(widths[kinds == "pvc"]) > np.median(widths[kinds == "normal"])


# ---- weather --------------------------------------------------------------------------------------------
def test_weather_inputs_are_three_variables_and_the_clock_and_targets_k_temperatures(wx):
    for split in wx.splits().values():
        assert split.x.shape[1:] == (48, 5) and split.y.shape[1:] == (6,)
        assert split.x.dtype == split.y.dtype == np.float32
        np.testing.assert_allclose(split.x[:, :, 3] ** 2 + split.x[:, :, 4] ** 2, 1, atol=1e-5)
    assert wx.output_size == 6 and weather(K=3).splits()["val"].y.shape[1] == 3


def test_targets_are_the_temperatures_after_the_window(wx):
    values = wx._raw_series()
    test = wx.splits()["test"]
    hours = wx.target_hours["test"]
    np.testing.assert_allclose(wx.denormalize(test.y), values[hours, 0], rtol=1e-5, atol=1e-4)
    assert hours.min() >= wx.test_start and hours.max() < len(values)


def test_weather_normalisation_uses_the_training_years_only(wx):
    values = wx._raw_series()
    train_end = wx.train_years * 365 * 24
    mean, std = wx.normalizer
    np.testing.assert_allclose(mean, values[:train_end].mean(axis=0))
    np.testing.assert_allclose(std, values[:train_end].std(axis=0))
    # changing the held-out years changes no statistic and no training input
    changed = weather()
    perturbed = values.copy()
    perturbed[train_end:] = perturbed[train_end:] * 3 + 7
    changed._raw_series = lambda: perturbed
    np.testing.assert_array_equal(changed.splits()["train"].x, wx.splits()["train"].x)
    np.testing.assert_array_equal(changed.normalizer[0], mean)
    assert not np.array_equal(changed.splits()["val"].x, wx.splits()["val"].x)


def test_weather_baselines_are_finite_and_persistence_repeats_the_last_temperature(wx):
    test = wx.splits()["test"]
    last = wx.denormalize(test.x[:, -1, 0])
    truth = wx.denormalize(test.y)
    expected = np.sqrt(np.mean((truth - last[:, None]) ** 2))
    assert wx.baseline(test) == pytest.approx(expected, rel=1e-6)
    extra = wx.extra_metrics(test.y, test)
    assert set(extra) == {"persistence_rmse", "climatology_rmse"}
    assert all(np.isfinite(v) and v > 0 for v in extra.values())
    assert wx.metric(test.y, test) == pytest.approx(0, abs=1e-6)


def test_falling_pressure_warns_of_colder_air_a_day_later():
    values = weather(train_years=1)._raw_series()
    fall = values[12:-24, 1] - values[:-36, 1]        # the pressure change over the last 12 hours
    cooling = values[36:, 0] - values[12:-24, 0]      # the temperature change over the next day
    assert np.corrcoef(fall, cooling)[0, 1] > 0.3


@pytest.mark.parametrize("make, options, fragment", [
    (heartbeat, {"T": 10}, "option T"), (heartbeat, {"abnormal": 1.5}, "option abnormal"),
    (weather, {"K": 0}, "option K"), (weather, {"front_every": 1}, "option front_every"),
])
def test_a_bad_option_is_a_config_error_naming_it(make, options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make(**options)
