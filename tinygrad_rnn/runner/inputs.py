"""What a user gives, loaded and checked before anything runs: plugins, NAME:k=v specs, a config file
and flags, folders. Both doors start here, the command line (app.py and the commands) and the Python
API (api.py), so one input means the same and fails the same way in both; nothing here knows click.

    load_plugins(paths)         the built-in and entry-point plugins discovered, then the --plugin ones
    load_run_plugins(run)       only a stored run's recorded plugins (a moved file: pass --plugin)
    with_spec(spec, kind)       parse and check one NAME:k=v spec (cell, dataset, regulariser,
                                optimizer, schedule, logger) → (name, options); specs(values, kind) for lists
    config_from_flags(...)      a TOML file and flags → one partial config, both held to config.SCHEMA
    run_config(run)             a stored run's config, its recorded plugins loaded, checked
    check_runs_dir(path)        a --runs-dir that can hold runs, checked before anything is written
    check_output_file(path, flag)   a file a command will write, checked before it computes
"""
import os
import tempfile
import warnings

from ..errors import ConfigError
from ..optim import SCHEDULES, check_schedule
from ..registry import REGISTRIES, discover, load_errors, load_plugin
from .config import check_config, check_options, load_recorded_plugins, load_toml, parse_spec, split_names
from .output import console


# ---- plugins and specs --------------------------------------------------------------------------------
def load_plugins(paths):
    """Discover the built-in and entry-point plugins, then load --plugin ones; broken discovered ones
    are warnings, a broken --plugin is a PluginError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reported below, once, as one line each
        discover()
    for path in paths:
        load_plugin(path)
        _given_plugins.append(path)
    if load_errors:
        err = console(stderr=True)
        for _, message in load_errors:
            err.print(f"[yellow]warning:[/] {message}", soft_wrap=True)
        load_errors.clear()


_given_plugins = []  # the --plugin files of this command: where a run's recorded plugin file has moved to


def forget_given_plugins():
    """A new command (the CLI's main, called again in one process by tests) starts with none given."""
    _given_plugins.clear()


def load_run_plugins(run):
    """Load the plugins `run` recorded in its config.toml (see config.load_recorded_plugins)."""
    load_recorded_plugins(run.config(), run.file("config.toml"), moved=bool(_given_plugins))


def with_spec(spec, kind):
    """'rnn:nonlinearity=relu' → ('rnn', {'nonlinearity': 'relu'}), checked against the plugin.

    `kind` is cell, dataset, regulariser, optimizer or schedule. The name must be registered and every
    option one the plugin takes, of its default's type (config.check_options); only a regulariser
    takes a bare value (clip:1.0). Every command parses specs through here, so one spec means the same
    everywhere and fails the same way (ConfigError or UnknownPluginError, exit 2)."""
    name, positional, options = parse_spec(spec, kind)
    if positional and kind != "regulariser":
        raise ConfigError(f"{kind} {name!r}: bare values are not allowed here; write {name}:key=value")
    if kind == "schedule":
        check_schedule(name, options)
        return name, check_options(SCHEDULES[name], kind, name, [], options)
    return name, check_options(REGISTRIES[kind].get(name), kind, name, positional, options)


def specs(values, kind, flag=None):
    """Comma-separated and repeated specs ('rnn,lstm:forget_bias=1') → [(name, options), ...], each
    checked by with_spec; none at all is a ConfigError."""
    items = split_names(values)
    if not items:
        raise ConfigError(f"{flag or '--' + kind} needs at least one name, e.g. {flag or '--' + kind} "
                          f"{', '.join(REGISTRIES[kind].names()[:3]) if kind in REGISTRIES else 'NAME'}")
    return [with_spec(item, kind) for item in items]


# ---- flags and config files ---------------------------------------------------------------------------
def config_from_flags(config_file, **flags):
    """The partial config: the TOML file's settings, overridden by the flags that were given.

    Both go through config.SCHEMA (unknown keys, types, ranges) before anything else reads them; the
    plugins a config file names (`plugins = [...]`, recorded by runs that used --plugin) are loaded."""
    config = {}
    if config_file:
        config = check_config(load_toml(config_file), config_file)
        config.pop("meta", None)
        load_recorded_plugins(config, f"config file {config_file}", moved=bool(_given_plugins))
    data = flags.pop("data", None)
    if data:
        config["data"], config["data_options"] = with_spec(data, "dataset")
    optimizer = flags.pop("optimizer", None)
    if optimizer:
        config["optimizer"], config["optimizer_options"] = with_spec(optimizer, "optimizer")
    schedule = flags.pop("schedule", None)
    if schedule:
        config["schedule"], config["schedule_options"] = with_spec(schedule, "schedule")
    regs = flags.pop("reg", None)
    if regs:
        config["regularisers"] = [{"name": name, "options": options}
                                  for name, options in (with_spec(spec, "regulariser") for spec in regs)]
    logs = flags.pop("log", None)
    if logs:  # --log replaces the config file's loggers, as --reg replaces its regularisers
        config["log"] = [{"name": name, "options": options}
                         for name, options in (with_spec(spec, "logger") for spec in logs)]
    check_config(flags, "flags")
    config.update({key: value for key, value in flags.items() if value is not None})
    return config


def run_config(run):
    """A stored run's config, ready to `experiment.build`: its metadata dropped, the plugins it
    recorded loaded again, every name and option checked (an unknown one says to pass --plugin)."""
    from .experiment import resolve
    config = check_config(run.config(), run.file("config.toml"))
    config.pop("meta", None)
    load_recorded_plugins(config, run.file("config.toml"), moved=bool(_given_plugins))
    return resolve(config)


def check_runs_dir(path, flag="--runs-dir"):
    """ConfigError unless `path` is (or can be made) a folder this process can write runs in; leaves
    nothing behind. Tried for real (a probe folder made and removed): permission bits say nothing for
    root, a read-only mount or /proc."""
    path = _runs_dir_path(path, flag)
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        what = "is not a folder" if probe == path else f"is below {probe}, which is not a folder"
        raise ConfigError(f"{flag} {path} {what}; pass a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".rnnrun-probe-", dir=probe))
    except OSError as e:
        where = "" if probe == path else f": {probe}"
        raise ConfigError(f"{flag} {path}{where} is not writable ({e.strerror or e}); pass a folder you can "
                          "write to") from None
    return path


def check_readable_runs_dir(path, flag="--runs-dir"):
    """ConfigError unless `path` is a folder that can be listed, or does not exist yet (no runs)."""
    path = _runs_dir_path(path, flag)
    probe = path
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        what = "is not a folder" if probe == path else f"is below {probe}, which is not a folder"
        raise ConfigError(f"{flag} {path} {what}; pass the folder your runs are in")
    if os.path.isdir(path):
        try:
            os.listdir(path)
        except OSError as e:
            raise ConfigError(f"{flag} {path} cannot be read ({e.strerror or e})") from None
    return path


def _runs_dir_path(path, flag):
    """The absolute path of a --runs-dir, or ConfigError for one no file system takes ('' or too long)."""
    if not str(path).strip():
        raise ConfigError(f"{flag} is empty; pass a folder, e.g. {flag} runs")
    path = os.path.abspath(path)
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        pass  # it does not exist (yet), or lies below a file: the callers say which
    except OSError as e:  # a name too long, a folder above that cannot be entered
        raise ConfigError(f"{flag} {path[:80]}{'…' if len(path) > 80 else ''}: {e.strerror or e}") from None
    except ValueError as e:  # a NUL byte
        raise ConfigError(f"{flag} {path!r}: {e}") from None
    return path


def check_output_file(path, flag, formats=None):
    """ConfigError unless `path` can be written as a new or replaced file: not a folder, in a folder that
    exists and is writable, and (with `formats`, e.g. matplotlib's) of a known extension. Commands call
    it before they compute, so a typo in a path costs nothing."""
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        raise ConfigError(f"{flag} {path} is a folder; pass a file name in it")
    if not os.path.isdir(folder):
        raise ConfigError(f"{flag} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or os.path.exists(full) and not os.access(full, os.W_OK):
        raise ConfigError(f"{flag} {path} is not writable")
    if formats is not None:
        extension = os.path.splitext(path)[1].lstrip(".").lower()
        if extension not in formats:
            raise ConfigError(f"{flag} {path}: unknown image format {extension or '(none)'!r}; "
                              f"valid: {', '.join(sorted(formats))}")
    return path
