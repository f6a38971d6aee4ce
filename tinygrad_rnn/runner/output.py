"""What every command prints through: the rich consoles, strict JSON, and `Fail`, a run failure
already reported (exit 1)."""
import contextlib
import errno
import json
import math
import sys

import click
from rich.console import Console


class Fail(Exception):
    """A run that failed (exit 1), already reported."""


class _Console(Console):
    def on_broken_pipe(self):
        """rich's default exits 1 on its own; the reader going away (`rnnrun runs | head`) goes through
        rnnrun's one error path instead, which ends quietly (app.BROKEN_PIPE)."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the output's reader went away")


def console(stderr=False):
    return _Console(stderr=stderr, highlight=False)


def make_streams_tolerant():
    """stdout and stderr replace what their encoding cannot hold ('–' becomes '?' under
    PYTHONIOENCODING=ascii or LC_ALL=C) instead of raising UnicodeEncodeError mid-table."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (ValueError, OSError):  # a closed or detached stream: nothing to protect
                pass


def finite_or_null(value):
    """(a copy of `value` in plain JSON types with every NaN and ±infinity replaced by None, how many
    were replaced). NumPy scalars and arrays become numbers and lists; tuples become lists."""
    count = 0

    def clean(v):
        nonlocal count
        if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):  # NumPy arrays and scalars
            v = v.tolist()
        if isinstance(v, float):
            if math.isfinite(v):
                return v
            count += 1
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if v is None or isinstance(v, (bool, int, str)):
            return v
        return str(v)

    return clean(value), count


def json_text(doc, indent=2):
    """`doc` as strict JSON text (RFC 8259 has no NaN or Infinity), and how many values became null."""
    clean, count = finite_or_null(doc)
    return json.dumps(clean, indent=indent, allow_nan=False), count


_json_stdout = [None]  # the real stdout while --json holds it (see stdout_held_for_json)


@contextlib.contextmanager
def stdout_held_for_json(held):
    """With --json (`held`), stdout carries the JSON document and nothing else: whatever else is printed
    there meanwhile (a plugin's print(), a progress line) goes to stderr. print_json writes to the real one."""
    if not held:
        yield
        return
    real = sys.stdout
    _json_stdout[0], sys.stdout = real, sys.stderr
    try:
        yield
    finally:
        sys.stdout, _json_stdout[0] = real, None


def print_json(doc, indent=2):
    """The one way a command prints --json: one strict JSON document on stdout. A value that is not a
    finite number (NaN, ±infinity: a diverged run) is written as null, and a note on stderr says so."""
    text, count = json_text(doc, indent)
    click.echo(text, file=_json_stdout[0] or sys.stdout)
    if count:
        click.echo(f"note: {count} value{'s' if count != 1 else ''} that {'were' if count != 1 else 'was'} "
                   "not a finite number (NaN or infinity) written as null", err=True)
