"""The run store's smaller promises: files others can read, ids that are never cut, ambiguous prefixes
counted, and a dead process's run called killed with the command that resumes it."""
import json
import os
import stat


from tinygrad_rnn.runner.store import Run, RunStore, atomic_write

from helpers import rnnrun

RUN = ["--cell", "gru", "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "1", "--quiet"]


def test_run_files_follow_the_umask_as_other_files_do(tmp_path):
    path = tmp_path / "plain.txt"
    open(path, "w").close()
    atomic_write(str(tmp_path / "atomic.txt"), "x")
    assert stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode) == stat.S_IMODE(os.stat(path).st_mode)
    assert rnnrun(*RUN, "--runs-dir", tmp_path / "runs").exit_code == 0
    run = RunStore(str(tmp_path / "runs")).get("last")
    for name in ("config.toml", "summary.json", "metrics.csv", "model.npz", "checkpoint.npz"):
        assert stat.S_IMODE(os.stat(run.file(name)).st_mode) == stat.S_IMODE(os.stat(path).st_mode), name


def test_the_id_column_is_never_cut_and_an_ambiguous_prefix_counts_its_matches(tmp_path):
    for seed in (0, 1, 2):
        assert rnnrun(*RUN, "--seed", seed, "--runs-dir", tmp_path).exit_code == 0
    ids = [r["id"] for r in json.loads(rnnrun("runs", "--runs-dir", tmp_path, "--json").stdout)]
    for width in ("80", "60"):
        table = rnnrun("runs", "--runs-dir", tmp_path, env={"COLUMNS": width})
        assert all(run_id in table.stdout for run_id in ids), table.stdout
        assert max(len(line) for line in table.stdout.splitlines()) <= int(width) or width == "60"
    ambiguous = rnnrun("show", ids[0][:4], "--runs-dir", tmp_path)
    assert ambiguous.exit_code == 2 and "3 runs match" in ambiguous.stderr


def test_a_run_whose_process_is_gone_is_killed_and_says_how_to_resume(tmp_path):
    assert rnnrun(*RUN, "--runs-dir", tmp_path).exit_code == 0
    run = RunStore(str(tmp_path)).get("last")
    # what a SIGKILLed process leaves: a "running" summary whose pid no longer exists
    run.write_summary({**run.summary(), "status": "running", "pid": 2 ** 22 + 4321, "host": os.uname().nodename})
    assert Run(run.path).status() == "killed"
    for command in (["runs"], ["show", run.id]):
        out = rnnrun(*command, "--runs-dir", tmp_path, env={"COLUMNS": "200"}).stdout
        assert "killed" in out and f"rnnrun resume {run.id}" in out, out
