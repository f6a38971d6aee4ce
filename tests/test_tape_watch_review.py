"""An adversarial review of the compiled tape's watch (tinygrad_rnn/tape_watch.py).

Each case: a cell whose forward reads something from outside its own plain state, one compiled call,
a change to that thing, and a second compiled call that must equal the composed unroll in float64.
`MISSED` holds the cases where the first watch (57d0a8d) said unchanged() (no step is recorded)
although the step then did something else: each of these tests failed there and passes since the
watch reads a class whole, a module's names whichever code reads them, sets by value, functions'
attributes and defaults, callable objects' state. `HANDLED` holds cases of the same
kind that the watch (or its fallback, the recorded step) gets right. The other modules a plugin reads
are built with `library(...)`: real module objects whose functions and classes have that module's globals,
as `import mylib` gives.
"""
import functools
import os
import random
import threading
import types

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, tape
from tinygrad_rnn.nn import Module

from watch_cells import Base, compiled_and_composed, follows_the_change, last_watch, library

pytestmark = pytest.mark.usefixtures("watch_on")  # (the watch is off by default)






# ---- 1. a module read by two functions: the second function's attribute of it ----------------------------
# (_follow returns at `id(value) in self._values`: the module was followed once, with forward's names only)
config = library("review_config", "SCALE = 1.0\nOFFSET = 0.0\n")


def add_offset(a):
    return a + config.OFFSET  # the same module as forward reads, another attribute of it


class TwoFunctionsOneModule(Base):
    def forward(self, x, state):
        a = self.pre(x, state) * config.SCALE
        h = add_offset(a).tanh()
        return h, (h,)


# ---- 2. a method of a plain helper object (not a Module) that reads its module's global ----------------------
# (_follow's last branch follows vars(value) only: the methods of type(value) are never read)
normalisers = library("review_normalisers", """
    EPS = 1.0

    class Normaliser:
        def __init__(self):
            self.power = 1

        def apply(self, a):
            return a * EPS
""")


class HoldsHelperObject(Base):
    def __init__(self):
        super().__init__()
        self.norm = normalisers.Normaliser()

    def forward(self, x, state):
        h = self.norm.apply(self.pre(x, state)).tanh()
        return h, (h,)


# ---- 3. a sub-module's method other than forward -------------------------------------------------------------
# (Watch.__init__ reads each module's forward only; _code resolves `scaled` in the cell's class alone)
layers = library("review_layers", """
    GAIN = 1.0

    class Gain(Module):
        def forward(self, a):
            return a

        def scaled(self, a):
            return a * GAIN
""", Module=Module)


class CallsSubModuleMethod(Base):
    def __init__(self):
        super().__init__()
        self.gain = layers.Gain()

    def forward(self, x, state):
        h = self.gain.scaled(self.pre(x, state)).tanh()
        return h, (h,)


# ---- 4. super().forward(): a base class in another module whose forward reads that module's global -----------
# (_code follows getattr(cls, name): the most derived forward, never the overridden one super() calls)
basecells = library("review_basecells", """
    GAIN = 1.0

    class GainCell(Base):
        def forward(self, x, state):
            h = (self.pre(x, state) * GAIN).tanh()
            return h, (h,)
""", Base=Base)


class CallsSuper(basecells.GainCell):
    def forward(self, x, state):
        return super().forward(x, state)


# ---- 5. a module-level __getattr__ (PEP 562) ------------------------------------------------------------------
# (_follow watches only names found in vars(module); __getattr__ and what it reads are not followed)
lazy = library("review_lazy", """
    _VALUES = {"SCALE": 1.0}

    def __getattr__(name):
        try:
            return _VALUES[name]
        except KeyError:
            raise AttributeError(name) from None
""")


class ReadsLazyModule(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * lazy.SCALE).tanh()
        return h, (h,)


# ---- 6. a set of flags, changed in place (module-level, and held by the cell) ---------------------------------
# (plain_state: a set is unhashable and has no __dict__, so it is summarised by id(value); _follow walks its items)
ENABLED = {"offset"}


class ReadsGlobalSet(Base):
    def forward(self, x, state):
        a = self.pre(x, state)
        if "offset" in ENABLED:
            a = a + 0.5
        h = a.tanh()
        return h, (h,)


class HoldsSet(Base):
    def __init__(self):
        super().__init__()
        self.enabled = {"offset"}

    def forward(self, x, state):
        a = self.pre(x, state)
        if "offset" in self.enabled:
            a = a + 0.5
        h = a.tanh()
        return h, (h,)


# ---- 7. a class attribute of a plain object the cell holds -----------------------------------------------------
# (plain_state and _follow read vars(value) only, not type(value)'s attributes)
class Settings:
    scale = 1.0  # a class-level default: instances read it, vars(instance) does not hold it


class HoldsSettings(Base):
    def __init__(self):
        super().__init__()
        self.settings = Settings()

    def forward(self, x, state):
        h = (self.pre(x, state) * self.settings.scale).tanh()
        return h, (h,)


# ---- 8. a function attribute (a function's "static variable") -------------------------------------------------
# (_summary counts a function by identity; its __dict__ is in no summary)
def gained(a):
    return a * gained.gain


gained.gain = 1.0


class CallsFunctionWithAttribute(Base):
    def forward(self, x, state):
        h = gained(self.pre(x, state)).tanh()
        return h, (h,)


# ---- 9. a function passed as a default argument --------------------------------------------------------------
# (_function watches __defaults__ by identity but does not _follow them: the default's code is never read)
ACT_GAIN = [1.0]


def scaled_tanh(a):
    return (a * ACT_GAIN[0]).tanh()


def activate(a, activation=scaled_tanh):
    return activation(a)


class CallsDefaultFunction(Base):
    def forward(self, x, state):
        h = activate(self.pre(x, state))
        return h, (h,)


# ---- 10. forward replaced on the class after a compiled call ---------------------------------------------------
# (nothing watches cls.forward itself: Watch.__init__ reads it once; the key holds no class)
class Patched(Base):
    def forward(self, x, state):
        h = self.pre(x, state).tanh()
        return h, (h,)


def relu_forward(self, x, state):
    h = self.pre(x, state).relu()
    return h, (h,)


def set_attr(obj, name, value):
    return lambda: setattr(obj, name, value)


MISSED = {  # cell factory, the change, how to undo it
    "a module's attribute read in a second function": (TwoFunctionsOneModule, set_attr(config, "OFFSET", 0.5),
                                                       set_attr(config, "OFFSET", 0.0)),
    "a plain helper object's method reads a global": (HoldsHelperObject, set_attr(normalisers, "EPS", 0.1),
                                                      set_attr(normalisers, "EPS", 1.0)),
    "a sub-module's method other than forward": (CallsSubModuleMethod, set_attr(layers, "GAIN", 0.1),
                                                 set_attr(layers, "GAIN", 1.0)),
    "super().forward in another module": (CallsSuper, set_attr(basecells, "GAIN", 0.1),
                                          set_attr(basecells, "GAIN", 1.0)),
    "a module __getattr__": (ReadsLazyModule, lambda: lazy._VALUES.__setitem__("SCALE", 0.1),
                             lambda: lazy._VALUES.__setitem__("SCALE", 1.0)),
    "a module-level set changed in place": (ReadsGlobalSet, lambda: ENABLED.discard("offset"),
                                            lambda: ENABLED.add("offset")),
    "a set the cell holds changed in place": (HoldsSet, None, None),  # (the change needs the cell)
    "a class attribute of a plain object the cell holds": (HoldsSettings, set_attr(Settings, "scale", 0.1),
                                                           set_attr(Settings, "scale", 1.0)),
    "a function attribute": (CallsFunctionWithAttribute, set_attr(gained, "gain", 0.1),
                             set_attr(gained, "gain", 1.0)),
    "a default argument's function reads a global": (CallsDefaultFunction, lambda: ACT_GAIN.__setitem__(0, 0.1),
                                                     lambda: ACT_GAIN.__setitem__(0, 1.0)),
    "forward replaced on the class": (Patched, set_attr(Patched, "forward", relu_forward),
                                      set_attr(Patched, "forward", Patched.forward)),
}




def check(cell, change, restore):
    follows_the_change(cell, change, restore)


@pytest.mark.parametrize("case", sorted(MISSED))
def test_a_change_the_first_watch_missed_is_caught(case):
    factory, change, restore = MISSED[case]
    tg.manual_seed(0)
    cell = factory().to(dtype=np.float64)
    if change is None:  # the set the cell holds
        change, restore = (lambda: cell.enabled.discard("offset")), (lambda: cell.enabled.add("offset"))
    check(cell, change, restore)


# ---- cases of the same kind that are handled: by the watch itself ("watch"), or by the recorded step the
# watch falls back to where it cannot follow the code ("fallback": watch.complete is False) -------------------
mylib = library("review_mylib", """
    import dataclasses
    import functools
    import numpy as np

    @dataclasses.dataclass
    class Config:
        scale: float = 1.0

    CONFIG = Config()
    FACTOR = 1.0
    TABLE = np.ones(3)
    sub = types.ModuleType("review_mylib.sub")
    sub.SCALE = 1.0

    def scale(a):
        return a * FACTOR

    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return fn(*args)
        return wrapper

    @logged
    def decorated(a):
        return a * FACTOR

    class Mixin:
        def mixed(self, a):
            return a * FACTOR
""", types=types)
CONFIG = mylib.CONFIG  # from mylib import CONFIG


def cell_of(expression, bases=(Base,), **namespace):
    """A cell whose forward is h = (<expression of a>).tanh(), a = the pre-activation."""
    source = f"def forward(self, x, state):\n    a = self.pre(x, state)\n    h = ({expression}).tanh()\n" \
             f"    return h, (h,)\n"
    exec(source, {**globals(), **namespace}, namespace)
    return type("Cell", bases, namespace)


def gain_property(self):
    return mylib.FACTOR


HANDLED = {  # expression, how forward reads it, the change, undo, who catches it
    "from mylib import CONFIG; CONFIG.scale = ...": (
        lambda: cell_of("a * CONFIG.scale"), set_attr(CONFIG, "scale", 0.1), set_attr(CONFIG, "scale", 1.0), "watch"),
    "mylib.sub.SCALE (a chain through a sub-module)": (
        lambda: cell_of("a * mylib.sub.SCALE"), set_attr(mylib.sub, "SCALE", 0.1), set_attr(mylib.sub, "SCALE", 1.0),
        "watch"),
    "mylib.scale(a) reads mylib.FACTOR": (
        lambda: cell_of("mylib.scale(a)"), set_attr(mylib, "FACTOR", 0.1), set_attr(mylib, "FACTOR", 1.0), "watch"),
    "a functools.wraps-decorated helper": (
        lambda: cell_of("mylib.decorated(a)"), set_attr(mylib, "FACTOR", 0.1), set_attr(mylib, "FACTOR", 1.0),
        "watch"),
    "a method inherited from a mixin in another module": (
        lambda: cell_of("self.mixed(a)", (Base, mylib.Mixin)), set_attr(mylib, "FACTOR", 0.1),
        set_attr(mylib, "FACTOR", 1.0), "watch"),
    "a staticmethod reading another module's global": (
        lambda: cell_of("self.helper(a)", helper=staticmethod(mylib.scale)), set_attr(mylib, "FACTOR", 0.1),
        set_attr(mylib, "FACTOR", 1.0), "watch"),
    "a NumPy array in another module changed in place": (
        lambda: cell_of("a * Tensor(mylib.TABLE)"), lambda: mylib.TABLE.__setitem__(0, 0.1),
        lambda: mylib.TABLE.__setitem__(0, 1.0), "watch"),
    "os.environ read in forward": (
        lambda: cell_of("a * float(os.environ.get('REVIEW_GAIN', '1'))"),
        lambda: os.environ.__setitem__("REVIEW_GAIN", "0.1"), lambda: os.environ.pop("REVIEW_GAIN", None),
        "fallback"),  # (os._Environ's classes are ABCs with __slots__: its state is not all in a summary)
    "a property on the cell's class reading a global": (
        lambda: cell_of("a * self.gain", gain=property(gain_property)), set_attr(mylib, "FACTOR", 0.1),
        set_attr(mylib, "FACTOR", 1.0), "watch"),  # (its getter is read as the class's methods are)
    "a functools.partial helper": (
        lambda: cell_of("helper(a)", helper=functools.partial(mylib.scale)), set_attr(mylib, "FACTOR", 0.1),
        set_attr(mylib, "FACTOR", 1.0), "fallback"),
}


def test_the_changes_the_watch_handles_give_the_composed_answer():
    for case, (factory, change, restore, who) in sorted(HANDLED.items()):
        tg.manual_seed(0)
        cell = factory()().to(dtype=np.float64)
        x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
        compiled_and_composed(cell, x)
        assert last_watch(cell).complete == (who == "watch"), case
        try:
            change()
            if who == "watch":
                assert not last_watch(cell).unchanged(), case  # seen by the watch, not left to the recorded step
        finally:
            restore()
        check(cell, change, restore)


def test_the_built_in_cells_record_no_step_per_call(monkeypatch):
    """Each built-in cell (and option that changes its forward) is watched completely, and calls after the
    first record no step: the watch never over-triggers on them."""
    from tinygrad_rnn import registry
    from tinygrad_rnn.nn import Recurrent
    recorded = []
    record = tape._record
    monkeypatch.setattr(tape, "_record", lambda *a: recorded.append(1) or record(*a))
    x = Tensor(np.random.default_rng(1).standard_normal((2, 4, 3)).astype(np.float32))
    for name, options in [("rnn", {}), ("rnn", {"nonlinearity": "elu"}), ("lstm", {"forget_bias": 1.0}),
                          ("gru", {}), ("gru", {"variant": "cho"}), ("peephole", {})]:
        rnn = Recurrent(registry.cells.get(name), 3, 5, num_layers=2, path="compiled", **options)
        rnn(x)
        recorded.clear()
        for _ in range(3):
            rnn(x)
        assert recorded == [], (name, options)
        assert all(last_watch(cell).complete for cell in rnn.cells), (name, options)


class NaiveConfig:
    """A config object whose __getattr__ raises KeyError, not AttributeError, for a missing name."""

    def __init__(self):
        self._values = {"scale": 1.0}

    def __getattr__(self, name):
        return self._values[name]


def check_odd(attribute):
    tg.manual_seed(0)
    cell = cell_of("a")().to(dtype=np.float64)
    cell.odd = attribute
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    compiled, composed = compiled_and_composed(cell, x)
    np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)
    return last_watch(cell)


def test_a_cell_holding_an_rng_a_lock_or_a_file_compiles_and_opaque_ones_leave_the_watch_incomplete():
    with open(os.devnull, "w") as file:
        # all four are the standard library's or NumPy's objects, whose state the watch does not read
        for attribute, complete in [(np.random.default_rng(0), False), (threading.Lock(), False),
                                    (random.Random(0), False), (file, False)]:
            assert check_odd(attribute).complete == complete, type(attribute)


def test_a_cell_holding_a_config_whose_getattr_raises_key_error_compiles():
    """plain_state's hasattr(value, "__array__") (tape_watch.py line 45, and Watch's _is_module, line 73)
    let the KeyError of a naive __getattr__ through: compile_cell(cell).sequence raises KeyError."""
    check_odd(NaiveConfig())
