"""Solutions to the exercises of docs/01-autograd.md."""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import rnnrun  # noqa: E402

from tinygrad_rnn import Function, Tensor, array_module, gradcheck  # noqa: E402
from tinygrad_rnn.gradcheck import check_extremes  # noqa: E402


def exercise_1():
    """y = x * x + x at x = 3. Prediction: dy/dx = 2x + 1 = 7: x feeds Mul twice and Add once, and the
    three shares (3 + 3 + 1) meet at the leaf and add up."""
    x = Tensor(np.array(3.0), requires_grad=True)
    (x * x + x).backward()
    assert x.grad == 7.0
    return float(x.grad)


class Exp(Function):
    """exp(x); its derivative is exp(x) itself, so the forward's output is what backward saves."""

    @staticmethod
    def forward(ctx, x):
        y = array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad * y


def exercise_2():
    """Write Exp as a Function. gradcheck agrees; check_extremes shows exp overflows at 1000 (inf is
    the right answer there: the op is exact, the number is too big for a float)."""
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert gradcheck(lambda t: Exp.apply(t), [x])
    extremes = str(check_extremes(lambda t: Exp.apply(t), [x]))
    assert "not finite" in extremes and "1000" in extremes
    return extremes


def exercise_3():
    """b of shape (1, 3) added to x of shape (4, 3), loss = sum: b's 1 was stretched to 4 rows, so
    unbroadcast sums the 4 rows' gradients: b.grad = [[4, 4, 4]], shape (1, 3)."""
    x = Tensor(np.zeros((4, 3)), requires_grad=True)
    b = Tensor(np.zeros((1, 3)), requires_grad=True)
    (x + b).sum().backward()
    assert b.grad.shape == (1, 3) and b.grad.tolist() == [[4.0, 4.0, 4.0]]
    return b.grad


def exercise_4():
    """Predict how many ops `rnnrun graph --cell rnn --steps 3` lists. One step's ops are the difference
    between 2 steps (24, quoted in the chapter) and 1 step (15): 9, so 24 + 9 = 33."""
    printed = rnnrun("graph", "--cell", "rnn", "--steps", "3")
    ops = int(re.search(r"^(\d+) ops,", printed, re.M).group(1))
    assert ops == 33
    return ops


if __name__ == "__main__":
    for name in sorted(n for n in dir() if n.startswith("exercise_")):
        print(name, "→", globals()[name]())
