"""Who handles Ctrl-C while a run trains."""
import contextlib
import signal
import threading


@contextlib.contextmanager
def on_ctrl_c(handler):
    """Within the block, SIGINT goes to `handler`; the previous handler comes back afterwards.

    Python delivers signals to the main thread only, so in any other thread (a Dask worker's task)
    this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
