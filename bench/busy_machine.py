"""A default `rnnrun` on a busy machine against the same run pinned to one BLAS thread (issue 27 item 1).

Two CPU-bound processes (busy loops) take the cores' attention, as a user's second job would; then the
same small training run goes, alternately, with rnnrun's default threads (`auto`, nothing set) and with
`--threads 1`, each timed in wall-clock seconds from start to exit. The target: default ÷ pinned
≤ 1.25. For contrast it also runs the old default, OpenBLAS's own (one thread per core), by
`RNNRUN_THREADS=<cores>` — what a run got before rnnrun chose.

    python bench/busy_machine.py                # about a minute
    python bench/busy_machine.py --repeats 5 --cell mgu --plugin path/to/mgu.py

The load average before the busy loops start is printed: other people's jobs count too.
"""
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def busy():
    while True:
        pass


def timed_run(args, env_extra, runs_dir):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RNNRUN_THREADS")}
    env.update(env_extra)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tinygrad_rnn", *args, "--runs-dir", runs_dir, "--quiet"],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


@click.command()
@click.option("--cell", default="gru", show_default=True)
@click.option("--data", default="sine", show_default=True)
@click.option("--epochs", default=3, show_default=True)
@click.option("--plugin", default=None, help="A plugin file for --cell.")
@click.option("--repeats", default=3, show_default=True)
@click.option("--busy", "n_busy", default=2, show_default=True, help="CPU-bound processes started first.")
def main(cell, data, epochs, plugin, repeats, n_busy):
    cores = os.cpu_count()
    args = ["--cell", cell, "--data", data, "--epochs", str(epochs)] + (["--plugin", plugin] if plugin else [])
    ways = {"default (auto)": {}, "--threads 1": {"RNNRUN_THREADS": "1"},
            f"{cores} threads (OpenBLAS's own default)": {"RNNRUN_THREADS": str(cores)}}
    print(f"load average before: {os.getloadavg()[0]:.2f} ({cores} cores); starting {n_busy} busy processes")
    loops = [multiprocessing.Process(target=busy, daemon=True) for _ in range(n_busy)]
    for p in loops:
        p.start()
    times = {name: [] for name in ways}
    try:
        time.sleep(2)
        with tempfile.TemporaryDirectory() as runs_dir:
            for _ in range(repeats):  # taking turns, so that changing load hits every way alike
                for name, env in ways.items():
                    times[name].append(timed_run(args, env, runs_dir))
        load = os.getloadavg()[0]
    finally:
        for p in loops:
            p.terminate()
    pinned = statistics.median(times["--threads 1"])
    print(f"load average at the end (busy loops included): {load:.2f}")
    print(f"rnnrun {' '.join(args)}: wall seconds, median of {repeats}")
    print("| threads | seconds (each run) | median | ÷ --threads 1 |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"| {name} | {', '.join(f'{t:.2f}' for t in ts)} | {median:.2f} | {median / pinned:.2f}× |")


if __name__ == "__main__":
    main()
