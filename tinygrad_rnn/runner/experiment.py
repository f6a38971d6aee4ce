"""One experiment, end to end: resolve the config, build the plugins, train, store the run.

The data flows one way: config → registry builds dataset, model, regularisers → Trainer → Run.
`execute` never loses what a user has: an interrupted run keeps its config, its metrics so far and
its last weights; a diverged run is kept and marked as such. Every epoch it writes a checkpoint, from
which `resume` continues the run in its own folder exactly as if it had never stopped.
"""
import contextlib
import csv
import inspect
import io
import json
import math
import os
import time
import traceback
import warnings

import numpy as np

from .. import __version__, backend, breakdowns
from .. import random as _random
from .config import BASE, FROM_DATASET, check_config, check_options, construct, plugin_file_gone, validate
from ..errors import ConfigError, DivergedError, PluginError, ShapeError, UnknownPluginError
from ..forecast import forecast, predictor
from ..models import SequenceModel
from ..nn import CompileWarning
from ..nn.recurrent import Recurrent
from ..optim import SCHEDULES, check_schedule, make_schedule
from ..registry import cells, datasets, loggers, optimizers, regularisers, where_defined
from ..selection import pick_best
from ..tensor import Tensor
from ..data import warn
from ..threads import blas_threads, choose_threads
from ..trainer import Trainer, check_validation
from .loggers import INTERRUPTED_SECONDS, Loggers, check_loggers, run_info
from .store import (CHECKPOINT, HEARTBEAT_SECONDS, PREPROCESSING, DamagedRun, atomic_write, plain, process_identity,
                    weights_signature)
from .signals import held, why


def resolve(config):
    """Fill every setting: the given ones, then the dataset's defaults, then the base defaults.

    Every key is held to config.SCHEMA and names and plugin options are checked here, so a typo fails
    before any training starts; `check_all` then builds what the configs describe."""
    check_config(config)
    full = {**BASE, **{k: v for k, v in config.items() if v is not None}}
    for key in ("cell", "data"):
        if not full[key]:
            raise ConfigError(f"no {key} given; pass --{key} NAME (see `rnnrun list`)")
    try:
        _check_names(full)
    except UnknownPluginError as e:
        gone = [ref for ref in full.get("plugins") or [] if plugin_file_gone(ref)]
        if gone:
            hint = (f"; it may come from the recorded plugin {', '.join(gone)}, which is gone: "
                    "pass the file where it is now with --plugin FILE")
        else:
            hint = "" if full.get("plugins") else "; if it comes from a plugin, load it with --plugin PATH_OR_MODULE"
        raise UnknownPluginError(f"{e}{hint}") from None
    dataset_cls = datasets.get(full["data"])
    for key in FROM_DATASET:
        if full[key] is None:
            full[key] = dataset_cls.defaults[key]
    if full["backend"] not in backend.BACKENDS:
        raise ConfigError(f"unknown backend {full['backend']!r}; valid backends: {', '.join(backend.BACKENDS)}")
    return validate(full)


def _check_names(full):
    """Every plugin name of a config registered and its options checked (in place)."""
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
    if full.get("log"):
        full["log"] = [{"name": spec["name"], "options": check_options(loggers.get(spec["name"]), "logger",
                                                                       spec["name"], [], spec.get("options", {}))}
                       for spec in full["log"]]


def build(config):
    """(dataset, model, regularisers) from a resolved config, seeded for reproducibility."""
    backend.set_backend(config["backend"])
    _random.manual_seed(config["seed"])
    dataset = construct(datasets.get(config["data"]), "dataset", config["data"], config["data_options"],
                        seed=config["seed"])
    dataset.splits()
    model = build_model(config, dataset)
    regs = [construct(regularisers.get(r["name"]), "regulariser", r["name"], r["options"])
            for r in config["regularisers"]]
    return dataset, model, regs


def build_model(config, dataset):
    """The config's model for a dataset whose input and output sizes are known (after `splits()`, or
    after `restore()` of its saved preprocessing)."""
    return _model(config, dataset, config["hidden"], config["layers"])


def _model(config, dataset, hidden, layers):
    try:
        return SequenceModel(dataset.kind, cells.get(config["cell"]), dataset.input_size, hidden,
                             dataset.output_size, num_layers=layers, bidirectional=config["bidirectional"],
                             path=config["path"], **config["cell_options"])
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cell {config['cell']!r}: {e}") from None


# ---- every run of a command, checked before the first one starts --------------------------------------
def check_all(configs, choosing=False):
    """Build every dataset, model, regulariser, optimiser and schedule that `configs` describe, estimate
    each run's memory, and run each cell once on a tiny input; raise ConfigError (or PluginError) at
    the first that fails. Call it before anything is trained or written, so that a command whose
    third run is misconfigured fails at once, with no run folder made (exit 2).

    Configurations that differ only in their seed (a sweep's) are checked once; the models built here
    are small or discarded. Data without a validation split (csv's val=0) is a warning, and an error
    where the command is `choosing` on validation (tune)."""
    seen = set()
    for config in configs:
        key = repr(sorted((k, repr(v)) for k, v in config.items() if k not in ("meta", "seed")))
        if key not in seen:
            seen.add(key)
            check_run(config, choosing)


def check_run(config, choosing=False):
    """check_all for one resolved config: build, estimate memory, run the cell once."""
    check_loggers(config)  # a --log whose package is missing: one line naming the extra
    dataset = construct(datasets.get(config["data"]), "dataset", config["data"], config["data_options"],
                        seed=config["seed"])
    need = estimate_memory(config, dataset)
    check_memory(need, f"{config['cell']} on {config['data']}")
    if dataset.input_size is None or dataset.output_size is None:  # known only from the data itself
        dataset.splits()
    backend.set_backend(config["backend"])
    small = need["parameters"] > SMALL_MODEL_BYTES  # a large model is checked at a small size: same code
    model = _model(config, dataset, min(config["hidden"], 8) if small else config["hidden"],
                   min(config["layers"], 2) if small else config["layers"])
    regs = [construct(regularisers.get(r["name"]), "regulariser", r["name"], r["options"])
            for r in config["regularisers"]]
    # data without a validation split (csv's val=0) is known once its splits are made, as a file's are here
    if dataset.splits_made:
        check_validation(dataset, regs)
    if dataset.splits_made and not len(dataset.splits()["val"]):
        if choosing:   # rnnrun tune: its objective is a validation value
            raise ConfigError(f"{config['data']} has no validation split (val=0), and tune chooses on validation; "
                              "give the data one (val=0.15, val_from=...)")
        warn(f"{config['data']} has no validation split: the last epoch's weights are kept, and choosing between "
             "runs or epochs has nothing to choose on (only the test split, which must not choose)")
    optimizer = construct(optimizers.get(config["optimizer"]), "optimizer", config["optimizer"],
                          config["optimizer_options"], params=model.parameters(), lr=config["lr"])
    if config.get("schedule"):
        make_schedule(optimizer, config["schedule"], config.get("schedule_options"), config["epochs"])
    smoke_test_cell(config["cell"], config["cell_options"], dataset.input_size, config["path"])


def smoke_test_cell(name, options, input_size=1, path="auto"):
    """Run cell `name` over 2 steps of a batch of 1 and back. A constructor that rejects an option's
    value is a ConfigError; a cell that then fails (no initial_state, a forward that raises or returns
    a state of the wrong shape) is a PluginError naming its file and line: both before any run starts."""
    cell_class = cells.get(name)
    if not callable(getattr(cell_class, "initial_state", None)):
        raise PluginError(f"cell {name!r} ({where_defined(cell_class)}) has no initial_state(batch_size) method; "
                          "a cell needs forward(x, state) and initial_state(batch_size) (see docs/04-plugins.md)")
    try:
        rnn = Recurrent(cell_class, input_size, 2, path=path, **options)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cell {name!r}: {e}") from None
    try:
        with warnings.catch_warnings():  # a forward that raises is reported below, not as "cannot be compiled"
            warnings.simplefilter("ignore", CompileWarning)
            out, _ = rnn(Tensor(np.zeros((1, 2, input_size), np.float32)))
        if tuple(out.shape) != (1, 2, 2):
            raise ShapeError(f"its output h has shape {tuple(out.shape[2:])} per step, expected (hidden_size,) "
                             f"= (2,)")
        out.sum().backward()
    except (ConfigError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:
        raise PluginError(f"cell {name!r} ({_plugin_line(cell_class, e)}) fails on a 2-step sequence: "
                          f"{type(e).__name__}: {e}") from e


def _plugin_line(cell_class, error):
    """'file line N' of the innermost frame of `error` in the cell's own file (else where it is defined)."""
    try:
        path = os.path.abspath(inspect.getsourcefile(cell_class) or "")
    except TypeError:
        return cell_class.__module__
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if os.path.abspath(frame.filename) == path:
            return f"{path} line {frame.lineno}"
    forward = getattr(cell_class, "forward", cell_class)
    return where_defined(forward if inspect.isfunction(forward) else cell_class)


# ---- memory: estimated before anything large is allocated ---------------------------------------------
SMALL_MODEL_BYTES = 64 << 20
ACTIVATION_FLOATS = 16   # floats kept per hidden unit, step and layer for backward (gates, states, grads)


def estimate_memory(config, dataset):
    """Bytes a run needs, roughly: {"parameters", "activations", "data", "total"}.

        parameters    16 P                  P parameters in float32: weights, gradients, 2 Adam moments
        activations   4 B T H L d F         batch B (at most N), steps T, hidden H, layers L, directions d, and
                                            F = ACTIVATION_FLOATS floats kept per unit for BPTT
        data          8 (3/2 N) (T + 1) D   N training sequences, half again for validation and
                                            test, D features, generated in float64

    P is exact: per layer it is a quadratic in H (recurrent weights H x H, input weights H x D,
    biases H), fitted to the same model built at hidden 1, 2 and 3. T and N are the dataset's
    attributes `T` and `n_train` when it has them (the built-ins do); without them, that term is 0."""
    hidden, layers = config["hidden"], config["layers"]
    directions = 2 if config["bidirectional"] else 1
    features = max(int(dataset.input_size or 1), 1)
    if dataset.input_size is not None and dataset.output_size is not None:
        count = _parameter_count(config, dataset, hidden, layers)
    else:
        count = 4 * (hidden * (hidden + features) + hidden) * layers * directions
    steps = _size(dataset, "T") or 1
    sequences = _size(dataset, "n_train")
    parameters = 16 * count
    batch = min(config["batch_size"], sequences) if sequences else config["batch_size"]  # no batch outgrows the data
    activations = 4 * batch * steps * hidden * layers * directions * ACTIVATION_FLOATS
    data = 8 * (sequences * 3 // 2) * (steps + 1) * features if sequences else 0
    return {"parameters": parameters, "activations": activations, "data": data,
            "total": parameters + activations + data}


def _parameter_count(config, dataset, hidden, layers):
    """Parameters of the model at `hidden` and `layers`, from three tiny builds: one layer at hidden
    1, 2, 3 gives the quadratic of the first layer; two layers give the quadratic of the others."""
    def count(h, n):
        return _model(config, dataset, h, n).num_parameters()

    def quadratic(p1, p2, p3):  # p(h) = a h^2 + b h + c through (1, p1), (2, p2), (3, p3)
        a = (p3 - 2 * p2 + p1) / 2
        b = p2 - p1 - 3 * a
        return lambda h: a * h * h + b * h + (p1 - a - b)

    first = quadratic(*(count(h, 1) for h in (1, 2, 3)))
    if layers == 1:
        return first(hidden)
    other = quadratic(*(count(h, 2) - count(h, 1) for h in (1, 2, 3)))
    return first(hidden) + (layers - 1) * other(hidden)


def _size(dataset, name):
    value = getattr(dataset, name)  # T or n_train, declared by Dataset (None: unknown)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def available_memory():
    """(bytes available now, bytes in all) of this machine's memory; (None, None) where unknown."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1:2]}
        return info.get("MemAvailable", info.get("MemFree")), info.get("MemTotal")
    except (OSError, ValueError, IndexError):
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_AVPHYS_PAGES"), page * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None, None


def check_memory(need, what):
    """ConfigError, in one line, when the estimate exceeds the memory available now."""
    available, total = available_memory()
    if available is None or need["total"] <= available:
        return
    parts = ", ".join(f"{k} {_gib(need[k])}" for k in ("parameters", "activations", "data") if need[k] >= 1 << 20)
    raise ConfigError(f"{what} would need about {_gib(need['total'])} of memory ({parts}); this machine has "
                      f"{_gib(available)} available of {_gib(total)}. Use a smaller --hidden, --layers, "
                      "--batch-size or dataset (T, n_train)")


def _gib(n):
    """1.5 GiB, 640 GiB, 72 TiB: bytes in the largest binary unit that keeps the number readable."""
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{n / (1 << 20):.3g} MiB"


class Pruned(Exception):
    """Raised by an `on_epoch` callback to end a run early on purpose: `rnnrun tune`'s pruner judged it
    hopeless. `execute` keeps the run (metrics so far, last weights) with status "pruned"; not an error."""


def execute(config, store, on_start=None, on_epoch=None, on_batch=None, group=None, checkpoint_every=1):
    """Run one resolved config in a new run folder; returns its summary dict (status "finished",
    "diverged" or "pruned"). A checkpoint is written every `checkpoint_every` epochs (and after the last).

    KeyboardInterrupt is re-raised after the run's files are saved (status "interrupted")."""
    run = store.create(config["cell"], config["data"], group=group)
    meta = {"version": __version__, "run_id": run.id, "checkpoint_every": checkpoint_every}
    if group:  # a trial: its loggers find their sweep's or study's record by it, on resume too
        meta["group"] = group
    config = {**config, "meta": meta}
    run.write_config(config)
    return _train(run, config, None, on_start, on_epoch, on_batch, runs_dir=store.root)


def prepare_resume(run, epochs=None, live_workers=None):
    """(config, checkpoint) to continue `run` from its last checkpoint, `epochs` the new total if given.

    Everything that can refuse is checked here, before anything is written: a damaged file raises
    DamagedRun; a run that is still running, diverged, has no checkpoint or has nothing left to
    train raises ConfigError saying what would work. The caller loads the plugins the run recorded
    (the CLI: app.load_run_plugins); a name still unknown is an UnknownPluginError naming the run."""
    if epochs is not None:
        check_config({"epochs": epochs}, "flags")  # the bound --epochs has for training
    config = run.verify().config()
    status = run.status(live_workers)
    if status == "running":
        summary = run.summary()
        raise ConfigError(f"run {run.id} is still running (pid {summary.get('pid')} on {summary.get('host')}); "
                          "wait for it, or stop it first")
    if status == "diverged":
        raise ConfigError(f"run {run.id} diverged: resumed, it would diverge again at the same epoch; start it "
                          f"again with a lower --lr: rnnrun --config {run.file('config.toml')} --lr ...")
    if not run.has_checkpoint():
        done = run.summary().get("epochs_done") or 0
        why = ("it stopped before its first epoch ended" if not done else
               f"it trained {done} epochs with an rnnrun that wrote none")  # a newer run's loss is DamagedRun
        raise ConfigError(f"run {run.id} has no checkpoint: {why}; start it again with "
                          f"rnnrun --config {run.file('config.toml')}")
    meta = config.pop("meta", {})
    try:
        config = resolve(config)
    except UnknownPluginError as e:
        raise UnknownPluginError(f"run {run.id}: {e}") from None
    except ConfigError as e:
        raise DamagedRun(run, "config.toml", str(e)) from None
    checkpoint = run.checkpoint()
    done = int(checkpoint["epoch"])
    if epochs is not None:
        if epochs < done:
            raise ConfigError(f"--epochs {epochs}: run {run.id} has trained {done} epochs already; "
                              "--epochs is the new total")
        if epochs > done:
            checkpoint["should_stop"] = False  # asked to train on, past an early stop
        config["epochs"] = epochs
    finished = checkpoint["should_stop"] or done >= config["epochs"]
    if status == "finished" and finished:
        raise ConfigError(f"run {run.id} has finished its {done} epochs; to train further give a new total, "
                          f"e.g. rnnrun resume {run.id} --epochs {done + max(done, 1)}")
    return {**config, "meta": meta}, checkpoint


def resume(run, epochs=None, on_start=None, on_epoch=None, on_batch=None, live_workers=None):
    """Continue `run` in its own folder from its last checkpoint (see `prepare_resume`); returns its
    summary. On NumPy the numbers are bit for bit those of the same run never interrupted."""
    config, checkpoint = prepare_resume(run, epochs, live_workers)
    return continue_run(run, config, checkpoint, on_start, on_epoch, on_batch)


def continue_run(run, config, checkpoint, on_start=None, on_epoch=None, on_batch=None):
    """The second half of `resume`, for a caller that has already called `prepare_resume`."""
    return _train(run, config, checkpoint, on_start, on_epoch, on_batch)


def _new_total(run, config):
    """config.toml with the epochs `rnnrun resume --epochs N` asked for."""
    if config["epochs"] != run.config()["epochs"]:
        mtime = os.path.getmtime(run.file("config.toml"))
        run.write_config(config)
        os.utime(run.file("config.toml"), (mtime, mtime))  # the run keeps its place in `rnnrun runs`


def _train(run, config, checkpoint, on_start, on_epoch, on_batch, runs_dir=None):
    """Build, (restore,) train, test and store: the body shared by a new run and a resumed one.

    The config's loggers (`--log`) hear of it all: after the build, every epoch, and the end."""
    started = time.perf_counter() - (checkpoint.get("elapsed", 0.0) if checkpoint else 0.0)
    every = max(1, int(config.get("meta", {}).get("checkpoint_every", 1)))
    summary = {"run_id": run.id, "run_dir": run.path, "cell": config["cell"], "data": config["data"],
               "seed": config["seed"], "status": "running", **process_identity(), "last_seen": time.time(),
               "epochs_done": int(checkpoint["epoch"]) if checkpoint else 0}
    restoring = checkpoint is not None  # until the checkpoint is back in place, a resumed run's files stay as they are
    if not restoring:
        run.write_summary(summary)  # from now on a vanished process reads as "killed"
    trainer, watchers = None, Loggers([])
    threads = contextlib.ExitStack()  # the BLAS thread count chosen for this run, restored when it ends
    try:
        dataset, model, regs = build(config)
        summary["threads"] = choose_threads(model, config["batch_size"])
        threads.enter_context(blas_threads(summary["threads"]))
        if not restoring:  # a resumed run has its preprocessing.json already
            _keep_preprocessing(run, dataset, config)
        if os.path.exists(run.file(PREPROCESSING)):  # recorded, so that losing it later reads as damage
            summary["has_preprocessing"] = True
        summary.update(params=model.num_parameters(), metric=dataset.metric_name,
                       higher_is_better=dataset.higher_is_better, baseline_name=dataset.baseline_name)

        def epoch_done(trainer, metrics):
            with held():  # a stop signal waits until the epoch's files are whole
                run.append_metrics(metrics)
                last = trainer.epoch >= trainer.epochs or trainer.should_stop
                if trainer.epoch % every == 0 or last:
                    state = trainer.state_dict()
                    run.save_checkpoint({**state, "elapsed": time.perf_counter() - started})
                    summary["checkpoint_epoch"] = trainer.epoch  # a checkpoint.npz missing later is damage
                    # the model's names and shapes as trained (regularisers may add to it): another
                    # model's weights or checkpoint in this folder are then named as not this run's
                    summary["weights_signature"] = weights_signature(state["model"])
                summary.update(last_seen=time.time(), epochs_done=trainer.epoch, epoch_seconds=metrics["seconds"])
                run.write_summary(summary, durable=False)  # a heartbeat: the next one replaces it
            watchers.epoch(metrics)
            if on_epoch:
                on_epoch(trainer, metrics)

        last_beat = [time.time()]

        def batch_done(trainer, batch, batches, loss):
            if time.time() - last_beat[0] >= HEARTBEAT_SECONDS:  # a heartbeat within long epochs too
                with held():
                    summary["last_seen"] = last_beat[0] = time.time()
                    run.write_summary(summary, durable=False)
            if on_batch:
                on_batch(trainer, batch, batches, loss)

        trainer = Trainer(model, dataset, optimizer=config["optimizer"], lr=config["lr"],
                          optimizer_options=config["optimizer_options"], regularisers=regs,
                          epochs=config["epochs"], batch_size=config["batch_size"],
                          schedule=config.get("schedule"), schedule_options=config.get("schedule_options"),
                          on_epoch=epoch_done, on_batch=batch_done)
        if checkpoint:
            try:
                trainer.load_state_dict(checkpoint)
            except (ConfigError, KeyError, IndexError, TypeError, ValueError) as e:
                raise DamagedRun(run, CHECKPOINT, f"does not fit the run of config.toml ({e})") from None
            restoring = False
            summary["checkpoint_epoch"] = int(checkpoint["epoch"])
            summary["weights_signature"] = weights_signature(checkpoint["model"])
            _new_total(run, config)
            run.write_summary(summary)
            run.write_metrics(trainer.history)  # rows after the checkpoint, if any, are trained again
        if config.get("log"):
            watchers = Loggers.start(config["log"], run_info(run, config, summary["params"],
                                                             config.get("meta", {}).get("group"), runs_dir))
        if on_start:
            on_start(run, dataset, model)
        trainer.fit()
        summary.update(_results(trainer), status="finished")
        run.save_weights(model.state_dict())
        _keep_predictions(run, dataset, trainer, summary)
        predictions, truth = _forecast(dataset, model, summary)
        _plots(run, trainer, predictions, truth, dataset.forecast_picture(predictor(model)))
    except KeyboardInterrupt as e:
        if restoring:
            raise
        summary.update(status="interrupted", message=why(e))
        _keep(run, trainer, summary, started)
        watchers.end(summary, run.path, INTERRUPTED_SECONDS)
        raise
    except DivergedError as e:
        summary.update(status="diverged", message=str(e))
        _keep(run, trainer, summary, started)
        watchers.end(summary, run.path)
        return summary
    except Pruned as e:
        summary.update(status="pruned", message=str(e))
        _keep(run, trainer, summary, started)
        watchers.end(summary, run.path)
        return summary
    except Exception as e:
        if restoring:
            raise
        summary.update(status="failed", message=f"{type(e).__name__}: {e}")
        _keep(run, trainer, summary, started)
        watchers.end(summary, run.path)
        raise
    finally:
        threads.close()
    summary["seconds"] = time.perf_counter() - started
    summary = _final(summary)
    run.write_summary(summary)
    watchers.end(summary, run.path)
    return summary


PROCESS_KEYS = ("pid", "host", "pid_start", "worker", "last_seen", "epoch_seconds")


def _final(summary):
    """A summary without the process's bookkeeping, which only a running run needs."""
    return {k: v for k, v in summary.items() if k not in PROCESS_KEYS}


def _keep_preprocessing(run, dataset, config):
    """A dataset read from a user's file records it (path, SHA-256) in the config and saves what it
    fitted as preprocessing.json, which `rnnrun predict` applies to new files without refitting."""
    recorded = dataset.recorded_options()
    if recorded:
        config["data_options"] = {**config["data_options"], **recorded}
        run.write_config(config)
    preprocessing = dataset.preprocessing()
    if preprocessing is not None:
        atomic_write(run.file(PREPROCESSING), json.dumps(plain(preprocessing), indent=2) + "\n")


PREDICTIONS = "predictions.csv"   # every val and test prediction of a finished run, in the target's units
OUTPUTS = "outputs.npz"           # the same, as the model's raw outputs: what an ensemble averages


def _keep_predictions(run, dataset, trainer, summary):
    """The breakdowns of the test score in the summary (per step ahead, per class, the confusion
    matrix), and the run's predictions.csv and outputs.npz for its val and test splits."""
    outputs = {name: trainer.outputs(dataset.splits()[name]) for name in ("val", "test")
               if len(dataset.splits()[name])}
    if "test" in outputs:
        steps = breakdowns.per_step(dataset, outputs["test"], "test")
        if steps is not None:
            summary["test_metric_per_step"] = steps
        if dataset.problem == "classification" and dataset.kind in ("seq2vec", "seq2seq"):
            labels = breakdowns.class_labels(dataset)
            summary["test_per_class"] = breakdowns.per_class(outputs["test"], dataset.splits()["test"], labels)
            summary["test_confusion"] = breakdowns.confusion(outputs["test"], dataset.splits()["test"], labels)
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(breakdowns.prediction_columns(dataset))
    for name, out in outputs.items():
        writer.writerows(breakdowns.prediction_rows(dataset, out, name))
    atomic_write(run.file(PREDICTIONS), lines.getvalue())
    buffer = io.BytesIO()
    np.savez(buffer, **outputs)
    atomic_write(run.file(OUTPUTS), buffer.getvalue(), mode="wb")


def _keep(run, trainer, summary, started):
    """Save what an unfinished run has: its metrics so far (already on disk), last weights, summary."""
    summary["seconds"] = time.perf_counter() - started
    if trainer is not None:
        summary["epochs"] = summary["epochs_done"] = len(trainer.history)
        if trainer.history:
            summary.update(_history_stats(trainer.history, trainer.dataset.higher_is_better))
        try:
            run.save_weights(trainer.model.state_dict())
        except Exception:  # weights with NaN still save; anything else must not hide the real error
            pass
    for key in PROCESS_KEYS:
        summary.pop(key, None)
    run.write_summary(summary)


def _history_stats(history, higher_is_better=False):
    validated = any(math.isfinite(m["val_loss"]) for m in history)   # not with csv's val=0
    # the epoch the trainer keeps: its best validation metric; the last one without validation
    best = pick_best(history, higher_is_better) if validated else history[-1]
    return {"epochs": len(history), "train_loss": history[-1]["train_loss"],
            "val_loss": best["val_loss"] if validated else None,
            "val_metric": best["val_metric"] if validated else None, "best_epoch": best["epoch"],
            "val_losses": [m["val_loss"] for m in history] if validated else [],
            "grad_norm_mean": sum(m["grad_norm_mean"] for m in history) / len(history),
            "grad_norm_max": max(m["grad_norm_max"] for m in history),
            "clip_rate": sum(m.get("clipped_rate", 0.0) for m in history) / len(history)}


def _results(trainer):
    return {**_history_stats(trainer.history, trainer.dataset.higher_is_better), **trainer.test()}


def _forecast(dataset, model, summary):
    """For a time series: the free-running forecast from the last real window, kept in the summary."""
    if not dataset.forecastable:
        return None, None
    steps = dataset.forecast_steps
    predictions, truth = forecast(model, dataset, steps)
    listed = lambda a: None if a is None else [None if not np.isfinite(v) else float(v) for v in a[:, 0]]  # noqa: E731
    summary["forecast"] = {"steps": steps, "prediction": listed(predictions), "truth": listed(truth)}
    if truth is not None and np.isfinite(truth[:, 0]).any():
        known = np.isfinite(truth[:, 0])
        summary["forecast"]["rmse"] = float(np.sqrt(np.mean((predictions[known, 0] - truth[known, 0]) ** 2)))
    return predictions, truth


def _plots(run, trainer, predictions, truth, picture=None):
    """loss.png, and forecast.png: a time series' free-running forecast, or the picture a dataset that
    runs its own forecasts draws (csv: the test targets, then the steps after the file)."""
    try:
        from . import plots
    except ImportError:  # matplotlib is an optional extra
        return
    plots.loss_plot(run.file("loss.png"), trainer.history)
    if picture is not None:
        plots.picture_plot(run.file("forecast.png"), picture)
    elif predictions is not None:
        plots.forecast_plot(run.file("forecast.png"), predictions, truth)
