"""The `rnnrun` application: everything that exists only for the command line.

Nothing outside this folder imports it. Read it in the order data flows through it:

    cli.py         the entry point and the one list of commands: adds each to the group, runs it
    app.py         the click group (bare `rnnrun --cell ...` routes to `train`) and the helpers every
                   command shares; it imports no command
    options.py     every option more than one command takes (--plugin, --runs-dir, --json, --seed, the
                   training flags), defined once
    commands/      one file per command family (train, list, runs, sweep, tune, ...); each defines its
                   commands with click.command and imports app.py and options.py, never the group
    config.py      flags and TOML files → one validated config dict
    experiment.py  a config → dataset, model, regularisers, trainer → a finished run
    training.py    the train command's driver: progress bars, the results table
    store.py       the run store: one folder per run (config.toml, metrics.csv, summary.json, model.npz)
    report.py      rich tables of runs and models
    sweeper.py     grids and random samples of runs on a process pool or Dask
    tuner.py       Optuna studies over the same axes
    lessons.py     the teaching commands' measurements (gradcheck, vanish, graph)
    plots.py       matplotlib figures (the `plot` extra)
    signals.py     Ctrl-C handling shared by the trainer and the sweep workers
    output.py      the consoles and the `Fail` exit
"""
