"""The compiled tape's watch (tinygrad_rnn/tape_watch.py): what a cell's step reads from outside the cell.

Each kind of outside value a step can read is changed after a compiled call; the watch itself must see
the change (not only the recorded step behind it), and the next compiled call must give the composed
answer. Where the watch cannot follow the code, the recorded step must still catch the change. And when
nothing changed, no step is recorded at all: that is what the watch is for.
"""
import sys
import types

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, tape
from tinygrad_rnn.nn import compile_cell

from watch_cells import Base
from watch_cells import outputs_and_gradients as compiled_and_composed

pytestmark = pytest.mark.usefixtures("watch_on")  # (the watch is off by default)

GAIN = [1.0]
SCALE = 1.0
HELPER_GAIN = 1.0
COUNTER = [0]
settings = types.ModuleType("watched_settings")  # a module the cell's code reads an attribute of
settings.SCALE = 1.0


def helper(a):
    return a * HELPER_GAIN


def with_default(a, gain=1.0):
    return a * gain




class ListGain(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * GAIN[0]).tanh()
        return h, (h,)


class ReboundGlobal(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * SCALE).tanh()
        return h, (h,)


class ModuleAttribute(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * settings.SCALE).tanh()
        return h, (h,)


class ClassAttribute(Base):
    FACTOR = 1.0

    def forward(self, x, state):
        h = (self.pre(x, state) * self.FACTOR).tanh()
        return h, (h,)


class HelperGlobal(Base):
    def forward(self, x, state):
        h = helper(self.pre(x, state)).tanh()
        return h, (h,)


class HelperDefault(Base):
    def forward(self, x, state):
        h = with_default(self.pre(x, state)).tanh()
        return h, (h,)


class InLambda(Base):
    def forward(self, x, state):
        scaled = (lambda a: a * SCALE)(self.pre(x, state))
        h = scaled.tanh()
        return h, (h,)


def closure_cell():
    gain = 1.0

    class Closure(Base):
        def forward(self, x, state):
            h = (self.pre(x, state) * gain).tanh()
            return h, (h,)

    def set_gain(value):
        nonlocal gain
        gain = value
    return Closure, set_gain


def set_global(name, value):
    globals()[name] = value


CHANGES = {  # cell class, how to change what it reads, how to put it back
    "a list's item": (ListGain, lambda: GAIN.__setitem__(0, 0.1), lambda: GAIN.__setitem__(0, 1.0)),
    "a rebound global": (ReboundGlobal, lambda: set_global("SCALE", 0.1), lambda: set_global("SCALE", 1.0)),
    "a module's attribute": (ModuleAttribute, lambda: setattr(settings, "SCALE", 0.1),
                             lambda: setattr(settings, "SCALE", 1.0)),
    "a class attribute": (ClassAttribute, lambda: setattr(ClassAttribute, "FACTOR", 0.1),
                          lambda: setattr(ClassAttribute, "FACTOR", 1.0)),
    "a called function's global": (HelperGlobal, lambda: set_global("HELPER_GAIN", 0.1),
                                   lambda: set_global("HELPER_GAIN", 1.0)),
    "a called function's default": (HelperDefault, lambda: setattr(with_default, "__defaults__", (0.1,)),
                                     lambda: setattr(with_default, "__defaults__", (1.0,))),
    "a global read in a lambda": (InLambda, lambda: set_global("SCALE", 0.1), lambda: set_global("SCALE", 1.0)),
}



def the_tape(cell):
    tapes = compile_cell(cell).tapes
    assert len(tapes) >= 1
    return next(reversed(tapes.values()))


def check_change_is_caught(cell, change, restore):
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    try:
        compiled_and_composed(cell, x)
        watch = the_tape(cell).watch
        assert watch.complete and watch.unchanged()
        change()
        assert not watch.unchanged()  # the watch sees it: not left to the recorded step
        (compiled, g_compiled), (composed, g_composed) = compiled_and_composed(cell, x)
        np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g_compiled, g_composed, rtol=1e-10, atol=1e-12)
    finally:
        restore()


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_the_watch_sees_each_kind_of_outside_value_change(kind):
    cls, change, restore = CHANGES[kind]
    tg.manual_seed(0)
    check_change_is_caught(cls().to(dtype=np.float64), change, restore)


def test_the_watch_sees_a_closure_variable_rebound():
    cls, set_gain = closure_cell()
    tg.manual_seed(0)
    check_change_is_caught(cls().to(dtype=np.float64), lambda: set_gain(0.1), lambda: set_gain(1.0))


class ByComputedName(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * getattr(settings, "SC" + "ALE")).tanh()
        return h, (h,)


def test_code_the_watch_cannot_follow_is_checked_by_a_recorded_step():
    tg.manual_seed(0)
    cell = ByComputedName().to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    try:
        compiled_and_composed(cell, x)
        assert not the_tape(cell).watch.complete
        settings.SCALE = 0.1
        (compiled, _), (composed, _) = compiled_and_composed(cell, x)
        np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
    finally:
        settings.SCALE = 1.0


class Counting(Base):
    def forward(self, x, state):
        COUNTER[0] += 1  # read and changed by every step, but no op uses it
        h = self.pre(x, state).tanh()
        return h, (h,)


def test_no_step_is_recorded_while_nothing_watched_changed_and_a_harmless_change_does_not_retrace(monkeypatch):
    recorded, traced = [], []
    record, trace = tape._record, tape.trace
    monkeypatch.setattr(tape, "_record", lambda *a: recorded.append(1) or record(*a))
    monkeypatch.setattr(tape, "trace", lambda *a: traced.append(1) or trace(*a))
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    tg.manual_seed(0)
    cell = ListGain().to(dtype=np.float64)
    for _ in range(3):
        compile_cell(cell).sequence(x, cell.initial_state(3))
    assert len(traced) == 1 and len(recorded) == 2  # the two steps of the one trace, none per call after
    recorded.clear(), traced.clear()
    cell = Counting().to(dtype=np.float64)
    compile_cell(cell).sequence(x, cell.initial_state(3))
    for _ in range(3):
        COUNTER[0] += 10  # changed between calls (a replay does not run forward, so never by the calls)
        compile_cell(cell).sequence(x, cell.initial_state(3))
    compile_cell(cell).sequence(x, cell.initial_state(3))
    # each change sends the next call to the recorded step, which finds that the tape still holds (and
    # the watch takes the new value); nothing is traced again, and the last call records nothing
    assert len(traced) == 1 and len(recorded) == 2 + 3


OFFSET = Tensor(np.zeros(3))  # a constant tensor, changed in place below


class ConstantTensor(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) + OFFSET).tanh()
        return h, (h,)


def test_the_watch_sees_a_constant_tensor_changed_in_place():
    tg.manual_seed(0)
    check_change_is_caught(ConstantTensor().to(dtype=np.float64), lambda: OFFSET.data.__setitem__(0, 0.3),
                           lambda: OFFSET.data.__setitem__(0, 0.0))


def test_the_built_in_cells_are_watched_completely():
    from tinygrad_rnn import registry
    from tinygrad_rnn.nn import Recurrent
    for name in ("rnn", "lstm", "gru", "peephole"):
        for hidden in (4, 128):  # (128: weights of more than 4096 elements, summarised by shape, not hashed)
            rnn = Recurrent(registry.cells.get(name), 8, hidden, path="compiled")
            rnn(Tensor(np.ones((2, 3, 8), np.float32)))
            assert the_tape(rnn.cells[0]).watch.complete, (name, hidden)


def test_plain_state_counts_a_module_by_identity():
    assert tape.plain_state(np) == ("module", "numpy", id(np))
    assert tape.plain_state(sys.modules[__name__])[0] == "module"


ALPHA = [1.0]


def scaled_tanh(a):
    return (a * ALPHA[0]).tanh()


class HoldsFunction(Base):
    def __init__(self):
        super().__init__()
        self.activation = scaled_tanh  # a function held by the cell: its own module's names are watched too

    def forward(self, x, state):
        h = self.activation(self.pre(x, state))
        return h, (h,)


def test_the_watch_follows_a_function_the_cell_holds():
    tg.manual_seed(0)
    check_change_is_caught(HoldsFunction().to(dtype=np.float64), lambda: ALPHA.__setitem__(0, 0.1),
                           lambda: ALPHA.__setitem__(0, 1.0))


class Scaler:
    """A callable object: what it does depends on state the watch cannot tell from names."""

    def __init__(self):
        self.gain = 1.0

    def __call__(self, a):
        return a * self.gain


class HoldsCallable(Base):
    def __init__(self):
        super().__init__()
        self.scaler = Scaler()

    def forward(self, x, state):
        h = self.scaler(self.pre(x, state)).tanh()
        return h, (h,)


def test_the_watch_sees_the_state_of_a_callable_object_the_cell_holds():
    # (plain_state counts a callable by identity: the key does not see its state, the watch must)
    tg.manual_seed(0)
    cell = HoldsCallable().to(dtype=np.float64)
    check_change_is_caught(cell, lambda: setattr(cell.scaler, "gain", 0.1), lambda: setattr(cell.scaler, "gain", 1.0))


CALL_GAIN = [1.0]


class GlobalScaler:
    """Its __call__, which Python runs without the code naming it, reads a module-level value."""

    def __call__(self, a):
        return a * CALL_GAIN[0]


class HoldsGlobalScaler(Base):
    def __init__(self):
        super().__init__()
        self.scaler = GlobalScaler()

    def forward(self, x, state):
        h = self.scaler(self.pre(x, state)).tanh()
        return h, (h,)


def test_the_watch_reads_special_methods_python_calls_without_a_name():
    tg.manual_seed(0)
    check_change_is_caught(HoldsGlobalScaler().to(dtype=np.float64), lambda: CALL_GAIN.__setitem__(0, 0.1),
                           lambda: CALL_GAIN.__setitem__(0, 1.0))


REBOUND = 1.0  # a number (compared as it is) that becomes a list (which must be compared by content)


def rebound_gain():
    return REBOUND if isinstance(REBOUND, float) else REBOUND[0]


class ReadsRebound(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * rebound_gain()).tanh()
        return h, (h,)


def test_a_name_rebound_to_a_mutable_value_is_then_checked_by_the_recorded_step():
    tg.manual_seed(0)
    cell = ReadsRebound().to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    try:
        compiled_and_composed(cell, x)
        set_global("REBOUND", [1.0])  # the same gain: the recorded step finds the tape still holds
        compiled_and_composed(cell, x)
        REBOUND[0] = 0.1  # changed in place: the list is the same object
        (compiled, _), (composed, _) = compiled_and_composed(cell, x)
        np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
    finally:
        set_global("REBOUND", 1.0)


def test_by_default_a_step_is_recorded_before_every_sequence(monkeypatch):
    monkeypatch.delenv("TINYGRAD_RNN_WATCH")  # (this file switches the watch on)
    recorded, record = [], tape._record
    monkeypatch.setattr(tape, "_record", lambda *a: recorded.append(1) or record(*a))
    tg.manual_seed(0)
    cell = ListGain().to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    for _ in range(3):
        compile_cell(cell).sequence(x, cell.initial_state(3))
    assert not the_tape(cell).watch.complete
    assert len(recorded) == 2 + 2  # the trace's two steps, then one before each later sequence


class KeepsLastState(Base):
    def forward(self, x, state):
        h = self.pre(x, state).tanh()
        self.last_h = h.numpy()  # kept for a plot: the cell's state changes whenever forward runs
        return h, (h,)


def test_a_forward_that_keeps_a_value_on_the_cell_is_not_traced_again_every_call(monkeypatch):
    traced, trace = [], tape.trace
    monkeypatch.setattr(tape, "trace", lambda *a: traced.append(1) or trace(*a))
    tg.manual_seed(0)
    cell = KeepsLastState().to(dtype=np.float64)
    for batch in (3, 4, 3, 4, 3, 4, 3, 4):
        compile_cell(cell).sequence(Tensor(np.ones((batch, 6, 2))), cell.initial_state(batch))
    # the first call of each batch size traces, and the third call: the batch-3 tape was kept under the
    # state its trace left, and the batch-4 trace left another (last_h of 4 rows). From then on the
    # state is one a tape was kept under (a replay does not run forward). Keyed only by the state before
    # tracing, these 8 calls traced 4 times, and a cell fed varying batches traced at every call.
    assert len(traced) == 3
