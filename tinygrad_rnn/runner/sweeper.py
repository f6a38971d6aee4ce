"""Sweeps: one ordinary run per configuration and seed, over a grid or a random sample of settings.

    rnnrun sweep --cell rnn,lstm,gru --data adding:T=100 --lr 1e-3,3e-3 --seeds 3      a grid
    rnnrun sweep --cell gru --data sine --lr 1e-4:1e-2 --hidden 16:128 --random 20    a random search

    runs/sweeps/20261123-142501-adding/
        sweep.toml      the definition: axes, fixed settings, seeds, plugins and every trial's config
        summary.json    every trial's result (rewritten as results arrive) and the per-configuration rows
        20261123-142503-gru-adding/    a trial: an ordinary run folder (config.toml, metrics.csv, ...)

A trial is identified by its key, a hash of its resolved config (seed included, run metadata left
out), so `--resume` can tell which trials a sweep still lacks, whatever executor ran the others.
Every trial goes through `experiment.execute`, which seeds itself: in this process (--workers 1), in
a local process pool, or as a task on a Dask cluster, the same seed gives the same numbers.
"""
import contextlib
import datetime
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import signal
import threading
from concurrent import futures
from dataclasses import dataclass

import numpy as np
import tomli_w

from .. import __version__
from .config import load_toml, parse_spec, split_names
from ..errors import ConfigError, TinygradRNNError
from ..registry import load_plugin
from .store import DamagedRun, Run, RunStore, atomic_write, plain, read_json, slug
from .signals import on_stop, why

SWEEPS = "sweeps"                                    # sweeps live in <runs-dir>/sweeps/<sweep-id>/
SPEC_AXES = ("data", "cell", "optimizer")            # NAME[:k=v] specs
NUMBER_AXES = {"layers": int, "hidden": int, "batch_size": int, "lr": float}
AXES = ("data", "cell", "optimizer", "layers", "hidden", "batch_size", "lr")   # the grid's order
DONE = ("finished", "diverged")                      # results that --resume keeps (both are deterministic)
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")
CONNECT_TIMEOUT = "10s"                              # how long to try reaching a Dask scheduler
RANGE_HELP = "a comma list (1e-3,3e-3) or, with --random, a range LOW:HIGH[:log|linear] (1e-4:1e-2)"


class SweepError(TinygradRNNError, RuntimeError):
    """A sweep that cannot run, e.g. an unreachable Dask scheduler."""


def flag(axis):
    return "--" + axis.replace("_", "-")


# ---- what to run: axes, ranges, configurations, trials ----------------------------------------------
@dataclass(frozen=True)
class Range:
    """LOW:HIGH[:log|linear], drawn from by `--random`: lr log-uniform, sizes uniform integers by default."""
    low: float
    high: float
    log: bool
    integer: bool

    def sample(self, rng):
        if self.integer and not self.log:
            return int(rng.integers(self.low, self.high + 1))
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            return int(min(max(round(value), self.low), self.high))
        return float(f"{value:.3g}")  # 0.00314 rather than 0.0031415926...: readable in tables and keys

    def __str__(self):
        return f"{self.low:g}:{self.high:g}:{'log' if self.log else 'linear'}"


def parse_axis(axis, texts):
    """One flag's values (repeated and/or comma-separated): a list, or a Range for `--random`.

    parse_axis("cell", ["rnn,gru:variant=cho"]) → ["rnn", "gru:variant=cho"]
    parse_axis("lr", ["1e-3,3e-3"]) → [0.001, 0.003];   parse_axis("lr", ["1e-4:1e-2"]) → Range(...)"""
    if axis in SPEC_AXES:
        values = split_names(texts)
        for spec in values:
            _spec(axis, spec)  # malformed specs fail here, before anything runs
    else:
        items = [item.strip() for text in texts for item in str(text).split(",")]
        if any(":" in item for item in items):
            if len(items) != 1:
                raise ConfigError(f"{flag(axis)} {','.join(items)}: a range cannot be mixed with other "
                                  f"values; write {RANGE_HELP}")
            return _parse_range(axis, items[0])
        values = [_number(axis, item) for item in items]
    if not values:
        raise ConfigError(f"{flag(axis)} needs at least one value")
    return list(dict.fromkeys(values))  # repeated values would only repeat trials


def _number(axis, text):
    kind = NUMBER_AXES[axis]
    try:
        value = kind(text)
    except ValueError:
        kind_name = "a positive integer" if kind is int else "a positive number"
        raise ConfigError(f"{flag(axis)}: {text!r} is not {kind_name}; write {RANGE_HELP}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag(axis)}: {text!r} must be positive")
    return value


def _parse_range(axis, text):
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
        raise ConfigError(f"{flag(axis)} {text!r}: malformed range; write LOW:HIGH or LOW:HIGH:log or "
                          "LOW:HIGH:linear")
    low, high = _number(axis, parts[0]), _number(axis, parts[1])
    if not low < high:
        raise ConfigError(f"{flag(axis)} {text!r}: a range needs LOW < HIGH")
    log = parts[2] == "log" if len(parts) == 3 else axis == "lr"
    return Range(low, high, log, NUMBER_AXES[axis] is int)


def configurations(axes, samples=None, sample_seed=0):
    """The settings of every configuration: the grid's product, or `samples` random draws.

    A random draw takes each Range's sample and one value of each list, so `--cell rnn,gru --random 8`
    draws the cell too. Repeated draws are dropped (they would be the same trials)."""
    names = [a for a in AXES if a in axes]
    if samples is None:
        for a in names:
            if isinstance(axes[a], Range):
                raise ConfigError(f"{flag(a)} {axes[a]} is a range: ranges are for --random K; "
                                  "a grid takes a comma list")
        return [dict(zip(names, values)) for values in itertools.product(*(axes[a] for a in names))]
    rng = np.random.default_rng(sample_seed)
    drawn = []
    for _ in range(samples):
        settings = {a: axes[a].sample(rng) if isinstance(axes[a], Range) else axes[a][int(rng.integers(len(axes[a])))]
                    for a in names}
        if settings not in drawn:
            drawn.append(settings)
    return drawn


def _spec(axis, spec):
    name, positional, options = parse_spec(spec, axis)
    if positional:
        raise ConfigError(f"{axis} {name!r}: bare values are not allowed here; write {name}:key=value")
    return name, options


def plan(base, settings_list, seeds):
    """Every trial: {"key", "config_key", "seed", "settings", "config" (resolved)}, seeds innermost.

    `base` is the partial config shared by all trials (epochs, regularisers, ...)."""
    from .experiment import resolve  # imported when used: `rnnrun --help` need not load the trainer
    trials = []
    for settings in settings_list:
        partial = dict(base)
        for axis, value in settings.items():
            if axis in SPEC_AXES:
                partial[axis], partial[f"{axis}_options"] = _spec(axis, value)
            else:
                partial[axis] = value
        for seed in seeds:
            config = resolve({**partial, "seed": seed})
            trials.append({"key": trial_key(config), "config_key": configuration_key(config), "seed": seed,
                           "settings": settings, "config": config})
    return trials


NOT_IDENTITY = ("meta", "log")  # a run's metadata and its loggers change no number it computes


def trial_key(config):
    """A trial's identity: a hash of its resolved config without the run's metadata and loggers."""
    return digest({k: v for k, v in config.items() if k not in NOT_IDENTITY})


def configuration_key(config):
    """What the seeds of one configuration share: the trial key without the seed."""
    return digest({k: v for k, v in config.items() if k not in NOT_IDENTITY + ("seed",)})


def digest(value):
    """A short, stable hash of a plain value (dict keys sorted): the identity of a trial or a study."""
    return hashlib.sha1(json.dumps(plain(value), sort_keys=True).encode()).hexdigest()[:12]


def label(settings):
    """'cell=gru lr=0.003' for tables and progress lines."""
    return " ".join(f"{k}={v}" for k, v in settings.items()) or "(defaults)"


# ---- the sweep's folder -------------------------------------------------------------------------------
class Sweep:
    """runs/sweeps/<id>/: sweep.toml, summary.json, and one ordinary run folder per trial."""

    def __init__(self, root, sweep_id):
        self.root, self.id = root, sweep_id
        self.group = os.path.join(SWEEPS, sweep_id)     # what RunStore.create puts the trials under
        self.path = os.path.join(root, self.group)

    def file(self, name):
        return os.path.join(self.path, name)

    def definition(self):
        return load_toml(self.file("sweep.toml"))

    def write_definition(self, definition):
        atomic_write(self.file("sweep.toml"), tomli_w.dumps(plain(definition)))

    def summary(self):
        return read_json(self.file("summary.json"))

    def write_summary(self, doc):
        atomic_write(self.file("summary.json"), json.dumps(plain(doc), indent=2) + "\n")

    def runs(self):
        """Its trials' run folders (every attempt), oldest first."""
        found = [Run(os.path.join(self.path, name)) for name in os.listdir(self.path)
                 if os.path.isfile(os.path.join(self.path, name, "config.toml"))]
        return sorted(found, key=lambda r: (os.path.getmtime(r.file("config.toml")), r.id))

    def done(self):
        """{trial key: summary} of the trials whose run folder holds a finished or diverged result."""
        results = {}
        for run in self.runs():
            try:
                summary = run.summary()
                if summary.get("status") in DONE:
                    results[trial_key(run.config())] = summary
            except DamagedRun:  # a damaged attempt is not a result: the trial runs again
                pass
        return results

    def resumable(self):
        """{trial key: run folder} of unfinished attempts with a readable checkpoint, the latest per trial."""
        found = {}
        for run in self.runs():
            try:
                if run.status() not in DONE + ("running",) and run.has_checkpoint() and run.check() is None:
                    found[trial_key(run.config())] = run.path
            except DamagedRun:
                pass
        return found


def create_sweep(root, name):
    """A new, uniquely named sweep folder <root>/sweeps/<timestamp>-<name>[-n]."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{slug(name)}"
    os.makedirs(os.path.join(root, SWEEPS), exist_ok=True)
    sweep_id, n = base, 1
    while True:
        try:
            os.makedirs(os.path.join(root, SWEEPS, sweep_id))
            return Sweep(root, sweep_id)
        except FileExistsError:
            n += 1
            sweep_id = f"{base}-{n}"


def find_sweep(root, sweep_id):
    """A sweep by id, unique id prefix, folder path, or 'last'."""
    if os.path.isfile(os.path.join(sweep_id, "sweep.toml")):
        path = os.path.abspath(sweep_id)
        return Sweep(os.path.dirname(os.path.dirname(path)), os.path.basename(path))
    folder = os.path.join(root, SWEEPS)
    ids = sorted(name for name in (os.listdir(folder) if os.path.isdir(folder) else [])
                 if os.path.isfile(os.path.join(folder, name, "sweep.toml")))
    if sweep_id == "last" and ids:
        return Sweep(root, ids[-1])
    matches = [i for i in ids if i == sweep_id] or [i for i in ids if i.startswith(sweep_id)]
    if len(matches) == 1:
        return Sweep(root, matches[0])
    if not matches:
        recent = ", ".join(ids[-5:]) or "none yet"
        raise ConfigError(f"no sweep {sweep_id!r} in {folder}; recent sweeps: {recent}")
    raise ConfigError(f"sweep id {sweep_id!r} is ambiguous: {', '.join(matches[:5])}")


def sweep_runs(store, sweep_id):
    """The run folders of a sweep's trials (for `rnnrun runs --sweep ID`)."""
    return find_sweep(store.root, sweep_id).runs()


# ---- one trial, wherever it runs --------------------------------------------------------------------
_loaded_plugins = set()
#: Held around every trial (sweep's and tune's): the seeded generator and the backend are global per
#: process, so two trials in one process's threads run one after the other.
trial_lock = threading.Lock()


def plugin_ref(plugin):
    """A plugin file as an absolute path (workers may start elsewhere), a module name as it is."""
    text = str(plugin)
    return os.path.abspath(text) if text.endswith(".py") or os.sep in text or os.path.exists(text) else text


def load_plugins_once(plugins):
    """Load each plugin once per process: loading a file twice would register its names twice."""
    for plugin in map(plugin_ref, plugins):
        if plugin not in _loaded_plugins:
            load_plugin(plugin)
            _loaded_plugins.add(plugin)


def mark_loaded(plugins):
    """Record plugins that something else (the CLI's group options) already loaded in this process."""
    _loaded_plugins.update(map(plugin_ref, plugins))


class RecordingStore(RunStore):
    """A RunStore that remembers the run it made, so a failed trial's folder can be read back."""
    run = None

    def create(self, cell, data, group=None):
        self.run = super().create(cell, data, group)
        return self.run


def run_trial(config, root, group, plugins=(), resume_path=None):
    """Run one trial with `execute` (or, given the folder of an earlier attempt that has a checkpoint,
    continue it with `resume`); returns its summary whatever happens.

    status "finished" or "diverged" (from execute), "failed" (an exception, with its message) or
    "interrupted" (Ctrl-C); the trial's folder keeps its files in every case."""
    store = RecordingStore(root)
    try:
        from .experiment import execute, resume
        with trial_lock:
            load_plugins_once(plugins)
            if resume_path is not None:
                store.run = Run(resume_path)
                return resume(store.run)
            return execute(config, store, group=group)
    except KeyboardInterrupt as e:
        status, message = "interrupted", why(e)
    except Exception as e:  # a broken trial must not stop the sweep: it is recorded and the rest go on
        status, message = "failed", f"{type(e).__name__}: {e}"
    try:
        summary = store.run.summary() if store.run is not None else {}
    except DamagedRun:
        summary = {}
    summary.update(status=status, message=message)
    return summary


def init_worker():
    """Pool initializer: a worker ignores Ctrl-C while idle; its trial's own handler turns it back on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_trial(config, root, group, plugins, resume_path=None):
    """run_trial in a pool worker or a Dask task: Ctrl-C ends the trial as "interrupted", not the worker
    (once the epoch's files are whole). SIGTERM keeps its default: the sweep uses it to end a worker."""
    with on_stop((signal.SIGINT,)):
        return run_trial(config, root, group, plugins, resume_path)


# ---- executors: each calls record(trial, summary) in this process as results arrive ----------------
def run_trials(trials, root, group, plugins=(), workers=1, client=None, record=None):
    """Run `trials` here (workers=1), on a local process pool, or on a Dask cluster (`client`, see `connect`).

    Ctrl-C cancels the pending trials, records the running ones as they stop, and re-raises."""
    record = record or (lambda trial, summary: None)
    if not trials:
        return
    if client is not None:
        _on_dask(trials, client, root, group, plugins, record)
    elif workers <= 1 or len(trials) == 1:
        _in_process(trials, root, group, plugins, record)
    else:
        _on_pool(trials, min(workers, len(trials)), root, group, plugins, record)


def _in_process(trials, root, group, plugins, record):
    for trial in trials:
        summary = run_trial(trial["config"], root, group, plugins, trial.get("resume"))
        record(trial, summary)
        if summary["status"] == "interrupted":
            raise KeyboardInterrupt


@contextlib.contextmanager
def one_blas_thread():
    """Workers read the environment when they start: one BLAS thread each, so N workers use N cores."""
    saved = {name: os.environ.get(name) for name in BLAS_THREADS}
    os.environ.update({name: "1" for name in BLAS_THREADS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _on_pool(trials, workers, root, group, plugins, record):
    queue, running = list(trials), {}

    def submit_next():
        trial = queue.pop(0)
        running[pool.submit(_worker_trial, trial["config"], root, group, list(plugins), trial.get("resume"))] = trial

    # spawn, not fork: a worker starts clean (no copied locks, registries or BLAS thread pools)
    context = multiprocessing.get_context("spawn")
    with one_blas_thread():  # workers start on submit, so they all see one BLAS thread
        pool = futures.ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker)
        for _ in range(workers):
            submit_next()
    # One trial per worker at a time, the rest kept here: on Ctrl-C nothing is queued in the pool,
    # so no trial starts after it, and the running ones stop as "interrupted".
    try:
        while running:
            finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                record(running.pop(future), _outcome(future))
                if queue:
                    submit_next()
    except KeyboardInterrupt:
        # Ctrl-C reached the workers too: their trials save their files and come back at once
        finished, _ = futures.wait(running, timeout=10)
        for future in finished:
            record(running[future], _outcome(future))
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()  # a worker that did not get the signal must not outlive the sweep
        raise
    pool.shutdown()


def connect(address):
    """A Dask client for the scheduler at `address` (Dask is an optional extra, imported only here)."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'tinygrad_rnn[dask]'") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {message}") from None


def _on_dask(trials, client, root, group, plugins, record):
    from distributed import as_completed
    pending = {client.submit(_worker_trial, t["config"], root, group, list(plugins), t.get("resume"), pure=False): t
               for t in trials}
    try:
        for future in as_completed(pending, loop=client.loop):
            record(pending[future], _outcome(future))
    except KeyboardInterrupt:
        client.cancel(list(pending))
        raise


def _outcome(future):
    """A finished future's summary; a lost worker or a task error becomes a failed trial."""
    try:
        return future.result()
    except Exception as e:
        return {"status": "failed", "message": f"{type(e).__name__}: {e}"}


# ---- the driver: run what is missing, write results as they arrive -----------------------------------
def run_sweep(sweep, trials, workers=1, client=None, plugins=(), on_result=None):
    """Run the trials of `sweep` that have no finished result yet; returns the summary document.

    summary.json is rewritten after every result. KeyboardInterrupt is re-raised after it is written
    with status "interrupted"."""
    earlier = sweep.done()
    records = {t["key"]: _record(t, earlier[t["key"]]) for t in trials if t["key"] in earlier}
    attempts = sweep.resumable()  # an unfinished trial with a checkpoint continues from it
    todo = [{**t, "resume": attempts.get(t["key"])} for t in trials if t["key"] not in records]
    resumed = len(records)

    def record(trial, summary):
        records[trial["key"]] = _record(trial, summary)
        sweep.write_summary(summarise(sweep, trials, records, "running", resumed))
        if on_result:
            on_result(trial, records[trial["key"]])

    sweep.write_summary(summarise(sweep, trials, records, "running", resumed))
    watchers = group_loggers(trials, "sweep", sweep.id, sweep.path, sweep.group, sweep.root,
                             {k: v for k, v in sweep.definition().items() if k not in ("trials", "command")})
    try:
        run_trials(todo, os.path.abspath(sweep.root), sweep.group, plugins, workers, client, record)
    except KeyboardInterrupt:
        sweep.write_summary(summarise(sweep, trials, records, "interrupted", resumed))
        watchers.end_group({k: v for k, v in summarise(sweep, trials, records, "interrupted", resumed).items()
                            if k not in ("trials", "configurations")}, seconds=5)
        raise
    doc = summarise(sweep, trials, records, "finished", resumed)
    sweep.write_summary(doc)
    watchers.end_group({k: v for k, v in doc.items() if k not in ("trials", "configurations")})
    return doc


def group_loggers(trials, kind, group_id, path, group, root, settings):
    """The loggers of a sweep's or study's trials (its first trial's `log`), told that the group starts;
    they have made its record (MLflow's parent run) before this returns, so every trial finds it."""
    from .loggers import GroupInfo, Loggers
    specs = trials[0]["config"].get("log") if trials else None
    return Loggers.start_group(specs, GroupInfo(id=group_id, kind=kind, path=os.path.abspath(path), group=group,
                                                runs_dir=os.path.abspath(root), settings=settings))


def _record(trial, summary):
    keep = {k: v for k, v in summary.items() if k != "val_losses"}
    return {"key": trial["key"], "config_key": trial["config_key"], "seed": trial["seed"],
            "settings": trial["settings"], **keep}


def summarise(sweep, trials, records, status, resumed=0):
    """The sweep's summary.json: every trial (in plan order, "pending" if not run) and the configurations."""
    rows = [records.get(t["key"]) or {"key": t["key"], "config_key": t["config_key"], "seed": t["seed"],
                                      "settings": t["settings"], "status": "pending"} for t in trials]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("finished", "diverged", "failed", "interrupted",
                                                               "pending")}
    return {"id": sweep.id, "path": sweep.path, "status": status, "trials_total": len(rows), **counts,
            "resumed": resumed, "configurations": aggregate(trials, records), "trials": rows}


def aggregate(trials, records):
    """One row per configuration: mean ± std over its seeds of the test metric and the validation loss.

    std is the sample standard deviation (n - 1), None with fewer than two finished seeds. The best
    configuration (per dataset, by mean test metric, respecting `higher_is_better`) has best=True."""
    rows = {}
    for trial in trials:
        row = rows.setdefault(trial["config_key"], {
            "config_key": trial["config_key"], "settings": trial["settings"], "data": trial["config"]["data"],
            "trials": 0, "finished": 0, "failed": 0, "_done": []})
        row["trials"] += 1
        result = records.get(trial["key"])
        if result is None:
            continue
        if result["status"] == "finished":
            row["finished"] += 1
            row["_done"].append(result)
        elif result["status"] in ("failed", "diverged"):
            row["failed"] += 1
    for row in rows.values():
        done = row.pop("_done")
        first = done[0] if done else {}
        row.update(metric=first.get("metric"), higher_is_better=first.get("higher_is_better", False),
                   baseline_name=first.get("baseline_name"), params=first.get("params"), best=False)
        for name in ("test_metric", "val_loss", "test_loss", "baseline", "seconds"):
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std([s.get(name) for s in done])
    for data in {row["data"] for row in rows.values()}:
        scored = [r for r in rows.values() if r["data"] == data and r["test_metric_mean"] is not None]
        if scored:
            pick = max if scored[0]["higher_is_better"] else min
            pick(scored, key=lambda r: r["test_metric_mean"])["best"] = True
    return list(rows.values())


def mean_std(values):
    """(mean, sample std) of the finite numbers in `values`; (None, None) if there are none."""
    values = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def definition(sweep, axes, base, seeds, samples, sample_seed, plugins, trials, command=""):
    """What sweep.toml holds: enough to see what the sweep is and to resume it exactly."""
    return {"id": sweep.id, "version": __version__, "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": command, "seeds": len(seeds), "random": samples, "sample_seed": sample_seed,
            "plugins": [plugin_ref(p) for p in plugins],
            "axes": {a: str(v) if isinstance(v, Range) else v for a, v in axes.items()},
            "base": base, "trials": trials}
