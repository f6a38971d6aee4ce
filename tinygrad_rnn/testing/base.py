"""What every kind of check shares: how a check reports, how checks are run, and the bad-option probes.

A check is a small function `check(plugin_class, options)` whose docstring's first line says what it
holds the plugin to. It passes by returning; it fails by raising AssertionError with what was expected
and what came out; it does not apply by raising `SkipCheck(reason)`; and it warns (a convention not
followed, nothing wrong) with `warnings.warn(..., PluginCheckWarning)`.
"""
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..random import fork_rng
from ..registry import plugin_frame, plugin_options, short_path


class SkipCheck(Exception):
    """The check does not apply to this plugin (a cell without `sequence()`, a dataset that is not a series)."""


class PluginCheckWarning(UserWarning):
    """A convention the plugin does not follow; it still works."""


@dataclass
class Result:
    """One check's outcome: status is "pass", "fail", "warn" or "skip"; reason says why."""
    plugin: str
    check: str
    status: str
    reason: str = ""


def plugin_name(cls):
    return getattr(cls, "plugin_name", None) or getattr(cls, "__name__", repr(cls))


def bound_check(plugin, check_name, check, options):
    """`check` bound to its plugin, as a callable of no arguments whose every failure is an
    AssertionError that starts with the plugin's and the check's names."""
    def run():
        try:
            with fork_rng():  # the caller's random stream goes on as if no check had run
                check(plugin, dict(options))
        except (AssertionError, SkipCheck) as e:
            e.args = (f"{plugin_name(plugin)}: {check_name}: {e}",)
            raise
        except Exception as e:  # a crash inside the plugin is a failed check, not an error of the kit
            frame = plugin_frame(e)  # where in the plugin, as `rnnrun` training names it
            where = f" ({short_path(frame[0])} line {frame[1]})" if frame else ""
            raise AssertionError(f"{plugin_name(plugin)}: {check_name}: raised {type(e).__name__}: {e}{where}") from e
    run.__name__ = check_name
    run.__doc__ = check.__doc__
    return run


def run_one(plugin, check_name, callable_):
    """Run one check: a `Result` (a warning becomes status "warn", with its message as the reason)."""
    name = plugin_name(plugin)
    prefix = f"{name}: {check_name}: "
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginCheckWarning)
        try:
            callable_()
        except SkipCheck as e:
            return Result(name, check_name, "skip", str(e).removeprefix(prefix))
        except AssertionError as e:
            return Result(name, check_name, "fail", str(e).removeprefix(prefix))
    warned = [str(w.message) for w in caught if issubclass(w.category, PluginCheckWarning)]
    if warned:
        return Result(name, check_name, "warn", "; ".join(warned))
    return Result(name, check_name, "pass")


# ---- comparing what came out with what was expected -------------------------------------------------
def assert_close(got, expected, what, rtol=1e-6, atol=1e-9):
    """AssertionError naming `what`, the worst entry and both values, unless got ≈ expected."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {expected.shape}, got {got.shape}")
    error = np.abs(got - expected)
    bad = ~(error <= atol + rtol * np.abs(expected))
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(bad, error, -1)), error.shape)
        raise AssertionError(f"{what}: expected {expected[worst]:.6g} at {tuple(int(i) for i in worst)}, "
                             f"got {got[worst]:.6g} ({int(bad.sum())} of {bad.size} entries differ by more "
                             f"than {atol:g} + {rtol:g}·|expected|)")


def same_arrays(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def equal_plain(a, b):
    """Deep equality of plain state (numbers, strings, lists, dicts, NumPy arrays)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and same_arrays(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal_plain(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(equal_plain(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


PLAIN = (bool, int, float, str, type(None), np.number, np.bool_)


def not_plain(value, where="state"):
    """The first entry of `value` that is not a plain value (see `Regularizer.state_dict`), or None."""
    if isinstance(value, np.ndarray) or isinstance(value, PLAIN):
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = not_plain(v, f"{where}[{k!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = not_plain(v, f"{where}[{i}]")
            if found:
                return found
        return None
    return f"{where} is a {type(value).__name__}"


# ---- bad options ---------------------------------------------------------------------------------
def bad_values(default):
    """Values the command line can pass that a plugin should refuse (or handle): the runner already
    refuses unknown names, a word for a number and a number for a flag; a value out of range it
    cannot know, so that is the plugin's to check."""
    if isinstance(default, bool) or default is None:
        return []
    if isinstance(default, (int, np.integer)):
        return [-1, 0]
    if isinstance(default, (float, np.floating)):
        return [-1.0]
    if isinstance(default, str):
        return ["no-such-choice"]
    return []


def check_bad_options(cls, options, build, skip=()):
    """Each option set in turn to a bad value: `build(options)` must raise ConfigError or work."""
    probes = [(name, value) for name, default in plugin_options(cls).items() if name not in skip
              for value in bad_values(default)]
    if not probes:
        raise SkipCheck("it takes no number or string options")
    refused = 0
    for name, value in probes:
        try:
            build({**options, name: value})
        except ConfigError:
            refused += 1
        except AssertionError:
            raise
        except Exception as e:
            raise AssertionError(f"option {name}={value!r}: expected a ConfigError saying what is valid "
                                 f"(or a working plugin), got {type(e).__name__}: {e}") from e
    return refused
