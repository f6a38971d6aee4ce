"""Which runs may be ranked against each other: the same data, scored by the same metric.

A score means something only beside scores of the same targets in the same units. Two runs are
comparable when their dataset, its options (a file's path and SHA-256 among them, which a dataset
read from a file records; an option given at its default is no difference) and their metric are the
same. A sweep or a study that searches one of the options the dataset declares in `input_options`
(they change only what the model reads, a csv window or transform, not which targets are scored)
ranks its trials across them; `compare` does not.

`compare`, `sweep` and `tune` rank only within one `comparison_key`; `differing_settings` names the
settings that tell runs apart, for compare's columns.
"""
from ..errors import UnknownPluginError
from ..registry import datasets

SETTINGS = ("cell", "cell_options", "data", "data_options", "optimizer", "optimizer_options", "schedule",
            "schedule_options", "regularisers", "hidden", "layers", "bidirectional", "epochs", "batch_size", "lr",
            "seed", "backend", "fused", "compiled")


def input_options(data):
    """The options of dataset `data` that change only its inputs (its class's `input_options`)."""
    try:
        return tuple(datasets.get(data).input_options)
    except UnknownPluginError:  # a run of a plugin not loaded now: every option counts
        return ()


def with_defaults(data, options):
    """A run's data options with the dataset's defaults filled in: `airline` and `airline:window=12` are
    the same data (options given as their default are not a difference)."""
    try:
        defaults = datasets.options(data)
    except UnknownPluginError:
        defaults = {}
    return {**defaults, **(options or {})}


def data_spec(data, options, skip=()):
    """'airline' or 'csv(path=/d/f.csv,sha256=…,target=y)': a dataset and the options that differ from its
    defaults, sorted, as text."""
    try:
        defaults = datasets.options(data)
    except UnknownPluginError:
        defaults = {}
    shown = {k: v for k, v in sorted((options or {}).items())
             if k not in skip and not (k in defaults and defaults[k] == v)}
    return data + (f"({','.join(f'{k}={v}' for k, v in shown.items())})" if shown else "")


def comparison_key(config, summary=None, across_inputs=False):
    """(data spec, metric): runs with equal keys may be ranked together. `compare` holds every option to
    be equal; a sweep or a study, which searches the inputs on purpose, leaves out the dataset's
    `input_options` (`across_inputs=True`): its trials are scored on the same targets."""
    data = config.get("data") or (summary or {}).get("data") or "?"
    metric = (summary or {}).get("metric")
    return data_spec(data, config.get("data_options"), input_options(data) if across_inputs else ()), metric


def differing_settings(configs):
    """{setting: [value per config]} of the settings (config keys, and each data option) that differ."""
    found = {}
    keys = [k for k in SETTINGS if k != "data_options"]
    for key in keys:
        values = [c.get(key) for c in configs]
        if len({repr(v) for v in values}) > 1:
            found[key] = values
    filled = [with_defaults(c.get("data") or "?", c.get("data_options")) for c in configs]
    for option in sorted({k for options in filled for k in options}):
        values = [options.get(option) for options in filled]
        if len({repr(v) for v in values}) > 1:
            found[f"data.{option}"] = values
    return found
