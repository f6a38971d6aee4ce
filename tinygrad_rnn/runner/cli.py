"""The entry point of `rnnrun` (console script `rnnrun = tinygrad_rnn.runner.cli:main`, and `python -m
tinygrad_rnn`): the one place that lists every command (hatch's cli/__init__.py does the same).

The group (app.py) knows no command; each command file defines its commands and imports only the
helpers of app.py and options.py, so imports run one way: cli → commands → app, options.
"""
import os

from .app import cli
from .commands.catalogue import list_plugins
from .commands.check import check_cmd
from .commands.predict import predict_cmd
from .commands.resume import resume_cmd
from .commands.runs import compare, forecast_cmd, list_runs, show
from .commands.sweep import sweep_cmd
from .commands.teach import graph_cmd, gradcheck_cmd, vanish_cmd
from .commands.text import sample_cmd
from .commands.train import train_cmd
from .commands.tune import tune_cmd

COMMANDS = [train_cmd, list_plugins, list_runs, show, compare, forecast_cmd, predict_cmd, resume_cmd, sample_cmd,
            sweep_cmd, tune_cmd, check_cmd, gradcheck_cmd, vanish_cmd, graph_cmd]
for command in COMMANDS:
    cli.add_command(command)


def main(argv=None):
    """The console script `rnnrun`."""
    # the command line writes its plots to files; pyplot (Optuna's views use it) needs no window
    os.environ.setdefault("MPLBACKEND", "Agg")
    cli.main(args=argv, prog_name="rnnrun")


if __name__ == "__main__":
    main()
