"""A run's loggers (`--log NAME[:k=v]`), each on a thread of its own, so that none can slow or stop it.

The training thread only puts each hook's call on a logger's queue (microseconds: the measured cost
is in tests/test_loggers.py); the logger's thread makes the calls in order. A run waits for its
loggers to start (import their package, connect) before it trains, so that their start does not
compete with the first epochs for the interpreter. A logger that raises, in
its constructor or any hook, says so in one warning line on stderr and is not called again; the run
goes on and ends as it would have without it. At the run's end each logger gets `FINISH_SECONDS` to
send what it still holds; one that takes longer is left behind with a warning.

    check_loggers(config)            every --log of a resolved config installed: else a one-line ConfigError
    Loggers.start(specs, run_info)   the loggers of a run, started; .epoch(m), .end(summary, files), .close()
    Loggers.start_group(specs, info) the loggers of a sweep or tune study; .end_group(summary)
"""
import os
import queue
import threading

import click

from ..errors import ConfigError
from ..logger import GroupInfo, RunInfo, missing_modules  # noqa: F401  (the runner builds these)
from ..registry import loggers as registry

START_SECONDS = 60.0       # how long a run waits for a logger to start (import, connect) before training
FINISH_SECONDS = 60.0      # how long a finished run waits for a logger to send what it holds
INTERRUPTED_SECONDS = 5.0  # the same after Ctrl-C: the user wants the prompt back


def check_loggers(config):
    """ConfigError, in one line naming the extra, for a --log whose package is not installed."""
    for spec in config.get("log") or []:
        cls = registry.get(spec["name"])
        missing = missing_modules(cls)
        if missing:
            extra = cls.extra or spec["name"]
            raise ConfigError(f"--log {spec['name']} needs the {', '.join(missing)} package, which is not "
                              f"installed: pip install 'tinygrad_rnn[{extra}]'")


class Guarded:
    """One logger on its own thread: calls queue up here and are made there, in order."""

    def __init__(self, name, make):
        self.name, self.failed = name, False
        self.calls = queue.SimpleQueue()
        self.started = threading.Event()  # set once the logger is built and told of the start
        self.thread = threading.Thread(target=self._work, args=(make,), name=f"logger {name}", daemon=True)
        self.thread.start()

    def call(self, hook, *args):
        if not self.failed:
            self.calls.put((hook, args))

    def _work(self, make):
        logger = self._guard("start", make)
        self.started.set()
        while True:
            hook, args = self.calls.get()
            if hook is None:
                break
            if logger is not None and not self.failed:
                self._guard(hook, getattr(logger, hook), *args)
        if logger is not None and not self.failed:
            self._guard("close", logger.close)

    def _guard(self, hook, function, *args):
        try:
            return function(*args)
        except BaseException as e:  # noqa: B036  a logger must never take the run down with it
            self.failed = True
            message = str(e).strip().splitlines()[0] if str(e).strip() else ""
            click.echo(f"warning: logger {self.name!r} failed in {hook}: {type(e).__name__}"
                       f"{': ' + message if message else ''}; the run goes on without it", err=True)
            return None

    def finish(self, seconds):
        """Let the logger send what it holds, for at most `seconds`."""
        self.calls.put((None, ()))
        self.thread.join(seconds)
        if self.thread.is_alive():
            click.echo(f"warning: logger {self.name!r} did not finish within {seconds:g} s; what it had not "
                       "sent yet is lost", err=True)


class Loggers:
    """The loggers of one run (or one sweep or study): each hook goes to every one of them."""

    def __init__(self, guarded):
        self.guarded = guarded

    @classmethod
    def _build(cls, specs, first_hook, info):
        def make(spec):
            def build():
                logger = registry.get(spec["name"])(**spec.get("options", {}))
                getattr(logger, first_hook)(info)
                return logger
            return build
        return cls([Guarded(spec["name"], make(spec)) for spec in specs or []])

    @classmethod
    def start(cls, specs, run_info, seconds=START_SECONDS):
        """The loggers of `specs` ([{name, options}], a config's `log`), told that `run_info` starts.

        Waits (at most `seconds`) until each has started: a logger's start imports its package and
        connects (MLflow: seconds of CPU), which, overlapping the first epochs, would take the
        interpreter's lock from training and slow them (measured: 15 ms epochs became 50 ms)."""
        return cls._build(specs, "start", run_info)._wait(seconds, "training goes on")

    @classmethod
    def start_group(cls, specs, group_info, seconds=START_SECONDS):
        """The loggers of `specs`, told that a sweep or study (`group_info`) starts; waits, as `start`
        does, until each has made the group's record, which its trials look for."""
        return cls._build(specs, "start_group", group_info)._wait(seconds, "trials go on")

    def _wait(self, seconds, going_on):
        for g in self.guarded:
            if not g.started.wait(seconds):
                click.echo(f"warning: logger {g.name!r} has not started after {seconds:g} s; {going_on} while "
                           "it does", err=True)
        return self

    def __bool__(self):
        return bool(self.guarded)

    def epoch(self, metrics):
        for g in self.guarded:
            g.call("epoch", dict(metrics))

    def end(self, summary, run_path=None, seconds=FINISH_SECONDS):
        """The run ended with `summary`; its folder's files go as artifacts; wait for the loggers."""
        for g in self.guarded:
            g.call("end", dict(summary))
            if run_path:
                g.call("artifacts", run_files(run_path))
        self.close(seconds)

    def end_group(self, summary, seconds=None):
        for g in self.guarded:
            g.call("end_group", dict(summary))
        self.close(FINISH_SECONDS if seconds is None else seconds)

    def close(self, seconds=FINISH_SECONDS):
        for g in self.guarded:
            g.finish(seconds)
        self.guarded = []


def run_files(path):
    """The files directly in a run folder (config.toml, metrics.csv, summary.json, model.npz, *.png),
    sorted; a checkpoint is the run's own business and stays out."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return []
    return [os.path.join(path, n) for n in names
            if os.path.isfile(os.path.join(path, n)) and not n.startswith(".") and not n.startswith("checkpoint")]


def run_info(run, config, params, group=None, runs_dir=None):
    """The RunInfo of `run` (a store.Run) for the loggers' `start`."""
    if runs_dir is None:  # up from the run's folder, past its group's folders (sweeps/<id>)
        runs_dir = os.path.dirname(run.path)
        for _ in (group or "").split("/") if group else ():
            runs_dir = os.path.dirname(runs_dir)
    plugin_files = [p for p in config.get("plugins") or [] if str(p).endswith(".py") or os.sep in str(p)]
    return RunInfo(id=run.id, path=os.path.abspath(run.path), config=config, params=int(params or 0), group=group,
                   runs_dir=os.path.abspath(runs_dir), plugin_files=plugin_files)
