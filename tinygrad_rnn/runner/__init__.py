"""The `rnnrun` application, and its Python API: `train`, `load_run`, `sweep`, `tune` (api.py).

    from tinygrad_rnn.runner import train, load_run
    run = train(cell="gru", data="sine", epochs=5)      # what `rnnrun train --cell gru ...` does

Nothing of the package above it imports it (but for `tinygrad_rnn.train`, which imports it on first
use). Read it in the order data flows through it:

    api.py         train, load_run, sweep, tune: the commands' work, from Python; the commands call it
    run.py         Run: one run folder as Python sees it (config, history, model, predict, resume, plot)
    searches.py    what sweep() and tune() return
    cli.py         the entry point and the one list of commands: adds each to the group, runs it
    app.py         the click group (bare `rnnrun --cell ...` routes to `train`) and the helpers every
                   command shares; it imports no command
    options.py     every option more than one command takes (--plugin, --runs-dir, --json, --seed, the
                   training flags), defined once
    commands/      one file per command family (train, list, runs, sweep, tune, ...); each defines its
                   commands with click.command and imports app.py and options.py, never the group
    config.py      flags and TOML files → one validated config dict
    experiment.py  a config → dataset, model, regularisers, trainer → a finished run
    training.py    the driver of train, resume and the API's train(): progress bars, the results table
    store.py       the run store: one folder per run (config.toml, metrics.csv, summary.json, model.npz)
    report.py      rich tables of runs and models
    sweeper.py     grids and random samples of runs on a process pool or Dask
    tuner.py       Optuna studies over the same axes
    lessons.py     the teaching commands' measurements (gradcheck, vanish, graph)
    plots.py       matplotlib figures (the `plot` extra)
    signals.py     Ctrl-C handling shared by the trainer and the sweep workers
    output.py      the consoles and the `Fail` exit
"""
from .api import load_run, sweep, train, tune  # noqa: E402,F401
from .run import Predictions, Run, Runs  # noqa: E402,F401
from .searches import StudyResult, SweepResult  # noqa: E402,F401

__all__ = ["train", "load_run", "sweep", "tune", "Run", "Runs", "Predictions", "SweepResult", "StudyResult"]
