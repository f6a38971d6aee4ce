"""Run configuration: one schema for flags and TOML files, `name:k=v` specs, plugin options.

A run is described by one flat dict (written as the run's `config.toml`, and read back by
`rnnrun --config`), e.g.

    cell = "gru"                 cell_options = {}
    data = "adding"              data_options = {T = 200}
    hidden = 64   layers = 1   bidirectional = false
    epochs = 20   batch_size = 32   lr = 0.01   seed = 0   backend = "numpy"
    path = "auto"                (or "fused", "compiled", "composed": how the cells run, see nn/recurrent.py)
    optimizer = "adam"           optimizer_options = {}    (default: the optimiser registered as default)
    schedule = "cosine"          schedule_options = {}       (optional: step or cosine, per epoch)
    regularisers = [{name = "clip", options = {threshold = 1.0}}]
    plugins = ["/home/me/my_plugins.py"]                     (only when the run used --plugin)
    log = [{name = "tensorboard", options = {}}]             (only when the run used --log: its loggers)

Flags and config files go through the same `SCHEMA` (`check_config`): an unknown key, a value of the
wrong type or out of range is a ConfigError that names the key (or flag), what is expected and the
value. Specs on the command line: `adding:T=200`, `clip:1.0` (a bare value fills the first option),
`sgd:momentum=0.9,nesterov=true`, `rnn:nonlinearity=relu`; `check_options` holds a spec's options to
the plugin's constructor (known names, the defaults' types, finite numbers).
"""
import difflib
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli from PyPI, the parser the standard library adopted as tomllib in 3.11
    import tomli as tomllib

from ..errors import ConfigError
from ..errors import PluginError, UnknownPluginError
from ..nn.recurrent import PATHS  # noqa: F401  (how the cells run: config key `path`; options.py reads it here)
from ..registry import datasets, load_plugin, plugin_options

# Settings every run has; a dataset's `defaults` replace the None ones.
BASE = {"cell": None, "cell_options": {}, "data": None, "data_options": {}, "hidden": None, "layers": 1,
        "bidirectional": False, "epochs": None, "batch_size": None, "lr": None, "optimizer": None,
        "optimizer_options": {}, "schedule": None, "schedule_options": {}, "regularisers": [], "seed": 0,
        "backend": "numpy", "path": "auto"}
FROM_DATASET = ("hidden", "epochs", "lr", "batch_size")

# Bounds that only catch nonsense (a 20-digit --hidden); whether a run fits in memory is
# experiment.check_memory's question, asked with the dataset in hand.
MAX_HIDDEN = 1 << 20
MAX_LAYERS = 256
MAX_EPOCHS = 10 ** 6
MAX_BATCH = 1 << 24
MAX_FORECAST_STEPS = 10 ** 6   # forecast --steps and predict --steps
MAX_SEED = 2 ** 32 - 1          # NumPy's legacy seeding takes 0 <= seed < 2**32


# ---- the schema: one entry per config key ------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One config key: `expected` says in words what `ok(value)` accepts."""
    expected: str
    ok: Callable


def _integer(low, high):
    return Setting(f"an integer from {low} to {high}",
                   lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high)


def _is_name(v):
    return isinstance(v, str) and bool(v.strip())


def _is_table(v):
    return isinstance(v, dict) and all(isinstance(k, str) for k in v)


def _is_regulariser_list(v):
    return isinstance(v, list) and all(
        isinstance(r, dict) and _is_name(r.get("name")) and _is_table(r.get("options", {}))
        and set(r) <= {"name", "options"} for r in v)


_NAME = "a name (see `rnnrun list`)"
_TABLE = "a table of options, e.g. {T = 100}"
SCHEMA = {
    "cell": Setting(_NAME, _is_name),
    "cell_options": Setting(_TABLE, _is_table),
    "data": Setting(_NAME, _is_name),
    "data_options": Setting(_TABLE, _is_table),
    "hidden": _integer(1, MAX_HIDDEN),
    "layers": _integer(1, MAX_LAYERS),
    "bidirectional": Setting("true or false", lambda v: isinstance(v, bool)),
    "epochs": _integer(1, MAX_EPOCHS),
    "batch_size": _integer(1, MAX_BATCH),
    "lr": Setting("a finite number > 0",
                  lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0),
    "optimizer": Setting(_NAME, _is_name),
    "optimizer_options": Setting(_TABLE, _is_table),
    "schedule": Setting("'cosine' or 'step'", _is_name),
    "schedule_options": Setting(_TABLE, _is_table),
    "regularisers": Setting('a list of tables like [{name = "clip", options = {threshold = 1.0}}]',
                            _is_regulariser_list),
    "seed": _integer(0, MAX_SEED),
    "backend": Setting("'numpy' or 'cupy'", lambda v: v in ("numpy", "cupy")),
    "path": Setting(" or ".join(repr(p) for p in PATHS), lambda v: v in PATHS),
    "plugins": Setting("a list of plugin files or module names",
                       lambda v: isinstance(v, list) and all(_is_name(p) for p in v)),
    "log": Setting('a list of tables like [{name = "mlflow", options = {experiment = "mine"}}]',
                   _is_regulariser_list),
    "meta": Setting("a table (written by rnnrun)", _is_table),
}


def plugin_file_gone(ref):
    """True for a plugin recorded as a file (a path, or a name ending in .py) that no longer exists."""
    ref = str(ref)
    return (ref.endswith(".py") or os.sep in ref) and not os.path.isfile(ref)


def load_recorded_plugins(config, where, moved=False):
    """Load the plugins a config records (`plugins = [...]`, written by runs that used --plugin), so its
    names resolve without --plugin. A recorded file that is gone is a PluginError saying to pass it
    again with --plugin, unless `moved` (the user gave --plugin: the file where it is now), when it is
    skipped. One that fails to load is a PluginError naming `where` (the config file)."""
    plugins = config.get("plugins")
    if not isinstance(plugins, list):  # not this function's to judge: check_config names the key
        return
    for ref in plugins:
        if plugin_file_gone(ref):
            if moved:
                continue
            raise PluginError(f"plugin file not found: {ref} (recorded in {where}); if it has moved, "
                              "pass it with --plugin FILE")
        try:
            load_plugin(ref)
        except PluginError as e:
            raise PluginError(f"{e} (recorded in {where})") from None


def check_config(config, origin=None):
    """Hold every key of `config` to SCHEMA; None means "not given" and passes. Returns `config`.

    `origin` names where the values came from in the messages: a file path, or "flags" (then keys
    are named as their flags, --batch-size)."""
    upgrade_path_keys(config, origin)
    for key, value in config.items():
        if key not in SCHEMA:
            close = difflib.get_close_matches(str(key), SCHEMA, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{_where(origin)}unknown key {key!r}{hint}; valid keys: {', '.join(SCHEMA)}")
        setting = SCHEMA[key]
        if value is not None and not setting.ok(value):
            name = "--" + key.replace("_", "-") if origin == "flags" else f"{key!r}"
            raise ConfigError(f"{_where(origin)}{name} must be {setting.expected}, got {_shown(value)}")
    return config


def upgrade_path_keys(config, origin=None):
    """Map the keys `fused` and `compiled` (config.toml files before `path`) to `path`, in place.

    `fused = true` was the default, which is what "auto" means now; `fused = false` was composed."""
    old = {key: config.pop(key) for key in ("fused", "compiled") if key in config}
    for key, value in old.items():
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{_where(origin)}{key!r} must be true or false, got {_shown(value)}")
    if not any(value is not None for value in old.values()):
        return config
    if old.get("compiled") and old.get("fused") is False:
        raise ConfigError(f"{_where(origin)}compiled and composed (fused = false) exclude each other; "
                          f"write one path = {' | '.join(repr(p) for p in PATHS)}")
    path = "compiled" if old.get("compiled") else "composed" if old.get("fused") is False else "auto"
    if config.get("path") not in (None, path):
        raise ConfigError(f"{_where(origin)}path = {config['path']!r} and the old key(s) "
                          f"{', '.join(old)} disagree; keep only path")
    config["path"] = path
    return config


def _where(origin):
    return "" if origin in (None, "flags") else f"config file {origin}: "


def _shown(value):
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


# ---- NAME:k=v specs ---------------------------------------------------------------------------------
def parse_value(text):
    """'3' → 3, '0.5' → 0.5, 'true' → True, '1e-3' → 0.001, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec, what="option"):
    """'clip:1.0,mode=value' → ('clip', [1.0], {'mode': 'value'}). Only the syntax is checked here;
    `check_options` holds the options to the plugin."""
    if not isinstance(spec, str):
        raise ConfigError(f"a {what} spec must be text like NAME or NAME:key=value, got {spec!r}")
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"empty {what} name in {spec!r}; write NAME or NAME:key=value,...")
    positional, options = [], {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        if "=" in item:
            key, _, value = item.partition("=")
            key = key.strip()
            if not key or not value.strip():
                raise ConfigError(f"malformed option {item!r} in {spec!r}; write key=value")
            if key in options:
                raise ConfigError(f"option {key!r} given twice in {spec!r}")
            options[key] = parse_value(value)
        elif options:
            raise ConfigError(f"malformed option {item!r} in {spec!r}: a bare value must come before key=value options")
        else:
            positional.append(parse_value(item))
    return name, positional, options


def split_names(values):
    """Repeated and comma-separated specs: ('rnn,lstm', 'gru:variant=cho') → ['rnn', 'lstm', 'gru:variant=cho'].

    A comma-separated item holding '=' and no ':' before it is an option of the spec before it."""
    specs = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            if "=" in item and ":" not in item.partition("=")[0] and specs:  # k=lo:hi is an option too
                specs[-1] += "," + item
            else:
                specs.append(item)
    return specs


def check_options(cls, kind, name, positional, options):
    """Map positional values onto the plugin's options, coerce types from defaults, reject unknowns.

    A value must have its default's type: true/false for a bool, a whole number for an int (1e3 is
    1000), a number for a float; every number must be finite. Options whose default is None take any
    finite value."""
    known = plugin_options(cls)
    order = list(known)
    if len(positional) > len(order):
        raise ConfigError(f"{kind} {name!r} takes at most {len(order)} bare value(s), got {positional}")
    resolved = dict(zip(order, positional))
    for key, value in options.items():
        if key not in known:
            valid = ", ".join(order) or "none"
            raise ConfigError(f"unknown option {key!r} for {kind} {name!r}; valid options: {valid}")
        if key in resolved:
            raise ConfigError(f"option {key!r} of {kind} {name!r} given twice")
        resolved[key] = value
    for key, value in resolved.items():
        resolved[key] = _coerce(value, known[key], f"option {key!r} of {kind} {name!r}")
    return resolved


def _coerce(value, default, what):
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{what} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not number or isinstance(value, float):
            raise ConfigError(f"{what} must be a whole number, got {value!r}")
    elif isinstance(default, float):
        if not number:
            raise ConfigError(f"{what} must be a number, got {value!r}")
        return float(value)
    return value


def construct(cls, kind, name, options, **fixed):
    """cls(**fixed, **options), turning a TypeError/ValueError from the plugin into a ConfigError."""
    try:
        return cls(**fixed, **options)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{kind} {name!r}: {e}") from None


def load_toml(path):
    """A TOML file as a dict; a missing, unreadable, binary or malformed file is a ConfigError."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory; pass a .toml file, e.g. runs/<id>/config.toml") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not text (not UTF-8); pass a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def validate(config):
    """Check a resolved config against the schema (every key now has a value)."""
    missing = [key for key in ("hidden", "epochs", "batch_size", "lr") if config.get(key) is None]
    if missing:
        raise ConfigError(f"no value for {', '.join(missing)}")
    return check_config(config)


def signature_text(cls):
    """'T=100, n_train=2000' for `rnnrun list`."""
    return ", ".join(f"{k}={v!r}" if v is not None else k for k, v in plugin_options(cls).items())


def spec_label(spec):
    """`data_label` of a --data spec as written (`csv:path=f.csv,target=y`): how sweep and tune name it."""
    try:
        name, _, options = parse_spec(spec, "dataset")
    except ConfigError:
        return str(spec)
    return data_label({"data": name, "data_options": options})


def data_label(config):
    """How tables name a run's data: its dataset's `data_label` (csv: `csv:elnino.csv(target=sst,...)`),
    or the dataset's name where its plugin is not loaded."""
    name = config.get("data") or "?"
    try:
        cls = datasets.get(name)
    except UnknownPluginError:   # a plugin not loaded here: the name still tells it apart
        return name
    return str(cls.data_label(name, config.get("data_options") or {}))
