#!/usr/bin/env bash
# bench/gpu_check.sh on a CPU, to check the script itself before a GPU is at hand: the tests' CuPy
# stand-in (tests/cupy_standin/) is imported as `cupy` through a sitecustomize, `nvidia-smi` is a stub,
# and the benchmark runs at its --quick sizes. Its figures say nothing about a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
FAKE=$(mktemp -d -t gpu_dry_run.XXXX)
cat >"$FAKE/sitecustomize.py" <<PY
import sys
sys.path.insert(0, "$PWD/tests")
from cupy_standin import standin
sys.modules["cupy"] = standin
PY
printf '#!/bin/sh\necho "GPU 0: none (dry run on the CuPy stand-in)"\n' >"$FAKE/nvidia-smi"
chmod +x "$FAKE/nvidia-smi"
PATH="$FAKE:$PATH" PYTHONPATH="$FAKE${PYTHONPATH:+:$PYTHONPATH}" BENCH_ARGS=--quick FUSION_ARGS=--quick exec bash bench/gpu_check.sh
