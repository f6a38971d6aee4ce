"""The rnn, lstm and gru cells equal torch.nn.RNN / LSTM / GRU: outputs, final states and every gradient,
with weights copied by `from_torch`, for 1 and 2 layers, one or two directions, with and without padding."""
import numpy as np
import pytest

from tinygrad_rnn import ConfigError, Tensor, manual_seed
from tinygrad_rnn.interop import from_torch, to_torch
from tinygrad_rnn.nn import Recurrent
from tinygrad_rnn.registry import cells

torch = pytest.importorskip("torch")

N, T, D, H = 4, 5, 3, 4
LENGTHS = np.array([5, 2, 4, 1])
TOL = 1e-6
MODULES = {
    "rnn_tanh": lambda **kw: torch.nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: torch.nn.RNN(nonlinearity="relu", **kw),
    "lstm": lambda **kw: torch.nn.LSTM(**kw),
    "gru": lambda **kw: torch.nn.GRU(**kw),
}


def torch_module(kind, num_layers, bidirectional, batch_first=True):
    torch.manual_seed(0)
    return MODULES[kind](input_size=D, hidden_size=H, num_layers=num_layers, bidirectional=bidirectional,
                         batch_first=batch_first).double()


def run_torch(module, x, lengths):
    """(padded outputs, final states as a tuple) for x (N, T, D), packing when lengths are given."""
    if lengths is None:
        out, final = module(x)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True,
                                                         enforce_sorted=False)
        out, final = module(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, final if isinstance(final, tuple) else (final,)


def run_ours(layer, x, lengths):
    """The same shapes as torch's: final states stacked to (layers * directions, N, H), h then c."""
    out, final = layer(x, lengths=lengths)
    return out, tuple(Tensor.stack([state[k] for state in final]) for k in range(len(final[0])))


def weighted_sum(out, final, weights):
    """A scalar that depends on every output and final-state entry with a fixed random weight."""
    total = (out * weights[0]).sum()
    for s, w in zip(final, weights[1:]):
        total = total + (s * w).sum()
    return total


def torch_name(index, num_directions, name):
    layer, direction = divmod(index, num_directions)
    return f"{name}_l{layer}" + ("_reverse" if direction else "")


@pytest.mark.parametrize("path", ["composed", "fused"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", list(MODULES))
def test_outputs_states_and_gradients_equal_pytorch(kind, num_layers, bidirectional, padded, path):
    module = torch_module(kind, num_layers, bidirectional)
    layer = from_torch(module)
    layer.path = path
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((N, T, D))
    lengths = LENGTHS if padded else None

    x_torch = torch.tensor(x_np, requires_grad=True)
    out_t, final_t = run_torch(module, x_torch, lengths)
    weights = [rng.uniform(0.5, 1.5, out_t.shape)] + [rng.uniform(0.5, 1.5, s.shape) for s in final_t]
    weighted_sum(out_t, final_t, [torch.tensor(w) for w in weights]).backward()

    x = Tensor(x_np, requires_grad=True)
    out, final = run_ours(layer, x, lengths)
    weighted_sum(out, final, [Tensor(w) for w in weights]).backward()

    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), atol=TOL)
    if padded:
        assert np.all(out.numpy()[np.arange(T)[None, :] >= LENGTHS[:, None]] == 0)
    for ours, theirs in zip(final, final_t):
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), atol=TOL)
    np.testing.assert_allclose(x.grad, x_torch.grad.numpy(), atol=TOL)
    for index, cell in enumerate(layer.cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            expected = getattr(module, torch_name(index, layer.num_directions, name)).grad.numpy()
            np.testing.assert_allclose(getattr(cell, name).grad, expected, atol=TOL, err_msg=f"cells.{index}.{name}")


def test_from_torch_accepts_time_major_modules():
    module = torch_module("lstm", 2, True, batch_first=False)
    layer = from_torch(module)
    x = np.random.default_rng(1).standard_normal((T, N, D))
    expected, _ = module(torch.tensor(x))
    out, _ = layer(Tensor(x.transpose(1, 0, 2).copy()))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy().transpose(1, 0, 2), atol=TOL)


def test_from_torch_keeps_float32_weights_float32():
    layer = from_torch(torch.nn.GRU(D, H))
    assert all(p.dtype == np.float32 for p in layer.parameters())


@pytest.mark.parametrize("cell, options", [("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})])
def test_to_torch_round_trip_keeps_weights_and_outputs(cell, options):
    manual_seed(3)
    layer = Recurrent(cells.get(cell), D, H, num_layers=2, bidirectional=True, **options).to(dtype=np.float64)
    module = to_torch(layer)
    assert module.batch_first and module.num_layers == 2 and module.bidirectional
    x = np.random.default_rng(3).standard_normal((N, T, D))
    expected, _ = module(torch.tensor(x))
    np.testing.assert_allclose(layer(Tensor(x))[0].numpy(), expected.detach().numpy(), atol=TOL)
    back = from_torch(module)
    for (name, ours), (_, again) in zip(layer.state_dict().items(), back.state_dict().items()):
        np.testing.assert_array_equal(ours, again, err_msg=name)


@pytest.mark.parametrize("cell, options", [("peephole", {}), ("gru", {"variant": "cho"}),
                                           ("rnn", {"nonlinearity": "elu"})])
def test_to_torch_refuses_cells_torch_does_not_have(cell, options):
    with pytest.raises(ConfigError, match="torch"):
        to_torch(Recurrent(cells.get(cell), D, H, **options))


def test_from_torch_refuses_what_has_no_equal():
    with pytest.raises(ConfigError, match="proj_size"):
        from_torch(torch.nn.LSTM(D, H, proj_size=2))
    with pytest.raises(ConfigError, match="bias=True"):
        from_torch(torch.nn.GRU(D, H, bias=False))
