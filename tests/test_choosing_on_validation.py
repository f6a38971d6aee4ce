"""Choose on validation, report on test (issue 25 item 1), checked against a planted dataset whose test
score is its validation score reversed (tests/adversarial_plugin.py): whatever is best on validation
is worst on test, so a chooser that looks at the test split picks something else.

Every chooser: the best epoch a run keeps, early stopping, compare's ★, sweep's best configuration,
tune's best trial and the ★ of the --seeds table.
"""
import csv
import json
import os

import numpy as np
import pytest

from helpers import console_script, restored_registry
from tinygrad_rnn.selection import pick_best, selection_key

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adversarial_plugin.py")
REVERSED = 10.0


def train(tmp_path, *args):
    code, out, err = console_script("--plugin", PLUGIN, "--runs-dir", tmp_path, "--cell", "gru", "--data",
                                    "adversarial", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def val_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return [float(row["val_metric"]) for row in csv.DictReader(f)]


def test_the_selection_key_orders_by_the_validation_metric_in_its_direction_then_the_loss():
    assert selection_key({"val_metric": 0.3, "val_loss": 9.0}, False) < \
        selection_key({"val_metric": 0.4, "val_loss": 0.1}, False)
    assert selection_key({"val_metric": 0.9}, True) < selection_key({"val_metric": 0.8}, True)
    # no finite metric: the loss decides, and any finite metric beats none
    assert selection_key({"val_metric": float("nan"), "val_loss": 1.0}, False) < \
        selection_key({"val_metric": None, "val_loss": 2.0}, False)
    assert selection_key({"val_metric": 5.0, "val_loss": 9.0}, False) < selection_key({"val_loss": 0.0}, False)
    runs = [{"val_metric": 0.2, "test_metric": 0.9}, {"val_metric": 0.1, "test_metric": 0.1}]
    assert pick_best(runs, higher_is_better=True) is runs[0]


def test_the_epoch_a_run_keeps_is_its_best_on_validation_and_its_test_score_is_that_epochs(tmp_path):
    doc = train(tmp_path, "--epochs", "6", "--lr", "0.02")
    history = val_metrics(doc["run_dir"])
    best = int(np.argmin(history))
    assert doc["val_metric"] == pytest.approx(history[best])
    summary = json.load(open(os.path.join(doc["run_dir"], "summary.json")))
    assert summary["best_epoch"] == best + 1
    # the test windows are the validation windows: the reported test score is the kept epoch's, reversed
    assert doc["test_metric"] == pytest.approx(REVERSED - history[best], abs=1e-5)


class FakeTrainer:
    should_stop = False

    class dataset:
        higher_is_better = False


def test_early_stopping_waits_for_the_validation_metric_not_the_loss():
    with restored_registry():
        from tinygrad_rnn.registry import regularizers
        stop = regularizers.get("early_stopping")(patience=2)
        trainer = FakeTrainer()
        # the loss keeps falling while the metric gets worse: the metric decides
        for epoch, (loss, metric) in enumerate([(1.0, 0.5), (0.9, 0.6), (0.8, 0.7)], 1):
            stop.on_epoch_end(trainer, {"epoch": epoch, "val_loss": loss, "val_metric": metric})
        assert trainer.should_stop
        stop, trainer = regularizers.get("early_stopping")(patience=2), FakeTrainer()
        for epoch, (loss, metric) in enumerate([(1.0, 0.5), (1.1, 0.4), (1.2, 0.3)], 1):
            stop.on_epoch_end(trainer, {"epoch": epoch, "val_loss": loss, "val_metric": metric})
        assert not trainer.should_stop


def test_compare_stars_the_best_run_on_validation(tmp_path):
    docs = [train(tmp_path, "--epochs", "3", "--lr", lr) for lr in ("0.05", "0.001")]
    assert docs[0]["val_metric"] != docs[1]["val_metric"]
    code, out, err = console_script("--plugin", PLUGIN, "--runs-dir", tmp_path, "compare",
                                    *(d["run_id"] for d in docs), "--json")
    assert code == 0, err
    table, = json.loads(out)["tables"]
    by_val = min(docs, key=lambda d: d["val_metric"])
    assert table["best"] == by_val["run_id"]
    assert by_val["test_metric"] == max(d["test_metric"] for d in docs)  # the planted reversal: worst on test
    assert table["differing"] == ["lr"]
    code, out, _ = console_script("--plugin", PLUGIN, "--runs-dir", tmp_path, "compare", *(d["run_id"] for d in docs))
    assert "★ best on validation" in out


def test_sweep_marks_the_best_configuration_on_validation(tmp_path):
    code, out, err = console_script("--plugin", PLUGIN, "--runs-dir", tmp_path, "sweep", "--cell", "gru", "--data",
                                    "adversarial", "--lr", "0.05,0.001", "--epochs", "3", "--workers", "1", "--json")
    assert code == 0, err
    rows = json.loads(out)["configurations"]
    assert len(rows) == 2 and rows[0]["val_metric_mean"] != rows[1]["val_metric_mean"]
    best, = [r for r in rows if r["best"]]
    assert best is min(rows, key=lambda r: r["val_metric_mean"])
    assert best["test_metric_mean"] == max(r["test_metric_mean"] for r in rows)


def test_tune_picks_the_best_trial_on_validation(tmp_path):
    pytest.importorskip("optuna")
    code, out, err = console_script("--plugin", PLUGIN, "--runs-dir", tmp_path, "tune", "--cell", "gru", "--data",
                                    "adversarial", "--lr", "1e-3:1e-1", "--trials", "3", "--epochs", "2",
                                    "--pruner", "none", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["study"]["objective"] == "val_metric"
    finished = [t for t in doc["trials"] if t["state"] == "complete"]
    summaries = {t["number"]: json.load(open(os.path.join(t["run_dir"], "summary.json"))) for t in finished}
    assert doc["best"]["number"] == min(finished, key=lambda t: summaries[t["number"]]["val_metric"])["number"]
    assert summaries[doc["best"]["number"]]["test_metric"] == max(s["test_metric"] for s in summaries.values())


def test_the_seeds_table_stars_the_best_cell_on_validation():
    from tinygrad_rnn.runner.report import seeds_table
    groups = [{"cell": "gru", "n": 2, "metric": "rmse", "val_metric_mean": 0.2, "test_metric_mean": 9.8},
              {"cell": "rnn", "n": 2, "metric": "rmse", "val_metric_mean": 0.5, "test_metric_mean": 9.5}]
    table = seeds_table(groups)
    cells = list(table.columns[0].cells)
    assert cells[0].startswith("[bold green]★ gru") and not cells[1].startswith("[bold green]★")
    assert "best on validation" in table.caption
