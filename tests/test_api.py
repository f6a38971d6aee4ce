"""The runner from Python (tinygrad_rnn.runner: train, load_run, sweep, tune): the same checks, run
folders and numbers as `rnnrun`, the project's exceptions with the command's messages, nothing
printed unless asked, and objects that show as their results tables in a notebook."""
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_rnn import ConfigError, UnknownPluginError
from tinygrad_rnn.runner import Run, load_run, train

import early_jobs
from helpers import SMALL, rnnrun, small_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRLINE = SMALL["csv"]["path"]
CSV_SPEC = f"csv:path={AIRLINE},target=passengers,time=month,window=12,season=12"
SINE = small_spec("sine")


@contextlib.contextmanager
def captured():
    """What the block prints on stdout and stderr, as one string."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        yield out


def without_timing(doc):
    """A summary or JSON document without what differs between two identical runs: times and places."""
    varying = ("seconds", "run_dir", "run_id", "epoch_seconds")
    return {k: v for k, v in doc.items() if k not in varying}


# ---- one code path: the same numbers as the command line ------------------------------------------------
def test_train_gives_the_numbers_of_rnnrun_json_bit_for_bit(tmp_path):
    flags = dict(cell="gru", data=SINE, epochs=3, seed=7, hidden=8, reg=["clip:1.0"])
    code = subprocess.run([sys.executable, "-m", "tinygrad_rnn", "--cell", "gru", "--data", SINE, "--epochs", "3",
                           "--seed", "7", "--hidden", "8", "--reg", "clip:1.0", "--json",
                           "--runs-dir", str(tmp_path / "cli")], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert code.returncode == 0, code.stderr
    doc = json.loads(code.stdout)
    run = train(**flags, runs_dir=str(tmp_path / "api"))
    summary = run.summary
    numbers = without_timing(doc)
    assert numbers["test_metric"] == summary["test_metric"] and numbers["val_loss"] == summary["val_loss"]
    assert {k: summary.get(k) for k in numbers} == numbers, "train() and rnnrun --json differ"
    cli_run = load_run("last", runs_dir=str(tmp_path / "cli"))
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(cli_run.history) == strip(run.history) and len(run.history) == 3
    for name, weights in cli_run._folder.weights().items():
        assert np.array_equal(weights, run._folder.weights()[name]), name
    cli_config, api_config = cli_run.config, run.config
    assert cli_config == api_config


def test_a_cell_given_as_a_name_is_one_run_several_cells_or_seeds_a_list(tmp_path):
    one = train(cell="gru", data=SINE, epochs=1, runs_dir=str(tmp_path))
    assert isinstance(one, Run) and one.status == "finished"
    several = train(cell=["rnn", "gru"], data=SINE, epochs=1, seeds=2, seed=5, runs_dir=str(tmp_path))
    assert [(r.config["cell"], r.config["seed"]) for r in several] == [("rnn", 5), ("rnn", 6), ("gru", 5), ("gru", 6)]
    assert len(train(cell="rnn,gru", data=SINE, epochs=1, runs_dir=str(tmp_path))) == 2


def test_the_api_prints_nothing_unless_asked(tmp_path):
    with captured() as out:
        run = train(cell="gru", data=SINE, epochs=1, runs_dir=str(tmp_path))
        run.resume(epochs=2)
        load_run("last", runs_dir=str(tmp_path)).history
    assert out.getvalue() == ""
    with captured() as out:
        train(cell="gru", data=SINE, epochs=1, runs_dir=str(tmp_path), quiet=False)
    assert "Results on sine" in out.getvalue() and "Model: gru on sine" in out.getvalue()


@pytest.mark.parametrize("flags, error, message", [
    (dict(cell="grux", data="sine"), UnknownPluginError, "unknown cell 'grux'; known cells: .*did you mean 'gru'"),
    (dict(cell="gru", data="sine", epochs=0), ConfigError, "--epochs must be an integer from 1"),
    (dict(cell="gru", data="sine:T=abc"), ConfigError, "option 'T' of dataset 'sine'"),
    (dict(cell="gru", data="sine", seeds=0), ConfigError, r"--seeds must be an integer in \[1, 10000\]"),
    (dict(cell="gru", data="sine", checkpoint_every=0), ConfigError, "--checkpoint-every must be a positive"),
    (dict(data="sine"), ConfigError, "no cell given"),
])
def test_mistakes_raise_the_projects_exceptions_with_the_commands_message_and_make_no_folder(
        tmp_path, flags, error, message):
    runs_dir = tmp_path / "runs"
    with pytest.raises(error, match=message) as raised:
        train(**flags, runs_dir=str(runs_dir))
    assert not runs_dir.exists()
    cli_flags = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items() if k != "seeds"]
    if "seeds" not in flags and "checkpoint_every" not in flags:  # flags the command checks the same way
        result = rnnrun(*cli_flags, "--runs-dir", runs_dir)
        assert result.exit_code == 2 and f"Error: {raised.value}" in result.stderr


# ---- Run: one run folder --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    """A finished run on the airline CSV file (a forecaster that predicts from files)."""
    return train(cell="gru", data=CSV_SPEC, epochs=4, hidden=8, runs_dir=str(tmp_path_factory.mktemp("runs")))


def test_a_run_holds_its_folders_config_summary_and_history(forecaster):
    run = load_run(forecaster.id, runs_dir=os.path.dirname(forecaster.dir))
    assert run == forecaster and run.dir == forecaster.dir and run.status == "finished"
    assert run.config["cell"] == "gru" and run.config["hidden"] == 8 and "meta" not in run.config
    assert run.summary["test_metric"] > 0 and run.summary["status"] == "finished"
    assert [row["epoch"] for row in run.history] == [1, 2, 3, 4]
    assert load_run(run.id[:15], runs_dir=os.path.dirname(run.dir)) == run  # an id prefix
    assert load_run(run.dir) == run                                            # a folder


def test_the_model_is_the_trained_one_and_predicts_what_rnnrun_predict_does(forecaster, tmp_path):
    model = forecaster.model
    assert model.num_parameters() == forecaster.summary["params"] and not model.training
    predictions = forecaster.predict(AIRLINE, steps=12)
    result = rnnrun("predict", forecaster.dir, "--input", AIRLINE, "--steps", "12", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"run": forecaster.id, **predictions.to_dict()} | {"run": forecaster.id}
    assert predictions.columns == ["month", "passengers"] and len(predictions) == 12  # dated: the next 12 months
    assert predictions.column("passengers").shape == (12,)


def test_predict_on_an_array_is_the_models_output_on_the_test_split(forecaster):
    test = forecaster.dataset.splits()["test"]
    y = forecaster.predict(test.x)
    assert isinstance(y, np.ndarray) and y.shape[0] == len(test.x)
    rmse_normalised = float(np.sqrt(np.mean((y - test.y) ** 2)))
    assert rmse_normalised == pytest.approx(np.sqrt(forecaster.summary["test_loss"]), rel=1e-4)


def test_predict_refuses_what_rnnrun_predict_refuses(forecaster, tmp_path):
    with pytest.raises(ConfigError, match=r"--steps must be an integer in \[1, "):
        forecaster.predict(AIRLINE, steps=0)
    sine = train(cell="gru", data=SINE, epochs=1, runs_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="is on dataset 'sine', which does not predict from files; predict works for"):
        sine.predict(AIRLINE)


def test_resume_trains_on_as_rnnrun_resume_does_and_refuses_as_it_does(tmp_path):
    run = train(cell="gru", data=SINE, epochs=2, seed=3, runs_dir=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="has finished its 2 epochs; to train further give a new total"):
        run.resume()
    assert run.resume(epochs=4) is run and len(run.history) == 4
    straight = train(cell="gru", data=SINE, epochs=4, seed=3, runs_dir=str(tmp_path / "b"))
    assert run.summary["test_metric"] == straight.summary["test_metric"]  # as if it had never stopped


def test_plot_returns_the_loss_and_forecast_figure(forecaster, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    backend = matplotlib.get_backend()
    sine = train(cell="gru", data=SINE, epochs=2, runs_dir=str(tmp_path))  # its summary holds a forecast
    figure = sine.plot()
    assert isinstance(figure, matplotlib.figure.Figure) and len(figure.axes) == 2
    assert figure.axes[0].get_ylabel() == "loss" and figure.axes[1].get_xlabel() == "steps ahead"
    assert len(forecaster.plot().axes) == 1  # a forecaster of a CSV file: its loss only
    assert matplotlib.get_backend() == backend  # training and plotting leave a notebook's backend alone


def test_a_run_and_a_list_of_runs_show_as_their_results_tables(forecaster, tmp_path):
    html = forecaster._repr_html_()
    assert "test rmse" in html and "baseline (persistence)" in html and html.startswith("<pre")
    from rich.console import Console
    console = Console(file=io.StringIO(), width=100)
    console.print(forecaster)
    assert "test rmse" in console.file.getvalue()
    runs = train(cell=["rnn", "gru"], data=SINE, epochs=1, runs_dir=str(tmp_path))
    assert "★" in runs._repr_html_() and repr(runs).startswith("[Run(")
    assert repr(forecaster).startswith(f"Run('{forecaster.id}', finished, test rmse ")


def test_load_run_names_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"no run 'nope' in .*; recent runs: none yet"):
        load_run("nope", runs_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="load_run: run must be an id"):
        load_run(3, runs_dir=str(tmp_path))


def test_the_api_is_also_reachable_from_the_package_lazily():
    import tinygrad_rnn
    from tinygrad_rnn.runner import sweep, tune
    assert tinygrad_rnn.train is train and tinygrad_rnn.load_run is load_run
    assert tinygrad_rnn.sweep is sweep and tinygrad_rnn.tune is tune and callable(sweep) and callable(tune)



# ---- sweep and tune ---------------------------------------------------------------------------------------
def test_sweep_returns_its_trials_groups_and_best_as_rnnrun_sweep_json_does(tmp_path):
    from tinygrad_rnn.runner import sweep
    s = sweep(cell=["rnn", "gru"], data=SINE, lr=[1e-2, 3e-3], seeds=2, epochs=1, workers=1,
              runs_dir=str(tmp_path / "api"))
    assert len(s.trials) == 8 and all(isinstance(r, Run) and r.status == "finished" for r in s.trials)
    assert len(s.groups) == 4 and all(len(g["runs"]) == 2 for g in s.groups)
    assert s.best in s.groups and s.best["best"] and s.best["test_metric_mean"] == min(
        g["test_metric_mean"] for g in s.groups)
    assert "Sweep " in s._repr_html_() and "mean ± std over seeds" in s._repr_html_()
    result = rnnrun("sweep", "--cell", "rnn,gru", "--data", SINE, "--lr", "1e-2,3e-3", "--seeds", "2", "--epochs", "1",
                    "--workers", "1", "--json", "--runs-dir", tmp_path / "cli")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    numbers = lambda rows: [(r["settings"], r["test_metric_mean"], r["val_loss_mean"]) for r in rows]  # noqa: E731
    assert numbers(doc["configurations"]) == numbers(s.summary["configurations"])


def test_tune_returns_the_study_with_its_best_run_and_importances(tmp_path):
    pytest.importorskip("optuna")
    from tinygrad_rnn.runner import tune
    study = tune(cell="gru", data=SINE, lr=(1e-3, 1e-1), hidden=[4, 8], trials=3, epochs=1, runs_dir=str(tmp_path),
                 objective="val_loss")
    assert len(study.trials) == 3 and isinstance(study.best, Run) and study.best.status == "finished"
    best = study.summary["best"]
    assert study.best.summary["val_loss"] == best["value"] and study.best.config["hidden"] == best["params"]["hidden"]
    assert set(study.importances) <= {"lr", "hidden"}
    assert "Best trials of study" in study._repr_html_()
    again = tune(cell="gru", data=SINE, lr=(1e-3, 1e-1), hidden=[4, 8], trials=1, epochs=1, runs_dir=str(tmp_path),
                 objective="val_loss")
    assert len(again.trials) == 4 and again.name == study.name  # the same call goes on with the same study


@pytest.mark.parametrize("call, message", [
    (dict(lr=(1e-3,)), r"a range is \(low, high\) or \(low, high, 'log'\|'linear'\)"),
    (dict(lr=(1e-2, 1e-3), random=2), "a range needs LOW < HIGH"),
    (dict(lr=(1e-3, 1e-2)), "is a range: ranges are for --random K"),
    (dict(workers=2, scheduler="tcp://localhost:1"), "--workers is for the local pool"),
    (dict(seeds=0), r"--seeds must be an integer in \[1, 10000\]"),
    (dict(cell=None), "a sweep needs --cell and --data"),
])
def test_sweep_mistakes_are_the_commands_and_make_no_folder(tmp_path, call, message):
    from tinygrad_rnn.runner import sweep
    with pytest.raises(ConfigError, match=message):
        sweep(**{"cell": "gru", "data": SINE, "epochs": 1, **call}, runs_dir=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()

# ---- the snippet of issue 26, as the README shows it, from a plain `python` ------------------------------
ISSUE_LINES = [  # the code of every line of the issue's snippet, as written there
    'from tinygrad_rnn.runner import train, load_run, sweep, tune',
    'run = train(cell="gru", data="sine", epochs=5, seed=1)',
    'runs = train(cell=["rnn", "gru"], data="adding:T=50", seeds=3)',
    'run = load_run("last")',
    'run.id, run.dir, run.status, run.config, run.summary, run.history',
    'run.model',
    'y = run.predict("new_rows.csv", steps=12)',
    'run.resume(epochs=10)',
    's = sweep(cell=["rnn", "gru"], data="sine", lr=[1e-2, 3e-3], seeds=2, workers=2)',
    'study = tune(cell="gru", data="sine", lr=(1e-4, 1e-1), trials=20)',
]


def readme_api_block():
    import re
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.search(r"## From Python.*?```python\n(.*?)```", text, re.S).group(1)


def code_lines(block):
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.split("  #")[0].strip()]


def test_the_readme_and_the_notebook_hold_every_line_of_the_issues_snippet():
    import nbformat
    readme = code_lines(readme_api_block())
    notebook = nbformat.read(os.path.join(ROOT, "examples", "own_data.ipynb"), as_version=4)
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and ISSUE_LINES[-1] in c.source]
    assert cell.source.replace("../plugins/", "plugins/") == readme_api_block().rstrip("\n")
    for line in ISSUE_LINES:
        assert line in readme, f"the README's API snippet lost: {line}"


def prepare_the_readme_snippet(folder):
    """The README's API snippet, then a line that saves what it made, as `python -c` in a folder with the
    repository's plugins/ (for the CSV file the snippet trains on) and new_rows.csv (for its predict)."""
    os.symlink(os.path.join(ROOT, "plugins"), folder / "plugins")
    shutil.copy(AIRLINE, folder / "new_rows.csv")  # new rows with the training file's columns
    snippet = readme_api_block() + (
        "import json\n"
        "json.dump({'run': run.status, 'epochs': len(run.history), 'runs': len(runs), 'y': len(y),\n"
        "           'trials': len(s.trials), 'groups': len(s.groups), 'best': s.best['settings'],\n"
        "           'study_best': study.best.status, 'importances': list(study.importances)},\n"
        "          open('result.json', 'w'))\n")
    # run by `python` as typed at its prompt (python -c: no script file for the workers to import again;
    # a script puts it under `if __name__ == "__main__":`, as the README says)
    return {"args": [sys.executable, "-c", snippet], "env": {**early_jobs.ENVIRON, "OMP_NUM_THREADS": "1"}}


# trains about 40 small models (a minute or two), so it starts when the tests are collected (tests/early_jobs.py)
early_jobs.define("README API snippet", prepare_the_readme_snippet, seconds=50, needs=("optuna",))


@pytest.mark.slow
@pytest.mark.early_job("README API snippet")
def test_the_readmes_api_snippet_runs_as_written_from_a_plain_python():
    """Every line of the issue's snippet, in order, from a plain `python -c`."""
    pytest.importorskip("optuna")  # the snippet's last line tunes (the `tune` extra)
    code, stdout, stderr, folder = early_jobs.result("README API snippet")
    assert code == 0, stderr
    assert stdout == "" and stderr == ""  # nothing printed unless asked
    result = json.loads((folder / "result.json").read_text())
    assert result["run"] == "finished" and result["epochs"] == 10 and result["runs"] == 6 and result["y"] == 12
    assert result["trials"] == 8 and result["groups"] == 4 and result["study_best"] == "finished"
    assert result["importances"] == ["lr"]


def test_a_script_that_sweeps_on_workers_without_the_main_guard_is_told_so_in_one_line(tmp_path):
    (tmp_path / "no_guard.py").write_text(f"from tinygrad_rnn.runner import sweep\n"
                                           f"sweep(cell='gru', data={SINE!r}, epochs=1, seeds=2, workers=2)\n")
    done = subprocess.run([sys.executable, "no_guard.py"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tinygrad_rnn.runner.sweeper.SweepError: a worker process stopped as it started; in a "
                           'script, put the code that calls sweep() under `if __name__ == "__main__":`'), last
