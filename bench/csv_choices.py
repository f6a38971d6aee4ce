"""Measure the `csv` dataset's forecasting choices on the real series shipped in the repository.

For airline (monthly passengers, trending and multiplicative) and sunspots (yearly, cyclic, with
zeros, so no log), train a GRU with every combination of `relative`, `transform` and `scale` at the
dataset's default settings, over several seeds, and print the mean test RMSE (± std over seeds)
beside persistence and seasonal naive: the table of docs/07-your-own-data.md, from which the
defaults were picked. Then time loading and windowing a 1,000,000-row file of 6 numeric columns.

    python bench/csv_choices.py                       # everything (~5 min on 2 loaded cores)
    python bench/csv_choices.py --seeds 1 --epochs 20  # quicker, noisier
    python bench/csv_choices.py --only load            # just the 1M-row load
"""
import argparse
import itertools
import os
import tempfile
import time

import numpy as np

from tinygrad_rnn.registry import datasets, discover
from tinygrad_rnn.runner.experiment import execute, resolve
from tinygrad_rnn.runner.store import RunStore

DATA = os.path.join(os.path.dirname(__file__), "..", "plugins", "datasets", "data")
SERIES = {
    "airline": dict(path=os.path.join(DATA, "airline_passengers_1949_1960.csv"), target="passengers",
                    time="month", window=12, season=12),
    "sunspots": dict(path=os.path.join(DATA, "sunspots_yearly_1700_2008.csv"), target="sunactivity",
                     time="year", window=20, season=11),
}
CHOICES = list(itertools.product((True, False), ("none", "log"), ("window", "global")))


def measure(seeds, epochs):
    print(f"load before: {os.getloadavg()[0]:.2f}")
    print("| series | relative | transform | scale | GRU test RMSE (mean ± std) | persistence | seasonal naive |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root)
        for name, options in SERIES.items():
            for relative, transform, scale in CHOICES:
                if name == "sunspots" and transform == "log":
                    continue  # zeros in the record: log is not defined
                scores, summary = [], None
                for seed in range(seeds):
                    config = resolve({"cell": "gru", "data": "csv", "seed": seed, "epochs": epochs,
                                      "data_options": {**options, "relative": relative, "transform": transform,
                                                       "scale": scale}})
                    summary = execute(config, store)
                    scores.append(summary["test_metric"])
                print(f"| {name} | {str(relative).lower()} | {transform} | {scale} | {np.mean(scores):.1f} ± "
                      f"{np.std(scores):.1f} | {summary['baseline']:.1f} | {summary['test_seasonal_naive']:.1f} |",
                      flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


def time_load(rows=1_000_000):
    """Seconds to read and window a rows × 6 file (a series id, a time and 4 numeric columns)."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "big.csv")
        series = np.repeat(np.arange(100), rows // 100)
        t = np.tile(np.arange(rows // 100), 100)
        values = rng.normal(size=(rows, 4)).cumsum(axis=0).round(4)
        with open(path, "w") as f:
            f.write("store,day,units,price,promo,temp\n")
            np.savetxt(f, np.column_stack([series, t, values]), fmt=["%d", "%d", "%g", "%g", "%g", "%g"],
                       delimiter=",")
        size = os.path.getsize(path) / 1e6
        dataset = datasets.get("csv")(path=path, target="units", series="store", time="day",
                                      features="units+price+promo+temp", window=24)
        started, cpu = time.perf_counter(), time.process_time()
        splits = dataset.splits()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    windows = sum(len(s) for s in splits.values())
    print(f"{rows:,} rows × 6 columns ({size:.0f} MB): read, ordered, scaled and cut into {windows:,} windows "
          f"of 24 steps in {seconds:.1f} s wall, {cpu:.1f} s of CPU (load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: the csv dataset's")
    parser.add_argument("--only", choices=("choices", "load"))
    args = parser.parse_args()
    discover()
    if args.only != "load":
        measure(args.seeds, args.epochs)
    if args.only != "choices":
        time_load()
