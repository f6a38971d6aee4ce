"""`rnnrun tune`: trials are ordinary runs, pruned ones stop early and say so, the study persists and continues,
best.toml repeats the best trial, local and Dask workers share the study, and bad searches are one-line errors.

The study trains a GRU on a small sine task (64 training windows) for at most 2 epochs per trial.
"""
import json
import os
import sys

import pytest

from tinygrad_rnn.runner import tuner as tuning
from tinygrad_rnn.runner.sweeper import Range

from helpers import console_script as rnnrun

optuna = pytest.importorskip("optuna")

AIRLINE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugins", "datasets", "data",
                       "airline_passengers_1949_1960.csv")
SEARCH = ["--cell", "gru", "--data", "sine:n_train=64", "--lr", "1e-4:1e-1", "--hidden", "4:16", "--epochs", "2"]


def tune_json(root, *args):
    code, out, err = rnnrun("--runs-dir", root, "tune", *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    return root, tune_json(root, *SEARCH, "--trials", "8")


# ---- the search space ---------------------------------------------------------------------------------
def test_one_value_is_fixed_and_lists_and_ranges_are_tuned():
    fixed, tuned = tuning.search_space({"cell": ["gru"], "data": ["sine"], "layers": [1, 2],
                                        "lr": Range(1e-4, 1e-1, True, False)})
    assert fixed == {"cell": "gru", "data": "sine"}
    assert set(tuned) == {"layers", "lr"}


def test_suggestions_follow_the_sweep_syntax():
    trial = optuna.trial.FixedTrial({"lr": 0.01, "hidden": 9, "cell": "lstm"})
    assert tuning.suggest(trial, "lr", Range(1e-4, 1e-1, True, False)) == 0.01
    assert tuning.suggest(trial, "hidden", Range(4, 16, False, True)) == 9
    assert tuning.suggest(trial, "cell", ["gru", "lstm"]) == "lstm"


LR = Range(1e-4, 1e-1, True, False)


def draws(study, n):
    """The lr of `n` trials asked of `study` in turn (each told a value, as a finished trial is)."""
    found = []
    for _ in range(n):
        trial = study.ask()
        found.append(tuning.suggest(trial, "lr", LR))
        study.tell(trial, found[-1])
    return found


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_two_commands_that_start_together_on_one_storage_draw_different_settings(tmp_path, sampler):
    """Both found the study with the same trials (none) and made their samplers then, with the same --seed."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="s", storage=url)
    job = {"sampler": sampler, "sampler_seed": 0}
    first, second = (optuna.load_study(study_name="s", storage=url, sampler=tuning.make_sampler(job)) for _ in "ab")
    asked = [first.ask(), second.ask()]
    assert tuning.suggest(asked[0], "lr", LR) != tuning.suggest(asked[1], "lr", LR)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_one_command_with_a_seed_draws_the_same_settings_every_time(tmp_path, sampler):
    job = {"sampler": sampler, "sampler_seed": 3}
    runs = [draws(optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / f'{k}.db'}",
                                      sampler=tuning.make_sampler(job)), 12) for k in range(2)]
    assert runs[0] == runs[1] and len(set(runs[0])) == 12  # past TPE's 10 random start-up trials too
    other = draws(optuna.create_study(sampler=tuning.make_sampler({**job, "sampler_seed": 4})), 12)
    assert not set(other) & set(runs[0])  # another seed, other draws


def test_trials_are_shared_evenly_between_workers():
    assert tuning.shares(12, 5) == [3, 3, 2, 2, 2]
    assert tuning.shares(2, 4) == [1, 1]


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_a_trial_worse_than_the_others_is_pruned_only_after_the_warmup(pruner):
    def bad_trial_pruned(warmup):
        study = optuna.create_study(pruner=tuning.make_pruner({"pruner": pruner, "warmup": warmup}))
        for value in (0.1, 0.2, 0.3, 0.4, 0.5):
            trial = study.ask()
            trial.report(value, 1)
            trial.should_prune()  # successive halving records its rungs here
            study.tell(trial, value)
        trial = study.ask()
        trial.report(9.0, 1)
        return trial.should_prune()
    assert bad_trial_pruned(warmup=0) and not bad_trial_pruned(warmup=1)


# ---- a study ------------------------------------------------------------------------------------------
def test_the_study_reports_every_trial_the_best_and_the_importances(study):
    _, doc = study
    assert set(doc) == {"study", "trials", "best", "importances"}
    assert [t["number"] for t in doc["trials"]] == list(range(8))
    for t in doc["trials"]:
        assert set(t) >= {"number", "params", "value", "state", "epochs", "run_dir"}
        assert set(t["params"]) == {"lr", "hidden"} and 4 <= t["params"]["hidden"] <= 16
    finished = [t["value"] for t in doc["trials"] if t["state"] == "complete"]
    assert doc["best"]["value"] == min(finished)
    assert set(doc["importances"]) <= {"lr", "hidden"} and doc["importances"]


def test_pruned_trials_stop_early_and_are_marked_pruned_in_their_run(study):
    root, doc = study
    pruned = [t for t in doc["trials"] if t["state"] == "pruned"]
    assert pruned, "the median pruner stopped no trial"
    for t in pruned:
        summary = json.load(open(os.path.join(t["run_dir"], "summary.json")))
        assert summary["status"] == "pruned" and t["epochs"] < 2
        assert summary["epochs"] == t["epochs"] and os.path.isfile(os.path.join(t["run_dir"], "model.npz"))
    code, out, _ = rnnrun("--runs-dir", root, "runs", "--json")
    statuses = {row["id"]: row["status"] for row in json.loads(out)}
    assert all(statuses[t["run_id"]] == "pruned" for t in pruned)
    assert doc["study"]["epochs"] == sum(t["epochs"] for t in doc["trials"]) < 8 * 2


def test_best_toml_repeats_the_best_trial(study, tmp_path):
    _, doc = study
    code, out, err = rnnrun("--runs-dir", tmp_path, "--config", doc["best"]["config"], "--json")
    assert code == 0, err
    assert json.loads(out)["val_metric"] == pytest.approx(doc["best"]["value"], rel=1e-6)  # the default objective


def test_the_same_command_continues_the_study_on_two_local_workers_and_warmup_spares_the_first_epochs(study):
    root, doc = study
    again = tune_json(root, *SEARCH, "--trials", "2", "--workers", "2", "--warmup", "2")
    assert again["study"]["name"] == doc["study"]["name"]
    assert [t["number"] for t in again["trials"]] == list(range(10))
    assert again["trials"][:8] == doc["trials"]
    assert len({t["run_dir"] for t in again["trials"]}) == 10
    new = {json.dumps(t["params"], sort_keys=True) for t in again["trials"][8:]}
    assert not new & {json.dumps(t["params"], sort_keys=True) for t in doc["trials"]}, "the first draws were replayed"
    assert [t["epochs"] for t in again["trials"][8:]] == [2, 2], "a trial was pruned during its warmup"


def test_dask_workers_share_one_study(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        doc = tune_json(tmp_path, *SEARCH[:-1], "1", "--trials", "2", "--scheduler", cluster.scheduler_address)
    assert doc["study"]["trials"] == 2 and doc["best"] is not None
    assert all(os.path.isfile(os.path.join(t["run_dir"], "summary.json")) for t in doc["trials"])


# ---- what is refused ------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (["--cell", "gru", "--data", "sine", "--lr", "1e-3"], "nothing to tune"),
    (["--cell", "gru", "--data", "sine", "--lr", "1e-1:1e-4"], "LOW < HIGH"),
    (["--cell", "gru", "--data", "sine", "--hidden", "0:8"], "must be positive"),
    (["--cell", "gru", "--data", "sine", "--lr", "1e-3:1e-1", "--objective", "val_loss", "--direction", "maximize"],
     "a loss is lower-is-better"),
    (["--cell", "gru", "--data", "sine", "--lr", "1e-3:1e-1", "--direction", "maximize"], "rmse is lower-is-better"),
    (["--cell", "gru", "--data", "sine,adding", "--lr", "1e-3:1e-1"], "one dataset at a time"),
    (["--cell", "gru,grux", "--data", "sine", "--lr", "1e-3:1e-1"], "unknown cell 'grux'"),
    # every edge of the search is built before the study exists: a choice, a fixed option, the largest trial
    (["--cell", "gru,rnn:nonlinearity=zz", "--data", "sine", "--lr", "1e-3:1e-1"], "unknown nonlinearity 'zz'"),
    (["--cell", "gru", "--data", "sine:T=0", "--lr", "1e-3:1e-1"], "T (window length)"),
    (["--cell", "gru", "--data", "sine", "--lr", "1e-3:1e-1", "--reg", "clip:mode=sideways"], "unknown mode"),
    (["--cell", "gru", "--data", "sine", "--optimizer", "adam,sgd:momentum=-1", "--lr", "1e-3"], "momentum"),
    (["--cell", "gru", "--data", "sine", "--hidden", "4:100000"], "would need about"),
    # fine alone, too large together: hidden 4096 with 256 layers
    (["--cell", "gru,lstm", "--data", "sine", "--hidden", "4:4096", "--layers", "1:256"], "would need about"),
    # csv's val=0: nothing to choose on
    (["--cell", "gru", "--data", f"csv:path={AIRLINE},target=passengers,val=0", "--lr", "1e-3:1e-1"],
     "has no validation split (val=0), and tune chooses on validation"),
])
def test_a_bad_search_is_one_line_and_exit_2_before_any_folder(tmp_path, args, says):
    code, _, err = rnnrun("--runs-dir", tmp_path, "tune", *args)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(lines) == 1 and says in lines[0], err
    assert not os.path.exists(tmp_path / "tunes")


def test_the_edges_of_a_search_are_each_choice_each_range_end_and_the_largest_trial_per_cell():
    job = {"tuned": {"cell": ["gru", "lstm"], "hidden": Range(4, 64, False, True), "lr": Range(1e-4, 1e-1, True, False),
                     "layers": [1, 3, 2]}}
    found = tuning.edges(job)
    first = {"cell": "gru", "hidden": 4, "lr": 1e-4, "layers": 1}
    assert found[0] == first
    for axis, value in (("cell", "lstm"), ("hidden", 64), ("lr", 0.1), ("layers", 3), ("layers", 2)):
        assert {**first, axis: value} in found
    for cell in ("gru", "lstm"):  # the largest trial of each cell: every size axis at its maximum at once
        assert {**first, "cell": cell, "hidden": 64, "layers": 3} in found
    assert len(found) == len({tuple(sorted(f.items())) for f in found}) == 8


def test_continuing_a_study_with_another_search_is_refused(study):
    root, doc = study
    code, _, err = rnnrun("--runs-dir", root, "tune", *SEARCH[:-1], "3", "--study", doc["study"]["name"])
    assert code == 2 and "was made with different run flags" in err and len(err.strip().splitlines()) == 1


def test_without_optuna_it_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)
    code, _, err = rnnrun("--runs-dir", tmp_path, "tune", *SEARCH)
    assert code == 2 and err.strip() == f"Error: {tuning.INSTALL}"


@pytest.mark.parametrize("url", ["nosuchdb://x", "notaurl", "sqlite:////proc/nope/study.db",
                                 "postgresql://localhost/db"])
def test_a_storage_that_cannot_be_opened_is_one_line_and_exit_2_and_leaves_no_folder(tmp_path, url):
    code, _, err = rnnrun("--runs-dir", tmp_path / "runs", "tune", *SEARCH, "--storage", url)
    assert code == 2 and err.count("\n") == 1 and f"cannot open the study's storage {url}" in err, err
    assert not os.path.exists(tmp_path / "runs")  # neither runs/ nor runs/tunes/ nor the study's folder


@pytest.mark.parametrize("command", ["tune", "sweep"])
@pytest.mark.parametrize("address", ["notaurl", "tcp://host-without-port", "foo://host:8786", "tcp://h:99999"])
def test_a_malformed_scheduler_address_is_a_usage_error_before_connecting(tmp_path, command, address):
    import time
    start = time.perf_counter()
    code, _, err = rnnrun("--runs-dir", tmp_path / "runs", command, *SEARCH, "--scheduler", address)
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "is not a Dask scheduler address" in err
    assert time.perf_counter() - start < 5 and "Client.__del__" not in err
    assert not os.path.exists(tmp_path / "runs")


# ---- signals: a stopped study keeps every trial's run, "interrupted" --------------------------------------
@pytest.mark.parametrize("signum, workers", [("SIGTERM", 1), ("SIGHUP", 2)])  # SIGINT: the same path (on_stop)
def test_a_signal_stops_tune_cleanly_and_leaves_its_trials_interrupted(tmp_path, signum, workers):
    """SIGTERM (timeout, a batch scheduler), SIGHUP (a closed terminal) and Ctrl-C: exit 128 + the signal,
    no traceback, never a hang; the trials that were training are "interrupted" in their runs and the study."""
    import glob
    import shutil
    import signal
    import subprocess
    import time
    from tinygrad_rnn.runner.store import Run
    rnnrun_script = shutil.which("rnnrun") or os.path.join(os.path.dirname(sys.executable), "rnnrun")
    args = [rnnrun_script, "--runs-dir", str(tmp_path), "tune", "--cell", "gru", "--data", "sine:n_train=64",
            "--lr", "1e-3:1e-2", "--epochs", "1000", "--trials", str(2 * workers), "--workers", str(workers)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 60
    while not glob.glob(str(tmp_path / "tunes" / "*" / "*" / "metrics.csv")):  # a trial is training
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signum))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + getattr(signal, signum), err
    assert "Traceback" not in err and "interrupted:" in err
    runs = [Run(os.path.dirname(p)) for p in glob.glob(str(tmp_path / "tunes" / "*" / "*" / "config.toml"))]
    assert runs and all(run.status() == "interrupted" for run in runs)
    study_db = glob.glob(str(tmp_path / "tunes" / "*" / "study.db"))[0]
    study = optuna.load_study(study_name=None, storage="sqlite:///" + study_db)
    assert {t.user_attrs.get("status") for t in study.trials} == {"interrupted"}


# ---- faults: trials left RUNNING, two commands on one study ---------------------------------------------
def test_a_trial_left_running_by_a_dead_process_is_failed_by_the_next_command(study, monkeypatch):
    """Optuna's heartbeat: a RUNNING trial whose process stopped beating is failed when trials start again."""
    root, doc = study
    url = doc["study"]["storage"]
    dead = optuna.load_study(study_name=doc["study"]["name"], storage=tuning.storage(url)).ask()
    dead.study._storage.record_heartbeat(dead._trial_id)  # it beat once, then its process was killed
    monkeypatch.setattr(tuning, "GRACE_SECONDS", 1)  # Optuna compares whole seconds: silent for 2 s is stale
    import time
    time.sleep(2.2)
    after = tune_json(root, *SEARCH, "--trials", "1")
    states = {t["number"]: t["state"] for t in after["trials"]}
    assert states[dead.number] == "fail" and after["study"]["running"] == 0


def test_a_second_command_on_the_same_study_is_refused_while_the_first_runs(tmp_path):
    from tinygrad_rnn.runner.sweeper import folder_lock
    first = tune_json(tmp_path, *SEARCH, "--trials", "1")
    with folder_lock(first["study"]["path"], "the first command's study"):
        code, _, err = rnnrun("--runs-dir", tmp_path, "tune", *SEARCH, "--trials", "1")
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and "is being run by rnnrun pid" in errors[0], err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_study_file_is_named(tmp_path):
    first = tune_json(tmp_path, *SEARCH, "--trials", "1")
    database = os.path.join(first["study"]["path"], "study.db")
    os.chmod(database, 0o444)
    code, _, err = rnnrun("--runs-dir", tmp_path, "tune", *SEARCH, "--trials", "1")
    assert code == 2 and f"the study's database {database} cannot be written" in err, err


def test_trials_whose_runs_this_machine_cannot_read_are_found(study, tmp_path):
    """A Dask worker without the shared file system: its trials are in the study, their folders are not here."""
    _, doc = study
    assert tuning.unreadable_runs(doc) == []
    moved = {**doc, "trials": [{**doc["trials"][0], "run_dir": str(tmp_path / "elsewhere"), "state": "complete",
                                "host": "node7"}] + doc["trials"][1:]}
    assert [t["host"] for t in tuning.unreadable_runs(moved)] == ["node7"]
