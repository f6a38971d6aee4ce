"""The checks every logger plugin must pass: the hooks of `tinygrad_rnn.logger.Logger` called as the
runner calls them (start, epoch per epoch, end, artifacts, close; start_group and end_group around a
trial), on a run of three epochs in a temporary folder. A logger runs on its own thread, so these call
it directly: whatever it raises here would, in a run, be one warning line and a logger switched off.
"""
import copy
import math
import os
import tempfile
import time
import warnings

from ..logger import GroupInfo, Logger, RunInfo, missing_modules
from .base import PluginCheckWarning, SkipCheck

EPOCHS = 3
SLOW_SECONDS = 0.5  # an epoch hook slower than this falls behind a fast run (it cannot slow the run itself)
CONFIG = {"cell": "kitcell", "cell_options": {}, "data": "kitdata", "data_options": {"n_train": 40}, "hidden": 4,
          "layers": 1, "bidirectional": False, "epochs": EPOCHS, "batch_size": 8, "lr": 0.01, "optimizer": "adam",
          "optimizer_options": {}, "schedule": None, "schedule_options": {},
          "regularisers": [{"name": "kitreg", "options": {"threshold": 1.0}}], "seed": 0, "backend": "numpy",
          "path": "auto"}


def epoch_metrics(epoch, val_loss=None):
    """One epoch's metrics as the trainer reports them (the clip regulariser's counter included)."""
    loss = 1.0 / epoch if val_loss is None else val_loss
    return {"epoch": epoch, "train_loss": 1.1 / epoch, "val_loss": loss, "val_metric": loss ** 0.5,
            "grad_norm_mean": 0.5, "grad_norm_max": 0.9, "clipped_rate": 0.25, "lr": 0.01, "seconds": 0.1}


def summary(status="finished", **more):
    return {"run_id": "20261205-000000-kitcell-kitdata", "status": status, "cell": "kitcell", "data": "kitdata",
            "params": 89,
            "epochs": EPOCHS, "test_loss": 0.3, "test_metric": 0.55, "metric": "rmse", "baseline": 0.41,
            "baseline_name": "persistence", "seconds": 0.3, **more}


def run_through(cls, options, folder, statuses=("finished",), group=None, metrics=epoch_metrics):
    """Drive a logger through one run in `folder` as the runner would; returns the logger."""
    os.makedirs(folder, exist_ok=True)
    files = []
    for name, text in (("config.toml", 'cell = "kitcell"\n'), ("metrics.csv", "epoch,train_loss\n1,1.1\n"),
                       ("summary.json", "{}\n")):
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        files.append(path)
    run = RunInfo(id=os.path.basename(folder), path=folder, config=dict(CONFIG), params=89, group=group,
                  runs_dir=os.path.dirname(folder))
    logger = cls(**options)
    logger.start(run)
    for epoch in range(1, EPOCHS + 1):
        logger.epoch(metrics(epoch))
    for status in statuses:
        logger.end(summary(status))
    logger.artifacts(files)
    logger.close()
    return logger


def _needs(cls):
    missing = missing_modules(cls)
    if missing:
        raise SkipCheck(f"needs {', '.join(missing)}: pip install 'tinygrad_rnn[{cls.extra or plugin_extra(cls)}]'")


def plugin_extra(cls):
    return getattr(cls, "plugin_name", cls.__name__)


# ---- the checks -----------------------------------------------------------------------------------
def check_is_a_logger(cls, options):
    """It subclasses tinygrad_rnn.Logger and declares the packages it needs (requires, extra)."""
    assert issubclass(cls, Logger), f"expected a subclass of tinygrad_rnn.Logger, got {cls!r}"
    assert isinstance(cls.requires, (tuple, list)) and all(isinstance(m, str) for m in cls.requires), \
        f"requires must be a tuple of module names, got {cls.requires!r}"
    if cls.requires and not cls.extra:
        warnings.warn(f"it requires {', '.join(cls.requires)} but names no extra: the error for a missing "
                      "package cannot say what to install", PluginCheckWarning)


def check_logs_a_run_of_three_epochs(cls, options):
    """start, three epochs, end, artifacts and close, in that order, without raising."""
    _needs(cls)
    with tempfile.TemporaryDirectory() as root:
        run_through(cls, options, os.path.join(root, "20261205-000000-kitcell-kitdata"))


def check_leaves_its_arguments_alone(cls, options):
    """The hooks do not change the metrics and summary they are given (the run records them too)."""
    _needs(cls)
    given = []

    def metrics(epoch):
        m = epoch_metrics(epoch)
        given.append((m, copy.deepcopy(m)))
        return m
    with tempfile.TemporaryDirectory() as root:
        run_through(cls, options, os.path.join(root, "20261205-000000-kitcell-kitdata"), metrics=metrics)
    for after, before in given:
        assert after == before, f"epoch {before['epoch']}: metrics {before} became {after}"


def check_logs_a_diverged_run(cls, options):
    """A run whose validation loss is NaN from epoch 2 and that ends "diverged" is logged without raising."""
    _needs(cls)
    with tempfile.TemporaryDirectory() as root:
        run_through(cls, options, os.path.join(root, "20261205-000000-kitcell-kitdata"), statuses=("diverged",),
                    metrics=lambda e: epoch_metrics(e, val_loss=math.nan if e > 1 else None))


def check_logs_a_sweep_and_its_trials(cls, options):
    """start_group, two trials that name the group, end_group: a sweep, as `rnnrun sweep` drives it."""
    _needs(cls)
    with tempfile.TemporaryDirectory() as root:
        folder = os.path.join(root, "sweeps", "20261205-000000-kitdata")
        group = GroupInfo(id="20261205-000000-kitdata", kind="sweep", path=folder,
                          group="sweeps/20261205-000000-kitdata", runs_dir=root,
                          settings={"axes": {"lr": [0.01, 0.03]}, "seeds": 1})
        logger = cls(**options)
        logger.start_group(group)
        for n in range(2):
            run_through(cls, options, os.path.join(folder, f"20261205-00000{n}-kitcell-kitdata"), group=group.group)
        logger.end_group({"status": "finished", "trials_total": 2, "finished": 2})
        logger.close()


def check_epoch_hook_keeps_up(cls, options):
    """Its epoch hook takes under half a second (it runs on its own thread; a slower one falls behind)."""
    _needs(cls)
    with tempfile.TemporaryDirectory() as root:
        folder = os.path.join(root, "20261205-000000-kitcell-kitdata")
        os.makedirs(folder)
        logger = cls(**options)
        logger.start(RunInfo(id="20261205-000000-kitcell-kitdata", path=folder, config=dict(CONFIG), runs_dir=root))
        logger.epoch(epoch_metrics(1))  # the first may open files and connections
        started = time.perf_counter()
        for epoch in range(2, EPOCHS + 1):
            logger.epoch(epoch_metrics(epoch))
        each = (time.perf_counter() - started) / (EPOCHS - 1)
        logger.end(summary())
        logger.close()
    if each > SLOW_SECONDS:
        warnings.warn(f"its epoch hook takes {each:.2f} s: on its own thread it does not slow the run, but a "
                      "run of short epochs waits for it at the end", PluginCheckWarning)


CHECKS = [check_is_a_logger, check_logs_a_run_of_three_epochs, check_leaves_its_arguments_alone,
          check_logs_a_diverged_run, check_logs_a_sweep_and_its_trials, check_epoch_hook_keeps_up]
