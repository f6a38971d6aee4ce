"""Bad input, files and environments: every case is one line on stderr and the promised exit code.

The rule every case is held to (`assert_clean`): no traceback on stderr; a failure says `Error: ...`
on one line; with --json, stdout is one strict JSON document (no NaN or Infinity); and a command
that fails its checks leaves no run folder behind. Most cases run in-process through click's
CliRunner; the few that need a real terminal encoding, /dev/full or the console script run as
subprocesses. Each case is (argv, expected exit code, a fragment of the error).
"""
import json
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_rnn.runner.cli import cli

from helpers import restored_registry

RNNRUN = shutil.which("rnnrun") or os.path.join(os.path.dirname(sys.executable), "rnnrun")
TRAIN = ["--cell", "gru", "--data", "sine:n_train=40", "--epochs", "1", "--hidden", "4"]


def strict_json(text):
    """json.loads that refuses NaN and Infinity, as every JSON parser but Python's does."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def invoke(args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def assert_clean(result, code, fragment=None, args=()):
    """The rule: the exit code, no traceback, one `Error:` line on failure, strict JSON with --json."""
    stderr = result.stderr
    where = f"{list(args)} -> {result.exit_code}\nstdout: {result.stdout[-2000:]}\nstderr: {stderr[-2000:]}"
    assert result.exit_code == code, where
    assert "Traceback" not in stderr and "Traceback" not in result.stdout, where
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"exception escaped the error path: {result.exception!r}\n{where}")
    if code not in (0, 130):
        errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 or code == 1 and not errors, where
    if fragment:
        assert fragment in stderr.replace("\n", " "), where
    if "--json" in args and code == 0:
        strict_json(result.stdout)


def run_folders(root):
    """Run folders under `root` (the runs dir), sweeps' trials included."""
    found = []
    for folder, _, files in os.walk(root):
        if "config.toml" in files or "sweep.toml" in files:
            found.append(folder)
    return found


# ---- cases that fail their checks: exit 2 and no run folder ------------------------------------------
USAGE = [
    # 8: nothing to do is not success
    (["--data", "sine"], "no cell given"),
    (["--cell", "gru", "--data", "sine", "list"], "not to `rnnrun list`"),
    (["--epochs", "3", "runs"], "not to `rnnrun runs`"),
    # 6: one spec parser for every command
    (["--cell", ",", "--data", "sine"], "--cell needs at least one name"),
    (["--cell", "gru", "--data", "sine:T=5,T=6"], "given twice"),
    (["--cell", "gru:variant=cho,variant=pytorch", "--data", "sine"], "given twice"),
    (["--cell", "gru", "--data", "sine:T=nan"], "finite"),
    (["--cell", "gru", "--data", "sine:T=2.5"], "whole number"),
    (["--cell", "lstm:forget_bias=abc", "--data", "sine"], "must be a number"),
    (["graph", "--cell", "lstm:forget_bias=abc"], "must be a number"),
    (["graph", "--cell", "rnn:nonlinearity=zz"], "nonlinearity"),
    (["graph", "--cell", ","], "unknown cell ','"),
    (["gradcheck", "--cell", "lstm:forget_bias=abc"], "must be a number"),
    (["check", "--cell", "lstm:forget_bias=abc"], "must be a number"),
    (["check", "--data", "sine:T=5,T=6"], "given twice"),
    (["gradcheck", "--cell", ","], "--cell needs at least one name"),
    (["gradcheck", "--cell", "gru", "--hidden", "2000"], "2000 is not in the range"),
    (["gradcheck", "--cell", "lstm", "--hidden", "64", "--layers", "8", "--steps", "100", "--input-size", "64",
      "--bidirectional"], "would take about"),
    (["vanish", "--cell", "rnn:nonlinearity=zz", "--data", "adding:T=5,n_train=8", "--no-plot"], "nonlinearity"),
    # 5: every run of the command is built before the first starts
    (["--cell", "gru,rnn:nonlinearity=zz", "--data", "sine"], "nonlinearity"),
    (["--cell", "gru", "--data", "sine:T=0"], "T (window length)"),
    (["--cell", "gru", "--data", "sine", "--reg", "clip:mode=sideways"], "mode"),
    (["--cell", "gru", "--data", "sine", "--optimizer", "sgd:momentum=-1"], "momentum"),
    (["--cell", "gru", "--data", "sine", "--schedule", "step:step_size=0"], "step_size"),
    (["sweep", "--cell", "gru", "--data", "sine:T=0", "--workers", "1"], "T (window length)"),
    (["sweep", "--cell", "gru,rnn:nonlinearity=zz", "--data", "sine", "--workers", "1"], "nonlinearity"),
    # 3: numbers without bounds or sense
    (["--cell", "gru", "--data", "sine", "--hidden", "1" * 20], "--hidden must be an integer from 1"),
    (["--cell", "gru", "--data", "sine", "--layers", "9" * 20], "--layers must be an integer from 1"),
    (["--cell", "gru", "--data", "sine", "--batch-size", "0"], "--batch-size must be an integer from 1"),
    (["--cell", "gru", "--data", "sine", "--hidden", "100000"], "would need about"),
    (["--cell", "lstm", "--data", "sine:T=1000000000"], "would need about"),
    (["--cell", "gru", "--data", f"sine:n_train={10 ** 13}"], "would need about"),
    (["--cell", "gru", "--data", "sine", "--seed", "-1"], "is not in the range"),
    (["--cell", "gru", "--data", "sine", "--lr", "inf"], "--lr must be a finite number"),
    (["--cell", "gru", "--data", "sine", "--lr", "nan"], "--lr must be a finite number"),
    (["--cell", "gru", "--data", "sine", "--lr", "1e400"], "--lr must be a finite number"),
    (["--cell", "gru", "--data", "sine", "--lr", "-0.1"], "--lr must be a finite number"),
    (["sample", "last", "--temperature", "nan"], "--temperature must be 0"),
    (["sample", "last", "--temperature", "1e-320"], "--temperature must be 0"),
    (["sample", "last", "--length", "1" * 20], "is not in the range"),
    (["forecast", "last", "--steps", "1e20"], "is not a valid integer"),
    (["forecast", "last", "--steps", "1" * 20], "is not in the range"),
    (["graph", "--cell", "gru", "--seed", "-1"], "is not in the range"),
    (["sweep", "--cell", "gru", "--data", "sine", "--lr", "inf"], "must be positive"),
    (["sweep", "--cell", "gru", "--data", "sine", "--hidden", "1" * 20], "'hidden' must be an integer from 1"),
]


@pytest.mark.parametrize("args, fragment", USAGE, ids=[" ".join(a)[:60] for a, _ in USAGE])
def test_a_usage_mistake_is_one_line_exit_2_and_writes_nothing(tmp_path, args, fragment):
    runs = tmp_path / "runs"
    result = invoke(args + ["--runs-dir", runs] if args[0] in ("sweep", "sample", "forecast", "vanish")
                    else ["--runs-dir", runs] + args, env={"RNNRUN_DEBUG": ""})
    assert_clean(result, 2, fragment, args)
    assert run_folders(runs) == []


# ---- 4: config files of the wrong shape go through the flags' schema ----------------------------------
CONFIGS = [
    ('cell = "gru"\ndata = "sine"\ndata_options = "n_train=100"', "'data_options' must be a table"),
    ('cell = "gru"\ndata = "sine"\nregularisers = "clip"', "'regularisers' must be a list of tables"),
    ('cell = "gru"\ndata = "sine"\nregularisers = [{options = {}}]', "'regularisers' must be a list of tables"),
    ('cell = "gru"\ndata = "sine"\nbidirectional = 3', "'bidirectional' must be true or false, got 3"),
    ('cell = "gru"\ndata = "sine"\nfused = "yes"', "'fused' must be true or false"),
    ('cell = "gru"\ndata = "sine"\nhidden = 9223372036854775807', "'hidden' must be an integer from 1"),
    ('cell = "gru"\ndata = "sine"\nlr = nan', "'lr' must be a finite number"),
    ('cell = "gru"\ndata = "sine"\nhiden = 8', "unknown key 'hiden' (did you mean 'hidden'?)"),
    ('cell = "gru"\ndata = "sine"\ncell_options = {variant = 3}', "unknown variant 3"),
    ('cell = 3\ndata = "sine"', "'cell' must be a name"),
    ('data = "sine"', "no cell given"),
    ('cell = "mgu_nowhere"\ndata = "sine"', "if it comes from a plugin, load it with --plugin"),
    ('cell = "gru"\ndata = "sine"\nplugins = ["/no/such/plugin.py"]', "plugin file not found"),
    ('cell = "gru"\ndata = "sine"\n[[', "not valid TOML"),
]


@pytest.mark.parametrize("text, fragment", CONFIGS, ids=[f[:40] for _, f in CONFIGS])
def test_a_config_file_of_the_wrong_shape_names_key_type_and_value(tmp_path, text, fragment):
    path = tmp_path / "config.toml"
    path.write_text(text)
    result = invoke(["--config", path, "--runs-dir", tmp_path / "runs"])
    assert_clean(result, 2, fragment)
    assert run_folders(tmp_path / "runs") == []


# ---- 2: the file system ------------------------------------------------------------------------------
def test_paths_that_cannot_be_used_are_refused_before_anything_runs(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    cases = [
        (["--runs-dir", a_file] + TRAIN, "is not a folder"),
        (["--runs-dir", a_file / "below"] + TRAIN, "which is not a folder"),
        (["--config", tmp_path], "is a directory"),
        (["--config", binary], "not"),
        (["graph", "--cell", "rnn", "--dot", tmp_path], "is a folder"),
        (["graph", "--cell", "rnn", "--dot", tmp_path / "missing" / "g.dot"], "does not exist"),
        (["vanish", "--cell", "rnn", "--data", "adding:T=5,n_train=8", "--epochs", "0", "--plot",
          tmp_path / "v.xyz"], "unknown image format 'xyz'"),
        (["vanish", "--cell", "rnn", "--data", "adding:T=5,n_train=8", "--epochs", "0", "--plot",
          tmp_path / "missing" / "v.png"], "does not exist"),
        (["sweep", "--cell", "gru", "--data", "sine", "--runs-dir", a_file], "is not a folder"),
    ]
    for args, fragment in cases:
        assert_clean(invoke(args), 2, fragment, args)


RUNS_DIR_COMMANDS = [  # (args, whether the command writes into the runs dir)
    (["runs"], False), (["show", "last"], False), (["compare", "a", "b"], False), (["resume", "last"], False),
    (TRAIN, True), (["sweep", "--cell", "gru", "--data", "sine", "--lr", "1e-3,1e-2"], True),
    pytest.param(["tune", "--cell", "gru", "--data", "sine", "--lr", "1e-3:1e-2"], True,
                 marks=pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="needs the tune extra")),
    (["vanish", "--cell", "rnn", "--data", "adding:T=5,n_train=8", "--epochs", "0"], True),
]


@pytest.mark.parametrize("args, writes", RUNS_DIR_COMMANDS,
                         ids=[(case.values if hasattr(case, "values") else case)[0][0] for case in RUNS_DIR_COMMANDS])
def test_a_runs_dir_that_cannot_be_used_is_refused_up_front_by_every_command(tmp_path, args, writes):
    """A file, /dev/null, a name no file system takes, '' and (for commands that write) /proc: exit 2
    naming --runs-dir, before anything is computed or created."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [(a_file, "is not a folder"), (a_file / "below", "which is not a folder"), ("/dev/null", "is not a folder"),
             ("", "--runs-dir is empty"),
             (tmp_path / ("r" * 300), "File name too long")]
    if writes and os.path.isdir("/proc/self"):
        cases.append(("/proc/x", "is not writable"))
    for runs_dir, fragment in cases:
        flags = ["--runs-dir", runs_dir]
        result = invoke(args + flags if args[0] in ("sweep", "tune", "vanish", "runs", "show", "compare", "resume")
                        else flags + args)
        assert_clean(result, 2, fragment, [*args, runs_dir])
        assert "--runs-dir" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_runs_dir_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_clean(invoke(["--runs-dir", locked / "runs"] + TRAIN), 2, "not writable")
    finally:
        locked.chmod(0o700)


# ---- runs that exist: show, forecast, compare --------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A runs folder with a finished sine run (rmse) and a finished agreement run (accuracy)."""
    root = tmp_path_factory.mktemp("runs")
    for args in (TRAIN, ["--cell", "gru", "--data", "agreement:T=6,n_train=40", "--epochs", "1", "--hidden", "4"]):
        result = invoke(args + ["--runs-dir", root, "--quiet"])
        assert result.exit_code == 0, result.output
    return root


RESUME_EPOCHS = ["0", "-1", str(10 ** 7), "1" * 20]


@pytest.mark.parametrize("epochs", RESUME_EPOCHS)
def test_resume_epochs_has_the_bound_and_message_of_training_epochs(store, epochs):
    """`rnnrun resume RUN --epochs N` and `rnnrun --epochs N` are held to the same schema entry."""
    expected = "--epochs must be an integer from 1 to 1000000"
    assert_clean(invoke([*TRAIN[:4], "--epochs", epochs, "--runs-dir", store]), 2, expected)
    before = {p: p.stat().st_mtime for p in store.rglob("*")}
    assert_clean(invoke(["resume", "last", "--epochs", epochs, "--runs-dir", store]), 2, expected)
    assert {p: p.stat().st_mtime for p in store.rglob("*")} == before  # refused before anything is written


def test_json_is_strict_even_for_a_run_with_infinite_losses(store, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(store, copy)
    run = sorted(p for p in copy.iterdir() if "-sine" in p.name)[0]
    summary = json.loads((run / "summary.json").read_text())
    summary.update(val_loss=float("inf"), train_loss=float("nan"))
    (run / "summary.json").write_text(json.dumps(summary))
    result = invoke(["show", run.name, "--json", "--runs-dir", copy])
    assert_clean(result, 0, args=["--json"])
    doc = strict_json(result.stdout)
    assert doc["summary"]["val_loss"] is None and doc["summary"]["train_loss"] is None
    assert "written as null" in result.stderr


def test_forecast_json_is_strict_and_a_diverged_model_fails(store, tmp_path):
    run = sorted(p.name for p in store.iterdir() if "-sine" in p.name)[0]
    result = invoke(["forecast", run, "--steps", "5", "--json", "--runs-dir", store])
    assert_clean(result, 0, args=["--json"])
    assert len(strict_json(result.stdout)["predictions"]) == 5
    copy = tmp_path / "runs"
    shutil.copytree(store, copy)
    weights = dict(np.load(copy / run / "model.npz"))
    np.savez(copy / run / "model.npz", **{k: np.full_like(v, np.nan) for k, v in weights.items()})
    result = invoke(["forecast", run, "--steps", "5", "--json", "--runs-dir", copy])
    assert_clean(result, 1, "not finite")
    assert result.stdout == ""


def test_compare_across_metrics_puts_each_metric_in_its_own_table(store):
    ids = sorted(p.name for p in store.iterdir() if (p / "config.toml").exists())
    result = invoke(["compare", *ids, "--runs-dir", store])
    assert_clean(result, 0)
    assert "Comparison on sine (rmse)" in result.stdout and "Comparison on agreement (accuracy)" in result.stdout
    assert "★" not in result.stdout  # one run per metric: nothing to rank


def test_a_plot_that_cannot_be_written_still_prints_the_forecast(store, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(store, copy)
    run = sorted(p for p in copy.iterdir() if "-sine" in p.name)[0]
    (run / "forecast-3-data.png").mkdir()  # where the plot would go: as unwritable as a read-only folder
    result = invoke(["forecast", run.name, "--steps", "3", "--runs-dir", copy])
    assert_clean(result, 0)
    assert "prediction" in result.stdout and "plot not written" in result.stderr


def test_a_diverged_run_prints_strict_json_and_exits_1(tmp_path):
    result = invoke(["--cell", "rnn:nonlinearity=relu", "--data", "sine:n_train=40", "--optimizer", "sgd", "--lr",
                     "1e6", "--epochs", "3", "--hidden", "16", "--runs-dir", tmp_path, "--json"])
    assert_clean(result, 1)
    doc = strict_json(result.stdout)
    assert doc["status"] == "diverged"


# ---- 8, 9: plugins -------------------------------------------------------------------------------------
PLUGIN = '''
import numpy as np
from tinygrad_rnn import Tensor, register_cell
from tinygrad_rnn.nn import Module, uniform_parameter


class Base(Module):
    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.weight = uniform_parameter((hidden_size, input_size), 0.1)

    def initial_state(self, batch_size):
        return (Tensor(np.zeros((batch_size, self.hidden_size), np.float32)),)

    def forward(self, x, state):
        h = (x @ self.weight.T).tanh()
        return h, (h,)


@register_cell("{prefix}_good")
class Good(Base):
    """A cell that works."""


@register_cell("{prefix}_boom")
class Boom(Base):
    def forward(self, x, state):
        raise ValueError("boom in forward")


@register_cell("{prefix}_stateless")
class Stateless(Module):
    def __init__(self, input_size, hidden_size):
        self.weight = uniform_parameter((hidden_size, input_size), 0.1)

    def forward(self, x, state):
        return x, state


@register_cell("{prefix}_shape")
class WrongShape(Base):
    def forward(self, x, state):
        return x, state


@register_cell("{prefix}_noisy")
class Noisy(Base):
    """Prints, as plugins under development do: never onto a --json document."""
    def forward(self, x, state):
        print("debugging print from forward")
        return super().forward(x, state)


print("debugging print on import")


@register_cell("{prefix}_late")
class Late(Base):
    """Fine on one sequence (the pre-run check), broken on a batch: fails inside training."""
    def forward(self, x, state):
        if x.shape[0] > 1:
            raise RuntimeError("late failure")
        return super().forward(x, state)
'''


@pytest.fixture
def plugin(tmp_path, request):
    prefix = request.node.name.split("[")[0][-12:].replace("-", "_")
    path = tmp_path / f"cells_{prefix}.py"
    path.write_text(textwrap.dedent(PLUGIN).replace("{prefix}", prefix))
    with restored_registry():
        yield str(path), prefix


def test_a_broken_plugin_cell_is_one_line_naming_its_file_and_debug_shows_the_traceback(plugin, tmp_path):
    path, prefix = plugin
    data = ["--data", "sine:n_train=40", "--epochs", "1", "--hidden", "4", "--runs-dir", tmp_path / "runs"]
    source = open(path).read().splitlines()
    lines = {"boom": source.index('        raise ValueError("boom in forward")') + 1,
             "stateless": source.index(f'@register_cell("{prefix}_stateless")') + 1,
             "shape": source.index('class WrongShape(Base):') + 2}
    for cell, fragment in ((f"{prefix}_boom", "boom in forward"), (f"{prefix}_stateless", "initial_state"),
                           (f"{prefix}_shape", "expected (hidden_size,)")):
        result = invoke(["--plugin", path, "--cell", cell, *data])
        assert_clean(result, 2, fragment)
        line = lines[cell.rsplit("_", 1)[1]]
        assert f"{path} line {line}" in result.stderr  # the plugin's file and line, as the README promises
        assert result.stderr.count("\n") == 1 and "CompileWarning" not in result.stderr, result.stderr
        commands = (["graph"], ["gradcheck"], ["vanish", "--data", "adding:T=5,n_train=8", "--no-plot"])
        for command in commands if not cell.endswith("_shape") else ():  # their input size is the hidden size
            result = invoke([*command, "--plugin", path, "--cell", cell])
            assert_clean(result, 2, fragment)
            assert os.path.basename(path) in result.stderr
    assert run_folders(tmp_path / "runs") == []
    for before, after, env in ((["--debug"], [], None), ([], ["--debug"], None), ([], [], {"RNNRUN_DEBUG": "1"})):
        result = invoke([*before, "graph", "--plugin", path, "--cell", f"{prefix}_boom", *after], env=env)
        assert result.exit_code == 2 and "Traceback" in result.stderr and "boom in forward" in result.stderr


def test_check_names_the_plugin_for_a_cell_without_initial_state_and_a_file_that_is_not_python(plugin, tmp_path):
    path, prefix = plugin
    result = invoke(["check", "--plugin", path, "--cell", f"{prefix}_stateless"])
    assert_clean(result, 2, "has no initial_state(batch_size) method")
    assert path in result.stderr and "internal error" not in result.stderr
    text = tmp_path / "not_python.txt"
    text.write_text("hello\n")
    assert_clean(invoke(["check", "--plugin", text]), 2, "is not a Python file")


@pytest.mark.parametrize("command", [["check", "--cell", "{prefix}_noisy"],
                                     ["--cell", "{prefix}_noisy", *TRAIN[2:]]])
def test_json_stays_strict_when_a_plugin_prints(plugin, tmp_path, command):
    """stdout holds the JSON document alone; the plugin's prints go to stderr."""
    path, prefix = plugin
    args = ["--runs-dir", tmp_path / "runs", "--plugin", path, *[a.replace("{prefix}", prefix) for a in command],
            "--json"]
    result = invoke(args)
    assert result.exit_code in (0, 1) and "Traceback" not in result.stderr, result.stderr  # check: 1 if a check fails
    strict_json(result.stdout)
    assert "debugging print" not in result.stdout and "debugging print" in result.stderr


def test_a_plugin_that_fails_during_training_is_one_line_and_exit_1(plugin, tmp_path):
    path, prefix = plugin
    result = invoke(["--plugin", path, "--cell", f"{prefix}_late", "--data", "sine:n_train=40", "--epochs", "1",
                     "--hidden", "4", "--runs-dir", tmp_path / "runs", "--quiet"])
    assert_clean(result, 1, "late failure")
    assert "plugin" in result.stderr and os.path.basename(path) in result.stderr


def test_a_plugin_that_exits_on_import_is_an_error_not_success(tmp_path):
    path = tmp_path / "quitter.py"
    path.write_text("import sys\nsys.exit(0)\n")
    assert_clean(invoke(["--plugin", path, "list"]), 2, "sys.exit(0)")


def test_a_runs_config_names_its_plugins_and_they_load_again(plugin, tmp_path):
    path, prefix = plugin
    config = tmp_path / "config.toml"
    config.write_text(f'cell = "gru"\ndata = "sine"\nplugins = ["{path}"]\nepochs = 1\nhidden = 2\n'
                      'data_options = {n_train = 8}\n')
    result = invoke(["--config", config, "--cell", f"{prefix}_good", "--runs-dir",
                     tmp_path / "runs", "--json"])
    assert_clean(result, 0, args=["--json"])
    run = os.path.basename(strict_json(result.stdout)["run_dir"])
    assert path in (tmp_path / "runs" / run / "config.toml").read_text()
    result = invoke(["forecast", run, "--steps", "2", "--json", "--runs-dir", tmp_path / "runs"])
    assert_clean(result, 0, args=["--json"])


def test_resume_loads_the_plugins_a_run_recorded_and_names_a_moved_file(plugin, tmp_path):
    """A run of a plugin's cell resumes without --plugin; when the recorded file has moved, resume and
    forecast say which file is gone and to pass --plugin, and resume runs once it is passed."""
    path, prefix = plugin
    runs = tmp_path / "runs"
    result = invoke(["--plugin", path, "--cell", f"{prefix}_good", "--data", "sine:n_train=8", "--epochs", "1",
                     "--hidden", "2", "--runs-dir", runs, "--quiet"])
    assert_clean(result, 0)
    moved = tmp_path / "moved" / os.path.basename(path)
    cases = [  # (the step, args, exit code, what stderr says)
        ("recorded", ["resume", "last", "--epochs", "2", "--quiet"], 0, None),
        ("move", None, None, None),
        ("gone", ["resume", "last", "--epochs", "3"], 2, f"plugin file not found: {path}"),
        ("gone", ["forecast", "last", "--steps", "2"], 2, "if it has moved, pass it with --plugin FILE"),
        ("moved", ["resume", "last", "--epochs", "3", "--quiet", "--plugin", moved], 0, None),
        ("moved", ["--plugin", moved, "resume", "last", "--epochs", "4", "--quiet"], 0, None),
    ]
    for step, args, code, fragment in cases:
        if step == "move":
            moved.parent.mkdir()
            os.rename(path, moved)
            continue
        assert_clean(invoke(args + ["--runs-dir", runs]), code, fragment, args)
    rows = (next(runs.iterdir()) / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == 4 and len(run_folders(runs)) == 1  # one run, trained on to 4 epochs in its own folder


# ---- the environment: real processes --------------------------------------------------------------------
def subprocess_rnnrun(args, env=None, stdout=subprocess.PIPE):
    return subprocess.run([RNNRUN, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0",
                                                                  "PYTHONUTF8": "0", "LANG": "C"}])
def test_output_survives_a_terminal_that_cannot_encode_it(store, env):
    run = sorted(p.name for p in store.iterdir() if "-sine" in p.name)[0]
    result = subprocess_rnnrun(["show", run, "--runs-dir", store], env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "config" in result.stdout


def test_output_to_a_full_disk_is_one_line_and_exit_1():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = subprocess_rnnrun(["list"], stdout=full)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == ["Error: cannot write the output: No space left on device"]


# ---- 12: what happens around the commands: warnings, a reader that goes away ---------------------------
def test_a_numpy_warning_is_one_line_naming_where_it_came_from(tmp_path):
    path = tmp_path / "overflowing.py"
    path.write_text("import numpy as np\nnp.multiply(np.float64(1e300), 1e300)\n")
    result = invoke(["--plugin", path, "list"])
    assert_clean(result, 0)
    warned = [line for line in result.stderr.splitlines() if line.strip()]
    assert warned == [f"warning: overflow encountered in multiply (RuntimeWarning, {path} line 2)"], result.stderr


@pytest.mark.parametrize("args", [["list"], ["list", "--json"]])
def test_a_reader_that_goes_away_ends_rnnrun_quietly_as_sigpipe_would(args):
    """`rnnrun list | head -0`: no message, status 141 (128 + SIGPIPE), as cat or git give."""
    proc = subprocess.Popen([RNNRUN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141 and err == "", err


def test_the_memory_estimate_counts_no_batch_larger_than_the_dataset():
    from tinygrad_rnn.registry import datasets
    from tinygrad_rnn.runner.experiment import estimate_memory, resolve
    config = resolve({"cell": "gru", "data": "sine", "data_options": {"n_train": 100}, "batch_size": 10 ** 6})
    dataset = datasets.get("sine")(seed=0, n_train=100)
    assert estimate_memory(config, dataset) == estimate_memory({**config, "batch_size": 100}, dataset)
    assert estimate_memory(config, dataset)["total"] < 2 ** 30


# ---- issue 29 items 3 and 11: predict's --steps is bounded, and its --input is checked like training's ----
@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A runs folder with one finished csv forecaster, and the file it was trained on."""
    root = tmp_path_factory.mktemp("csvruns")
    data = root / "monthly.csv"
    data.write_text("month,y\n" + "".join(f"{2000 + m // 12}-{m % 12 + 1:02d},{10 + m % 7}\n" for m in range(60)))
    result = invoke(["--cell", "gru", "--data", f"csv:path={data},target=y,time=month,window=6", "--epochs", "1",
                     "--hidden", "4", "--quiet", "--runs-dir", root])
    assert result.exit_code == 0, result.output
    return root, data


def test_predict_steps_has_the_bound_of_forecast_steps(csv_run):
    root, data = csv_run
    for steps in ("0", "-3", "1000001", "9223372036854775808", "1" * 30):
        assert_clean(invoke(["predict", "last", "--input", data, "--steps", steps, "--runs-dir", root]), 2,
                     "is not in the range 1<=x<=1000000", ["--steps", steps])
    assert_clean(invoke(["predict", "last", "--input", data, "--steps", "1e3", "--runs-dir", root]), 2,
                 "is not a valid integer")


def test_predict_input_that_cannot_be_read_is_exit_2_as_in_training(csv_run, tmp_path):
    root, data = csv_run
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"month,y\n\xff\xfe,1\n")
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text(data.read_text().replace("2001-03,", '2001-03,"', 1))
    cases = [(tmp_path / "missing.csv", "no such file"), (tmp_path, "is a folder, not a file"),
             (binary, "is not UTF-8 text"), (unclosed, "line 16: a quote opened and not closed")]
    for path, fragment in cases:
        args = ["predict", "last", "--input", path, "--runs-dir", root]
        assert_clean(invoke(args), 2, fragment, args)
    args = ["predict", "last", "--input", data, "--split", "test", "--runs-dir", root]
    assert_clean(invoke(args), 2, "--split picks a classification file's series", args)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_predict_input_without_read_permission_is_exit_2(csv_run, tmp_path):
    root, data = csv_run
    locked = tmp_path / "locked.csv"
    shutil.copy(data, locked)
    locked.chmod(0o000)
    try:
        assert_clean(invoke(["predict", "last", "--input", locked, "--runs-dir", root]), 2, "cannot read")
    finally:
        locked.chmod(0o600)


def test_reading_a_file_without_permission_is_a_config_error(tmp_path, monkeypatch):
    """The same as the test above for root, who may read anything: open() made to refuse."""
    from tinygrad_rnn import ConfigError
    from tinygrad_rnn.data import read_table
    import builtins
    real_open = builtins.open

    def refusing(path, *args, **kwargs):
        if str(path).endswith("locked.csv"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", refusing)
    with pytest.raises(ConfigError, match="cannot read .*locked.csv: Permission denied"):
        read_table(str(tmp_path / "locked.csv"))
