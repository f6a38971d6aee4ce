"""bench/rnn_bench.py runs end to end and writes the JSON it promises (a smoke test, not a timing)."""
import json
import os
import subprocess
import sys

import pytest

import early_jobs

BENCH = os.path.join(os.path.dirname(__file__), os.pardir, "bench", "rnn_bench.py")


def prepare_the_quick_benchmark(folder):
    return {"args": [sys.executable, BENCH, "--quick", "--json", str(folder / "bench.json")],
            "env": {**early_jobs.ENVIRON}}


# a subprocess of a few seconds' CPU, so it starts when the tests are collected (tests/early_jobs.py)
early_jobs.define("bench --quick", prepare_the_quick_benchmark, seconds=15, timeout=300)


@pytest.mark.early_job("bench --quick")
def test_quick_benchmark_writes_a_result_for_every_cell_and_implementation():
    code, _, stderr, folder = early_jobs.result("bench --quick")
    assert code == 0, stderr[-2000:]
    report = json.loads((folder / "bench.json").read_text())
    impls = {r["impl"] for r in report["results"]}
    assert {"fused", "compiled", "composed"} <= impls
    for cell in ("rnn", "lstm", "gru"):
        rows = [r for r in report["results"] if r["cell"] == cell]
        assert {r["impl"] for r in rows} == impls
        assert all(r["ms"] > 0 and len(r["ms_all"]) == report["settings"]["repeats"] for r in rows)
        if "torch" in impls:
            assert next(r["ratio"] for r in rows if r["impl"] == "torch") == 1.0
    modes = {(m["cell"], m["mode"]) for m in report["memory"]}
    assert {("lstm", f"full BPTT, {impl}") for impl in ("fused", "compiled", "composed")} <= modes
    assert ("lstm", "tbptt k=25") in modes
    assert all(m["peak_bytes"] > 0 for m in report["memory"])
    assert report["machine"]["threads"] == 2


def test_bad_options_are_refused_with_the_valid_choices():
    done = subprocess.run([sys.executable, BENCH, "--cells", "transformer"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "rnn" in done.stderr and "transformer" in done.stderr
