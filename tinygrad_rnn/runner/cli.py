"""The entry point of `rnnrun` (console script `rnnrun = tinygrad_rnn.runner.cli:main`, and `python -m
tinygrad_rnn`): import every command family so that it registers on the group, then run the group."""
from .app import cli
from .commands import catalogue, check, runs, sweep, teach, text  # noqa: F401  (each registers its commands on `cli`)


def main(argv=None):
    """The console script `rnnrun`."""
    cli.main(args=argv, prog_name="rnnrun")


if __name__ == "__main__":
    main()
