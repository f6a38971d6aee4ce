"""`rnnrun tune` (TPE + median pruning) against random search with the same number of trials.

For each dataset and seed: the best validation loss each search reaches and the epochs it trained.
The random searches are `rnnrun sweep --random K` (seed 0; its trials run on seed 0 and draw with
--sample-seed) and `rnnrun tune --sampler random --pruner none` (the same draws' distribution, on the
same run seed as the TPE study). Prints a Markdown table and the machine's load.

    python bench/tune_vs_sweep.py [--data adding:T=50,airline,csv] [--seeds 0,1,2] [--trials 20] [--runs-dir DIR]
"""
import argparse
import json
import os
import subprocess
import sys

CSV_AIRLINE = ("csv:path=plugins/datasets/data/airline_passengers_1949_1960.csv,target=passengers,time=month,"
               "window=12,season=12")  # the `csv` dataset on the shipped file, as docs/07-your-own-data.md reads it
DATASETS = {"adding:T=50": ["--epochs", "15"], "airline": ["--epochs", "50"], "csv": ["--epochs", "50"]}
SPECS = {"csv": CSV_AIRLINE}  # a short name on the command line for a long spec
SPACE = ["--cell", "gru", "--lr", "1e-4:1e-1", "--hidden", "4:64"]


def rnnrun(*args):
    out = subprocess.run([sys.executable, "-m", "tinygrad_rnn", *args, "--json", "--quiet"], capture_output=True,
                         text=True)
    if not out.stdout.strip():
        raise SystemExit(f"rnnrun {' '.join(args)} printed nothing:\n{out.stderr}")
    return json.loads(out.stdout)


def tune(runs, data, epochs, trials, seed, *extra):
    doc = rnnrun("--runs-dir", runs, "tune", *SPACE, "--data", data, *epochs, "--trials", str(trials), "--seed",
                 str(seed), "--study", f"{data.split(':')[0]}-{seed}-{'-'.join(extra) or 'tpe'}".replace("--", ""),
                 *extra)
    return doc["best"]["value"], doc["study"]["epochs"], doc["study"]["pruned"]


def sweep(runs, data, epochs, trials, seed):
    doc = rnnrun("--runs-dir", runs, "sweep", *SPACE, "--data", data, *epochs, "--random", str(trials),
                 "--sample-seed", str(seed), "--workers", "1")
    done = [t for t in doc["trials"] if t.get("val_loss") is not None]
    return min(t["val_loss"] for t in done), sum(t.get("epochs") or 0 for t in doc["trials"]), len(doc["trials"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=",".join(DATASETS), help="which of: " + ", ".join(DATASETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--searches", default="tpe,random,sweep", help="which of: tpe, random, sweep")
    parser.add_argument("--runs-dir", default="/tmp/tune-bench")
    a = parser.parse_args()
    searches, k = a.searches.split(","), a.trials
    print(f"load before: {os.getloadavg()}", flush=True)
    print("| dataset | seed | search | trials | best val loss | epochs trained |")
    print("|---|---|---|---|---|---|")
    for data in a.data.split(","):
        epochs, spec = DATASETS[data], SPECS.get(data, data)
        for seed in map(int, a.seeds.split(",")):
            rows = []
            if "tpe" in searches:
                value, spent, pruned = tune(a.runs_dir, spec, epochs, k, seed)
                rows.append(("tune (TPE + median)", f"{k} ({pruned} pruned)", value, spent))
            if "random" in searches:
                value, spent, _ = tune(a.runs_dir, spec, epochs, k, seed, "--sampler", "random", "--pruner", "none")
                rows.append(("tune --sampler random --pruner none", k, value, spent))
            if "sweep" in searches:
                value, spent, n = sweep(a.runs_dir, spec, epochs, k, seed)
                rows.append((f"sweep --random {k} --sample-seed {seed}", n, value, spent))
            for search, trials, value, spent in rows:
                print(f"| {data} | {seed} | {search} | {trials} | {value:.4g} | {spent} |", flush=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
