"""Elementwise fusion on CuPy: each group that fusion.find_groups found becomes two `cupy.ElementwiseKernel`s.

The groups, and what a group computes, are fusion.py's; only the language differs. There the element
is Python that numba compiles for the CPU; here it is the body of a CUDA C kernel that CuPy compiles
(NVRTC) for the GPU, one thread per element of the step's (N, H) grid:

    forward:   const float x0_0 = in0;  const float v0 = x0_0 + in1;  const float v1 = 1.0f / (1.0f + expf(-v0));
               ...;  out0 = v9;
    backward:  recompute x0_0 ... v9;  float a_v9 = g0;  float a_v0 = a_v1 * v1 * (1.0f - v1);  ...;  d0 = a_x0_0;

An input of the step's shape is an ordinary parameter (`float32 in0`: the element at i); a row (H,)
too (CuPy broadcasts it over the batch; its gradient is the per-element array summed over the batch
after the kernel); a wider array read in columns (an LSTM's gates, read by Chunk) is `raw` and
indexed `in1[row * 4H + m*H + col]` (a C-order index over its shape, whatever its strides: CuPy's
CArray::operator[](ptrdiff_t), cupy/_core/include/cupy/carray.cuh; `i` is the thread's element of the
grid), its gradient a pre-zeroed `raw` output written at the same places. Each thread writes its own elements, so no two threads write one place: a group whose reads
of one input overlap (two column slices less than H apart) would break that, and is left unfused.

float32 kernels use float literals (`1.0f`) and the float functions (`tanhf`, `expf`), float64 ones
double literals and `tanh`, `exp`: no silent promotion to double, which on most GPUs is many times
slower. The GPU's own tanhf is fast, so there is no rational approximation here.

No numba: CuPy is the compiler. The module is imported only for device arrays, and CuPy is reached
through tinygrad_rnn.backend (the module that made the arrays), never imported here.
"""
import hashlib

import numpy as np

from . import ops as _ops
from .backend import array_module
from .backend import to_numpy as backend_to_numpy
from .function import Function


class Unsupported(Exception):
    """A group this backend does not fuse (its entries then replay op by op); says why."""


C_TYPES = {"float32": "float", "float64": "double"}
# the C maths per dtype: the float functions for float, the double ones for double
C_FUNCTIONS = {"float32": {"exp": "expf", "tanh": "tanhf"}, "float64": {"exp": "exp", "tanh": "tanh"}}

# op → (forward expression, [adjoint expression for each input]), as fusion.RULES but in C; {0}, {1} the
# inputs' names (or literals), {y} the output's name, {g} the output's adjoint, {one} {zero} typed literals
RULES = {
    _ops.Add: ("{0} + {1}", ["{g}", "{g}"]),
    _ops.Sub: ("{0} - {1}", ["{g}", "-{g}"]),
    _ops.Mul: ("{0} * {1}", ["{g} * {1}", "{g} * {0}"]),
    _ops.Div: ("{0} / {1}", ["{g} / {1}", "-{g} * {0} / ({1} * {1})"]),
    _ops.Neg: ("-{0}", ["-{g}"]),
    _ops.Exp: ("{exp}({0})", ["{g} * {y}"]),
    _ops.Tanh: ("{tanh}({0})", ["{g} * ({one} - {y} * {y})"]),
    _ops.Sigmoid: ("{one} / ({one} + {exp}(-{0}))", ["{g} * {y} * ({one} - {y})"]),
    # NaN passes on, as xp.maximum(x, 0) lets it (NaN <= 0 is false): a diverging value stays visible
    _ops.ReLU: ("{0} <= {zero} ? {zero} : {0}", ["{0} > {zero} ? {g} : {zero}"]),
}


def literal(value, dtype):
    """A constant as a C literal of the kernel's type: `0.5f` for float, `0.5` for double; negative ones
    in parentheses, so that `-{0}` never reads `--0.5f` (C's decrement)."""
    dtype = np.dtype(dtype)
    value = dtype.type(value)
    if not np.isfinite(value):
        raise Unsupported(f"the constant {value} has no literal")
    text = str(value) if dtype == np.float32 else repr(float(value))
    if "." not in text and "e" not in text and "inf" not in text:
        text += ".0"
    text += "f" if dtype == np.float32 else ""
    return f"({text})" if text.startswith("-") else text


class Kernel:
    """One generated ElementwiseKernel's arguments: `cupy.ElementwiseKernel(in_params, out_params, body, name)`."""

    def __init__(self, in_params, out_params, body, name):
        self.in_params, self.out_params, self.body, self.name = in_params, out_params, body, name

    def source(self):
        return f"// {self.name}\n// in:  {self.in_params}\n// out: {self.out_params}\n{self.body}"


class _Element:
    """The C code of one element of a group: `value(slot, offset)` is the name (or literal) of the slot's
    value at column `offset + col` of the element's row."""

    def __init__(self, group, values, kind, dtype):
        self.group, self.values, self.kind = group, values, kind
        self.dtype = np.dtype(dtype).name
        if self.dtype not in C_TYPES:
            raise Unsupported(f"dtype {self.dtype}")
        self.c = C_TYPES[self.dtype]
        self.rows, self.width = values[group.outputs[0]].shape[0], group.width
        self.made = {o: e for e in group.entries for o in e.outs}
        self.lines, self.names, self.nodes = [], {}, []  # nodes: (name, entry, argument names)
        self.loads = {}  # (input index, offset) → local name of the loaded element
        self.modes = {}  # input index → "element" (the step's shape), "row" (broadcast) or "raw" (read in columns)
        self.words = {"one": literal(1, dtype), "zero": literal(0, dtype), **C_FUNCTIONS[self.dtype]}

    def constant(self, slot):
        return self.kind[slot] in ("const", "value") and int(np.prod(getattr(self.values[slot], "shape", ()))) == 1

    def value(self, slot, offset):
        key = (slot, offset)
        if key in self.names:
            return self.names[key]
        if slot in self.group.through:
            source, start = self.group.through[slot]
            name = self.names[key] = self.value(source, start + offset)
            return name
        if slot not in self.made:
            if self.constant(slot):  # read once, when the kernel is made (a host copy on a GPU)
                name = self.names[key] = literal(_host(self.values[slot]).ravel()[0], self.dtype)
                return name
            k = self.group.inputs.index(slot)
            name = self.names[key] = f"x{k}_{offset}"
            self.lines.append(f"const {self.c} {name} = {self.read(k, offset)};")
            self.loads[(k, offset)] = name
            return name
        e = self.made[slot]
        if e.cls is _ops.Chunk:
            name = self.names[key] = self.value(e.args[0], e.outs.index(slot) * self.width + offset)
            return name
        args = [self.value(a, offset) for a in e.args]
        name = self.names[key] = f"v{len(self.nodes)}"
        self.lines.append(f"const {self.c} {name} = {RULES[e.cls][0].format(*args, **self.words)};")
        self.nodes.append((name, e, args))
        return name

    def read(self, k, offset):
        """Where input k's element at `offset + col` is: the parameter itself, or a raw index."""
        value = self.values[self.group.inputs[k]]
        shape, n, w = tuple(value.shape), self.rows, self.width
        if value.dtype.name != self.dtype:
            raise Unsupported(f"an input of dtype {value.dtype.name} in a {self.dtype} group")
        if shape == (n, w):
            mode = "element"
        elif shape in ((w,), (1, w)):
            mode = "row"
        elif len(shape) == 2 and shape[0] == n and offset + w <= shape[1]:
            mode = "raw"
        else:
            raise Unsupported(f"an input of shape {shape} read at column {offset} of a ({n}, {w}) grid")
        if self.modes.setdefault(k, mode) != mode or (mode != "raw" and offset != 0):
            raise Unsupported(f"input {k} read both as an element and in columns")
        if mode != "raw":
            return f"in{k}"
        return f"in{k}[row * {shape[1]} + {offset} + col]" if offset else f"in{k}[row * {shape[1]} + col]"


def generate(group, values, kind, dtype):
    """The group's two kernels, and how to call them: (forward Kernel, backward Kernel, Layout)."""
    w = _Element(group, values, kind, dtype)
    outs = [w.value(o, 0) for o in group.outputs]
    dt, c, inputs = w.dtype, w.c, group.inputs
    used = sorted({k for k, _ in w.loads})  # inputs the kernels read (constants are literals, never read)
    if not used:
        raise Unsupported("the group reads no array")
    head = []
    if "raw" in w.modes.values():  # i runs over the (N, W) grid of the non-raw parameters
        head = [f"const ptrdiff_t row = i / {w.width};", f"const ptrdiff_t col = i % {w.width};"]
    param = {k: f"{'raw ' if w.modes[k] == 'raw' else ''}{dt} in{k}" for k in used}
    digest_of = lambda *parts: hashlib.sha1("\n".join(parts).encode()).hexdigest()[:12]  # noqa: E731

    in_params = ", ".join(param[k] for k in used)
    out_params = ", ".join(f"{dt} out{m}" for m in range(len(outs)))
    body = "\n".join(head + w.lines + [f"out{m} = {name};" for m, name in enumerate(outs)])
    forward = Kernel(in_params, out_params, body,
                     f"tinygrad_rnn_fused_forward_{digest_of(in_params, out_params, body)}")

    # backward: recompute the element, then the adjoints in reverse (as fusion.generate does)
    adj, lines = {}, []
    for m, name in enumerate(outs):
        if name in adj:
            lines.append(f"{adj[name]} += g{m};")
        elif not _is_literal(name):
            adj[name] = f"a_{name}"
            lines.append(f"{c} a_{name} = g{m};")
    for name, e, args in reversed(w.nodes):
        if name not in adj:
            continue
        for pos, a in enumerate(args):
            if _is_literal(a):
                continue
            term = RULES[e.cls][1][pos].format(*args, y=name, g=adj[name], **w.words)
            if a in adj:
                lines.append(f"{adj[a]} += {term};")
            else:
                adj[a] = f"a_{a}"
                lines.append(f"{c} {adj[a]} = {term};")
    wanted = [k for k in used if any(name in adj for (j, _), name in w.loads.items() if j == k)]
    for k in wanted:
        offsets = sorted(off for (j, off), name in w.loads.items() if j == k and name in adj)
        if w.modes[k] != "raw":
            lines.append(f"d{k} = {adj[w.loads[(k, 0)]]};")
            continue
        if any(b - a < w.width for a, b in zip(offsets, offsets[1:])):  # two threads would write one place
            raise Unsupported(f"input {k} is read at overlapping columns {offsets}")
        for off in offsets:
            lines.append(f"{w.read(k, off).replace(f'in{k}[', f'd{k}[', 1)} = {adj[w.loads[(k, off)]]};")
    if not wanted:
        raise Unsupported("no input of the group gets a gradient")
    b_in = ", ".join([in_params] + [f"{dt} g{m}" for m in range(len(outs))])
    b_out = ", ".join(f"{'raw ' if w.modes[k] == 'raw' else ''}{dt} d{k}" for k in wanted)
    b_body = "\n".join(head + w.lines + lines)
    backward = Kernel(b_in, b_out, b_body, f"tinygrad_rnn_fused_backward_{digest_of(b_in, b_out, b_body)}")
    layout = Layout(len(inputs), used, wanted, {k: w.modes[k] for k in used},
                    [tuple(values[inputs[k]].shape) for k in range(len(inputs))], (w.rows, w.width), len(outs), dt)
    return forward, backward, layout


class Layout:
    """How the Function calls the kernels: which of the group's inputs they read, which get a gradient,
    and in what form (mode per input, the inputs' shapes, the grid)."""

    def __init__(self, n_in, used, wanted, modes, shapes, grid, n_out, dtype):
        self.n_in, self.used, self.wanted, self.modes = n_in, used, wanted, modes
        self.shapes, self.grid, self.n_out, self.dtype = shapes, grid, n_out, dtype


def _host(value):
    """A constant's value on the host: one small copy from the device, once per kernel made."""
    return np.asarray(value if isinstance(value, (int, float, np.ndarray, np.generic)) else backend_to_numpy(value))


def _is_literal(name):
    return not name[:1].isalpha()  # names are v3, x0_8, a_v3; literals are 1.0f, (-0.5f)


def supports(group, values, kind):
    """Whether this backend fuses the group; the reason when it does not."""
    dtype = values[group.outputs[0]].dtype
    try:
        group.generated = (dtype, generate(group, values, kind, dtype))  # kept for compile_group
    except Unsupported as e:
        return False, str(e)
    return True, None


_kernels = {}  # kernel name (a digest of its source) → the compiled ElementwiseKernel


def _compiled(xp, kernel):
    key = (xp.__name__, kernel.name)
    if key not in _kernels:
        _kernels[key] = xp.ElementwiseKernel(kernel.in_params, kernel.out_params, kernel.body, kernel.name)
    return _kernels[key]


def compile_group(group, values, kind, dtype):
    """The group's Function: its forward and backward are the generated ElementwiseKernels."""
    made = getattr(group, "generated", None)
    forward, backward, layout = made[1] if made and made[0] == dtype else generate(group, values, kind, dtype)
    xp = array_module(values[group.outputs[0]])
    forward_kernel, backward_kernel = _compiled(xp, forward), _compiled(xp, backward)
    used, wanted, modes, shapes = layout.used, layout.wanted, layout.modes, layout.shapes
    grid, dt, single = layout.grid, np.dtype(layout.dtype), layout.n_out == 1

    class Fused(Function):
        @staticmethod
        def forward(ctx, *inputs):
            ctx.save_for_backward(*inputs)
            outs = [xp.empty(grid, dt) for _ in range(layout.n_out)]
            forward_kernel(*[inputs[k] for k in used], *outs)
            return outs[0] if single else tuple(outs)

        @staticmethod
        def backward(ctx, *grads):
            inputs = ctx.saved_tensors
            grads = [g if g.dtype == dt else g.astype(dt) for g in grads]
            d = [xp.zeros(shapes[k], dt) if modes[k] == "raw" else xp.empty(grid, dt) for k in wanted]
            backward_kernel(*[inputs[k] for k in used], *grads, *d)
            result = [None] * layout.n_in  # an input the kernels never read gets no gradient
            for k, g in zip(wanted, d):
                result[k] = g.sum(axis=0).reshape(shapes[k]) if modes[k] == "row" else g
            return tuple(result)
    Fused.__name__ = Fused.__qualname__ = "Fused[" + ", ".join(e.cls.__name__ for e in group.entries) + "]"
    Fused.source = forward.source() + "\n\n" + backward.source()
    Fused.kernels, Fused.layout = (forward, backward), layout
    return Fused
