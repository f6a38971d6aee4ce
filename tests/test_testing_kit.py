"""The conformance kit (`tinygrad_rnn.testing`, `rnnrun check`): every built-in plugin passes it, and it
catches what it says it catches.

The built-in suite is parametrised over the registry, so a new built-in plugin is checked without a
new test. Datasets run at the small sizes of helpers.SMALL.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import SMALL, restored_registry, rnnrun
from tinygrad_rnn import ConfigError, Regulariser, load_plugin
from tinygrad_rnn.optim import Optimizer
from tinygrad_rnn.registry import BUILTIN_PACKAGE, cells, datasets, optimizers, regularisers
from tinygrad_rnn.runner.cli import cli
from tinygrad_rnn.testing import (check_cell, check_dataset, check_optimizer, check_regulariser,
                                  parametrize_with_checks, plugin_checks, run_checks)

HERE = os.path.dirname(os.path.abspath(__file__))
with restored_registry():  # the broken plugins' names are not left in the registry for other tests
    broken_plugins = load_plugin(os.path.join(HERE, "broken_plugins.py"))
README = os.path.join(HERE, os.pardir, "README.md")
# the regularisers' options that make them act on the kit's 6-step sequences
REG_OPTIONS = {"tbptt": {"k": 2}}


def builtins():
    """Every plugin shipped in plugins/, with the options that keep it small."""
    def shipped(registry, options=None):
        return [(registry.get(n), (options or {}).get(n, {})) for n in registry.names()
                if registry.get(n).__module__.startswith(BUILTIN_PACKAGE)]
    small = {n: {k: v for k, v in SMALL.get(n, {}).items() if k in datasets.options(n)} for n in datasets.names()}
    return shipped(cells) + shipped(datasets, small) + shipped(regularisers, REG_OPTIONS) + shipped(optimizers)


@pytest.mark.filterwarnings("error::tinygrad_rnn.testing.PluginCheckWarning")
@parametrize_with_checks(builtins())
def test_every_builtin_plugin_passes_the_kit(check):
    check()


# ---- the four defects of the issue, each caught by the check named for it ------------------------
@pytest.mark.parametrize("plugin, run, check", [
    (broken_plugins.WrongBackward, check_cell, "gradients_match_finite_differences"),
    (broken_plugins.WrongSequence, check_cell, "sequence_matches_step_by_step"),
    (broken_plugins.LeakyRamp, check_dataset, "no_sequence_in_two_splits"),
    (broken_plugins.SeedlessRamp, check_dataset, "seed_changes_the_data"),
])
def test_a_broken_plugin_fails_exactly_the_check_named_for_its_defect(plugin, run, check):
    with pytest.raises(AssertionError, match=rf"1 of \d+ checks failed:\n  {check}: .*expected"):
        run(plugin)
    assert [r.check for r in run_checks(plugin) if r.status == "fail"] == [check]


def test_each_check_is_a_named_callable_whose_failure_names_plugin_and_check():
    checks = dict(plugin_checks(broken_plugins.WrongSequence))
    checks["constructor"]()  # passes: returns
    with pytest.raises(AssertionError, match=r"^broken_sequence: sequence_matches_step_by_step: without a mask: "
                                             r"sequence\(\) outputs versus the step-by-step unroll: expected"):
        checks["sequence_matches_step_by_step"]()


def test_options_a_plugin_refuses_are_a_config_error_before_any_check():
    with pytest.raises(ConfigError, match="ramp"):
        check_dataset(broken_plugins.Ramp, T=1)


def test_an_option_value_that_crashes_instead_of_a_config_error_fails():
    class Unchecked(broken_plugins.Ramp):
        """A ramp that does not check n."""
        def __init__(self, seed=0, T=10, n=200):
            super().__init__(seed, T, max(n, 10))
            self.n = n
    failed = {r.check: r.reason for r in run_checks(Unchecked) if r.status == "fail"}
    assert list(failed) == ["bad_options_raise_config_error"]
    assert failed["bad_options_raise_config_error"].startswith("option n=-1: expected a ConfigError")


# ---- regulariser and optimiser checks can fail too --------------------------------------------------
class MeddlingMonitor(Regulariser):
    """Claims to only watch (on_epoch_end), but shrinks the weights."""

    def on_epoch_end(self, trainer, metrics):
        for p in trainer.model.parameters():
            p.data *= 0.5


class UndeclaredCounter(Regulariser):
    """Counts an event it does not declare."""

    def after_step(self, trainer):
        trainer.count("stepped")


class ForgetfulMonitor(Regulariser):
    """Keeps a count, but load_state_dict ignores what it is given."""

    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, trainer, metrics):
        self.epochs += 1

    def state_dict(self):
        return {"epochs": self.epochs}


@pytest.mark.parametrize("plugin, check", [(MeddlingMonitor, "watching_changes_nothing"),
                                           (UndeclaredCounter, "declares_its_counters"),
                                           (ForgetfulMonitor, "state_dict_round_trip")])
def test_a_broken_regulariser_fails_the_check_named_for_its_defect(plugin, check):
    with pytest.raises(AssertionError, match=f"  {check}: .*expected"):
        check_regulariser(plugin)


class CachedLR(Optimizer):
    """Plain SGD that reads lr once, so a schedule cannot change it."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, lr)
        self.step_size = lr

    def update(self, p, grad, state):
        p.data -= self.step_size * grad


class NoisyMomentum(Optimizer):
    """Momentum whose buffer starts at ones: it moves weights with a zero gradient, and its state is lost."""

    def update(self, p, grad, state):
        state.setdefault("buffer", np.ones_like(p.data))
        state["buffer"] = 0.9 * state["buffer"] + grad
        p.data -= self.lr * state["buffer"]

    def state_dict(self):
        return {"lr": self.lr, "state": [{} for _ in self.params]}


def test_broken_optimisers_fail_the_checks_named_for_their_defects():
    with pytest.raises(AssertionError, match="  respects_lr: .*setting optimizer.lr"):
        check_optimizer(CachedLR)
    failed = [r.check for r in run_checks(NoisyMomentum) if r.status == "fail"]
    assert failed == ["state_dict_round_trip", "zero_gradient_moves_nothing"]


# ---- rnnrun check --------------------------------------------------------------------------------
def test_the_readme_example_plugins_pass_rnnrun_check(tmp_path, fresh_registry):
    source = re.search(r"```python\n(# my_plugins.py\n.*?)```", open(README).read(), re.S).group(1)
    (tmp_path / "my_plugins.py").write_text(source)
    result = rnnrun("check", "--plugin", str(tmp_path / "my_plugins.py"), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["kind"], r["plugin"]) for r in rows} == {("cell", "mgu"), ("dataset", "ramp"), ("regulariser", "noise")}
    assert {r["status"] for r in rows} <= {"pass", "skip"}


def test_rnnrun_check_names_each_broken_plugin_and_its_check_and_exits_1(fresh_registry):
    result = rnnrun("check", "--plugin", os.path.join(HERE, "broken_plugins.py"))
    assert result.exit_code == 1
    assert re.search(r"\b4 of \d+ checks fail", result.stdout)
    for plugin, check in (("broken_backward", "gradients_match_finite_differences"),
                          ("broken_sequence", "sequence_matches_step_by_step"),
                          ("broken_leaky", "no_sequence_in_two_splits"), ("broken_seedless", "seed_changes_the_data")):
        assert f"{plugin} {check}" in " ".join(result.stdout.split())


def test_rnnrun_check_of_named_plugins_with_options(fresh_registry):
    result = rnnrun("check", "--cell", "rnn:nonlinearity=relu", "--reg", "clip:0.5", "--json")
    assert result.exit_code == 0, result.output
    assert {r["plugin"] for r in json.loads(result.stdout)} == {"rnn", "clip"}


@pytest.mark.parametrize("args, message", [
    ((), "name what to check"),
    (("--cell", "nope"), "unknown cell 'nope'"),
    (("--data", "sine:T=1"), "option T"),
    (("--reg", "clip:wobble=1"), "unknown option 'wobble'"),
])
def test_rnnrun_check_usage_errors_exit_2_with_one_line(args, message):
    result = CliRunner().invoke(cli, ["check", *args], prog_name="rnnrun")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_the_docs_three_line_pytest_file_runs_the_kit_on_the_readme_plugins(tmp_path):
    """docs/04-plugins.md's test file, beside the README's my_plugins.py, passes under pytest."""
    docs = open(os.path.join(HERE, os.pardir, "docs", "04-plugins.md")).read()
    test_file = re.search(r"```python\n(# test_my_plugins.py\n.*?)```", docs, re.S).group(1)
    plugins = re.search(r"```python\n(# my_plugins.py\n.*?)```", open(README).read(), re.S).group(1)
    (tmp_path / "test_my_plugins.py").write_text(test_file)
    (tmp_path / "my_plugins.py").write_text(plugins)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b\d+ passed, \d+ skipped\b", done.stdout) and "failed" not in done.stdout, done.stdout


def test_running_the_checks_leaves_the_package_random_stream_where_it_was():
    from tinygrad_rnn.random import generator, manual_seed
    manual_seed(3)
    expected = generator().random(3)
    manual_seed(3)
    run_checks(broken_plugins.Ramp)
    np.testing.assert_array_equal(generator().random(3), expected)


SCALED_CELL = '''
from tinygrad_rnn import Tensor, register_cell
from tinygrad_rnn.nn import Module, uniform_parameter


@register_cell("scaled")
class Scaled(Module):
    """h = tanh(scale * (W_ih x + W_hh h)): `scale` is a plain attribute the traced step bakes in."""

    def __init__(self, input_size, hidden_size, scale=1.0):
        self.hidden_size, self.scale = hidden_size, scale
        self.weight_ih = uniform_parameter((hidden_size, input_size), 0.5)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), 0.5)

    def initial_state(self, batch_size):
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=self.weight_hh.dtype).to(self.weight_hh.backend),)

    def forward(self, x, state):
        h = ((x @ self.weight_ih.T + state[0] @ self.weight_hh.T) * self.scale).tanh()
        return h, (h,)
'''


def test_rnnrun_check_fails_a_cell_whose_compiled_path_replays_a_stale_constant(tmp_path, fresh_registry, monkeypatch):
    """With the tape's watch on plain attributes switched off (the bug of issue 27), the kit catches it."""
    import tinygrad_rnn.tape as tape
    (tmp_path / "scaled.py").write_text(SCALED_CELL)
    assert rnnrun("check", "--plugin", str(tmp_path / "scaled.py")).exit_code == 0
    monkeypatch.setattr(tape, "plain_state", lambda cell: ())
    monkeypatch.setattr(tape, "still_holds", lambda *args: True)
    result = rnnrun("check", "--plugin", str(tmp_path / "scaled.py"))
    assert result.exit_code == 1
    assert "scaled compiled_matches_step_by_step" in " ".join(result.stdout.split())
    rows = json.loads(rnnrun("check", "--plugin", str(tmp_path / "scaled.py"), "--json").stdout)
    failed = [row for row in (rows["results"] if isinstance(rows, dict) else rows) if row["status"] == "fail"]
    assert [row["check"] for row in failed] == ["compiled_matches_step_by_step"]
    assert "after scale = 1.0 was changed to 0.75" in failed[0]["reason"]


RAISING_CELL = '''from tinygrad_rnn import Tensor, register_cell
from tinygrad_rnn.nn import Module, uniform_parameter
{at_import}

@register_cell("raising")
class Raising(Module):
    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.weight = uniform_parameter((hidden_size, input_size), 0.5)
        {in_init}

    def initial_state(self, batch_size):
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=self.weight.dtype).to(self.weight.backend),)

    def forward(self, x, state):
        {in_forward}
        return state[0], state
'''


@pytest.mark.parametrize("where, line", [("at_import", 3), ("in_init", 10), ("in_forward", 16)])
def test_rnnrun_check_names_the_file_and_line_where_a_plugin_raises(tmp_path, fresh_registry, where, line):
    """As training names them: a plugin that raises is named with its file and the line that raised."""
    fill = {"at_import": "", "in_init": "pass", "in_forward": "pass"}
    fill[where] = 'raise RuntimeError("boom")'
    plugin = tmp_path / "raising_cell.py"
    plugin.write_text(RAISING_CELL.format(**fill))
    assert plugin.read_text().splitlines()[line - 1].strip() == 'raise RuntimeError("boom")'
    result = rnnrun("check", "--plugin", plugin, "--json")
    if where == "in_forward":  # each check that runs forward fails, and says where
        assert result.exit_code == 1
        failed = [r for r in json.loads(result.stdout) if r["status"] == "fail"]
        assert failed and all(r["reason"].endswith(f"raised RuntimeError: boom ({plugin} line {line})")
                              for r in failed), failed
    else:  # the plugin cannot be built: one line
        assert result.exit_code in (1, 2) and "Traceback" not in result.stderr
        said = result.stderr.strip()
        assert len(said.splitlines()) == 1 and "raising_cell.py" in said and f"(line {line})" in said, said
