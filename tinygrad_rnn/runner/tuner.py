"""Hyper-parameter search with Optuna: a sampler proposes settings, a pruner stops hopeless trials early.

    rnnrun tune --cell gru --data sine --lr 1e-4:1e-1 --hidden 4:64 --trials 12 --epochs 4

    runs/tunes/<study>/
        study.db        the Optuna study (SQLite): every trial's settings, per-epoch values and state
        best.toml       the best trial's run config: `rnnrun --config best.toml` repeats it
        history.png, importances.png    with the plot extra
        20261129-161502-gru-sine/       a trial: an ordinary run folder (config.toml, metrics.csv, ...)

The axes use the sweep's syntax (`sweep.parse_axis`): a comma list is a categorical choice, a range
LOW:HIGH[:log|linear] a float or integer distribution; an axis with a single value is a fixed setting.
A plugin's option is an axis too (`sweep.option_axes`): `--data sunspots:window=8:40` or
`--reg dropout:p=0.1|0.3` search `data.window` and `reg.dropout.p`; a dataset option only where the
dataset lists it in `input_options` (the trials must be scored on the same targets to be ranked).
A trial suggests one value per axis, resolves the config, and runs it with `experiment.execute`; after
every epoch its callback reports the validation value to the pruner (`trial.report`), and when the pruner
says stop (`trial.should_prune`) it raises `experiment.Pruned`, so the run is kept with status "pruned".

The TPE sampler (Bergstra et al. 2011) models p(x | good) / p(x | bad) from the trials so far and
proposes the x that maximises it; the median pruner stops a trial whose value after epoch t is worse
than the median of the finished trials at t; successive halving (Jamieson & Talwalkar 2016) keeps the
best 1/η of the trials at each rung of epochs r, rη, rη², ... Neither stops a trial in its first
`warmup` epochs (r = warmup + 1).

The study lives in a database, so re-running the same command continues it, and several processes
(a local pool, Dask workers) share it: each process runs its share of the trials with `optimize`.
"""
import contextlib
import json
import math
import multiprocessing
import os
import signal
import socket
import time
import warnings
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool

from ..errors import ConfigError, TinygradRNNError
from ..registry import datasets
from . import comparable
from . import sweeper as sweeps
from .config import parse_spec, spec_label
from .store import atomic_write, plain, slug
from .signals import held, ignoring_stops, interrupt_workers, on_stop, released
from .sweeper import Range

TUNES = "tunes"                                      # studies live in <runs-dir>/tunes/<study>/
INSTALL = "rnnrun tune needs Optuna: pip install 'tinygrad_rnn[tune]'"
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")
OBJECTIVES = {"val_loss": "validation loss", "val_metric": "validation metric"}
DEFINED_BY = {"axes": "tuned axes", "fixed": "fixed axes (--cell, --data, ...)",
              "base": "run flags (--epochs, --reg, --schedule, --bidirectional)", "seed": "--seed",
              "objective": "--objective", "direction": "--direction", "plugins": "--plugin"}
STARTUP = 4          # random trials before TPE models the results, and finished trials before the median pruner prunes


class TrialFailed(TinygradRNNError):
    """A trial that diverged or raised: Optuna records it as failed and the study goes on."""


class TuneError(TinygradRNNError):
    """A study that could not go on, e.g. a Dask task or pool worker that died (exit 1)."""


def first_line(error):
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def require_optuna():
    """The optuna module, or a usage error saying how to install it (it is the `tune` extra)."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures and progress are reported by rnnrun
    return optuna


# ---- what to search: axes, fixed settings, the objective ----------------------------------------------
def search_space(axes):
    """(fixed settings, tuned axes): an axis with one value is fixed, a list of several or a range is tuned."""
    fixed, tuned = {}, {}
    for axis, values in axes.items():
        if isinstance(values, Range) or len(values) > 1:
            tuned[axis] = values
        else:
            fixed[axis] = values[0]
    if "data" in tuned:
        raise ConfigError("tune searches one dataset at a time (their losses are not comparable); "
                          "give --data one dataset and run one study per dataset")
    data_options = [axis.partition(".")[2] for axis in tuned if axis.startswith("data.")]
    if data_options:
        name = parse_spec(fixed["data"], "dataset")[0]
        allowed = comparable.input_options(name)
        scored = [option for option in data_options if option not in allowed]
        if scored:
            raise ConfigError(f"tune ranks trials by their validation score, so they must be scored on the same "
                              f"targets; {name}'s option {scored[0]!r} changes what is scored (options tune may "
                              f"search: {', '.join(allowed) or 'none'}); run one study per value instead")
    if not tuned:
        raise ConfigError("nothing to tune: give at least one axis several values or a range, "
                          "e.g. --lr 1e-4:1e-1 --hidden 8:128 --cell lstm,gru")
    return fixed, tuned


def suggest(trial, axis, values):
    """One value of an axis for this trial: a list is a categorical choice, a Range a distribution."""
    if not isinstance(values, Range):
        return trial.suggest_categorical(axis, values)
    if values.integer:
        return trial.suggest_int(axis, int(values.low), int(values.high), log=values.log)
    return trial.suggest_float(axis, values.low, values.high, log=values.log)


def check_direction(data, objective, direction):
    """The direction that fits the objective: a loss is minimised, a metric as the dataset says."""
    spec_name = parse_spec(data, "dataset")[0]
    dataset = datasets.get(spec_name)
    higher = objective == "val_metric" and dataset.higher_is_better
    natural = "maximize" if higher else "minimize"
    if direction and direction != natural:
        what = ("a loss is lower-is-better" if objective == "val_loss" else
                f"{spec_name}'s {dataset.metric_name} is {'higher' if higher else 'lower'}-is-better")
        raise ConfigError(f"--direction {direction} does not fit --objective {objective}: {what}; "
                          f"use --direction {natural} or leave it out")
    return natural


def definition(fixed, tuned, base, objective, direction, seed, plugins):
    """What makes a study what it is; a study continued with a different definition would mix two searches."""
    return json.loads(json.dumps(plain({"axes": {a: str(v) if isinstance(v, Range) else v for a, v in tuned.items()},
                              "fixed": fixed, "base": base, "seed": seed, "objective": objective,
                              "direction": direction, "plugins": sorted(plugins)})))


def default_study_name(doc):
    """<data>-<hash of the definition>: the same command finds the same study again."""
    data = doc["fixed"].get("data", "")
    return f"{slug(parse_spec(data)[0])}-{sweeps.digest(doc)[:8]}"


def trial_config(job, settings):
    """The resolved run config of one trial: the fixed settings, the suggested ones, the run seed."""
    return sweeps.plan(job["base"], [{**job["fixed"], **settings}], [job["seed"]])[0]["config"]


SIZE_AXES = ("hidden", "layers", "batch_size")   # the axes that make a trial larger


def edges(job):
    """The settings a search can reach at its edges: the first value of every axis; then each axis in
    turn at each of its choices or at either end of its range; then, for each cell choice, every size
    axis at its largest at once (the trial that needs the most memory).

    edges({"cell": ["gru", "lstm"], "hidden": Range(4, 64)}) →
        {cell=gru, hidden=4}, {cell=lstm, hidden=4}, {cell=gru, hidden=64}, {cell=lstm, hidden=64}"""
    def ends(values):
        if not isinstance(values, Range):
            return list(values)
        cast = int if values.integer else float
        return [cast(values.low), cast(values.high)]

    tuned = {axis: ends(values) for axis, values in job["tuned"].items()}
    first = {axis: values[0] for axis, values in tuned.items()}
    found = [first] + [{**first, axis: value} for axis, values in tuned.items() for value in values[1:]]
    largest = {axis: max(tuned[axis]) for axis in SIZE_AXES if axis in tuned}
    for cell in tuned.get("cell", [None]):
        found.append({**first, **largest, **({"cell": cell} if cell is not None else {})})
    return [dict(settings) for settings in {tuple(sorted(s.items(), key=str)): s for s in found}.values()]


def check_search(job):
    """Resolve and build (experiment.check_all) a trial at every edge of the search, so that an unknown
    name, a bad option or a trial too large for memory fails before the study's folder or any run
    exists (exit 2), not as a failed trial. Returns the first config (what every trial shares: the
    dataset, the number of epochs)."""
    from .experiment import check_all
    configs = [trial_config(job, settings) for settings in edges(job)]
    check_all(configs, choosing=True)
    return configs[0]


# ---- the study's folder and storage -------------------------------------------------------------------
def study_folder(root, name):
    return os.path.join(root, TUNES, slug(name))


def storage_url(root, name, url=None):
    """The given --storage URL, or SQLite in the study's folder."""
    return url or "sqlite:///" + os.path.join(os.path.abspath(study_folder(root, name)), "study.db")


HEARTBEAT_SECONDS = 30   # a running trial tells the study it is alive this often (Optuna's heartbeat) ...
GRACE_SECONDS = 120      # ... and one silent this long is failed by the next process that starts a trial


def storage(url):
    """An Optuna storage with a heartbeat, so that a trial whose process or worker died does not stay
    RUNNING forever (the next trial to start fails it); SQLite waits up to a minute for a lock, so local
    workers can share one file."""
    optuna = require_optuna()
    connect = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():  # "heartbeat_interval is an experimental feature" (since Optuna 2.9)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=connect, heartbeat_interval=HEARTBEAT_SECONDS,
                                          grace_period=GRACE_SECONDS)


def open_study(job):
    """Create the study, or load it and check that it is the same search (else a usage error)."""
    optuna = require_optuna()
    database = job["storage"][len("sqlite:///"):] if job["storage"].startswith("sqlite:///") else None
    if database and os.path.exists(database):  # SQLite on a read-only file fails late and obscurely
        try:
            open(database, "r+b").close()
        except OSError as e:
            raise ConfigError(f"the study's database {database} cannot be written ({e.strerror}); make it "
                              "writable, or pick a new --study NAME") from None
    made = _missing_folders(job["folder"])
    os.makedirs(job["folder"], exist_ok=True)
    try:
        study = optuna.create_study(study_name=job["study"], storage=storage(job["storage"]),
                                    direction=job["direction"], load_if_exists=True)
    except Exception as e:  # a malformed URL, a database that cannot be reached or opened, a missing driver
        for folder in made:  # a command that fails its checks leaves no folder behind: runs/, tunes/, the study's
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only if still empty
        raise ConfigError(f"cannot open the study's storage {job['storage']}: {first_line(e)}") from None
    stored = study.user_attrs.get("definition")
    if stored is None:
        study.set_user_attr("definition", job["definition"])
    elif stored != job["definition"]:
        changed = [label for key, label in DEFINED_BY.items() if stored.get(key) != job["definition"].get(key)]
        raise ConfigError(f"study {job['study']!r} was made with different {', '.join(changed)}; "
                          "repeat its command or pick a new --study NAME")
    return study


def _missing_folders(path):
    """The folders os.makedirs(path) would create, deepest first."""
    missing, path = [], os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


# ---- one trial, and one process's share of the trials -------------------------------------------------
def make_sampler(job):
    """This process's sampler, seeded when its first trial starts: --seed plus that trial's number,
    which the storage hands out once. So two tune commands on one study (or the workers of one) draw
    with different seeds even when they start together, one `tune --seed S` on a new study draws the
    same settings every time (its first trial is number 0), and a continued study or a share run again
    does not replay the draws of the trials already there."""
    optuna = require_optuna()

    def seeded(seed):
        if job["sampler"] == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP)

    class SeededAtFirstTrial(optuna.samplers.BaseSampler):
        """Optuna's sampler, made at this process's first trial (Optuna calls before_trial first, then
        the methods below, one trial at a time in a process)."""

        def __init__(self):
            self.inner = None

        def before_trial(self, study, trial):
            if self.inner is None:
                self.inner = seeded(job["sampler_seed"] + trial.number)
            self.inner.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self.inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self.inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self.inner.after_trial(study, trial, state, values)

    return SeededAtFirstTrial()


def make_pruner(job):
    """The pruner; no trial is stopped during its first job["warmup"] epochs (steps are epochs, from 1)."""
    optuna = require_optuna()
    first = job["warmup"] + 1  # the first epoch at which a trial may be stopped
    if job["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=STARTUP, n_warmup_steps=first)
    if job["pruner"] == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)
    return optuna.pruners.NopPruner()


def objective(trial, job, say=None):
    """Train one trial as an ordinary run; its value is the best validation value over its epochs."""
    from .experiment import Pruned, execute
    optuna = require_optuna()
    settings = {axis: suggest(trial, axis, values) for axis, values in job["tuned"].items()}
    config = trial_config(job, settings)
    key = job["objective"]
    better = max if job["direction"] == "maximize" else min
    best_so_far = []

    def on_epoch(trainer, metrics):
        # the pruner sees the best value so far, which is what the trial keeps (its best epoch's
        # weights), not the epoch's own noisy value: a trial is not stopped for one bad epoch
        value = metrics[key] if math.isfinite(metrics[key]) else None
        best_so_far[:] = [better(best_so_far + [value]) if value is not None else (best_so_far or [math.nan])[0]]
        with held():  # the study's database is written whole; a stop waits for it
            trial.set_user_attr("epochs", metrics["epoch"])
            trial.report(best_so_far[0], metrics["epoch"])
            prune = trial.should_prune()
        if prune:
            raise Pruned(f"pruned after epoch {metrics['epoch']} of {config['epochs']}: "
                         f"best {key} so far {best_so_far[0]!r} is worse than the pruner's bar")

    store = sweeps.RecordingStore(job["root"])
    try:
        stop = job.get("stop")  # on Dask: the client's Ctrl-C or SIGTERM, read between batches
        with sweeps.trial_lock, released():  # one trial at a time per process; a stop ends it at once
            summary = execute(config, store, on_epoch=on_epoch, group=job["group"],
                              on_batch=stop.check if stop is not None else None)
    except KeyboardInterrupt:
        _keep_attrs(trial, store, {"status": "interrupted"})
        raise
    except Exception as e:  # execute kept the run's files; the study goes on
        summary = {"status": "failed", "message": f"{type(e).__name__}: {e}"}
    _keep_attrs(trial, store, summary)
    if say:
        say(trial.number, settings, summary, key)
    if summary["status"] == "pruned":
        raise optuna.TrialPruned(summary["message"])
    if summary["status"] != "finished":
        raise TrialFailed(summary.get("message", summary["status"]))
    return summary[key]


def _keep_attrs(trial, store, summary):
    """What the study remembers of a trial's run: where it is, how far it got, how it ended."""
    if store.run is not None:
        trial.set_user_attr("run_dir", os.path.abspath(store.run.path))
        trial.set_user_attr("run_id", store.run.id)
        trial.set_user_attr("host", socket.gethostname())  # where the run was written (a Dask worker's disk?)
    if "epochs" in summary:
        trial.set_user_attr("epochs", summary["epochs"])
    trial.set_user_attr("status", summary["status"])
    if summary.get("message"):
        trial.set_user_attr("message", summary["message"])


def optimize(job, say=None):
    """Run job["trials"] trials of the study in this process: the CLI's own, a pool worker or a Dask task."""
    sweeps.load_plugins_once(job["plugins"])
    sweeps.keep_freed_memory()  # a Dask nanny's malloc setting would cost a third more CPU time
    optuna = require_optuna()
    study = optuna.load_study(study_name=job["study"], storage=storage(job["storage"]), pruner=make_pruner(job))
    with warnings.catch_warnings():  # "fail_stale_trials is experimental" (since Optuna 2.9)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a dead process's RUNNING trials are failed, not left running
    study.sampler = make_sampler(job)  # seeded at its first trial: a share run again draws anew
    stop = job.get("stop")

    def no_new_trial_once_stopped(study, trial):
        if stop is not None and stop.seen():
            study.stop()
    with held():  # a stop signal acts inside a trial's training (objective), never mid-write in Optuna
        study.optimize(lambda trial: objective(trial, job, say), n_trials=job["trials"], catch=(TrialFailed,),
                       callbacks=[no_new_trial_once_stopped])


def _worker_optimize(job):
    """optimize in a pool worker or Dask task: Ctrl-C (or, on Dask, the client's stop) ends the running
    trial as "interrupted" and the share with it."""
    with on_stop((signal.SIGINT,)):
        try:
            optimize(job)
        except KeyboardInterrupt:
            return "interrupted"
    return "done"


# ---- where the trials run: here, a local process pool, or a Dask cluster -------------------------------
def shares(total, workers):
    """`total` trials over `workers` processes, as evenly as can be: shares(12, 5) → [3, 3, 2, 2, 2]."""
    return [n for n in (total // workers + (i < total % workers) for i in range(workers)) if n]


def run_study(job, workers=1, client=None, say=None):
    """Add job["trials"] trials to the study: here (one worker), on a spawned pool, or on a Dask cluster.

    Each process gets its share of the trials and a sampler seeded at its first trial (see
    make_sampler), so they do not propose the same settings; the database is what they share. A study
    in its own folder's SQLite file takes one rnnrun at a time (its folder's .lock); a --storage
    database takes any number of commands at once."""
    if job["storage"] == storage_url(job["root"], job["study"]):
        with sweeps.folder_lock(job["folder"], f"study {job['study']}"):
            return _run_study(job, workers, client, say)
    return _run_study(job, workers, client, say)


def _run_study(job, workers, client, say):
    if client is not None:
        workers = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
    jobs = [{**job, "trials": n} for n in shares(job["trials"], workers)]  # each seeded at its first trial
    # the study's loggers (--log): MLflow's parent run, made before any trial looks for it
    watchers = sweeps.group_loggers([{"config": job["base"]}], "tune", job["study"], job["folder"], job["group"],
                                    job["root"], job["definition"])
    status = "failed"
    try:
        _run_shares(jobs, client, say)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        watchers.end_group({"status": status, "study": job["study"], "trials_added": job["trials"]},
                           seconds=5 if status == "interrupted" else None)


def _run_shares(jobs, client, say):
    if len(jobs) == 1 and client is None:
        return optimize(jobs[0], say)
    try:
        if client is not None:
            _on_dask(jobs, client)
        else:
            _on_pool(jobs)
    except (KeyboardInterrupt, ConfigError, TuneError):
        raise
    except BrokenProcessPool:  # killed (out of memory, SIGKILL): its trials are in the study
        raise TuneError("a worker process died (killed, or out of memory?); the finished trials are kept in "
                        "the study, and a trial it left running is failed when trials start again") from None
    except Exception as e:  # a share that raised: what it said
        raise TuneError(f"a share of the trials failed: {first_line(e)}; the finished trials are kept in the "
                        "study") from None


def _on_dask(jobs, client):
    from distributed import as_completed, wait
    stop = sweeps.DaskStop(f"rnnrun-stop-{jobs[0]['study']}-{os.getpid()}-{time.time_ns()}").start(client)
    pending = [client.submit(_worker_optimize, {**j, "stop": stop}, pure=False) for j in jobs]
    failures = []
    try:
        for future in as_completed(pending, loop=client.loop):  # not gather: a stop leaves no task behind
            if future.status == "cancelled":
                failures.append("lost the Dask scheduler; trials running on workers may still finish")
            elif future.status == "error":  # the others run on: rnnrun ends when they have
                failures.append(share_error(future.exception()))
        if failures:
            raise TuneError(f"{failures[0]}{f' (and {len(failures) - 1} more)' if len(failures) > 1 else ''}; "
                            "the finished trials are kept in the study")
    except KeyboardInterrupt as e:
        stop.set(getattr(e, "signum", signal.SIGINT))  # the running trials save and end "interrupted"
        with ignoring_stops():
            with contextlib.suppress(Exception):
                wait(pending, timeout=sweeps.STOP_WAIT_SECONDS)
            client.cancel(pending)
        raise


def share_error(error):
    """What went wrong with a Dask task running a share of the trials, in words."""
    name = type(error).__name__
    if name == "KilledWorker":
        return f"a Dask worker died running trials ({first_line(error)})"
    if isinstance(error, TinygradRNNError):  # e.g. a plugin the worker cannot load: its own message says where
        return first_line(error)
    return f"a share of the trials failed on a Dask worker: {first_line(error)}"


def _on_pool(jobs):
    # spawn, not fork: a worker starts clean (no copied locks, registries, database connections)
    context = multiprocessing.get_context("spawn")
    with sweeps.one_blas_thread():
        pool = futures.ProcessPoolExecutor(len(jobs), mp_context=context, initializer=sweeps.init_worker)
        running = [pool.submit(_worker_optimize, j) for j in jobs]
    try:
        for future in futures.as_completed(running):
            future.result()
    except KeyboardInterrupt:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        interrupt_workers(processes)  # a SIGTERM to this process alone is passed on as Ctrl-C
        futures.wait(running, timeout=10)  # their trials save and return
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    pool.shutdown()


# ---- what the study holds, once the trials are done ---------------------------------------------------
def summarise(job, new_trials=0):
    """The --json document: the study, every trial, the best one, and the parameters' importances."""
    optuna = require_optuna()
    study = optuna.load_study(study_name=job["study"], storage=storage(job["storage"]))
    trials = [_trial_row(t) for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = None
    if complete:
        b = study.best_trial
        best = _trial_row(b) | {"config": os.path.join(job["folder"], "best.toml")}
    counts = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "fail", "running")}
    epochs = sum(t["epochs"] or 0 for t in trials)
    return {"study": {"name": job["study"], "data": spec_label(job["definition"]["fixed"].get("data", "")),
                      "path": job["folder"], "storage": job["storage"],
                      "objective": job["objective"], "direction": job["direction"], "trials": len(trials),
                      "new_trials": new_trials, **counts, "epochs": epochs,
                      "max_epochs": len(trials) * job["epochs"],
                      "axes": job["definition"]["axes"]},
            "trials": trials, "best": best, "importances": importances(study, complete)}


def _trial_row(t):
    value = t.value if t.value is not None and math.isfinite(t.value) else None
    return {"number": t.number, "params": t.params, "value": value, "state": t.state.name.lower(),
            "status": t.user_attrs.get("status"), "epochs": t.user_attrs.get("epochs"),
            "run_dir": t.user_attrs.get("run_dir"), "run_id": t.user_attrs.get("run_id"),
            "host": t.user_attrs.get("host"), "message": t.user_attrs.get("message")}


def unreadable_runs(doc):
    """The trials whose run folder this machine cannot read (their worker had no shared file system)."""
    return [t for t in doc["trials"] if t["run_dir"] and t["state"] in ("complete", "pruned")
            and not os.path.isfile(os.path.join(t["run_dir"], "summary.json"))]


def importances(study, complete):
    """{param: share of importance}, by Optuna's default evaluator, PED-ANOVA (Watanabe et al. 2023): how far
    each parameter's distribution among the best trials is from its distribution among all of them.

    Needs two finished trials with different values; {} otherwise."""
    optuna = require_optuna()
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return {}
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # e.g. every finished trial has the same settings
        return {}


def write_best(doc):
    """best.toml: the best trial's run config (without its run metadata), so `rnnrun --config` repeats it."""
    import tomli_w

    from .config import load_toml
    best = doc["best"]
    if not best or not best.get("run_dir") or not os.path.isfile(os.path.join(best["run_dir"], "config.toml")):
        return None
    config = load_toml(os.path.join(best["run_dir"], "config.toml"))
    config.pop("meta", None)
    header = (f"# best trial {best['number']} of study {doc['study']['name']}: {doc['study']['objective']} "
              f"{best['value']:.6g} (run {best['run_id']})\n# rnnrun --config best.toml repeats it\n")
    atomic_write(best["config"], header + tomli_w.dumps(plain(config)))
    return best["config"]


def write_plots(job):
    """history.png and importances.png in the study's folder (needs matplotlib); the paths written."""
    try:
        from .plots import study_plots
    except ImportError:  # matplotlib is the optional plot extra
        return []
    optuna = require_optuna()
    study = optuna.load_study(study_name=job["study"], storage=storage(job["storage"]))
    return study_plots(study, job["folder"])


def as_json(doc):
    return json.dumps(doc, indent=2)


# ---- a study from its flags: what `rnnrun tune` and the API's tune() both do first ----------------------
def plan_study(root, flags, trials, sampler, pruner, warmup, objective, direction, seed, study_name, storage_given,
               plugins, command="", log=()):
    """Everything a worker needs to run its share of the study, as plain picklable values, every edge of
    the search checked (names, options, sizes) before any folder exists. `flags`: the axes' values as
    the command line gives them (lists of texts), and reg, schedule, epochs, bidirectional."""
    from .inputs import check_runs_dir, config_from_flags
    require_optuna()
    for name, value, valid in (("--sampler", sampler, SAMPLERS), ("--pruner", pruner, PRUNERS),
                               ("--objective", objective, tuple(OBJECTIVES))):
        if value not in valid:
            raise ConfigError(f"{name} must be one of {', '.join(valid)}, got {value!r}")
    for name, value, low in (("--trials", trials, 1), ("--warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer of at least {low}, got {value!r}")
    root = os.path.abspath(root)
    axes = {axis: sweeps.parse_axis(axis, flags[axis]) for axis in sweeps.AXES if flags.get(axis)}
    if "cell" not in axes or "data" not in axes:
        raise ConfigError("tune needs --cell and --data, e.g. rnnrun tune --cell gru --data sine --lr 1e-4:1e-1")
    axes, regs, option_axes = sweeps.option_axes(axes, flags.get("reg") or ())  # window=12|24, p=0.1:0.5 → axes
    axes.update(option_axes)
    fixed, tuned = search_space(axes)
    direction = check_direction(fixed["data"], objective, direction)
    base = config_from_flags(None, data=None, optimizer=None, reg=regs, schedule=flags.get("schedule"),
                             epochs=flags.get("epochs"), bidirectional=flags.get("bidirectional"), seed=seed,
                             log=tuple(log))
    base.pop("seed", None)
    plugins = [sweeps.plugin_ref(p) for p in plugins]
    doc = definition(fixed, tuned, base, objective, direction, seed, plugins)
    name = study_name or default_study_name(doc)
    folder = study_folder(root, name)
    job = {"root": root, "group": os.path.relpath(folder, root), "folder": folder, "study": name,
           "storage": storage_url(root, name, storage_given), "definition": doc, "command": command,
           "fixed": fixed, "tuned": tuned, "base": base, "seed": seed, "objective": objective,
           "direction": direction, "sampler": sampler, "pruner": pruner, "sampler_seed": seed,
           "trials": trials, "plugins": plugins}
    check_runs_dir(root)
    job["epochs"] = check_search(job)["epochs"]  # bad names, options, sizes fail here, before any folder
    job["warmup"] = warmup
    return job
