"""bench/rnn_bench.py --backend cupy, which only a GPU machine runs for real, runs end to end on the
stand-in (imported as `cupy` in a child process), so bench/gpu_check.sh does not first fail there."""
import json
import os
import subprocess
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(TESTS, os.pardir, "bench", "rnn_bench.py")
AS_CUPY = ("import runpy, sys; sys.path.insert(0, {tests!r}); from cupy_standin import standin; "
           "sys.modules['cupy'] = standin; sys.argv = {argv!r}; runpy.run_path({bench!r}, run_name='__main__')")


def test_the_cupy_benchmark_runs_on_the_standin(tmp_path):
    out = tmp_path / "bench.json"
    argv = [BENCH, "--quick", "--backend", "cupy", "--impls", "fused,composed", "--cells", "gru",
            "--json", str(out)]
    code = AS_CUPY.format(tests=TESTS, argv=argv, bench=BENCH)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["settings"]["backend"] == "cupy"
    assert {(r["cell"], r["impl"]) for r in report["results"]} == {(c, i) for c in ("gru",)
                                                                  for i in ("fused", "composed")}
