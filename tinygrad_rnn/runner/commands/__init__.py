"""The `rnnrun` subcommands, one file per family: train, catalogue (list), runs (runs, show, compare,
forecast), predict, resume, sweep, tune, check, teach (gradcheck, vanish, graph) and text (sample).
Each defines its commands with `click.command` and imports helpers from ..app and ..options; ..cli,
the one place that lists them, adds them to the group."""
