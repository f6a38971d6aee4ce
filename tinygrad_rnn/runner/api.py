"""The runner from Python: `train`, `load_run`, `sweep` and `tune`, the same doors as `rnnrun`'s commands.

    from tinygrad_rnn.runner import train, load_run, sweep, tune    # or tinygrad_rnn.train, ...

    run = train(cell="gru", data="sine", epochs=5, seed=1)          # keywords = rnnrun's flags; one Run
    runs = train(cell=["rnn", "gru"], data="adding:T=50", seeds=3)  # a list of Runs

The keywords are the command's flags with underscores (`batch_size` for --batch-size); a flag given
several times or as a comma list (--cell rnn,gru, --reg) takes a list or a comma string. Everything
goes through what the command line uses: the same config schema, the same checks of every run before
the first one starts, the same run folders. So `train(...)` and `rnnrun train ... --json` give the same
numbers on NumPy, bit for bit, and a mistake raises the project's exception (ConfigError, PluginError,
...) with the one-line message the command prints. Nothing is printed unless asked: `progress=True`
shows rich's progress bar (in Jupyter too); `quiet=False` shows what `rnnrun` shows.

Ctrl-C stops a run as on the command line (its files kept, status "interrupted") and raises
KeyboardInterrupt here; a run that diverged is returned with status "diverged", not raised.
"""
import multiprocessing
import os
import sys

from ..errors import ConfigError
from .run import Run, Runs, _tuple, load_run  # noqa: F401  (load_run is part of this API)

MAX_SEEDS = 10_000
SCRIPT_GUARD = ('in a script, put the code that calls {name}() under `if __name__ == "__main__":`; Python starts '
                "each worker process by importing the script, which must not train again")


def _not_while_a_worker_starts(name):
    """A worker of sweep() or tune() starts by importing the user's script (the "spawn" start method);
    a call of the API at the top of that script would run again in every worker. Refuse it there, in
    one line, as Python's multiprocessing refuses to start workers from a starting worker."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigError(f"{name}() called while a worker process starts: " + SCRIPT_GUARD.format(name=name))


def _stopped_worker_hint(name):
    """What to add when a worker process stopped at once: in a script, the missing main guard."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    return f"; {SCRIPT_GUARD.format(name=name)}" if script else ""


def train(cell=None, data=None, *, reg=(), optimizer=None, schedule=None, hidden=None, layers=None,
          bidirectional=None, epochs=None, batch_size=None, lr=None, seed=None, seeds=None, backend=None,
          path=None, plugin=(), log=(), config=None, runs_dir="runs", checkpoint_every=1, quiet=True,
          progress=False):
    """Train one run per cell (and per seed with `seeds`) in `runs_dir`, as `rnnrun train` does.

    Returns a `Run` for one cell given as a name; a list of `Run`s (`Runs`) for several cells
    (["rnn", "gru"] or "rnn,gru") or with `seeds=N`, which trains seeds seed, seed+1, ..., seed+N-1 of
    every cell. `config` is a TOML file (a run's config.toml) or a dict (a run's `.config`), the
    keywords given here overriding it."""
    from .store import RunStore
    from .training import print_results, train_all
    _not_while_a_worker_starts("train")
    configs = plan_training(cell=cell, data=data, reg=reg, optimizer=optimizer, schedule=schedule, hidden=hidden,
                            layers=layers, bidirectional=bidirectional, epochs=epochs, batch_size=batch_size, lr=lr,
                            seed=seed, seeds=seeds, backend=backend, path=path, plugins=_tuple(plugin), config=config,
                            runs_dir=runs_dir, log=log)
    _check_checkpoint_every(checkpoint_every)
    summaries = train_all(configs, RunStore(runs_dir), checkpoint_every=checkpoint_every,
                          progress=progress or not quiet, verbose=not quiet, notes=not quiet)
    if not quiet:
        print_results(summaries, configs=configs, seeds=seeds)
    runs = Runs(Run(s["run_dir"]) for s in summaries)
    one = seeds is None and (isinstance(cell, str) and "," not in cell or cell is None)
    return runs[0] if one else runs


def plan_training(cell=None, data=None, reg=(), optimizer=None, schedule=None, hidden=None, layers=None,
                  bidirectional=None, epochs=None, batch_size=None, lr=None, seed=None, seeds=None, backend=None,
                  path=None, plugins=(), config=None, runs_dir="runs", loaded_plugins=(), log=()):
    """The resolved config of every run that training with these flags makes: one per cell and seed
    (seeds seed, seed+1, ..., seed+seeds-1 of each cell, cell by cell), every one checked (names,
    options, sizes, memory, each cell run once) before any is trained, and `runs_dir` checked. Nothing
    is written. `rnnrun train` and `train()` both start here. `plugins` are loaded here;
    `loaded_plugins` (the group's `rnnrun --plugin X train`) were already; both are recorded."""
    from .inputs import check_runs_dir, config_from_flags, load_plugins, specs
    from .config import check_config, load_recorded_plugins
    from .experiment import check_all, resolve
    from .sweeper import plugin_ref
    load_plugins(_tuple(plugins))
    plugins = list(dict.fromkeys(list(loaded_plugins) + list(_tuple(plugins))))
    cells = _tuple(cell)
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS):
        raise ConfigError(f"--seeds must be an integer in [1, {MAX_SEEDS}], got {seeds!r}")
    config_file = config if isinstance(config, (str, os.PathLike)) else None
    flags = dict(data=data, optimizer=optimizer, schedule=schedule, reg=_tuple(reg), hidden=hidden, layers=layers,
                 bidirectional=bidirectional, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, backend=backend,
                 path=path, log=_tuple(log))
    base = config_from_flags(os.fspath(config_file) if config_file else None, **flags)
    if isinstance(config, dict):  # a run's .config: the flags given override it, as they do a file
        given = dict(config)
        given.pop("meta", None)
        check_config(given, "config")
        load_recorded_plugins(given, "the config given")
        base = {**given, **base}
    elif config is not None and config_file is None:
        raise ConfigError(f"config must be a TOML file's path or a dict of settings, got {type(config).__name__}")
    if not cells and base.get("cell") is None:
        raise ConfigError("no cell given: pass --cell NAME (e.g. --cell gru; `rnnrun list` shows them) "
                          "or --config FILE")
    if plugins:  # recorded in config.toml, so `rnnrun --config` loads them again
        base["plugins"] = list(dict.fromkeys(base.get("plugins", []) + [plugin_ref(p) for p in plugins]))
    cell_specs = specs(cells, "cell", "--cell") if cells else [(base.get("cell"), base.get("cell_options", {}))]
    first = base.get("seed") or 0
    seed_list = [None] if seeds is None else [first + i for i in range(seeds)]
    configs = [resolve({**base, "cell": name, "cell_options": options,
                        **({} if s is None else {"seed": s})})
               for name, options in cell_specs for s in seed_list]
    if configs[0]["backend"] == "cupy":
        from ..backend import module
        module("cupy")  # fail now, before any run folder is made
    check_runs_dir(runs_dir)
    check_all(configs)
    return configs


def _check_checkpoint_every(n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--checkpoint-every must be a positive integer, got {n!r}")


# ---- sweep: a grid (or a random sample) of runs over seeds -------------------------------------------------
def sweep(cell=None, data=None, *, optimizer=None, lr=None, hidden=None, layers=None, batch_size=None, reg=(),
          epochs=None, bidirectional=None, seeds=None, random=None, sample_seed=None, workers=None, scheduler=None,
          resume=None, plugin=(), log=(), runs_dir="runs", quiet=True, progress=False):
    """Run a sweep as `rnnrun sweep` does; returns a `SweepResult` (`.trials`, `.groups`, `.best`).

    An axis takes a list of values (a grid: lr=[1e-2, 3e-3]), one value, a comma string as on the
    command line, or with `random=K` a range: a (low, high) or (low, high, "log"|"linear") tuple, or
    "1e-4:1e-2". `workers` local processes (default: the number of cores; 1 runs them here), or a Dask
    `scheduler` address; `resume` a sweep's id continues it."""
    from .searches import SweepResult
    from .sweeper import load_plugins_once, plan_sweep
    _not_while_a_worker_starts("sweep")
    where = _check_where(workers, scheduler)
    for name, value, low, high in (("--seeds", seeds, 1, MAX_SEEDS), ("--random", random, 1, 100_000),
                                   ("--sample-seed", sample_seed, 0, 2 ** 32 - 1)):
        _check_int(name, value, low, high)
    root = _runs_dir(runs_dir)
    plugins = _tuple(plugin)
    load_plugins_once(plugins)
    flags = {**_axes(cell, data, optimizer, lr, hidden, layers, batch_size),
             "reg": _tuple(reg), "epochs": epochs, "bidirectional": bidirectional, "seeds": seeds,
             "samples": random, "sample_seed": sample_seed}
    plan = plan_sweep(root, flags, plugins, resume, command=_call("sweep", _given(flags, plugin, resume)),
                      log=_tuple(log))
    from concurrent.futures.process import BrokenProcessPool

    from .sweeper import SweepError
    try:
        doc = run_sweep_plan(plan, where, progress=progress or not quiet, lines=not quiet, notes=not quiet)
    except BrokenProcessPool:
        doc = None
    broken = [t for t in (doc or {}).get("trials", []) if str(t.get("message", "")).startswith("BrokenProcessPool")]
    if doc is None or broken:
        kept = f"; the sweep is kept: resume=\"{doc['id']}\" runs what it lacks" if doc else ""
        raise SweepError(f"a worker process stopped as it started{_stopped_worker_hint('sweep')}{kept}")
    result = SweepResult(doc)
    if not quiet:
        from .output import console
        console().print(result.table())
    return result


def run_sweep_plan(plan, where, progress=False, lines=False, notes=False):
    """Run what a planned sweep lacks (`where`: (workers, scheduler)); its summary document. `progress`:
    rich's bar; `lines`: a line per trial on stderr; `notes`: an interruption said in one line. Ctrl-C
    keeps the finished trials and raises KeyboardInterrupt."""
    import contextlib
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import sweeper as sweeps
    from .output import console
    from .report import exact, fmt
    from .signals import on_stop
    workers, scheduler = where
    client = sweeps.connect(scheduler) if scheduler else None
    err = console(stderr=True)
    with client or contextlib.nullcontext():
        sweep = plan.sweep or plan.create()  # only now: a usage error or an unreachable scheduler leaves no folder
        bar = Progress(TextColumn("[bold]sweep {task.fields[id]}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), console=err, disable=not progress, transient=True)

        def on_result(trial, result):
            bar.advance(task)
            if not lines:
                return
            at = f"{sweeps.label(trial['settings'])} seed {trial['seed']}"
            if result["status"] == "finished":
                err.print(f"[green]done[/] {at}: test {result.get('metric')} {fmt(result.get('test_metric'))} "
                          f"({fmt(result.get('seconds'), 3)}s)", soft_wrap=True)
            else:
                err.print(f"[red]{result['status']}[/] {at}: {result.get('message', '')}", soft_wrap=True)

        workers = workers or os.cpu_count() or 1
        done = len(sweep.done().keys() & {t["key"] for t in plan.trials})
        if lines:
            here = f"on {scheduler}" if scheduler else "here" if workers == 1 else f"on {workers} workers"
            err.print(f"[dim]sweep {sweep.id}: {len(plan.trials)} trials, {len(plan.trials) - done} to run {here} "
                      f"({sweep.path})[/]", soft_wrap=True)
        with bar:
            task = bar.add_task("sweep", total=len(plan.trials), completed=done, id=sweep.id)
            try:
                with on_stop():  # SIGTERM and SIGHUP stop a sweep as Ctrl-C does
                    return sweeps.run_sweep(sweep, plan.trials, workers=workers, client=client, plugins=plan.plugins,
                                            on_result=on_result)
            except KeyboardInterrupt:
                bar.stop()
                if notes:
                    err.print(f"[yellow]interrupted:[/] finished trials are kept in {sweep.path}; "
                              f"run the rest with rnnrun sweep --resume {sweep.id}", soft_wrap=True)
                raise


# ---- tune: an Optuna study ------------------------------------------------------------------------------
def tune(cell=None, data=None, *, optimizer=None, lr=None, hidden=None, layers=None, batch_size=None, reg=(),
         schedule=None, epochs=None, bidirectional=None, trials=20, sampler="tpe", pruner="median", warmup=0,
         objective="val_metric", direction=None, seed=0, study=None, storage=None, workers=None, scheduler=None,
         plugin=(), log=(), runs_dir="runs", quiet=True, progress=False):
    """Search hyper-parameters with Optuna as `rnnrun tune` does; returns a `StudyResult` (`.trials`,
    `.best`, a Run, `.importances`). An axis takes a list of choices, one fixed value, or a range: a
    (low, high) or (low, high, "log"|"linear") tuple, or "1e-4:1e-1". The same call again adds
    `trials` more to the same study (named after the dataset and the search, or `study`)."""
    from .searches import StudyResult
    from .sweeper import load_plugins_once
    from .tuner import TuneError, plan_study
    _not_while_a_worker_starts("tune")
    where = _check_where(workers, scheduler)
    _check_int("--seed", seed, 0, 2 ** 32 - 1)
    root = _runs_dir(runs_dir)
    plugins = _tuple(plugin)
    load_plugins_once(plugins)
    flags = {**_axes(cell, data, optimizer, lr, hidden, layers, batch_size),
             "reg": _tuple(reg), "schedule": schedule, "epochs": epochs, "bidirectional": bidirectional}
    job = plan_study(root, flags, trials, sampler, pruner, warmup, objective, direction, seed, study, storage, plugins,
                     command=_call("tune", _given(flags, plugin, None)), log=_tuple(log))
    try:
        doc, _, _ = run_study_job(job, where, progress=progress or not quiet, lines=not quiet, notes=not quiet)
    except TuneError as e:
        raise TuneError(f"{e}{_stopped_worker_hint('tune')}") from None
    check_readable(doc)
    result = StudyResult(doc)
    if not quiet:
        from .output import console
        console().print(result.table())
    return result


def run_study_job(job, where, progress=False, lines=False, notes=False):
    """Add job["trials"] trials to the study (`where`: (workers, scheduler)); (summary document, best.toml
    written or None, plot files written). `lines`: a line per trial run here; `progress`: rich's bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import sweeper as sweeps
    from . import tuner as tuning
    from .output import console
    from .report import exact, fmt
    from .signals import ignoring_stops, on_stop
    workers, scheduler = where
    client = sweeps.connect(scheduler) if scheduler else None
    err = console(stderr=True)
    bar = Progress(TextColumn("[bold]study {task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err, disable=not progress, transient=True)
    try:
        study = tuning.open_study(job)
        before = len(study.trials)
        if lines:
            here = f"on {scheduler}" if scheduler else "here" if (workers or 1) == 1 else f"on {workers} workers"
            err.print(f"[dim]study {job['study']}: {before} trials so far, {job['trials']} more {here} "
                      f"({job['sampler']} sampler, {job['pruner']} pruner; {shown(job['folder'])})[/]", soft_wrap=True)

        def say(number, settings, summary, key):  # trials that run here; pool and Dask workers stay silent
            bar.advance(task)
            if not lines:
                return
            at = sweeps.label({k: exact(v) for k, v in settings.items()})  # typed back, repeats the trial
            status = summary["status"]
            colour = {"finished": "green", "pruned": "yellow"}.get(status, "red")
            value = fmt(summary.get(key)) if status in ("finished", "pruned") else summary.get("message", "")
            n = summary.get("epochs")
            epochs = f" after {n} epoch{'s' if n > 1 else ''}" if n else ""
            err.print(f"[{colour}]{status}[/] trial {number}: {at}: {key} {value}{epochs}", soft_wrap=True)
        with bar:
            task = bar.add_task("tune", total=job["trials"], name=job["study"])
            try:
                with on_stop():  # SIGTERM and SIGHUP stop a study as Ctrl-C does: the running trial "interrupted"
                    tuning.run_study(job, workers or 1, client, say)
            except KeyboardInterrupt:
                bar.stop()
                with ignoring_stops():  # a second signal must not cut the note or best.toml short
                    tuning.write_best(tuning.summarise(job, new_trials=job["trials"]))
                    if notes:
                        err.print(f"[yellow]interrupted:[/] finished trials are kept in the study; the same "
                                  f"command adds more ({job['folder']})", soft_wrap=True)
                raise
    finally:
        if client is not None:
            client.close()
    doc = tuning.summarise(job, new_trials=job["trials"])
    return doc, tuning.write_best(doc), tuning.write_plots(job)


def check_readable(doc):
    """TuneError unless this machine can read every trial's run folder: the study has their values, but
    `rnnrun runs`, best.toml, resume and `study.trials` need the folders."""
    from . import tuner as tuning
    lost = tuning.unreadable_runs(doc)
    if lost:
        where = ", ".join(sorted({t["host"] or "a worker" for t in lost}))
        raise tuning.TuneError(f"{len(lost)} of the trials wrote their runs where this machine cannot read them "
                               f"(on {where}, e.g. {lost[0]['run_dir']}): give the workers --runs-dir on a file "
                               "system this machine shares")


def shown(path):
    """A path as the user would type it: relative to the current directory when it lies below it."""
    import os
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


# ---- keywords → the command line's values -------------------------------------------------------------
def _axis(value):
    """A sweep or tune axis as the command line's texts: a list is its values, a (low, high[, scale])
    tuple a range "low:high[:scale]", a string as typed after the flag, a number itself."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple):
        if not 2 <= len(value) <= 3 or isinstance(value[0], str):
            raise ConfigError(f"a range is (low, high) or (low, high, 'log'|'linear'), got {value!r}; "
                              "a list gives values to choose from")
        return (":".join(str(v) for v in value),)
    if isinstance(value, (list, set, frozenset, range)):
        return tuple(str(v) for v in value)
    return (str(value),)


def _check_where(workers, scheduler):
    """(workers, scheduler), checked: one or the other, a worker count in range, a well-formed address."""
    from .sweeper import check_scheduler
    if workers is not None and scheduler:
        raise ConfigError("--workers is for the local pool; with --scheduler the Dask cluster's workers run the trials")
    _check_int("--workers", workers, 1, 4096)
    check_scheduler(scheduler)  # a malformed address is a usage error, before anything connects
    return workers, scheduler


def _axes(cell, data, optimizer, lr, hidden, layers, batch_size):
    """The search axes of sweep() and tune(), each as the command line would give it (a list of texts)."""
    given = (("cell", cell), ("data", data), ("optimizer", optimizer), ("lr", lr), ("hidden", hidden),
             ("layers", layers), ("batch_size", batch_size))
    return {axis: _axis(value) for axis, value in given}


def _check_int(flag, value, low, high):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
        raise ConfigError(f"{flag} must be an integer in [{low}, {high}], got {value!r}")


def _runs_dir(runs_dir):
    from .inputs import check_runs_dir
    return check_runs_dir(os.fspath(runs_dir))


def _given(flags, plugin, resume):
    """The keywords a call gave (for the record in sweep.toml / the study): the flags that are set."""
    given = {k: v for k, v in flags.items() if v not in (None, ())}
    if plugin:
        given["plugin"] = plugin
    if resume:
        given["resume"] = resume
    return given


def _call(name, given):
    return f"tinygrad_rnn.runner.{name}(" + ", ".join(f"{k}={v!r}" for k, v in given.items()) + ")"
