"""How many BLAS threads a training run uses: chosen from the run's sizes, not inherited.

NumPy's BLAS (OpenBLAS) starts one thread per core by default, and a thread that finished its part of
a product spins for a while waiting for the next one. On a machine where other work wants the cores
(two runs side by side, a sweep, someone else's job) those spinning threads wait for a core at every
one of the thousands of small products of a recurrent step: a run measured 5.4x slower with two
threads than with one (issue 27). A second thread pays only when each product is big enough that
splitting it saves more than the hand-over costs.

Measured on the development machine (2 cores, `python bench/thread_crossover.py`, table in
bench/RESULTS.md): one LSTM training step, wall time, 1 thread ÷ 2 threads was 0.86-1.16 up to 16.8 M
multiply-adds in the largest per-step product (batch × rows × columns of the largest weight), 1.4-1.6
from 33.5 M on, and 0.19 (two threads five times slower) whenever another process took a core. So:

    auto = 1 thread    if the largest per-step product has fewer than THRESHOLD multiply-adds,
                       or the machine is busy (1-minute load average ≥ cores - 0.5),
           else        the cores this process may use, at most MAX_AUTO.

Every default dataset's model is far below the threshold, so `auto` is 1 for them. The thread count
does not change the numbers (OpenBLAS splits a product by output blocks, each sum is the same; the
tests check it), so a resumed run may choose differently and still continue bit for bit.

    rnnrun --cell gru --data sine --threads 2      # or RNNRUN_THREADS=2; the default is auto
"""
import contextlib
import os

from .errors import ConfigError

ENV = "RNNRUN_THREADS"
THRESHOLD = 1 << 25  # multiply-adds per step product where a second thread started to pay (33.5 M)
MAX_AUTO = 4         # past a few threads, per-step products of a recurrent cell stop scaling
MAX_THREADS = 1024


def parse_threads(value, source="--threads"):
    """'auto' or a positive integer (as text or int) → 'auto' or an int; anything else a ConfigError."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise ConfigError(f"{source}: expected 'auto' or a whole number of threads from 1 to {MAX_THREADS}, "
                          f"got {value!r}")
    return n


def setting():
    """The thread setting in force: RNNRUN_THREADS (set by --threads too), else 'auto'."""
    value = os.environ.get(ENV, "").strip()
    return parse_threads(value, ENV) if value else "auto"


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def largest_product(model, batch_size):
    """Multiply-adds of the largest per-step matrix product: batch × the largest 2-D weight's size."""
    sizes = [p.shape[0] * p.shape[1] for p in model.parameters() if len(p.shape) == 2]
    return int(batch_size) * max(sizes, default=0)


def auto_threads(model, batch_size, load=None):
    """The count `auto` chooses for `model` trained in batches of `batch_size` (module docstring)."""
    cores = usable_cores()
    load = os.getloadavg()[0] if load is None and hasattr(os, "getloadavg") else (load or 0.0)
    if cores < 2 or largest_product(model, batch_size) < THRESHOLD or load >= cores - 0.5:
        return 1
    return min(cores, MAX_AUTO)


def choose_threads(model, batch_size, value=None):
    """The thread count for a run: `value` ('auto' or N) if given, else the RNNRUN_THREADS setting."""
    value = setting() if value is None else parse_threads(value)
    return auto_threads(model, batch_size) if value == "auto" else value


@contextlib.contextmanager
def blas_threads(n):
    """Within this block NumPy's BLAS (and any OpenMP pool) uses `n` threads; restored after."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=int(n)):
        yield
