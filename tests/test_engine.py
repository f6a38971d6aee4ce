"""The autograd engine's contract: tensors, backward, the graph's lifetime, Functions and dtypes."""
import numpy as np
import pytest

import tinygrad_rnn
from tinygrad_rnn import Function, GraphError, ShapeError, Tensor, no_grad


# ---- what a tensor is ---------------------------------------------------------------------------
@pytest.mark.parametrize("data", [1.5, [1.0, 2.0], [[1.0], [2.0]]], ids=["scalar", "list", "nested list"])
def test_python_floats_become_float32(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    assert t.shape == np.shape(data) and t.ndim == np.ndim(data)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_a_numpy_array_keeps_its_dtype_like_torch_from_numpy(dtype):
    assert Tensor(np.arange(6, dtype=dtype).reshape(2, 3)).dtype == dtype


def test_an_explicit_dtype_overrides_the_default():
    assert Tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    assert Tensor(np.zeros(3), dtype=np.float32).dtype == np.float32


def test_a_new_tensor_has_no_gradient_and_needs_none_unless_asked():
    t = Tensor([1.0, 2.0])
    assert t.grad is None and t.requires_grad is False
    assert Tensor([1.0], requires_grad=True).requires_grad is True


def test_numpy_returns_a_copy_and_item_a_python_number():
    t = Tensor([1.0, 2.0])
    copy = t.numpy()
    copy[0] = 100.0
    assert t.data[0] == 1.0
    assert isinstance(Tensor(3.5).item(), float) and Tensor([[2.0]]).item() == 2.0


def test_detach_shares_data_but_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert d.requires_grad is False and d._ctx is None
    np.testing.assert_array_equal(d.numpy(), [2.0, 4.0])


def test_zeros_ones_and_randn_make_float32_tensors_of_the_given_shape():
    assert Tensor.zeros(2, 3).shape == (2, 3) and Tensor.zeros(2, 3).dtype == np.float32
    assert Tensor.ones((4,)).numpy().tolist() == [1.0] * 4
    tinygrad_rnn.manual_seed(0)
    a = Tensor.randn(3, 2)
    tinygrad_rnn.manual_seed(0)
    assert a.shape == (3, 2) and a.dtype == np.float32 and np.array_equal(a.numpy(), Tensor.randn(3, 2).numpy())


# ---- backward -----------------------------------------------------------------------------------
def test_backward_through_a_100000_op_chain_needs_no_recursion_and_is_right():
    x = Tensor(np.array(1.0), requires_grad=True)
    y, factor = x, 1.00001
    for _ in range(100_000):
        y = y * factor
    y.backward()
    np.testing.assert_allclose(x.grad, factor ** 100_000, rtol=1e-9)
    del y  # freeing a deep graph must not overflow the C stack either


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [2 * 1 + 3, 2 * 2 + 3])
    x.zero_grad()
    assert x.grad is None


def test_a_tensor_used_twice_gets_the_sum_of_both_paths():
    x = Tensor([3.0], requires_grad=True)
    y = x * 2
    (y * y + y).sum().backward()  # d/dx (4x^2 + 2x) = 8x + 2
    np.testing.assert_allclose(x.grad, [26.0])


def test_each_leaf_gets_its_own_writable_gradient_array():
    # Add hands the same array to both inputs and sum's backward is a read-only broadcast view;
    # clipping a gradient in place (p.grad *= scale) must change that one gradient only.
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad *= 0.5
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_backward_on_a_non_scalar_without_grad_is_a_clear_error():
    y = Tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(GraphError, match=r"scalar.*\(2,\)"):
        y.backward()


def test_backward_with_an_explicit_grad_of_the_wrong_shape_is_a_shape_error():
    y = Tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(ShapeError, match=r"\(3,\).*\(2,\)"):
        y.backward(np.ones(3))


def test_backward_with_an_explicit_grad_weights_each_output():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(np.array([10.0, 1.0]))
    np.testing.assert_allclose(x.grad, [20.0, 4.0])


def test_backward_on_a_tensor_that_needs_no_grad_is_a_clear_error():
    with pytest.raises(GraphError, match="requires_grad"):
        (Tensor([1.0]) * 2).sum().backward()


def test_second_backward_without_retain_graph_raises_graph_error_saying_what_to_do():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward()
    with pytest.raises(GraphError, match="retain_graph=True"):
        loss.backward()


def test_second_backward_with_retain_graph_works_and_accumulates():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * (np.exp([1.0, 2.0]) * ([1.0, 2.0] + np.ones(2))))


def test_saved_intermediates_are_released_after_backward():
    x = Tensor(np.arange(3.0), requires_grad=True)
    y = x.exp()
    z = y * x
    z.sum().backward()
    for node in (y._ctx, z._ctx):
        assert not any(isinstance(s, np.ndarray) for s in node.saved_tensors)


def test_saved_intermediates_are_kept_with_retain_graph():
    x = Tensor(np.arange(3.0), requires_grad=True)
    y = x.exp()
    y.sum().backward(retain_graph=True)
    assert any(isinstance(s, np.ndarray) for s in y._ctx.saved_tensors)


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    other = x * 5  # a non-leaf without retain_grad
    (h * h + other).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.numpy())
    assert other.grad is None
    np.testing.assert_allclose(x.grad, 18 * x.numpy() + 5)


def test_retain_grad_on_the_output_itself():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).retain_grad()
    y.backward(np.array([1.0, -1.0]))
    np.testing.assert_allclose(y.grad, [1.0, -1.0])


def test_no_grad_builds_no_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = (x * 2).exp().sum()
        assert not tinygrad_rnn.is_grad_enabled()
    assert y._ctx is None and y.requires_grad is False
    assert tinygrad_rnn.is_grad_enabled()
    assert (x * 2).requires_grad  # and recording resumes afterwards


def test_ops_on_tensors_that_need_no_grad_build_no_graph():
    y = Tensor([1.0]) * Tensor([2.0])
    assert y._ctx is None and y.requires_grad is False


# ---- user-written Functions ---------------------------------------------------------------------
class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return 3 * x * x * grad


class SinCos(Function):
    """Two outputs from one forward: (sin x, cos x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x), np.cos(x)

    @staticmethod
    def backward(ctx, grad_sin, grad_cos):
        x, = ctx.saved_tensors
        return grad_sin * np.cos(x) - grad_cos * np.sin(x)


class ScaleBy(Function):
    """A Function with a non-tensor argument: it gets no gradient (None)."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def test_a_user_written_function_builds_a_graph_and_backpropagates():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Cube.apply(x)
    assert isinstance(y._ctx, Cube)
    np.testing.assert_allclose(y.numpy(), [1.0, 8.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 12.0])
    assert tinygrad_rnn.gradcheck(lambda t: Cube.apply(t), [Tensor(np.array([0.5, -1.5]), requires_grad=True)])


def test_a_function_with_two_outputs_gets_both_gradients():
    data = np.array([0.3, 1.2])
    x = Tensor(data, requires_grad=True)
    s, c = SinCos.apply(x)
    (s * 2 + c * 3).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.cos(data) - 3 * np.sin(data))
    assert tinygrad_rnn.gradcheck(lambda t: SinCos.apply(t)[0] * SinCos.apply(t)[1], [x])


def test_a_function_with_two_outputs_when_only_one_is_used():
    data = np.array([0.3, 1.2])
    x = Tensor(data, requires_grad=True)
    _, c = SinCos.apply(x)
    c.sum().backward()
    np.testing.assert_allclose(x.grad, -np.sin(data))


def test_a_function_with_a_non_tensor_argument():
    x = Tensor([1.0, 2.0], requires_grad=True)
    ScaleBy.apply(x, 4.0).sum().backward()
    np.testing.assert_allclose(x.grad, [4.0, 4.0])


def test_a_function_applied_under_no_grad_frees_what_it_saved_at_once():
    with no_grad():
        y = Cube.apply(Tensor([1.0], requires_grad=True))
    assert y._ctx is None


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3, 4), (5, 4, 6))], ids=str)
def test_matmul_shape_mismatch_is_a_shape_error_naming_both_shapes(shapes):
    a, b = Tensor(np.zeros(shapes[0])), Tensor(np.zeros(shapes[1]))
    with pytest.raises(ShapeError) as error:
        a @ b
    assert str(shapes[0]) in str(error.value) and str(shapes[1]) in str(error.value)


def test_reshape_to_the_wrong_size_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(4, 2\)"):
        Tensor(np.zeros((2, 3))).reshape(4, 2)


def test_reducing_over_an_axis_that_does_not_exist_is_a_shape_error():
    with pytest.raises(ShapeError, match="axis 2"):
        Tensor(np.zeros((2, 3))).sum(axis=2)


# ---- dtypes: float32 stays float32 --------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda t: t * 2.0, lambda t: 2.0 * t, lambda t: 1 - t, lambda t: t / 3, lambda t: 2 ** t, lambda t: t ** 2,
    lambda t: t ** 0.5, lambda t: t.mean(), lambda t: t.mean(axis=0), lambda t: t + np.float64(1.5),
    lambda t: np.float64(2.0) * t, lambda t: t ** np.float64(2.0), lambda t: t.softmax(), lambda t: t.max(),
    lambda t: t.clip(0.5, 1.5), lambda t: t.leaky_relu(0.2), lambda t: t.elu(0.5), lambda t: t.sigmoid(),
    lambda t: t @ Tensor.ones(3, 2),
], ids=["t*2.0", "2.0*t", "1-t", "t/3", "2**t", "t**2", "t**0.5", "mean", "mean(axis=0)", "t+np.float64",
        "np.float64*t", "t**np.float64", "softmax", "max", "clip", "leaky_relu", "elu", "sigmoid", "matmul"])
def test_float32_in_gives_float32_out_and_float32_gradients(fn):
    t = Tensor(np.array([[0.5, 1.0, 2.0], [1.5, 0.7, 0.9]], dtype=np.float32), requires_grad=True)
    out = fn(t)
    assert isinstance(out, Tensor) and out.dtype == np.float32
    out.sum().backward()
    assert t.grad.dtype == np.float32


def test_a_float_constant_with_an_integer_tensor_gives_a_float_result():
    np.testing.assert_array_equal((Tensor([1, 2]) * 0.5).numpy(), [0.5, 1.0])
    np.testing.assert_array_equal((1.5 - Tensor([1, 2])).numpy(), [0.5, -0.5])
    assert (Tensor([1, 2]) * 2).dtype == np.int64


def test_numpy_scalars_and_arrays_on_the_left_defer_to_the_tensor():
    t = Tensor([1.0, 2.0], requires_grad=True)
    for out in (np.float32(2.0) * t, np.array([2.0, 2.0]) * t, np.float64(1.0) - t):
        assert isinstance(out, Tensor) and out.dtype == np.float32 and out.requires_grad


def test_float64_in_gives_float64_out():
    t = Tensor(np.ones(3), requires_grad=True)
    out = (t * 2.0 + 1).mean()
    out.backward()
    assert out.dtype == np.float64 and t.grad.dtype == np.float64


def test_record_ops_lists_every_applied_op_in_order_with_its_inputs_and_outputs():
    from tinygrad_rnn.function import record_ops
    from tinygrad_rnn.ops import Add, Mul, Tanh
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0])
    before = a * b  # outside the block: not recorded
    with record_ops() as record:
        y = (a * b + a).tanh()
        with record_ops() as inner:  # blocks nest: the inner one sees its own ops only
            z = y * 2.0
    after = y * y  # noqa: F841  (after the block: not recorded)
    assert [entry[0] for entry in record] == [Mul, Add, Tanh]
    assert [entry[0] for entry in inner] == [Mul] and inner[0][3] == (z,)
    mul_args, add_args = record[0][1], record[1][1]
    assert mul_args[0] is a and mul_args[1] is b and add_args[0] is record[0][3][0] and add_args[1] is a
    assert record[2][3] == (y,) and before is not None
