"""`rnnrun --backend cupy`, in process, on the CuPy stand-in: a complete run of each task kind, then
the commands that reload a run (forecast, predict, resume, sample) — the same numbers as `--backend numpy`."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_rnn.runner.cli import cli

AIRLINE = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "datasets", "data",
                       "airline_passengers_1949_1960.csv")
SMALL = ["--hidden", "4", "--epochs", "2", "--batch-size", "16", "--seed", "3"]
# One run per task kind. A new kind is one line here.
RUNS = {
    "seq2vec": ["--cell", "gru", "--data", "sine:n_train=48,T=8", "--reg", "clip:0.5"],
    "seq2seq": ["--cell", "lstm", "--data", "tagging:n_train=48,T=6", "--bidirectional", "--layers", "2"],
    "vec2seq": ["--cell", "rnn", "--data", "captions:n_train=48"],
    "encdec": ["--cell", "peephole", "--data", "addition:n_train=48,digits=1", "--composed"],
    "text": ["--cell", "lstm", "--data", "text:chars=3000,T=12,streams=4", "--reg", "tbptt:k=5"],
    "seq2vec airline": ["--cell", "lstm", "--data", "airline"],
    "seq2seq compiled": ["--cell", "gru", "--data", "tagging:n_train=48,T=6", "--compiled", "--layers", "2",
                         "--reg", "dropout:p=0.2,variational=true"],
}
# Commands that reload a finished run, after the run of the named kind. A new command is one line here.
FOLLOW_UPS = {
    "forecast": ("seq2vec", ["forecast", "last", "--steps", "6", "--json"]),
    "predict": ("seq2vec airline", ["predict", "last", "--input", AIRLINE, "--steps", "3", "--json"]),
    "resume": ("seq2vec", ["resume", "last", "--epochs", "3", "--json"]),
    "sample": ("text", ["sample", "last", "--length", "30", "--temperature", "0.8", "--seed", "1"]),
}
COMPARED = ("train_loss", "val_loss", "val_metric", "test_loss", "test_metric", "grad_norm_mean", "grad_norm_max",
            "clip_rate")


def rnnrun(args, runs_dir):
    result = CliRunner().invoke(cli, list(args) + ["--runs-dir", str(runs_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def train(kind, where, runs_dir):
    return json.loads(rnnrun(RUNS[kind] + SMALL + ["--json", "--backend", where], runs_dir))


# host reads a run may make: per epoch its figures, the validation outputs and loss, the best weights
# and a checkpoint (model and optimiser); at the end the test split, the saved weights, a forecast;
# and, on the compiled path, tracing a cell (tinygrad_rnn/tape.py) compares a few values once per cell and batch
# size, and making its fused kernels (tinygrad_rnn/fusion_cupy.py) reads each constant they bake in once
SYNCS_PER_EPOCH, SYNCS_AT_THE_END, SYNCS_TRACING = 6, 6, 12


@pytest.mark.parametrize("kind", RUNS)
def test_a_complete_run_on_the_device_equals_numpy(cupy, tmp_path, kind):
    want = train(kind, "numpy", tmp_path / "numpy")
    with cupy.SYNCS.counting() as syncs:
        got = train(kind, "cupy", tmp_path / "cupy")
    tracing = [s for s in syncs if "tape.py" in s or "fusion_cupy.py" in s]
    assert len(syncs) - len(tracing) <= SYNCS_PER_EPOCH * got["epochs"] + SYNCS_AT_THE_END, cupy.SYNCS.summary(syncs)
    assert len(tracing) <= SYNCS_TRACING, cupy.SYNCS.summary(tracing)
    assert got["status"] == want["status"] == "finished"
    for key in COMPARED:
        if want.get(key) is not None:
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
    if want.get("forecast"):
        np.testing.assert_allclose(got["forecast"]["prediction"], want["forecast"]["prediction"], rtol=1e-4)


@pytest.mark.parametrize("command", FOLLOW_UPS)
def test_a_command_reloading_a_device_run_equals_numpy(cupy, tmp_path, command):
    kind, args = FOLLOW_UPS[command]
    outputs = {}
    for where in ("numpy", "cupy"):
        train(kind, where, tmp_path / where)
        outputs[where] = rnnrun(args, tmp_path / where)
    if "--json" in args:
        assert_same_document(json.loads(outputs["cupy"]), json.loads(outputs["numpy"]))
    else:
        assert outputs["cupy"] == outputs["numpy"]


def assert_same_document(got, want, path="document"):
    """The same JSON structure, numbers equal up to float32 rounding; a run's id, folder and timing may differ."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            if key not in ("run", "run_id", "run_dir", "seconds"):
                assert_same_document(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_document(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-6), path
    else:
        assert got == want, path
