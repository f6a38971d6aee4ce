"""Every registered cell (built-in or a user's), inside a 2-layer bidirectional `Recurrent` with uneven
lengths, passes a float64 finite-difference gradient check on all parameters and the input."""
import importlib.util

import numpy as np
import pytest

from tinygrad_rnn import Tensor, gradcheck, manual_seed
from tinygrad_rnn.nn import Recurrent
from tinygrad_rnn.registry import cells

N, T, D, H = 3, 4, 2, 3
LENGTHS = np.array([4, 1, 3])


def has_fused_path(cell_class):
    """The cell has a `sequence`, and for a built-in cell its `<name>_fused.py` op is installed."""
    if not hasattr(cell_class, "sequence"):
        return False
    module = cell_class.__module__
    return not module.startswith("tinygrad_rnn_plugins.") or importlib.util.find_spec(module + "_fused") is not None


def outputs_and_final_state(layer, x, lengths):
    """Everything the layer returns as one (N, K) tensor, so the check covers the final states too."""
    out, final = layer(x, lengths=lengths)
    return Tensor.concatenate([out.reshape(x.shape[0], -1)] + [s for state in final for s in state], axis=1)


def check(layer, x, lengths):
    inputs = layer.parameters() + [x]
    result = gradcheck(lambda *_: outputs_and_final_state(layer, x, lengths), inputs)
    assert result, str(result)


@pytest.mark.parametrize("path", ["composed", "fused"])
@pytest.mark.parametrize("name", cells.names())
def test_cell_gradients_match_finite_differences(name, path):
    if path == "fused" and not has_fused_path(cells.get(name)):
        pytest.skip(f"cell {name!r} has no fused sequence op")
    manual_seed(0)
    layer = Recurrent(cells.get(name), D, H, num_layers=2, bidirectional=True, path=path).to(dtype=np.float64)
    x = Tensor(np.random.default_rng(0).standard_normal((N, T, D)), requires_grad=True)
    check(layer, x, LENGTHS)


@pytest.mark.parametrize("nonlinearity", ["relu", "leaky_relu", "elu"])
def test_rnn_nonlinearities_have_correct_gradients(nonlinearity):
    manual_seed(1)
    layer = Recurrent(cells.get("rnn"), D, H, nonlinearity=nonlinearity, path="composed").to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((N, T, D)), requires_grad=True)
    check(layer, x, LENGTHS)


def test_carried_state_receives_gradients():
    """A state passed in (as decoders and stateful training do) is part of the graph."""
    manual_seed(2)
    layer = Recurrent(cells.get("lstm"), D, H, path="composed").to(dtype=np.float64)
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((N, T, D)))
    h0, c0 = (Tensor(rng.standard_normal((N, H)), requires_grad=True) for _ in range(2))
    result = gradcheck(lambda h, c: layer(x, lengths=LENGTHS, state=[(h, c)])[0], [h0, c0])
    assert result, str(result)


@pytest.mark.parametrize("path", ["fused", "composed"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "peephole", "gru"])
def test_every_built_in_cell_stays_finite_at_extreme_inputs(cell, path):
    from tinygrad_rnn.gradcheck import check_extremes
    rnn = Recurrent(cells.get(cell), 2, 3, path=path)
    x = Tensor(np.zeros((2, 4, 2), np.float32), requires_grad=True)
    params = [p for _, p in rnn.named_parameters()]
    result = check_extremes(lambda x, *_: rnn(x)[0], [x] + params, vary=[0])  # float32, as in training
    assert result, str(result)
