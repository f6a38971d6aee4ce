"""A fourth adversarial review of the compiled tape's watch (tinygrad_rnn/tape_watch.py).

Each case: a cell, one compiled call, a change to something its step reads, then the compiled answer
must equal the composed unroll in float64 (and the change must move the composed answer, so the test can
fail). At watchfix3 (dd7b7ec) each of the first eight cases was missed (the watch was complete and unchanged()
after the change, so no step was recorded and the stale tape was replayed); each is caught since. None of them is in tests/test_tape_watch.py
or tests/test_tape_watch_review{,2,3}.py.

Where a cell is given something from outside, it is given it in the test (as a plugin's constructor
argument or a notebook cell would), not in the cell's __init__: the watch reads __init__'s code, and a
global named there would be watched by chance.
Two more at the end: a cell reading a types.SimpleNamespace config recorded a step before every call (a
cost, not a wrong answer), and one reading a global dict that contains itself could not be compiled (Watch raised).
"""
import operator
import os
import types

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor
from tinygrad_rnn import tape
from tinygrad_rnn.nn import Module, compile_cell, unroll

from watch_cells import Base, follows_the_change, last_watch

pytestmark = pytest.mark.usefixtures("watch_on")  # (the watch is off by default)




X = np.random.default_rng(1).standard_normal((3, 6, 2))


def compiled_and_composed(cell):
    x = Tensor(X)
    outputs = []
    for runner in (compile_cell(cell).sequence, lambda x, s: unroll(cell, x, s)):
        out, _ = runner(x, cell.initial_state(x.shape[0]))
        outputs.append(out.numpy())
    return outputs





def check(make_cell, change):
    tg.manual_seed(0)
    follows_the_change(make_cell().to(dtype=np.float64), change)


class Scaler:
    """A plain settings-holding helper (not a Module), as a user writes one."""

    def __init__(self, gain):
        self.gain = gain

    def apply(self, a):
        return (a * self.gain).tanh()


class ActivationCell(Base):
    """A plugin cell that takes its activation as a constructor argument (any callable)."""

    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def forward(self, x, state):
        h = self.activation(self.pre(x, state))
        return h, (h,)


# ---- 1. a bound method of a plain object, given to the cell (activation=scaler.apply) ------------------------
# plain_state counts a bound method as a hashable callable, ("object", method): a method compares equal while
# its __self__ is the same object, whatever that object now holds. _follow's MethodType branch reads
# __func__'s code and follows __self__ but watches no summary of __self__'s state (only a callable
# object's vars are watched, ("vars", id)).
def test_a_bound_method_given_to_the_cell_whose_object_changes():
    scaler = Scaler(1.0)
    check(lambda: ActivationCell(scaler.apply), lambda: setattr(scaler, "gain", 0.5))


# ---- 2. the same, held by a module-level name (ACTIVATION = scaler.apply in a notebook) -----------------------
# (the global is watched by _summary → plain_state: the same ("object", method), equal while __self__ is)
GLOBAL_SCALER = Scaler(1.0)
ACTIVATION = GLOBAL_SCALER.apply


class GlobalBoundMethodCell(Base):
    def forward(self, x, state):
        h = ACTIVATION(self.pre(x, state))
        return h, (h,)


def test_a_global_bound_method_whose_object_changes():
    try:
        check(GlobalBoundMethodCell, lambda: setattr(GLOBAL_SCALER, "gain", 0.5))
    finally:
        GLOBAL_SCALER.gain = 1.0


# ---- 3. another Module's forward given as the activation (activation=norm.forward): a module that is not a
# sub-module of the cell, so its plain attributes are in no key; _follow reaches it through __self__ but
# watches a Module's vars nowhere ------------------------------------------------------------------------------
class GainLayer(Module):
    def __init__(self):
        self.gain = 1.0

    def forward(self, a):
        return (a * self.gain).tanh()


def test_another_modules_bound_forward_whose_attribute_changes():
    layer = GainLayer()
    check(lambda: ActivationCell(layer.forward), lambda: setattr(layer, "gain", 0.5))


# ---- 4. a bound method of a builtin container (gain_of=GAINS.get): _follow returns at once for a
# types.BuiltinFunctionType, and plain_state's ("object", method) compares __self__ by identity -----------
class GainOfCell(Base):
    def __init__(self, gain_of):
        super().__init__()
        self.gain_of = gain_of

    def forward(self, x, state):
        h = (self.pre(x, state) * self.gain_of("gain")).tanh()
        return h, (h,)


def test_a_dict_get_given_to_the_cell_whose_dict_changes():
    gains = {"gain": 1.0}
    check(lambda: GainOfCell(gains.get), lambda: gains.__setitem__("gain", 0.5))


# ---- 5. os.getenv in forward: a library function, whose code is not read (_function's library branch), so
# the os.environ it reads is watched by no name the cell's code loads (os.environ[...] itself is caught) ----
class GetenvCell(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * float(os.getenv("TAPE_WATCH_REVIEW4_GAIN", "1.0"))).tanh()
        return h, (h,)


def test_os_getenv_read_in_forward(monkeypatch):
    monkeypatch.delenv("TAPE_WATCH_REVIEW4_GAIN", raising=False)
    check(GetenvCell, lambda: monkeypatch.setenv("TAPE_WATCH_REVIEW4_GAIN", "0.5"))


# ---- 6. operator.attrgetter("GAIN")(config): the attribute name is a string constant, not in co_names, and
# attrgetter is not in DYNAMIC, so the watch stays complete; the module is summarised by identity -----------
attr_config = types.ModuleType("tape_watch_review4_config")
attr_config.GAIN = 1.0


class AttrgetterCell(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * operator.attrgetter("GAIN")(attr_config)).tanh()
        return h, (h,)


def test_operator_attrgetter_on_a_config_module():
    try:
        check(AttrgetterCell, lambda: setattr(attr_config, "GAIN", 0.5))
    finally:
        attr_config.GAIN = 1.0


# ---- 7. a dict of steps applied in its order, reordered (a pipeline of named transforms) ---------------------
# plain_state (the key: the cell's own dict) and _summary (the watch: a global dict) both sort a dict's items by
# repr(key): two dicts with the same items in another order give the same summary, though a dict's order is
# its own (insertion order, Python 3.7+) and the code iterates it
def halve(a):
    return a * 0.5


def shift(a):
    return a + 0.3


class PipelineCell(Base):
    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def forward(self, x, state):
        a = self.pre(x, state)
        for step in self.steps.values():
            a = step(a)
        h = a.tanh()
        return h, (h,)


def test_the_cells_own_dict_of_steps_reordered():
    made = []
    check(lambda: made.append(PipelineCell({"halve": halve, "shift": shift})) or made[0],
          lambda: setattr(made[0], "steps", {"shift": shift, "halve": halve}))


STEPS = {"halve": halve, "shift": shift}


class GlobalPipelineCell(Base):
    def forward(self, x, state):
        a = self.pre(x, state)
        for step in STEPS.values():
            a = step(a)
        h = a.tanh()
        return h, (h,)


def test_a_global_dict_of_steps_reordered_in_place():
    try:
        check(GlobalPipelineCell, lambda: STEPS.__setitem__("halve", STEPS.pop("halve")))  # now shift, halve
    finally:
        STEPS.clear()
        STEPS.update(halve=halve, shift=shift)


# ---- over-triggering: a types.SimpleNamespace config (its state is all in its __dict__) -------------------------
# _state_in_dict calls SimpleNamespace (a C class) opaque, so the watch is incomplete and a step is recorded
# before every compiled call, though nothing changed (argparse.Namespace and a dataclass are watched)
NAMESPACE_CONFIG = types.SimpleNamespace(gain=1.0)


class NamespaceConfigCell(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * NAMESPACE_CONFIG.gain).tanh()
        return h, (h,)


def test_a_simple_namespace_config_records_no_step_per_call(monkeypatch):
    tg.manual_seed(0)
    cell = NamespaceConfigCell().to(dtype=np.float64)
    compiled_and_composed(cell)
    recorded = []
    record = tape._record
    monkeypatch.setattr(tape, "_record", lambda *a: recorded.append(1) or record(*a))
    for _ in range(3):
        compile_cell(cell).sequence(Tensor(X), cell.initial_state(X.shape[0]))
    assert last_watch(cell).complete and recorded == []
    try:  # and a change to it is still seen by the watch itself
        NAMESPACE_CONFIG.gain = 0.5
        assert not last_watch(cell).unchanged()
    finally:
        NAMESPACE_CONFIG.gain = 1.0


# ---- building the watch raises: a cell reading a global dict that contains itself (a tree with parent links) ----
# _summary's fast path for dicts, lists and tuples (tape_watch.py, the `kind is dict` line) recurses without
# plain_state's `seen`: RecursionError out of Watch(cell) in trace(), so compile_cell(cell).sequence raises
# where unroll runs
TREE = {"gain": 1.0, "children": []}
TREE["children"].append({"gain": 0.5, "parent": TREE})


class ReadsCyclicDict(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * TREE["gain"]).tanh()
        return h, (h,)


def test_a_cell_reading_a_global_dict_that_contains_itself_compiles():
    tg.manual_seed(0)
    cell = ReadsCyclicDict().to(dtype=np.float64)
    compiled, composed = compiled_and_composed(cell)
    np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
