"""A second adversarial review of the compiled tape's watch (tinygrad_rnn/tape_watch.py).

Each case: a cell whose forward reads something from outside its own plain state, one compiled call,
a change to that thing, and a second compiled call that must equal the composed unroll in float64.
Every case here was missed by the watch at f6b8975 (it was complete and said unchanged() after the
change, so no step was recorded and the stale tape ran), and is caught since: names watched whether
they exist yet or not, imports inside the code followed, hasattr and __dict__ reads counted as dynamic,
__init__ read, a container subclass's class a holder, a metaclass in the look-up, library callables
and Python ufuncs incomplete. None of them is in
tests/test_tape_watch.py or tests/test_tape_watch_review.py. Two more tests at the end: building the watch
raised for a torch tensor read from outside the cell (it compiled before the watch), and a cell choosing
by an Enum member left the watch incomplete (a step recorded before every compiled sequence).
"""
import builtins
import enum
import functools

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, tape

from watch_cells import Base, compiled_and_composed, follows_the_change, last_watch, library

pytestmark = pytest.mark.usefixtures("watch_on")  # (the watch is off by default)








def check(cell_class, change, restore):
    tg.manual_seed(0)
    follows_the_change(cell_class().to(dtype=np.float64), change, restore)


def set_attr(obj, name, value):
    return lambda: setattr(obj, name, value)


def del_attr(obj, name):
    return lambda: obj.__dict__.pop(name, None)


# ---- 1. an import statement inside forward (a lazy import, or one that avoids an import cycle) ------------
# (_code looks names up in the function's globals only: IMPORT_NAME/IMPORT_FROM names are not there, and the
# module they name never becomes a holder)
lazy_cfg = library("review2_lazy_cfg", "GAIN = 1.0\n")


class ImportsInForward(Base):
    def forward(self, x, state):
        import review2_lazy_cfg
        h = (self.pre(x, state) * review2_lazy_cfg.GAIN).tanh()
        return h, (h,)


class ImportsFromInForward(Base):
    def forward(self, x, state):
        from review2_lazy_cfg import GAIN
        h = (self.pre(x, state) * GAIN).tanh()
        return h, (h,)


# ---- 2. an optional module attribute: hasattr / __dict__.get (a name missing at tracing is not watched) ----
# (_look_up watches a name only where it is found: `if found:`)
opt_cfg = library("review2_opt_cfg", "SCALE = 1.0\n")


class HasattrOptional(Base):
    def forward(self, x, state):
        a = self.pre(x, state)
        if hasattr(opt_cfg, "BIAS"):
            a = a + opt_cfg.BIAS
        h = a.tanh()
        return h, (h,)


class DictGetOptional(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) + opt_cfg.__dict__.get("OFFSET", 0.0)).tanh()
        return h, (h,)


# ---- 3. an object built in forward whose __init__ reads a global (_NOT_RUN skips __init__) ----------------
EPS = 1.0


class Shift:
    def __init__(self):
        self.amount = EPS

    def apply(self, a):
        return a + self.amount


class BuildsHelperInForward(Base):
    def forward(self, x, state):
        h = Shift().apply(self.pre(x, state)).tanh()
        return h, (h,)


# ---- 4. a NumPy-made callable wrapping a user function (np.vectorize: a library object, `pass`) ----------
VEC_GAIN = 1.0


def _gain_of(v):
    return v * VEC_GAIN


GAIN_OF = np.vectorize(_gain_of)


class CallsVectorized(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * float(GAIN_OF(1.0))).tanh()
        return h, (h,)


# ---- 5. a standard-library-made function around a user one (functools.singledispatch) --------------------
DISPATCH_GAIN = 1.0


@functools.singledispatch
def gain_for(value):
    return DISPATCH_GAIN


class CallsSingleDispatch(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * gain_for(1.0)).tanh()
        return h, (h,)


# ---- 6. a dict (or list) subclass with a method, a property or a class attribute -------------------------
# (_follow follows a dict's items only: its class is never a holder)
ATTR_FACTOR = 1.0


class Settings(dict):
    offset = 0.0

    @property
    def factor(self):
        return ATTR_FACTOR


SETTINGS = Settings(scale=1.0)


class ReadsDictSubclassProperty(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * SETTINGS["scale"] * SETTINGS.factor).tanh()
        return h, (h,)


class ReadsDictSubclassClassAttribute(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) + SETTINGS.offset).tanh()
        return h, (h,)


# ---- 7. a class attribute served by the metaclass (type(self).SCALE; _look_up reads the MRO's dicts only) --
class Meta(type):
    SCALE = 1.0


class MetaCell(Base, metaclass=Meta):
    def forward(self, x, state):
        h = (self.pre(x, state) * type(self).SCALE).tanh()
        return h, (h,)


# ---- 8. a module reached through importlib.import_module (a library function: not read) -----------------
dyn_cfg = library("review2_dyn_cfg", "GAIN = 1.0\n")


class ImportlibModule(Base):
    def forward(self, x, state):
        import importlib  # (a stdlib module: in globals or not, the same)
        h = (self.pre(x, state) * importlib.import_module("review2_dyn_cfg").GAIN).tanh()
        return h, (h,)


# ---- 9. a module-level name that shadows a builtin, defined after tracing --------------------------------
# (_code: a name not in globals is watched only when it is a DYNAMIC builtin)
shadow = library("review2_shadow", """
    def step(self, x, state):
        h = (self.pre(x, state) * abs(-1.0)).tanh()
        return h, (h,)
""")


class ShadowedBuiltin(Base):
    forward = shadow.step


# ---- 10. a builtin patched on the builtins module (_code: a builtin name is not watched at all) ------------
class CallsBuiltin(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * max(0.5, 1.0)).tanh()
        return h, (h,)


# ---- 11. np.frompyfunc of a user function (_follow returns at once for an np.ufunc) ------------------------
UFUNC_GAIN = 1.0
GAIN_UFUNC = np.frompyfunc(lambda v: v * UFUNC_GAIN, 1, 1)


class CallsFrompyfunc(Base):
    def forward(self, x, state):
        h = (self.pre(x, state) * float(GAIN_UFUNC(1.0))).tanh()
        return h, (h,)


MISSED = {
    "import inside forward": (ImportsInForward, set_attr(lazy_cfg, "GAIN", 0.1), set_attr(lazy_cfg, "GAIN", 1.0)),
    "from-import inside forward": (ImportsFromInForward, set_attr(lazy_cfg, "GAIN", 0.1),
                                   set_attr(lazy_cfg, "GAIN", 1.0)),
    "hasattr-guarded module attribute added later": (HasattrOptional, set_attr(opt_cfg, "BIAS", 0.5),
                                                     del_attr(opt_cfg, "BIAS")),
    "module.__dict__.get of a name added later": (DictGetOptional, set_attr(opt_cfg, "OFFSET", 0.5),
                                                  del_attr(opt_cfg, "OFFSET")),
    "an object built in forward, __init__ reads a global": (
        BuildsHelperInForward, lambda: globals().__setitem__("EPS", 0.1), lambda: globals().__setitem__("EPS", 1.0)),
    "np.vectorize of a user function": (CallsVectorized, lambda: globals().__setitem__("VEC_GAIN", 0.1),
                                        lambda: globals().__setitem__("VEC_GAIN", 1.0)),
    "functools.singledispatch function": (CallsSingleDispatch, lambda: globals().__setitem__("DISPATCH_GAIN", 0.1),
                                          lambda: globals().__setitem__("DISPATCH_GAIN", 1.0)),
    "a dict subclass's property": (ReadsDictSubclassProperty, lambda: globals().__setitem__("ATTR_FACTOR", 0.1),
                                   lambda: globals().__setitem__("ATTR_FACTOR", 1.0)),
    "a dict subclass's class attribute": (ReadsDictSubclassClassAttribute, set_attr(Settings, "offset", 0.5),
                                          set_attr(Settings, "offset", 0.0)),
    "a metaclass attribute": (MetaCell, set_attr(Meta, "SCALE", 0.1), set_attr(Meta, "SCALE", 1.0)),
    "importlib.import_module": (ImportlibModule, set_attr(dyn_cfg, "GAIN", 0.1), set_attr(dyn_cfg, "GAIN", 1.0)),
    "a module global shadowing a builtin, defined later": (
        ShadowedBuiltin, set_attr(shadow, "abs", lambda v: 0.1), del_attr(shadow, "abs")),
    "a builtin patched on the builtins module": (  # (only for this call: pytest's own reports call max too)
        CallsBuiltin, set_attr(builtins, "max", lambda *a, _max=max, **k: 0.1 if a == (0.5, 1.0) else _max(*a, **k)),
        set_attr(builtins, "max", max)),
    "np.frompyfunc of a user function": (CallsFrompyfunc, lambda: globals().__setitem__("UFUNC_GAIN", 0.1),
                                         lambda: globals().__setitem__("UFUNC_GAIN", 1.0)),
}


@pytest.mark.parametrize("case", sorted(MISSED))
def test_a_change_the_second_watch_missed_is_caught(case):
    check(*MISSED[case])


# ---- building the watch raises where compiling did not before it --------------------------------------------
def test_a_cell_reading_a_torch_tensor_from_outside_compiles():
    """plain_state (tape_watch.py line 53) gives any value with __array__, dtype and shape to
    backend.to_numpy, which calls .get() on what is not NumPy's: a torch.Tensor the step reads from outside
    the cell (a module global or, here, a closure variable: a reference weight, say) makes Watch(cell)
    raise AttributeError ('Tensor' object has no attribute 'get')
    inside compile_cell(cell).sequence; before the watch (57d0a8d^) the same cell compiled. (A pandas Series
    raises TypeError the same way.)"""
    torch = pytest.importorskip("torch")
    reference = torch.ones(3, dtype=torch.float64)

    class ReadsTorchGlobal(Base):
        def forward(self, x, state):
            h = (self.pre(x, state) * Tensor(reference.numpy())).tanh()
            return h, (h,)

    tg.manual_seed(0)
    cell = ReadsTorchGlobal().to(dtype=np.float64)
    compiled, composed = compiled_and_composed(cell, Tensor(np.random.default_rng(1).standard_normal((3, 6, 2))))
    np.testing.assert_allclose(compiled, composed, rtol=1e-12, atol=1e-12)


# ---- over-triggering: a cell that chooses its activation by an Enum member records a step every call --------
class Activation(enum.Enum):
    TANH = "tanh"
    RELU = "relu"


class ChoosesByEnum(Base):
    def __init__(self, activation=Activation.TANH):
        super().__init__()
        self.activation = activation

    def forward(self, x, state):
        a = self.pre(x, state)
        h = a.tanh() if self.activation is Activation.TANH else a.relu()
        return h, (h,)


def test_a_cell_choosing_by_an_enum_member_records_no_step_per_call(monkeypatch):
    """Every Enum class holds `_new_member_ = object.__new__` (a builtin) in its own dict, so _pure_python
    (tape_watch.py line 303) calls the class C-backed and _follow (line 251) leaves the watch incomplete:
    a step is recorded and compared before every compiled sequence (61.7 -> 92.4 us per call here)."""
    recorded = []
    record = tape._record
    monkeypatch.setattr(tape, "_record", lambda *a: recorded.append(1) or record(*a))
    tg.manual_seed(0)
    cell = ChoosesByEnum().to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    compiled_and_composed(cell, x)
    recorded.clear()
    compiled_and_composed(cell, x)
    assert last_watch(cell).complete and recorded == []
