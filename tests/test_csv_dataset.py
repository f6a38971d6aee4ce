"""The `csv` dataset: forecasting and classification from a user's file, every option and bad input.

Each test writes a small CSV to tmp_path. The `rnnrun predict` round trips are in test_predict.py.
"""
import itertools
import json
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from tinygrad_rnn import ConfigError
from tinygrad_rnn.registry import datasets, discover
from tinygrad_rnn.runner.cli import cli

discover()


def write(path, header, rows, delimiter=","):
    path.write_text(delimiter.join(header) + "\n" + "".join(delimiter.join(map(str, r)) + "\n" for r in rows))
    return str(path)


def csv_dataset(**options):
    return datasets.get("csv")(**options)


def series_file(tmp_path, n=60, stores=("a", "b"), name="sales.csv", shuffle=False):
    """Two stores, days 0..n-1, units = 1000·store + day (each value names its row), price = noise."""
    rng = np.random.default_rng(0)
    rows = [(s, d, 1000 * (k + 1) + d, round(float(rng.normal()), 3)) for k, s in enumerate(stores) for d in range(n)]
    if shuffle:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    return write(tmp_path / name, ["store", "day", "units", "price"], rows)


def sequences_file(tmp_path, per_class=10, classes=("left", "right", "up"), name="moves.csv", split=False):
    """Sequences of 3–8 steps; feature a's mean tells the class apart."""
    rng = np.random.default_rng(1)
    rows, sid = [], 0
    for k, label in enumerate(classes):
        for j in range(per_class):
            sid += 1
            part = "test" if j < 3 else "train"
            for t in range(int(rng.integers(3, 9))):
                row = [f"s{sid}", t, label, round(k + 0.1 * float(rng.normal()), 4), round(float(rng.normal()), 4)]
                rows.append(row + ([part] if split else []))
    return write(tmp_path / name, ["rec", "t", "move", "a", "b"] + (["part"] if split else []), rows)


# ---- forecasting ---------------------------------------------------------------------------------------
def test_windows_have_the_asked_shape_and_targets_the_next_horizon_rows(tmp_path):
    d = csv_dataset(path=series_file(tmp_path), target="units", series="store", time="day", window=5, horizon=3,
                    features="units+price")
    s = d.splits()
    assert s["train"].x.shape[1:] == (5, 2) and s["train"].y.shape[1] == 3
    assert d.input_size == 2 and d.output_size == 3
    truth = d.references(s["test"])["truth"]
    assert (np.diff(truth, axis=1) == 1).all()          # three consecutive days of one store


def test_no_target_row_is_in_two_splits_and_windows_never_cross_series(tmp_path):
    d = csv_dataset(path=series_file(tmp_path), target="units", series="store", window=4, horizon=2)
    seen = {name: set(d.references(d.splits()[name])["truth"].ravel()) for name in ("train", "val", "test")}
    for a, b in itertools.combinations(seen, 2):
        assert not seen[a] & seen[b], (a, b)
    for rows in map(d.references, d.splits().values()):  # persistence (the last input) and targets: the same store
        assert (rows["persistence"] // 1000 == rows["truth"] // 1000).all()
    # the test split holds the last 15% of each store's days
    assert {int(v) % 1000 for v in seen["test"]} == set(range(51, 60))


def test_rows_are_ordered_by_time_within_each_series(tmp_path):
    options = dict(target="units", series="store", time="day", window=4)
    ordered = csv_dataset(path=series_file(tmp_path), **options).splits()
    shuffled = csv_dataset(path=series_file(tmp_path, shuffle=True, name="shuffled.csv"), **options).splits()
    for name in ordered:
        np.testing.assert_array_equal(ordered[name].x, shuffled[name].x)


def test_scalers_are_fitted_on_the_training_rows_only(tmp_path):
    path = tmp_path / "s.csv"
    options = dict(target="units", window=4, scale="global", relative=False, transform="none")
    base = [(d, 10 + np.sin(d)) for d in range(40)]
    d1 = csv_dataset(path=write(path, ["day", "units"], base), **options)
    d1.splits()
    changed = base[:30] + [(d, 1e6) for d in range(30, 40)]     # val and test rows only
    d2 = csv_dataset(path=write(tmp_path / "t.csv", ["day", "units"], changed), **options)
    d2.splits()
    for key in ("feature_mean", "feature_std", "target_mean", "target_std"):
        assert d1.fitted[key] == d2.fitted[key], key
    np.testing.assert_array_equal(d1.splits()["train"].x, d2.splits()["train"].x)


@pytest.mark.parametrize("relative, transform, scale",
                         list(itertools.product((True, False), ("none", "log", "auto"), ("window", "global"))))
def test_every_target_transform_maps_back_to_the_targets_own_units(tmp_path, relative, transform, scale):
    rows = [(d, round(100 * 1.02 ** d * (1.2 + np.sin(d / 2)), 2)) for d in range(50)]
    d = csv_dataset(path=write(tmp_path / "g.csv", ["day", "units"], rows), target="units", window=6, horizon=2,
                    relative=relative, transform=transform, scale=scale)
    for name, split in d.splits().items():   # the true normalised targets, as outputs, score 0
        assert d.metric(split.y, split) < 1e-6 * np.abs(d.references(d.splits()[name])["truth"]).max()
        np.testing.assert_allclose(d.forecasts(split.y, split), d.references(d.splits()[name])["truth"], rtol=1e-5)


def test_auto_takes_logs_of_a_positive_series_and_not_of_one_with_zeros(tmp_path):
    positive = csv_dataset(path=write(tmp_path / "p.csv", ["y"], [[v] for v in range(1, 40)]), target="y", window=3)
    positive.splits()
    zeros = csv_dataset(path=write(tmp_path / "z.csv", ["y"], [[v] for v in range(0, 40)]), target="y", window=3)
    zeros.splits()
    assert positive.fitted["transform"] == "log" and zeros.fitted["transform"] == "none"


def test_persistence_and_seasonal_naive_baselines(tmp_path):
    rows = [(d, [5, 9, 2, 7][d % 4] + 100) for d in range(60)]   # period 4, exactly
    d = csv_dataset(path=write(tmp_path / "p.csv", ["day", "y"], rows), target="y", window=4, horizon=2, season=4)
    test = d.splits()["test"]
    assert d.extra_metrics(test.y, test) == {"mae": 0.0, "seasonal_naive": 0.0}
    rows_ = d.references(test)
    assert d.baseline(test) == pytest.approx(np.sqrt(np.mean((rows_["truth"] - rows_["persistence"]) ** 2)))
    assert d.baseline(test) > 1
    plain = csv_dataset(path=write(tmp_path / "q.csv", ["day", "y"], rows), target="y", window=4, horizon=2)
    assert set(plain.extra_metrics(test.y, plain.splits()["test"])) == {"mae"}


def test_log_of_a_value_that_is_not_positive_is_an_error_naming_the_line(tmp_path):
    d = csv_dataset(path=write(tmp_path / "z.csv", ["y"], [[3], [0], [4]] * 10), target="y", window=2, transform="log")
    with pytest.raises(ConfigError, match=r"line 3: transform=log needs positive values"):
        d.splits()


# ---- splits users need (issue 25 item 5) -----------------------------------------------------------------
def monthly_file(tmp_path, months=120, name="monthly.csv"):
    """A value per month from 2000-01, the value naming its month: 0, 1, 2, ..."""
    rows = [(f"{2000 + m // 12}-{m % 12 + 1:02d}", m) for m in range(months)]
    return write(tmp_path / name, ["month", "y"], rows)


def target_months(dataset, name):
    """The set of months (as written) of every target of split `name`."""
    return set(dataset.series_and_times(name)[1].ravel())


def test_test_from_and_val_from_cut_by_date_and_windows_straddling_a_cut_are_dropped(tmp_path):
    d = csv_dataset(path=monthly_file(tmp_path), target="y", time="month", window=6, horizon=3,
                    val_from="2007-01", test_from="2008-07", transform="none")
    assert min(target_months(d, "test")) == "2008-07" and max(target_months(d, "test")) == "2009-12"
    assert min(target_months(d, "val")) == "2007-01" and max(target_months(d, "val")) == "2008-06"
    assert max(target_months(d, "train")) == "2006-12"
    truth = d.references(d.splits()["test"])["truth"]
    assert truth.min() == 102 and len(truth) == 18 - 3 + 1     # 2008-07 is month 102; whole windows only


def test_dates_compare_as_dates_and_numbers_as_numbers(tmp_path):
    # months written without a leading zero: as text "2000-10" < "2000-9", as dates it is later
    rows = [(f"{2000 + m // 12}-{m % 12 + 1}-1", m) for m in range(48)]
    d = csv_dataset(path=write(tmp_path / "d.csv", ["day", "y"], rows), target="y", time="day", window=3,
                    test_from="2003-1-1", val=0.1)
    assert d.references(d.splits()["test"])["truth"].min() == 36
    numbers = [(t, t) for t in range(1, 41)]   # 9 < 10 as numbers, not as text
    n = csv_dataset(path=write(tmp_path / "n.csv", ["t", "y"], numbers), target="y", time="t", window=3,
                    test_from=10, val_from=5)
    assert sorted(set(n.references(n.splits()["val"])["truth"].ravel())) == [5, 6, 7, 8, 9]
    assert n.references(n.splits()["test"])["truth"].min() == 10


def test_a_split_column_splits_a_forecast_and_a_window_belongs_to_its_targets_split(tmp_path):
    parts = ["train"] * 30 + ["val"] * 10 + ["train"] * 5 + ["test"] * 15
    rows = [(t, t, part) for t, part in enumerate(parts)]
    d = csv_dataset(path=write(tmp_path / "s.csv", ["t", "y", "part"], rows), target="y", time="t", window=4,
                    horizon=2, split="part", transform="none")
    targets = {name: set(d.references(d.splits()[name])["truth"].ravel()) for name in ("train", "val", "test")}
    assert targets["val"] == set(range(30, 40)) and targets["test"] == set(range(45, 60))
    assert targets["train"] == set(range(4, 30)) | set(range(40, 45))   # rows 4.. (the first window), both runs
    assert 39 not in {v for w in d.references(d.splits()["train"])["truth"] for v in w}


def test_val_0_has_no_validation_split_and_refuses_early_stopping(tmp_path):
    d = csv_dataset(path=monthly_file(tmp_path), target="y", time="month", window=6, val=0)
    assert len(d.splits()["val"]) == 0 and len(d.splits()["train"]) and len(d.splits()["test"])
    c = csv_dataset(path=sequences_file(tmp_path), label="move", series="rec", val=0)
    assert len(c.splits()["val"]) == 0
    runs = tmp_path / "runs"
    path = monthly_file(tmp_path)
    result = CliRunner().invoke(cli, ["--runs-dir", str(runs), "--cell", "gru", "--data",
                                      f"csv:path={path},target=y,time=month,window=6,val=0", "--epochs", "2",
                                      "--hidden", "4", "--json"], prog_name="rnnrun")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["val_loss"] is None
    assert "has no validation split" in result.stderr and "nothing to choose on" in result.stderr
    from tinygrad_rnn.runner.store import RunStore
    run = RunStore(str(runs)).get("last")
    summary = run.summary()
    assert summary.get("val_loss") is None and summary["best_epoch"] == 2   # the last epoch is kept
    config = run.config()
    config.pop("meta")
    from tinygrad_rnn.runner.experiment import build
    dataset, model, _ = build(config)
    model.load_state_dict(run.weights())
    assert dataset.metric(_outputs(model, dataset.splits()["test"]), dataset.splits()["test"]) == \
        pytest.approx(summary["test_metric"], rel=1e-6)
    stopping = CliRunner().invoke(cli, ["--runs-dir", str(tmp_path / "none"), "--cell", "gru", "--data",
                                        f"csv:path={path},target=y,time=month,window=6,val=0", "--reg",
                                        "early_stopping"], prog_name="rnnrun")
    assert stopping.exit_code == 2 and len(stopping.stderr.strip().splitlines()) == 1
    assert "early_stopping stops on the validation loss" in stopping.stderr
    assert not (tmp_path / "none").exists()


def _outputs(model, split):
    from tinygrad_rnn import Tensor, no_grad
    model.eval()
    with no_grad():
        return model.predict(Tensor(split.x), lengths=split.lengths).numpy()


def test_a_composite_time_key_sorts_by_its_columns_in_order(tmp_path):
    rows = [(2000 + q // 4, q % 4 + 1, q) for q in range(40)]
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    d = csv_dataset(path=write(tmp_path / "q.csv", ["year", "quarter", "y"], shuffled), target="y",
                    time="year+quarter", window=4, test_from="2008+2", val_from=2007, transform="none")
    test = d.references(d.splits()["test"])["truth"]
    assert test.ravel().tolist() == list(range(33, 40))                 # 2008 Q2 is quarter 33
    assert d.series_and_times("test")[1][0, 0] == "2008+2"
    assert d.references(d.splits()["val"])["truth"].ravel().tolist() == [28, 29, 30, 31, 32]


def test_series_are_in_natural_order(tmp_path):
    rows = [(f"test-{k}", t, k * 100 + t) for k in (10, 2, 1) for t in range(20)]
    d = csv_dataset(path=write(tmp_path / "n.csv", ["id", "t", "y"], rows), target="y", series="id", time="t",
                    window=3)
    series, _ = d.series_and_times("test")
    assert list(dict.fromkeys(series)) == ["test-1", "test-2", "test-10"]


def test_series_and_times_without_a_time_column_give_series_only(tmp_path):
    d = csv_dataset(path=series_file(tmp_path), target="units", series="store", window=4)
    series, times = d.series_and_times("val")
    assert times is None and set(series) == {"a", "b"} and len(series) == len(d.splits()["val"])
    c = csv_dataset(path=sequences_file(tmp_path), label="move", series="rec")
    series, times = c.series_and_times("test")
    assert times is None and series == c.series_ids(c.splits()["test"])


def test_the_data_label_names_the_file_and_the_options_that_shape_the_task():
    label = datasets.get("csv").data_label("csv", {"path": "/data/elnino.csv", "target": "sst", "window": 24,
                                                  "val": 0.15, "sha256": "ab12", "relative": False})
    assert label == "csv:elnino.csv(target=sst,window=24,relative=false)"
    assert datasets.get("sine").data_label("sine", {"T": 50}) == "sine"


# ---- classification ------------------------------------------------------------------------------------
def test_one_padded_sequence_per_series_with_its_label_and_class_names(tmp_path):
    d = csv_dataset(path=sequences_file(tmp_path), label="move", series="rec", time="t")
    s = d.splits()
    assert d.fitted["classes"] == ["left", "right", "up"] and d.output_size == 3
    assert d.fitted["features"] == ["a", "b"] and d.input_size == 2
    assert sum(len(v) for v in s.values()) == 30
    train = s["train"]
    assert (train.x[np.arange(train.x.shape[1])[None, :] >= train.lengths[:, None]] == 0).all()
    assert d.baseline(s["test"]) == pytest.approx(np.mean(s["test"].y == np.bincount(train.y).argmax()))


def test_the_random_split_is_stratified_by_label_and_set_by_the_seed(tmp_path):
    path = sequences_file(tmp_path, per_class=20)
    a = csv_dataset(path=path, label="move", series="rec", val=0.2, test=0.2).splits()
    b = csv_dataset(path=path, label="move", series="rec", val=0.2, test=0.2, seed=1).splits()
    assert np.bincount(a["test"].y).tolist() == [4, 4, 4] and np.bincount(a["val"].y).tolist() == [4, 4, 4]
    assert not np.array_equal(a["test"].x, b["test"].x)


def test_a_split_column_decides_and_validation_comes_from_its_training_series(tmp_path):
    d = csv_dataset(path=sequences_file(tmp_path, split=True), label="move", series="rec", split="part", val=0.3)
    s = d.splits()
    assert len(s["test"]) == 9 and len(s["val"]) == 6 and len(s["train"]) == 15


def test_frames_are_ordered_by_time_within_each_sequence(tmp_path):
    path = sequences_file(tmp_path)
    lines = open(path).read().splitlines()
    shuffled = tmp_path / "shuffled.csv"
    order = np.random.default_rng(2).permutation(len(lines) - 1)
    shuffled.write_text("\n".join([lines[0]] + [lines[1:][i] for i in order]))
    a = csv_dataset(path=path, label="move", series="rec", time="t").splits()
    b = csv_dataset(path=str(shuffled), label="move", series="rec", time="t").splits()
    for name in a:
        np.testing.assert_array_equal(a[name].x, b[name].x)
        np.testing.assert_array_equal(a[name].lengths, b[name].lengths)


def test_numeric_class_names_sort_as_numbers(tmp_path):
    d = csv_dataset(path=sequences_file(tmp_path, classes=("10", "2", "9")), label="move", series="rec")
    d.splits()
    assert d.fitted["classes"] == ["2", "9", "10"]


def test_features_are_standardised_with_the_training_series_only(tmp_path):
    d = csv_dataset(path=sequences_file(tmp_path), label="move", series="rec", features="a")
    train = d.splits()["train"]
    real = train.x[np.arange(train.x.shape[1])[None, :] < train.lengths[:, None]]
    assert real.mean() == pytest.approx(0, abs=1e-5) and real.std() == pytest.approx(1, abs=1e-4)


# ---- missing values, delimiters ------------------------------------------------------------------------
def gappy(tmp_path):
    return write(tmp_path / "gaps.csv", ["id", "t", "y"],
                 [("a", 0, ""), ("a", 1, 2), ("a", 2, "NA"), ("a", 3, 6), ("b", 0, 1), ("b", 1, "nan"), ("b", 2, 5),
                  ("b", 3, 7), ("b", 4, "")])


@pytest.mark.parametrize("missing, expected", [
    ("drop", [2, 6, 1, 5, 7]), ("ffill", [2, 2, 2, 6, 1, 1, 5, 7, 7]), ("interpolate", [2, 2, 4, 6, 1, 3, 5, 7, 7])])
def test_missing_values_are_dropped_or_filled_within_each_series(tmp_path, missing, expected):
    d = csv_dataset(path=gappy(tmp_path), target="y", series="id", time="t", missing=missing)
    assert d.load(d.path)["values"][:, 0].tolist() == expected


def test_missing_values_are_an_error_naming_the_column_and_lines_by_default(tmp_path):
    d = csv_dataset(path=gappy(tmp_path), target="y", series="id", time="t")
    with pytest.raises(ConfigError, match=r"column 'y' has missing values at line\(s\) 2, 4, 7 and 1 more; "
                                          r"pass missing=drop, ffill or interpolate"):
        d.splits()


@pytest.mark.parametrize("delimiter, option", [(";", None), ("\t", None), ("|", None), (";", ";"), ("\t", "tab")])
def test_the_delimiter_is_sniffed_or_given_and_a_byte_order_mark_is_dropped(tmp_path, delimiter, option):
    path = tmp_path / "d.csv"
    path.write_text("\ufeff" + delimiter.join(["day", "units"]) + "\n" +
                    "".join(f"{d}{delimiter}{d * 2 + 1}\n" for d in range(30)), encoding="utf-8")
    d = csv_dataset(path=str(path), target="units", time="day", window=3, delimiter=option)
    assert d.load(d.path)["values"][:3, 0].tolist() == [1, 3, 5]


# ---- bad input: one line, exit 2, from the command line -------------------------------------------------
def bad_inputs(tmp_path):
    good = series_file(tmp_path)
    text = write(tmp_path / "text.csv", ["day", "units"], [(1, 3), (2, "lots"), (3, 4)])
    one_class = write(tmp_path / "one.csv", ["rec", "move", "a"], [("s1", "left", 1), ("s2", "left", 2)])
    dup = write(tmp_path / "dup.csv", ["day", "units"], [(1, 3), (2, 4), (2, 5)])
    mixed = write(tmp_path / "mixed.csv", ["rec", "move", "a"], [("s1", "left", 1), ("s1", "up", 2), ("s2", "up", 2)])
    parts = write(tmp_path / "parts.csv", ["rec", "move", "a", "part"],
                  [("s1", "left", 1, "train"), ("s2", "up", 2, "dev")])
    no_id = write(tmp_path / "noid.csv", ["rec", "move", "a"], [("s1", "left", 1), ("", "up", 2)])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("day,units\n1,2\n2\n3,4\n")
    unclosed = tmp_path / "unclosed.csv"     # issue 29: the open quote swallowed the 48 lines after it
    unclosed.write_text("day,units\n" + "".join(f"{d},{d}\n" if d != 11 else '10,"unterminated\n'
                                                 for d in range(1, 60)))
    blank_then_ragged = tmp_path / "blank.csv"
    blank_then_ragged.write_text("day,units\n1,2\n\n2,3\n3,4,5\n")
    nul = tmp_path / "nul.csv"
    nul.write_text("day,units\n1,2\n2,\0\n")
    all_na = write(tmp_path / "all_na.csv", ["day", "units"], [(d, "NA") for d in range(30)])
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin1.csv").write_bytes("caf\xe9,units\n1,2\n".encode("latin-1"))
    return [
        (f"path={tmp_path}/none.csv,target=units", "no such file: "),
        (f"path={tmp_path}/empty.csv,target=units", "is empty: expected a header row"),
        (f"path={tmp_path}/latin1.csv,target=units", "is not UTF-8 text"),
        (f"path={good},target=sold", "has no column 'sold'; its columns: store, day, units, price"),
        (f"path={good},target=units,features=units+cost", "has no column 'cost'"),
        (f"path={text},target=units", "line 3: column 'units' holds 'lots', not a number"),
        (f"path={good},target=units,series=store,window=60",
         "series 'a' has 60 rows, fewer than window + horizon = 61"),
        (f"path={good},target=units,series=store,window=55", "no train window"),
        (f"path={one_class},label=move,series=rec", "holds one class only ('left')"),
        (f"path={dup},target=units,time=day", "line 4: time '2' appears twice in the series"),
        (f"path={good},target=units,label=store", "exactly one of target=COL"),
        (f"path={mixed},label=move,series=rec", "line 3: series 's1' has labels 'left' and 'up'"),
        (f"path={parts},label=move,series=rec,split=part", "line 3: column 'part' holds 'dev'; valid values: train"),
        (f"path={no_id},label=move,series=rec", "line 3: column 'rec' is empty"),
        (f"path={ragged},target=units", "line 3 has 1 field, the header 2"),
        (f"path={unclosed},target=units", "line 12: a quote opened and not closed"),
        (f"path={blank_then_ragged},target=units", "line 5 has 3 fields, the header 2"),
        (f"path={nul},target=units", "line 3 holds a NUL byte"),
        (f"path={all_na},target=units,missing=drop", "no rows left after dropping the rows with missing values "
                                                    "(missing=drop): column 'units' is missing in every row"),
        (f"path={good},target=units,test_from=2005", "test_from and val_from compare each target's time: they "
                                                     "need time=COL"),
        (f"path={good},target=units,series=store,time=day,test_from=2005-01",
         "time column 'day' holds numbers; '2005-01' is not one"),
        (f"path={good},target=units,series=store,time=day,test_from=99", "no test window"),
        (f"path={good},target=units,val=-0.1", "val must be a fraction from 0 (no validation split)"),
        (f"path={good},target=units,series=store,time=day,split=store,test_from=50", "test_from and val_from "
                                                                                     "cannot say it too"),
        (f"path={good},target=units,series=store,time=day,split=store", "line 2: column 'store' holds 'a'; valid "
                                                                        "values: train, val, test"),
        (f"path={good},target=units,series=store,time=day,test_from=55,val_from=58", "no val window"),
        (f"path={good},target=units,series=store,time=day+store,test_from=50+a+1", "has 3 parts, the time key 2"),
        (f"path={good},label=units", "classification needs series=COL"),
        ("target=units", "needs path=FILE"),
        (f"path={good},target=units,missing=guess", "missing must be one of error, drop, ffill, interpolate"),
        (f"path={good},target=units,transform=sqrt", "transform must be one of none, log, auto"),
        (f"path={good},target=units,scale=batch", "scale must be one of window, global"),
        (f"path={good},target=units,val=0.5,test=0.5", "val + test must leave rows to train on"),
        (f"path={good},target=units,delimiter=x", "delimiter 'x' is not one of"),
    ]


def test_every_bad_input_is_one_line_and_exit_2(tmp_path):
    runs = tmp_path / "runs"
    for options, message in bad_inputs(tmp_path):
        result = CliRunner().invoke(cli, ["--runs-dir", str(runs), "--cell", "gru", "--data", f"csv:{options}",
                                          "--epochs", "1", "--quiet"], prog_name="rnnrun")
        assert result.exit_code == 2, (options, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (options, result.stderr)


# ---- the file is recorded ------------------------------------------------------------------------------
def test_a_run_records_the_files_path_and_hash_and_warns_when_it_changed(tmp_path):
    path = series_file(tmp_path)
    runs = tmp_path / "runs"
    argv = ["--runs-dir", str(runs), "--cell", "gru", "--hidden", "4", "--epochs", "1", "--quiet", "--json"]
    result = CliRunner().invoke(cli, argv + ["--data", f"csv:path={path},target=units,series=store"])
    assert result.exit_code == 0, result.output
    run_dir = json.loads(result.stdout)["run_dir"]
    config = open(f"{run_dir}/config.toml").read()
    assert re.search(r'sha256 = "[0-9a-f]{64}"', config) and f'path = "{path}"' in config
    again = CliRunner().invoke(cli, argv[:-6] + ["--config", f"{run_dir}/config.toml", "--quiet"])
    assert again.exit_code == 0 and "warning" not in again.stderr
    with open(path, "a") as f:
        f.write("a,60,1060,0.5\n")
    changed = CliRunner().invoke(cli, argv[:-6] + ["--config", f"{run_dir}/config.toml", "--quiet"])
    assert changed.exit_code == 0 and "has changed since the run that recorded it" in changed.stderr
    # compare never ranks runs on a file that changed, nor on other options, against each other
    other = CliRunner().invoke(cli, argv + ["--data", f"csv:path={path},target=units,series=store,window=5"])
    assert other.exit_code == 0, other.output
    ids = sorted(os.listdir(runs))
    compared = CliRunner().invoke(cli, ["--runs-dir", str(runs), "compare", *ids], terminal_width=250)
    assert compared.exit_code == 0, compared.output
    text = " ".join(compared.stdout.split())    # titles wrap to their table's width
    assert text.count("Comparison on ") == 3 and "3 tables" in text
    assert text.count("Comparison on csv:sales.csv(target=units,series=store), file SHA-256 ") == 2
    assert "Comparison on csv:sales.csv(target=units,series=store,window=5) (rmse)" in text


def test_the_shipped_long_vowels_file_is_the_vowels_data():
    import os
    from tinygrad_rnn.data import read_table
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugins", "datasets", "data")
    names, table = read_table(os.path.join(folder, "japanese_vowels_long.csv"))
    raw = dict(np.load(os.path.join(folder, "japanese_vowels_sktime.npz")))   # read each array once
    lengths = np.concatenate([raw["len_train"], raw["len_test"]])
    frames = np.concatenate([raw[f"X_{part}"][k, :n] for part in ("train", "test")
                             for k, n in enumerate(raw[f"len_{part}"])])
    assert len(table["utterance"]) == lengths.sum() == len(frames)
    values = np.stack([table[f"c{k}"].astype(np.float64) for k in range(1, 13)], axis=1)
    np.testing.assert_allclose(values, frames, atol=5e-7)
    speakers = np.concatenate([raw["y_train"], raw["y_test"]]) + 1
    assert (table["speaker"] == np.repeat([f"speaker{s}" for s in speakers], lengths)).all()
    assert (table["set"] == "test").sum() == raw["len_test"].sum()


def test_rnnrun_check_holds_a_csv_dataset_without_validation_to_the_protocol(tmp_path):
    rows = [(f"{2000 + m // 12}-{m % 12 + 1:02d}", round(10 + 3 * np.sin(m) + 0.1 * m, 4)) for m in range(120)]
    path = write(tmp_path / "wavy.csv", ["month", "y"], rows)
    result = CliRunner().invoke(cli, ["check", "--data", f"csv:path={path},target=y,time=month,window=6,val=0"])
    assert result.exit_code == 0 and "checks that apply pass" in " ".join(result.stdout.split()), result.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(20, 60), window=st.integers(1, 5), horizon=st.integers(1, 3), cut=st.data())
def test_time_cutoffs_put_every_whole_window_in_the_split_of_its_targets(tmp_path, n, window, horizon, cut):
    """Times 0..n−1 (y = t): each window whose targets lie on one side of the cutoffs is kept, in that split."""
    test_from = cut.draw(st.integers(window + horizon + 2, n - horizon))
    val_from = cut.draw(st.integers(window + horizon, test_from - 1))
    path = write(tmp_path / "t.csv", ["t", "y"], [(t, t) for t in range(n)])
    try:
        d = csv_dataset(path=path, target="y", time="t", window=window, horizon=horizon, transform="none",
                        test_from=test_from, val_from=val_from)
        splits = d.splits()
    except ConfigError as e:
        assert "no val window" in str(e) or "no train window" in str(e)
        return
    expected = {"train": (window, val_from), "val": (val_from, test_from), "test": (test_from, n)}
    for name, (low, high) in expected.items():
        truth = d.references(splits[name])["truth"]
        firsts = sorted(truth[:, 0].astype(int).tolist())
        assert firsts == list(range(low, high - horizon + 1)), name     # every whole window, and only those


def test_a_quote_inside_a_field_is_text_and_only_an_opening_quote_left_open_is_an_error(tmp_path):
    from tinygrad_rnn.data import read_table
    fine = tmp_path / "fine.csv"
    fine.write_text('size,units\n5" screen,1\n"a, b",2\n"say ""hi""",3\n')
    names, table = read_table(str(fine))
    assert table["size"].tolist() == ['5" screen', "a, b", 'say "hi"'] and table["units"].tolist() == ["1", "2", "3"]
    for text, line in (('size,units\n"a""b,1\n2,3\n', 2), ('size,units\n1,2\n3,"""\n', 3)):
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=f"line {line}: a quote opened and not closed"):
            read_table(str(bad))


@pytest.mark.parametrize("column", ["units", "price"])
def test_values_too_large_to_standardise_are_an_error_naming_column_line_and_valid_range(tmp_path, column):
    """±1e300 squares to inf in float64: the run would "finish" with NaN metrics. Refused before any folder."""
    rows = [(d, 10 + d % 7, round(0.1 * d, 2)) for d in range(80)]
    big = 40  # the row of the first huge value (line 42, after the header)
    rows = [(d, -1e300 if d == big and column == "units" else u, 1e300 if d >= big and column == "price" else p)
            for d, u, p in rows]
    path = write(tmp_path / "huge.csv", ["day", "units", "price"], rows)
    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["--runs-dir", str(runs), "--cell", "gru", "--epochs", "1", "--hidden", "2",
                                      "--data", f"csv:path={path},target=units,time=day,features=units+price"])
    assert result.exit_code == 2, result.output
    said = result.output.strip()
    assert len(said.splitlines()) == 1 and "Traceback" not in said
    assert f"line {big + 2}: column {column!r}" in said and "within ±1e+150" in said, said
    assert not runs.exists() or not any(runs.iterdir())
