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
import logging
import math
import multiprocessing
import os
import re
import signal
import socket
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import numpy as np
import tomli_w

from .. import __version__
from ..baselines import best as best_baseline
from ..selection import pick_best
from .comparable import comparison_key
from .config import load_toml, parse_spec, parse_value, split_names
from ..errors import ConfigError, PluginError, TinygradRNNError, UnknownPluginError
from ..threads import ENV as THREADS_ENV
from ..registry import load_plugin
from .store import DamagedRun, Run, RunStore, atomic_write, dask_worker_address, plain, read_json, slug
from .signals import Stopped, ignoring_stops, interrupt_workers, on_stop, why

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


class SchedulerLost(SweepError):
    """The Dask scheduler went away mid-sweep: the trials it had are neither finished nor failed here."""


def flag(axis):
    if "." in axis:  # a plugin's option (data.window): named as the user wrote it
        return f"option {axis}"
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


# ---- a plugin's option as an axis: --data "csv:...,window=12|24|48", --reg "dropout:p=0.1|0.3" ----------
NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
OPTION_RANGE = re.compile(rf"({NUMBER}):({NUMBER})(:(log|linear))?")


def option_choices(spec):
    """(the spec without its searched options, {option: [choices] or Range}) of one NAME:k=v,... spec.

    An option value `a|b|c` is a choice; `lo:hi[:log|linear]` of two numbers a range (for tune and
    --random; uniform unless :log, integers when both ends are). Other options stay in the spec."""
    name, _, rest = spec.partition(":")
    kept, searched = [], {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        value = value.strip()
        if equals and "|" in value:
            choices = [parse_value(v) for v in value.split("|") if v.strip()]
            if len(choices) < 2:
                raise ConfigError(f"option {key.strip()}={value!r} in {spec!r}: write two or more choices a|b")
            searched[key.strip()] = list(dict.fromkeys(choices))
        elif equals and OPTION_RANGE.fullmatch(value):
            match = OPTION_RANGE.fullmatch(value)
            low, high = parse_value(match.group(1)), parse_value(match.group(4))
            if not low < high:
                raise ConfigError(f"option {key.strip()}={value!r} in {spec!r}: a range needs LOW < HIGH")
            searched[key.strip()] = Range(low, high, match.group(8) == "log",
                                          isinstance(low, int) and isinstance(high, int))
        else:
            kept.append(item)
    return name + (":" + ",".join(kept) if kept else ""), searched


def option_axes(axes, regs=()):
    """(axes, regularisers, option axes): the searched options of the spec axes (data, cell, optimizer,
    when the flag gives one spec) and of the --reg specs taken out as axes of their own, named
    `data.window`, `cell.nonlinearity`, `reg.dropout.p`; what remains are plain specs."""
    found, axes = {}, dict(axes)
    for axis in SPEC_AXES:
        if axis not in axes:
            continue
        stripped = [option_choices(spec) for spec in axes[axis]]
        if any(searched for _, searched in stripped):
            if len(stripped) > 1:
                raise ConfigError(f"{flag(axis)}: options with choices (a|b) or ranges need a single {axis} spec; "
                                  f"give one, or list whole specs: {flag(axis)} NAME:k=1,NAME:k=2")
            axes[axis] = [stripped[0][0]]
            found.update({f"{axis}.{option}": values for option, values in stripped[0][1].items()})
    plain_regs = []
    for spec in regs:
        stripped, searched = option_choices(spec)
        plain_regs.append(stripped)
        name = stripped.partition(":")[0].strip()
        found.update({f"reg.{name}.{option}": values for option, values in searched.items()})
    return axes, plain_regs, found


def _set_option(partial, axis, value):
    """Put an option axis's value into a trial's partial config (data.window → data_options["window"])."""
    kind, _, option = axis.partition(".")
    if kind == "reg":
        name, _, option = option.partition(".")
        partial["regularisers"] = [{**r, "options": {**r.get("options", {}), option: value}} if r["name"] == name
                                   else r for r in partial.get("regularisers", [])]
    else:
        partial[f"{kind}_options"] = {**(partial.get(f"{kind}_options") or {}), option: value}


def axis_order(axes):
    """The grid's order: the plain axes (AXES), then the option axes by name."""
    return [a for a in AXES if a in axes] + sorted(a for a in axes if a not in AXES)


def configurations(axes, samples=None, sample_seed=0):
    """The settings of every configuration: the grid's product, or `samples` random draws.

    A random draw takes each Range's sample and one value of each list, so `--cell rnn,gru --random 8`
    draws the cell too. Repeated draws are dropped (they would be the same trials)."""
    names = axis_order(axes)
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
            elif axis in AXES:
                partial[axis] = value
        for axis, value in settings.items():  # a plugin's option, after the spec it belongs to
            if axis not in AXES:
                _set_option(partial, axis, value)
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

    def running(self, live_workers=None):
        """{trial key: Run} of attempts whose process is still at it (the latest per trial)."""
        found = {}
        for run in self.runs():
            try:
                if run.status(live_workers) == "running":
                    found[trial_key(run.config())] = run
            except DamagedRun:
                pass
        return found

    def resumable(self, live_workers=None):
        """{trial key: run folder} of unfinished attempts with a readable checkpoint, the latest per trial
        (`live_workers`: the Dask workers alive now, where known: an attempt of any other one is over)."""
        found = {}
        for run in self.runs():
            try:
                if run.status(live_workers) not in DONE + ("running",) and run.has_checkpoint() and \
                        run.check() is None:
                    found[trial_key(run.config())] = run.path
            except DamagedRun:
                pass
        return found


@contextlib.contextmanager
def folder_lock(folder, what):
    """Held while a sweep or a study runs (new or continued): a second rnnrun on the same one is refused,
    so no trial runs twice at once. An advisory lock on the folder's `.lock` file, which the system
    releases when its process ends, however it ends. `what` names it in the refusal ("sweep 2026...")."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock to take
        yield
        return
    with open(os.path.join(folder, ".lock"), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise ConfigError(f"{what} is being run by {holder}; wait for it to end or stop it first "
                              "(one rnnrun at a time; for more processes use --workers or --scheduler)") from None
        f.truncate(0)
        f.write(f"rnnrun pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)


def sweep_lock(sweep):
    return folder_lock(sweep.path, f"sweep {sweep.id}")


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


class DaskStop:
    """The stop of a sweep or study whose trials run on Dask workers: Python signals reach the client
    only, so the client sets a Dask Variable (named per command) to the signal's number, and each trial
    reads it between batches (at most once a second) and stops as Ctrl-C would stop it here."""

    def __init__(self, name):
        self.name, self._variable, self._next = name, None, 0.0

    def start(self, client):
        """Client side, before any trial is submitted."""
        from distributed import Variable
        self._variable = Variable(self.name, client=client)
        self._variable.set(0)
        return self

    def set(self, signum):
        """Client side: ask every running trial to stop (and every trial not started yet not to start)."""
        if self._variable is not None:
            with contextlib.suppress(Exception):  # a lost scheduler: nothing left to tell
                self._variable.set(int(signum))

    def seen(self):
        """Worker side: the signal's number once the client has asked to stop, else 0."""
        from distributed import Variable
        if self._variable is None:
            self._variable = Variable(self.name)
        try:
            return int(self._variable.get(timeout=5) or 0)
        except Exception:  # not set or scheduler unreachable: go on; the client's own loss is handled there
            return 0

    def check(self, *_):
        """Worker side, as a trainer's on_batch callback: raise Stopped once asked."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + 1.0
            signum = self.seen()
            if signum:
                raise Stopped(signum)

    def __reduce__(self):  # sent to workers by name: the Variable is looked up there
        return (DaskStop, (self.name,))


NOT_STARTED = "not started"  # a Dask trial asked to stop before it began: it stays pending


def keep_freed_memory():
    """Undo, for training, what a Dask nanny's MALLOC_TRIM_THRESHOLD_=65536 does to glibc's malloc.

    That setting (it helps Dask report memory) fixes the trim threshold, which also turns off glibc's
    growing mmap threshold: every NumPy array over 128 KiB is then mapped fresh and its pages faulted in
    again on each batch. Measured on a GRU (hidden 128, batch 128, 4 epochs of 2000 sine windows, one
    BLAS thread): 1.37 s of CPU time without the variable, 1.86-1.90 s with it (sys time 0.15 → 0.7 s),
    1.21 s with it and this call. The process keeps up to 256 MiB of freed memory for the next batch.
    Once per process; nothing where the variable is unset or malloc is not glibc's."""
    if _malloc_kept or "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    _malloc_kept.append(True)
    try:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt  # glibc only (musl has none): AttributeError elsewhere
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_TRIM_THRESHOLD, 256 << 20)) and bool(mallopt(M_MMAP_THRESHOLD, 32 << 20))


_malloc_kept = []


def run_trial(config, root, group, plugins=(), resume_path=None, stop=None):
    """`_run_trial`, its summary marked, on a Dask worker, with the host and worker it ran on."""
    keep_freed_memory()
    summary = _run_trial(config, root, group, plugins, resume_path, stop)
    worker = dask_worker_address()
    return {**summary, "host": socket.gethostname(), "worker": worker} if worker else summary


def _run_trial(config, root, group, plugins=(), resume_path=None, stop=None):
    """Run one trial with `execute` (or, given the folder of an earlier attempt that has a checkpoint,
    continue it with `resume`); returns its summary whatever happens.

    status "finished" or "diverged" (from execute), "failed" (an exception, with its message) or
    "interrupted" (Ctrl-C); the trial's folder keeps its files in every case."""
    store, setup = RecordingStore(root), False
    try:
        from .experiment import execute, resume
        with trial_lock:
            load_plugins_once(plugins)
            live = live_dask_workers()
            if resume_path is None and live is not None and str(group).startswith(SWEEPS + os.sep):
                # Dask runs a lost worker's task again: continue that attempt rather than start over
                resume_path = Sweep(root, os.path.basename(group)).resumable(live).get(trial_key(config))
            check = stop.check if stop is not None else None
            if stop is not None and stop.seen():
                return {"status": NOT_STARTED}
            if resume_path is not None:
                store.run = Run(resume_path)
                return resume(store.run, live_workers=live, on_batch=check)
            return execute(config, store, group=group, on_batch=check)
    except KeyboardInterrupt as e:
        status, message = "interrupted", why(e)
    except Exception as e:  # a broken trial must not stop the sweep: it is recorded and the rest go on
        status, message = "failed", f"{type(e).__name__}: {e}"
        setup = store.run is None and isinstance(e, (PluginError, UnknownPluginError, ImportError, OSError))
        worker = dask_worker_address()
        if worker:  # on a cluster, where it failed is half of why
            message += f" (on host {socket.gethostname()}, Dask worker {worker})"
    try:
        summary = store.run.summary() if store.run is not None else {}
    except DamagedRun:
        summary = {}
    summary.update(status=status, message=message)
    if setup:  # before its run existed, a plugin or file this worker cannot load: not the trial's fault,
        summary["setup_failed"] = True  # and another worker may well run it
    return summary


def init_worker():
    """Pool initializer: a worker ignores Ctrl-C while idle; its trial's own handler turns it back on.
    What a plugin prints in a worker goes to stderr: stdout is the parent's (its --json document)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptors: nothing to redirect
        pass


def live_dask_workers():
    """The addresses of the Dask workers the scheduler knows now, asked from inside a Dask task; None
    anywhere else (a local run or pool worker)."""
    if dask_worker_address() is None:
        return None
    try:
        from distributed import get_client
        return set(get_client().scheduler_info()["workers"])
    except Exception:  # the scheduler cannot be asked: nothing is known, so nothing is assumed gone
        return None


def _worker_trial(config, root, group, plugins, resume_path=None, stop=None):
    """run_trial in a pool worker or a Dask task: Ctrl-C ends the trial as "interrupted", not the worker
    (once the epoch's files are whole). SIGTERM keeps its default: the sweep uses it to end a worker.
    On Dask, `stop` (a DaskStop) is how the client's Ctrl-C or SIGTERM reaches the trial."""
    with on_stop((signal.SIGINT,)):
        return run_trial(config, root, group, plugins, resume_path, stop)


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
    saved = {name: os.environ.get(name) for name in BLAS_THREADS + (THREADS_ENV,)}
    os.environ.update({name: "1" for name in BLAS_THREADS})
    if os.environ.get(THREADS_ENV, "auto").strip().lower() == "auto":  # a count the user chose is kept
        os.environ[THREADS_ENV] = "1"
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
        # Ctrl-C reached the workers too (SIGTERM to this process alone is passed on): their trials save
        # their files and come back at once
        interrupt_workers((getattr(pool, "_processes", None) or {}).values())
        finished, _ = futures.wait(running, timeout=10)
        for future in finished:
            record(running[future], _outcome(future))
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()  # a worker that did not get the signal must not outlive the sweep
        raise
    pool.shutdown()


SCHEDULER_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})$")
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def check_scheduler(address):
    """ConfigError (exit 2) unless `address` reads as a Dask scheduler's [SCHEME://]HOST:PORT; checked before
    anything connects or is written, so that a typo is not a 10-second wait for a host that is not there."""
    if address is None:
        return None
    match = SCHEDULER_ADDRESS.match(address.strip())
    if not match or match["scheme"] not in (None, *SCHEDULER_SCHEMES) or not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(f"--scheduler {address!r} is not a Dask scheduler address; give tcp://HOST:PORT, "
                          f"e.g. tcp://10.0.0.5:8786 (schemes: {', '.join(SCHEDULER_SCHEMES)})")
    return address.strip()


def connect(address):
    """A Dask client for the scheduler at `address` (Dask is an optional extra, imported only here)."""
    address = check_scheduler(address)
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'tinygrad_rnn[dask]'") from None
    # Dask's client logs each failed reconnection with a traceback; rnnrun says what happened in one line
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {message}") from None


STOP_WAIT_SECONDS = 30  # how long a stopped Dask sweep waits for its running trials to save and return


def _on_dask(trials, client, root, group, plugins, record):
    from distributed import as_completed
    stop = DaskStop(f"rnnrun-stop-{group}-{os.getpid()}-{time.time_ns()}").start(client)
    pending = {client.submit(_worker_trial, t["config"], root, group, list(plugins), t.get("resume"), stop,
                             pure=False): t for t in trials}
    results = as_completed(pending, loop=client.loop)
    unusable = set()  # workers where a trial could not even start (e.g. a plugin file they cannot see)
    lost = 0          # trials whose future the scheduler's loss cancelled: their outcome is not known here
    try:
        for future in results:
            if future.status == "cancelled":  # only a lost scheduler cancels here (a stop is handled below)
                pending.pop(future)
                lost += 1
                continue
            trial, outcome = pending.pop(future), _outcome(future)
            if outcome.get("setup_failed") and outcome.get("worker"):
                unusable.add(outcome["worker"])
                others = sorted(set(client.scheduler_info()["workers"]) - unusable)
                if others:  # one bad worker must not fail every trial it is handed: the others take it
                    retry = client.submit(_worker_trial, trial["config"], root, group, list(plugins),
                                          trial.get("resume"), stop, pure=False, workers=others,
                                          allow_other_workers=False)
                    pending[retry] = trial
                    results.add(retry)
                    continue
            record(trial, readable_here(outcome))
        if lost:
            raise SchedulerLost(f"lost the Dask scheduler with {lost} trial{'s' if lost > 1 else ''} running or "
                                "waiting; trials already running on workers may finish in their folders")
    except KeyboardInterrupt as e:
        # the signal reached this process only: the trials on the workers are told through `stop`, save
        # their files and come back "interrupted"; those not started yet come back at once, still pending
        stop.set(getattr(e, "signum", signal.SIGINT))
        with ignoring_stops():
            try:
                for future in as_completed(list(pending), timeout=STOP_WAIT_SECONDS, loop=client.loop):
                    outcome = _outcome(future)
                    trial = pending.pop(future)
                    if outcome.get("status") != NOT_STARTED:
                        record(trial, outcome)
            except Exception:  # timed out, or the scheduler is gone: what came back is recorded
                pass
            client.cancel(list(pending))
        raise


def readable_here(summary):
    """`summary` of a trial that ran on a Dask worker, checked against what this machine can read: a run
    written where the client cannot see it (no shared file system) is a failure said out loud, not a
    result that `rnnrun runs` will never find."""
    run_dir = summary.get("run_dir")
    if summary.get("status") in (None, NOT_STARTED) or not run_dir:
        return summary
    try:
        here = Run(run_dir).summary().get("run_id") == summary.get("run_id")
    except DamagedRun:
        here = False
    if here:
        return summary
    where = f"host {summary['host']}" if summary.get("host") else "a worker"
    return {**summary, "status": "failed",
            "message": f"{where} wrote the run to {run_dir}, which this machine cannot read: give the workers "
                       f"--runs-dir on a file system this machine shares (its result: {summary.get('status')})"}


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
    with sweep_lock(sweep):
        return _run_sweep(sweep, trials, workers, client, plugins, on_result)


def _run_sweep(sweep, trials, workers, client, plugins, on_result):
    live = set(client.scheduler_info()["workers"]) if client is not None else None
    earlier = sweep.done()
    records = {t["key"]: _record(t, earlier[t["key"]]) for t in trials if t["key"] in earlier}
    for key, run in sweep.running(live).items():  # an attempt still training (an orphaned worker's) is left be
        if key not in records:
            summary = run.summary()
            records[key] = _record(next(t for t in trials if t["key"] == key), {
                "status": "running", "run_dir": run.path, "run_id": run.id,
                "message": f"still running in {run.path} (pid {summary.get('pid')} on {summary.get('host')}); "
                           "--resume again once it ends collects it"})
    attempts = sweep.resumable(live)  # an unfinished trial with a checkpoint continues from it
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
    except SchedulerLost as e:  # the unknown trials stay pending: --resume collects what the workers finish
        sweep.write_summary({**summarise(sweep, trials, records, "failed", resumed), "message": str(e)})
        watchers.end_group({"status": "failed", "message": str(e)}, seconds=5)
        raise SchedulerLost(f"{e}; rnnrun sweep --resume {sweep.id} collects them and runs the rest") from None
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
    """One row per configuration: mean ± std over its seeds of the validation and test metrics and losses.

    std is the sample standard deviation (n - 1), None with fewer than two finished seeds. The best
    configuration among comparable ones (same data spec and metric, comparable.comparison_key) by mean
    *validation* metric (selection.selection_key; the test metric is reported, never used to choose)
    has best=True."""
    rows, configs = {}, {}
    for trial in trials:
        configs.setdefault(trial["config_key"], trial["config"])
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
        for name in ("val_metric", "test_metric", "val_loss", "test_loss", "baseline", "seconds"):
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std([s.get(name) for s in done])
        best = best_baseline({name: mean_std(values)[0] for name, values in _baseline_values(done).items()},
                             row["higher_is_better"])
        row["best_baseline"] = best
        row["comparable"] = "{} ({})".format(*comparison_key(configs[row["config_key"]], first, across_inputs=True))
    for comparable in {row["comparable"] for row in rows.values()}:
        scored = [r for r in rows.values() if r["comparable"] == comparable and r["finished"]]
        chosen = pick_best(scored, scored[0]["higher_is_better"] if scored else False,
                           key=lambda r: {"val_metric": r["val_metric_mean"], "val_loss": r["val_loss_mean"]})
        if chosen is not None:
            chosen["best"] = True
    return list(rows.values())


def _baseline_values(summaries):
    """{baseline name: [value per run]} of the runs' `baselines`."""
    found = {}
    for s in summaries:
        for name, value in (s.get("baselines") or {}).items():
            found.setdefault(name, []).append(value)
    return found


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


# ---- a sweep from its flags: what `rnnrun sweep` and the API's sweep() both do first ---------------------
DEFINING = ("cell", "data", "optimizer", "lr", "hidden", "layers", "batch_size", "reg", "epochs", "bidirectional",
            "seeds", "samples", "sample_seed")   # the flags that define a sweep; --resume reads them from sweep.toml


@dataclass
class SweepPlan:
    """A sweep checked and ready to run: its trials, and its folder (`sweep`, for --resume) or the
    function that makes it (`create`, called only once nothing can fail any more)."""
    trials: list
    plugins: list
    sweep: "Sweep" = None
    create: object = None


def plan_sweep(root, flags, plugins=(), resume_id=None, command="", log=()):
    """Check a sweep's flags (`flags`: DEFINING's values, lists of texts as the command line gives
    them) and every trial's config; make nothing. `plugins`: loaded already, recorded in sweep.toml."""
    from .inputs import config_from_flags
    from .experiment import check_all, resolve
    plugins = [plugin_ref(p) for p in plugins]
    if resume_id:
        given = [k for k in DEFINING if flags.get(k) not in (None, ())]
        if given:
            names = ", ".join("--random" if k == "samples" else flag(k) for k in given)
            raise ConfigError(f"--resume takes the sweep's definition from its sweep.toml; drop {names}")
        sweep = find_sweep(root, resume_id)
        recorded = sweep.definition()
        plugins = list(dict.fromkeys(recorded.get("plugins", []) + plugins))
        load_plugins_once(plugins)
        trials = recorded.get("trials", [])
        if log:  # the loggers of the trials still to run (a trial's key leaves its loggers out)
            loggers = config_from_flags(None, log=tuple(log))["log"]
            trials = [{**t, "config": {**t["config"], "log": loggers}} for t in trials]
        check_all([resolve(dict(trial["config"])) for trial in trials])  # unknown names fail here, not in each trial
        return SweepPlan(trials, plugins, sweep=sweep)
    axes = {axis: parse_axis(axis, flags[axis]) for axis in AXES if flags.get(axis)}
    if "cell" not in axes or "data" not in axes:
        raise ConfigError("a sweep needs --cell and --data, e.g. rnnrun sweep --cell rnn,gru --data adding:T=100")
    axes, regs, extra_axes = option_axes(axes, flags.get("reg") or ())  # window=12|24 → an axis data.window
    axes.update(extra_axes)
    base = config_from_flags(None, data=None, optimizer=None, reg=regs, epochs=flags.get("epochs"),
                             bidirectional=flags.get("bidirectional"), log=tuple(log))
    seeds = list(range(flags.get("seeds") or 1))
    samples, sample_seed = flags.get("samples"), flags.get("sample_seed") or 0
    trials = plan(base, configurations(axes, samples, sample_seed), seeds)
    check_all([t["config"] for t in trials])  # a bad option fails the sweep now (exit 2), not each trial

    def create():
        sweep = create_sweep(root, "_".join(dict.fromkeys(parse_spec(spec)[0] for spec in axes["data"])))
        sweep.write_definition(definition(sweep, axes, base, seeds, samples, sample_seed, plugins, trials, command))
        return sweep
    return SweepPlan(trials, plugins, create=create)
