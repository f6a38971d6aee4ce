"""The entry point of `rnnrun` (console script `rnnrun = tinygrad_rnn.runner.cli:main`, and `python -m
tinygrad_rnn`): import every command family so that it registers on the group, then run the group."""
from .app import cli
# each command family registers its commands on `cli` when imported
from .commands import catalogue, check, predict, resume, runs, sweep, teach, text, tune  # noqa: F401


def main(argv=None):
    """The console script `rnnrun`."""
    cli.main(args=argv, prog_name="rnnrun")


if __name__ == "__main__":
    main()
