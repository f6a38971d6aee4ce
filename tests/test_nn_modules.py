"""nn.Module and the feed-forward layers behave as their PyTorch namesakes."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.errors import ConfigError


class Net(nn.Module):
    def __init__(self):
        self.body = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
        self.heads = [nn.Linear(2, 1), nn.Linear(2, 1)]
        self.scale = tg.Tensor(np.ones(1, np.float32))  # a buffer: saved, not trained

    def forward(self, x):
        h = self.body(x)
        return self.heads[0](h) + self.heads[1](h) * self.scale


def test_parameters_are_found_in_attributes_submodules_and_lists():
    names = [n for n, _ in Net().named_parameters()]
    assert names == ["body.layers.0.weight", "body.layers.0.bias", "body.layers.2.weight", "body.layers.2.bias",
                     "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]
    assert Net().num_parameters() == 3 * 4 + 4 + 4 * 2 + 2 + 2 * 3


def test_state_dict_round_trips_parameters_and_buffers():
    tg.manual_seed(0)
    a = Net()
    a.scale.data[:] = 3.0
    tg.manual_seed(1)
    b = Net()
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == set(b.state_dict()) and "scale" in a.state_dict()
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])


def test_load_state_dict_names_missing_unexpected_and_misshaped_entries():
    state = Net().state_dict()
    with pytest.raises(ConfigError, match="missing"):
        Net().load_state_dict({k: v for k, v in state.items() if k != "scale"})
    with pytest.raises(ConfigError, match="has shape"):
        Net().load_state_dict({**state, "scale": np.ones(2)})


def test_train_and_eval_switch_every_submodule_and_dropout_follows():
    net = Net().eval()
    assert not any(m.training for m in net.modules())
    x = tg.Tensor(np.ones((5, 3), np.float32))
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())  # no dropout in eval
    net.train()
    assert all(m.training for m in net.modules())


def test_dropout_zeroes_about_p_and_scales_the_rest():
    tg.manual_seed(0)
    out = nn.Dropout(0.25)(tg.Tensor(np.ones((200, 200), np.float32))).numpy()
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.01
    with pytest.raises(ConfigError):
        nn.Dropout(1.0)


def test_zero_grad_clears_every_parameters_gradient():
    net = Net()
    net(tg.Tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_linear_and_embedding_match_torch():
    torch = pytest.importorskip("torch")
    linear = nn.Linear(3, 2).to(dtype=np.float64)
    reference = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(linear.weight.numpy()))
        reference.bias.copy_(torch.from_numpy(linear.bias.numpy()))
    x = np.random.default_rng(0).standard_normal((4, 5, 3))
    out, expected = linear(tg.Tensor(x)), reference(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(linear.weight.grad, reference.weight.grad.numpy(), rtol=1e-12)

    table = nn.Embedding(6, 3).to(dtype=np.float64)
    ref_table = torch.nn.Embedding(6, 3).double()
    with torch.no_grad():
        ref_table.weight.copy_(torch.from_numpy(table.weight.numpy()))
    ids = np.array([[1, 1, 5], [0, 1, 2]])  # repeated ids must add their gradients
    table(ids).sum().backward()
    ref_table(torch.from_numpy(ids)).sum().backward()
    np.testing.assert_allclose(table.weight.grad, ref_table.weight.grad.numpy())


def test_linear_names_the_expected_input_size():
    with pytest.raises(tg.ShapeError, match="last axis must be 3"):
        nn.Linear(3, 2)(tg.Tensor(np.ones((2, 4), np.float32)))


def test_module_to_float64_converts_parameters_and_buffers():
    net = Net().to(dtype=np.float64)
    assert all(t.dtype == np.float64 for _, t in net.named_tensors())
