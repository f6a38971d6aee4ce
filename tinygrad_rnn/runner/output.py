"""What every command prints through: the rich consoles, and `Fail`, a run failure already reported (exit 1)."""
from rich.console import Console


class Fail(Exception):
    """A run that failed (exit 1), already reported."""


def console(stderr=False):
    return Console(stderr=stderr, highlight=False)
