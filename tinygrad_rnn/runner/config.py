"""Run configuration: parsing `name:k=v` specs, defaults, TOML files.

A run is described by one flat dict (written as the run's `config.toml`, and read back by
`rnnrun --config`), e.g.

    cell = "gru"                 cell_options = {}
    data = "adding"              data_options = {T = 200}
    hidden = 64   layers = 1   bidirectional = false
    epochs = 20   batch_size = 32   lr = 0.01   seed = 0   backend = "numpy"   fused = true
    compiled = false             (true: every cell runs as its compiled tape, see nn/tape.py)
    optimizer = "adam"           optimizer_options = {}    (default: the optimiser registered as default)
    schedule = "cosine"          schedule_options = {}       (optional: step or cosine, per epoch)
    regularisers = [{name = "clip", options = {threshold = 1.0}}]

Specs on the command line: `adding:T=200`, `clip:1.0` (a bare value fills the first option),
`sgd:momentum=0.9,nesterov=true`, `rnn:nonlinearity=relu`.
"""
import tomllib

from ..errors import ConfigError
from ..registry import plugin_options

# Settings every run has; a dataset's `defaults` replace the None ones.
BASE = {"cell": None, "cell_options": {}, "data": None, "data_options": {}, "hidden": None, "layers": 1,
        "bidirectional": False, "epochs": None, "batch_size": None, "lr": None, "optimizer": None,
        "optimizer_options": {}, "schedule": None, "schedule_options": {}, "regularisers": [], "seed": 0,
        "backend": "numpy", "fused": True, "compiled": False}
FROM_DATASET = ("hidden", "epochs", "lr", "batch_size")


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
    """'clip:1.0,mode=value' → ('clip', [1.0], {'mode': 'value'})."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"empty {what} name in {spec!r}; write NAME or NAME:key=value,...")
    positional, options = [], {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        if "=" in item:
            key, _, value = item.partition("=")
            if not key.strip() or not value.strip():
                raise ConfigError(f"malformed option {item!r} in {spec!r}; write key=value")
            options[key.strip()] = parse_value(value)
        elif options:
            raise ConfigError(f"malformed option {item!r} in {spec!r}: a bare value must come before key=value options")
        else:
            positional.append(parse_value(item))
    return name, positional, options


def split_names(values):
    """Repeated and comma-separated specs: ('rnn,lstm', 'gru:variant=cho') → ['rnn', 'lstm', 'gru:variant=cho'].

    A comma-separated item holding '=' but no ':' is an option of the spec before it."""
    specs = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            if "=" in item and ":" not in item and specs:
                specs[-1] += "," + item
            else:
                specs.append(item)
    return specs


def check_options(cls, kind, name, positional, options):
    """Map positional values onto the plugin's options, coerce types from defaults, reject unknowns."""
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
        default = known[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"option {key!r} of {kind} {name!r} must be true or false, got {value!r}")
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            resolved[key] = float(value)
        elif isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(value, str):
            raise ConfigError(f"option {key!r} of {kind} {name!r} must be a number, got {value!r}")
    return resolved


def construct(cls, kind, name, options, **fixed):
    """cls(**fixed, **options), turning a TypeError/ValueError from the plugin into a ConfigError."""
    try:
        return cls(**fixed, **options)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{kind} {name!r}: {e}") from None


def load_toml(path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def validate(config):
    """Check sizes and the set of keys of a resolved config."""
    unknown = sorted(set(config) - set(BASE) - {"meta"})
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; valid keys: {', '.join(BASE)}")
    for key in ("hidden", "layers", "epochs", "batch_size"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key.replace('_', '-')} must be a positive integer, got {value!r}")
    if isinstance(config["lr"], bool) or not isinstance(config["lr"], (int, float)) or config["lr"] <= 0:
        raise ConfigError(f"lr must be a positive number, got {config['lr']!r}")
    if config.get("compiled") and not config.get("fused", True):
        raise ConfigError("compiled and composed (fused = false) exclude each other; choose one of --fused, "
                          "--compiled, --composed")
    return config


def signature_text(cls):
    """'T=100, n_train=2000' for `rnnrun list`."""
    return ", ".join(f"{k}={v!r}" if v is not None else k for k, v in plugin_options(cls).items())
