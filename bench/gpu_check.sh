#!/usr/bin/env bash
# The CuPy backend on a machine with an NVIDIA GPU, in one command, in under 9 minutes:
#
#     bash bench/gpu_check.sh
#
#   1. installs the `gpu` extra (CuPy) into the active Python if `import cupy` fails;
#   2. pytest -m gpu (the real CuPy against NumPy, op by op) and the stand-in suite (tests/cupy_standin/);
#   3. `rnnrun --backend cupy` on one dataset of each task kind, beside the same run on NumPy;
#   4. bench/rnn_bench.py --backend cupy: tinygrad_rnn on CuPy against torch's CUDA (cuDNN) modules;
#   5. the compiled path with and without fusion on CuPy (`compiled`: each elementwise group of the
#      step one generated ElementwiseKernel, tinygrad_rnn/fusion_cupy.py; `compiled-nofast`: op by op);
# then one summary. Exit 0 when every step passed. The full logs stay in the folder it names. Each step
# has a time limit (90 + 60 + 10 x 20 + 120 + 60 s = 8 min 50 s at most, install aside).
# Environment: PYTHON (default python), BENCH_ARGS (default "--configs medium,long --repeats 5"),
# FUSION_ARGS (default "--configs small,medium --repeats 5").
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
LOGS=$(mktemp -d -t gpu_check.XXXX)
START=$SECONDS

if ! nvidia-smi -L >"$LOGS/gpu.txt" 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi -L failed); run it on a machine with one" >&2
  exit 2
fi
if ! "$PY" -c "import cupy" 2>/dev/null; then
  echo "installing the gpu extra (CuPy) ..."
  "$PY" -m pip install -q -e ".[gpu,test]" >"$LOGS/install.txt" 2>&1 || { tail -5 "$LOGS/install.txt"; exit 2; }
fi

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log it, remember pass/fail
  local name=$1 limit=$2; shift 2
  local began=$SECONDS
  timeout "$limit" "$@" >"$LOGS/$name.txt" 2>"$LOGS/$name.err"
  local rc=$?
  echo "$name $rc $((SECONDS - began))" >>"$LOGS/steps.txt"
  echo "  $name: $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - began)) s"
}

echo "gpu_check: $(head -1 "$LOGS/gpu.txt"); logs in $LOGS"
step pytest-gpu 90 "$PY" -m pytest -m gpu -p no:cacheprovider tests/
step pytest-standin 60 "$PY" -m pytest -p no:cacheprovider tests/cupy_standin/

SMALL=(--hidden 32 --epochs 2 --seed 1 --json)
declare -A RUNS=(
  [seq2vec]="--cell gru --data sine:n_train=200"
  [seq2seq]="--cell lstm --data tagging:n_train=200 --bidirectional"
  [vec2seq]="--cell gru --data captions:n_train=200"
  [encdec]="--cell lstm --data addition:n_train=200"
  [text]="--cell lstm --data text:chars=40000 --reg tbptt:k=25"
)
for kind in seq2vec seq2seq vec2seq encdec text; do
  for where in numpy cupy; do
    # shellcheck disable=SC2086
    step "rnnrun-$kind-$where" 20 "$PY" -m tinygrad_rnn ${RUNS[$kind]} "${SMALL[@]}" --backend "$where" \
      --runs-dir "$LOGS/runs-$where"
  done
done

TORCH_CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
IMPLS=fused,compiled,composed,torch,torch-cell
[ "$TORCH_CUDA" = 1 ] || { IMPLS=fused,compiled,composed; echo "  (torch without CUDA here: the benchmark times ours only)"; }
# shellcheck disable=SC2086
step bench 120 "$PY" bench/rnn_bench.py --backend cupy ${BENCH_ARGS:---configs medium,long --repeats 5} \
  --impls "$IMPLS" --no-memory --json "$LOGS/bench.json"
# fusion pays most where launches dominate (small arrays); the first call compiles the kernels (NVRTC,
# then CuPy's disk cache), inside the benchmark's untimed warm-up
# shellcheck disable=SC2086
step bench-fusion 60 "$PY" bench/rnn_bench.py --backend cupy ${FUSION_ARGS:---configs small,medium --repeats 5} \
  --cells rnn,lstm,gru,mgu --impls compiled,compiled-nofast --no-memory --json "$LOGS/fusion.json"

"$PY" - "$LOGS" "$((SECONDS - START))" <<'SUMMARY'
import json, os, sys
logs, seconds = sys.argv[1], sys.argv[2]
steps = [line.split() for line in open(os.path.join(logs, "steps.txt"))]
failed = [name for name, rc, _ in steps if rc != "0"]
print(f"\n== gpu_check summary ({seconds} s) ==")
for name in ("pytest-gpu", "pytest-standin"):
    tail = open(os.path.join(logs, name + ".txt")).read().strip().splitlines()
    print(f"{name:16s} {tail[-1] if tail else '(no output)'}")
print(f"{'rnnrun':16s} {'kind':8s} {'numpy test metric':>18s} {'cupy test metric':>17s} {'numpy s':>8s} {'cupy s':>7s}")
for kind in ("seq2vec", "seq2seq", "vec2seq", "encdec", "text"):
    row = {}
    for where in ("numpy", "cupy"):
        try:
            row[where] = json.loads(open(os.path.join(logs, f"rnnrun-{kind}-{where}.txt")).read())
        except (OSError, ValueError):
            row[where] = {}
    cell = lambda w, k, f: f.format(row[w][k]) if row[w].get(k) is not None else "failed"  # noqa: E731
    print(f"{'':16s} {kind:8s} {cell('numpy', 'test_metric', '{:.4g}'):>18s} {cell('cupy', 'test_metric', '{:.4g}'):>17s}"
          f" {cell('numpy', 'seconds', '{:.1f}'):>8s} {cell('cupy', 'seconds', '{:.1f}'):>7s}")
try:
    results = json.load(open(os.path.join(logs, "bench.json")))["results"]
    print("bench (ms per training step; ratio to torch's cuDNN module)")
    for r in results:
        ratio = "" if r["ratio"] is None else f" ({r['ratio']:.2f}x)"
        print(f"{'':16s} {r['config']:7s} {r['cell']:5s} {r['impl']:11s} {r['ms']:9.2f}{ratio}")
except (OSError, ValueError, KeyError):
    print("bench            failed")
try:
    results = json.load(open(os.path.join(logs, "fusion.json")))["results"]
    ms = {(r["config"], r["cell"], r["impl"]): r["ms"] for r in results}
    print("fusion on CuPy (ms per training step; unfused / fused: above 1 means the kernels pay)")
    for config, cell in dict.fromkeys((r["config"], r["cell"]) for r in results):
        fused, plain = ms.get((config, cell, "compiled")), ms.get((config, cell, "compiled-nofast"))
        ratio = f"{plain / fused:.2f}x" if fused and plain else "?"
        print(f"{'':16s} {config:7s} {cell:5s} fused {fused or float('nan'):9.2f}  unfused "
              f"{plain or float('nan'):9.2f}  {ratio}")
except (OSError, ValueError, KeyError):
    print("bench-fusion     failed")
print("RESULT: " + ("all passed" if not failed else "FAILED: " + ", ".join(failed)))
sys.exit(1 if failed else 0)
SUMMARY
