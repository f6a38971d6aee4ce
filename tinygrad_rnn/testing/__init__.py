"""`tinygrad_rnn.testing`: the checks that hold every plugin to its protocol, built-in and third-party alike.

After scikit-learn's `check_estimator` and `parametrize_with_checks`. Each check is a small named
function; a failure is an AssertionError naming the plugin and the check, what was expected and what
came out; a convention not followed is a `PluginCheckWarning`; a check that does not apply (a cell
without `sequence()`) is skipped.

    from tinygrad_rnn.testing import check_cell, check_dataset, plugin_checks, parametrize_with_checks

    check_cell(MyCell)                       # runs every cell check; raises AssertionError on failure
    check_dataset(MyData, n=200)             # options make it small
    check_logger(MyLogger)                   # hooks driven through a 3-epoch run and a 2-trial sweep
    plugin_checks(MyCell)                    # [(name, callable), ...], one callable per check

    @parametrize_with_checks([MyCell, MyData, (MyReg, {"std": 0.1})])
    def test_my_plugins(check):              # one pytest test per plugin and check
        check()

`rnnrun check --plugin my_plugins.py` runs the same checks and prints them as a table.
"""
import inspect

from ..data import Dataset
from ..logger import Logger
from ..optim import Optimizer
from ..regulariser import Regularizer
from . import cells, datasets, loggers, optimizers, regularisers
from .base import PluginCheckWarning, Result, SkipCheck, bound_check, plugin_name, run_one

__all__ = ["check_cell", "check_dataset", "check_regularizer", "check_regulariser", "check_optimizer",
           "check_logger", "plugin_checks",
           "parametrize_with_checks", "run_checks", "build_plugin", "kind_of", "Result", "SkipCheck",
           "PluginCheckWarning"]

KINDS = {"cell": cells.CHECKS, "dataset": datasets.CHECKS, "regulariser": regularisers.CHECKS,
         "optimizer": optimizers.CHECKS, "logger": loggers.CHECKS}


def kind_of(obj):
    """'cell', 'dataset', 'regulariser', 'optimizer' or 'logger': what protocol the plugin class follows."""
    if inspect.isclass(obj):
        if issubclass(obj, Logger):
            return "logger"
        if issubclass(obj, Dataset):
            return "dataset"
        if issubclass(obj, Regularizer):
            return "regulariser"
        if issubclass(obj, Optimizer):
            return "optimizer"
        if callable(getattr(obj, "initial_state", None)):
            return "cell"
    raise TypeError(f"{obj!r} is not a plugin class: expected a cell (with initial_state), a "
                    "tinygrad_rnn.data.Dataset, a tinygrad_rnn.Regularizer, a tinygrad_rnn.optim.Optimizer or a "
                    "tinygrad_rnn.Logger subclass")


def plugin_checks(obj, **options):
    """[(check name, callable of no arguments), ...]: every check of the plugin class `obj`, built with
    `options`. A callable raises AssertionError (named) on failure and SkipCheck when it does not apply."""
    checks = []
    for check in KINDS[kind_of(obj)]:
        name = check.__name__.removeprefix("check_")
        checks.append((name, bound_check(obj, name, check, options)))
    return checks


def build_plugin(obj, **options):
    """One instance of the plugin class with `options`, at the kit's sizes: a ConfigError here means the
    options themselves are wrong, before any check runs."""
    kind = kind_of(obj)
    if kind == "cell":
        return obj(cells.D, cells.H, **options)
    if kind == "dataset":
        dataset = obj(seed=0, **options)
        dataset.splits()
        return dataset
    if kind in ("regulariser", "logger"):
        return obj(**options)
    return optimizers.make(obj, options, optimizers.parameters())


def run_checks(obj, **options):
    """Every check of `obj` run, none stopping the others: a list of `Result`."""
    return [run_one(obj, name, check) for name, check in plugin_checks(obj, **options)]


def _check_all(obj, kind, options):
    if kind_of(obj) != kind:
        raise TypeError(f"check_{kind} got a {kind_of(obj)}: {plugin_name(obj)}")
    build_plugin(obj, **options)
    results = run_checks(obj, **options)
    failed = [r for r in results if r.status == "fail"]
    if failed:
        raise AssertionError(f"{plugin_name(obj)}: {len(failed)} of {len(results)} checks failed:\n"
                             + "\n".join(f"  {r.check}: {r.reason}" for r in failed))
    return results


def check_cell(cell_class, **options):
    """Run every cell check on `cell_class(input_size, hidden_size, **options)`; AssertionError on failure.
    Returns the list of `Result` (warnings and skips included)."""
    return _check_all(cell_class, "cell", options)


def check_dataset(dataset_class, **options):
    """Run every dataset check on `dataset_class(seed, **options)`; AssertionError on failure."""
    return _check_all(dataset_class, "dataset", options)


def check_regularizer(regularizer_class, **options):
    """Run every regulariser check on `regularizer_class(**options)` in a tiny trainer; AssertionError on failure."""
    return _check_all(regularizer_class, "regulariser", options)


check_regulariser = check_regularizer  # the spelling of earlier releases, kept as an alias


def check_optimizer(optimizer_class, **options):
    """Run every optimiser check on `optimizer_class(params, lr, **options)`; AssertionError on failure."""
    return _check_all(optimizer_class, "optimizer", options)


def check_logger(logger_class, **options):
    """Run every logger check on `logger_class(**options)`, driven through a 3-epoch run and a sweep of two
    trials in a temporary folder; AssertionError on failure (a check whose package is missing is skipped)."""
    return _check_all(logger_class, "logger", options)


def parametrize_with_checks(plugins):
    """A pytest decorator: one test per plugin and check, with ids like `mgu-gradients_match_finite_differences`.

    `plugins` holds plugin classes, or (class, {options}) pairs. The test takes one argument, `check`,
    and calls it; a check that does not apply is reported as skipped.
    """
    import pytest  # only a test suite calls this

    params = []
    for entry in plugins:
        cls, options = entry if isinstance(entry, tuple) else (entry, {})
        for name, check in plugin_checks(cls, **options):
            params.append(pytest.param(_skipping(check), id=f"{plugin_name(cls)}-{name}"))
    return pytest.mark.parametrize("check", params)


def _skipping(check):
    def run():
        import pytest
        try:
            check()
        except SkipCheck as e:
            pytest.skip(str(e))
    run.__name__, run.__doc__ = check.__name__, check.__doc__
    return run
