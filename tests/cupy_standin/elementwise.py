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
    """The body is not the C this interpreter runs, or breaks one of its rules; says which and where."""


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


class Value:
    """A C value in every lane: the lanes' data (an array or a scalar) and its C type."""

    def __init__(self, data, ctype):
        self.data, self.ctype = data, ctype


class Raw:
    """A raw parameter: indexed by a C-order index over its shape; writes checked for races."""

    def __init__(self, name, array, ctype, writable):
        self.name, self.array, self.ctype, self.writable = name, array, ctype, writable
        self.writer = np.full(array.size, -1, np.int64) if writable else None

    def where(self, index):
        index = np.broadcast_to(np.asarray(index, np.int64), (self.lanes,))
        if index.size and (index.min() < 0 or index.max() >= self.array.size):
            raise IndexError(f"{self.name}[{int(index.min())}..{int(index.max())}] is out of bounds of "
                             f"{self.name}'s {self.array.size} elements")
        return index, np.unravel_index(index, self.array.shape)

    def read(self, index):
        _, place = self.where(index)
        return Value(self.array[place], self.ctype)

    def write(self, index, value):
        flat, place = self.where(index)
        lanes = np.arange(self.lanes)
        if len(np.unique(flat)) != flat.size:
            raise KernelError(f"two threads write one element of {self.name} in one statement (a race)")
        earlier = self.writer[flat]
        if np.any((earlier >= 0) & (earlier != lanes)):
            raise KernelError(f"two threads write one element of {self.name} (a race)")
        self.writer[flat] = lanes
        self.array[place] = np.broadcast_to(value.data, (self.lanes,))


class Interpreter:
    """Runs one body over `lanes` threads with `names` (name → Value or Raw) as its parameters."""

    def __init__(self, lanes, names, readonly, outputs):
        self.lanes, self.names, self.readonly, self.outputs = lanes, dict(names), set(readonly), outputs
        self.const, self.assigned = set(readonly), set()
        self.names["i"] = Value(np.arange(lanes, dtype=np.int64), INTEGER)
        self.const.add("i")
        for v in self.names.values():
            if isinstance(v, Raw):
                v.lanes = lanes

    # ---- statements ------------------------------------------------------------------------------------
    def run(self, body):
        self.tokens, self.pos = tokenize(body), 0
        while self.pos < len(self.tokens):
            self.statement()
        missing = [o for o in self.outputs if o not in self.assigned]
        if missing:
            raise KernelError(f"the kernel never assigns its output(s) {', '.join(missing)}")

    def peek(self, k=0):
        return self.tokens[self.pos + k] if self.pos + k < len(self.tokens) else None

    def take(self, expected=None):
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise KernelError(f"expected {expected or 'more'}, found {token!r} (token {self.pos})")
        self.pos += 1
        return token

    def statement(self):
        const = self.peek() == "const"
        if const:
            self.take()
        if self.peek() in ("float", "double", "ptrdiff_t", "int"):
            ctype = _ctype(self.take())
            name = self.take()
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise KernelError(f"{name!r} is not a name")
            if name in self.names:
                raise KernelError(f"{name} is declared twice")
            self.take("=")
            value = self.expect(self.expression(), ctype, f"the initialiser of {name}")
            self.take(";")
            self.names[name] = Value(np.broadcast_to(value.data, (self.lanes,)), ctype)
            if const:
                self.const.add(name)
            return
        if const:
            raise KernelError("const without a type")
        name = self.take()
        target = self.names.get(name)
        if target is None:
            raise KernelError(f"{name} is used before it is declared")
        if isinstance(target, Raw):
            self.take("[")
            index = self.expect(self.expression(), INTEGER, f"an index of {name}")
            self.take("]")
            self.take("=")
            if not target.writable:
                raise KernelError(f"{name} is an input (read only)")
            value = self.expect(self.expression(), target.ctype, f"a value written to {name}")
            self.take(";")
            target.write(index.data, value)
            return
        op = self.take()
        if op not in ("=", "+="):
            raise KernelError(f"expected = or += after {name}, found {op!r}")
        if name in self.const:
            raise KernelError(f"{name} is {'an input' if name in self.readonly else 'const'}; it cannot be assigned")
        if op == "+=":
            self.check_assigned(name)
        value = self.expect(self.expression(), target.ctype, f"the value assigned to {name}")
        self.take(";")
        data = value.data if op == "=" else target.data + value.data
        self.names[name] = Value(np.broadcast_to(data, (self.lanes,)), target.ctype)
        self.assigned.add(name)

    def expect(self, value, ctype, what):
        if value.ctype != ctype:
            raise KernelError(f"{what} is {value.ctype}, not {ctype} (no implicit conversions here)")
        return value

    # ---- expressions, by C's precedence ---------------------------------------------------------------------
    def expression(self):  # ternary: right-associative, lowest
        cond = self.comparison()
        if self.peek() != "?":
            return cond
        self.take("?")
        self.expect(cond, "bool", "the condition of ?:")
        a = self.expression()
        self.take(":")
        b = self.expression()
        if a.ctype != b.ctype:
            raise KernelError(f"the branches of ?: are {a.ctype} and {b.ctype}")
        return Value(np.where(cond.data, a.data, b.data).astype(DTYPES[a.ctype]), a.ctype)

    def comparison(self):  # == != < > <= >= (one level here; C has two, and none are chained below)
        left = self.additive()
        while self.peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()
            right = self.additive()
            self.same(left, right, op)
            fn = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater, "<=": np.less_equal,
                  ">=": np.greater_equal}[op]
            left = Value(fn(left.data, right.data), "bool")
        return left

    def additive(self):
        left = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.multiplicative()
            self.same(left, right, op)
            left = Value(left.data + right.data if op == "+" else left.data - right.data, left.ctype)
        return left

    def multiplicative(self):
        left = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            right = self.unary()
            self.same(left, right, op)
            if op == "*":
                data = left.data * right.data
            elif left.ctype == INTEGER:  # C truncates towards zero
                if np.any(np.asarray(right.data) == 0):
                    raise KernelError("integer division by zero")
                q = np.abs(left.data) // np.abs(right.data) * np.sign(left.data) * np.sign(right.data)
                data = q if op == "/" else left.data - q * right.data
            elif op == "/":
                data = left.data / right.data
            else:
                raise KernelError("% of floating values")
            left = Value(data, left.ctype)
        return left

    def unary(self):
        if self.peek() == "-":
            self.take()
            value = self.unary()
            if value.ctype == "bool":
                raise KernelError("minus of a bool")
            return Value(-value.data, value.ctype)
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
            arg = self.expression()
            self.take(")")
            ctype, fn = FUNCTIONS[token]
            self.expect(arg, ctype, f"the argument of {token}()")
            with np.errstate(over="ignore"):  # expf(large) is inf in C too
                return Value(fn(arg.data), ctype)
        target = self.names.get(token)
        if target is None:
            raise KernelError(f"{token} is used before it is declared")
        if isinstance(target, Raw):
            self.take("[")
            index = self.expect(self.expression(), INTEGER, f"an index of {token}")
            self.take("]")
            return target.read(index.data)
        self.check_assigned(token)
        return target

    def check_assigned(self, name):
        if name in self.outputs and name not in self.assigned:
            raise KernelError(f"the output {name} is read before the kernel assigns it (uninitialised)")

    def number(self, token):
        if token.endswith("f"):
            return Value(np.float32(token[:-1]), "float")
        if "." in token or "e" in token or "E" in token:
            return Value(np.float64(token), "double")
        return Value(np.int64(token), INTEGER)

    def same(self, left, right, op):
        if left.ctype != right.ctype:
            raise KernelError(f"{left.ctype} {op} {right.ctype}: mixed types (no implicit conversions here)")
        if left.ctype == "bool" and op not in ("==", "!="):
            raise KernelError(f"bool {op} bool")


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
    """cupy.ElementwiseKernel(in_params, out_params, operation, name): `operation` run by the interpreter."""

    def __init__(self, in_params, out_params, operation, name="kernel", **options):
        self.in_params, self.out_params = parse_params(in_params), parse_params(out_params)
        self.operation, self.name = operation, name
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise KernelError(f"kernel name {name!r} is not a C identifier")
        tokenize(operation)  # an unreadable body fails when the kernel is made, as CuPy's compile would
        names = [p[2] for p in self.in_params + self.out_params]
        if len(set(names)) != len(names):
            raise KernelError(f"a parameter name is used twice in {names}")

    def __call__(self, *args, size=None):
        from . import standin
        n_in, params = len(self.in_params), self.in_params + self.out_params
        if len(args) not in (n_in, len(params)):
            raise TypeError(f"Wrong number of arguments for {self.name!r}: expected {n_in} or {len(params)}, "
                            f"got {len(args)}")
        for a in args:
            if isinstance(a, np.ndarray):
                raise TypeError(f"Unsupported type {type(a)}")
            if not isinstance(a, (standin.ndarray, int, float, np.generic)):
                raise TypeError(f"Unsupported type {type(a)}")
        given = list(args)
        shapes = [a.shape for (raw, _, _), a in zip(params, given) if not raw and isinstance(a, standin.ndarray)]
        if shapes:
            grid = np.broadcast_shapes(*shapes)
        elif size is not None:
            grid = (size,)
        else:
            raise ValueError("Loop size is undecided")
        for (raw, dtype, name) in self.out_params[len(given) - n_in:]:
            if raw:
                raise ValueError(f"Output array size is undecided for raw {name}")
            given.append(standin.ndarray(np.empty(grid, dtype)))
        lanes = int(np.prod(grid))
        names, readonly, outputs, stores = {}, [], [], []
        for position, ((raw, dtype, name), a) in enumerate(zip(params, given)):
            is_out = position >= n_in
            if isinstance(a, standin.ndarray):
                if a.dtype.name != dtype:
                    raise TypeError(f"{self.name}: {name} is declared {dtype}, got an array of {a.dtype.name}")
                if raw:
                    names[name] = Raw(name, a._a, C_TYPE_OF[dtype], is_out)
                    continue
                if is_out:
                    if a.shape != tuple(grid):
                        raise ValueError(f"{self.name}: output {name} has shape {a.shape}, the loop {tuple(grid)}")
                    outputs.append(name)
                    stores.append((name, a))
                    names[name] = Value(np.zeros(lanes, a.dtype), C_TYPE_OF[dtype])
                else:
                    names[name] = Value(np.broadcast_to(a._a, grid).reshape(-1), C_TYPE_OF[dtype])
            else:  # a Python or NumPy scalar, converted to the declared type as CuPy does
                if raw or is_out:
                    raise TypeError(f"{self.name}: {name} must be an array")
                names[name] = Value(np.dtype(dtype).type(a), C_TYPE_OF[dtype])
            if not is_out:
                readonly.append(name)
        run = Interpreter(lanes, names, readonly, outputs)
        with np.errstate(over="ignore", under="ignore"):
            run.run(self.operation)
        for name, a in stores:
            a._a[...] = run.names[name].data.reshape(grid)
        result = given[n_in:]
        return result[0] if len(result) == 1 else tuple(result)
