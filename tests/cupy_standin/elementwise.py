"""`cupy.ElementwiseKernel` for the stand-in: the kernel's C body is *run*, by a small interpreter of the
subset of C that a kernel body of straight-line arithmetic needs, one lane per CUDA thread (all lanes
at once, as NumPy arrays).

What it runs: statements `[const] TYPE name = e;`, `name = e;`, `name += e;`, `name[e] = e;` with TYPE
one of float, double, ptrdiff_t, int; expressions with C's precedence and associativity: `?:`,
`== != < > <= >=`, `+ -`, `* / %`, unary `-`, calls, indexing, parentheses, literals (`1.0f` float,
`1.0` double, `3` an integer) and the names `i` (the thread's index), the parameters and the locals.

It is stricter than C where C's leniency hides a bug on a GPU:
  * no implicit conversions between float, double and integers: a double literal or `tanh` in a float
    kernel (a silent promotion to double, many times slower on most GPUs) is an error, as is an
    integer in float arithmetic;
  * float functions take floats (`tanhf`, `expf`), double functions doubles (`tanh`, `exp`);
  * a name used before it is declared, declared twice, or a `const` or input assigned: an error;
  * a `raw` array read or written out of its bounds: an IndexError (on a GPU: silent garbage);
  * two threads writing one element of a `raw` output: an error (on a GPU: a race);
  * a non-raw output that a thread never assigns: an error (on a GPU: uninitialised memory);
  * parameters' dtypes must be the declared ones exactly, and NumPy arrays are refused, as by CuPy.

The calling convention is CuPy's (cupy/_core/_kernel.pyx, ElementwiseKernel.__call__): inputs then
outputs, positionally; non-raw arrays broadcast together to the grid the kernel runs over, `i` the
C-order index into it; `raw` arrays are not broadcast and are indexed by a C-order index over their
shape (CArray's operator[](ptrdiff_t)); outputs not given are allocated with the grid's shape; the
outputs are returned (one array, or a tuple of several).
"""
import re

import numpy as np

C_TYPE_OF = {"float32": "float", "float64": "double", "int32": "int", "int64": "ptrdiff_t", "bool": "bool"}
INTEGER = "int"  # ptrdiff_t and int are one integer type here (index arithmetic only)
DTYPES = {"float": np.float32, "double": np.float64, INTEGER: np.int64, "bool": np.bool_}
FUNCTIONS = {"tanhf": ("float", np.tanh), "expf": ("float", np.exp), "tanh": ("double", np.tanh),
             "exp": ("double", np.exp)}
TOKEN = re.compile(r"\s*(?:(?P<number>\d+\.\d*(?:[eE][-+]?\d+)?f?|\d+[eE][-+]?\d+f?|\d+)|(?P<name>[A-Za-z_]\w*)|"
                   r"(?P<op>--|\+\+|\+=|==|!=|<=|>=|[-+*/%<>=?:;()\[\],]))")


class KernelError(Exception):
    """The body is not the C this interpreter runs, or breaks one of its rules; says which and where.
    Rules that do not depend on the data fail when the kernel is made, the others when it runs."""


def _ctype(name):
    return INTEGER if name in ("ptrdiff_t", "int") else name


def tokenize(text):
    text = re.sub(r"//[^\n]*", "", text)
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if m is None:
            raise KernelError(f"cannot read {text[pos:pos + 20].strip()!r}")
        token = m.group("number") or m.group("name") or m.group("op")
        if token in ("--", "++"):  # C's maximal munch: `a --b` is a decrement, not a minus of -b
            raise KernelError(f"{token!r} (C's {'de' if token == '--' else 'in'}crement) in {text.strip()[:60]!r}")
        tokens.append(token)
        pos = m.end()
    return tokens


class Raw:
    """A raw parameter at run time: indexed by a C-order index over its shape; writes checked for races."""

    def __init__(self, name, array, lanes, writable):
        self.name, self.array, self.lanes = name, array, lanes
        self.writer = np.full(array.size, -1, np.int64) if writable else None

    def where(self, index):
        index = np.broadcast_to(np.asarray(index, np.int64), (self.lanes,))
        if index.size and (index.min() < 0 or index.max() >= self.array.size):
            raise IndexError(f"{self.name}[{int(index.min())}..{int(index.max())}] is out of bounds of "
                             f"{self.name}'s {self.array.size} elements")
        return index, np.unravel_index(index, self.array.shape)

    def read(self, index):
        return self.array[self.where(index)[1]]

    def write(self, index, value):
        flat, place = self.where(index)
        lanes = np.arange(self.lanes)
        if len(np.unique(flat)) != flat.size:
            raise KernelError(f"two threads write one element of {self.name} in one statement (a race)")
        earlier = self.writer[flat]
        if np.any((earlier >= 0) & (earlier != lanes)):
            raise KernelError(f"two threads write one element of {self.name} (a race)")
        self.writer[flat] = lanes
        self.array[place] = np.broadcast_to(value, (self.lanes,))


def _c_divide(a, b):  # C's integer division truncates towards zero
    if np.any(np.asarray(b) == 0):
        raise KernelError("integer division by zero")
    return np.abs(a) // np.abs(b) * np.sign(a) * np.sign(b)


ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply}
COMPARISONS = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater, "<=": np.less_equal,
               ">=": np.greater_equal}


class Translator:
    """Reads a body once, checking every rule that does not depend on the data (types, names, const,
    outputs assigned before they are read and by the end), into a list of statements, each a function
    of the environment (name → the lanes' values, or a Raw) that runs it in all lanes."""

    def __init__(self, params):
        self.types, self.inputs, self.outputs = {"i": INTEGER}, {"i"}, []
        self.raw = {name for raw, _, name, _ in params if raw}
        self.raw_outputs = {name for raw, _, name, out in params if raw and out}
        for raw, dtype, name, out in params:
            self.types[name] = _ctype(C_TYPE_OF[dtype])
            if not raw:
                (self.outputs.append if out else self.inputs.add)(name)
        self.const, self.assigned = set(self.inputs), set()

    def translate(self, body):
        self.tokens, self.pos, statements = tokenize(body), 0, []
        while self.pos < len(self.tokens):
            statements.append(self.statement())
        missing = [o for o in self.outputs if o not in self.assigned]
        if missing:
            raise KernelError(f"the kernel never assigns its output(s) {', '.join(missing)}")
        return statements

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected=None):
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise KernelError(f"expected {expected or 'more'}, found {token!r} (token {self.pos})")
        self.pos += 1
        return token

    # ---- statements ------------------------------------------------------------------------------------
    def statement(self):
        const = self.peek() == "const"
        if const:
            self.take()
        if self.peek() in ("float", "double", "ptrdiff_t", "int"):
            ctype = _ctype(self.take())
            name = self.take()
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise KernelError(f"{name!r} is not a name")
            if name in self.types:
                raise KernelError(f"{name} is declared twice")
            self.take("=")
            value = self.expect(self.expression(), ctype, f"the initialiser of {name}")
            self.take(";")
            self.types[name] = ctype
            if const:
                self.const.add(name)

            def declare(env, name=name, value=value):
                env[name] = value(env)
            return declare
        if const:
            raise KernelError("const without a type")
        name = self.take()
        if name not in self.types:
            raise KernelError(f"{name} is used before it is declared")
        if name in self.raw:
            self.take("[")
            index = self.expect(self.expression(), INTEGER, f"an index of {name}")
            self.take("]")
            self.take("=")
            if name not in self.raw_outputs:
                raise KernelError(f"{name} is an input (read only)")
            value = self.expect(self.expression(), self.types[name], f"a value written to {name}")
            self.take(";")
            return lambda env: env[name].write(index(env), value(env))
        op = self.take()
        if op not in ("=", "+="):
            raise KernelError(f"expected = or += after {name}, found {op!r}")
        if name in self.const:
            raise KernelError(f"{name} is {'an input' if name in self.inputs else 'const'}; it cannot be assigned")
        if op == "+=":
            self.check_assigned(name)
        value = self.expect(self.expression(), self.types[name], f"the value assigned to {name}")
        self.take(";")
        self.assigned.add(name)
        if op == "=":
            def assign(env):
                env[name] = value(env)
            return assign

        def accumulate(env):
            env[name] = env[name] + value(env)
        return accumulate

    def expect(self, typed, ctype, what):
        fn, got = typed
        if got != ctype:
            raise KernelError(f"{what} is {got}, not {ctype} (no implicit conversions here)")
        return fn

    def check_assigned(self, name):
        if name in self.outputs and name not in self.assigned:
            raise KernelError(f"the output {name} is read before the kernel assigns it (uninitialised)")

    # ---- expressions, by C's precedence: each returns (function of the environment, C type) -------------------
    def expression(self):  # ternary: right-associative, lowest
        cond = self.comparison()
        if self.peek() != "?":
            return cond
        self.take("?")
        c = self.expect(cond, "bool", "the condition of ?:")
        (a, at), _, (b, bt) = self.expression(), self.take(":"), self.expression()
        if at != bt:
            raise KernelError(f"the branches of ?: are {at} and {bt}")
        dtype = DTYPES[at]
        return (lambda env: np.where(c(env), a(env), b(env)).astype(dtype, copy=False)), at

    def comparison(self):  # == != < > <= >= (one level here; C has two, and none are chained below)
        left = self.additive()
        while self.peek() in COMPARISONS:
            op = self.take()
            right = self.additive()
            left = self.binary(left, right, op, COMPARISONS[op], "bool")
        return left

    def additive(self):
        left = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()
            left = self.binary(left, self.multiplicative(), op, ARITHMETIC[op])
        return left

    def multiplicative(self):
        left = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            right = self.unary()
            if op == "*":
                fn = np.multiply
            elif left[1] == INTEGER:
                fn = _c_divide if op == "/" else (lambda a, b: a - _c_divide(a, b) * b)
            elif op == "/":
                fn = np.divide
            else:
                raise KernelError("% of floating values")
            left = self.binary(left, right, op, fn)
        return left

    def binary(self, left, right, op, fn, result=None):
        (a, at), (b, bt) = left, right
        if at != bt:
            raise KernelError(f"{at} {op} {bt}: mixed types (no implicit conversions here)")
        if at == "bool" and op not in ("==", "!="):
            raise KernelError(f"bool {op} bool")
        return (lambda env: fn(a(env), b(env))), result or at

    def unary(self):
        if self.peek() == "-":
            self.take()
            fn, ctype = self.unary()
            if ctype == "bool":
                raise KernelError("minus of a bool")
            return (lambda env: -fn(env)), ctype
        return self.postfix()

    def postfix(self):
        token = self.take()
        if token == "(":
            value = self.expression()
            self.take(")")
            return value
        if token[0].isdigit():
            return self.number(token)
        if not re.fullmatch(r"[A-Za-z_]\w*", token):
            raise KernelError(f"unexpected {token!r}")
        if self.peek() == "(":  # a call
            if token not in FUNCTIONS:
                raise KernelError(f"unknown function {token}() (known: {', '.join(FUNCTIONS)})")
            self.take("(")
            ctype, fn = FUNCTIONS[token]
            arg = self.expect(self.expression(), ctype, f"the argument of {token}()")
            self.take(")")
            return (lambda env: fn(arg(env))), ctype
        if token not in self.types:
            raise KernelError(f"{token} is used before it is declared")
        if token in self.raw:
            self.take("[")
            index = self.expect(self.expression(), INTEGER, f"an index of {token}")
            self.take("]")
            return (lambda env: env[token].read(index(env))), self.types[token]
        self.check_assigned(token)
        return (lambda env: env[token]), self.types[token]

    def number(self, token):
        if token.endswith("f"):
            value, ctype = np.float32(token[:-1]), "float"
        elif "." in token or "e" in token or "E" in token:
            value, ctype = np.float64(token), "double"
        else:
            value, ctype = np.int64(token), INTEGER
        return (lambda env: value), ctype


def parse_params(text):
    """'raw float32 in0, float32 in1' → [(raw, dtype name, name)]."""
    params = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        words = part.split()
        raw = words[0] == "raw"
        words = words[1:] if raw else words
        if len(words) != 2 or words[0] not in C_TYPE_OF:
            raise KernelError(f"parameter {part!r}: expected '[raw] DTYPE name' with a concrete dtype "
                              f"({', '.join(C_TYPE_OF)})")
        params.append((raw, words[0], words[1]))
    return params


class ElementwiseKernel:
    """cupy.ElementwiseKernel(in_params, out_params, operation, name): `operation` translated once (its
    static rules checked when the kernel is made), then run in all lanes at each call."""

    def __init__(self, in_params, out_params, operation, name="kernel", **options):
        self.in_params, self.out_params = parse_params(in_params), parse_params(out_params)
        self.operation, self.name = operation, name
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise KernelError(f"kernel name {name!r} is not a C identifier")
        names = [p[2] for p in self.in_params + self.out_params]
        if len(set(names)) != len(names):
            raise KernelError(f"a parameter name is used twice in {names}")
        params = [p + (False,) for p in self.in_params] + [p + (True,) for p in self.out_params]
        self.statements = Translator(params).translate(operation)

    def __call__(self, *args, size=None):
        from . import standin
        n_in, params = len(self.in_params), self.in_params + self.out_params
        if len(args) not in (n_in, len(params)):
            raise TypeError(f"Wrong number of arguments for {self.name!r}: expected {n_in} or {len(params)}, "
                            f"got {len(args)}")
        for a in args:
            if not isinstance(a, (standin.ndarray, int, float, np.generic)):
                raise TypeError(f"Unsupported type {type(a)}")
        given = list(args)
        shapes = [a.shape for (raw, _, _), a in zip(params, given) if not raw and isinstance(a, standin.ndarray)]
        if shapes:
            grid = tuple(np.broadcast_shapes(*shapes))
        elif size is not None:
            grid = (size,)
        else:
            raise ValueError("Loop size is undecided")
        for (raw, dtype, name) in self.out_params[len(given) - n_in:]:
            if raw:
                raise ValueError(f"Output array size is undecided for raw {name}")
            given.append(standin.ndarray(np.empty(grid, dtype)))
        lanes = int(np.prod(grid))
        env, stores = {"i": np.arange(lanes, dtype=np.int64)}, []
        for position, ((raw, dtype, name), a) in enumerate(zip(params, given)):
            is_out = position >= n_in
            if not isinstance(a, standin.ndarray):  # a Python or NumPy scalar, as the declared type
                if raw or is_out:
                    raise TypeError(f"{self.name}: {name} must be an array")
                env[name] = np.dtype(dtype).type(a)
                continue
            if a.dtype.name != dtype:
                raise TypeError(f"{self.name}: {name} is declared {dtype}, got an array of {a.dtype.name}")
            if raw:
                env[name] = Raw(name, a._a, lanes, is_out)
            elif is_out:
                if a.shape != grid:
                    raise ValueError(f"{self.name}: output {name} has shape {a.shape}, the loop {grid}")
                stores.append((name, a))
            else:
                env[name] = np.broadcast_to(a._a, grid).reshape(-1)
        with np.errstate(over="ignore", under="ignore"):  # expf(large) is inf in C too
            for statement in self.statements:
                statement(env)
        for name, a in stores:
            a._a[...] = np.broadcast_to(env[name], (lanes,)).reshape(grid)
        result = given[n_in:]
        return result[0] if len(result) == 1 else tuple(result)
