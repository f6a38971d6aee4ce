"""`rnnrun predict RUN --input FILE`: the run's saved preprocessing and model applied to a new file.

The round trips: predicting on the training file reproduces what the run itself predicted on its
test split, for a forecaster (each series cut just before its last test window) and a classifier."""
import csv
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_rnn.runner.cli import cli
from tinygrad_rnn.runner.experiment import build
from tinygrad_rnn.runner.store import RunStore

from test_csv_dataset import sequences_file, series_file, write

TRAIN = ["--cell", "gru", "--hidden", "4", "--epochs", "2", "--quiet", "--json"]


def rnnrun(runs, *argv):
    return CliRunner().invoke(cli, ["--runs-dir", str(runs), *argv], prog_name="rnnrun")


def trained(tmp_path, data):
    runs = tmp_path / "runs"
    result = rnnrun(runs, *TRAIN, "--data", data)
    assert result.exit_code == 0, result.output
    run = RunStore(str(runs)).get("last")
    config = run.config()
    config.pop("meta")
    dataset, model, _ = build(config)
    model.load_state_dict(run.weights())
    model.eval()
    return runs, run, dataset, model


def outputs(model, split):
    from tinygrad_rnn import Tensor, no_grad
    with no_grad():
        return model.predict(Tensor(split.x), lengths=split.lengths).numpy()


def predicted(runs, *argv):
    result = rnnrun(runs, "predict", "last", *argv, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_forecast_round_trip_each_series_cut_before_its_last_test_window(tmp_path):
    path = series_file(tmp_path)
    runs, run, dataset, model = trained(tmp_path, f"csv:path={path},target=units,series=store,time=day,"
                                                  "window=6,horizon=3")
    saved = json.load(open(run.file("preprocessing.json")))
    assert saved["features"] == ["units"] and saved["output_size"] == 3
    test = dataset.splits()["test"]
    expected = dataset.forecasts(outputs(model, test), test)
    last = {store: expected[k] for k, store in ((-1, "b"), (len(expected) // 2 - 1, "a"))}
    rows = list(csv.reader(open(path)))
    # days 57–59 are each store's last test targets: cut the file just before them
    cut = write(tmp_path / "cut.csv", rows[0], [r for r in rows[1:] if int(r[1]) < 57])
    document = predicted(runs, "--input", cut)
    assert document["columns"] == ["store", "day", "units"]   # the days after 56, continued
    for store, day, value in document["rows"]:
        assert value == pytest.approx(last[store][int(day) - 57], rel=1e-5)
    assert [(store, day) for store, day, _ in document["rows"]] == [(s, str(d)) for s in "ab" for d in (57, 58, 59)]


def test_classification_round_trip_on_the_training_file_without_its_label_column(tmp_path):
    path = sequences_file(tmp_path)
    runs, run, dataset, model = trained(tmp_path, f"csv:path={path},label=move,series=rec,time=t")
    test = dataset.splits()["test"]
    logits = outputs(model, test)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    rows = list(csv.reader(open(path)))
    unlabelled = write(tmp_path / "new.csv", ["rec", "t", "a", "b"], [[r[0], r[1], r[3], r[4]] for r in rows[1:]])
    document = predicted(runs, "--input", unlabelled)
    assert document["columns"] == ["rec", "move", "p_left", "p_right", "p_up"]
    by_id = {row[0]: row for row in document["rows"]}
    for sid, p in zip(dataset.series_ids(test), expected):
        np.testing.assert_allclose(by_id[sid][2:], p, rtol=1e-4, atol=1e-6)
        assert by_id[sid][1] == ["left", "right", "up"][int(p.argmax())]


def test_steps_feed_the_forecasts_back_and_the_output_file_holds_them(tmp_path):
    path = series_file(tmp_path, stores=("a",))
    runs, *_ = trained(tmp_path, f"csv:path={path},target=units,time=day,window=5")
    one = predicted(runs, "--input", path)["rows"]
    five = predicted(runs, "--input", path, "--steps", "5")["rows"]
    assert [r[0] for r in five] == ["60", "61", "62", "63", "64"] and five[0] == one[0]
    rows = list(csv.reader(open(path)))
    extended = write(tmp_path / "ext.csv", rows[0], rows[1:] + [["a", "60", str(five[0][1]), "0"]])
    assert predicted(runs, "--input", extended)["rows"][0][1] == pytest.approx(five[1][1], rel=1e-5)
    result = rnnrun(runs, "predict", "last", "--input", path, "--steps", "3", "--output", str(tmp_path / "out.csv"))
    assert result.exit_code == 0 and "3 predictions written" in result.output
    assert list(csv.reader(open(tmp_path / "out.csv")))[0] == ["day", "units"]
    table = rnnrun(runs, "predict", "last", "--input", path)
    assert table.exit_code == 0 and "units" in table.output


def test_predict_says_clearly_what_it_cannot_do(tmp_path):
    path = series_file(tmp_path)
    runs, *_ = trained(tmp_path, f"csv:path={path},target=units,series=store,features=units+price")
    steps = rnnrun(runs, "predict", "last", "--input", path, "--steps", "4")
    assert steps.exit_code == 2 and "needs the target as the only input" in steps.stderr
    missing = write(tmp_path / "m.csv", ["store", "units"], [("a", 1)] * 20)
    wrong = rnnrun(runs, "predict", "last", "--input", missing)
    assert wrong.exit_code == 2 and "has no column 'price'" in wrong.stderr
    assert rnnrun(runs, *TRAIN, "--data", "sine:n_train=40", "--epochs", "1").exit_code == 0
    sine = rnnrun(runs, "predict", "last", "--input", path)
    assert sine.exit_code == 2 and "does not predict from files; predict works for runs on: " in sine.stderr
    assert "csv" in sine.stderr


def test_predict_warns_when_the_training_file_changed(tmp_path):
    path = series_file(tmp_path)
    runs, *_ = trained(tmp_path, f"csv:path={path},target=units,series=store")
    quiet = rnnrun(runs, "predict", "last", "--input", path, "--json")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr
    with open(path, "a") as f:
        f.write("a,60,1060,0.5\n")
    changed = rnnrun(runs, "predict", "last", "--input", path, "--json")
    assert changed.exit_code == 0 and "which this run was trained on, has changed since" in changed.stderr


def test_the_built_in_airline_series_predicts_from_a_file_of_the_same_shape(tmp_path):
    runs, run, dataset, model = trained(tmp_path, "airline")
    test = dataset.splits()["test"]
    first = dataset.denormalize(outputs(model, test.subset(slice(0, 1))))[0, 0]
    rows = list(csv.reader(open(sys.modules[type(dataset).__module__].DATA)))
    cut = write(tmp_path / "cut.csv", rows[0], rows[1:dataset.test_start + 1])   # up to the first test month
    document = predicted(runs, "--input", cut)
    assert document["columns"] == ["step", "passengers"]
    assert document["rows"][0][1] == pytest.approx(first, rel=1e-5)


# ---- issue 25 item 4: predictions carry their time; series in natural order; --split ---------------------
def test_predictions_continue_a_regular_time_and_are_numbered_where_it_is_irregular(tmp_path):
    rows = [(f"{2000 + m // 12}-{m % 12 + 1:02d}", 100 + m) for m in range(48)]
    path = write(tmp_path / "m.csv", ["month", "y"], rows)
    runs, *_ = trained(tmp_path, f"csv:path={path},target=y,time=month,window=6,horizon=2")
    dated = predicted(runs, "--input", path, "--steps", "3")
    assert dated["columns"] == ["month", "y"] and [r[0] for r in dated["rows"]] == ["2004-01", "2004-02", "2004-03"]
    gappy = write(tmp_path / "g.csv", ["month", "y"], rows[:40] + rows[41:])   # 2003-05 missing: irregular
    numbered = predicted(runs, "--input", gappy, "--steps", "2")
    assert numbered["columns"] == ["step", "y"] and [r[0] for r in numbered["rows"]] == [1, 2]


def test_predicted_series_come_in_natural_order(tmp_path):
    rows = [(f"store-{k}", d, 10 * k + d % 5) for k in (10, 2, 1) for d in range(30)]
    path = write(tmp_path / "n.csv", ["store", "day", "units"], rows)
    runs, *_ = trained(tmp_path, f"csv:path={path},target=units,series=store,time=day,window=4")
    document = predicted(runs, "--input", path)
    assert [r[0] for r in document["rows"]] == ["store-1", "store-2", "store-10"]
    assert [r[1] for r in document["rows"]] == ["30", "30", "30"]


def test_split_test_predicts_only_the_test_series_of_a_classification_file(tmp_path):
    path = sequences_file(tmp_path, split=True)
    runs, run, dataset, model = trained(tmp_path, f"csv:path={path},label=move,series=rec,time=t,split=part")
    everything = predicted(runs, "--input", path)
    test = predicted(runs, "--input", path, "--split", "test")
    assert len(everything["rows"]) == 30 and len(test["rows"]) == 9     # 3 of each class's 10 are test
    assert [r[0] for r in test["rows"]] == sorted(dataset.series_ids(dataset.splits()["test"]),
                                                  key=lambda s: int(s[1:]))
    by_id = {r[0]: r for r in everything["rows"]}
    assert all(by_id[r[0]] == r for r in test["rows"])      # the same predictions, fewer rows
    random_split = trained(tmp_path / "r", f"csv:path={path},label=move,series=rec,time=t")[0]
    refused = rnnrun(random_split, "predict", "last", "--input", path, "--split", "test")
    assert refused.exit_code == 2 and "this run split its series at random" in refused.stderr
