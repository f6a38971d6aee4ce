"""One experiment, end to end: resolve the config, build the plugins, train, store the run.

The data flows one way: config → registry builds dataset, model, regularisers → Trainer → Run.
`execute` never loses what a user has: an interrupted run keeps its config, its metrics so far and
its last weights; a diverged run is kept and marked as such.
"""
import math
import time

import numpy as np

from .. import __version__, backend
from .. import random as _random
from .config import BASE, FROM_DATASET, check_options, construct, validate
from ..errors import ConfigError, DivergedError
from ..forecast import forecast
from ..models import SequenceModel
from ..optim import SCHEDULES, check_schedule
from ..registry import cells, datasets, optimizers, regularisers
from ..train import Trainer


def resolve(config):
    """Fill every setting: the given ones, then the dataset's defaults, then the base defaults.

    Names and plugin options are checked here, so a typo fails before any training starts."""
    full = {**BASE, **{k: v for k, v in config.items() if v is not None}}
    for key in ("cell", "data"):
        if not full[key]:
            raise ConfigError(f"no {key} given; pass --{key} NAME (see `rnnrun list`)")
    full["optimizer"] = full["optimizer"] or optimizers.default
    dataset_cls = datasets.get(full["data"])
    full["data_options"] = check_options(dataset_cls, "dataset", full["data"], [], full["data_options"])
    full["cell_options"] = check_options(cells.get(full["cell"]), "cell", full["cell"], [], full["cell_options"])
    full["optimizer_options"] = check_options(optimizers.get(full["optimizer"]), "optimizer", full["optimizer"],
                                              [], full["optimizer_options"])
    if full["schedule"]:
        check_schedule(full["schedule"], full["schedule_options"])
        full["schedule_options"] = check_options(SCHEDULES[full["schedule"]], "schedule", full["schedule"], [],
                                                 full["schedule_options"])
    regs = []
    for reg in full["regularisers"]:
        name, options = reg["name"], reg.get("options", {})
        regs.append({"name": name, "options": check_options(regularisers.get(name), "regulariser", name, [], options)})
    full["regularisers"] = regs
    for key in FROM_DATASET:
        if full[key] is None:
            full[key] = dataset_cls.defaults[key]
    if full["backend"] not in backend.BACKENDS:
        raise ConfigError(f"unknown backend {full['backend']!r}; valid backends: {', '.join(backend.BACKENDS)}")
    return validate(full)


def build(config):
    """(dataset, model, regularisers) from a resolved config, seeded for reproducibility."""
    backend.set_backend(config["backend"])
    _random.manual_seed(config["seed"])
    dataset = construct(datasets.get(config["data"]), "dataset", config["data"], config["data_options"],
                        seed=config["seed"])
    dataset.splits()
    model = SequenceModel(dataset.kind, cells.get(config["cell"]), dataset.input_size, config["hidden"],
                          dataset.output_size, num_layers=config["layers"], bidirectional=config["bidirectional"],
                          fused=config["fused"], **config["cell_options"])
    regs = [construct(regularisers.get(r["name"]), "regulariser", r["name"], r["options"])
            for r in config["regularisers"]]
    return dataset, model, regs


class Pruned(Exception):
    """Raised by an `on_epoch` callback to end a run early on purpose: `rnnrun tune`'s pruner judged it
    hopeless. `execute` keeps the run (metrics so far, last weights) with status "pruned"; not an error."""


def execute(config, store, on_start=None, on_epoch=None, on_batch=None, group=None):
    """Run one resolved config; returns its summary dict (status "finished", "diverged" or "pruned").

    KeyboardInterrupt is re-raised after the run's files are saved (status "interrupted")."""
    started = time.perf_counter()
    run = store.create(config["cell"], config["data"], group=group)
    config = {**config, "meta": {"version": __version__, "run_id": run.id}}
    run.write_config(config)
    summary = {"run_id": run.id, "run_dir": run.path, "cell": config["cell"], "data": config["data"],
               "seed": config["seed"], "status": "running"}
    trainer = None
    try:
        dataset, model, regs = build(config)
        summary.update(params=model.num_parameters(), metric=dataset.metric_name,
                       higher_is_better=dataset.higher_is_better, baseline_name=dataset.baseline_name)

        def epoch_done(trainer, metrics):
            run.append_metrics(metrics)
            if on_epoch:
                on_epoch(trainer, metrics)

        trainer = Trainer(model, dataset, optimizer=config["optimizer"], lr=config["lr"],
                          optimizer_options=config["optimizer_options"], regularisers=regs,
                          epochs=config["epochs"], batch_size=config["batch_size"],
                          schedule=config.get("schedule"), schedule_options=config.get("schedule_options"),
                          on_epoch=epoch_done, on_batch=on_batch)
        if on_start:
            on_start(run, dataset, model)
        trainer.fit()
        summary.update(_results(trainer), status="finished")
        run.save_weights(model.state_dict())
        predictions, truth = _forecast(dataset, model, summary)
        _plots(run, trainer, predictions, truth)
    except KeyboardInterrupt:
        summary.update(status="interrupted", message="interrupted by the user (Ctrl-C)")
        _keep(run, trainer, summary, started)
        raise
    except DivergedError as e:
        summary.update(status="diverged", message=str(e))
        _keep(run, trainer, summary, started)
        return summary
    except Pruned as e:
        summary.update(status="pruned", message=str(e))
        _keep(run, trainer, summary, started)
        return summary
    except Exception as e:
        summary.update(status="failed", message=f"{type(e).__name__}: {e}")
        _keep(run, trainer, summary, started)
        raise
    summary["seconds"] = time.perf_counter() - started
    run.write_summary(summary)
    return summary


def _keep(run, trainer, summary, started):
    """Save what an unfinished run has: its metrics so far (already on disk), last weights, summary."""
    summary["seconds"] = time.perf_counter() - started
    if trainer is not None:
        summary["epochs"] = len(trainer.history)
        if trainer.history:
            summary.update(_history_stats(trainer.history))
        try:
            run.save_weights(trainer.model.state_dict())
        except Exception:  # weights with NaN still save; anything else must not hide the real error
            pass
    run.write_summary(summary)


def _history_stats(history):
    best = min(history, key=lambda m: m["val_loss"] if math.isfinite(m["val_loss"]) else math.inf)
    return {"epochs": len(history), "train_loss": history[-1]["train_loss"], "val_loss": best["val_loss"],
            "val_metric": best["val_metric"], "best_epoch": best["epoch"],
            "val_losses": [m["val_loss"] for m in history],
            "grad_norm_mean": sum(m["grad_norm_mean"] for m in history) / len(history),
            "grad_norm_max": max(m["grad_norm_max"] for m in history),
            "clip_rate": sum(m.get("clipped_rate", 0.0) for m in history) / len(history)}


def _results(trainer):
    return {**_history_stats(trainer.history), **trainer.test()}


def _forecast(dataset, model, summary):
    """For a time series: the free-running forecast from the last real window, kept in the summary."""
    if not dataset.forecastable:
        return None, None
    steps = getattr(dataset, "forecast_steps", 50)
    predictions, truth = forecast(model, dataset, steps)
    listed = lambda a: None if a is None else [None if not np.isfinite(v) else float(v) for v in a[:, 0]]  # noqa: E731
    summary["forecast"] = {"steps": steps, "prediction": listed(predictions), "truth": listed(truth)}
    if truth is not None and np.isfinite(truth[:, 0]).any():
        known = np.isfinite(truth[:, 0])
        summary["forecast"]["rmse"] = float(np.sqrt(np.mean((predictions[known, 0] - truth[known, 0]) ** 2)))
    return predictions, truth


def _plots(run, trainer, predictions, truth):
    try:
        from . import plots
    except ImportError:  # matplotlib is an optional extra
        return
    plots.loss_plot(run.file("loss.png"), trainer.history)
    if predictions is not None:
        plots.forecast_plot(run.file("forecast.png"), predictions, truth)
