"""What a compiled cell's step read besides its inputs and parameters, and whether any of it changed.

A tape (tape.py) bakes in every value its step read: a plain attribute (`self.scale`), a module-level
constant, which op a flag chose. Replaying it after one of those changed would be silently wrong, so
two things are watched between calls:

- the cell's own state, `plain_state(cell)`: part of the key tapes are kept under, so a change to it
  picks (or traces) another tape;
- what the step reads from outside the cell: found once per tape by reading the code (`Watch`), as
  torch.compile's guards are. Starting from the `forward` of the cell and its sub-modules, every
  function read has the names its bytecode loads (co_names) looked up in its module (`GAIN`, `np`),
  and its closure, defaults and attributes watched. The classes and modules met on the way (the
  cell's own, a helper object's, `config` of `config.SCALE`) are *holders*: what they hold under any
  name the code loads is watched, and followed in turn: functions and methods (every definition
  along a class's MRO, for super()), a class's special methods (Python calls `__call__` without
  the code naming it), containers and objects (a callable object's own state too, which
  plain_state counts by identity). The engine's modules are not read (what they hold is in the key),
  nor is the code of the standard library and NumPy.

A name is watched whether it holds something yet or not (a global defined later may shadow a
builtin); a function by its identity, its code (IPython's autoreload replaces it in place), defaults
and attributes; a class attribute as the class defines it (not as a bound method, new at each
look-up); `import` statements inside the code (relative ones too) make the imported module a holder,
and which module `sys.modules` maps the name to is watched. Library code is told by where its file
is, not by its name (a user's package may be called `code`). When a watched value changed but the
recorded step shows the tape still holds, the code is read again from what it reaches now.

Before each sequence the watched values are compared with what they were at tracing: functions,
classes, modules, numbers and strings as they are (a change makes another object), the rest by
summary. That costs 2 to 10 microseconds for the built-in cells, where recording a step again costs
40 to 100 at batch 32 and width 32, more for wider cells (tape.still_holds). The watch is a fast path,
not the judge: when a watched value differs, or when the watch is incomplete, one step is recorded
again and compared with the tape, as every call did before. Incomplete: code that reads what names do not show (`getattr`, `hasattr`, `obj.__dict__`,
`eval`, `importlib.import_module`, `sys.modules`, a module's `__getattr__`); an object whose state
is not all in its __dict__ (a partial, a lock, a class with __slots__ or written in C, np.vectorize);
an array of more than 4096 elements (hashing it would cost more than the recorded step); more than
400 values.

**Off by default.** `TINYGRAD_RNN_WATCH=1` switches it on; unset, a step is recorded before every
sequence, as before the watch. The reason: five adversarial reviews found 50 ways past the
first versions of this module (each is now a test, tests/test_tape_watch_review*.py), the fifth still 7,
one of them as plain as a regulariser plugin's step rule. A watch read from the code cannot be proved
complete in Python, and a silent wrong answer costs more than 40 to 100 µs a call, which the compiled
path's speed targets do not need (bench/RESULTS.md, round 3).
"""
import builtins
import dis
import functools
import hashlib
import importlib.util
import os
import sys
import sysconfig
import types
import weakref

import numpy as np

from .backend import to_numpy as backend_to_numpy
from .tensor import Tensor

# builtins through which code reads what its names do not show: a watch over code that calls them is
# incomplete (the step is then recorded and compared before every sequence)
DYNAMIC = {"getattr", "hasattr", "eval", "exec", "globals", "locals", "vars", "__import__", "compile",
           "__dict__", "import_module", "modules",  # obj.__dict__[...], importlib, sys.modules
           "attrgetter", "methodcaller",            # operator's: attribute names held as strings
           "getenv", "environ", "putenv"}           # the environment, read through library code
ENV = "TINYGRAD_RNN_WATCH"  # "1": the watch in front of the recorded step; unset or "0": no watch (the default)
BIG = 4096  # elements: hashing a bigger array before every sequence costs more than recording a step
MISSING = ("missing",)


def plain_state(value, _seen=None):
    """A hashable summary of everything a traced step can have baked in from `value` (a cell) besides its
    parameters' values: plain attributes by value, buffers and arrays by content, sub-modules, lists and
    dicts recursively. Parameters count by shape and dtype only: the tape reads their values at replay.
    Functions and classes count by identity (the watch reads their code by name). The common cases
    first: most of what it summarises, before every sequence, is numbers, strings and functions."""
    kind = type(value)
    if kind in _SIMPLE:
        return (kind.__name__, repr(value))  # repr: a NaN attribute still equals itself
    if isinstance(value, _BY_IDENTITY) and not _bound_builtin(value):
        return ("object", value)
    if isinstance(value, Tensor):
        if value.requires_grad:
            return ("parameter", value.shape, value.dtype)
        value = value.data
    if _has(value, "__array__") and _has(value, "dtype") and _has(value, "shape"):
        try:
            data = np.ascontiguousarray(backend_to_numpy(value))
        except Exception:  # another library's array (a torch tensor, a pandas Series): through __array__
            try:
                data = np.ascontiguousarray(np.asarray(value))
            except Exception:
                return ("object", id(value))
        return ("array", data.shape, data.dtype, hashlib.blake2b(data.tobytes(), digest_size=16).digest())
    if isinstance(value, (bool, int, float, complex, str, bytes, type(None), np.generic)):
        return (type(value).__name__, repr(value))  # repr: a NaN attribute still equals itself
    if isinstance(value, types.ModuleType):  # by identity: its contents are what the watch follows by name
        return ("module", value.__name__, id(value))
    seen = set() if _seen is None else _seen
    if id(value) in seen:  # a cycle (a sub-module that points back at its parent)
        return ("seen", id(value))
    if isinstance(value, (list, tuple, dict, set, frozenset)) or _is_module(value) or \
            _has(value, "__dict__") and not callable(value):
        seen.add(id(value))
    # containers in their order (a loop over a dict of steps runs them in it): equal ones in another
    # order count as changed, which costs a recorded step, never a wrong answer
    if isinstance(value, (list, tuple, set, frozenset)):
        return (type(value).__name__, tuple(plain_state(v, seen) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), plain_state(v, seen)) for k, v in value.items()))
    if isinstance(value, types.MethodType):  # obj.method: what it does depends on obj's state
        return ("method", value.__func__, plain_state(value.__self__, seen))
    if isinstance(value, types.BuiltinMethodType) and not isinstance(value.__self__, (types.ModuleType, type(None))):
        return ("builtin method", value.__name__, plain_state(value.__self__, seen))  # (a_dict.get)
    if _is_module(value) or _has(value, "__dict__") and not callable(value):
        # the class itself, not its name: a reloaded module's class of the same name is another class
        return (type(value), tuple((k, plain_state(v, seen)) for k, v in vars(value).items()))
    try:  # a function, a class, an enum member: by identity (hash), as the tape called it
        hash(value)
        return ("object", value)
    except TypeError:
        return ("object", id(value))


def _is_module(value):
    """A cell or a sub-module (nn.Module, known by its protocol: this file sits below nn)."""
    return (not isinstance(value, type) and _has(value, "__dict__")
            and callable(_get_or_missing(value, "named_parameters")))


def _has(value, name):
    """hasattr that a __getattr__ raising something else than AttributeError (a dict-backed config's
    KeyError) cannot break."""
    try:
        return hasattr(value, name)
    except Exception:
        return False


class Watch:
    """The values a cell's step reads from outside the cell (see the module docstring), as they were."""

    LIMIT = 400  # values watched at most: past that, comparing them would cost what recording a step does

    def __init__(self, cell):
        self._cell = weakref.ref(cell)
        self.reads = {}  # key → a function that reads the value now: its summary is compared
        self.raw = {}  # key → the same, for values compared as they are (see _watch)
        self.complete = os.environ.get(ENV, "0").strip().lower() in ("1", "true", "yes", "on")
        if not self.complete:
            self.seen = ()
            return
        self.names = set()  # every name the code read so far loads: what it can reach on a class or module
        self._holders = []  # (class or module, names looked up in it so far)
        self._codes, self._functions, self._values = set(), set(), set()
        try:
            modules = _modules_of(cell)
            self._values.update(id(m) for m in modules)
            for module in modules:  # its class (forward, and what the code names: self.helper, super().forward)
                if _library_class(type(module)):  # an engine module wrapping the cell (the step-mask rules'):
                    self._engine_names(type(module))  # what its code calls on what it holds (rule.step)
                self._holder(type(module), implicit=("forward",))
                for value in vars(module).values():  # and what it holds (self.activation = my_act, self.norm)
                    self._follow(value, 1)
            self._holder(Tensor)  # methods a user added to Tensor (Tensor.my_op = ...): only those are read
            if len(self.reads) + len(self.raw) > self.LIMIT:
                self.complete = False
            self._raw_reads, self._reads = tuple(self.raw.values()), tuple(self.reads.values())
            self.seen = self.now() if self.complete else ()
        except Exception:  # whatever the code holds that the watch cannot summarise: the recorded step judges
            self.complete, self.seen = False, ()

    def now(self):
        """The watched values, in a fixed order: as they are where that is enough, else their summaries."""
        return tuple([read() for read in self._raw_reads]), tuple([plain_state(read()) for read in self._reads])

    def unchanged(self):
        """Whether every watched value is as it was (when incomplete, never: the caller records a step).
        (Tuples compare items by identity first: an unchanged NaN is unchanged.)"""
        if not self.complete:
            return False
        try:
            return self.now() == self.seen
        except Exception:  # a value whose == answers elementwise, or raises: let the recorded step judge
            return False

    def refresh(self):
        """Read the code again from what it reaches now (after a recorded step showed that the tape still
        holds although a watched value changed: a name may now hold other code, with other names)."""
        cell = self._cell()
        if self.complete and cell is not None:
            self.__init__(cell)

    # ---- finding what the code reads -----------------------------------------------------------------
    def _engine_names(self, cls):
        """The names an engine class's code loads, without reading what they hold in the engine: the
        methods it calls on the user's objects it holds are among them."""
        codes = [v.__code__ for c in cls.__mro__ for v in vars(c).values() if isinstance(v, types.FunctionType)]
        while codes:
            code = codes.pop()
            self.names.update(code.co_names)
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]

    def _holder(self, holder, implicit=()):
        """A class or module the step reaches: what it holds under any name the code loads (now or once
        more code is read) is watched as it resolves now, and followed. A class's every definition of
        such a name along its MRO is followed (super() reaches the overridden ones), and its special
        methods (__call__, __mul__, ...) are read as Python calls them without naming them."""
        if id(holder) in self._values:
            return
        self._values.add(id(holder))
        entry = [holder, set()]
        self._holders.append(entry)
        extra = set(implicit)
        if isinstance(holder, type):  # special methods Python calls unnamed: the class's, and its metaclass's
            extra |= {n for c in holder.__mro__ + type(holder).__mro__ if not _library_class(c)
                      for n, v in vars(c).items() if n.startswith("__") and n.endswith("__") and n not in _NOT_RUN
                      and isinstance(v, (types.FunctionType, staticmethod, classmethod))}
        elif "__getattr__" in vars(holder) and not _library(holder.__name__):  # PEP 562: a user module's
            self.complete = False                                                # names served by a function
        if isinstance(holder, type) and any(
                n in vars(m) for m in type(holder).__mro__ if not _library(getattr(m, "__module__", ""))
                for n in ("__getattr__", "__getattribute__")):
            self.complete = False  # a metaclass that serves class attributes by a function
        self._look_up(entry, self.names | extra)

    def _look_up(self, entry, names):
        holder, done = entry
        module = isinstance(holder, types.ModuleType)
        chain = (holder,) if module else holder.__mro__ + type(holder).__mro__  # (a metaclass's too)
        library = not module and _library_class(holder)  # (Tensor: only what a user added to it)
        chain = [c for c in chain if c is holder or not _library_class(c)]
        user_module = module and not _library(holder.__name__)
        for name in names - done:
            done.add(name)
            found = [vars(c)[name] for c in chain if name in vars(c)]
            if library:
                found = [v for v in found if isinstance(v, types.FunctionType) and not _library_code(v.__globals__)]
            if found or user_module:  # a user module's name that is not there yet may be added later
                read = (lambda h=holder, n=name: _get_or_missing(h, n)) if module else \
                    (lambda h=holder, n=name: _defined(h, n))
                self._watch(("attr", id(holder), name), read)
            for value in found:
                self._follow(value, 1)

    def _function(self, fn):
        if not isinstance(fn, types.FunctionType) or id(fn) in self._functions:
            return
        if _library_code(fn.__globals__):  # not its code, but what it was given to hold
            self._functions.add(id(fn))                     # (functools.wraps' __wrapped__, a registry)
            for value in vars(fn).values():
                self._follow(value, 1)
            return
        self._functions.add(id(fn))
        # its defaults and its own attributes (fn.gain = 0.5) are read when it runs
        # its code (replaced in place by IPython's autoreload), defaults and attributes (fn.gain = 0.5)
        self._watch(("function", id(fn)),
                    lambda fn=fn: (fn.__code__, fn.__defaults__, fn.__kwdefaults__, vars(fn) or None))
        for value in (fn.__defaults__ or ()) + tuple((fn.__kwdefaults__ or {}).values()) + tuple(vars(fn).values()):
            self._follow(value, 1)
        for cell in fn.__closure__ or ():
            self._watch(("closure", id(cell)), lambda cell=cell: _contents(cell))
            self._follow(_contents(cell), 1)
        self._code(fn.__code__, fn.__globals__)

    def _code(self, code, globals_):
        if id(code) in self._codes:
            return
        self._codes.add(id(code))
        names = set(code.co_names)
        new = names - self.names
        self.names |= new
        if names & DYNAMIC:  # reads by a name the code builds (getattr, hasattr, __dict__, imports by string)
            self.complete = False
        builtins_ = vars(builtins)
        for name in sorted(names):
            # watched whether it is there or not: a global defined later (shadowing a builtin, or one a
            # `try: ... except NameError` waited for) changes what the name means
            self._watch(("global", id(globals_), name), lambda g=globals_, n=name: g.get(n, MISSING))
            if name in globals_:
                self._follow(globals_[name], 0)
            elif name in builtins_:
                self._watch(("builtin", name), lambda n=name: builtins_.get(n, MISSING))
        previous = []
        for instruction in dis.get_instructions(code):  # `import x`, `from .x import y` inside the code
            if instruction.opname == "IMPORT_NAME":
                level = previous[-2].argval if len(previous) >= 2 and \
                    previous[-2].opname in ("LOAD_CONST", "LOAD_SMALL_INT") else 0
                try:
                    name = importlib.util.resolve_name("." * level + instruction.argval, globals_.get("__package__"))
                except (ImportError, ValueError, TypeError):
                    self.complete = False
                    continue
                self._watch(("import", name), lambda n=name: sys.modules.get(n, MISSING))  # (replaced there?)
                module = sys.modules.get(name)
                if module is None:
                    self.complete = False
                else:
                    self._follow(module, 0)
            elif instruction.opname == "MATCH_CLASS":  # `case K(gain=g)`: attribute names in co_consts
                self.complete = False
            previous = previous[-1:] + [instruction]
        if new:  # classes and modules met before may hold these names
            for entry in list(self._holders):
                self._look_up(entry, new)
        for const in code.co_consts:  # lambdas, comprehensions and functions defined inside
            if isinstance(const, types.CodeType):
                self._code(const, globals_)

    def _follow(self, value, depth):
        """A value the code can reach: a function's code is read in turn (its module's names, its closure,
        its defaults, its attributes); a module or class is a holder (_holder); containers and objects
        are followed into, an object's class is a holder too (their values are in the summaries
        already; a callable object's own state is watched, as plain_state counts it by identity). What
        cannot be read by names (a partial, an object with __slots__ or of the standard library, a
        parameter outside the cell) makes the watch incomplete."""
        if len(self.reads) + len(self.raw) > self.LIMIT:
            self.complete = False
            return
        if _bound_builtin(value):  # a_dict.get: the dict is what it reads
            self._follow(value.__self__, depth + 1)
            return
        if isinstance(value, (Tensor, np.ndarray, np.generic, str, bytes, int, float, complex, type(None),
                              types.BuiltinFunctionType, np.ufunc, np.dtype)):
            if isinstance(value, Tensor) and value.requires_grad and depth == 0:
                self.complete = False  # a parameter held outside the cell: its values are in no summary
            if isinstance(value, Tensor) and type(value) is not Tensor:  # a user's Tensor subclass: its methods
                self._follow(type(value), depth + 1)
            if isinstance(value, (Tensor, np.ndarray)) and not getattr(value, "requires_grad", False) and \
                    _size(value) > BIG:  # (a parameter is summarised by its shape: its size costs nothing)
                self.complete = False  # hashing it every call would cost more than the recorded step
            if isinstance(value, np.ufunc) and getattr(np, value.__name__, None) is not value:
                self.complete = False  # np.frompyfunc of a Python function: its code is not read
            return
        if id(value) in self._values:
            return
        if depth > 8:  # deeper than the watch looks: let the recorded step judge
            self.complete = False
            return
        if isinstance(value, type):
            if not _library_class(value):
                self._holder(value)
            return
        if isinstance(value, types.ModuleType):  # a library's too (os.environ, np.pi): not the engine's
            if value.__name__.partition(".")[0] != "tinygrad_rnn":
                self._holder(value)
            return
        self._values.add(id(value))
        if isinstance(value, types.FunctionType):
            self._function(value)
        elif isinstance(value, (types.MethodType, staticmethod, classmethod)):
            self._function(value.__func__)
            self._follow(getattr(value, "__self__", None), depth + 1)
        elif isinstance(value, property):
            for fn in (value.fget, value.fset, value.fdel):
                self._follow(fn, depth + 1)
        elif isinstance(value, (list, tuple, set, frozenset, dict)):
            if type(value) not in (list, tuple, set, frozenset, dict):  # a subclass (a NamedTuple, a dict
                self._follow(type(value), depth + 1)                   # config): its properties and defaults
            for item in (value.values() if isinstance(value, dict) else value):
                self._follow(item, depth + 1)
        elif not _state_in_dict(value):
            self.complete = False  # a partial, a C object, an object with __slots__: opaque to names
        elif _library_class(type(value)):
            if callable(value):  # np.vectorize(my_fn), a library's wrapper around the cell's code
                self.complete = False
            for item in vars(value).values():  # a library's plain object (a cached_property): not its
                self._follow(item, depth + 1)     # class's code, but what it holds (the cell's function)
        else:  # an object: its class is a holder; what it holds is followed
            self._holder(type(value), implicit=("forward",) if _is_module(value) else ())
            if callable(value) and not _is_module(value):  # plain_state counts a callable by identity
                self._watch(("vars", id(value)), lambda v=value: vars(v))
            for item in vars(value).values():
                self._follow(item, depth + 1)

    def _watch(self, key, read):
        """Watch `read()`. A value that cannot change without becoming another object (a function, a class,
        a module, a number, a string, nothing yet, a tuple of those) is compared as it is, the rest by
        summary: most of what a step reads is the first kind, and comparing it costs next to nothing."""
        if key in self.reads or key in self.raw:
            return
        value = read()
        if _as_is(value):
            self.raw[key] = read
        else:
            self.reads[key] = read
            if _holds_parameter(plain_state(value)):  # its values are not in any summary: cannot be watched
                self.complete = False


# special methods that do not run in a step (or are the object's identity, which the summaries hold)
_NOT_RUN = {"__init_subclass__", "__repr__", "__str__", "__format__", "__module__",
            "__doc__", "__dict__", "__weakref__", "__qualname__", "__annotations__", "__slots__",
            "__firstlineno__", "__static_attributes__", "__del__", "__reduce__",
            "__reduce_ex__", "__getstate__", "__setstate__", "__copy__", "__deepcopy__"}


_AS_IS = (types.FunctionType, types.BuiltinFunctionType, types.CodeType, type, types.ModuleType, np.ufunc, bool,
          int, float, complex, str, bytes, type(None))


def _as_is(value):
    return value is MISSING or isinstance(value, _AS_IS) and not _bound_builtin(value) or \
        type(value) is tuple and all(map(_as_is, value))


def _bound_builtin(value):
    """A builtin method bound to an object (a_dict.get): what it returns depends on that object."""
    return isinstance(value, types.BuiltinMethodType) and not isinstance(value.__self__, (types.ModuleType, type(None)))


def _size(value):
    data = value.data if isinstance(value, Tensor) else value
    return int(getattr(data, "size", 0))


def _defined(cls, name):
    for c in cls.__mro__ + type(cls).__mro__:
        if name in vars(c):
            return vars(c)[name]
    return MISSING


def _get_or_missing(holder, name):
    try:
        return getattr(holder, name)
    except Exception:  # (AttributeError, or a __getattr__ that raises something else)
        return MISSING


def _library_code(globals_):
    """Whether code with these globals is a library's: by its file where it has one."""
    path = globals_.get("__file__")
    if path and globals_.get("__name__") == "__main__":  # the script itself (under cProfile too)
        return False
    return _library(globals_.get("__name__", ""))


def _library_class(cls):
    """A class's code is a library's: told by one of its functions' globals, else by its module's name."""
    for value in vars(cls).values():
        if isinstance(value, types.FunctionType):
            return _library_code(value.__globals__)
    return _library(getattr(cls, "__module__", ""))


@functools.lru_cache(maxsize=None)
def _library(module_name):
    """Code of the engine, NumPy, Python itself or its standard library: what it holds is not the cell's
    (the key watches the engine's state); following it would only make the watch slow. Told by where
    the module's file is, not by its name (a user's package may be called `code` or `signal`)."""
    top = (module_name or "").partition(".")[0]
    if top in ("tinygrad_rnn", "numpy", "builtins"):
        return True
    if module_name == "__main__":  # the script (whatever sys.modules says: cProfile puts its own module there)
        return False
    module = sys.modules.get(module_name) or sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if path is None:  # built into the interpreter (sys, _functools) or frozen (os, at start-up); else a
        origin = getattr(getattr(module, "__spec__", None), "origin", None)  # module made in memory: a user's
        return module is None and top in sys.stdlib_module_names or origin in ("built-in", "frozen")
    path = os.path.realpath(path)
    return path.startswith(_STDLIB) and not path.startswith(_SITE)


_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
_SITE = os.path.realpath(sysconfig.get_paths()["purelib"]) + os.sep


def _state_in_dict(value):
    if type(value) is types.SimpleNamespace:  # written in C, but all its state is its __dict__
        return True
    return _state_in_dict_of_classes(value)


def _state_in_dict_of_classes(value):
    """An object whose state is all in its __dict__ (so in its summary): every class of it, but object, is
    written in Python without __slots__. (A class written in C, as functools.partial's or a lock's, keeps
    its state in fields no summary reads; its dict holds descriptors of them.)"""
    return _has(value, "__dict__") and all(_pure_python(c) for c in type(value).__mro__ if c is not object)


_C_DESCRIPTORS = (types.WrapperDescriptorType, types.MethodDescriptorType, types.MemberDescriptorType,
                  types.ClassMethodDescriptorType)


def _pure_python(cls):
    return not vars(cls).get("__slots__", ()) and not any(  # (`__slots__ = ()`, as the ABCs have, adds none)
        isinstance(v, _C_DESCRIPTORS) or
        isinstance(v, types.GetSetDescriptorType) and n not in ("__dict__", "__weakref__")
        for n, v in vars(cls).items())


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
_BY_IDENTITY = (types.FunctionType, types.BuiltinFunctionType, type)
