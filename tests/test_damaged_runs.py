"""Damaged runs: each run file in turn truncated, overwritten with garbage or deleted. `rnnrun runs` lists
the run as `damaged (FILE: reason)` and the other runs as usual; every command that reads the run says
which file in one line and exits 1; nothing prints a traceback."""
import json
import os
import shutil

import pytest


from helpers import rnnrun

FILES = ("config.toml", "summary.json", "metrics.csv", "model.npz", "checkpoint.npz")
RUN = ["--cell", "gru", "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A runs folder with two finished runs: (folder, [id of the first, id of the second])."""
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        assert rnnrun(*RUN, "--seed", seed, "--runs-dir", root).exit_code == 0
    ids = [row["id"] for row in json.loads(rnnrun("runs", "--runs-dir", root, "--json").stdout)]
    return root, ids


def damage(path, how):
    if how == "delete":
        os.remove(path)
    elif how == "truncate":
        data = open(path, "rb").read()
        cut = len(data) // 2
        if data[cut - 1:cut] == b"\n":  # cut inside a line: a file cut at a line end may still be complete
            cut -= 2
        open(path, "wb").write(data[:cut])
    else:
        open(path, "wb").write(b"\x00\xffgarbage{[\n" * 7)


def one_line_error(result, name):
    assert result.exit_code == 1, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("how", ["truncate", "garbage", "delete"])
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_file_is_named_and_the_other_runs_stay_usable(two_runs, tmp_path, name, how):
    root, (damaged, healthy) = tmp_path / "runs", two_runs[1]
    shutil.copytree(two_runs[0], root)
    damage(os.path.join(root, damaged, name), how)

    listed = rnnrun("runs", "--runs-dir", root, "--json")
    assert listed.exit_code == 0
    status = {row["id"]: row["status"] for row in json.loads(listed.stdout)}
    assert status[healthy] == "finished"
    table = rnnrun("runs", "--runs-dir", root)
    assert table.exit_code == 0 and healthy in table.stdout
    assert status[damaged].startswith(f"damaged ({name}: "), status[damaged]

    one_line_error(rnnrun("show", damaged, "--runs-dir", root), name)
    one_line_error(rnnrun("resume", damaged, "--epochs", 3, "--runs-dir", root), name)
    if how == "garbage":
        one_line_error(rnnrun("compare", healthy, damaged, "--runs-dir", root), name)
        one_line_error(rnnrun("forecast", damaged, "--steps", 3, "--runs-dir", root), name)
        one_line_error(rnnrun("sample", damaged, "--length", 3, "--runs-dir", root), name)
    assert rnnrun("show", healthy, "--runs-dir", root).exit_code == 0


def test_weights_of_another_model_are_a_damaged_model_file(two_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(two_runs[0], root)
    assert rnnrun(*RUN, "--hidden", 5, "--runs-dir", root).exit_code == 0
    other = json.loads(rnnrun("runs", "--runs-dir", root, "--json").stdout)[-1]["id"]
    first = two_runs[1][0]
    shutil.copy(os.path.join(root, other, "model.npz"), os.path.join(root, first, "model.npz"))
    one_line_error(rnnrun("forecast", first, "--steps", 3, "--runs-dir", root), "model.npz")


def test_a_checkpoint_that_does_not_fit_its_config_changes_nothing(two_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(two_runs[0], root)
    first = two_runs[1][0]
    assert rnnrun(*RUN, "--hidden", 5, "--runs-dir", root).exit_code == 0
    other = json.loads(rnnrun("runs", "--runs-dir", root, "--json").stdout)[-1]["id"]
    shutil.copy(os.path.join(root, other, "checkpoint.npz"), os.path.join(root, first, "checkpoint.npz"))
    before = {name: open(os.path.join(root, first, name), "rb").read() for name in FILES}
    one_line_error(rnnrun("resume", first, "--epochs", 3, "--runs-dir", root), "checkpoint.npz")
    assert before == {name: open(os.path.join(root, first, name), "rb").read() for name in FILES}


def test_a_run_from_before_checkpoints_is_not_damaged_but_cannot_resume(two_runs, tmp_path):
    """An older rnnrun wrote no checkpoint and did not record one: no damage, nothing to resume from."""
    root = tmp_path / "runs"
    shutil.copytree(two_runs[0], root)
    run = root / two_runs[1][0]
    os.remove(run / "checkpoint.npz")
    summary = json.loads((run / "summary.json").read_text())
    del summary["checkpoint_epoch"]
    (run / "summary.json").write_text(json.dumps(summary))
    status = {row["id"]: row["status"] for row in json.loads(rnnrun("runs", "--runs-dir", root, "--json").stdout)}
    assert status[run.name] == "finished"
    refused = rnnrun("resume", run.name, "--epochs", 3, "--runs-dir", root)
    assert refused.exit_code == 2 and "it trained 2 epochs with an rnnrun that wrote none" in refused.stderr


def test_a_foreign_model_file_is_damage_in_runs_show_and_compare(two_runs, tmp_path):
    """np.savez(zzz=...) in place of model.npz: not this run's model, named wherever the run is read."""
    import numpy as np
    root = tmp_path / "runs"
    shutil.copytree(two_runs[0], root)
    damaged, healthy = two_runs[1]
    np.savez(root / damaged / "model.npz", zzz=np.zeros(3))
    status = {row["id"]: row["status"] for row in json.loads(rnnrun("runs", "--runs-dir", root, "--json").stdout)}
    assert status[damaged].startswith("damaged (model.npz: not this run's model")
    one_line_error(rnnrun("show", damaged, "--runs-dir", root), "model.npz")
    one_line_error(rnnrun("compare", healthy, damaged, "--runs-dir", root), "model.npz")


def test_an_empty_run_folder_and_an_unreadable_one_are_listed_as_damaged(two_runs, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    shutil.copytree(two_runs[0], root)
    (root / "20261204-000000-gru-sine").mkdir()        # named like a run, nothing in it
    (root / "notes").mkdir()                           # not a run: not listed
    locked = root / "20261204-000001-gru-sine"
    shutil.copytree(root / two_runs[1][0], locked)
    scandir = os.scandir

    def unreadable(path="."):  # chmod 000 as a non-root user sees it (root reads everything)
        if os.path.basename(os.fspath(path)) == locked.name:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)
    monkeypatch.setattr(os, "scandir", unreadable)
    status = {row["id"]: row["status"] for row in json.loads(rnnrun("runs", "--runs-dir", root, "--json").stdout)}
    assert status["20261204-000000-gru-sine"] == "damaged (config.toml: missing)"
    assert locked.name in status and "notes" not in status
    assert all(status[i] == "finished" for i in two_runs[1])


CSV_RUN = ["--cell", "gru", "--epochs", "1", "--hidden", "2", "--quiet"]


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A finished run on the csv dataset (it saves preprocessing.json) and its data file."""
    from helpers import SMALL
    root = tmp_path_factory.mktemp("csvruns")
    options = SMALL["csv"]
    spec = "csv:" + ",".join(f"{k}={v}" for k, v in options.items())
    assert rnnrun(*CSV_RUN, "--data", spec, "--runs-dir", root).exit_code == 0
    return root, next(p.name for p in root.iterdir()), options["path"]


@pytest.mark.parametrize("content, reason", [
    (None, "missing"),
    ("[1, 2, 3]", "not a JSON object"),
    ('{"shape": "forecasting"}', "does not fit dataset 'csv' (KeyError: 'input_size')"),
    ('{"shape": "forecasting", "input_size": 1, "output_size": 1, "features": ["y"]}', "KeyError: 'transform'"),
    ('{"shape": "ranking", "input_size": 1, "output_size": 1}', "shape 'ranking' is neither"),
    ("garbage{", "not valid JSON"),
])
def test_a_damaged_preprocessing_file_is_named_alike_by_predict_runs_and_the_api(csv_run, tmp_path, content,
                                                                                  reason):
    root = tmp_path / "runs"
    shutil.copytree(csv_run[0], root)
    run, data = csv_run[1], csv_run[2]
    path = root / run / "preprocessing.json"
    if content is None:
        os.remove(path)
    else:
        path.write_text(content)
    result = rnnrun("predict", run, "--input", data, "--runs-dir", root)
    one_line_error(result, "preprocessing.json")
    assert reason in result.stderr and "plugin" not in result.stderr
    said = result.stderr.strip().split(": preprocessing.json: ", 1)[1].rsplit(" (", 1)[0]  # the reason alone
    status = json.loads(rnnrun("runs", "--runs-dir", root, "--json").stdout)[0]["status"]
    assert status == f"damaged (preprocessing.json: {said})"
    from tinygrad_rnn.runner import load_run
    run = load_run(run, runs_dir=root)
    assert run.status == status and status in repr(run)
