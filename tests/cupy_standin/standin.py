"""A strict CuPy stand-in for the tests: device arrays of their own type that hold NumPy data.

It behaves like CuPy where CuPy differs from NumPy, so that the code that would break on a GPU breaks
here, on a CPU, in CI (github.com/cupy/cupy, docs/source/user_guide/difference.rst and
cupy/_core/core.pyx, which the comments below quote):

  * no implicit conversion to the host: `np.asarray(a)`, `np.array(a)` and anything that calls
    `a.__array__()` raise CuPy's TypeError ("Implicit conversion to a NumPy array is not allowed");
    `.get()`, `asnumpy(a)`, `.item()`, `.tolist()`, `float(a)`, `int(a)`, `bool(a)` and `repr(a)` are
    the explicit ways, and each one is a host sync, counted in `SYNCS`;
  * no mixing with NumPy arrays: an `ndarray` of NumPy's in an arithmetic operator, a ufunc, a function
    or an assignment raises CuPy's TypeError ("Unsupported type <class 'numpy.ndarray'>"); Python and
    NumPy scalars are fine, and NumPy arrays and lists as *indices* are fine (CuPy copies them over);
  * reductions return 0-d device arrays, never NumPy scalars;
  * only CuPy's names (`cupy_names.txt`, read from CuPy's source; a test holds the stand-in to it), and
    CuPy's arguments where they are narrower than NumPy's (ufuncs: out, dtype, casting, where; `.at`
    only for add, subtract, maximum, minimum; reductions without `initial` / `where`;
    `ascontiguousarray` of device arrays only).

`ElementwiseKernel` runs the kernel's C body with a small, strict interpreter of the C it uses
(elementwise.py): what a kernel computes is tested, not assumed; what NVRTC makes of it is not.

It is plugged in where CuPy would be (tinygrad_rnn.backend's lazily imported module) by the fixture in
conftest.py, and only there: nothing in the package knows about it.
"""
import contextlib
import os
import sys
import types

import numpy as np

from . import elementwise as _elementwise

_HERE = os.path.abspath(__file__)


# ---- host syncs ----------------------------------------------------------------------------------------
class SyncCounter:
    """Every device→host read, with the place (file:line outside this file) that asked for it."""

    def __init__(self):
        self.places = []

    def record(self, what):
        frame = sys._getframe(1)
        while frame is not None and os.path.abspath(frame.f_code.co_filename) == _HERE:
            frame = frame.f_back
        chain = []  # the caller and its two callers: to_numpy() alone says little about who asked
        while frame is not None and len(chain) < 3:
            chain.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}")
            frame = frame.f_back
        self.places.append(f"{what} at {' < '.join(chain) or '?'}")

    @property
    def count(self):
        return len(self.places)

    def reset(self):
        self.places = []

    @contextlib.contextmanager
    def counting(self):
        """with SYNCS.counting() as seen: ... ; seen is the list of syncs made inside the block."""
        start = len(self.places)
        seen = []
        try:
            yield seen
        finally:
            seen.extend(self.places[start:])

    def summary(self, places=None):
        """'N syncs: place × count, ...' most frequent first, for an assertion's message."""
        places = self.places if places is None else places
        counts = {}
        for p in places:
            counts[p] = counts.get(p, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        return f"{len(places)} syncs: " + "; ".join(f"{p} ×{n}" for p, n in ranked)


SYNCS = SyncCounter()
IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")
_SCALARS = (bool, int, float, complex, np.generic)
_DTYPES = {np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                                 np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128)}


def _refuse(value):
    raise TypeError(f"Unsupported type {type(value)}")


def _unwrap(value, where="argument"):
    """A stand-in array's NumPy data; scalars and other objects as they are; a NumPy array refused.
    Lists and tuples are looked into (concatenate([a, b]) takes a list)."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        _refuse(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    return value


def _unwrap_index(index):
    """Indices may be NumPy arrays and lists (CuPy copies them to the device); device arrays unwrap."""
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    if isinstance(index, ndarray):
        return index._a
    if isinstance(index, list):
        return np.asarray([_unwrap_index(i) for i in index]) if index else np.asarray(index, np.int32)
    return index


def _wrap(result):
    """NumPy results as device arrays: arrays and NumPy scalars (CuPy returns 0-d arrays) alike."""
    if isinstance(result, np.ndarray):
        return ndarray(result)
    if isinstance(result, np.generic):
        return ndarray(np.asarray(result))
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, list):
        return [_wrap(r) for r in result]
    return result


def _call(fn, args, kwargs):
    out = kwargs.get("out")
    kwargs = {k: (_unwrap(v) if k != "out" else v) for k, v in kwargs.items()}
    if isinstance(out, ndarray):
        kwargs["out"] = out._a
    elif isinstance(out, tuple):
        kwargs["out"] = tuple(o._a if isinstance(o, ndarray) else _unwrap(o) for o in out)
    elif out is not None:
        _unwrap(out)  # a NumPy array as out= is refused too
    result = fn(*[_unwrap(a) for a in args], **kwargs)
    if isinstance(out, ndarray):
        return out
    return _wrap(result)


def _no_reduction_extras(name, kwargs):
    for extra in ("initial", "where"):
        if extra in kwargs:
            raise TypeError(f"{name}() got an unexpected keyword argument '{extra}' (CuPy has no {extra}=)")


# ---- the array -------------------------------------------------------------------------------------
class ndarray:
    """A device array: NumPy data behind CuPy's rules."""

    __array_priority__ = 100  # as cupy.ndarray
    __slots__ = ("_a", "__weakref__")

    def __init__(self, data):
        if not isinstance(data, np.ndarray):
            raise TypeError("the stand-in's ndarray wraps a NumPy array; use asarray() to make one")
        if data.dtype not in _DTYPES:  # CuPy's dtypes are numeric only, and no long double (difference.rst)
            raise ValueError(f"Unsupported dtype {data.dtype}")
        self._a = data

    # what an array is (no sync: shapes live on the host in CuPy too)
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    device = property(lambda self: _DEVICE)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (0, False), "version": 3}

    # ---- explicit copies to the host: each one a sync -------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        SYNCS.record("get()")
        return np.array(self._a, order=order, copy=True)

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        SYNCS.record("item()")
        return self._a.item()

    def tolist(self):
        SYNCS.record("tolist()")
        return self._a.tolist()

    def __float__(self):
        SYNCS.record("float()")
        return float(self._a)

    def __int__(self):
        SYNCS.record("int()")
        return int(self._a)

    def __complex__(self):
        SYNCS.record("complex()")
        return complex(self._a)

    def __bool__(self):
        if self.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. "
                             "Use a.any() or a.all()")
        SYNCS.record("bool()")
        return bool(self._a)

    def __repr__(self):
        SYNCS.record("repr()")
        return repr(self._a)

    def __str__(self):
        SYNCS.record("str()")
        return str(self._a)

    def __format__(self, spec):
        SYNCS.record("format()")
        return format(self._a, spec)

    # ---- what CuPy refuses ------------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    # no __index__ (cupy.ndarray has none): range(a), list[a] fail as on CuPy

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """np.exp(a) runs CuPy's exp; a NumPy array among the inputs is refused (core.pyx)."""
        fn = globals().get(ufunc.__name__)
        if not isinstance(fn, _Ufunc):
            return NotImplemented
        if method != "__call__":
            fn = getattr(fn, method, None)
            if fn is None:
                return NotImplemented
        if "out" in kwargs and isinstance(kwargs["out"], tuple) and len(kwargs["out"]) == 1:
            kwargs["out"] = kwargs["out"][0]
        return fn(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        """np.concatenate([a, b]) runs CuPy's concatenate, if CuPy has the function."""
        fn = globals().get(func.__name__)
        if fn is None or func.__name__ not in FUNCTIONS:
            return NotImplemented
        return fn(*args, **kwargs)

    # ---- containers and indexing ---------------------------------------------------------------------------
    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap_index(index)])

    def __setitem__(self, index, value):
        if isinstance(value, np.ndarray):  # "Refuse assignment from CPU arrays, see gh-2079"
            _refuse(value)
        if isinstance(value, (list, tuple)):
            raise TypeError(f"Unsupported type {type(value)}")
        self._a[_unwrap_index(index)] = _unwrap(value)

    def __hash__(self):
        raise TypeError("unhashable type: 'cupy.ndarray'")

    # ---- methods CuPy's ndarray has (its arguments) ----------------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return ndarray(self._a.astype(dtype, order=order, casting=casting or "unsafe", copy=copy))

    def copy(self, order="C"):
        return ndarray(self._a.copy(order=order))

    def view(self, dtype=None):
        return ndarray(self._a.view() if dtype is None else self._a.view(dtype))

    def fill(self, value):
        _unwrap(value)
        self._a.fill(_unwrap(value))

    def reshape(self, *shape, order="C"):
        return ndarray(self._a.reshape(*shape, order=order))

    def transpose(self, *axes):
        return ndarray(self._a.transpose(*axes))

    def swapaxes(self, axis1, axis2):
        return ndarray(self._a.swapaxes(axis1, axis2))

    def ravel(self, order="C"):
        return ndarray(self._a.ravel(order))

    def flatten(self, order="C"):
        return ndarray(self._a.flatten(order))

    def squeeze(self, axis=None):
        return ndarray(self._a.squeeze(axis))

    def take(self, indices, axis=None, out=None):
        return _call(self._a.take, (_unwrap_index(indices),), {"axis": axis, "out": out})

    def repeat(self, repeats, axis=None):
        return ndarray(self._a.repeat(repeats, axis))

    def dot(self, b, out=None):
        return _call(self._a.dot, (b,), {"out": out})

    def nonzero(self):
        return _wrap(self._a.nonzero())

    def __getattr__(self, name):
        # the reductions and other methods that share NumPy's arguments, minus initial= and where=
        if name in _METHODS:
            method = getattr(self._a, name)

            def call(*args, **kwargs):
                _no_reduction_extras(name, kwargs)
                return _call(method, args, kwargs)
            return call
        raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")


_METHODS = {"sum", "mean", "max", "min", "argmax", "argmin", "prod", "var", "std", "cumsum", "all", "any",
            "clip", "round", "conj", "sort", "argsort", "trace", "diagonal", "partition"}


# operators: device arrays and scalars; NumPy arrays are refused; a Tensor (__array_ufunc__ = None)
# gets its reflected operator, as cupy's `_should_use_rop` gives it
def _operator(name):
    op = getattr(np.ndarray, name)

    def method(self, other):
        if isinstance(other, ndarray):
            return _wrap(op(self._a, other._a))
        if isinstance(other, np.ndarray):
            _refuse(other)
        if getattr(type(other), "__array_ufunc__", 0) is None or not isinstance(other, _SCALARS):
            return NotImplemented
        return _wrap(op(self._a, other))
    method.__name__ = name
    return method


def _inplace(name):
    op = getattr(np.ndarray, name)

    def method(self, other):
        if isinstance(other, np.ndarray):
            _refuse(other)
        if not isinstance(other, (ndarray,) + _SCALARS):
            return NotImplemented
        op(self._a, _unwrap(other))
        return self
    method.__name__ = name
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
              "lshift", "rshift"):
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _operator(f"__r{_name}__"))
    setattr(ndarray, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
ndarray.__neg__ = lambda self: ndarray(-self._a)
ndarray.__pos__ = lambda self: ndarray(+self._a)
ndarray.__abs__ = lambda self: ndarray(np.absolute(self._a))
ndarray.__invert__ = lambda self: ndarray(~self._a)


# ---- ufuncs ------------------------------------------------------------------------------------------------
class _Ufunc:
    """A CuPy ufunc: device arrays and scalars only; keywords out, dtype, casting, where."""

    _AT = {"add", "subtract", "maximum", "minimum"}  # the ufuncs whose .at CuPy implements

    def __init__(self, name):
        self.__name__ = name
        self._np = getattr(np, name)
        self.nin, self.nout = self._np.nin, self._np.nout

    def __call__(self, *args, **kwargs):
        unknown = set(kwargs) - {"out", "dtype", "casting", "where"}
        if unknown:
            raise TypeError(f"Wrong arguments {kwargs}")
        for a in args:
            if not isinstance(a, (ndarray,) + _SCALARS):
                raise TypeError(f"Unsupported type {type(a)}")
        return _call(self._np, args, kwargs)

    def at(self, a, indices, b=None):
        if self.__name__ not in self._AT:
            raise NotImplementedError(f"`{self.__name__}.at` is not supported yet")
        if not isinstance(a, ndarray):
            _refuse(a)
        self._np.at(a._a, _unwrap_index(indices), _unwrap(b))

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return _call(self._np.reduce, (array,), {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims})

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


UFUNCS = ("add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "power", "negative",
          "absolute", "abs", "sign", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "square",
          "tanh", "sinh", "cosh", "sin", "cos", "tan", "arctan", "maximum", "minimum", "fmax", "fmin",
          "greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and",
          "logical_or", "logical_not", "isfinite", "isnan", "isinf", "floor", "ceil", "rint", "reciprocal")
for _name in UFUNCS:
    globals()[_name] = _Ufunc(_name)


# ---- functions ------------------------------------------------------------------------------------------
def _function(name, numpy_function=None, reduction=False):
    fn = numpy_function or getattr(np, name)

    def call(*args, **kwargs):
        if reduction:
            _no_reduction_extras(name, kwargs)
        return _call(fn, args, kwargs)
    call.__name__ = name
    return call


# functions of device arrays (a NumPy array among their arguments is refused)
FUNCTIONS = {
    "zeros_like", "ones_like", "empty_like", "full_like", "concatenate", "stack", "vstack", "hstack",
    "broadcast_to", "where", "clip", "dot", "matmul", "tensordot", "einsum", "outer", "transpose",
    "swapaxes", "moveaxis", "expand_dims", "squeeze", "reshape", "ravel", "flip", "roll", "tile",
    "repeat", "take", "take_along_axis", "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin",
    "prod", "var", "std", "cumsum", "all", "any", "sort", "argsort", "searchsorted", "pad", "diag",
    "tril", "triu", "allclose", "isclose", "array_equal", "count_nonzero", "nonzero", "unique",
    "copyto", "atleast_1d", "atleast_2d", "linspace", "split", "array_split",
}
_REDUCTIONS = {"sum", "mean", "max", "min", "amax", "amin", "prod", "var", "std", "all", "any"}
for _name in FUNCTIONS:
    globals()[_name] = _function(_name, reduction=_name in _REDUCTIONS)
FUNCTIONS |= set(UFUNCS)


def split(ary, indices_or_sections, axis=0):
    """CuPy walks the split points in Python, so a host list or array of them is fine."""
    points = indices_or_sections if np.isscalar(indices_or_sections) else [int(i) for i in np.asarray(
        indices_or_sections)]
    return _call(np.split, (ary, points), {"axis": axis})


def ascontiguousarray(a, dtype=None):
    """cupy._core.ascontiguousarray takes a device array only (a typed Cython argument)."""
    if not isinstance(a, ndarray):
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy._core.core._ndarray_base, "
                        f"got {type(a).__name__})")
    return ndarray(np.ascontiguousarray(a._a, dtype=dtype))


# creation: from shapes, or from host data (the one explicit way onto the device)
def _creation(name):
    fn = getattr(np, name)

    def call(*args, **kwargs):
        return ndarray(np.asarray(fn(*args, **kwargs)))
    call.__name__ = name
    return call


for _name in ("zeros", "ones", "empty", "full", "eye", "identity", "arange", "tri"):
    globals()[_name] = _creation(_name)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0):
    """Host data (lists, NumPy arrays) onto the device, or a copy of a device array."""
    data = obj._a if isinstance(obj, ndarray) else obj
    return ndarray(np.array(data, dtype=dtype, copy=True if copy else None, order=order, ndmin=ndmin))


def asarray(a, dtype=None, order=None):
    """Host data onto the device; a device array as it is (or cast)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return ndarray(np.array(a, dtype=dtype, order=order, copy=True))


asanyarray = asarray


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A host copy: the sync every device→host read costs."""
    if isinstance(a, ndarray):
        return a.get(order=order)
    return np.asarray(a, order=order)


def get_array_module(*args):
    """This module if any argument is a device array, else NumPy (cupy.get_array_module)."""
    for a in args:
        if isinstance(a, ndarray):
            return sys.modules[__name__]
    return np


def isscalar(element):
    return np.isscalar(element)


def result_type(*arrays_and_dtypes):
    return np.result_type(*[a.dtype if isinstance(a, ndarray) else a for a in arrays_and_dtypes])


def broadcast_shapes(*shapes):
    return np.broadcast_shapes(*shapes)


# dtypes and constants, as CuPy re-exports them
for _name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "bool_", "complex64", "complex128", "dtype", "newaxis", "inf", "nan", "pi", "e",
              "integer", "floating", "number", "generic", "finfo", "iinfo", "can_cast", "promote_types"):
    globals()[_name] = getattr(np, _name)


# ---- cupy.random and cupy.cuda (what the project could reach for) ------------------------------------------
def _random_module():
    module = types.ModuleType(f"{__name__}.random", "cupy.random on a NumPy generator, device arrays out")
    state = {"rng": np.random.default_rng(0)}

    def seed(seed=None):
        state["rng"] = np.random.default_rng(seed)

    def draws(method):
        def call(*args, dtype=None, **kwargs):  # CuPy's draws take dtype= (difference.rst)
            out = getattr(state["rng"], method)(*args, **kwargs)
            return ndarray(np.asarray(out if dtype is None else np.asarray(out).astype(dtype)))
        return call

    module.seed = seed
    module.rand = lambda *shape, dtype=float: draws("random")(shape, dtype=dtype)
    module.randn = lambda *shape, dtype=float: draws("standard_normal")(shape, dtype=dtype)
    module.random = module.random_sample = draws("random")
    module.uniform, module.normal = draws("uniform"), draws("normal")
    module.standard_normal, module.permutation = draws("standard_normal"), draws("permutation")
    module.randint = draws("integers")
    return module


def _cuda_module():
    module = types.ModuleType(f"{__name__}.cuda", "cupy.cuda: one pretend device")
    module.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    module.is_available = lambda: True
    module.Device = _Device
    return module


class _Device:
    def __init__(self, device=0):
        self.id = device

    def synchronize(self):
        SYNCS.record("Device.synchronize()")

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


# ---- kernels written in C: their bodies run by a small C interpreter (elementwise.py) -------------------
ElementwiseKernel = _elementwise.ElementwiseKernel

_DEVICE = _Device(0)
random = _random_module()
cuda = _cuda_module()


def public_names():
    """Every public name this stand-in offers (a test checks each is one of CuPy's)."""
    module = sys.modules[__name__]
    skip = {"SyncCounter", "SYNCS", "IMPLICIT", "FUNCTIONS", "UFUNCS", "public_names", "contextlib", "os",
            "sys", "types", "np"}
    top = {n for n in vars(module) if not n.startswith("_") and n not in skip}
    return top | {f"random.{n}" for n in vars(random) if not n.startswith("_")}
