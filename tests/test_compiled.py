"""The compiled path (tinygrad_rnn/tape.py): one traced step of a cell replayed for all steps.

It must give what the composed graph gives, in float64 to rounding: outputs, final states and every
gradient, for every built-in cell and the example cells, with padding, stacked and bidirectional.
"""
import json
import os
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import DTypeError, Function, Tensor, register_cell, registry
from tinygrad_rnn.nn import CompileWarning, Module, Recurrent, compile_cell, uniform_parameter
from tinygrad_rnn.tape import ROWS, STEP, TapeSequence

from helpers import rnnrun
from watch_cells import outputs_and_gradients as compiled_and_composed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("example_cells")  # mgu and indrnn (tests/conftest.py)


def run(cell, path, layers=1, bidirectional=False, lengths=None, training=False, recurrent_dropout=0.0, **options):
    """Outputs, final states, dL/dx and every dL/dparameter of a small float64 layer on one path."""
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get(cell), 2, 3, num_layers=layers, bidirectional=bidirectional, path=path,
                    **options).to(dtype=np.float64)
    rnn.train(training)
    rnn.recurrent_dropout = recurrent_dropout
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)), requires_grad=True)
    out, final = rnn(x, lengths=lengths)
    states = [s for layer in final for s in layer]
    loss = (out * out).sum() + sum((s * s * 0.5).sum() for s in states)  # gradients reach every state too
    loss.backward()
    return [out.numpy()] + [s.numpy() for s in states] + [x.grad] + [p.grad for p in rnn.parameters()], out


def assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)


CELLS = ["rnn", "rnn:nonlinearity=relu", "lstm", "gru", "gru:variant=cho", "peephole", "mgu", "indrnn"]


def spec(name):
    cell, _, option = name.partition(":")
    return cell, dict([option.split("=")]) if option else {}


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("layers, bidirectional, lengths", [(1, False, None), (2, True, [5, 3, 1])])
def test_compiled_equals_composed_in_float64(name, layers, bidirectional, lengths):
    cell, options = spec(name)
    composed, _ = run(cell, "composed", layers, bidirectional, lengths, **options)
    compiled, out = run(cell, "compiled", layers, bidirectional, lengths, **options)
    assert_same(compiled, composed)


def test_a_cell_without_sequence_runs_compiled_by_default_and_built_ins_when_asked():
    _, out = run("mgu", "auto")
    assert isinstance(out._ctx, TapeSequence)  # one node for the whole sequence, not a step-by-step graph
    _, out = run("lstm", "compiled")
    assert isinstance(out._ctx, TapeSequence)
    for path in ("auto", "fused"):
        _, out = run("lstm", path)
        assert not isinstance(out._ctx, TapeSequence)


def test_variational_dropout_on_the_compiled_path_equals_composed():
    # the same seeded masks are drawn on both paths, so the numbers agree
    composed, _ = run("gru", "composed", training=True, recurrent_dropout=0.4, lengths=[5, 4, 2])
    compiled, _ = run("gru", "auto", training=True, recurrent_dropout=0.4, lengths=[5, 4, 2])
    assert_same(compiled, composed)


def test_a_state_carried_across_calls_as_tbptt_does():
    results = []
    for path in ("composed", "compiled"):
        tg.manual_seed(0)
        rnn = Recurrent(registry.cells.get("lstm"), 2, 3, path=path).to(dtype=np.float64)
        x = np.random.default_rng(2).standard_normal((2, 6, 2))
        state, total = None, 0.0
        for start in (0, 3):  # two chunks of 3 steps, the state detached in between
            out, final = rnn(Tensor(x[:, start:start + 3]), state=state)
            (out * out).sum().backward()
            state = [tuple(s.detach() for s in layer) for layer in final]
            total += float(out.numpy().sum())
        results.append([total] + [p.grad for p in rnn.parameters()])
    assert_same(results[1], results[0])


def test_a_forward_without_gradients_before_the_backward_leaves_its_gradients_as_they_were():
    def gradients(path):
        tg.manual_seed(0)
        rnn = Recurrent(registry.cells.get("lstm"), 2, 3, path=path).to(dtype=np.float64)
        x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)))
        out, _ = rnn(x)
        loss = (out * out).sum()
        with tg.no_grad():  # an evaluation between the forward and its backward: the state needs no gradient
            rnn(x)
        loss.backward()
        return [p.grad for p in rnn.parameters()]

    assert_same(gradients("compiled"), gradients("composed"))


def test_the_gradient_reaches_a_given_initial_state():
    results = []
    for path in ("composed", "compiled"):
        tg.manual_seed(0)
        rnn = Recurrent(registry.cells.get("lstm"), 2, 3, path=path).to(dtype=np.float64)
        rng = np.random.default_rng(0)
        h0, c0 = (Tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
        out, final = rnn(Tensor(rng.standard_normal((2, 4, 2))), state=[(h0, c0)], lengths=[4, 2])
        ((out * out).sum() + (final[0][1] * 3).sum()).backward()
        results.append([h0.grad, c0.grad] + [p.grad for p in rnn.parameters()])
    assert_same(results[1], results[0])


def test_the_input_projection_is_hoisted_out_of_the_loop():
    tg.manual_seed(0)
    cell = Recurrent(registry.cells.get("lstm"), 2, 3).cells[0]
    tape = compile_cell(cell).tape_for(Tensor(np.ones((4, 5, 2), np.float32)), cell.initial_state(4))
    hoisted = [e.cls.__name__ for e in tape.entries if e.where is ROWS]
    assert hoisted == ["Linear"]  # x W_ih^T + b_ih for all steps at once; h W_hh^T stays in the loop
    assert "Linear" in [e.cls.__name__ for e in tape.entries if e.where is STEP]


class InputWeightCell(Module):
    """One input weight and a state h of hidden_size zeros: what the test cells below share; each says
    only its own forward."""

    def __init__(self, input_size, hidden_size):
        self.weight_ih = uniform_parameter((hidden_size, input_size), 0.5)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size):
        return (Tensor(np.zeros((batch_size, self.hidden_size), self.weight_ih.dtype)),)


class BatchCentred(InputWeightCell):
    """A cell whose input step mixes the batch (x minus its batch mean): hoisting it over all steps'
    rows at once would be wrong, so it must stay in the loop."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), 0.5)

    def forward(self, x, state):
        (h,) = state
        centred = x - x.mean(axis=0, keepdims=True)
        h = (centred @ self.weight_ih.T + h @ self.weight_hh.T).tanh()
        return h, (h,)


def test_an_op_that_mixes_the_batch_is_not_hoisted_and_still_agrees():
    register_cell("centred")(BatchCentred)
    composed, _ = run("centred", "composed")
    compiled, out = run("centred", "compiled")
    assert isinstance(out._ctx, TapeSequence)
    assert_same(compiled, composed)
    cell = Recurrent(registry.cells.get("centred"), 2, 3).cells[0]
    tape = compile_cell(cell).tape_for(Tensor(np.random.default_rng(0).standard_normal((3, 4, 2)).astype(np.float32)),
                                       cell.initial_state(3))
    assert "Sum" not in [e.cls.__name__ for e in tape.entries if e.where is ROWS]


class Shortcuts(Module):
    """Takes the replayed backward's shortcuts and their edges: a chunk nobody reads (its gradient is
    missing and counts as zero), a product with a broadcast row (unbroadcast has work to do), products
    with a constant and of a value with itself, and a constant minus a value."""

    def __init__(self, input_size, hidden_size):
        self.weight_ih = uniform_parameter((3 * hidden_size, input_size), 0.5)
        self.weight_hh = uniform_parameter((3 * hidden_size, hidden_size), 0.5)
        self.scale = uniform_parameter((hidden_size,), 0.5)
        self.hidden_size = hidden_size

    def initial_state(self, batch_size):
        return (Tensor(np.zeros((batch_size, self.hidden_size), self.weight_ih.dtype)),)

    def forward(self, x, state):
        (h,) = state
        a, b, _unused = (x.linear(self.weight_ih) + h.linear(self.weight_hh)).chunk(3, axis=1)
        z = a.sigmoid()
        h = (1 - z) * h + z * (b * self.scale).tanh() * 0.5 - h * h
        return h, (h,)


@pytest.mark.parametrize("layers, bidirectional, lengths", [(1, False, None), (2, True, [5, 3, 1])])
def test_the_backward_shortcuts_agree_with_the_ops_own(layers, bidirectional, lengths):
    register_cell("shortcuts")(Shortcuts)
    composed, _ = run("shortcuts", "composed", layers, bidirectional, lengths)
    compiled, out = run("shortcuts", "compiled", layers, bidirectional, lengths)
    assert bidirectional or isinstance(out._ctx, TapeSequence)  # (both directions' outputs are joined)
    assert_same(compiled, composed)


class Branching(InputWeightCell):
    """Chooses its op by looking at a value: the tape of one step would be wrong for another."""

    def forward(self, x, state):
        (h,) = state
        a = x @ self.weight_ih.T + h
        if float(np.abs(h.numpy()).sum()) > 0:  # branches on the state's value
            return a.tanh(), (a.tanh(),)
        return a.relu(), (a.relu(),)


def test_a_cell_that_branches_on_values_is_detected_and_runs_composed_with_one_warning():
    register_cell("branching")(Branching)
    composed, _ = run("branching", "composed")
    says = r"cannot be compiled: two steps differ: step 1 applied \w+ \(op \d+ of the step\) where step 2 applied"
    with pytest.warns(CompileWarning, match=says):
        compiled, out = run("branching", "auto")
    assert not isinstance(out._ctx, TapeSequence)
    assert_same(compiled, composed)


class RandomInsideForward(InputWeightCell):
    """Zoneout written the way that cannot compile: the mask drawn inside forward, a new one each step."""

    def forward(self, x, state):
        (h,) = state
        keep = Tensor((np.random.default_rng().random(h.shape) < 0.5).astype(h.dtype))
        new = (x @ self.weight_ih.T + h).tanh()
        h = h * keep + new * (1 - keep)
        return h, (h,)


def test_random_numbers_inside_forward_are_named_with_the_op_that_reads_them():
    register_cell("random_inside")(RandomInsideForward)
    with pytest.warns(CompileWarning, match=r"input 2 of Mul \(op 5 of the step\) is a constant tensor that "
                                            r"changed between step 1 and step 2: random numbers drawn inside forward"):
        run("random_inside", "compiled")


@pytest.mark.parametrize("path", ["fused", "compiled", "composed"])
def test_a_float64_input_to_float32_weights_names_both_dtypes(path):
    rnn = Recurrent(registry.cells.get("gru"), 2, 3, path="auto" if path == "fused" else path)
    with pytest.raises(DTypeError, match="the input is float64 but the cell's weights are float32"):
        rnn(Tensor(np.zeros((2, 4, 2))))
    with pytest.raises(DTypeError, match="float64 .* float32"):
        compile_cell(rnn.cells[0]).sequence(Tensor(np.zeros((2, 4, 2))), rnn.cells[0].initial_state(2))


class Scale(Function):
    """A user's own op: tape entries may be any Function."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return grad * w, (grad * x).sum(axis=0)


class NewParameterEachStep(InputWeightCell):
    def forward(self, x, state):
        (h,) = state
        gain = Tensor(np.ones(self.hidden_size, h.dtype), requires_grad=True)  # not the cell's parameter
        h = Scale.apply((x @ self.weight_ih.T + h).tanh(), gain)
        return h, (h,)


def test_a_parameter_made_inside_forward_is_refused_with_its_reason():
    register_cell("newparam")(NewParameterEachStep)
    with pytest.warns(CompileWarning, match="not one of the cell's parameters"):
        run("newparam", "compiled")


def test_compiled_runs_without_warnings_for_the_example_cells():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run("mgu", "auto", lengths=[5, 2, 4])
        run("indrnn", "auto", layers=2, bidirectional=True)


def test_gradcheck_checks_the_compiled_path():
    from tinygrad_rnn.runner import lessons
    check = lessons.check_cell("mgu", layers=2, bidirectional=True, hidden=2, steps=3, batch=2, path="compiled")
    assert check.path == "compiled" and check.ok


# ---- the command line: --compiled and the config key ------------------------------------------------------
def test_compiled_flag_is_kept_in_the_config_and_repeats_the_same_numbers(tmp_path):
    first = rnnrun("--cell", "gru", "--data", "sine:n_train=40", "--epochs", "1", "--hidden", "4", "--compiled",
                   "--json", "--runs-dir", str(tmp_path))
    assert first.exit_code == 0, first.stderr
    run_dir = json.loads(first.stdout)["run_dir"]
    config = open(os.path.join(run_dir, "config.toml")).read()
    assert 'path = "compiled"' in config
    again = rnnrun("--config", os.path.join(run_dir, "config.toml"), "--json", "--runs-dir", str(tmp_path))
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["test_metric"] == json.loads(first.stdout)["test_metric"]


def test_compiled_and_composed_together_are_a_usage_error():
    result = rnnrun("--cell", "gru", "--data", "sine", "--compiled", "--composed")
    assert result.exit_code == 2
    assert "exclude each other; choose one of --path auto|fused|compiled|composed" in result.stderr


class ScaledRNN(Module):
    """h = tanh(scale * (W_ih x + W_hh h)): a plain attribute that the traced step reads as a constant."""

    def __init__(self, input_size, hidden_size, scale=1.0):
        self.hidden_size, self.scale = hidden_size, scale
        self.weight_ih = uniform_parameter((hidden_size, input_size), 0.5)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), 0.5)
        self.offset = Tensor(np.zeros(hidden_size))  # a buffer: not trained, read by forward

    def initial_state(self, batch_size):
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=self.weight_hh.dtype),)

    def forward(self, x, state):
        h = ((x @ self.weight_ih.T + state[0] @ self.weight_hh.T) * self.scale + self.offset).tanh()
        return h, (h,)



def test_changing_a_plain_attribute_retraces_the_compiled_tape():
    """The reported reproduction: scale 1.0 → 0.1 after a compiled call must not replay the old constant."""
    tg.manual_seed(0)
    cell = ScaledRNN(2, 3).to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    compiled_and_composed(cell, x)  # traces a tape with scale = 1.0
    for change in (lambda: setattr(cell, "scale", 0.1), lambda: cell.offset.data.__setitem__(0, 0.7),
                   lambda: setattr(cell, "offset", Tensor(np.full(3, -0.3)))):
        change()
        (compiled, g_compiled), (composed, g_composed) = compiled_and_composed(cell, x)
        np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g_compiled, g_composed, rtol=1e-10, atol=1e-12)


def test_a_cell_whose_attributes_change_every_call_keeps_a_bounded_number_of_tapes():
    tg.manual_seed(0)
    cell = ScaledRNN(2, 3).to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3, 2)))
    for i in range(20):
        cell.scale = 1.0 + i
        compile_cell(cell).sequence(x, cell.initial_state(2))
    assert len(compile_cell(cell).tapes) == compile_cell(cell).KEEP


GAIN = [1.0]  # a module-level constant a cell's forward reads: outside anything the tape's key can watch


class GlobalGainRNN(ScaledRNN):
    def forward(self, x, state):
        h = ((x @ self.weight_ih.T + state[0] @ self.weight_hh.T) * GAIN[0]).tanh()
        return h, (h,)


def test_a_constant_read_from_outside_the_cell_that_changes_retraces_the_tape():
    tg.manual_seed(0)
    cell = GlobalGainRNN(2, 3).to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    try:
        compiled_and_composed(cell, x)
        GAIN[0] = 0.1
        (compiled, g_compiled), (composed, g_composed) = compiled_and_composed(cell, x)
        np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g_compiled, g_composed, rtol=1e-10, atol=1e-12)
    finally:
        GAIN[0] = 1.0


SETTINGS = {"offset": np.zeros(3), "activation": "tanh", "add_itself": False}  # module-level, as above


class GlobalSettingsRNN(ScaledRNN):
    """Reads three more kinds of thing from outside itself: a constant array, which op to apply, and
    which tensor an op reads."""

    def forward(self, x, state):
        a = x @ self.weight_ih.T + state[0] @ self.weight_hh.T + Tensor(SETTINGS["offset"])
        a = a + (a if SETTINGS["add_itself"] else state[0])  # the same op, reading another tensor
        h = a.tanh() if SETTINGS["activation"] == "tanh" else a.relu()
        return h, (h,)


@pytest.mark.parametrize("change", [("offset", np.full(3, 0.3)), ("activation", "relu"), ("add_itself", True)])
def test_every_kind_of_value_read_from_outside_the_cell_that_changes_retraces_the_tape(change):
    """The check before each compiled sequence (tape.still_holds) compares one freshly recorded step with
    the tape: constants by value, ops by class, inputs by where they come from."""
    tg.manual_seed(0)
    cell = GlobalSettingsRNN(2, 3).to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    saved = dict(SETTINGS)
    try:
        compiled_and_composed(cell, x)
        SETTINGS[change[0]] = change[1]
        (compiled, g_compiled), (composed, g_composed) = compiled_and_composed(cell, x)
        np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g_compiled, g_composed, rtol=1e-10, atol=1e-12)
    finally:
        SETTINGS.update(saved)
