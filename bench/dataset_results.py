"""Reproduce docs/results.md: every dataset's default run, for each cell, against its baseline.

Runs the runner itself — `rnnrun --cell rnn,lstm,gru --data NAME --json` — one dataset at a time
(never in parallel, so the seconds mean something), records each result with the machine's load
average, and writes the markdown tables.

    python bench/dataset_results.py > tables.md                        # everything (~15 min on 2 cores)
    python bench/dataset_results.py --cache r.json --only sine,adding  # some rows; others kept in r.json
    python bench/dataset_results.py --cache r.json --markdown-only     # the tables again, no training
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from tinygrad_rnn.registry import datasets

# (row name, dataset spec, extra flags): every built-in dataset at its defaults, then the claims.
RUNS = [
    ("sine", "sine", []),
    ("airline", "airline", []),
    ("sunspots", "sunspots", []),
    ("vowels", "vowels", []),
    ("stock", "stock", []),
    ("adding", "adding", []),
    ("copy", "copy", []),
    ("agreement", "agreement", []),
    ("sentiment", "sentiment", []),
    ("addition", "addition", []),
    ("tagging", "tagging", []),
    ("tagging --bidirectional", "tagging", ["--bidirectional"]),
    ("captions", "captions", []),
    ("trajectory", "trajectory", []),
    ("agreement:T=100", "agreement:T=100", []),   # adding's default T is already 100
]
CELLS = "rnn,lstm,gru"


def rnnrun():
    here = os.path.join(os.path.dirname(sys.executable), "rnnrun")
    return here if os.path.exists(here) else shutil.which("rnnrun") or "rnnrun"


def load():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def run_one(name, spec, flags, runs_dir):
    command = [rnnrun(), "--cell", CELLS, "--data", spec, *flags, "--json", "--runs-dir", runs_dir]
    before = load()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: a run diverged or failed; its summary is still printed
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    docs = json.loads(done.stdout)
    docs = docs if isinstance(docs, list) else [docs]
    shown = f"rnnrun --cell {CELLS} --data {spec}" + "".join(f" {f}" for f in flags)
    return {"name": name, "command": shown, "load_before": before, "load_after": load(),
            "runs": [{k: d.get(k) for k in ("cell", "test_metric", "metric", "baseline", "baseline_name",
                                            "baselines", "best_baseline", "seconds", "epochs", "params", "status")}
                     for d in docs]}


def fmt(value):
    if value is None:
        return "–"
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def strongest(run):
    """'linear 15.77': the strongest baseline of a run (baselines.py), or – for results without one."""
    best = run.get("best_baseline")
    return f"{best['name']} {fmt(best['value'])}" if best else "–"


def beaten_by(results_row, dataset):
    """The cells whose test metric beats the strongest baseline, e.g. 'lstm, gru', or 'none'."""
    won = []
    for run in results_row["runs"]:
        best = run.get("best_baseline")
        if best and run["test_metric"] is not None:
            better = run["test_metric"] > best["value"] if dataset.higher_is_better else run["test_metric"] < best["value"]
            if better:
                won.append(run["cell"])
    return ", ".join(won) or "none"


def summary(results):
    """One row per command: the metric each cell reaches beside the dataset's own baseline and the strongest
    simple one (tinygrad_rnn/baselines.py), and which cells beat that."""
    lines = ["| data | metric | baseline | strongest baseline | rnn | lstm | gru | beats the strongest | slowest run (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        by_cell = {run["cell"]: run for run in r["runs"]}
        first = r["runs"][0]
        dataset = datasets.get(r["name"].split()[0].split(":")[0])
        better = "higher" if dataset.higher_is_better else "lower"
        cells = [fmt(by_cell[c]["test_metric"]) if c in by_cell else "–" for c in CELLS.split(",")]
        lines.append(f"| `{r['name']}` | {first['metric']} ({better} is better) | {first['baseline_name']} "
                     f"{fmt(first['baseline'])} | {strongest(first)} | {' | '.join(cells)} | {beaten_by(r, dataset)} | "
                     f"{max(run['seconds'] for run in r['runs']):.0f} |")
    return "\n".join(lines) + "\n"


def markdown(results):
    lines = [summary(results)]
    for r in results:
        first = r["runs"][0]
        lines += [f"### `{r['name']}`", "", f"`{r['command']}` — load average {r['load_before']:.1f} → "
                  f"{r['load_after']:.1f}", "",
                  f"| cell | test {first['metric']} | {first['baseline_name']} | strongest baseline | seconds |",
                  "|---|---|---|---|---|"]
        for run in r["runs"]:
            status = "" if run["status"] == "finished" else f" ({run['status']})"
            lines.append(f"| {run['cell']} | {fmt(run['test_metric'])}{status} | {fmt(run['baseline'])} | "
                         f"{strongest(run)} | {run['seconds']:.1f} |")
        if first.get("baselines"):
            lines += ["", "Every baseline (test " + first["metric"] + "): " +
                      ", ".join(f"{name} {fmt(value)}" for name, value in first["baselines"].items())]
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="Comma-separated row names to (re)run; default all.")
    parser.add_argument("--cache", help="A JSON file that keeps results between calls (optional).")
    parser.add_argument("--out", help="Write the tables here instead of to stdout.")
    parser.add_argument("--markdown-only", action="store_true", help="Only rewrite the tables from --cache.")
    args = parser.parse_args()
    cached = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            cached = {r["name"]: r for r in json.load(f)}
    wanted = set(args.only.split(",")) if args.only else {name for name, _, _ in RUNS}
    if not args.markdown_only:
        with tempfile.TemporaryDirectory() as runs_dir:
            for name, spec, flags in RUNS:
                if name in wanted:
                    print(f"{name} ...", file=sys.stderr, flush=True)
                    cached[name] = run_one(name, spec, flags, runs_dir)
                    for run in cached[name]["runs"]:
                        print(f"  {run['cell']}: {fmt(run['test_metric'])} vs {fmt(run['baseline'])} "
                              f"in {run['seconds']:.1f}s", file=sys.stderr, flush=True)
                    if args.cache:
                        with open(args.cache, "w") as f:
                            json.dump([cached[n] for n, _, _ in RUNS if n in cached], f, indent=1)
    results = [cached[n] for n, _, _ in RUNS if n in cached]
    text = f"<!-- bench/dataset_results.py, {platform.machine()}, {os.cpu_count()} CPUs -->\n\n{markdown(results)}"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
