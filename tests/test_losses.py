"""Losses against torch.nn.functional (values and gradients), masking, stability and gradchecks."""
import numpy as np
import pytest

from tinygrad_rnn import ShapeError, Tensor, gradcheck
from tinygrad_rnn.losses import bce_with_logits, cross_entropy, mae, mse


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _pair(torch, array):
    return Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def _assert_same(torch, ours, theirs, ours_inputs, theirs_inputs, tol=1e-10):
    assert ours.shape == ()
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=tol, atol=tol)
    ours.backward()
    theirs.backward()
    for a, b in zip(ours_inputs, theirs_inputs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=tol, atol=tol)


rng = np.random.default_rng(0)


@pytest.mark.parametrize("ours_fn, torch_name", [(mse, "mse_loss"), (mae, "l1_loss")])
def test_regression_losses_match_torch_for_both_inputs(torch, ours_fn, torch_name):
    pred, target = rng.standard_normal((4, 5, 2)), rng.standard_normal((4, 5, 2))
    (p, tp), (y, ty) = _pair(torch, pred), _pair(torch, target)
    _assert_same(torch, ours_fn(p, y), getattr(torch.nn.functional, torch_name)(tp, ty), [p, y], [tp, ty])


@pytest.mark.parametrize("ours_fn, torch_name", [(mse, "mse_loss"), (mae, "l1_loss")])
def test_masked_regression_loss_is_torchs_mean_over_the_real_steps(torch, ours_fn, torch_name):
    pred, target = rng.standard_normal((3, 6, 2)), rng.standard_normal((3, 6, 2))
    mask = (np.arange(6)[None, :] < np.array([6, 2, 4])[:, None]).astype(np.float64)  # (N, T)
    p, tp = _pair(torch, pred)
    ours = ours_fn(p, target, mask=mask[..., None])  # (N, T, 1) broadcasts over the features
    real = torch.from_numpy(mask.astype(bool))
    theirs = getattr(torch.nn.functional, torch_name)(tp[real], torch.tensor(target)[real])
    _assert_same(torch, ours, theirs, [p], [tp])


def test_cross_entropy_matches_torch_on_class_logits(torch):
    logits, target = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    p, tp = _pair(torch, logits)
    theirs = torch.nn.functional.cross_entropy(tp, torch.tensor(target))
    _assert_same(torch, cross_entropy(p, target), theirs, [p], [tp])


def test_cross_entropy_over_per_step_logits_averages_every_step(torch):
    logits, target = rng.standard_normal((3, 5, 4)), rng.integers(0, 4, (3, 5))
    p, tp = _pair(torch, logits)
    theirs = torch.nn.functional.cross_entropy(tp.reshape(-1, 4), torch.tensor(target).reshape(-1))
    _assert_same(torch, cross_entropy(p, Tensor(target)), theirs, [p], [tp])


def test_cross_entropy_ignore_index_matches_torch(torch):
    logits, target = rng.standard_normal((3, 5, 4)), rng.integers(0, 4, (3, 5))
    target[0, 1] = target[2, 3] = target[2, 4] = -100
    p, tp = _pair(torch, logits)
    theirs = torch.nn.functional.cross_entropy(tp.reshape(-1, 4), torch.tensor(target).reshape(-1), ignore_index=-100)
    _assert_same(torch, cross_entropy(p, target, ignore_index=-100), theirs, [p], [tp])


def test_cross_entropy_mask_counts_only_real_steps_like_ignore_index(torch):
    logits, target = rng.standard_normal((3, 5, 4)), rng.integers(0, 4, (3, 5))
    mask = (np.arange(5)[None, :] < np.array([5, 1, 3])[:, None]).astype(np.float32)
    p, tp = _pair(torch, logits)
    ignored = np.where(mask > 0, target, -100)
    theirs = torch.nn.functional.cross_entropy(tp.reshape(-1, 4), torch.tensor(ignored).reshape(-1), ignore_index=-100)
    _assert_same(torch, cross_entropy(p, target, mask=mask), theirs, [p], [tp])


def test_bce_with_logits_matches_torch_with_and_without_mask(torch):
    logits, target = 3 * rng.standard_normal((4, 3)), rng.uniform(0, 1, (4, 3))
    p, tp = _pair(torch, logits)
    _assert_same(torch, bce_with_logits(p, target),
                 torch.nn.functional.binary_cross_entropy_with_logits(tp, torch.tensor(target)), [p], [tp])
    mask = np.array([1, 0, 1, 1.0])[:, None]
    p, tp = _pair(torch, logits)
    real = torch.tensor([True, False, True, True])
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(tp[real], torch.tensor(target)[real])
    _assert_same(torch, bce_with_logits(p, target, mask=mask), theirs, [p], [tp])


def test_bce_with_logits_gradient_reaches_a_tensor_target(torch):
    logits, target = rng.standard_normal(5), rng.uniform(0, 1, 5)
    (p, tp), (y, ty) = _pair(torch, logits), _pair(torch, target)
    _assert_same(torch, bce_with_logits(p, y), torch.nn.functional.binary_cross_entropy_with_logits(tp, ty),
                 [p, y], [tp, ty])


def test_classification_losses_stay_finite_on_logits_of_plus_minus_1000(torch):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    p, tp = _pair(torch, logits)
    loss = cross_entropy(p, np.array([1, 2]))
    _assert_same(torch, loss, torch.nn.functional.cross_entropy(tp, torch.tensor([1, 2])), [p], [tp])
    assert np.isfinite(loss.item()) and np.isfinite(p.grad).all()
    p, tp = _pair(torch, logits)
    target = np.array([[0.0, 1, 1], [1, 0, 0.5]])
    loss = bce_with_logits(p, target)
    _assert_same(torch, loss, torch.nn.functional.binary_cross_entropy_with_logits(tp, torch.tensor(target)), [p], [tp])
    assert np.isfinite(loss.item()) and np.isfinite(p.grad).all()


def test_float32_outputs_give_float32_losses_whatever_the_target_dtype():
    pred = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    assert mse(pred, np.zeros((2, 3))).dtype == np.float32
    assert bce_with_logits(pred, np.zeros((2, 3))).dtype == np.float32
    assert cross_entropy(pred, np.array([0, 2]), mask=np.array([1.0, 1.0])).dtype == np.float32


def test_a_mask_with_nothing_counted_gives_zero_not_nan():
    pred = Tensor(np.ones((2, 3)), requires_grad=True)
    loss = mse(pred, np.zeros((2, 3)), mask=np.zeros((2, 3)))
    loss.backward()
    assert loss.item() == 0.0 and not pred.grad.any()


def test_cross_entropy_says_which_target_shape_and_classes_it_needs():
    logits = Tensor(np.zeros((2, 5, 3)))
    with pytest.raises(ShapeError, match=r"\(2, 5\)"):
        cross_entropy(logits, np.zeros((2, 3), np.int64))
    with pytest.raises(ShapeError, match=r"\[0, 3\)"):
        cross_entropy(logits, np.full((2, 5), 3))


@pytest.mark.parametrize("loss", [
    lambda x: mse(x, np.linspace(-1, 1, 6).reshape(2, 3), mask=np.array([[1.0], [0.0]])),
    lambda x: mae(x, np.linspace(-1, 1, 6).reshape(2, 3) + 0.05),
    lambda x: cross_entropy(x, np.array([2, 0]), mask=np.array([1.0, 1.0])),
    lambda x: cross_entropy(x, np.array([2, -1]), ignore_index=-1),
    lambda x: bce_with_logits(x, np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.8]])),
], ids=["mse-masked", "mae", "cross_entropy", "cross_entropy-ignore", "bce_with_logits"])
def test_loss_gradient_agrees_with_finite_differences(loss):
    x = Tensor(np.random.default_rng(3).standard_normal((2, 3)), requires_grad=True)
    result = gradcheck(loss, [x])
    assert result, str(result)
