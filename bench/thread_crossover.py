"""Where a second BLAS thread starts to pay: one training step (forward, MSE, backward) of an LSTM
layer, timed in wall-clock time with 1 and with 2 BLAS threads (threadpoolctl), at growing sizes.

The rule `rnnrun --threads auto` uses (tinygrad_rnn/runner/threads.py) comes from this table: the
size is the largest matrix product a step makes per time step, batch x rows x columns of the
largest weight (multiply-adds). Run it on a quiet machine and write the load down beside the table:

    python bench/thread_crossover.py            # about a minute
"""
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import tinygrad_rnn as tg
from tinygrad_rnn.nn import Recurrent
from tinygrad_rnn.registry import cells, discover
from tinygrad_rnn import Tensor

SIZES = [(32, 32), (32, 64), (64, 128), (64, 256), (128, 256), (64, 512), (128, 512)]  # (batch, hidden)
T, D, REPEATS = 20, 8, 7


def step_time(model, x, threads):
    times = []
    with threadpool_limits(threads):
        for _ in range(REPEATS):
            start = time.perf_counter()
            out, _ = model(x)
            (out * out).mean().backward()
            times.append(time.perf_counter() - start)
            model.zero_grad()
    return statistics.median(times)


def main():
    discover()
    print(f"load average {os.getloadavg()[0]:.2f} at the start; {os.cpu_count()} cores")
    print("| batch | hidden | multiply-adds per step product | 1 thread ms | 2 threads ms | 1 ÷ 2 |")
    print("|---|---|---|---|---|---|")
    for batch, hidden in SIZES:
        tg.manual_seed(0)
        model = Recurrent(cells.get("lstm"), D, hidden)
        x = Tensor(np.random.default_rng(0).standard_normal((batch, T, D)).astype(np.float32))
        step_time(model, x, 1)  # warm-up
        one, two = step_time(model, x, 1), step_time(model, x, 2)
        print(f"| {batch} | {hidden} | {batch * 4 * hidden * hidden:,} | {one * 1e3:.1f} | {two * 1e3:.1f} | "
              f"{one / two:.2f}× |")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
