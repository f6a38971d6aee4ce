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
import os

from ..errors import ConfigError
from .run import Run, Runs, _tuple, load_run  # noqa: F401  (load_run is part of this API)

MAX_SEEDS = 10_000


def train(cell=None, data=None, *, reg=(), optimizer=None, schedule=None, hidden=None, layers=None,
          bidirectional=None, epochs=None, batch_size=None, lr=None, seed=None, seeds=None, backend=None,
          fused=None, compiled=None, plugin=(), config=None, runs_dir="runs", checkpoint_every=1,
          quiet=True, progress=False):
    """Train one run per cell (and per seed with `seeds`) in `runs_dir`, as `rnnrun train` does.

    Returns a `Run` for one cell given as a name; a list of `Run`s (`Runs`) for several cells
    (["rnn", "gru"] or "rnn,gru") or with `seeds=N`, which trains seeds seed, seed+1, ..., seed+N-1 of
    every cell. `config` is a TOML file (a run's config.toml) or a dict (a run's `.config`), the
    keywords given here overriding it."""
    from .runs import RunStore
    from .training import print_results, train_all
    configs = plan_training(cell=cell, data=data, reg=reg, optimizer=optimizer, schedule=schedule, hidden=hidden,
                            layers=layers, bidirectional=bidirectional, epochs=epochs, batch_size=batch_size, lr=lr,
                            seed=seed, seeds=seeds, backend=backend, fused=fused, compiled=compiled,
                            plugins=_tuple(plugin), config=config, runs_dir=runs_dir)
    _check_checkpoint_every(checkpoint_every)
    summaries = train_all(configs, RunStore(runs_dir), checkpoint_every=checkpoint_every,
                          progress=progress or not quiet, verbose=not quiet, notes=not quiet)
    if not quiet:
        print_results(summaries)
    runs = Runs(Run(s["run_dir"]) for s in summaries)
    one = seeds is None and (isinstance(cell, str) and "," not in cell or cell is None)
    return runs[0] if one else runs


def plan_training(cell=None, data=None, reg=(), optimizer=None, schedule=None, hidden=None, layers=None,
                  bidirectional=None, epochs=None, batch_size=None, lr=None, seed=None, seeds=None, backend=None,
                  fused=None, compiled=None, plugins=(), config=None, runs_dir="runs"):
    """The resolved config of every run that training with these flags makes: one per cell and seed,
    every one checked (names, options, sizes, memory, each cell run once) before any is trained, and
    `runs_dir` checked. Nothing is written. `rnnrun train` and `train()` both start here."""
    from .app import check_runs_dir, config_from_flags, load_plugins, specs
    from .config import check_config, load_recorded_plugins
    from .experiment import check_all, resolve
    from .sweep import plugin_ref
    plugins = _tuple(plugins)
    load_plugins(plugins)
    cells = _tuple(cell)
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS):
        raise ConfigError(f"--seeds must be an integer in [1, {MAX_SEEDS}], got {seeds!r}")
    config_file = config if isinstance(config, (str, os.PathLike)) else None
    flags = dict(data=data, optimizer=optimizer, schedule=schedule, reg=_tuple(reg), hidden=hidden, layers=layers,
                 bidirectional=bidirectional, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, backend=backend,
                 fused=fused, compiled=compiled or None)
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
        raise ConfigError("no cell given: pass --cell NAME (e.g. --cell gru; `rnnrun list` shows them) or --config FILE")
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
