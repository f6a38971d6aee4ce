"""Who handles Ctrl-C — and the other polite requests to stop — while a run trains.

SIGTERM is what `timeout`, batch schedulers and container stops send; SIGHUP comes when the terminal
goes away. Both are treated like Ctrl-C (SIGINT): the run stops at once, keeps its files and is
marked "interrupted", and the process exits 128 + the signal's number (130, 143, 129), as a shell
expects. SIGKILL cannot be caught: that is what checkpoints and `rnnrun resume` are for.

    with on_stop():                 # SIGINT, SIGTERM, SIGHUP raise Stopped (a KeyboardInterrupt)
        ...
        with held():                # ... except here: a signal waits until the files are written
            write_the_epochs_files()
            with released():        # ... and here, inside a held block, it acts at once again
                train_a_trial()
"""
import contextlib
import os
import signal
import threading

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """A stop signal arrived: raised like Ctrl-C's KeyboardInterrupt, carrying which signal it was."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


class Stop:
    """The stop signal seen, if any. Python raises the handler's exception wherever the main thread
    is, and a library can swallow it (in a callback, a finaliser); training callbacks call `check()`
    as well, so the run still stops at the next batch. Inside `held()` the handler only records."""
    seen = None   # the signal's number
    _held = 0

    @classmethod
    def handler(cls, signum, frame):
        first = cls.seen is None
        cls.seen = cls.seen or signum
        if first and not cls._held:  # a second signal while the first one's cleanup saves the run waits
            raise Stopped(signum)

    @classmethod
    def check(cls):
        if cls.seen is not None:
            raise Stopped(cls.seen)


@contextlib.contextmanager
def held():
    """A stop signal that arrives inside the block takes effect when it ends: a file is written whole."""
    Stop._held += 1
    try:
        yield
    finally:
        Stop._held -= 1
    if not Stop._held:
        Stop.check()


@contextlib.contextmanager
def released():
    """Inside held(): here a stop signal acts at once again (a trial's training), while around the block
    it waits (a study's database being written, which an exception mid-write could leave locked)."""
    saved, Stop._held = Stop._held, 0
    try:
        Stop.check()
        yield
    finally:
        Stop._held = saved


def interrupt_workers(processes):
    """Pass a stop on to worker processes as Ctrl-C (their trials save and end "interrupted"): a
    SIGTERM or SIGHUP sent to the parent alone, unlike a terminal's Ctrl-C, does not reach them."""
    for process in processes:
        try:
            os.kill(process.pid, signal.SIGINT)
        except (OSError, AttributeError, TypeError):  # gone already
            pass


@contextlib.contextmanager
def ignoring_stops(signals=STOP_SIGNALS):
    """Within the block (the last words of a stopped command), further stop signals are ignored."""
    with on_ctrl_c(signal.SIG_IGN, signals):
        yield


def why(error):
    """The sentence a run's summary keeps for a KeyboardInterrupt (or Stopped) `error`."""
    signum = getattr(error, "signum", signal.SIGINT)
    if signum == signal.SIGINT:
        return "interrupted by the user (Ctrl-C)"
    return f"stopped by {signal.Signals(signum).name}"


def exit_code(error):
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + int(getattr(error, "signum", signal.SIGINT))


@contextlib.contextmanager
def on_ctrl_c(handler, signals=(signal.SIGINT,)):
    """Within the block, `signals` (Ctrl-C by default) go to `handler`; the previous handlers come
    back afterwards.

    Python delivers signals to the main thread only, so in any other thread (a Dask worker's task)
    this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextlib.contextmanager
def on_stop(signals=STOP_SIGNALS):
    """Within the block, SIGINT, SIGTERM and SIGHUP (or `signals`) raise `Stopped` through `Stop`."""
    Stop.seen = None  # a signal of an earlier block in this process is not this one's
    try:
        with on_ctrl_c(Stop.handler, signals):
            yield
    finally:
        Stop.seen = None
