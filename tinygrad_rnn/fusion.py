"""Elementwise fusion for the compiled tape: a run of elementwise ops of a step becomes one generated kernel.

A recurrent step is a few matrix products and many small elementwise ops (an LSTM step: 2 products,
then Add, Chunk, 3 Sigmoid, 2 Tanh, 3 Mul and an Add). On a cell's small arrays each NumPy call costs
more in Python and dispatch than in arithmetic, and the backward doubles the count. So the tape
(tape.py) hands each run of consecutive elementwise entries of its step to `fuse`, which writes the
run as two loops over the elements (one forward, one backward) and compiles them with numba:

    forward:   for i, j:  v1 = a[i, j] + b[i, j];  v2 = 1 / (1 + exp(-v1));  ...;  out[i, j] = v9
    backward:  for i, j:  recompute v1 ... v9 (cheaper than storing them);  then, in reverse,
                          g_v9 = g_out[i, j];  g_v1 += g_v2 * v2 * (1 - v2);  ...;  g_a[i, j] += g_v1

The run becomes one entry of the tape whose op is a generated `Function`; the matrix products stay
BLAS calls. What fuses: Add, Sub, Mul, Div, Neg, Exp, Tanh, Sigmoid and ReLU on arrays of the
step's shape (N, H), on rows (H,) that broadcast over the batch, and on constants of one value; and
Chunk along the last axis, read in place (`chunk m` of x at (i, j) is x[i, m*H + j]), with the
elementwise ops before it (an LSTM's `gates = x_part + h_part`) computed at the columns each chunk
reads. Anything else ends the run.

The kernels are cached on disk (numba's `cache=True`, the generated source kept under
~/.cache/tinygrad_rnn/fusion or $TINYGRAD_RNN_FUSION_CACHE), so only the first run of a cell on a
machine pays the compilation: about 2 s of CPU for an LSTM's two kernels, then 0.5 s per process to
import numba and load them (bench/RESULTS.md). A tape is fused from its first replay (`mode()`): the
float32 kernels' tanh is not NumPy's to the last bit, so a tape fused only once it had run often
enough would make a run's numbers depend on how long its process had been running, and a resumed
run would not compute what the uninterrupted one did. numba is the optional extra `fast`; without it, or with
TINYGRAD_RNN_FUSE=0, the tape replays op by op as before. On CuPy arrays the same groups become
CuPy ElementwiseKernels instead (fusion_cupy.py; no numba needed), under the same switch.
"""
import hashlib
import importlib.util
import os
import re
import sys

import numpy as np

from . import ops as _ops
from .function import Function

ENV = "TINYGRAD_RNN_FUSE"
CACHE_ENV = "TINYGRAD_RNN_FUSION_CACHE"

# op → (forward expression, [adjoint expression for each input]); {0}, {1} the inputs, {y} the output,
# {g} the output's adjoint
RULES = {
    _ops.Add: ("{0} + {1}", ["{g}", "{g}"]),
    _ops.Sub: ("{0} - {1}", ["{g}", "-{g}"]),
    _ops.Mul: ("{0} * {1}", ["{g} * {1}", "{g} * {0}"]),
    _ops.Div: ("{0} / {1}", ["{g} / {1}", "-{g} * {0} / ({1} * {1})"]),
    _ops.Neg: ("-{0}", ["-{g}"]),
    _ops.Exp: ("np.exp({0})", ["{g} * {y}"]),
    _ops.Tanh: ("tanh({0})", ["{g} * (T(1) - {y} * {y})"]),
    _ops.Sigmoid: ("sigmoid({0})", ["{g} * {y} * (T(1) - {y})"]),
    # written so that NaN passes through as np.maximum(x, 0) lets it (NaN <= 0 is false): a fused run
    # must not turn a diverging value into a finite one
    _ops.ReLU: ("T(0) if {0} <= T(0) else {0}", ["{g} if {0} > T(0) else T(0)"]),
}

# tanh and sigmoid as the kernels compute them. numba's np.tanh is one libm call per element (pip's
# llvmlite has no vector maths library), many times slower than NumPy's vectorised loop on float32
# (70-90x for 10^6 values on the development machine; np.exp 4-5x), so float32 kernels use a rational
# approximation of tanh (the one of Eigen and XLA, `generic_fast_tanh_float`: a degree-13/6 odd
# rational, within 4.1e-7 of tanh), pure arithmetic that vectorises; sigmoid(x) = (1 + tanh(x/2)) / 2,
# which is 1/(1 + e^-x) since tanh(x/2) = (1 - e^-x)/(1 + e^-x). The input is clamped to
# +-7.90531110763549805, where the rational reaches 1 in float32 (Eigen's and XLA's current clamp: their
# older one, 9, let it return 1 + 2 ulp for 8 < |x| < 9, and so sigmoid below 0 and 1 - y*y below 0).
# float64 kernels (the gradient checks) use the exact functions.
HELPERS = {
    "float32": """
@njit(inline="always", error_model="numpy", cache=True)
def tanh(x):
    c = T(7.90531110763549805)  # where the rational reaches 1 in float32 (see above)
    x = c if x > c else (-c if x < -c else x)
    x2 = x * x
    p = x2 * T(-2.76076847742355e-16) + T(2.00018790482477e-13)
    p = p * x2 + T(-8.60467152213735e-11)
    p = p * x2 + T(5.12229709037114e-08)
    p = p * x2 + T(1.48572235717979e-05)
    p = p * x2 + T(6.37261928875436e-04)
    p = p * x2 + T(4.89352455891786e-03)
    q = x2 * T(1.19825839466702e-06) + T(1.18534705686654e-04)
    q = q * x2 + T(2.26843463243900e-03)
    q = q * x2 + T(4.89352518554385e-03)
    return x * p / q


@njit(inline="always", error_model="numpy", cache=True)
def sigmoid(x):
    return T(0.5) + T(0.5) * tanh(T(0.5) * x)
""",
    "float64": """
@njit(inline="always", error_model="numpy", cache=True)
def tanh(x):
    return np.tanh(x)


@njit(inline="always", error_model="numpy", cache=True)
def sigmoid(x):
    return T(1) / (T(1) + np.exp(-x))
""",
}


def mode():
    """TINYGRAD_RNN_FUSE: "0" (or off/false/no) never fuse; anything else, and unset, fuse every tape as
    it is traced. Not "after so many replays", though importing numba costs a short run about half a
    second of CPU: whether a step is fused must not depend on the process's history, or a run resumed
    from a checkpoint (or `predict` in a new process) would compute in the last bits what the
    uninterrupted run did not."""
    value = os.environ.get(ENV, "").strip().lower()
    return "off" if value in ("0", "false", "no", "off") else "on"


def available(array=None):
    """Fusion not switched off, and a compiler for `array` (a traced value of the tape): CuPy's own
    ElementwiseKernel for a device array (fusion_cupy.py), numba for a NumPy one."""
    if mode() == "off":
        return False
    if array is not None and not on_host(array):
        return True
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def on_host(array):
    return isinstance(array, (np.ndarray, np.generic))


class Group:
    """A run of consecutive elementwise entries of a step, with what it reads and what others read of it;
    `through`: the inputs read as columns of another slot (slot → (source, first column))."""

    def __init__(self, entries, width, inputs, outputs, through=None):
        self.entries, self.width, self.inputs, self.outputs = entries, width, inputs, outputs
        self.through = through or {}


def find_groups(step, values, kind, returned, entries=()):
    """The runs of `step` (a tape's per-step entries, in order) worth fusing: [(indices, Group)].

    `values` and `kind` are the tape's slots (traced value, what each holds); `returned` the slots the
    step returns (h and the state); `entries` all the tape's entries, to read column slices in place."""
    columns = _column_slices(entries, values)
    readers = {}  # slot → indices of the step entries that read it
    for i, e in enumerate(step):
        for a in e.args:
            readers.setdefault(a, []).append(i)
    groups, run = [], []
    for i, e in enumerate(step + [None]):
        if e is not None and _fusable(e, values, kind):
            run.append(i)
            continue
        while len(run) >= 2:
            group = _as_group(step, run, values, returned, readers, columns)
            if group is not None:
                groups.append((run, group))
                break
            run = run[1:]  # an op the run's shape cannot take (an LSTM's wide Add used elsewhere): drop it
        run = []
    if not on_host(values[0]):  # on CuPy: only the groups its kernels can take (fusion_cupy.supports)
        from . import fusion_cupy
        groups = [(run, g) for run, g in groups if fusion_cupy.supports(g, values, kind)[0]]
    return groups


def _column_slices(entries, values):
    """slot → (source slot, first column) for each output of a Chunk or a column slice `x[:, a:b]` of a
    2-D array: a kernel reads the source at the offset instead. The slice is a strided view, which
    numba's loops do not vectorise; the hoisted source's rows are contiguous."""
    columns = {}
    for e in entries:
        x = values[e.args[0]] if e.args else None
        if getattr(x, "ndim", 0) != 2:
            continue
        if e.cls is _ops.Chunk and len(e.args) == 3 and not e.kwargs and values[e.args[2]] in (1, -1):
            width = x.shape[1] // values[e.args[1]]
            columns.update({o: (e.args[0], m * width) for m, o in enumerate(e.outs)})
        elif e.cls is _ops.GetItem and len(e.args) == 2 and not e.kwargs:
            index = values[e.args[1]]
            if isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None) and \
                    isinstance(index[1], slice) and index[1].step in (None, 1) and (index[1].start or 0) >= 0:
                columns[e.outs[0]] = (e.args[0], index[1].start or 0)
    return columns


def _fusable(e, values, kind):
    if e.cls is _ops.Chunk:
        if len(e.args) != 3 or e.kwargs:
            return False
        x, n, axis = (values[a] for a in e.args)
        return getattr(x, "ndim", 0) == 2 and axis in (1, -1) and x.dtype.name in HELPERS
    if e.cls not in RULES or e.kwargs or len(e.outs) != 1:
        return False
    out = values[e.outs[0]]
    return out.ndim == 2 and out.dtype.name in HELPERS and all(_readable(values[a], kind[a], out.shape) for a in e.args)


def _readable(value, kind, shape):
    """An input the kernel can read at (i, j): the output's shape, a broadcast row, or a constant of one value."""
    shape_of = getattr(value, "shape", None)
    if shape_of is None or getattr(value, "dtype", np.dtype(object)).kind != "f" and kind not in ("const", "value"):
        return False
    single = int(np.prod(shape_of)) == 1
    return shape_of == shape or shape_of in ((shape[1],), (1, shape[1])) and not single or \
        single and kind in ("const", "value")


def _as_group(step, run, values, returned, readers, columns):
    """The run as a Group, or None if it does not fit one element grid (N, H)."""
    members, entries = set(run), [step[k] for k in run]
    produced = {o for e in entries for o in e.outs}
    chunks = [e for e in entries if e.cls is _ops.Chunk]
    out_widths = {values[o].shape[1] for e in entries for o in e.outs}
    width = min(out_widths)
    if len({values[o].shape[0] for e in entries for o in e.outs}) != 1:
        return None
    for e in entries:  # a wide op (before a Chunk) is computed at the columns the chunks read
        out = values[e.outs[0]]
        if e.cls is _ops.Chunk or out.shape[1] == width:
            continue
        if e.outs[0] in returned or out.shape[1] % width or \
                any(k not in members or step[k].cls is not _ops.Chunk for k in readers.get(e.outs[0], [])):
            return None
        if any(values[a].shape != out.shape and int(np.prod(values[a].shape)) != 1 for a in e.args):
            return None  # a wide op reading a broadcast row: not worth the column arithmetic
    for e in chunks:
        if values[e.args[0]].shape[1] != values[e.args[1]] * width:
            return None
    inputs, through = [], {}
    for e in entries:
        for pos, a in enumerate(e.args):
            if a in produced or (e.cls is _ops.Chunk and pos > 0):
                continue
            if a in columns and columns[a][0] not in produced and values[a].shape[0] == values[e.outs[0]].shape[0]:
                through[a] = columns[a]  # read the source at an offset, not the strided slice
                a = columns[a][0]
            if a not in inputs:
                inputs.append(a)
    outside = {a for a, ks in readers.items() if any(k not in members for k in ks)}
    outputs = [o for e in entries for o in e.outs if o in returned or o in outside]
    if not outputs or any(values[o].shape[1] != width for o in outputs):
        return None
    return Group(entries, width, inputs, outputs, through)


# ---- code generation --------------------------------------------------------------------------------------
class _Writer:
    """Builds the scalar code of one element (i, j) of a group: `value(slot, col)` is a local name."""

    def __init__(self, group, values, kind, dtype):
        self.group, self.values, self.kind = group, values, kind
        self.width, self.dtype = group.width, np.dtype(dtype)
        self.made = {o: e for e in group.entries for o in e.outs}
        self.lines, self.names, self.nodes = [], {}, []  # nodes: (name, op, input names, input keys)
        self.loads = {}  # (input index, col) → local name of the loaded element
        self.literal = {}

    def constant(self, slot):
        return self.kind[slot] in ("const", "value") and int(np.prod(self.values[slot].shape)) == 1

    def value(self, slot, col):
        key = (slot, col)
        if key in self.names:
            return self.names[key]
        if slot in self.group.through:
            source, offset = self.group.through[slot]
            name = self.names[key] = self.value(source, f"{offset} + {col}")
            return name
        if slot not in self.made:
            if self.constant(slot):
                name = self.names[key] = f"T({float(np.asarray(self.values[slot]).ravel()[0])!r})"
                return name
            k = self.group.inputs.index(slot)
            name = self.names[key] = f"x{k}_{len(self.loads)}"
            self.loads[(k, col)] = name
            self.lines.append(f"{name} = {self.read(k, col)}")
            return name
        e = self.made[slot]
        if e.cls is _ops.Chunk:
            m = e.outs.index(slot)
            name = self.names[key] = self.value(e.args[0], f"{m * self.width} + {col}")
            return name
        args = [self.value(a, col) for a in e.args]
        name = self.names[key] = f"v{len(self.nodes)}"
        forward = RULES[e.cls][0].format(*args)
        self.lines.append(f"{name} = {forward}")
        self.nodes.append((name, e, args, [(a, col) for a in e.args]))
        return name

    def read(self, k, col):
        shape = self.values[self.group.inputs[k]].shape
        if len(shape) == 2 and shape[0] != 1:
            return f"in{k}[i, {col}]"
        if len(shape) == 2:
            return f"in{k}[0, {col}]"
        return f"in{k}[{col}]"  # a row (H,); a constant of one value is a literal, never read


def generate(group, values, kind, dtype):
    """Python source of the group's forward and backward kernels (numba-compiled by `compile_group`)."""
    w = _Writer(group, values, kind, dtype)
    outs = [w.value(o, "j") for o in group.outputs]
    rows = values[group.outputs[0]].shape[0]
    dt = f"np.{np.dtype(dtype).name}"
    ins = ", ".join(f"in{k}" for k in range(len(group.inputs)))
    body = ["        for j in range(W):"] + [f"            {line}" for line in w.lines]
    src = [f"import numpy as np\nfrom numba import njit\n\nN, W, T = {rows}, {group.width}, {dt}\n",
           HELPERS[np.dtype(dtype).name], "", '@njit(cache=True, error_model="numpy")', f"def forward({ins}):"]
    src += [f"    out{k} = np.empty((N, W), {dt})" for k in range(len(outs))]
    src += ["    for i in range(N):"] + body
    src += [f"            out{k}[i, j] = {name}" for k, name in enumerate(outs)]
    src += [f"    return ({', '.join(f'out{k}' for k in range(len(outs)))},)", ""]
    # the same, writing into arrays the caller gives (tape_codegen.py: this step's rows of a buffer for all
    # steps): no array made and no tuple returned per call, about 1 us of a step on small arrays
    src += ['@njit(cache=True, error_model="numpy")',
            f"def forward_into({ins}, {', '.join(f'out{k}' for k in range(len(outs)))}):", "    for i in range(N):"]
    src += body + [f"            out{k}[i, j] = {name}" for k, name in enumerate(outs)] + [""]
    # backward: recompute the element, then the adjoints in reverse
    grads = ", ".join(f"g{k}" for k in range(len(outs)))
    src += ['@njit(cache=True, error_model="numpy")', f"def backward({ins}, {grads}):"]
    wanted = [k for k, s in enumerate(group.inputs) if not w.constant(s)]
    src += [f"    d{k} = np.zeros(in{k}.shape, {dt})" for k in wanted]
    src += ["    for i in range(N):"] + body
    adj = {}  # local value name → its adjoint's name
    lines = []
    for k, name in enumerate(outs):
        if name in adj:
            lines.append(f"{adj[name]} += g{k}[i, j]")
        else:
            adj[name] = f"a_{name}"
            lines.append(f"a_{name} = g{k}[i, j]")
    for name, e, args, _ in reversed(w.nodes):
        if name not in adj:
            continue
        for pos, a in enumerate(args):
            if _is_literal(a):
                continue
            term = RULES[e.cls][1][pos].format(*args, y=name, g=adj[name])
            if a in adj:
                lines.append(f"{adj[a]} += {term}")
            else:
                adj[a] = f"a_{a}"
                lines.append(f"{adj[a]} = {term}")
    stores = []  # (input, the store's target, the adjoint stored)
    for (k, col), name in w.loads.items():
        if name in adj and k in wanted:
            target = w.read(k, col)
            stores.append((k, f"d{k}{target[len(f'in{k}'):]}", adj[name]))
    src += [f"            {line}" for line in lines + [f"{t} += {a}" for _, t, a in stores]]
    src += [f"    return ({''.join(f'd{k}, ' for k in wanted)})", ""]
    # the same, adding into arrays the caller gives (tape_codegen.py: a hoisted rows' slice, a running sum)
    src += ['@njit(cache=True, error_model="numpy")',
            f"def backward_into({ins}, {grads}, {''.join(f'd{k}, ' for k in wanted)}):", "    for i in range(N):"]
    src += body + [f"            {line}" for line in lines + [f"{t} += {a}" for _, t, a in stores]] + [""]
    # and once more, *writing* the gradients of the inputs whose every element it stores exactly once
    # (`settable`): the caller's arrays then need no zeros first, and two inputs that get the same gradient
    # (`same`: both sides of an Add) may share one array (tape_codegen.py)
    settable = _settable(group, values, w, stores, rows)
    src += ['@njit(cache=True, error_model="numpy")',
            f"def backward_set({ins}, {grads}, {''.join(f'd{k}, ' for k in wanted)}):", "    for i in range(N):"]
    src += body + [f"            {line}" for line in lines] + \
        [f"            {t} {'=' if k in settable else '+='} {a}" for k, t, a in stores] + [""]
    same = _same_gradients(settable, stores, lines)
    return "\n".join(src), Kernels(wanted, settable, same)


class Kernels:
    """What the generated backward kernels do with each input: `wanted`, the inputs that get a gradient;
    `settable`, those whose gradient backward_set writes (every element once) rather than adds; `same`,
    pairs of settable inputs that get the same gradient, element for element."""

    def __init__(self, wanted, settable, same):
        self.wanted, self.settable, self.same = wanted, settable, same


def _offset(col):
    """The first column of a load's column expression, `j`, `64 + j` or `0 + 64 + j`."""
    return sum(int(p) for p in col.split(" + ")[:-1])


def _settable(group, values, w, stores, rows):
    """The inputs of shape (N, K) whose loads read distinct blocks of W columns covering all K: each of
    their gradient's elements is stored exactly once per element (i, j) of the loop."""
    offsets = {}
    for (k, col), name in w.loads.items():
        offsets.setdefault(k, []).append(_offset(col))
    stored = {k for k, _, _ in stores}
    result = []
    for k in sorted(stored):
        shape = values[group.inputs[k]].shape
        if len(shape) != 2 or shape[0] != rows or shape[0] == 1:
            continue  # a row (H,) or (1, H): its gradient sums over the batch
        found = sorted(offsets[k])
        if found == list(range(0, shape[1], w.width)) and len(found) * w.width == shape[1]:
            result.append(k)
    return result


def _same_gradients(settable, stores, lines):
    """Pairs (k1, k2) of settable inputs whose stored adjoints are the same value at every column: names
    that are copies of one adjoint (`a_x = a_v0`, never added to after) count as that adjoint."""
    copy_of = {}
    for line in lines:
        name, op, value = line.split(" ", 2)
        if op == "=" and re.fullmatch(r"a_\w+", value):
            copy_of[name] = value
        elif op == "+=":
            copy_of.pop(name, None)
    root = lambda a: root(copy_of[a]) if a in copy_of else a  # noqa: E731
    signature = {}
    for k, target, a in stores:
        if k in settable:
            signature.setdefault(k, []).append((target.split("[", 1)[1], root(a)))
    keys = sorted(signature)
    return [(k1, k2) for n, k1 in enumerate(keys) for k2 in keys[n + 1:]
            if sorted(signature[k1]) == sorted(signature[k2])]


def _is_literal(name):
    return name.startswith("T(")


_kernels = {}


def compile_group(group, values, kind, dtype):
    """The group's Function: its forward and backward are the generated kernels (CuPy's for device arrays)."""
    if not on_host(values[group.outputs[0]]):
        from . import fusion_cupy
        return fusion_cupy.compile_group(group, values, kind, dtype)
    source, kernels = generate(group, values, kind, dtype)
    wanted = kernels.wanted
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    if digest not in _kernels:
        _kernels[digest] = _load(source, digest)
    module = _kernels[digest]
    forward, backward = module.forward, module.backward
    n_in = len(group.inputs)
    single = len(group.outputs) == 1

    class Fused(Function):
        @staticmethod
        def forward(ctx, *inputs):
            ctx.save_for_backward(*inputs)
            out = forward(*inputs)
            return out[0] if single else out

        @staticmethod
        def backward(ctx, *grads):
            d = backward(*ctx.saved_tensors, *grads)
            result = [None] * n_in
            for k, g in zip(wanted, d):
                result[k] = g
            return tuple(result)
    Fused.__name__ = Fused.__qualname__ = "Fused[" + ", ".join(e.cls.__name__ for e in group.entries) + "]"
    Fused.source = source
    Fused.numba_kernels = forward, backward, wanted  # tape_codegen.py calls these directly, without a ctx
    Fused.backward_into = module.backward_into
    Fused.forward_into, Fused.backward_set, Fused.kernels = module.forward_into, module.backward_set, kernels
    return Fused


def _load(source, digest):
    """Import the generated source from a file: numba caches compiled code only for functions in files."""
    folder = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tinygrad_rnn", "fusion")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"fused_{digest}.py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)  # another process writing the same kernel writes the same text
    name = f"tinygrad_rnn_fused_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cache finds the module of a cached kernel by its name
    spec.loader.exec_module(module)
    return module
