"""A sweep on a real Dask cluster (a scheduler and 2 worker processes on 127.0.0.1) under faults: a lost
worker's trial continues from its checkpoint in its own folder, and SIGTERM to `rnnrun sweep` stops the
trials on the workers as it stops local ones. Few and short: each trial trains a few seconds."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tinygrad_rnn.runner.store import Run

distributed = pytest.importorskip("distributed")

RNNRUN = shutil.which("rnnrun") or os.path.join(os.path.dirname(sys.executable), "rnnrun")
SWEEP = ["sweep", "--cell", "gru", "--data", "sine:n_train=200", "--hidden", "16"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  env={"OMP_NUM_THREADS": "1"}) as cluster, distributed.Client(cluster) as client:
        yield cluster.scheduler_address, client


def start_sweep(root, address, *args):
    return subprocess.Popen([RNNRUN, *SWEEP, *args, "--scheduler", address, "--runs-dir", str(root), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def trial_runs(root):
    return [Run(os.path.dirname(p)) for p in sorted(glob.glob(str(root / "sweeps" / "*" / "*" / "config.toml")))]


def wait_for(proc, condition, timeout=60):
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()  # (before reading its stderr: a process still running would never close it)
            raise AssertionError(f"exit code {proc.wait()}: {proc.stderr.read()}")
        time.sleep(0.05)


def free_port():
    """A port nothing listens on now (a fixed one collided with this process's own Dask dashboard, 8787)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def epochs_done(run):
    try:
        return run.summary().get("epochs_done", 0)
    except Exception:  # being written
        return 0


@pytest.mark.slow
def test_a_lost_worker_s_trial_continues_from_its_checkpoint_in_its_own_folder(cluster, tmp_path):
    address, client = cluster
    proc = start_sweep(tmp_path, address, "--lr", "1e-3", "--epochs", "12")
    wait_for(proc, lambda: trial_runs(tmp_path) and epochs_done(trial_runs(tmp_path)[0]) >= 2)
    worker = trial_runs(tmp_path)[0].summary()["worker"]
    pid = client.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)  # the worker process dies mid-trial; its nanny starts a new one
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run, = trial_runs(tmp_path)  # no second folder, no attempt left "killed"
    assert run.status() == "finished"
    assert [row["epoch"] for row in run.metrics()] == list(range(1, 13))
    doc = json.loads(open(glob.glob(str(tmp_path / "sweeps" / "*" / "summary.json"))[0]).read())
    assert doc["status"] == "finished" and doc["finished"] == 1


@pytest.mark.slow
def test_sigterm_stops_the_trials_on_the_workers_and_keeps_the_rest_pending(cluster, tmp_path):
    address, _ = cluster
    proc = start_sweep(tmp_path, address, "--lr", "1e-3,2e-3,3e-3", "--epochs", "1000")
    wait_for(proc, lambda: len(trial_runs(tmp_path)) == 2 and all(epochs_done(r) >= 1 for r in trial_runs(tmp_path)))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    runs = trial_runs(tmp_path)
    assert len(runs) == 2 and all(run.status() == "interrupted" for run in runs)
    doc = json.loads(open(glob.glob(str(tmp_path / "sweeps" / "*" / "summary.json"))[0]).read())
    assert (doc["status"], doc["interrupted"], doc["pending"]) == ("interrupted", 2, 1)
    epochs = [epochs_done(run) for run in runs]
    time.sleep(1)
    assert [epochs_done(run) for run in runs] == epochs  # nothing trains on after the stop


PICKY = '''
from distributed import get_worker
from tinygrad_rnn.registry import register_cell
import tinygrad_rnn_plugins.cells.gru as gru

try:
    name = get_worker().name
except ValueError:  # the client: not a worker
    name = None
if name == 0:  # the first worker lacks a dependency, as a machine without the plugin's packages would
    raise ImportError("no module named 'secret_dependency'")


@register_cell("picky_gru")
class PickyGRU(gru.GRU):
    """A GRU whose plugin file loads on one worker only."""
'''


@pytest.mark.slow
def test_a_worker_that_cannot_load_the_plugin_does_not_fail_the_sweep(cluster, tmp_path):
    address, _ = cluster
    plugin = tmp_path / "picky.py"
    plugin.write_text(PICKY)
    result = subprocess.run([RNNRUN, "sweep", "--plugin", str(plugin), "--cell", "picky_gru", "--data",
                             "sine:n_train=40", "--hidden", "4", "--epochs", "1", "--lr", "1e-3,2e-3,3e-3,4e-3",
                             "--scheduler", address, "--runs-dir", str(tmp_path / "runs"), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["finished"] == 4 and doc["failed"] == 0
    assert len({t["worker"] for t in doc["trials"]}) == 1  # all on the worker that can load it


@pytest.mark.slow
def test_a_lost_scheduler_is_one_line_and_leaves_the_trials_pending_for_resume(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    port = free_port()
    scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                  str(port), "--no-dashboard"], stderr=subprocess.DEVNULL, env=env)
    worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                               "--no-dashboard", "--no-nanny"], stderr=subprocess.DEVNULL, env=env)
    try:
        proc = start_sweep(tmp_path, f"tcp://127.0.0.1:{port}", "--lr", "1e-3,2e-3", "--epochs", "1000")
        wait_for(proc, lambda: trial_runs(tmp_path) and epochs_done(trial_runs(tmp_path)[0]) >= 1)
        scheduler.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    assert proc.returncode == 1 and err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("Error: lost the Dask scheduler") and "rnnrun sweep --resume" in err
    doc = json.loads(open(glob.glob(str(tmp_path / "sweeps" / "*" / "summary.json"))[0]).read())
    assert (doc["status"], doc["pending"], doc["failed"]) == ("failed", 2, 0)


@pytest.mark.parametrize("env, kept", [({"MALLOC_TRIM_THRESHOLD_": "65536"}, True), ({}, False)])
def test_a_trial_undoes_the_nannys_malloc_trim_setting_where_it_is_set(env, kept):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536; a trial's process raises glibc's thresholds again
    (see sweeper.keep_freed_memory for the measurement), and leaves malloc alone where it is unset."""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt")
    code = "from tinygrad_rnn.runner.sweeper import keep_freed_memory as k; print(k(), k())"
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True).stdout
    assert out.split() == [str(kept), "False"]  # once per process
