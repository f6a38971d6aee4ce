"""`rnnrun sweep`: grids and random draws, identical trials on every executor, failures, Ctrl-C and --resume.

The sweeps here train on `sweep_tiny`, a plugin dataset (24 sequences of 6 steps) written to a temporary
file and loaded with --plugin, so the workers must load it too; its options make one configuration
fail (`broken=true`) or simulate Ctrl-C in the trial with seed 1 (`stop_file=PATH`, while PATH exists).
"""
import json
import os
import sys

import pytest

from tinygrad_rnn.runner import sweeper as sweeps
from tinygrad_rnn.errors import ConfigError
from tinygrad_rnn.registry import datasets

from helpers import console_script as rnnrun

PLUGIN = '''
"""A tiny regression task for sweep tests: the sum of 6 random steps."""
import os

import numpy as np

from tinygrad_rnn.data import Dataset, Split, rmse
from tinygrad_rnn.registry import datasets


@datasets.register("sweep_tiny", override=True)
class SweepTiny(Dataset):
    """The sum of 6 random steps, 24 training sequences: trains in a blink."""
    defaults = {"hidden": 4, "epochs": 2, "lr": 1e-2, "batch_size": 8}

    def __init__(self, seed=0, broken=False, stop_file=""):
        super().__init__(seed)
        self.broken, self.stop_file = broken, stop_file
        self.input_size, self.output_size = 1, 1

    def make_splits(self):
        if self.broken:
            raise RuntimeError("this configuration is broken on purpose")
        if self.stop_file and self.seed == 1 and os.path.exists(self.stop_file):
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a trial
        rng = np.random.default_rng(self.seed)

        def split(n):
            x = rng.normal(size=(n, 6, 1)).astype(np.float32)
            return Split(x, x.sum(axis=1).astype(np.float32))
        return {"train": split(24), "val": split(8), "test": split(8)}

    def baseline(self, split):
        return rmse(np.zeros_like(split.y), split.y)
'''
SMALL = ["--cell", "rnn,gru", "--data", "sweep_tiny", "--hidden", "4", "--epochs", "2", "--seeds", "2"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The plugin file; its registration is undone after this module, so other tests see the usual registry."""
    path = tmp_path_factory.mktemp("plugin") / "sweep_tiny.py"
    path.write_text(PLUGIN)
    datasets.names()  # discover the built-ins first, so the copy below holds them
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "_entries", dict(datasets._entries))
        mp.setattr(sweeps, "_loaded_plugins", set())
        yield str(path)
    sys.modules.pop("tinygrad_rnn_user_plugin_sweep_tiny", None)


def error_lines(err):
    """stderr without warnings about other plugins: what the user is told went wrong."""
    return [line for line in err.strip().splitlines() if not line.startswith("warning:")]


def sweep_json(*args):
    code, out, err = rnnrun("sweep", *args, "--json")
    return code, (json.loads(out) if out.strip() else None), err


def results(doc):
    """What must not depend on the executor: each trial's numbers, by trial key."""
    return {t["key"]: (t["seed"], t["status"], t.get("train_loss"), t.get("val_loss"), t.get("test_loss"),
                       t.get("test_metric")) for t in doc["trials"]}


def only_sweep(root):
    (sweep_id,) = os.listdir(root / "sweeps")
    return sweep_id


@pytest.fixture(scope="module")
def sequential(plugin, tmp_path_factory):
    root = tmp_path_factory.mktemp("sequential")
    code, doc, err = sweep_json(*SMALL, "--workers", "1", "--plugin", plugin, "--runs-dir", root)
    assert code == 0, err
    return root, doc


# ---- what a sweep runs --------------------------------------------------------------------------------
def test_grid_is_every_combination_of_the_axes():
    axes = {"cell": sweeps.parse_axis("cell", ["rnn,lstm", "gru"]), "lr": sweeps.parse_axis("lr", ["1e-3,3e-3"]),
            "hidden": sweeps.parse_axis("hidden", ["32", "64"])}
    grid = sweeps.configurations(axes)
    assert len(grid) == 3 * 2 * 2
    assert {"cell": "gru", "hidden": 64, "lr": 0.003} in grid


def test_random_draws_stay_in_their_ranges_and_repeat_with_the_sample_seed():
    axes = {"cell": ["rnn", "gru"], "lr": sweeps.parse_axis("lr", ["1e-4:1e-2"]),
            "hidden": sweeps.parse_axis("hidden", ["16:128"])}
    drawn = sweeps.configurations(axes, samples=20, sample_seed=0)
    assert drawn == sweeps.configurations(axes, samples=20, sample_seed=0)
    assert drawn != sweeps.configurations(axes, samples=20, sample_seed=1)
    assert all(1e-4 <= d["lr"] <= 1e-2 and 16 <= d["hidden"] <= 128 and isinstance(d["hidden"], int) for d in drawn)
    assert axes["lr"].log and not axes["hidden"].log  # lr log-uniform, sizes uniform by default
    assert sweeps.parse_axis("hidden", ["16:128:log"]).log


@pytest.mark.parametrize("axis, text, says", [
    ("lr", "1e-3,abc", "not a positive number"), ("hidden", "16:8", "LOW < HIGH"), ("hidden", "8.5", "integer"),
    ("lr", "1e-4:1e-2:cubic", "malformed range"), ("lr", "1e-4:1e-2,1e-3", "cannot be mixed"),
    ("lr", "-1", "positive")])
def test_malformed_lists_and_ranges_say_what_to_write(axis, text, says):
    with pytest.raises(ConfigError, match=says):
        sweeps.parse_axis(axis, [text])


def test_a_trial_is_its_resolved_config_without_run_metadata():
    config = {"cell": "gru", "lr": 0.01, "seed": 0, "regularisers": []}
    assert sweeps.trial_key(config) == sweeps.trial_key({**config, "meta": {"run_id": "x"}})
    assert sweeps.trial_key(config) != sweeps.trial_key({**config, "seed": 1})
    assert sweeps.configuration_key(config) == sweeps.configuration_key({**config, "seed": 1})


@pytest.mark.parametrize("args, says", [
    (["--lr", "1e-4:1e-2"], "--random"), (["--lr", "1e-3,x"], "not a positive number"),
    (["--workers", "0"], "--workers"), (["--cell", "nosuch"], "unknown cell"), (["--seeds", "0"], "--seeds"),
    (["--resume", "nope"], "drop --cell"), (["--data", "sweep_tiny,nodata"], "unknown dataset")])
def test_usage_errors_are_one_line_and_exit_2(plugin, tmp_path, args, says):
    base = {"--cell": "rnn", "--data": "sweep_tiny"}
    given = dict(zip(args[::2], args[1::2]))
    flags = [x for k, v in {**base, **given}.items() for x in (k, v)]
    code, out, err = rnnrun("sweep", *flags, "--plugin", plugin, "--runs-dir", tmp_path)
    assert code == 2 and says in err and len(error_lines(err)) == 1, err
    assert not (tmp_path / "sweeps").exists()  # nothing made before the mistake was found


def test_resuming_an_unknown_sweep_lists_the_known_ones(tmp_path):
    code, _, err = rnnrun("sweep", "--resume", "nope", "--runs-dir", tmp_path)
    assert code == 2 and "no sweep 'nope'" in err


def test_scheduler_without_dask_says_how_to_install_it(monkeypatch, plugin, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` meets without the extra
    code, _, err = rnnrun("sweep", "--cell", "rnn", "--data", "sweep_tiny", "--plugin", plugin,
                          "--scheduler", "tcp://127.0.0.1:8786", "--runs-dir", tmp_path)
    assert code == 2 and "pip install 'tinygrad_rnn[dask]'" in err


def test_an_unreachable_scheduler_is_one_line_and_exit_1(monkeypatch, plugin, tmp_path):
    pytest.importorskip("distributed")
    monkeypatch.setattr(sweeps, "CONNECT_TIMEOUT", "1s")
    code, _, err = rnnrun("sweep", "--cell", "rnn", "--data", "sweep_tiny", "--plugin", plugin,
                          "--scheduler", "tcp://127.0.0.1:9", "--runs-dir", tmp_path)
    assert code == 1 and "cannot reach the Dask scheduler" in err and len(error_lines(err)) == 1, err
    assert not (tmp_path / "sweeps").exists()


# ---- the same trials whatever runs them ----------------------------------------------------------------
def test_a_sequential_sweep_stores_each_trial_as_an_ordinary_run(sequential):
    root, doc = sequential
    assert doc["trials_total"] == 4 and doc["finished"] == 4
    folder = root / "sweeps" / doc["id"]
    assert {"sweep.toml", "summary.json"} <= set(os.listdir(folder))
    for trial in doc["trials"]:
        assert {"config.toml", "metrics.csv", "summary.json", "model.npz"} <= set(os.listdir(trial["run_dir"]))
    assert json.loads((folder / "summary.json").read_text())["trials"] == doc["trials"]
    rows = doc["configurations"]
    assert [r["settings"]["cell"] for r in rows] == ["rnn", "gru"] and all(r["finished"] == 2 for r in rows)
    assert sum(r["best"] for r in rows) == 1
    code, out, _ = rnnrun("runs", "--sweep", doc["id"][:10], "--runs-dir", root, "--json")
    assert code == 0 and sorted(r["id"] for r in json.loads(out)) == sorted(t["run_id"] for t in doc["trials"])


def test_the_table_shows_mean_and_std_over_seeds(sequential):
    root, doc = sequential
    code, out, _ = rnnrun("sweep", "--resume", doc["id"], "--runs-dir", root)  # nothing left to run: just the table
    assert code == 0 and "±" in out and "test rmse" in out and "2/2" in out


def test_a_process_pool_gives_the_same_trials(sequential, plugin, tmp_path):
    code, doc, err = sweep_json(*SMALL, "--workers", "2", "--plugin", plugin, "--runs-dir", tmp_path)
    assert code == 0, err
    assert results(doc) == results(sequential[1])


def test_a_dask_cluster_gives_the_same_trials(sequential, plugin, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        code, doc, err = sweep_json(*SMALL, "--scheduler", cluster.scheduler_address, "--plugin", plugin,
                                    "--runs-dir", tmp_path)
    assert code == 0, err
    assert results(doc) == results(sequential[1])


# ---- faults -------------------------------------------------------------------------------------------
def test_a_failing_trial_is_recorded_and_the_others_go_on(plugin, tmp_path):
    code, doc, _ = sweep_json("--cell", "rnn", "--data", "sweep_tiny:broken=true,sweep_tiny", "--epochs", "1",
                              "--workers", "2", "--plugin", plugin, "--runs-dir", tmp_path)
    assert code == 1  # the sweep ran to its end, but not every trial finished
    failed, finished = doc["trials"]
    assert failed["status"] == "failed" and "broken on purpose" in failed["message"]
    assert json.load(open(os.path.join(failed["run_dir"], "summary.json")))["status"] == "failed"
    assert finished["status"] == "finished" and finished["test_metric"] > 0
    assert [r["best"] for r in doc["configurations"]] == [False, True]


def test_ctrl_c_keeps_finished_trials_and_resume_runs_only_the_rest(plugin, tmp_path):
    stop = tmp_path / "stop"
    stop.touch()
    runs = tmp_path / "runs"
    code, _, err = rnnrun("sweep", "--cell", "rnn", "--data", f"sweep_tiny:stop_file={stop}", "--seeds", "3",
                          "--epochs", "1", "--workers", "1", "--plugin", plugin, "--runs-dir", runs, "--quiet")
    assert code == 130 and "--resume" in err
    sweep_id = only_sweep(runs)
    summary = json.loads((runs / "sweeps" / sweep_id / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert [t["status"] for t in summary["trials"]] == ["finished", "interrupted", "pending"]

    stop.unlink()
    code, doc, err = sweep_json("--resume", sweep_id, "--workers", "1", "--runs-dir", runs)
    assert code == 0, err
    assert doc["resumed"] == 1 and doc["finished"] == 3
    assert doc["trials"][0] == summary["trials"][0]  # seed 0 was not run again

    # a trial whose results are lost (here: its summary) is run again, and only that one
    os.remove(os.path.join(doc["trials"][2]["run_dir"], "summary.json"))
    code, again, _ = sweep_json("--resume", sweep_id, "--workers", "1", "--runs-dir", runs)
    assert code == 0 and again["resumed"] == 2 and again["trials"][2]["run_id"] != doc["trials"][2]["run_id"]
    code, out, _ = rnnrun("runs", "--sweep", sweep_id, "--runs-dir", runs, "--json")
    assert len(json.loads(out)) == 5  # 3 trials + the interrupted attempt + the one whose summary was lost


# ---- one rnnrun per sweep; runs the client cannot read ----------------------------------------------------
def test_a_second_rnnrun_on_a_running_sweep_is_refused(sequential, plugin):
    root, doc = sequential
    sweep = sweeps.find_sweep(str(root), doc["id"])
    with sweeps.sweep_lock(sweep):  # as if another rnnrun were running it
        code, _, err = sweep_json("--resume", doc["id"], "--runs-dir", root, "--plugin", plugin)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and f"sweep {doc['id']} is being run by rnnrun pid" in errors[0], err


def test_a_run_the_client_cannot_read_back_is_a_failure_that_says_where_it_went(sequential, tmp_path):
    """A Dask worker without the shared file system writes its run on its own disk: not a silent result."""
    root, doc = sequential
    finished = next(t for t in doc["trials"] if t["status"] == "finished")
    assert sweeps.readable_here(finished) == finished  # this machine can read it: kept as it is
    elsewhere = {**finished, "run_dir": str(tmp_path / "on-the-worker's-disk"), "host": "node7"}
    failed = sweeps.readable_here(elsewhere)
    assert failed["status"] == "failed"
    assert failed["message"].startswith(f"host node7 wrote the run to {elsewhere['run_dir']}, which this machine "
                                        "cannot read")
