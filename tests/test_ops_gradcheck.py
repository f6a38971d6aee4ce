"""Every op against finite differences (`tinygrad_rnn.gradcheck`, float64): no PyTorch needed.

Each case is a function of some tensors and the ranges its random inputs are drawn from (kept away
from kinks, where a central difference is meaningless, and from where the op is undefined).
"""
import numpy as np
import pytest

from tinygrad_rnn import Function, Tensor, gradcheck

ANY, POSITIVE, AWAY_FROM_ZERO = (-2.0, 2.0), (0.5, 2.0), "away from zero"

CASES = {
    # binary ops, with broadcasting
    "add": (lambda a, b: a + b, [(3, 4), (4,)], ANY),
    "sub": (lambda a, b: a - b, [(2, 1, 3), (4, 1)], ANY),
    "mul": (lambda a, b: a * b, [(3, 1), (1, 4)], ANY),
    "div": (lambda a, b: a / b, [(3, 4), (3, 1)], AWAY_FROM_ZERO),
    "div by a scalar tensor": (lambda a, b: a / b, [(3, 2), ()], AWAY_FROM_ZERO),
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)], ANY),
    "batched matmul": (lambda a, b: a @ b, [(2, 1, 3, 4), (3, 4, 2)], ANY),
    "vector @ matrix": (lambda a, b: a @ b, [(4,), (4, 3)], ANY),
    "matrix @ vector": (lambda a, b: a @ b, [(3, 4), (4,)], ANY),
    "vector @ vector": (lambda a, b: a @ b, [(4,), (4,)], ANY),
    # reflected operators and powers
    "reflected": (lambda x: 2 * x + 1 - (3 - x) / 2 + 2 ** x, [(2, 3)], ANY),
    "reflected div": (lambda x: 1 / x, [(2, 3)], POSITIVE),
    "neg": (lambda x: -x, [(2, 3)], ANY),
    "pow 3": (lambda x: x ** 3, [(2, 3)], ANY),
    "pow -1.5": (lambda x: x ** -1.5, [(2, 3)], POSITIVE),
    "pow 0.5": (lambda x: x ** 0.5, [(2, 3)], POSITIVE),
    "pow tensor exponent": (lambda x, p: x ** p, [(2, 3), (2, 3)], POSITIVE),
    # unary ops
    "exp": (lambda x: x.exp(), [(2, 3)], ANY),
    "log": (lambda x: x.log(), [(2, 3)], POSITIVE),
    "sqrt": (lambda x: x.sqrt(), [(2, 3)], POSITIVE),
    "tanh": (lambda x: x.tanh(), [(2, 3)], ANY),
    "sigmoid": (lambda x: x.sigmoid(), [(2, 3)], ANY),
    "relu": (lambda x: x.relu(), [(2, 3)], AWAY_FROM_ZERO),
    "leaky_relu": (lambda x: x.leaky_relu(0.1), [(2, 3)], AWAY_FROM_ZERO),
    "elu": (lambda x: x.elu(alpha=0.7), [(2, 3)], AWAY_FROM_ZERO),
    "abs": (lambda x: x.abs(), [(2, 3)], AWAY_FROM_ZERO),
    "clip": (lambda x: x.clip(-1.0, 1.0), [(3, 4)], ANY),  # random data never lands within eps of a bound
    "astype": (lambda x: x.astype(np.longdouble).exp().astype(np.float64), [(2, 3)], ANY),  # float32 is too coarse
    # reductions
    "sum": (lambda x: x.sum(), [(2, 3, 4)], ANY),
    "sum axis keepdims": (lambda x: x.sum(axis=(0, 2), keepdims=True), [(2, 3, 4)], ANY),
    "mean": (lambda x: x.mean(axis=-1), [(2, 3, 4)], ANY),
    "mean keepdims": (lambda x: x.mean(axis=(1,), keepdims=True), [(2, 3, 4)], ANY),
    "max": (lambda x: x.max(), [(2, 3, 4)], ANY),
    "max axis": (lambda x: x.max(axis=1), [(2, 3, 4)], ANY),
    "max axes keepdims": (lambda x: x.max(axis=(0, -1), keepdims=True), [(2, 3, 4)], ANY),
    "softmax": (lambda x: x.softmax(), [(3, 4)], ANY),
    "softmax axis 0": (lambda x: x.softmax(axis=0), [(3, 4)], ANY),
    "log_softmax": (lambda x: x.log_softmax(), [(3, 4)], ANY),
    "log_softmax axis 0": (lambda x: x.log_softmax(axis=0), [(3, 4)], ANY),
    # shape ops
    "reshape": (lambda x: x.reshape(3, 8), [(2, 3, 4)], ANY),
    "transpose": (lambda x: x.transpose(2, 0, 1), [(2, 3, 4)], ANY),
    "transpose negative axes": (lambda x: x.transpose(0, -1, -2), [(2, 3, 4)], ANY),
    "T": (lambda x: x.T, [(3, 4)], ANY),
    "getitem slices": (lambda x: x[1:, ::2], [(3, 4)], ANY),
    "getitem repeated indices": (lambda x: x[[0, 2, 0, 0]], [(3, 4)], ANY),
    "getitem paired indices": (lambda x: x[[0, 1, 0], [3, 3, 3]], [(3, 4)], ANY),
    "concatenate": (lambda a, b: Tensor.concatenate([a, b], axis=1), [(2, 3), (2, 1)], ANY),
    "stack": (lambda a, b: Tensor.stack([a, b], axis=-1), [(2, 3), (2, 3)], ANY),
    "chunk": (lambda a: Tensor.concatenate([p * (k + 1) for k, p in enumerate(a.chunk(3, axis=1))]),
              [(2, 6)], ANY),
    "chunk, one part used": (lambda a: a.chunk(2, axis=0)[1], [(4, 3)], ANY),
    "linear": (lambda x, w, b: x.linear(w, b), [(2, 3, 4), (5, 4), (5,)], ANY),
    "linear without bias": (lambda x, w: x.linear(w), [(3, 4), (5, 4)], ANY),
}


def random_inputs(shapes, kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == AWAY_FROM_ZERO:  # |x| in [0.5, 2]
        return [Tensor(rng.uniform(0.5, 2.0, s) * rng.choice([-1.0, 1.0], s), requires_grad=True) for s in shapes]
    low, high = kind
    return [Tensor(rng.uniform(low, high, s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("name", CASES)
def test_op_gradient_agrees_with_finite_differences(name):
    fn, shapes, kind = CASES[name]
    inputs = random_inputs(shapes, kind)
    result = gradcheck(fn, inputs)
    assert result, str(result)


def test_clip_gradient_agrees_with_finite_differences_on_both_sides_of_the_bounds():
    x = Tensor(np.array([-1.7, -0.8, -0.2, 0.3, 0.9, 1.6]), requires_grad=True)
    assert gradcheck(lambda t: t.clip(-1.0, 1.0), [x])


def test_gradcheck_passes_through_a_small_network():
    rng = np.random.default_rng(3)
    x, w, b = (Tensor(rng.standard_normal(s), requires_grad=True) for s in [(4, 3), (3, 5), (5,)])
    assert gradcheck(lambda x, w, b: (x @ w + b).tanh().log_softmax().mean(), [x, w, b])


def test_gradcheck_restores_dtype_and_values_of_float32_inputs():
    data = np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)
    x = Tensor(data.copy(), requires_grad=True)
    gradcheck(lambda t: t.tanh(), [x])
    assert x.dtype == np.float32 and np.array_equal(x.data, data) and x.grad is None


class MulWithWrongSecondGradient(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * a * 1.1  # the second is 10% off


def test_gradcheck_catches_a_wrong_backward_and_names_the_input():
    rng = np.random.default_rng(5)
    a, b = (Tensor(rng.uniform(0.5, 2.0, (2, 3)), requires_grad=True) for _ in range(2))
    result = gradcheck(lambda a, b: MulWithWrongSecondGradient.apply(a, b), [a, b])
    assert not result
    assert result.inputs[0].ok and not result.inputs[1].ok
    assert {m.input_index for m in result.mismatches} == {1}
    message = str(result)
    assert "failed" in message and "input 1" in message
    assert "entry (0, 0)" in message  # the first entry that disagrees, in plain numbers


def test_gradcheck_result_is_truthy_and_says_so_when_ok():
    x = Tensor(np.linspace(-1.0, 1.0, 5), requires_grad=True)
    result = gradcheck(lambda t: t * t, [x])
    assert result and result.ok
    assert "passed" in str(result)


def test_extreme_inputs_catch_an_overflowing_forward_that_gradcheck_passes():
    from tinygrad_rnn.gradcheck import check_extremes
    x = Tensor(np.random.default_rng(0).standard_normal(4), requires_grad=True)
    naive = lambda t: (1 + t.exp()).log()  # noqa: E731  softplus as written in a textbook
    assert gradcheck(naive, [x])  # right derivative at ordinary inputs...
    result = check_extremes(naive, [x])
    assert not result and "at 1000 the forward" in str(result)  # ...but inf at x = 1000
    stable = lambda t: t.relu() + (1 + (-t.abs()).exp()).log()  # noqa: E731  max(x, 0) + log(1 + e^-|x|)
    assert check_extremes(stable, [x]), str(check_extremes(stable, [x]))
    assert x.data.dtype == np.float64 and x.grad is None  # the input is given back as it was
