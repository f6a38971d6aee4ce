"""Zoneout (plugins/regularisers/zoneout.py) and the step-mask rules it is built on (nn/step_masks.py):
random masks drawn outside the step and passed in as step inputs, so the compiled path runs them."""
import json
import os
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, gradcheck, registry
from tinygrad_rnn.nn import CompileWarning, Recurrent
from tinygrad_rnn.tape import TapeSequence

from helpers import rnnrun

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELLS = ["rnn", "lstm", "gru", "peephole", "mgu", "indrnn"]


pytestmark = pytest.mark.usefixtures("example_cells")  # mgu and indrnn (tests/conftest.py)


def zoneout(p=0.3, p_c=None):
    return registry.regularisers.get("zoneout")(p=p, p_c=p_c)


def layer(cell, path, layers=1, bidirectional=False, p=0.3, training=True, recurrent_dropout=0.0):
    tg.manual_seed(0)
    path = "auto" if path == "fused" else path  # the default: a fused kernel where the cell has one
    rnn = Recurrent(registry.cells.get(cell), 2, 3, num_layers=layers, bidirectional=bidirectional, path=path).to(dtype=np.float64)
    rnn.step_masks.append(_rule(p))
    rnn.recurrent_dropout = recurrent_dropout
    rnn.train(training)
    return rnn


def _rule(p, p_c=None):
    """The step-mask rule the zoneout regulariser adds to a layer."""
    z = zoneout(p, p_c)

    class Trainer:  # what on_model_built reads
        model = Recurrent(registry.cells.get("rnn"), 1, 1)
    Trainer.model.step_masks = []
    z.on_model_built(Trainer)
    return Trainer.model.step_masks[0]


def everything(rnn, x, lengths=None, seed=5):
    tg.manual_seed(seed)  # the same masks on every path and at every call
    out, final = rnn(x, lengths=lengths)
    return out, [s for state in final for s in state]


def run(cell, path, lengths=None, **options):
    rnn = layer(cell, path, **options)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)), requires_grad=True)
    out, states = everything(rnn, x, lengths)
    loss = (out * out).sum() + sum((s * s * 0.5).sum() for s in states)
    loss.backward()
    return [out.numpy()] + [s.numpy() for s in states] + [x.grad] + [p.grad for p in rnn.parameters()], out


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, bidirectional, lengths", [(1, False, None), (2, True, [5, 3, 1])])
def test_zoneout_compiled_equals_composed_in_float64(cell, layers, bidirectional, lengths):
    composed, _ = run(cell, "composed", layers=layers, bidirectional=bidirectional, lengths=lengths)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        compiled, out = run(cell, "fused", layers=layers, bidirectional=bidirectional, lengths=lengths)
    if not bidirectional:  # (two directions end in a Concatenate)
        assert isinstance(out._ctx, TapeSequence)  # every cell, built-in or plugin, runs its tape
    for a, b in zip(compiled, composed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("path", ["compiled", "composed"])
def test_zoneout_gradients_match_finite_differences(cell, path):
    rnn = layer(cell, path, layers=2, bidirectional=True)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 4, 2)), requires_grad=True)

    def flat(*_):
        out, states = everything(rnn, x, lengths=[4, 3, 1])
        return Tensor.concatenate([out.reshape(3, -1)] + [s.reshape(3, -1) for s in states], axis=1)
    assert gradcheck(flat, [x] + rnn.parameters())


def test_training_keeps_exactly_the_units_the_mask_picks_and_evaluation_mixes_in_p():
    p = 0.4
    rnn = layer("rnn", "fused", p=p)
    cell = rnn.cells[0]
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)))
    out, _ = everything(rnn, x, seed=9)
    tg.manual_seed(9)
    masks = (tg.random.generator().random((3, 5, 3)) < p).astype(np.float64)  # the draw zoneout makes
    h = np.zeros((3, 3))
    for t in range(5):
        computed = cell(x[:, t], (Tensor(h),))[0].numpy()
        h = masks[:, t] * h + (1 - masks[:, t]) * computed
        np.testing.assert_allclose(out.numpy()[:, t], h, rtol=1e-12)
    rnn.eval()
    out, _ = everything(rnn, x)
    h = np.zeros((3, 3))
    for t in range(5):
        h = p * h + (1 - p) * cell(x[:, t], (Tensor(h),))[0].numpy()
        np.testing.assert_allclose(out.numpy()[:, t], h, rtol=1e-12)


def test_an_lstm_zones_out_h_and_c_at_their_own_rates():
    rnn = layer("lstm", "fused")
    rnn.step_masks[:] = [_rule(0.0, 0.999999)]  # c almost always kept: it stays at its start, zero
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)))
    _, (h, c) = everything(rnn, x)
    assert np.abs(c.numpy()).max() == 0 and np.abs(h.numpy()).max() > 0


def test_zoneout_with_variational_dropout_compiled_equals_composed():
    composed, _ = run("gru", "composed", recurrent_dropout=0.3, lengths=[5, 4, 2])
    compiled, _ = run("gru", "fused", recurrent_dropout=0.3, lengths=[5, 4, 2])
    for a, b in zip(compiled, composed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_bad_rates_are_config_errors():
    with pytest.raises(tg.ConfigError, match=r"zoneout: p must be in \[0, 1\), got 1.5"):
        zoneout(1.5)
    with pytest.raises(tg.ConfigError, match="p_c"):
        zoneout(0.1, -0.1)


@pytest.mark.parametrize("cell", ["gru", "mgu"])
def test_rnnrun_with_zoneout_runs_compiled_without_a_compile_warning(cell, tmp_path):
    args = ["--cell", cell, "--data", "sine:n_train=40", "--hidden", "4", "--epochs", "2", "--reg", "zoneout:p=0.1",
            "--json", "--runs-dir", tmp_path]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        result = rnnrun(*args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "finished"


def test_step_masks_on_the_fused_path_say_it_cannot_take_them():
    rnn = Recurrent(registry.cells.get("gru"), 2, 3, path="fused")
    rnn.step_masks.append(_rule(0.1))
    with pytest.raises(tg.ConfigError, match="step masks .* need the compiled or composed path"):
        rnn(Tensor(np.zeros((2, 4, 2), np.float32)))
