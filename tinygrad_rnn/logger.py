"""`Logger`: the base class of logger plugins, which send a run to where people watch runs.

Every run already writes metrics.csv, summary.json and its plots; a logger sends the same record
somewhere else as it happens (TensorBoard's event files, an MLflow tracking store, a JSON-lines file).
The runner calls each hook at the named moment, from a thread of the logger's own, so a slow or
broken logger never slows or stops the run it watches (see runner/logging.py):

    start(run)          the run begins: run.id, run.path, run.group, run.runs_dir, run.config (every
                        resolved setting), run.params (the parameter count), run.plugin_files
    epoch(metrics)      an epoch ended: epoch, train_loss, val_loss, val_metric, lr, grad_norm_mean,
                        grad_norm_max, clipped_rate (with the clip regulariser), seconds
    end(summary)        the run ended: status ("finished", "diverged", "pruned", "interrupted",
                        "failed"), test_loss, test_metric, baseline (the dataset's), ... as in summary.json
    artifacts(paths)    the run folder's files, once they are final: config.toml, metrics.csv,
                        summary.json, model.npz, loss.png, ...
    close()             nothing more will come: flush and let go of files and connections

A sweep or a tune study is a group of runs; a logger that can show groups (MLflow's nested runs)
also overrides these two, which the sweep's or study's own process calls around its trials:

    start_group(group)  group.id, group.kind ("sweep" or "tune"), group.path, group.runs_dir, group.settings
    end_group(summary)  the group's summary: status, trials_total, finished, ...

A trial's `run.group` names its group (e.g. "sweeps/<id>"), so a logger finds the group's record
from the trial's process, wherever that runs (a pool worker, a Dask worker).

A logger whose package is an optional extra names the modules it needs in `requires` and the extra
in `extra`; `rnnrun` refuses `--log NAME` in one line before any run starts when one is missing.
"""
import importlib.util
import sys
from dataclasses import dataclass, field


@dataclass
class RunInfo:
    """What a logger is told when a run starts."""
    id: str
    path: str
    config: dict
    params: int = 0
    group: str = None            # "sweeps/<id>" or "tunes/<study>" for a trial, else None
    runs_dir: str = "runs"
    plugin_files: list = field(default_factory=list)

    def settings(self):
        """Every resolved setting as one flat table of numbers, booleans and text, the form both
        TensorBoard's hparams and MLflow's params take: {"cell": "gru", "data_options.T": 100,
        "regularisers": "clip:threshold=1.0", ...}. The run's metadata and its loggers are left out."""
        return flat_settings({k: v for k, v in self.config.items() if k not in ("meta", "log")})


def flat_settings(table, prefix=""):
    """{"a": {"b": 1}} → {"a.b": 1}; a list becomes one text ("clip:threshold=1.0 tbptt:k=25" for
    regularisers); None is left out."""
    flat = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_settings(value, name + "."))
        elif isinstance(value, (list, tuple)):
            flat[name] = " ".join(_spec_text(v) for v in value)
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif value is not None:
            flat[name] = str(value)
    return flat


def _spec_text(value):
    if isinstance(value, dict) and "name" in value:
        options = ",".join(f"{k}={v}" for k, v in (value.get("options") or {}).items())
        return value["name"] + (":" + options if options else "")
    return str(value)


@dataclass
class GroupInfo:
    """What a logger is told when a sweep or tune study starts."""
    id: str
    kind: str                    # "sweep" or "tune"
    path: str
    group: str                   # what its trials' RunInfo.group will be
    runs_dir: str = "runs"
    settings: dict = field(default_factory=dict)   # its definition: axes, fixed settings, seeds, ...

    def flat_settings(self):
        """`settings` as one flat table, as RunInfo.settings() gives a run's."""
        return flat_settings(self.settings)


class Logger:
    """Base class: every hook does nothing."""

    requires = ()   # modules that must be importable, e.g. ("mlflow",)
    extra = None    # the pip extra that installs them: pip install 'tinygrad_rnn[EXTRA]'

    def start(self, run):
        pass

    def epoch(self, metrics):
        pass

    def end(self, summary):
        pass

    def artifacts(self, paths):
        pass

    def close(self):
        pass

    def start_group(self, group):
        pass

    def end_group(self, summary):
        pass


def missing_modules(cls):
    """The modules of `cls.requires` that cannot be imported here, found without importing them (an
    import of mlflow takes seconds)."""
    missing = []
    for name in cls.requires:
        if name in sys.modules:
            if sys.modules[name] is None:  # an import that is blocked (how the tests uninstall a package)
                missing.append(name)
            continue
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            missing.append(name)
    return missing
