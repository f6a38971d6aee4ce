"""A third adversarial review of the compiled tape's watch (tinygrad_rnn/tape_watch.py).

Each case: a cell, one compiled call, a change to something its step reads, then the compiled answer
must equal the composed unroll in float64 (and the change must move the composed answer, so the
test can fail). Every case in MISSED was missed at e6c0f17 (the watch was complete and unchanged()
after the change, so no step was recorded and the stale tape was replayed), and is caught since. None of them is in
tests/test_tape_watch.py, tests/test_tape_watch_review.py or tests/test_tape_watch_review2.py.
Two more at the end: a cell that read NumPy anywhere the watch reads was left incomplete (a step recorded
before every call: a cost, not a wrong answer), and unchanged() raised on an object whose == is elementwise.
"""
import functools
import sys
import types

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor
from tinygrad_rnn.nn import Module

from watch_cells import Base, follows_the_change, last_watch, library
from watch_cells import compiled_and_composed as compiled_and_composed_on

pytestmark = pytest.mark.usefixtures("watch_on")  # (the watch is off by default)






X = np.random.default_rng(1).standard_normal((3, 6, 2))


def compiled_and_composed(cell):
    return compiled_and_composed_on(cell, Tensor(X))



def check(cell_class, change, restore=lambda cell: None, setup=lambda cell: None):
    """change(cell) after one compiled call (setup(cell): what the cell is given from outside first)."""
    tg.manual_seed(0)
    cell = cell_class().to(dtype=np.float64)
    setup(cell)
    follows_the_change(cell, lambda: change(cell), lambda: restore(cell))


def set_global(name, value):
    return lambda cell: globals().__setitem__(name, value)


# ---- 1. a function's code replaced in place (IPython's %autoreload 2 does this on every edit) ---------------
# (_function watches __defaults__, __kwdefaults__ and vars(fn); the function object itself is compared by
# identity, and fn.__code__ = ... keeps it)
class EditedInPlace(Base):
    def forward(self, x, state):
        h = self.pre(x, state).tanh()
        return h, (h,)


def _edited_forward(self, x, state):
    h = (self.pre(x, state) * 0.5).tanh()
    return h, (h,)


_ORIGINAL_CODE = EditedInPlace.forward.__code__


def swap_code(cell):
    EditedInPlace.forward.__code__ = _edited_forward.__code__


def restore_code(cell):
    EditedInPlace.forward.__code__ = _ORIGINAL_CODE


# ---- 2. a sub-object replaced by one of another class with the same __qualname__ ----------------------------
# (plain_state summarises an object, and a sub-module, by type(value).__qualname__ and its vars: two plugin
# modules' `Act`, or one module's class before and after importlib.reload, give the same key; the watch
# leaves the cell's own attributes to the key)
acts_a = library("review3_acts_a", """
    class Act:
        def apply(self, a):
            return a.tanh()
""")
acts_b = library("review3_acts_b", """
    class Act:
        def apply(self, a):
            return (a * 0.5).tanh()
""")


class HoldsActObject(Base):
    def __init__(self):
        super().__init__()
        self.act = acts_a.Act()

    def forward(self, x, state):
        h = self.act.apply(self.pre(x, state))
        return h, (h,)


def swap_act(cell):
    cell.act = acts_b.Act()


# ---- 3. functools.cached_property invalidated by `del` (its function is never read: a library object) --------
CACHED_GAIN = 1.0


class CachedGain(Base):
    @functools.cached_property
    def gain(self):
        return CACHED_GAIN

    def forward(self, x, state):
        h = (self.pre(x, state) * self.gain).tanh()
        return h, (h,)


def invalidate(cell):
    globals()["CACHED_GAIN"] = 0.5
    cell.__dict__.pop("gain", None)  # the documented way to have a cached_property computed again


# ---- 4. a relative import inside a plugin package whose submodule shares a top-level module's name ------------
# (_code follows sys.modules.get(instruction.argval): for `from .math import GAIN` that is "math", the
# standard library's, not the package's review3_pkg.math)
pkg = library("review3_pkg", "")
pkg.__path__ = []
pkg_math = library("review3_pkg.math", "GAIN = 1.0\n")
pkg.math = pkg_math
pkg_cells = library("review3_pkg.cells", """
    def forward(self, x, state):
        from .math import GAIN
        h = (self.pre(x, state) * GAIN).tanh()
        return h, (h,)
""", __package__="review3_pkg")


class RelativeImport(Base):
    forward = pkg_cells.forward


# ---- 5. a name rebound to a function that, at that moment, does the same: refresh() never reads its code -----
# (still_holds records a step, it holds, watch.refresh() takes the new values; the new function's globals
# were never looked up, so a later change to them is not watched)
ACTIVATION_SCALED = False


def plain_tanh(a):
    return a.tanh()


def my_tanh(a):
    return (a * 0.5).tanh() if ACTIVATION_SCALED else a.tanh()


ACTIVATION = plain_tanh


class CallsActivation(Base):
    def forward(self, x, state):
        h = ACTIVATION(self.pre(x, state))
        return h, (h,)


def rebind_then_change(cell):
    globals()["ACTIVATION"] = my_tanh
    compiled_and_composed(cell)  # the watch sees ACTIVATION changed, records a step: it holds, refresh()
    globals()["ACTIVATION_SCALED"] = True


def restore_activation(cell):
    globals().update(ACTIVATION=plain_tanh, ACTIVATION_SCALED=False)


# ---- 6. a method of a Tensor subclass the cell is given (_follow returns at once for any Tensor, so the
# subclass is a holder only where code the watch reads names it) ------------------------------------------------
TENSOR_GAIN = 1.0


class GainTensor(Tensor):
    def gained(self, a):
        return a * self * TENSOR_GAIN


class HoldsGivenTensor(Base):
    def forward(self, x, state):
        h = self.ones.gained(self.pre(x, state)).tanh()
        return h, (h,)


def give_gain_tensor(cell):  # (a tensor handed in from outside, as a plugin's config might)
    cell.ones = GainTensor(Tensor.ones(3, dtype=np.float64).data)


# ---- 7. a class attribute served by a metaclass's __getattr__ (special methods are read along the class's
# MRO, not the metaclass's) ------------------------------------------------------------------------------------
META_GAIN = 1.0


class GainMeta(type(Module)):
    def __getattr__(cls, name):
        if name == "GAIN":
            return META_GAIN
        raise AttributeError(name)


class MetaGetattrCell(Base, metaclass=GainMeta):
    def forward(self, x, state):
        h = (self.pre(x, state) * type(self).GAIN).tanh()
        return h, (h,)


# ---- 8. an attribute read by a `match` class pattern (its names are in co_consts, not co_names) --------------
MATCH_GAIN = 1.0


class Knob:
    @property
    def gain(self):
        return MATCH_GAIN


class MatchCell(Base):
    def __init__(self):
        super().__init__()
        self.knob = Knob()

    def forward(self, x, state):
        match self.knob:
            case Knob(gain=g):
                pass
        h = (self.pre(x, state) * g).tanh()
        return h, (h,)


# ---- 9. a module replaced in sys.modules, imported inside forward (monkeypatch.setitem(sys.modules, ...)) -------
# (_code follows the module sys.modules held at tracing; which module the name maps to is not watched)
swap_cfg = library("review3_swap_cfg", "GAIN = 1.0\n")
swap_cfg_other = types.ModuleType("review3_swap_cfg")
swap_cfg_other.GAIN = 0.5


class ImportsSwappedModule(Base):
    def forward(self, x, state):
        import review3_swap_cfg
        h = (self.pre(x, state) * review3_swap_cfg.GAIN).tanh()
        return h, (h,)


# ---- 10. a cell in a user package whose top-level name is also a standard-library module's ("code/",
# "signal/", "trace/", ...): _library(fn.__globals__["__name__"]) calls it the standard library's, so its
# code is never read ----------------------------------------------------------------------------------------------
user_code = library("code.review3_cells", """
    GAIN = 1.0

    def activate(a):
        return (a * GAIN).tanh()
""")


class CallsUserPackageNamedCode(Base):
    def forward(self, x, state):
        h = user_code.activate(self.pre(x, state))
        return h, (h,)


MISSED = {
    "a function's __code__ replaced in place (autoreload)": (EditedInPlace, swap_code, restore_code),
    "a sub-object swapped for another class of the same __qualname__": (HoldsActObject, swap_act),
    "a cached_property invalidated by del": (CachedGain, invalidate, set_global("CACHED_GAIN", 1.0)),
    "from .math import GAIN in a plugin package": (
        RelativeImport, lambda cell: setattr(pkg_math, "GAIN", 0.5), lambda cell: setattr(pkg_math, "GAIN", 1.0)),
    "a function rebound, refresh(), then its global changed": (CallsActivation, rebind_then_change, restore_activation),
    "a Tensor subclass's method reads a global": (
        HoldsGivenTensor, set_global("TENSOR_GAIN", 0.5), set_global("TENSOR_GAIN", 1.0), give_gain_tensor),
    "a metaclass __getattr__ reads a global": (
        MetaGetattrCell, set_global("META_GAIN", 0.5), set_global("META_GAIN", 1.0)),
    "a module replaced in sys.modules": (
        ImportsSwappedModule, lambda cell: sys.modules.__setitem__("review3_swap_cfg", swap_cfg_other),
        lambda cell: sys.modules.__setitem__("review3_swap_cfg", swap_cfg)),
    "a user package named like a standard-library module": (
        CallsUserPackageNamedCode, lambda cell: setattr(user_code, "GAIN", 0.5), lambda cell: setattr(user_code, "GAIN", 1.0)),
    "a match class pattern reads a property": (MatchCell, set_global("MATCH_GAIN", 0.5), set_global("MATCH_GAIN", 1.0)),
}


@pytest.mark.parametrize("case", sorted(MISSED))
def test_a_change_the_third_watch_missed_is_caught(case):
    check(*MISSED[case])


# ---- cost: a cell that reads NumPy anywhere in the code the watch reads records a step before every call --------
# (_holder: numpy's module has a PEP 562 __getattr__, so `"__getattr__" in vars(holder)` leaves the watch
# incomplete; the README's my_plugins.py `mgu` reads np.sqrt in its __init__, which the watch reads)
class NumpyInInit(Base):
    def __init__(self):
        super().__init__()
        self.bound = 1 / np.sqrt(self.hidden_size)

    def forward(self, x, state):
        h = self.pre(x, state).tanh()
        return h, (h,)


def test_a_cell_that_reads_numpy_is_watched_completely():
    """Else the watch is no fast path for most plugin cells: a step is recorded before every compiled sequence
    (for the README's mgu, H=32, B=16: 78 us a call, where unchanged() costs about 2 us)."""
    cell = NumpyInInit().to(dtype=np.float64)
    compiled_and_composed(cell)
    assert last_watch(cell).complete


# ---- unchanged() raises: a callable object compared by __eq__ that answers elementwise --------------------------
# (plain_state summarises a hashable callable as ("object", value); unchanged() compares the summaries with ==,
# which calls the object's __eq__ once it was rebound to another object; an array answer raises in bool())
ELEMENTWISE = np.array([True, False])


class ElementwiseGain:
    def __init__(self, gain):
        self.gain = gain

    def __eq__(self, other):  # as an array-like object's ==: one answer per element
        return ELEMENTWISE

    def __hash__(self):
        return id(self)

    def __call__(self, a):
        return a * self.gain


GAIN_OBJECT = ElementwiseGain(1.0)


class CallsGainObject(Base):
    def forward(self, x, state):
        h = GAIN_OBJECT(self.pre(x, state)).tanh()
        return h, (h,)


def test_a_global_rebound_to_an_object_with_an_elementwise_eq_does_not_break_the_compiled_call():
    check(CallsGainObject, set_global("GAIN_OBJECT", ElementwiseGain(0.5)),
          set_global("GAIN_OBJECT", GAIN_OBJECT))
