"""What a compiled cell's step read besides its inputs and parameters, and whether any of it changed.

A tape (tape.py) bakes in every value its step read: a plain attribute (`self.scale`), a module-level
constant, which op a flag chose. Replaying it after one of those changed would be silently wrong, so
two things are watched between calls:

- the cell's own state, `plain_state(cell)`: part of the key tapes are kept under, so a change to it
  picks (or traces) another tape;
- what the step reads from outside the cell: found once per tape by reading the code (`Watch`), as
  torch.compile's guards are. From the cell's (and its sub-modules') `forward`, the names its bytecode
  loads are resolved in its module (`GAIN`, `SETTINGS`, `np`), in its class and in its closures; for a
  module or class among them, the attributes the code names (`config.SCALE`); for a function or method
  among them, the same again in its own code, and in the code of lambdas and comprehensions inside.
  The engine's own modules (tinygrad_rnn.*) and NumPy's are not read: what they hold is in the key.

Before each sequence the watched values are compared with what they were at tracing, which costs a
few microseconds where recording a step again costs 60-130 (tape.still_holds). The watch is a fast
path, not the judge: when a watched value differs, or when the code reads in a way that cannot be
followed by names (`getattr(obj, name)` with a computed name, `eval`, `globals()`, a parameter held
outside the cell), one step is recorded again and compared with the tape, as every call did before.
"""
import builtins
import hashlib
import types

import numpy as np

from .backend import to_numpy as backend_to_numpy
from .tensor import Tensor

# builtins through which code reads what its names do not show: a watch over code that calls them is
# incomplete (the step is then recorded and compared before every sequence)
DYNAMIC = {"getattr", "eval", "exec", "globals", "locals", "vars", "__import__", "compile"}
MISSING = ("missing",)


def plain_state(value, _seen=None):
    """A hashable summary of everything a traced step can have baked in from `value` (a cell) besides its
    parameters' values: plain attributes by value, buffers and arrays by content, sub-modules, lists and
    dicts recursively. Parameters count by shape and dtype only: the tape reads their values at replay."""
    if isinstance(value, Tensor):
        if value.requires_grad:
            return ("parameter", value.shape, value.dtype)
        value = value.data
    if hasattr(value, "__array__") and hasattr(value, "dtype") and hasattr(value, "shape"):
        data = np.ascontiguousarray(backend_to_numpy(value))
        return ("array", data.shape, data.dtype, hashlib.blake2b(data.tobytes(), digest_size=16).digest())
    if isinstance(value, (bool, int, float, complex, str, bytes, type(None), np.generic)):
        return (type(value).__name__, repr(value))  # repr: a NaN attribute still equals itself
    if isinstance(value, types.ModuleType):  # by identity: its contents are what the watch follows by name
        return ("module", value.__name__, id(value))
    seen = set() if _seen is None else _seen
    if id(value) in seen:  # a cycle (a sub-module that points back at its parent)
        return ("seen", id(value))
    if isinstance(value, (list, tuple, dict)) or _is_module(value) or \
            hasattr(value, "__dict__") and not callable(value):
        seen.add(id(value))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(plain_state(v, seen) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((repr(k), plain_state(v, seen)) for k, v in value.items())))
    if _is_module(value) or hasattr(value, "__dict__") and not callable(value):
        return (type(value).__qualname__, tuple(sorted((k, plain_state(v, seen)) for k, v in vars(value).items())))
    try:  # a function, a class, an enum member: by identity (hash), as the tape called it
        hash(value)
        return ("object", value)
    except TypeError:
        return ("object", id(value))


def _is_module(value):
    """A cell or a sub-module (nn.Module, known by its protocol: this file sits below nn)."""
    return (not isinstance(value, type) and callable(getattr(value, "named_parameters", None))
            and hasattr(value, "__dict__"))


def _engine(globals_):
    """Code whose module is the engine's or NumPy's: its state is the key's business, not the watch's."""
    name = globals_.get("__name__", "") or ""
    return name in ("tinygrad_rnn", "numpy") or name.startswith(("tinygrad_rnn.", "numpy."))


class Watch:
    """The values a cell's step reads from outside the cell (see the module docstring), as they were."""

    def __init__(self, cell):
        self.reads = {}  # key → a function that reads the value now
        self.complete = True
        self._codes, self._functions, self._values = set(), set(), set()
        modules = _modules_of(cell)
        self._values.update(id(m) for m in modules)
        for module in modules:
            cls = type(module)
            forward = getattr(cls, "forward", None)
            if isinstance(forward, types.FunctionType):
                self._function(forward, classes=[cls])
            for value in vars(module).values():  # functions it holds (self.activation = my_act), and so on
                self._follow(value, (), (), 1)
        self.seen = self.now()

    def now(self):
        """The watched values' summaries, in a fixed order."""
        return tuple(_summary(read()) for read in self.reads.values())

    def unchanged(self):
        """Whether every watched value is as it was (when incomplete, never: the caller records a step)."""
        return self.complete and self.now() == self.seen

    def refresh(self):
        """Take the watched values as they are now (after a recorded step showed the tape still holds)."""
        self.seen = self.now()

    # ---- finding what the code reads -----------------------------------------------------------------
    def _function(self, fn, classes=()):
        fn = getattr(fn, "__func__", fn)  # a bound method, a classmethod or staticmethod's function
        if not isinstance(fn, types.FunctionType) or id(fn) in self._functions or _engine(fn.__globals__):
            return
        self._functions.add(id(fn))
        self._watch(("defaults", id(fn)), lambda fn=fn: (fn.__defaults__, fn.__kwdefaults__))
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            self._watch(("closure", id(cell)), lambda cell=cell: _contents(cell))
            self._follow(_contents(cell), fn.__code__.co_names)
        self._code(fn.__code__, fn.__globals__, classes)

    def _code(self, code, globals_, classes):
        if id(code) in self._codes:
            return
        self._codes.add(id(code))
        names = code.co_names
        for name in names:
            if name in globals_:
                self._watch(("global", id(globals_), name), lambda g=globals_, n=name: g.get(n, MISSING))
                self._follow(globals_[name], names)
            elif name in DYNAMIC and hasattr(builtins, name):
                self.complete = False
            for cls in classes:  # self.helper(...), self.SCALE: what the cell's class holds by that name
                if any(name in vars(c) for c in cls.__mro__ if c is not object):
                    self._watch(("class", id(cls), name), lambda c=cls, n=name: getattr(c, n, MISSING))
                    self._follow(getattr(cls, name, None), names, classes)
        for const in code.co_consts:  # lambdas, comprehensions and functions defined inside
            if isinstance(const, types.CodeType):
                self._code(const, globals_, classes)

    def _follow(self, value, names=(), classes=(), depth=0):
        """A value the code can reach: a function's code is read in turn (its module's names, its closure,
        its defaults); a module's or class's attributes that the code names are watched and followed;
        containers and plain objects are followed into (their values are in the summaries already).
        A callable the watch cannot read (a partial, an object with __call__) or a parameter outside the
        cell makes it incomplete."""
        if isinstance(value, (Tensor, np.ndarray, np.generic, str, bytes, int, float, complex, type(None),
                              types.BuiltinFunctionType, np.ufunc)) or id(value) in self._values:
            if isinstance(value, Tensor) and value.requires_grad and depth == 0 and not classes:
                self.complete = False  # a parameter held outside the cell: its values are in no summary
            return
        self._values.add(id(value))
        if depth > 6:  # deeper than the watch looks: let the recorded step judge
            self.complete = False
        elif isinstance(value, types.FunctionType):
            self._function(value, classes)
        elif isinstance(value, (types.MethodType, staticmethod, classmethod)):
            self._function(value.__func__, classes)
            self._follow(getattr(value, "__self__", None), names, (), depth + 1)
        elif isinstance(value, (types.ModuleType, type)):
            if _engine(vars(value) if isinstance(value, types.ModuleType) else
                       {"__name__": getattr(value, "__module__", "")}):
                return
            for name in names:
                holder = next((c for c in ((value,) if isinstance(value, types.ModuleType) else value.__mro__)
                               if name in vars(c)), None)
                if holder is not None and holder is not object:
                    self._watch(("attr", id(value), name), lambda v=value, n=name: getattr(v, n, MISSING))
                    self._follow(vars(holder)[name], names, (), depth + 1)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                self._follow(item, names, (), depth + 1)
        elif isinstance(value, dict):
            for item in value.values():
                self._follow(item, names, (), depth + 1)
        elif _is_module(value):  # a module outside the cell's own: its forward and what it holds
            forward = getattr(type(value), "forward", None)
            if isinstance(forward, types.FunctionType):
                self._function(forward, [type(value)])
            for item in vars(value).values():
                self._follow(item, names, (), depth + 1)
        elif callable(value) or not hasattr(value, "__dict__"):
            self.complete = False  # a partial, a callable object, an object with __slots__: opaque to names
        else:
            for item in vars(value).values():
                self._follow(item, names, (), depth + 1)

    def _watch(self, key, read):
        if key not in self.reads:
            self.reads[key] = read
            if _holds_parameter(_summary(read())):  # its values are not in any summary: cannot be watched
                self.complete = False


def _modules_of(cell):
    """The cell and its sub-modules, each once (their forwards are what a step runs)."""
    named = getattr(cell, "named_modules", None)
    return [m for _, m in named()] if callable(named) else [cell]


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:  # a closure variable not assigned yet
        return MISSING


def _holds_parameter(summary):
    if isinstance(summary, tuple):
        return summary[:1] == ("parameter",) or any(_holds_parameter(s) for s in summary)
    return False


_SIMPLE = (bool, int, float, complex, str, bytes, type(None))
_BY_IDENTITY = (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType)


def _summary(value):
    """plain_state, with functions, classes and modules by identity (their code is watched by name), and
    the common cases (a function's defaults, None; a dict of functions) without plain_state's tests."""
    kind = type(value)
    if kind in _SIMPLE:
        return (kind.__name__, repr(value))
    if isinstance(value, _BY_IDENTITY):
        return ("object", id(value))
    if kind is tuple or kind is list:
        return (kind.__name__, tuple(map(_summary, value)))
    if kind is dict:
        return ("dict", tuple(sorted((repr(k), _summary(v)) for k, v in value.items())))
    return plain_state(value)
