"""Gradient clipping, weight initialisation and BatchNorm, against torch's definitions."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import ConfigError, ShapeError, Tensor, gradcheck
from tinygrad_rnn.nn import BatchNorm1d, BatchNormOverTime, clip_grad_norm, clip_grad_value, init


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# ---- clipping ----------------------------------------------------------------------------------------
def _params_with_grads(torch, scale, seed=0):
    rng = np.random.default_rng(seed)
    grads = [scale * rng.standard_normal(s) for s in [(3, 4), (5,)]]
    ours = [Tensor(np.zeros(g.shape), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, t, g in zip(ours, theirs, grads):
        p.grad, t.grad = g.copy(), torch.tensor(g)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
@pytest.mark.parametrize("scale", [10.0, 0.01], ids=["clipped", "under-threshold"])
def test_clip_grad_norm_matches_torch_norm_and_gradients(torch, norm_type, scale):
    ours, theirs = _params_with_grads(torch, scale)
    total = clip_grad_norm(ours, 1.0, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_matches_torch(torch):
    ours, theirs = _params_with_grads(torch, 2.0)
    clip_grad_value(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_clipping_skips_parameters_without_gradients_and_keeps_float32():
    with_grad = Tensor(np.zeros(4, np.float32), requires_grad=True)
    with_grad.grad = np.full(4, 3.0, np.float32)
    without = Tensor(np.zeros(4, np.float32), requires_grad=True)
    assert clip_grad_norm([with_grad, without], 1.0) == pytest.approx(6.0)
    clip_grad_value([with_grad, without], 0.1)
    assert without.grad is None and with_grad.grad.dtype == np.float32
    assert np.linalg.norm(with_grad.grad) <= 1.0


# ---- initialisation ----------------------------------------------------------------------------------
def _weight(*shape, dtype=np.float64):
    return Tensor(np.zeros(shape, dtype), requires_grad=True)


def test_xavier_uniform_stays_within_its_bound_with_the_right_variance():
    w = init.xavier_uniform(_weight(200, 300), gain=2.0)
    bound = 2.0 * math.sqrt(6.0 / 500)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    assert w.data.var() == pytest.approx(bound ** 2 / 3, rel=0.03)


def test_xavier_normal_has_std_gain_times_sqrt_2_over_fan_sum():
    w = init.xavier_normal(_weight(200, 300), gain=0.5)
    assert w.data.std() == pytest.approx(0.5 * math.sqrt(2.0 / 500), rel=0.03)
    assert abs(w.data.mean()) < 0.01


@pytest.mark.parametrize("mode, fan", [("fan_in", 300), ("fan_out", 200)])
def test_kaiming_draws_use_torchs_gain_and_chosen_fan(torch, mode, fan):
    gain = torch.nn.init.calculate_gain("leaky_relu", 0.2)
    w = init.kaiming_uniform(_weight(200, 300), a=0.2, mode=mode)
    bound = gain * math.sqrt(3.0 / fan)
    assert np.abs(w.data).max() <= bound and w.data.var() == pytest.approx(bound ** 2 / 3, rel=0.03)
    w = init.kaiming_normal(_weight(200, 300), mode=mode, nonlinearity="relu")
    assert w.data.std() == pytest.approx(math.sqrt(2.0 / fan), rel=0.03)


@pytest.mark.parametrize("shape", [(8, 8), (4, 10), (10, 4)], ids=["square", "wide", "tall"])
def test_orthogonal_gives_orthonormal_rows_or_columns_times_gain(shape):
    w = init.orthogonal(_weight(*shape), gain=1.5).data
    small = w @ w.T if shape[0] <= shape[1] else w.T @ w
    np.testing.assert_allclose(small, 1.5 ** 2 * np.eye(min(shape)), atol=1e-12)


def test_fans_and_gains_are_torchs(torch):
    for shape in [(5, 7), (6, 3, 4), (2, 3, 4, 5)]:
        assert init.fans(Tensor(np.zeros(shape))) == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
    for name, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.3), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_init_is_seeded_and_in_place_keeping_dtype():
    draws = []
    for _ in range(2):
        tg.manual_seed(7)
        w = _weight(3, 4, dtype=np.float32)
        array = w.data
        init.xavier_uniform(w)
        init.orthogonal(w)
        assert w.data is array and w.data.dtype == np.float32
        draws.append(w.numpy())
    np.testing.assert_array_equal(draws[0], draws[1])
    assert np.all(init.zeros(_weight(2, 2)).data == 0) and np.all(init.constant(_weight(2), 0.5).data == 0.5)


def test_init_errors_name_what_is_wrong():
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        init.xavier_uniform(_weight(5))
    with pytest.raises(ConfigError, match="valid"):
        init.calculate_gain("swish")
    with pytest.raises(ConfigError, match="fan_in"):
        init.kaiming_normal(_weight(2, 2), mode="fan_middle")


# ---- BatchNorm ---------------------------------------------------------------------------------------
def _bn_pair(torch, ours_cls, num_features, seed=0, **options):
    rng = np.random.default_rng(seed)
    ours = ours_cls(num_features, **options).to(dtype=np.float64)
    theirs = torch.nn.BatchNorm1d(num_features, **options).double()
    if options.get("affine", True):
        w, b = rng.uniform(0.5, 1.5, num_features), rng.standard_normal(num_features)
        ours.weight.data[...], ours.bias.data[...] = w, b
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
    return ours, theirs


def _compare_steps(torch, ours, theirs, shapes, to_torch_layout=lambda a: a, seed=1):
    """Several training steps (forward and backward) then one in eval: outputs, gradients, running stats."""
    rng = np.random.default_rng(seed)
    for step, shape in enumerate(shapes):
        training = step < len(shapes) - 1
        ours.train(training)
        theirs.train(training)
        x = 2.0 + 3.0 * rng.standard_normal(shape)
        upstream = rng.standard_normal(shape)
        xo, xt = Tensor(x.copy(), requires_grad=True), torch.tensor(to_torch_layout(x), requires_grad=True)
        yo, yt = ours(xo), theirs(xt)
        np.testing.assert_allclose(yo.numpy(), to_torch_layout(yt.detach().numpy()), atol=1e-10)
        (yo * Tensor(upstream)).sum().backward()
        (yt * torch.tensor(to_torch_layout(upstream))).sum().backward()
        np.testing.assert_allclose(xo.grad, to_torch_layout(xt.grad.numpy()), atol=1e-10)
        if ours.affine:
            np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), atol=1e-10)
            np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), atol=1e-10)
            ours.zero_grad()
            theirs.zero_grad()
        if ours.track_running_stats:
            np.testing.assert_allclose(ours.running_mean.data, theirs.running_mean.numpy(), atol=1e-12)
            np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), atol=1e-12)
            assert int(ours.num_batches_tracked.data) == int(theirs.num_batches_tracked)


@pytest.mark.parametrize("options", [{}, {"momentum": None}, {"affine": False, "momentum": 0.3},
                                     {"track_running_stats": False}],
                         ids=["defaults", "cumulative-average", "no-affine", "batch-stats-only"])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)], ids=["N,C", "N,C,L"])
def test_batchnorm1d_matches_torch_in_training_and_eval(torch, shape, options):
    ours, theirs = _bn_pair(torch, BatchNorm1d, 3, **options)
    _compare_steps(torch, ours, theirs, [shape] * 4)


def test_batchnorm_over_time_is_torch_batchnorm1d_on_the_transposed_sequence(torch):
    ours, theirs = _bn_pair(torch, BatchNormOverTime, 3, momentum=0.2)
    _compare_steps(torch, ours, theirs, [(4, 6, 3), (4, 5, 3), (2, 6, 3), (4, 6, 3)],
                   to_torch_layout=lambda a: a.swapaxes(1, 2))


def test_batchnorm_over_time_mask_leaves_padded_steps_out_of_the_statistics(torch):
    rng = np.random.default_rng(2)
    ours, theirs = _bn_pair(torch, BatchNormOverTime, 2)
    x = rng.standard_normal((3, 5, 2))
    lengths = np.array([5, 2, 3])
    mask = np.arange(5)[None, :] < lengths[:, None]
    x[~mask] = 100.0  # padding that would wreck the statistics if it were counted
    y = ours(Tensor(x), mask=mask.astype(np.float64))
    expected = theirs(torch.tensor(x[mask]))  # only the real steps, as an (M, C) batch
    np.testing.assert_allclose(y.numpy()[mask], expected.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), atol=1e-12)


def test_batchnorm_buffers_are_saved_but_not_trained():
    bn = BatchNormOverTime(4)
    assert {n for n, _ in bn.named_parameters()} == {"weight", "bias"}
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    bn(Tensor(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)))
    copy = BatchNormOverTime(4).load_state_dict(bn.state_dict())
    np.testing.assert_array_equal(copy.running_mean.data, bn.running_mean.data)
    assert int(copy.num_batches_tracked.data) == 1


def test_batchnorm_gradient_agrees_with_finite_differences():
    bn = BatchNormOverTime(2).to(dtype=np.float64)
    x = Tensor(np.random.default_rng(4).standard_normal((3, 2, 2)), requires_grad=True)
    result = gradcheck(lambda x, w, b: bn(x), [x, bn.weight, bn.bias])
    assert result, str(result)


def test_batchnorm_says_which_layout_it_needs():
    with pytest.raises(ShapeError, match="BatchNormOverTime"):
        BatchNorm1d(3)(Tensor(np.zeros((2, 5, 3))))
    with pytest.raises(ShapeError, match=r"\(N, T, 3\)"):
        BatchNormOverTime(3)(Tensor(np.zeros((2, 3, 5))))
    with pytest.raises(ShapeError, match="more than one value"):
        BatchNorm1d(3)(Tensor(np.zeros((1, 3))))
    with pytest.raises(ConfigError, match="num_features"):
        BatchNorm1d(0)
