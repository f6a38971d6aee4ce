"""Property-based tests (hypothesis): broadcasting and reductions hold for every shape, not just a few.

The expected gradients are computed independently of the engine's `unbroadcast`: each output entry
is traced back to the input entry that broadcasting copied into it (`np.broadcast_to` of the input's
flat indices), and the upstream gradient is added up per input entry with `np.bincount`.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from tinygrad_rnn import Tensor

FAST = settings(max_examples=40, deadline=None)

OPS = {
    # op, d(out)/da and d(out)/db as functions of the broadcast a and b
    "+": (lambda a, b: a + b, lambda a, b: np.ones_like(a), lambda a, b: np.ones_like(b)),
    "-": (lambda a, b: a - b, lambda a, b: np.ones_like(a), lambda a, b: -np.ones_like(b)),
    "*": (lambda a, b: a * b, lambda a, b: b, lambda a, b: a),
    "/": (lambda a, b: a / b, lambda a, b: 1 / b, lambda a, b: -a / (b * b)),
}


def gradient_by_tracing(shape, out_shape, local_grad):
    """Sum `local_grad` (of out_shape) into the input entries broadcasting copied it from."""
    source = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), out_shape)
    return np.bincount(source.ravel(), weights=local_grad.ravel(), minlength=int(np.prod(shape))).reshape(shape)


@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
       op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2 ** 16))
def test_binary_op_gradient_has_the_input_shape_and_sums_the_broadcast_gradient(shapes, op, seed):
    (shape_a, shape_b), out_shape = shapes.input_shapes, shapes.result_shape
    fn, da, db = OPS[op]
    rng = np.random.default_rng(seed)
    a_data = rng.uniform(-2, 2, shape_a)
    b_data = rng.uniform(0.5, 2, shape_b) * rng.choice([-1.0, 1.0], shape_b)  # a safe divisor
    a, b = Tensor(a_data, requires_grad=True), Tensor(b_data, requires_grad=True)

    out = fn(a, b)
    assert out.shape == out_shape
    np.testing.assert_allclose(out.numpy(), fn(a_data, b_data), rtol=1e-12)

    upstream = np.asarray(rng.standard_normal(out_shape))
    out.backward(upstream)
    a_wide, b_wide = np.broadcast_to(a_data, out_shape), np.broadcast_to(b_data, out_shape)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    np.testing.assert_allclose(a.grad, gradient_by_tracing(shape_a, out_shape, upstream * da(a_wide, b_wide)),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad, gradient_by_tracing(shape_b, out_shape, upstream * db(a_wide, b_wide)),
                               rtol=1e-10, atol=1e-12)


@st.composite
def shape_and_axes(draw):
    """A shape of 1 to 4 axes, and None or a non-empty subset of its axes, each written as i or i - ndim."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    if draw(st.booleans()):
        return shape, None
    axes = draw(st.lists(st.sampled_from(range(len(shape))), min_size=1, unique=True))
    axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)
    return shape, axes[0] if len(axes) == 1 and draw(st.booleans()) else axes


def _positive_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


@FAST
@given(shape_axes=shape_and_axes(), keepdims=st.booleans(), name=st.sampled_from(["sum", "mean", "max"]),
       seed=st.integers(0, 2 ** 16))
def test_reduction_matches_numpy_and_its_gradient_reaches_every_input_entry(shape_axes, keepdims, name, seed):
    shape, axis = shape_axes
    rng = np.random.default_rng(seed)
    data = rng.permutation(int(np.prod(shape))).reshape(shape) + rng.uniform(0, 0.5, shape)  # no ties
    x = Tensor(data, requires_grad=True)

    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, {"sum": "sum", "mean": "mean", "max": "amax"}[name])(data, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)

    upstream = np.asarray(rng.standard_normal(expected.shape))
    out.backward(upstream)
    assert x.grad.shape == shape
    axes = _positive_axes(axis, len(shape))
    kept = np.reshape(upstream, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    if name == "sum":
        np.testing.assert_allclose(x.grad, np.broadcast_to(kept, shape))
    elif name == "mean":
        count = int(np.prod([shape[i] for i in axes]))
        np.testing.assert_allclose(x.grad, np.broadcast_to(kept, shape) / count)
    else:  # all of the upstream gradient goes to the (single) maximum of each reduced group
        is_max = data == np.amax(data, axis=axes, keepdims=True)
        np.testing.assert_allclose(x.grad, np.where(is_max, kept, 0.0))


@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_float32_broadcasting_with_any_shapes_stays_float32(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes.input_shapes)
    out = (a * b + a - 2.0 * b) / (b * b + 1)
    out.sum().backward()
    assert out.dtype == np.float32 and a.grad.dtype == np.float32 and b.grad.dtype == np.float32


@pytest.mark.parametrize("shapes", [((2, 3), (3, 2)), ((4,), (3,)), ((2, 1, 3), (2, 4))], ids=str)
def test_shapes_that_do_not_broadcast_raise_naming_both_shapes(shapes):
    a, b = Tensor(np.zeros(shapes[0])), Tensor(np.zeros(shapes[1]))
    with pytest.raises(ValueError) as error:
        a + b
    assert str(shapes[0]).replace(" ", "") in str(error.value).replace(" ", "")
