"""Every op against PyTorch: the same function on the same random inputs, outputs and gradients compared.

This is early tinygrad's test: `helper_test_op` runs a function through tinygrad_rnn and through torch,
checks that the outputs agree (values, shape and dtype) and then that every input's gradient agrees
for a random upstream gradient (random, so that every output entry counts). Tolerance: 1e-5 in
float64, 1e-4 in float32.
"""
import numpy as np
import pytest

from tinygrad_rnn import ShapeError, Tensor

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-5}
DTYPES = [np.float32, np.float64]


def helper_test_op(shapes, torch_fn, tiny_fn=None, dtype=np.float64, low=-2.0, high=2.0, data=None, seed=0):
    """Run `tiny_fn` (default: `torch_fn`, when the same expression works for both) on Tensors and
    `torch_fn` on torch tensors holding the same numbers; compare outputs and every input's gradient.
    `data` (a list of arrays) replaces the random inputs drawn uniformly from [low, high)."""
    tiny_fn = tiny_fn or torch_fn
    rng = np.random.default_rng(seed)
    arrays = data if data is not None else [rng.uniform(low, high, shape).astype(dtype) for shape in shapes]
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    tiny_inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]

    out, expected = tiny_fn(*tiny_inputs), torch_fn(*torch_inputs)
    tol = TOLERANCE[dtype]
    assert out.shape == tuple(expected.shape)
    assert str(out.dtype) == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), atol=tol, rtol=tol, err_msg="forward")

    upstream = np.asarray(rng.standard_normal(expected.shape)).astype(out.dtype)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for i, (t, tt) in enumerate(zip(tiny_inputs, torch_inputs)):
        assert t.grad is not None, f"input {i} got no gradient"
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype, f"input {i}"
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), atol=tol, rtol=tol, err_msg=f"gradient of input {i}")


# ---- binary ops, with broadcasting ----------------------------------------------------------------
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)),
                    ((), (2, 3)), ((2, 3), ()), ((2, 1, 3), (1, 4, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b],
                         ids=["add", "sub", "mul"])
def test_add_sub_mul_match_torch_with_broadcasting(op, shapes, dtype):
    helper_test_op(shapes, op, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
def test_div_matches_torch_with_broadcasting(shapes, dtype):
    rng = np.random.default_rng(1)
    a = rng.uniform(-2, 2, shapes[0])
    b = rng.uniform(0.5, 2, shapes[1]) * rng.choice([-1, 1], shapes[1])  # away from zero
    helper_test_op(None, lambda x, y: x / y, dtype=dtype, data=[a, b])


def test_the_same_tensor_on_both_sides_gets_both_gradients():
    helper_test_op([(3,)], lambda x: x * x + x / (x * x + 1))


MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_matches_torch_with_batch_broadcasting_and_vectors(shapes, dtype):
    helper_test_op(shapes, lambda a, b: a @ b, dtype=dtype)


# ---- reflected operators and powers ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [lambda x: 2 * x, lambda x: 3 + x, lambda x: 1 - x, lambda x: 2 / x,
                                lambda x: 2 ** x, lambda x: -x, lambda x: x * 2.0 - 1.5, lambda x: x / 4],
                         ids=["2*x", "3+x", "1-x", "2/x", "2**x", "-x", "x*2.0-1.5", "x/4"])
def test_reflected_operators_and_python_scalars_match_torch(fn, dtype):
    helper_test_op([(2, 3)], fn, dtype=dtype, low=0.5, high=2.0)  # positive: 2 / x stays finite


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, -1.5, 2.5, -0.25])
def test_pow_with_negative_and_fractional_exponents_on_positive_data_matches_torch(exponent, dtype):
    helper_test_op([(2, 3)], lambda x: x ** exponent, dtype=dtype, low=0.5, high=2.0)


@pytest.mark.parametrize("exponent", [2, 3])
def test_pow_with_integer_exponent_on_negative_data_matches_torch(exponent):
    helper_test_op([(2, 3)], lambda x: x ** exponent, low=-2.0, high=-0.5)


def test_pow_with_a_tensor_exponent_matches_torch():
    helper_test_op([(2, 3), (2, 3)], lambda x, p: x ** p, low=0.5, high=2.0)


# ---- unary ops ------------------------------------------------------------------------------------
UNARY = {
    "exp": (lambda x: x.exp(), None, -2.0, 2.0),
    "log": (lambda x: x.log(), None, 0.1, 3.0),
    "sqrt": (lambda x: x.sqrt(), None, 0.1, 3.0),
    "tanh": (lambda x: x.tanh(), None, -3.0, 3.0),
    "sigmoid": (lambda x: x.sigmoid(), None, -6.0, 6.0),
    "relu": (lambda x: x.relu(), None, -2.0, 2.0),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.01), lambda x: x.leaky_relu(), -2.0, 2.0),
    "leaky_relu(0.2)": (lambda x: F.leaky_relu(x, 0.2), lambda x: x.leaky_relu(0.2), -2.0, 2.0),
    "elu": (lambda x: F.elu(x), lambda x: x.elu(), -3.0, 3.0),
    "elu(0.5)": (lambda x: F.elu(x, alpha=0.5), lambda x: x.elu(alpha=0.5), -3.0, 3.0),
    "abs": (lambda x: x.abs(), None, -2.0, 2.0),
    "clip": (lambda x: x.clamp(-0.5, 1.0), lambda x: x.clip(-0.5, 1.0), -2.0, 2.0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_op_matches_torch(name, dtype):
    torch_fn, tiny_fn, low, high = UNARY[name]
    helper_test_op([(3, 4)], torch_fn, tiny_fn, dtype=dtype, low=low, high=high)


def test_clip_passes_the_gradient_at_the_boundary_like_torch_clamp():
    data = [np.array([-1.0, -0.5, 0.0, 1.0, 1.5])]
    helper_test_op(None, lambda x: x.clamp(-0.5, 1.0), lambda x: x.clip(-0.5, 1.0), data=data)


def test_clip_with_one_bound_matches_torch():
    helper_test_op([(3, 4)], lambda x: x.clamp(min=0.0), lambda x: x.clip(0.0))
    helper_test_op([(3, 4)], lambda x: x.clamp(max=0.5), lambda x: x.clip(hi=0.5))


def test_kinks_at_zero_take_torchs_one_sided_gradient():
    data = [np.array([-1.0, 0.0, 1.0])]
    helper_test_op(None, lambda x: x.relu(), data=data)
    helper_test_op(None, lambda x: x.abs(), data=data)
    helper_test_op(None, lambda x: F.leaky_relu(x, 0.1), lambda x: x.leaky_relu(0.1), data=data)
    helper_test_op(None, lambda x: F.elu(x, 0.7), lambda x: x.elu(0.7), data=data)


# ---- reductions -----------------------------------------------------------------------------------
AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


def _torch_reduce(name, axis, keepdims):
    def fn(x):
        if axis is None:
            out = getattr(x, name)() if name != "max" else x.amax()
            return out.reshape((1,) * x.ndim) if keepdims else out
        op = torch.amax if name == "max" else getattr(torch, name)
        return op(x, dim=axis, keepdim=keepdims)
    return fn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reduction_matches_torch_for_every_axis_and_keepdims(name, axis, keepdims, dtype):
    helper_test_op([(2, 3, 4)], _torch_reduce(name, axis, keepdims),
                   lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), dtype=dtype)


@pytest.mark.parametrize("axis", [None, 0, 1], ids=str)
def test_max_shares_the_gradient_equally_among_ties_like_torch_amax(axis):
    # Our max is torch.amax (ties share the gradient), not torch.max (which picks one entry).
    data = [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [3.0, 0.0, 3.0]])]
    helper_test_op(None, _torch_reduce("max", axis, False), lambda x: x.max(axis=axis), data=data)


# ---- softmax --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax_match_torch_on_every_axis(name, axis, dtype):
    helper_test_op([(2, 3, 4)], lambda x: getattr(torch, name)(x, dim=axis),
                   lambda x: getattr(x, name)(axis=axis), dtype=dtype, low=-3.0, high=3.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax_are_stable_on_large_logits(name, dtype):
    logits = np.random.default_rng(2).uniform(-1000, 1000, (3, 5))
    logits[0] += 5000.0  # exp would overflow without subtracting the maximum first
    helper_test_op(None, lambda x: getattr(torch, name)(x, dim=-1), lambda x: getattr(x, name)(),
                   dtype=dtype, data=[logits])
    assert np.isfinite(getattr(Tensor(logits.astype(dtype)), name)().numpy()).all()


# ---- shape ops ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [lambda x: x.reshape(4, 6), lambda x: x.reshape((6, -1)), lambda x: x.reshape(-1),
                                lambda x: x.reshape(2, 1, 3, 4)], ids=["(4,6)", "(6,-1)", "(-1)", "(2,1,3,4)"])
def test_reshape_matches_torch(fn, dtype):
    helper_test_op([(2, 3, 4)], fn, dtype=dtype)


@pytest.mark.parametrize("axes", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (0, -1, 1), (-1, -3, -2)], ids=str)
def test_transpose_with_any_axes_matches_torch_permute(axes):
    helper_test_op([(2, 3, 4)], lambda x: x.permute(*axes), lambda x: x.transpose(*axes))


def test_transpose_without_axes_and_dot_T_reverse_the_axes():
    helper_test_op([(2, 3, 4)], lambda x: x.permute(2, 1, 0), lambda x: x.transpose())
    helper_test_op([(3, 4)], lambda x: x.T)


GETITEM = {
    "int": lambda x: x[1],
    "negative int": lambda x: x[-1, 2],
    "slice": lambda x: x[1:3, ::2],
    "ellipsis": lambda x: x[..., 1],
    "newaxis": lambda x: x[None, 1:],
    "int array": lambda x: x[[2, 0]],
    "repeated int array": lambda x: x[[0, 0, 2, 0]],
    "repeated ints on axis 1": lambda x: x[:, [3, 1, 3]],
    "paired int arrays with repeats": lambda x: x[[0, 1, 0], [2, 2, 2]],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", GETITEM)
def test_getitem_matches_torch_including_repeated_indices(name, dtype):
    helper_test_op([(3, 4)], GETITEM[name], dtype=dtype)


def test_getitem_with_an_integer_numpy_array_or_tensor_accumulates_repeated_entries():
    index = np.array([1, 1, 1, 2])
    helper_test_op([(4, 2)], lambda x: x[torch.from_numpy(index)], lambda x: x[index])
    helper_test_op([(4, 2)], lambda x: x[torch.from_numpy(index)], lambda x: x[Tensor(index)])
    helper_test_op([(2, 3)], lambda x: x[:, torch.from_numpy(index)], lambda x: x[:, Tensor(index)])


def test_getitem_with_a_reversed_slice_matches_torch_flip():
    helper_test_op([(3, 4)], lambda x: x.flip(0), lambda x: x[::-1])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_matches_torch_cat(axis):
    helper_test_op([(2, 3, 2), (2, 3, 2), (2, 3, 2)], lambda *ts: torch.cat(ts, dim=axis),
                   lambda *ts: Tensor.concatenate(ts, axis=axis))


def test_concatenate_pieces_of_different_lengths_matches_torch_cat():
    helper_test_op([(1, 3), (4, 3), (2, 3)], lambda *ts: torch.cat(ts), lambda *ts: Tensor.concatenate(ts))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_chunk_matches_torch_chunk(axis):
    def weighted(parts):  # each part weighted differently, so a mixed-up gradient shows
        return parts[0] * 1 + parts[1] * 2 + parts[2] * 3

    helper_test_op([(6, 6)], lambda t: weighted(t.chunk(3, dim=axis)), lambda t: weighted(t.chunk(3, axis=axis)))


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4)])
def test_linear_matches_torch_functional_linear(shape):
    helper_test_op([shape, (5, 4), (5,)], lambda x, w, b: torch.nn.functional.linear(x, w, b),
                   lambda x, w, b: x.linear(w, b))
    helper_test_op([shape, (5, 4)], lambda x, w: torch.nn.functional.linear(x, w), lambda x, w: x.linear(w),
                   dtype=np.float32)


def test_linear_names_both_shapes_when_they_do_not_fit():
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(5, 4\)"):
        Tensor(np.zeros((2, 3))).linear(Tensor(np.zeros((5, 4))))


def test_chunk_that_does_not_divide_is_a_shape_error():
    with pytest.raises(ShapeError, match="3 equal parts"):
        Tensor(np.zeros((2, 4))).chunk(3, axis=1)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack_matches_torch_stack(axis):
    helper_test_op([(2, 3), (2, 3), (2, 3)], lambda *ts: torch.stack(ts, dim=axis),
                   lambda *ts: Tensor.stack(ts, axis=axis))


def test_astype_casts_forward_and_the_gradient_back_to_the_input_dtype():
    helper_test_op([(2, 3)], lambda x: x.to(torch.float64) * 3, lambda x: x.astype(np.float64) * 3, dtype=np.float32)


def test_a_small_network_of_many_ops_matches_torch():
    def net(x, w, b):
        h = (x @ w + b).tanh()
        return (h.sigmoid() * h).sum(axis=-1) if isinstance(h, Tensor) else (h.sigmoid() * h).sum(dim=-1)

    helper_test_op([(5, 3), (3, 4), (4,)], net, dtype=np.float32)
