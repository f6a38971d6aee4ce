"""Loggers (`--log NAME`): what TensorBoard and MLflow read back with their own readers, a logger that
raises or is slow, a missing extra, and the logger protocol's checks."""
import json
import os
import sys
import threading
import time
import tomllib

import pytest

from helpers import rnnrun, small_spec
from tinygrad_rnn import Logger, register_logger
from tinygrad_rnn.runner.loggers import Loggers, RunInfo

RUN = ["--cell", "gru", "--data", small_spec("sine"), "--epochs", 3, "--hidden", 4, "-q"]
SWEEP = ["sweep", "--cell", "gru", "--data", small_spec("sine"), "--lr", "0.01,0.03", "--seeds", 2, "--epochs", 2,
         "--hidden", 4, "--workers", 1, "--json"]


def one_run(root):
    (run_dir,) = [os.path.join(root, d) for d in os.listdir(root)
                  if os.path.isfile(os.path.join(root, d, "config.toml"))]
    return run_dir


# ---- TensorBoard: its own event reader -----------------------------------------------------------------
def test_tensorboard_event_reader_finds_every_epochs_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    result = rnnrun(*RUN, "--log", "tensorboard", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    run_dir = one_run(tmp_path)
    events = EventAccumulator(os.path.join(run_dir, "tb"), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    metrics = [line.split(",") for line in open(os.path.join(run_dir, "metrics.csv")).read().split()]
    columns = {name: [float(row[i]) for row in metrics[1:]] for i, name in enumerate(metrics[0])}
    for tag, column in (("loss/train", "train_loss"), ("loss/val", "val_loss"), ("metric/val", "val_metric"),
                        ("lr", "lr"), ("grad_norm/mean", "grad_norm_mean")):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2, 3], tag
        assert [s.value for s in scalars] == pytest.approx(columns[column], rel=1e-6), tag
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert events.Scalars("metric/test")[0].value == pytest.approx(summary["test_metric"], rel=1e-6)
    # the HParams plugin's session start: the run's settings, as TensorBoard's HParams tab reads them
    content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["cell"].string_value == "gru"
    config = tomllib.load(open(os.path.join(run_dir, "config.toml"), "rb"))
    assert start.hparams["lr"].number_value == pytest.approx(config["lr"])
    assert start.hparams["data_options.n_train"].number_value == 40
    assert hparams_metadata.SESSION_END_INFO_TAG in content


def test_tensorboard_dir_option_puts_each_run_in_its_own_folder(tmp_path):
    pytest.importorskip("tensorboard")
    board = tmp_path / "board"
    result = rnnrun(*RUN, "--epochs", 1, "--log", f"tensorboard:dir={board}", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    run_id = os.path.basename(one_run(tmp_path / "runs"))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(board / run_id))
    assert not os.path.exists(os.path.join(one_run(tmp_path / "runs"), "tb"))


# ---- MLflow: MlflowClient on the SQLite store ----------------------------------------------------------
@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """One 3-epoch run and one 4-trial sweep logged to MLflow (importing mlflow takes seconds: once)."""
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow-runs")
    run = rnnrun(*RUN, "--log", "mlflow", "--runs-dir", root)
    assert run.exit_code == 0, run.stderr
    sweep = rnnrun(*SWEEP, "--log", "mlflow:experiment=sweeps", "--log", "tensorboard", "--runs-dir", root)
    assert sweep.exit_code == 0, sweep.stderr
    from mlflow import MlflowClient
    return root, MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db"), json.loads(sweep.stdout)


def test_mlflow_run_has_params_metric_history_and_artifacts(mlflow_store):
    root, client, _ = mlflow_store
    run_dir = [d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "summary.json"))][0]
    (found,) = client.search_runs([client.get_experiment_by_name("rnnrun").experiment_id],
                                  filter_string=f"tags.run_id = '{run_dir}'")
    assert found.info.status == "FINISHED" and found.info.run_name == run_dir
    params = found.data.params
    assert (params["cell"], params["data"], params["epochs"], params["hidden"]) == ("gru", "sine", "3", "4")
    assert params["data_options.n_train"] == "40" and params["optimizer"] == "adam"
    tags = found.data.tags
    assert (tags["status"], tags["cell"], tags["data"], tags["run_id"]) == ("finished", "gru", "sine", run_dir)
    history = client.get_metric_history(found.info.run_id, "val_loss")
    csv = [line.split(",") for line in open(os.path.join(root, run_dir, "metrics.csv")).read().split()]
    column = csv[0].index("val_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx([float(row[column]) for row in csv[1:]], rel=1e-6)
    summary = json.load(open(os.path.join(root, run_dir, "summary.json")))
    assert found.data.metrics["test_metric"] == pytest.approx(summary["test_metric"], rel=1e-6)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config.toml", "metrics.csv", "summary.json", "model.npz"} <= artifacts
    assert "checkpoint.npz" not in artifacts


def test_mlflow_sweep_is_a_parent_run_with_its_trials_nested(mlflow_store):
    _, client, doc = mlflow_store
    experiment = client.get_experiment_by_name("sweeps").experiment_id
    (parent,) = client.search_runs([experiment], filter_string="tags.kind = 'sweep'")
    assert parent.info.run_name == doc["id"] and parent.data.tags["status"] == "finished"
    assert parent.info.status == "FINISHED"
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 4
    assert {c.data.tags["run_id"] for c in children} == {t["run_id"] for t in doc["trials"]}
    assert {c.data.params["lr"] for c in children} == {"0.01", "0.03"}


def test_a_sweeps_trials_each_carry_their_settings_for_the_hparams_tab(mlflow_store):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    _, _, doc = mlflow_store
    seen = []
    for trial in doc["trials"]:
        events = EventAccumulator(os.path.join(trial["run_dir"], "tb"), size_guidance={"tensors": 0}).Reload()
        content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
        start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
        seen.append((start.hparams["lr"].number_value, start.hparams["seed"].number_value))
        assert [s.step for s in events.Scalars("loss/val")] == [1, 2]
    assert sorted(seen) == [(0.01, 0), (0.01, 1), (0.03, 0), (0.03, 1)]


def test_mlflow_tune_study_is_a_parent_run_with_its_trials_nested(mlflow_store, tmp_path):
    pytest.importorskip("optuna")
    root, client, _ = mlflow_store
    study = rnnrun("tune", "--cell", "gru", "--data", small_spec("sine"), "--lr", "1e-3:1e-1", "--hidden", 4,
                   "--trials", 2, "--epochs", 1, "--workers", 1, "--log", "mlflow:experiment=tunes", "--runs-dir", root,
                   "--json")
    assert study.exit_code == 0, study.stderr
    experiment = client.get_experiment_by_name("tunes").experiment_id
    (parent,) = client.search_runs([experiment], filter_string="tags.kind = 'tune'")
    assert parent.info.run_name == json.loads(study.stdout)["study"]["name"]
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)


def test_dask_workers_log_every_trial(tmp_path):
    pytest.importorskip("tensorboard")
    distributed = pytest.importorskip("distributed")
    sweep = [a for a in SWEEP if a not in ("--workers", 1)] + ["--seeds", 1]
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        result = rnnrun(*sweep, "--scheduler", cluster.scheduler_address, "--log", "tensorboard",
                        "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    trials = json.loads(result.stdout)["trials"]
    assert len(trials) == 2
    for trial in trials:
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(trial["run_dir"], "tb")))


# ---- a logger that fails, or is slow, never fails or slows the run ------------------------------------
RAISES = '''
from tinygrad_rnn import Logger, register_logger

@register_logger("raises")
class Raises(Logger):
    """Raises in its epoch hook."""
    def epoch(self, metrics):
        raise RuntimeError("the dashboard is down")
'''


def test_a_logger_that_raises_leaves_the_run_finished_with_one_warning_line(tmp_path, fresh_registry):
    plugin = tmp_path / "raises.py"
    plugin.write_text(RAISES)
    result = rnnrun(*RUN, "--plugin", plugin, "--log", "raises", "--runs-dir", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "finished"
    warnings = [line for line in result.stderr.splitlines() if "raises" in line]
    assert warnings == ["warning: logger 'raises' failed in epoch: RuntimeError: the dashboard is down; "
                        "the run goes on without it"]


class Slow(Logger):
    def __init__(self):
        self.seen = []

    def epoch(self, metrics):
        time.sleep(0.2)
        self.seen.append(metrics["epoch"])


def test_a_slow_logger_does_not_hold_up_the_training_thread():
    slow = Slow()
    with_slow = Loggers([])
    from tinygrad_rnn.runner.loggers import Guarded
    with_slow.guarded = [Guarded("slow", lambda: slow)]
    started = time.perf_counter()
    for epoch in range(1, 6):
        with_slow.epoch({"epoch": epoch, "val_loss": 1.0})
    assert time.perf_counter() - started < 0.1  # five epochs of a 0.2 s logger cost the run nothing
    with_slow.close()
    assert slow.seen == [1, 2, 3, 4, 5]  # and the logger still got every epoch, in order


def test_logger_overhead_per_epoch_is_microseconds(capsys):
    """The training thread's cost of a logged epoch: a dict copy and a queue put per logger (its CPU time,
    time.thread_time; the loggers' own threads are measured apart, with time.process_time)."""
    from tinygrad_rnn.runner.loggers import Guarded
    loggers = Loggers([])
    loggers.guarded = [Guarded(f"nothing{i}", Logger) for i in range(2)]
    metrics = {"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "val_metric": 0.6, "lr": 0.01, "grad_norm_mean": 1.0,
               "grad_norm_max": 2.0, "clipped_rate": 0.1, "seconds": 0.5}
    n = 2000
    thread, process = time.thread_time(), time.process_time()
    for _ in range(n):
        loggers.epoch(metrics)
    loggers.close()
    thread, process = (time.thread_time() - thread) / n, (time.process_time() - process) / n
    with capsys.disabled():
        print(f"\n[logger overhead per epoch, two loggers: {thread * 1e6:.1f} µs CPU on the training thread, "
              f"{process * 1e6:.1f} µs CPU in all threads]")
    assert thread < 1e-3


# ---- configuration -------------------------------------------------------------------------------------
def test_log_is_recorded_in_config_toml_and_repeats_with_config(tmp_path):
    pytest.importorskip("tensorboard")
    assert rnnrun(*RUN, "--epochs", 1, "--log", "tensorboard", "--runs-dir", tmp_path / "a").exit_code == 0
    config = os.path.join(one_run(tmp_path / "a"), "config.toml")
    assert 'name = "tensorboard"' in open(config).read()
    again = rnnrun("--config", config, "-q", "--runs-dir", tmp_path / "b")
    assert again.exit_code == 0, again.stderr
    assert os.path.isdir(os.path.join(one_run(tmp_path / "b"), "tb"))


@pytest.mark.parametrize("spec, says", [("tensorbord", "unknown logger 'tensorbord'"),
                                         ("mlflow:colour=red", "unknown option 'colour' for logger 'mlflow'"),
                                         ("tensorboard:1", "bare values are not allowed")])
def test_bad_log_spec_is_one_line_and_exit_2(tmp_path, spec, says):
    result = rnnrun(*RUN, "--log", spec, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "runs")


@pytest.mark.parametrize("name, extra", [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_log_without_its_extra_is_one_line_naming_the_extra(tmp_path, monkeypatch, name, extra):
    monkeypatch.setitem(sys.modules, name, None)  # as if not installed: `import mlflow` fails
    result = rnnrun(*RUN, "--log", name, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: --log {name} needs the {name} package, which is not installed: "
                                     f"pip install 'tinygrad_rnn[{extra}]'")
    assert not os.path.exists(tmp_path / "runs")


def test_log_changes_no_trial_key():
    from tinygrad_rnn.runner.sweeper import trial_key
    config = {"cell": "gru", "data": "sine", "seed": 0}
    assert trial_key(config) == trial_key({**config, "log": [{"name": "mlflow", "options": {}}]})


# ---- the protocol's checks -----------------------------------------------------------------------------
def test_rnnrun_check_runs_the_logger_checks(tmp_path, fresh_registry):
    pytest.importorskip("tensorboard")
    result = rnnrun("check", "--log", "tensorboard", "--json")
    assert result.exit_code == 0, result.stdout
    rows = json.loads(result.stdout)
    assert {r["check"] for r in rows} >= {"logs_a_run_of_three_epochs", "logs_a_sweep_and_its_trials"}
    assert all(r["status"] == "pass" for r in rows)
    plugin = tmp_path / "raises.py"
    plugin.write_text(RAISES)
    failed = rnnrun("check", "--plugin", plugin, "--json")
    assert failed.exit_code == 1
    reasons = {r["check"]: r for r in json.loads(failed.stdout)}
    assert reasons["logs_a_run_of_three_epochs"]["status"] == "fail"
    assert "the dashboard is down" in reasons["logs_a_run_of_three_epochs"]["reason"]


def docs_json_lines_logger():
    """The minimal custom logger of docs/04-plugins.md, as the docs show it."""
    text = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                             "04-plugins.md")).read()
    return text.split("```python\n# jsonl_logger.py\n", 1)[1].split("```", 1)[0]


def test_a_json_lines_logger_passes_the_checks_and_logs_a_run(tmp_path, fresh_registry):
    from tinygrad_rnn.registry import load_plugin, loggers
    from tinygrad_rnn.testing import check_logger
    plugin = tmp_path / "jsonl.py"
    plugin.write_text(docs_json_lines_logger())
    load_plugin(str(plugin))
    assert all(r.status == "pass" for r in check_logger(loggers.get("jsonl")))
    result = rnnrun(*RUN, "--plugin", plugin, "--log", "jsonl", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in open(os.path.join(one_run(tmp_path / "runs"), "log.jsonl"))]
    assert [r.get("epoch") for r in records] == [1, 2, 3, None]
    assert records[-1]["status"] == "finished"


def test_run_info_settings_are_flat():
    info = RunInfo(id="x", path="x", config={"cell": "gru", "data_options": {"T": 10}, "schedule": None,
                                             "regularisers": [{"name": "clip", "options": {"threshold": 1.0}}],
                                             "meta": {"run_id": "x"}, "log": [{"name": "mlflow"}]})
    assert info.settings() == {"cell": "gru", "data_options.T": 10, "regularisers": "clip:threshold=1.0"}


def test_loggers_run_on_their_own_threads():
    seen = []

    class Where(Logger):
        def epoch(self, metrics):
            seen.append(threading.current_thread().name)
    loggers = Loggers.start([], None)
    from tinygrad_rnn.runner.loggers import Guarded
    loggers.guarded = [Guarded("where", Where)]
    loggers.epoch({"epoch": 1})
    loggers.close()
    assert seen == ["logger where"]


# ---- a resumed run and a resumed sweep continue their MLflow records ------------------------------------
# Ctrl-C (a KeyboardInterrupt) at the start of epoch `epoch`, once: the marker file says it happened
INTERRUPT_ONCE = '''
import os
from tinygrad_rnn import Regulariser, register_regulariser

@register_regulariser("interrupt_once")
class InterruptOnce(Regulariser):
    def __init__(self, epoch=3, marker=""):
        self.epoch, self.marker = epoch, marker

    def before_batch(self, trainer, batch):
        if trainer.epoch == self.epoch and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise KeyboardInterrupt
'''


def interrupt_plugin(tmp_path, epoch):
    plugin = tmp_path / "interrupt_once.py"
    plugin.write_text(INTERRUPT_ONCE)
    return ["--plugin", plugin, "--reg", f"interrupt_once:epoch={epoch},marker={tmp_path / 'interrupted'}"]


def mlflow_runs(root, experiment="rnnrun", where=""):
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    return client, client.search_runs([client.get_experiment_by_name(experiment).experiment_id], filter_string=where)


@pytest.mark.parametrize("checkpoint_every", [1, 2])
def test_a_resumed_run_continues_its_mlflow_run_at_the_next_step(tmp_path, fresh_registry, checkpoint_every):
    """Interrupted at the start of epoch 4 (epochs 1-3 logged), resumed to 5 epochs: one MLflow run, each
    epoch once at its step, the values metrics.csv holds (with a checkpoint every 2 epochs, the resumed
    run trains epoch 3 again from epoch 2's checkpoint: the same numbers, not logged twice)."""
    pytest.importorskip("mlflow")
    root = tmp_path / "runs"
    args = [*RUN[:-3], "--epochs", 5, "--hidden", 4, "--checkpoint-every", checkpoint_every,
            *interrupt_plugin(tmp_path, 4), "--log", "mlflow", "--runs-dir", root]
    first = rnnrun(*args)
    assert first.exit_code == 130, first.stderr
    run_id = os.path.basename(one_run(root))
    client, (before,) = mlflow_runs(root, where=f"tags.run_id = '{run_id}'")
    assert before.info.status == "KILLED" and before.data.tags["status"] == "interrupted"
    assert [m.step for m in client.get_metric_history(before.info.run_id, "val_loss")] == [1, 2, 3]

    resumed = rnnrun("--plugin", tmp_path / "interrupt_once.py", "resume", run_id, "--runs-dir", root, "-q")
    assert resumed.exit_code == 0, resumed.stderr
    _, (after,) = mlflow_runs(root, where=f"tags.run_id = '{run_id}'")  # the same record, not a second one
    assert after.info.run_id == before.info.run_id
    assert after.info.status == "FINISHED" and after.data.tags["status"] == "finished"
    history = client.get_metric_history(after.info.run_id, "val_loss")
    csv = [line.split(",") for line in open(os.path.join(root, run_id, "metrics.csv")).read().split()]
    assert [m.step for m in history] == [1, 2, 3, 4, 5]
    assert [m.value for m in history] == pytest.approx([float(row[csv[0].index("val_loss")]) for row in csv[1:]],
                                                        rel=1e-6)
    summary = json.load(open(os.path.join(root, run_id, "summary.json")))
    (test_metric,) = client.get_metric_history(after.info.run_id, "test_metric")
    assert test_metric.step == 5 and test_metric.value == pytest.approx(summary["test_metric"], rel=1e-6)
    assert after.data.params["epochs"] == "5"


def test_a_resumed_run_writes_each_epoch_once_into_its_tensorboard_folder(tmp_path, fresh_registry):
    """As for MLflow: interrupted at the start of epoch 4 with a checkpoint every 2 epochs, resumed to 5."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    root = tmp_path / "runs"
    args = [*RUN[:-3], "--epochs", 5, "--hidden", 4, "--checkpoint-every", 2, *interrupt_plugin(tmp_path, 4),
            "--log", "tensorboard", "--runs-dir", root]
    assert rnnrun(*args).exit_code == 130
    run_dir = one_run(root)
    resumed = rnnrun("--plugin", tmp_path / "interrupt_once.py", "resume", os.path.basename(run_dir),
                     "--runs-dir", root, "-q")
    assert resumed.exit_code == 0, resumed.stderr
    events = EventAccumulator(os.path.join(run_dir, "tb"))
    events.Reload()
    csv = [line.split(",") for line in open(os.path.join(run_dir, "metrics.csv")).read().split()]
    val_loss = events.Scalars("loss/val")
    assert [s.step for s in val_loss] == [1, 2, 3, 4, 5]
    assert [s.value for s in val_loss] == pytest.approx([float(row[csv[0].index("val_loss")]) for row in csv[1:]],
                                                        rel=1e-6)


def test_sweep_resume_with_log_continues_the_parent_run_and_each_trials_record(tmp_path, fresh_registry):
    """A 2-trial sweep interrupted in its first trial's epoch 3, then `sweep --resume ID --log mlflow`: one
    parent run, one nested record per trial, the interrupted trial's continued with each epoch once."""
    pytest.importorskip("mlflow")
    root = tmp_path / "runs"
    plugin = interrupt_plugin(tmp_path, 3)
    sweep = ["sweep", *SWEEP[1:7], "--seeds", 1, "--epochs", 4, "--hidden", 4, "--workers", 1, *plugin]
    first = rnnrun(*sweep, "--log", "mlflow", "--runs-dir", root)
    assert first.exit_code == 130, first.stderr
    sweep_id = os.listdir(root / "sweeps")[0]
    client, (parent,) = mlflow_runs(root, where="tags.kind = 'sweep'")
    assert parent.data.tags["status"] == "interrupted"

    resumed = rnnrun("--plugin", plugin[1], "sweep", "--resume", sweep_id, "--workers", 1, "--log", "mlflow",
                     "--runs-dir", root, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert [t["status"] for t in doc["trials"]] == ["finished", "finished"]
    _, parents = mlflow_runs(root, where="tags.kind = 'sweep'")
    assert [p.info.run_id for p in parents] == [parent.info.run_id]  # continued, not a second parent
    assert parents[0].data.tags["status"] == "finished" and parents[0].info.status == "FINISHED"
    _, trials = mlflow_runs(root, where=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(t.data.tags["run_id"] for t in trials) == sorted(t["run_id"] for t in doc["trials"])
    for trial in trials:
        assert trial.data.tags["status"] == "finished" and trial.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(trial.info.run_id, "val_loss")] == [1, 2, 3, 4]
