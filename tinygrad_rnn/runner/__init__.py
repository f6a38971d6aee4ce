"""The `rnnrun` application, and its Python API: `train`, `load_run`, `sweep`, `tune` (api.py).

    from tinygrad_rnn.runner import train, load_run
    run = train(cell="gru", data="sine", epochs=5)      # what `rnnrun train --cell gru ...` does

Nothing of the package above it imports it (but for `tinygrad_rnn.train`, which imports it on first
use). Read it in the order data flows through it:

    api.py         train, load_run, sweep, tune: the commands' work, from Python; the commands call it
    run.py         Run: one run folder as Python sees it (config, history, model, predict, resume, plot)
    cli.py         the entry point: imports every command family, then runs the group
    app.py         the click group (its own options train) and the helpers every command shares
    commands/      one file per command family; each registers its commands on app.cli
    config.py      flags and TOML files → one validated config dict
    experiment.py  a config → dataset, model, regularisers, trainer → a finished run
    training.py    the default command's driver: progress bars, the results table
    runs.py        the run store: one folder per run (config.toml, metrics.csv, summary.json, model.npz)
    report.py      rich tables of runs and models
    sweep.py       grids and random samples of runs on a process pool or Dask
    teach.py       the teaching commands' measurements (gradcheck, vanish, graph)
    plots.py       matplotlib figures (the `plot` extra)
    signals.py     Ctrl-C handling shared by the trainer and the sweep workers
    output.py      the consoles and the `Fail` exit
"""
from .api import load_run, train  # noqa: E402,F401
from .run import Run, Runs  # noqa: E402,F401

__all__ = ["train", "load_run", "Run", "Runs"]
