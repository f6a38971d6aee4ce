"""Runs that survive: a real `rnnrun` killed after epoch k and resumed ends bit for bit as the same run
never interrupted; SIGTERM, SIGHUP and Ctrl-C keep the run; every run has an honest status."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_rnn.runner.store import Run, RunStore

from helpers import restored_registry, rnnrun

RNNRUN = shutil.which("rnnrun") or os.path.join(os.path.dirname(sys.executable), "rnnrun")
pytestmark = pytest.mark.skipif(not os.path.exists(RNNRUN), reason="rnnrun console script not installed")

# An epoch of these runs takes milliseconds, faster than a test can watch: the subprocess (only it:
# the variable is set for it alone) waits at the start of epoch k + 1, after epoch k's files are written,
# so that SIGKILL lands after epoch k exactly. The reference run loads the same plugin and never waits.
PAUSE_PLUGIN = """
import os, time
from tinygrad_rnn import Regulariser, register_regulariser

@register_regulariser("pause_at")
class PauseAt(Regulariser):
    def __init__(self, epoch=3):
        self.epoch, self.waited = epoch, False

    def before_batch(self, trainer, batch):
        if trainer.epoch == self.epoch and not self.waited and os.environ.get("PAUSE_FOR_KILL"):
            self.waited = True
            time.sleep(120)
"""

# Each case: small; the run is killed after epoch 2 (see KILL_AFTER)
CASES = {
    "plain": ["--cell", "gru", "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "14", "--schedule", "cosine"],
    "dropout": ["--cell", "lstm", "--data", "sine:n_train=40", "--hidden", "4", "--layers", "2", "--epochs", "14",
                "--reg", "dropout:p=0.3,variational=true"],
    "tbptt": ["--cell", "rnn", "--data", "adding:T=12,n_train=40", "--hidden", "4", "--epochs", "14",
              "--reg", "tbptt:k=5", "--reg", "clip:0.5", "--reg", "batchnorm"],
    # min_delta=10: only epoch 1 improves, so training stops after epoch 1 + patience, whatever the numbers
    "early_stopping": ["--cell", "gru", "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "30",
                       "--reg", "early_stopping:patience=7,min_delta=10"],
    "text": ["--cell", "lstm", "--data", "text:T=10,chars=4000", "--hidden", "6", "--epochs", "14",
             "--optimizer", "sgd:momentum=0.9"],
    # killed after epoch 6, the checkpoint is epoch 4's: epochs 5 and 6 are trained again, each row written once
    "checkpoint_every": ["--cell", "gru", "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "14",
                         "--checkpoint-every", "4"],
    # zoneout's masks come from the run's generator, kept in every checkpoint; a plugin cell runs compiled
    "zoneout": ["--cell", "gru", "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "14",
                "--reg", "zoneout:p=0.1"],
    # n_train=64: two full batches, one tape replayed 2 x 14 times; with fusion switched on after 20
    # replays (as it once was) the uninterrupted run fused from epoch 10 and the resumed one from epoch 12
    "fused_zoneout": ["--cell", "gru", "--data", "sine:n_train=64", "--hidden", "4", "--epochs", "14",
                      "--reg", "zoneout:p=0.1"],
    "zoneout_plugin_cell": ["--plugin", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                     "examples", "indrnn_cell.py"),
                            "--cell", "indrnn", "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "14",
                            "--reg", "zoneout:p=0.2"],
}
KILL_AFTER = {"checkpoint_every": 6}


def start(args, runs_dir, env=None):
    return subprocess.Popen([RNNRUN, *args, "--quiet", "--runs-dir", str(runs_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def run_dir_of(runs_dir):
    found = [d for d, _, files in os.walk(runs_dir) if "config.toml" in files]
    return found[0] if found else None


def wait_for_epochs(proc, runs_dir, k, timeout=60):
    """Block until the subprocess's metrics.csv has k epochs and its heartbeat (the last file an epoch
    writes) says so; its run folder."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        folder = run_dir_of(runs_dir)
        if folder and os.path.exists(os.path.join(folder, "metrics.csv")):
            with open(os.path.join(folder, "metrics.csv")) as f:
                if len(f.read().splitlines()) > k and Run(folder).summary().get("epochs_done", 0) >= k:
                    return folder
        assert proc.poll() is None, f"rnnrun ended before epoch {k}: {proc.stderr.read()}"
        time.sleep(0.003)
    raise AssertionError(f"no epoch {k} within {timeout}s")


def numbers(folder):
    """Everything a run computed, except wall-clock times and its own name: metrics.csv's values as the
    exact text written, summary.json, and the final weights."""
    with open(os.path.join(folder, "metrics.csv"), newline="") as f:
        metrics = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]
    with open(os.path.join(folder, "summary.json")) as f:
        summary = {k: v for k, v in json.load(f).items() if k not in ("seconds", "run_id", "run_dir")}
    with np.load(os.path.join(folder, "model.npz")) as data:
        weights = {k: data[k] for k in data.files}
    return metrics, summary, weights


def assert_same_run(resumed, reference):
    (m1, s1, w1), (m2, s2, w2) = numbers(resumed), numbers(reference)
    assert [row["epoch"] for row in m1] == [str(e) for e in range(1, len(m2) + 1)]  # no row twice, none missing
    assert m1 == m2
    assert s1 == s2
    assert w1.keys() == w2.keys()
    for name in w1:
        np.testing.assert_array_equal(w1[name], w2[name], err_msg=name)


@pytest.mark.parametrize("case", list(CASES))
def test_a_killed_run_resumes_to_the_same_numbers_as_an_uninterrupted_one(tmp_path, case):
    k = KILL_AFTER.get(case, 2)
    plugin = tmp_path / "pause.py"
    plugin.write_text(PAUSE_PLUGIN)
    args = ["--plugin", plugin, *CASES[case], "--reg", f"pause_at:epoch={k + 1}"]
    proc = start([str(a) for a in args], tmp_path / "killed", env={"PAUSE_FOR_KILL": "1"})
    folder = wait_for_epochs(proc, tmp_path / "killed", k)
    proc.send_signal(signal.SIGKILL)  # as the out-of-memory killer does: no chance to say anything
    proc.wait()
    run = Run(folder)
    assert len(run.metrics()) == k  # killed after epoch k, not later
    assert run.checkpoint()["epoch"] == (k if case != "checkpoint_every" else 4)

    with restored_registry():
        listed = rnnrun("--plugin", plugin, "runs", "--runs-dir", tmp_path / "killed", "--json")
        row, = json.loads(listed.stdout)
        assert row["status"] == "killed" and row["resume"] == f"rnnrun resume {run.id}"
        resumed = rnnrun("--plugin", plugin, "resume", run.id, "--runs-dir", tmp_path / "killed", "--quiet")
        assert resumed.exit_code == 0, resumed.output + resumed.stderr
        assert run.status() == "finished"
    with restored_registry():
        reference = rnnrun(*args, "--runs-dir", tmp_path / "reference", "--quiet")
        assert reference.exit_code == 0, reference.output + reference.stderr
    assert_same_run(folder, run_dir_of(tmp_path / "reference"))


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_sigterm_sighup_and_ctrl_c_keep_the_run_and_say_where_it_is(tmp_path, signum, code):
    proc = start(CASES["plain"], tmp_path)
    folder = wait_for_epochs(proc, tmp_path, 2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    run = Run(folder)
    assert os.path.abspath(folder) in os.path.abspath(err.replace("\n", "")) or folder in err.replace("\n", "")
    assert f"rnnrun resume {run.id}" in err.replace("\n", " ")
    summary = run.summary()
    assert summary["status"] == "interrupted" and run.status() == "interrupted"
    assert summary["message"] == ("interrupted by the user (Ctrl-C)" if signum == signal.SIGINT
                                  else f"stopped by {signal.Signals(signum).name}")
    for name in ("config.toml", "metrics.csv", "model.npz", "checkpoint.npz"):
        assert os.path.exists(run.file(name)), name
    assert run.check() is None


def test_resume_with_a_new_total_trains_a_finished_run_on_exactly(tmp_path):
    args = CASES["plain"][:-4]  # no schedule: the learning rate must not depend on the total
    short = rnnrun(*args, "--epochs", 3, "--runs-dir", tmp_path / "a", "--quiet")
    assert short.exit_code == 0
    again = rnnrun("resume", "last", "--runs-dir", tmp_path / "a")
    assert again.exit_code == 2 and "--epochs" in again.stderr  # finished: nothing left without a new total
    longer = rnnrun("resume", "last", "--epochs", 6, "--runs-dir", tmp_path / "a", "--quiet")
    assert longer.exit_code == 0, longer.stderr
    rnnrun(*args, "--epochs", 6, "--runs-dir", tmp_path / "b", "--quiet")
    assert_same_run(run_dir_of(tmp_path / "a"), run_dir_of(tmp_path / "b"))


def test_a_running_run_cannot_be_resumed_twice_and_a_run_without_checkpoint_says_why(tmp_path):
    rnnrun(*CASES["plain"], "--epochs", 1, "--runs-dir", tmp_path, "--quiet")
    run = RunStore(str(tmp_path)).get("last")
    run.write_summary({**run.summary(), "status": "running", "pid": os.getpid(), "host": os.uname().nodename,
                       "pid_start": None})
    assert run.status() == "running"  # this very process: alive
    busy = rnnrun("resume", run.id, "--runs-dir", tmp_path)
    assert busy.exit_code == 2 and "still running" in busy.stderr
    os.unlink(run.file("checkpoint.npz"))  # as a run stopped before its first epoch ended has none (nor records one)
    run.write_summary({k: v for k, v in run.summary().items() if k != "checkpoint_epoch"} | {"status": "interrupted",
                                                                                            "epochs_done": 0})
    none = rnnrun("resume", run.id, "--runs-dir", tmp_path)
    assert none.exit_code == 2 and "no checkpoint" in none.stderr and len(none.stderr.strip().splitlines()) == 1


def test_sweep_resume_continues_a_killed_trial_from_its_checkpoint_in_its_own_folder(tmp_path):
    plugin = tmp_path / "pause.py"
    plugin.write_text(PAUSE_PLUGIN)
    args = ["sweep", "--plugin", plugin, "--cell", "gru", "--data", "sine:n_train=40", "--hidden", "4",
            "--epochs", "5", "--reg", "pause_at:epoch=3", "--workers", "1"]
    proc = subprocess.Popen([RNNRUN, *map(str, args), "--quiet", "--runs-dir", str(tmp_path / "killed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PAUSE_FOR_KILL": "1"})
    folder = wait_for_epochs(proc, tmp_path / "killed", 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sweep_id = os.listdir(tmp_path / "killed" / "sweeps")[0]
    with restored_registry():
        resumed = rnnrun("sweep", "--resume", sweep_id, "--workers", "1", "--runs-dir", tmp_path / "killed", "--json")
        assert resumed.exit_code == 0, resumed.stderr
        trial, = json.loads(resumed.stdout)["trials"]
        assert trial["status"] == "finished" and trial["run_dir"] == folder  # the same folder, not a new attempt
        assert rnnrun(*args, "--runs-dir", tmp_path / "reference", "--quiet").exit_code == 0
    assert_same_run(folder, run_dir_of(tmp_path / "reference"))


def test_a_second_stop_signal_during_cleanup_waits_instead_of_cutting_it_short():
    """The first signal raises Stopped where the run is; one more while the run's files are being saved is
    recorded, not raised, so the run is kept whole and the process exits by its own exit code."""
    from tinygrad_rnn.runner.signals import Stop, Stopped, on_stop
    with on_stop():
        with pytest.raises(Stopped) as first:
            Stop.handler(signal.SIGTERM, None)
        Stop.handler(signal.SIGTERM, None)  # during the cleanup: nothing raised
        assert first.value.signum == signal.SIGTERM and Stop.seen == signal.SIGTERM
    assert Stop.seen is None  # the next command's block starts clean
