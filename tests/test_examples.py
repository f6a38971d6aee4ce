"""The plugin examples in examples/ work with --plugin as shipped, and do what their docstrings say."""
import json
import os

import numpy as np

from tinygrad_rnn import Tensor, load_plugin, registry
from tinygrad_rnn.runner import lessons

from helpers import rnnrun

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
INDRNN = os.path.join(EXAMPLES, "indrnn_cell.py")
SQUARE = os.path.join(EXAMPLES, "noisy_square_dataset.py")


def test_indrnn_trains_with_plugin_as_shipped(tmp_path, fresh_registry):
    result = rnnrun("--plugin", INDRNN, "--cell", "indrnn", "--data", "sine", "--epochs", "2", "--json",
                    "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["cell"] == "indrnn" and doc["status"] == "finished" and doc["epochs"] == 2


def test_indrnn_step_is_its_equation(fresh_registry):
    load_plugin(INDRNN)
    cell = registry.cells.get("indrnn")(2, 3)
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((4, 2)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    out, (state,) = cell(Tensor(x), (Tensor(h),))
    W, b, u = cell.weight_ih.numpy(), cell.bias_ih.numpy(), cell.weight_hh.numpy()
    np.testing.assert_allclose(out.numpy(), np.maximum(x @ W.T + b + u * h, 0), rtol=1e-6)
    assert out is state
    assert u.shape == (3,) and (u >= 0).all() and (u <= 1).all()


def test_indrnn_backward_agrees_with_finite_differences(fresh_registry):
    load_plugin(INDRNN)
    check = lessons.check_cell("indrnn", layers=2, bidirectional=True, hidden=3, steps=4)
    assert check.ok, [r for r in check.rows if not r.ok]


def test_indrnn_rejects_a_bad_option(tmp_path, fresh_registry):
    result = rnnrun("--plugin", INDRNN, "--cell", "indrnn:recurrent_init=5", "--data", "sine", "--runs-dir",
                    str(tmp_path))
    assert result.exit_code == 2 and "recurrent_init" in result.stderr


def test_noisy_square_is_seeded_balanced_and_square_where_it_says(fresh_registry):
    load_plugin(SQUARE)
    cls = registry.datasets.get("noisy_square")
    clean = cls(seed=1, noise=0.0).splits()["train"]
    assert clean.x.shape == (600, 30, 1) and clean.x.dtype == np.float32 and clean.y.dtype == np.int64
    assert 0.4 < clean.y.mean() < 0.6
    assert set(np.unique(clean.x[clean.y == 1])) <= {-1.0, 0.0, 1.0}
    assert np.abs(clean.x[clean.y == 0]).max() <= 1.0
    again = cls(seed=1, noise=0.5).splits()["test"].x
    assert np.array_equal(again, cls(seed=1, noise=0.5).splits()["test"].x)


def test_noisy_square_trains_and_beats_its_baseline(tmp_path, fresh_registry):
    result = rnnrun("--plugin", SQUARE, "--cell", "gru", "--data", "noisy_square:noise=0.3", "--epochs", "4",
                    "--json", "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["metric"] == "accuracy" and doc["test_metric"] > doc["baseline"]
