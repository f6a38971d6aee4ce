"""The tape's step loops written out as Python (tinygrad_rnn/tape_codegen.py) against the same loops run by
interpreting the plan's table (TINYGRAD_RNN_CODEGEN=0), for every cell, fused or not, with padding, state
tuples, several layers, both directions and zoneout's step masks. Op by op both call the same ops in the
same order, so in float64 they agree exactly; fused, the generated backward has its kernels add a
parameter's gradient into the running sum over steps (the table sums each step's total), which changes
the order of the additions: float64 rounding, no more."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Function, Tensor, register_cell, registry, tape_codegen
from tinygrad_rnn.nn import Module, Recurrent, compile_cell, uniform_parameter

from test_zoneout import _rule

CELLS = ["rnn", "rnn:nonlinearity=relu", "lstm", "gru", "gru:variant=cho", "peephole", "mgu", "indrnn", "oddities"]
try:
    import numba  # noqa: F401
    FUSE = ["0", "1"]
except ImportError:
    FUSE = ["0"]


class Halves(Function):
    """A user's op with two outputs, a keyword argument and a backward that gives None to an input."""

    @staticmethod
    def forward(ctx, x, scale, *, shift=0.0):
        ctx.scale = scale
        n = x.shape[1] // 2
        return x[:, :n] * scale + shift, x[:, n:] * scale

    @staticmethod
    def backward(ctx, g1, g2):
        return np.concatenate([g1, g2], axis=1) * ctx.scale, None


class Oddities(Module):
    """Every corner the writer has to get right: a generic op with two outputs (one of them unused), a
    Chunk with an unused piece, Sub and Mul by constants, hoisted rows read inside the step, the input
    itself read inside the step (when its size is the state's), and a state tuple."""

    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.weight_ih = uniform_parameter((hidden_size, input_size), 0.5)
        self.weight_hh = uniform_parameter((3 * hidden_size, hidden_size), 0.5)
        self.gain = uniform_parameter((hidden_size,), 0.5)

    def initial_state(self, batch_size):
        zeros = np.zeros((batch_size, self.hidden_size), self.weight_ih.dtype)
        return Tensor(zeros), Tensor(zeros.copy())

    def forward(self, x, state):
        h, c = state
        a, b, _unused = h.linear(self.weight_hh).chunk(3, axis=1)
        left, _right = Halves.apply(Tensor.concatenate([a, b], axis=1), 0.5, shift=0.1)
        xs = x.linear(self.weight_ih)
        c = (1 - a.sigmoid()) * c + (left + xs * self.gain).tanh() - c * 0.5
        h = (c * h).tanh() + xs
        if x.shape[1] == self.hidden_size:  # the input read inside the step: its gradient in the rows' buffer
            h = h + x
        return h, (h, c)


@pytest.fixture(autouse=True)
def oddities(example_cells):  # with mgu and indrnn (tests/conftest.py)
    register_cell("oddities")(Oddities)


def run(name, codegen, fuse, monkeypatch, layers=2, bidirectional=True, lengths=(6, 4, 1), zoneout=False):
    """Outputs, final states and every gradient, float64; and whether the generated code ran."""
    monkeypatch.setenv(tape_codegen.ENV, codegen)
    monkeypatch.setenv("TINYGRAD_RNN_FUSE", fuse)
    cell, _, option = name.partition(":")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get(cell), 3, 4, num_layers=layers, bidirectional=bidirectional, path="compiled",
                    **dict([option.split("=")] if option else [])).to(dtype=np.float64)
    if zoneout:
        rnn.step_masks.append(_rule(0.3))
        rnn.train(True)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 3)), requires_grad=True)
    tg.manual_seed(5)
    out, final = rnn(x, lengths=None if lengths is None else list(lengths))
    states = [s for state in final for s in state]
    ((out * out).sum() + sum((s * s * 0.5).sum() for s in states)).backward()
    tapes = [t for cell in rnn.cells for t in compile_cell(cell).tapes.values()]
    generated = [code is not None for t in tapes for plan in t.program.plans.values() for code in plan.codes.values()]
    return [out.numpy()] + [s.numpy() for s in states] + [x.grad] + [p.grad for p in rnn.parameters()], generated


def assert_agree(a, b, fuse):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if fuse == "0":
            np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("fuse", FUSE)
@pytest.mark.parametrize("lengths", [None, (6, 4, 1)])
def test_generated_loops_equal_the_interpreted_table(name, fuse, lengths, monkeypatch):
    generated, ran = run(name, "1", fuse, monkeypatch, lengths=lengths)
    interpreted, ran_interpreted = run(name, "0", fuse, monkeypatch, lengths=lengths)
    assert ran and all(ran) and not any(ran_interpreted)
    assert_agree(generated, interpreted, fuse)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "mgu", "oddities"])
@pytest.mark.parametrize("fuse", FUSE)
def test_generated_loops_with_zoneout_step_masks(name, fuse, monkeypatch):
    generated, _ = run(name, "1", fuse, monkeypatch, zoneout=True)
    interpreted, _ = run(name, "0", fuse, monkeypatch, zoneout=True)
    # (that compiled equals composed with zoneout is tested in test_zoneout.py)
    assert_agree(generated, interpreted, fuse)


def test_the_odd_cell_compiled_equals_composed(monkeypatch):
    compiled, _ = run("oddities", "1", "0", monkeypatch)
    monkeypatch.setenv(tape_codegen.ENV, "1")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get("oddities"), 3, 4, num_layers=2, bidirectional=True, path="composed")
    rnn = rnn.to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 3)), requires_grad=True)
    out, final = rnn(x, lengths=[6, 4, 1])
    states = [s for state in final for s in state]
    ((out * out).sum() + sum((s * s * 0.5).sum() for s in states)).backward()
    composed = [out.numpy()] + [s.numpy() for s in states] + [x.grad] + [p.grad for p in rnn.parameters()]
    for a, b in zip(compiled, composed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_gradcheck_on_the_generated_loops_of_the_odd_cell(monkeypatch):
    monkeypatch.setenv(tape_codegen.ENV, "1")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get("oddities"), 3, 4, path="compiled").to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((2, 4, 3)), requires_grad=True)

    def flat(*_):
        out, final = rnn(x, lengths=[4, 2])
        return Tensor.concatenate([out.reshape(2, -1)] + [s for s in final[0]], axis=1)
    assert tg.gradcheck(flat, [x] + rnn.parameters())


class InputInside(Module):
    """h = tanh(W h + x): the input read only inside the step, so its gradient is the rows' buffer."""

    def __init__(self, input_size, hidden_size):
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), 0.5)

    def initial_state(self, batch_size):
        return (Tensor(np.zeros((batch_size, self.weight_hh.shape[0]), self.weight_hh.dtype)),)

    def forward(self, x, state):
        h = (state[0].linear(self.weight_hh) + x).tanh()
        return h, (h,)


def test_a_gradient_is_never_a_buffer_the_next_backward_overwrites(monkeypatch):
    """The backward reuses its T*N-row buffers from call to call. One cell applied twice, the second
    time to the first's outputs: the second backward hands its input's gradient to the first, which
    fills the same buffers while reading it. With one sequence (N = 1) that gradient has the rows'
    layout already, and must still be a copy."""
    from tinygrad_rnn.nn import unroll
    monkeypatch.setenv(tape_codegen.ENV, "1")
    tg.manual_seed(0)
    cell = InputInside(4, 4).to(dtype=np.float64)
    results = []
    for sequence in (compile_cell(cell).sequence, lambda x, s: unroll(cell, x, s)):
        x = Tensor(np.random.default_rng(1).standard_normal((1, 5, 4)), requires_grad=True)
        for p in cell.parameters():
            p.grad = None
        y, _ = sequence(x, cell.initial_state(1))
        z, _ = sequence(y, cell.initial_state(1))
        (z * z).sum().backward()
        results.append([x.grad] + [p.grad for p in cell.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_generated_source_is_there_to_read(monkeypatch):
    monkeypatch.setenv(tape_codegen.ENV, "1")
    tg.manual_seed(0)
    cell = registry.cells.get("mgu")(2, 3)
    compile_cell(cell).sequence(Tensor(np.zeros((2, 4, 2), np.float32)), cell.initial_state(2))
    (tape,) = compile_cell(cell).tapes.values()
    source = tape.program.source()
    assert "def forward_steps(" in source and "def backward_steps(" in source
    assert "for t in range(T):" in source and "for t in range(T - 1, -1, -1):" in source
    monkeypatch.setenv(tape_codegen.ENV, "0")
    tape.program.plans.clear()
    assert tape.program.source() is None
