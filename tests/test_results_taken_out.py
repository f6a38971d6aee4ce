"""Results a user can trust and take out (issue 25 items 2, 3, 4, 6, 7): --seeds with its groups and
ensemble, baselines in --json, predictions.csv, per-step and per-class breakdowns, comparable runs,
plugin options as sweep and tune axes, and predict over several runs."""
import csv
import json
import os

import numpy as np
import pytest

from helpers import console_script
from tinygrad_rnn import breakdowns
from tinygrad_rnn.data import Split

AIRLINE_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugins", "datasets",
                            "data", "airline_passengers_1949_1960.csv")


def run_json(tmp_path, *args):
    code, out, err = console_script("--runs-dir", tmp_path, "--json", *args)
    assert code == 0, err
    return json.loads(out)


def rows_of(path):
    with open(path) as f:
        return list(csv.reader(f))


# ---- seeds ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    return root, run_json(root, "--cell", "gru", "--data", "airline", "--epochs", "2", "--seeds", "3", "--seed", "4")


def test_seeds_trains_seed_to_seed_plus_n_minus_one_and_groups_them(seeded):
    _, doc = seeded
    assert set(doc) == {"runs", "groups"}
    assert [r["seed"] for r in doc["runs"]] == [4, 5, 6]
    group, = doc["groups"]
    assert group["cell"] == "gru" and group["n"] == 3 and group["seeds"] == [4, 5, 6]
    for metric in ("test_metric", "val_metric", "test_loss", "val_loss"):
        values = [r[metric] for r in doc["runs"]]
        assert group[f"{metric}_mean"] == pytest.approx(np.mean(values))
        assert group[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1))


def test_the_ensemble_is_the_mean_of_the_runs_outputs_scored_on_the_same_test_split(seeded):
    _, doc = seeded
    group = doc["groups"][0]
    from tinygrad_rnn.registry import datasets
    airline = datasets.get("airline")()
    outputs = [np.load(os.path.join(r["run_dir"], "outputs.npz"))["test"] for r in doc["runs"]]
    expected = airline.metric(np.mean(outputs, axis=0), airline.splits()["test"])
    assert group["ensemble_test_metric"] == pytest.approx(expected)
    assert group["best_baseline"]["name"] == "linear"
    assert group["ensemble_beats_best_baseline"] == (expected < group["best_baseline"]["value"])


def test_without_seeds_the_json_is_one_run_as_before_with_the_baselines(tmp_path):
    doc = run_json(tmp_path, "--cell", "gru", "--data", "airline", "--epochs", "1")
    assert "runs" not in doc and doc["cell"] == "gru"
    assert {"persistence", "seasonal naive", "training mean", "linear"} <= set(doc["baselines"])
    assert doc["baselines"]["seasonal naive"] == doc["baseline"] and doc["baseline_name"] == "seasonal naive"
    assert doc["best_baseline"] == {"name": "linear", "value": doc["baselines"]["linear"]}


def test_seeds_on_synthetic_data_say_there_is_no_common_test_split(tmp_path):
    doc = run_json(tmp_path, "--cell", "gru", "--data", "sine:n_train=40", "--epochs", "1", "--seeds", "2")
    group, = doc["groups"]
    assert group["ensemble_test_metric"] is None and "different data" in group["ensemble_note"]


def test_the_seeds_table_shows_mean_sd_n_the_ensemble_and_the_strongest_baseline(seeded):
    root, doc = seeded
    code, out, err = console_script("--runs-dir", root, "--cell", "gru", "--data", "airline", "--epochs", "1",
                                    "--seeds", "2", "-q")
    assert code == 0, err
    assert "Over seeds on airline" in out and " ± " in out and "linear" in out and "ensemble" in out


# ---- predictions.csv and breakdowns ---------------------------------------------------------------------
def test_predictions_csv_has_every_val_and_test_window_dated_in_passengers(seeded):
    _, doc = seeded
    run = doc["runs"][0]
    rows = rows_of(os.path.join(run["run_dir"], "predictions.csv"))
    assert rows[0] == ["split", "series", "time", "step", "truth", "prediction"]
    test = [r for r in rows[1:] if r[0] == "test"]
    assert len(test) == 24 and [r for r in rows[1:] if r[0] == "val"]
    assert test[0][2] == "1959-01" and test[-1][2] == "1960-12"
    lines = open(AIRLINE_FILE).read().split()[1:]
    passengers = {line.split(",")[0]: float(line.split(",")[1]) for line in lines}
    assert all(float(r[4]) == pytest.approx(passengers[r[2]], rel=1e-5) for r in test)
    errors = np.array([float(r[5]) - float(r[4]) for r in test])
    assert np.sqrt(np.mean(errors ** 2)) == pytest.approx(run["test_metric"], rel=1e-5)


def test_a_multi_step_forecast_reports_its_metric_per_step_and_show_prints_it(tmp_path):
    doc = run_json(tmp_path, "--cell", "gru", "--data", "weather:K=3,train_years=1", "--epochs", "1")
    steps = doc["test_metric_per_step"]
    assert len(steps) == 3
    rows = [r for r in rows_of(os.path.join(doc["run_dir"], "predictions.csv"))[1:] if r[0] == "test"]
    for k in range(3):
        errors = np.array([float(r[5]) - float(r[4]) for r in rows if r[3] == str(k + 1)])
        assert steps[k] == pytest.approx(np.sqrt(np.mean(errors ** 2)), rel=1e-6)
    assert np.sqrt(np.mean(np.square(steps))) == pytest.approx(doc["test_metric"], rel=1e-6)
    code, out, _ = console_script("--runs-dir", tmp_path, "show", "last")
    assert "per step ahead" in out


def test_a_classifier_reports_per_class_scores_and_its_confusion_matrix(tmp_path):
    doc = run_json(tmp_path, "--cell", "gru", "--data", "heartbeat:n_train=40", "--epochs", "1")
    matrix = np.array(doc["test_confusion"]["matrix"])
    assert doc["test_confusion"]["labels"] == ["0", "1"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(doc["test_metric"])
    for k, label in enumerate(["0", "1"]):
        assert doc["test_per_class"][label]["support"] == matrix[k].sum()
    rows = rows_of(os.path.join(doc["run_dir"], "predictions.csv"))
    assert rows[0] == ["split", "series", "truth", "prediction", "p_0", "p_1"]
    assert all(abs(float(r[4]) + float(r[5]) - 1) < 1e-5 for r in rows[1:])
    code, out, _ = console_script("--runs-dir", tmp_path, "show", "last")
    assert "Test per class" in out and "Test confusion" in out


def test_per_class_precision_recall_and_f1_by_hand():
    split = Split(np.zeros((6, 1, 1)), np.array([0, 0, 0, 1, 1, 2]))
    predicted = np.array([0, 0, 1, 1, 2, 2])
    logits = np.eye(3)[predicted]
    report = breakdowns.per_class(logits, split, ["a", "b", "c"])
    assert report["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8), "support": 3}
    assert report["b"]["precision"] == 0.5 and report["b"]["recall"] == 0.5
    assert breakdowns.confusion(logits, split, ["a", "b", "c"])["matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_a_classification_ensemble_averages_probabilities_not_logits():
    # one confident wrong model and two mildly right ones: mean probabilities side with the two
    confident = np.log(np.array([[0.99, 0.01]]))
    mild = np.log(np.array([[0.4, 0.6]]))
    mixed = breakdowns.ensemble([confident, mild, mild], "classification")
    assert np.allclose(np.exp(mixed), [[(0.99 + 0.8) / 3, (0.01 + 1.2) / 3]])


# ---- comparable runs -------------------------------------------------------------------------------------
def test_compare_never_ranks_runs_on_different_data_together(tmp_path):
    a = run_json(tmp_path, "--cell", "gru", "--data", "airline", "--epochs", "1")
    b = run_json(tmp_path, "--cell", "gru", "--data", "airline:window=24", "--epochs", "1")
    c = run_json(tmp_path, "--cell", "gru", "--data", "airline:test_months=12", "--epochs", "1")
    d = run_json(tmp_path, "--cell", "gru", "--data", "airline:test_months=24", "--epochs", "1", "--lr", "0.003")
    code, out, err = console_script("--runs-dir", tmp_path, "compare", *(r["run_id"] for r in (a, b, c, d)), "--json")
    assert code == 0, err
    tables = json.loads(out)["tables"]
    # any option that differs is different data; an option given at its default (test_months=24) is not
    assert sorted(len(t["runs"]) for t in tables) == [1, 1, 2]
    shared = next(t for t in tables if len(t["runs"]) == 2)
    assert shared["data"] == "airline" and shared["differing"] == ["lr"]
    assert [r["settings"]["lr"] for r in shared["runs"]] == [0.01, 0.003]
    assert all(t["best"] is None for t in tables if len(t["runs"]) == 1)
    assert {t["data"] for t in tables} == {"airline", "airline(window=24)", "airline(test_months=12)"}


def test_a_sweep_ranks_trials_across_a_datasets_input_options_only():
    from tinygrad_rnn.runner.comparable import comparison_key
    window = [{"data": "airline", "data_options": {"window": w}} for w in (12, 24)]
    assert comparison_key(window[0], across_inputs=True) == comparison_key(window[1], across_inputs=True)
    assert comparison_key(window[0]) != comparison_key(window[1])
    months = [{"data": "airline", "data_options": {"test_months": m}} for m in (12, 24)]
    assert comparison_key(months[0], across_inputs=True) != comparison_key(months[1], across_inputs=True)


# ---- plugin options as axes ------------------------------------------------------------------------------
def test_a_sweep_searches_dataset_and_regulariser_options_and_records_them(tmp_path):
    code, out, err = console_script("--runs-dir", tmp_path, "sweep", "--cell", "gru", "--data", "airline:window=12|24",
                                    "--reg", "clip:threshold=0.5|1.0", "--epochs", "1", "--workers", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    settings = [t["settings"] for t in doc["trials"]]
    assert settings == [{"data": "airline", "cell": "gru", "data.window": w, "reg.clip.threshold": m}
                        for w in (12, 24) for m in (0.5, 1.0)]
    for t in doc["trials"]:
        config = open(os.path.join(t["run_dir"], "config.toml")).read()
        settings = t["settings"]
        assert f"window = {settings['data.window']}" in config
        assert f"threshold = {settings['reg.clip.threshold']}" in config
    assert sum(r["best"] for r in doc["configurations"]) == 1


def test_tune_searches_an_input_option_over_a_range_and_best_toml_repeats_the_exact_values(tmp_path):
    pytest.importorskip("optuna")
    code, out, err = console_script("--runs-dir", tmp_path, "tune", "--cell", "gru", "--data", "sunspots:window=8:30",
                                    "--lr", "1e-3:1e-1", "--trials", "2", "--epochs", "1", "--pruner", "none")
    assert code == 0, err
    best_line = next(line for line in out.splitlines() if line.startswith("best: trial"))
    lr = float(best_line.split("lr=")[1].split()[0])
    found = next(os.path.join(d, "best.toml") for d, _, files in os.walk(tmp_path) if "best.toml" in files)
    best_toml = open(found).read()
    assert f"lr = {lr!r}" in best_toml  # the printed value is the trial's, to the last digit
    window = int(best_line.split("data.window=")[1].split()[0])
    assert f"window = {window}" in best_toml and 8 <= window <= 30


def test_tune_refuses_an_option_that_changes_what_is_scored(tmp_path):
    pytest.importorskip("optuna")
    code, _, err = console_script("--runs-dir", tmp_path, "tune", "--cell", "gru", "--data", "sine:T=8|16",
                                  "--lr", "1e-3:1e-1")
    assert code == 2 and "changes what is scored" in err and not os.path.exists(tmp_path / "tunes")


# ---- predict with several runs ---------------------------------------------------------------------------
def test_predict_averages_runs_of_the_same_data_and_refuses_different_data(seeded, tmp_path):
    root, doc = seeded
    ids = [r["run_id"] for r in doc["runs"]]
    def predict(*args):
        code, out, err = console_script("--runs-dir", root, "predict", *args, "--input", AIRLINE_FILE, "--json")
        assert code == 0, err
        return json.loads(out)
    one = [predict(i, "--steps", "1")["rows"] for i in ids]
    together = predict(*ids, "--steps", "1")
    assert together["runs"] == ids
    # one step ahead the ensemble is the mean of the runs' outputs in the model's (log) space
    logs = np.log([rows[0][1] for rows in one])
    assert together["rows"][0][1] == pytest.approx(np.exp(logs.mean()), rel=1e-5)
    other = run_json(root, "--cell", "gru", "--data", "airline:window=24", "--epochs", "1")
    code, _, err = console_script("--runs-dir", root, "predict", ids[0], other["run_id"], "--input", AIRLINE_FILE)
    assert code == 2 and "different data" in err and "window" in err
