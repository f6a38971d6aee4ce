"""Does the tuned model beat a linear model? Issue 25's measurement, on four real series.

For each series: `rnnrun tune` searches the learning rate, the hidden size and the window (choosing
on validation), then `rnnrun --config best.toml --seeds 5 --json` trains the best configuration with
five seeds; the 5-seed ensemble's test metric is compared with the `linear` baseline (ridge on the
same windows, its penalty chosen on validation) and the strongest baseline of all.

    python bench/beat_linear.py --out results.json          # about 20-40 minutes on 2 busy cores
    python bench/beat_linear.py --only airline              # one series

The csv series are read from the data folder given by --data-dir (default plugins/datasets/data).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SERIES = {  # name: (data spec with its searched window, tune flags); every one read by the csv dataset, as a
    # practitioner would (its default relative targets: the model predicts the change from the window's end)
    "airline": ("csv:path={data}/airline_passengers_1949_1960.csv,target=passengers,time=month,season=12,"
                "window=12|24", []),
    "sunspots": ("csv:path={data}/sunspots_yearly_1700_2008.csv,target=sunactivity,time=year,window=10|20|30", []),
    "elnino": ("csv:path={data}/elnino_sst_1950_2010.csv,target=sst,time=month,season=12,horizon=12,window=24|36", []),
    "unemployment": ("csv:path={data}/us_macro_quarterly_1959_2009.csv,target=unemp,features=unemp+infl+tbilrate,"
                     "window=4|8|12", []),
}
TUNE = ["--cell", "gru", "--lr", "1e-3:5e-2", "--hidden", "8:64", "--trials", "10", "--workers", "1"]


def rnnrun():
    here = os.path.join(os.path.dirname(sys.executable), "rnnrun")
    return here if os.path.exists(here) else shutil.which("rnnrun") or "rnnrun"


def run(args):
    done = subprocess.run([rnnrun(), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rnnrun {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def measure(name, data_dir, runs_dir):
    spec, flags = SERIES[name]
    spec = spec.format(data=data_dir)
    study = run(["--runs-dir", runs_dir, "tune", "--data", spec, *TUNE, *flags, "--json"])
    best_toml = study["best"]["config"]
    seeds = run(["--runs-dir", runs_dir, "--config", best_toml, "--seeds", "5", "--json"])
    group = seeds["groups"][0]
    return {"name": name, "data": spec, "tuned": study["best"]["params"], "tune_value": study["best"]["value"],
            "trials": study["study"]["trials"], "pruned": study["study"]["pruned"],
            "metric": group["metric"], "n": group["n"],
            "test_metric_mean": group["test_metric_mean"], "test_metric_std": group["test_metric_std"],
            "ensemble_test_metric": group["ensemble_test_metric"], "baselines": group["baselines"],
            "best_baseline": group["best_baseline"], "linear": group["baselines"].get("linear"),
            "beats_linear": group["ensemble_test_metric"] < group["baselines"]["linear"],
            "beats_best_baseline": group["ensemble_beats_best_baseline"],
            "child_cpu_seconds": None}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="Comma-separated series; default all four.")
    parser.add_argument("--data-dir", default=os.path.join(HERE, os.pardir, "plugins", "datasets", "data"))
    parser.add_argument("--out", help="Write the results (JSON) here as they come.")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SERIES)
    results = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for name in names:
            before = os.times()
            result = measure(name, os.path.abspath(args.data_dir), runs_dir)
            after = os.times()
            result["child_cpu_seconds"] = round(after.children_user + after.children_system
                                                - before.children_user - before.children_system, 1)
            results.append(result)
            print(f"{name}: ensemble {result['ensemble_test_metric']:.4g} vs linear {result['linear']:.4g} "
                  f"({'beats' if result['beats_linear'] else 'does not beat'} it); strongest baseline "
                  f"{result['best_baseline']['name']} {result['best_baseline']['value']:.4g}; "
                  f"{result['child_cpu_seconds']} s CPU", file=sys.stderr, flush=True)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
