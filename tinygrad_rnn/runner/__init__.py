"""The `rnnrun` application: everything that exists only for the command line.

Nothing outside this folder imports it. Read it in the order data flows through it:

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
