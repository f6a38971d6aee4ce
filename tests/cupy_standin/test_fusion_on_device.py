"""Elementwise fusion on CuPy (tinygrad_rnn/fusion_cupy.py): each fused group of a compiled step is two
generated `cupy.ElementwiseKernel`s, and on the stand-in their C bodies are *run* (elementwise.py, a
strict interpreter of the C they use). So these tests prove that the generated C, read with C's
precedence and types, computes what the op-by-op replay computes, forward and backward, reads and
writes inside its arrays, never lets two threads write one place and never promotes float to double;
and, compiled by the host's C compiler, that it is C a compiler takes. What only a GPU proves: that
NVRTC compiles it, that CuPy binds the parameters as the stand-in does, and the speed
(bench/gpu_check.sh)."""
import ctypes
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, fusion, fusion_cupy, registry
from tinygrad_rnn.nn import CompileWarning, Recurrent, compile_cell


from . import elementwise, standin

CELLS = ["rnn", "rnn:nonlinearity=relu", "lstm", "gru", "gru:variant=cho", "peephole", "mgu", "indrnn"]


pytestmark = pytest.mark.usefixtures("example_cells")  # mgu and indrnn (tests/conftest.py)


def layer_run(name, fuse, dtype, where, monkeypatch, zoneout=None, lengths=(6, 4, 1), syncs=None):
    """Outputs, final states and every gradient of a stacked bidirectional layer on the compiled path, on
    the host; and the first cell's step as its ops' names. `syncs` (a list) collects the device reads
    of a second forward and backward (the first one traces the tape and makes the kernels)."""
    monkeypatch.setenv(fusion.ENV, "1" if fuse else "0")
    cell, _, option = name.partition(":")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get(cell), 2, 5, num_layers=2, bidirectional=True, path="compiled",
                    **dict([option.split("=")] if option else [])).to(dtype=dtype)
    if zoneout is not None:
        registry.regularisers.get("zoneout")(p=zoneout).on_model_built(type("Trainer", (), {"model": rnn}))
    rnn.to(where)
    for second in (False, True):
        rnn.zero_grad()
        with standin.SYNCS.counting() as seen:
            tg.manual_seed(3)  # the same zoneout masks at every call
            x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)).astype(dtype), requires_grad=True).to(where)
            out, final = rnn(x, lengths=None if lengths is None else np.array(lengths))
            states = [s for state in final for s in state]
            ((out * out).sum() + sum((s * s * 0.5).sum() for s in states)).backward()
        if second and syncs is not None:
            syncs.extend(seen)
    (tape,) = compile_cell(rnn._masked[0] if zoneout else rnn.cells[0]).tapes.values()  # (masks: the MaskedCell)
    results = [out.data, x.grad] + [s.data for s in states] + [p.grad for p in rnn.parameters()]
    return [backend.to_numpy(r) for r in results], [e.cls.__name__ for e in tape.program.step]


def fused(ops):
    return [op for op in ops if op.startswith("Fused[")]


# ---- fused kernels against the op-by-op replay ---------------------------------------------------------
@pytest.mark.parametrize("name", CELLS)
def test_fused_kernels_on_the_device_equal_the_op_by_op_replay_to_float32_rounding(cupy, name, monkeypatch):
    syncs = []
    got, ops = layer_run(name, True, np.float32, "cupy", monkeypatch, syncs=syncs)
    want, plain_ops = layer_run(name, False, np.float32, "cupy", monkeypatch)
    assert fused(ops) and not fused(plain_ops)
    assert not syncs, f"the fused replay read the device: {cupy.SYNCS.summary(syncs)}"
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", CELLS)
def test_fused_kernels_on_the_device_equal_numpy_in_float64(cupy, name, monkeypatch):
    got, ops = layer_run(name, True, np.float64, "cupy", monkeypatch)
    want, _ = layer_run(name, False, np.float64, "numpy", monkeypatch)  # the host replay, op by op
    assert fused(ops)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "mgu", "indrnn"])
def test_zoneout_masks_reach_the_fused_kernels_on_the_device(cupy, name, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        got, ops = layer_run(name, True, np.float64, "cupy", monkeypatch, zoneout=0.3)
    want, _ = layer_run(name, False, np.float64, "numpy", monkeypatch, zoneout=0.3)
    unmasked, _ = layer_run(name, False, np.float64, "numpy", monkeypatch)
    assert fused(ops)
    assert not np.allclose(want[0], unmasked[0])  # the masks changed something, and the kernels kept it
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_an_lstm_step_on_the_device_is_one_product_and_one_kernel(cupy, monkeypatch):
    _, ops = layer_run("lstm", True, np.float32, "cupy", monkeypatch, lengths=None)
    assert ops == ["Linear", "Fused[Add, Chunk, Sigmoid, Sigmoid, Tanh, Sigmoid, Mul, Mul, Add, Tanh, Mul]"]


# (lstm's fused gradients are checked by the float64 comparison above, against the gradchecked host replay;
# its gradcheck through the interpreter costs 8 s, too much for gpu_check.sh's one minute of stand-in tests)
@pytest.mark.parametrize("name", ["gru", "mgu", "indrnn"])
def test_gradcheck_passes_on_the_fused_compiled_path_on_the_device(on_device, name, monkeypatch):
    from tinygrad_rnn.runner import lessons
    monkeypatch.setenv(fusion.ENV, "1")
    check = lessons.check_cell(name, layers=2, bidirectional=True, hidden=3, steps=3, batch=2, path="compiled")
    assert check.ok, check


def test_a_fused_relu_on_the_device_passes_nan_on_as_the_op_by_op_replay_does(cupy, monkeypatch):
    def run(fuse):
        monkeypatch.setenv(fusion.ENV, "1" if fuse else "0")
        tg.manual_seed(0)
        rnn = Recurrent(registry.cells.get("rnn"), 2, 3, path="compiled", nonlinearity="relu").to("cupy")
        x = np.random.default_rng(1).standard_normal((2, 4, 2)).astype(np.float32)
        x[0, 1, 0] = np.nan
        out, _ = rnn(Tensor(x).to("cupy"))
        (tape,) = compile_cell(rnn.cells[0]).tapes.values()
        assert bool(fused([e.cls.__name__ for e in tape.program.step])) == fuse
        return backend.to_numpy(out.data)
    got, want = run(True), run(False)
    assert np.isnan(want[0, 1:]).all()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_fusion_on_the_device_needs_no_numba(cupy, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now fails
    assert not fusion.available(np.zeros(1)) and fusion.available(cupy.zeros(1))
    got, ops = layer_run("gru", True, np.float32, "cupy", monkeypatch)
    assert fused(ops)


def test_the_same_switch_turns_fusion_off_and_fuses_from_the_first_replay(cupy, monkeypatch):
    _, ops = layer_run("gru", False, np.float32, "cupy", monkeypatch)
    assert not fused(ops) and "Sigmoid" in ops
    monkeypatch.delenv(fusion.ENV, raising=False)  # the default
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get("gru"), 2, 4, path="compiled").to("cupy")
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5, 2)).astype(np.float32)).to("cupy")
    seen = []
    for _ in range(3):
        rnn(x)
        (tape,) = compile_cell(rnn.cells[0]).tapes.values()
        seen.append(bool(fused([e.cls.__name__ for e in tape.program.step])))
    assert seen == [True] * 3


# ---- the generated C ----------------------------------------------------------------------------------
def gru_kernels(dtype, monkeypatch, cupy):
    monkeypatch.setenv(fusion.ENV, "1")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get("gru"), 2, 5, path="compiled").to(dtype=dtype).to("cupy")
    rnn(Tensor(np.zeros((3, 4, 2), dtype)).to("cupy"))
    (tape,) = compile_cell(rnn.cells[0]).tapes.values()
    (op,) = [e.cls for e in tape.program.step if e.cls.__name__.startswith("Fused[")]
    return op.kernels


GRU_FORWARD = """\
const ptrdiff_t row = i / 5;
const ptrdiff_t col = i % 5;
const float x1_5 = in1[row * 15 + 5 + col];
const float x0_5 = in0[row * 15 + 5 + col];
const float v0 = x1_5 + x0_5;
const float v1 = 1.0f / (1.0f + expf(-v0));
const float v2 = 1.0f - v1;
const float x1_10 = in1[row * 15 + 10 + col];
const float x1_0 = in1[row * 15 + col];
const float x0_0 = in0[row * 15 + col];
const float v3 = x1_0 + x0_0;
const float v4 = 1.0f / (1.0f + expf(-v3));
const float x0_10 = in0[row * 15 + 10 + col];
const float v5 = v4 * x0_10;
const float v6 = x1_10 + v5;
const float v7 = tanhf(v6);
const float v8 = v2 * v7;
const float x3_0 = in3;
const float v9 = v1 * x3_0;
const float v10 = v8 + v9;
out0 = v10;"""


def test_a_gru_steps_kernel_is_this_c(cupy, monkeypatch):
    """The GRU's step (gru.py: r, z, n from the two projections' chunks; h' = (1 - z) n + z h) as C: the
    gates read in place from the (N, 3H) projections (raw, at columns 0, H, 2H), h an element, the 1 of
    1 - z a float literal; the backward recomputes the element, then writes each gate's gradient where
    the gate was read."""
    forward, backward = gru_kernels(np.float32, monkeypatch, cupy)
    assert forward.body == GRU_FORWARD
    assert (forward.in_params, forward.out_params) == ("raw float32 in0, raw float32 in1, float32 in3", "float32 out0")
    assert backward.in_params == forward.in_params + ", float32 g0"
    assert backward.out_params == "raw float32 d0, raw float32 d1, float32 d3"
    assert backward.body.startswith(GRU_FORWARD.rsplit("\n", 1)[0] + "\nfloat a_v10 = g0;\n")
    assert "a_v1 += -a_v2;" in backward.body  # z reaches h' twice: through 1 - z and through z h
    assert backward.body.endswith("d1[row * 15 + 10 + col] = a_x1_10;\nd3 = a_x3_0;")


def test_float64_kernels_use_double_literals_and_the_double_functions(cupy, monkeypatch):
    forward, backward = gru_kernels(np.float64, monkeypatch, cupy)
    single, _ = gru_kernels(np.float32, monkeypatch, cupy)
    assert forward.body == single.body.replace("float", "double").replace("1.0f", "1.0").replace(
        "expf", "exp").replace("tanhf", "tanh")
    assert "float" not in forward.body + backward.body and "tanh(" in forward.body
    assert forward.in_params == "raw float64 in0, raw float64 in1, float64 in3"


@pytest.mark.parametrize("value, dtype, text", [(1, np.float32, "1.0f"), (0.5, np.float64, "0.5"),
                                                (-0.5, np.float32, "(-0.5f)"), (1e-8, np.float32, "1e-08f"),
                                                (0.1, np.float32, "0.1f"), (-2, np.float64, "(-2.0)")])
def test_constants_are_typed_c_literals_and_negative_ones_are_parenthesised(value, dtype, text):
    assert fusion_cupy.literal(value, dtype) == text
    # -{0} of a negative constant must not read as C's decrement: -(-0.5f), never --0.5f
    assert "--" not in fusion_cupy.RULES[tg.ops.Neg][0].format(fusion_cupy.literal(value, dtype))


def test_a_group_whose_threads_would_write_one_place_is_left_unfused(cupy, monkeypatch):
    """A cell reading two column slices of one array less than H apart (g[:, :H] and g[:, 1:]): fused,
    two threads would write one element of g's gradient. On the device that group replays op by op
    (and gives NumPy's answer); the generator says why."""

    @tg.register_cell("overlap")
    class Overlapping(tg.nn.Module):
        def __init__(self, input_size, hidden_size):
            self.hidden_size = hidden_size
            self.weight_ih = tg.nn.uniform_parameter((hidden_size + 1, input_size), 0.5)
            self.weight_hh = tg.nn.uniform_parameter((hidden_size + 1, hidden_size), 0.5)

        def initial_state(self, batch_size):
            w = self.weight_hh
            return (Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend),)

        def forward(self, x, state):
            (h,) = state
            g = x @ self.weight_ih.T + h @ self.weight_hh.T
            h = (g[:, :self.hidden_size] * g[:, 1:]).tanh()
            return h, (h,)

    got, ops = layer_run("overlap", True, np.float64, "cupy", monkeypatch)
    want, _ = layer_run("overlap", False, np.float64, "numpy", monkeypatch)
    assert "Mul" in ops and "Tanh" in ops and not fused(ops)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    cell = registry.cells.get("overlap")(2, 5).to(dtype=np.float64)  # its tape traced on the host, unfused
    t = compile_cell(cell).tape_for(Tensor(np.zeros((3, 4, 2))), (Tensor(np.zeros((3, 5))),))
    step = t.program.step
    groups = fusion.find_groups(step, t.values, t.kind, {t.h, *t.state_out}, t.entries)
    assert [[step[k].cls.__name__ for k in run] for run, _ in groups] == [["Mul", "Tanh"]]
    assert fusion_cupy.supports(groups[0][1], t.values, t.kind) == \
        (False, "input 0 is read at overlapping columns [0, 1]")


# ---- the stand-in's interpreter: the oracle above, held to C ---------------------------------------------
def kernel_run(body, in_params="float32 a, float32 b", out_params="float32 y", args=None):
    args = args or [standin.asarray(np.array([1.5, -2.0, 4.0], np.float32)),
                    standin.asarray(np.array([2.0, 3.0, 0.5], np.float32))]
    return standin.ElementwiseKernel(in_params, out_params, body, "k")(*args).get()


@pytest.mark.parametrize("body, want", [
    ("y = a - b - a;", lambda a, b: -b),                     # left-associative
    ("y = a + b * a;", lambda a, b: a + b * a),              # * before +
    ("y = -a * b;", lambda a, b: -a * b),
    ("y = a > b ? a - b : b - a;", lambda a, b: np.abs(a - b)),
    ("const float t = a / (b + 1.0f); y = t * t;", lambda a, b: (a / (b + 1)) ** 2),
    ("y = tanhf(a) + expf(-b);", lambda a, b: np.tanh(a) + np.exp(-b)),
    ("float s = a; s += b; y = s;", lambda a, b: a + b),
])
def test_the_interpreter_reads_c_with_cs_precedence(body, want):
    a, b = np.array([1.5, -2.0, 4.0], np.float32), np.array([2.0, 3.0, 0.5], np.float32)
    np.testing.assert_allclose(kernel_run(body), want(a, b), rtol=1e-6)


@pytest.mark.parametrize("body, error", [
    ("y = a * 2.0;", "mixed types"),                 # a double literal in a float kernel
    ("y = a * 2;", "mixed types"),                   # an integer in float arithmetic
    ("y = tanh(a);", "argument of tanh"),            # the double function on a float
    ("y = c;", "used before it is declared"),
    ("const float t = a; t = b; y = t;", "const"),
    ("a = b; y = a;", "an input"),
    ("const float t = a;", "never assigns"),
    ("y = y + a;", "read before the kernel assigns it"),
    ("y = a --b;", "decrement"),                     # C reads -- as decrement, not minus minus
    ("y = sqrtf(a);", "unknown function"),
])
def test_the_interpreter_refuses_what_c_on_a_gpu_would_get_wrong_or_slow(body, error):
    with pytest.raises(elementwise.KernelError, match=error):
        kernel_run(body)


def test_the_interpreter_catches_out_of_bounds_reads_and_races_on_raw_arrays():
    x = standin.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    grid = standin.zeros((2, 3), np.float32)
    with pytest.raises(IndexError, match="out of bounds"):
        kernel_run("y = x[i + 1];", "raw float32 x", "float32 y", [x, grid])
    d = standin.zeros((2, 3), np.float32)
    with pytest.raises(elementwise.KernelError, match="race"):
        kernel_run("d[i / 3] = g;", "float32 g", "raw float32 d", [grid, d])
    ok = standin.zeros((2, 3), np.float32)
    kernel_run("d[i] = x[i] * 2.0f;", "raw float32 x, float32 g", "raw float32 d", [x, grid, ok])
    np.testing.assert_array_equal(ok.get(), np.arange(6).reshape(2, 3) * 2)


def test_the_interpreter_refuses_numpy_arrays_and_wrong_dtypes_as_cupy_does():
    kernel = standin.ElementwiseKernel("float32 a", "float32 y", "y = a;", "k")
    with pytest.raises(TypeError, match="Unsupported type"):
        kernel(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="declared float32"):
        kernel(standin.ones(3, np.float64))


# ---- the generated C, compiled by the host's C compiler ------------------------------------------------------
CC = shutil.which("cc") or shutil.which("gcc")
CXX = shutil.which("c++") or shutil.which("g++")


def as_host_c(kernel, shapes, grid):
    """The kernel as a C99 function over host arrays, one loop iteration per CUDA thread: what
    ElementwiseKernel wraps around the body, written out for a CPU (non-raw inputs read at i, or at
    i % W for a broadcast row; non-raw outputs stored at i; raw arrays as pointers)."""
    params = [(raw, dtype, name, False) for raw, dtype, name in elementwise.parse_params(kernel.in_params)]
    params += [(raw, dtype, name, True) for raw, dtype, name in elementwise.parse_params(kernel.out_params)]
    size = int(np.prod(grid))
    signature, before, after = [], [], []
    for (raw, dtype, name, out), shape in zip(params, shapes):
        c = elementwise.C_TYPE_OF[dtype]
        signature.append(f"{'' if out else 'const '}{c}* p_{name}")
        if raw:
            before.append(f"{'' if out else 'const '}{c}* {name} = p_{name};")
        elif out:
            before.append(f"{c} {name};")
            after.append(f"p_{name}[i] = {name};")
        else:
            index = "i" if int(np.prod(shape)) == size else f"i % {int(np.prod(shape))}"
            before.append(f"const {c} {name} = p_{name}[{index}];")
    lines = before + ["{"] + kernel.body.splitlines() + ["}"] + after
    return ("#include <math.h>\n#include <stddef.h>\n\nvoid kernel(" + ", ".join(signature) + ") {\n"
            f"    for (ptrdiff_t i = 0; i < {size}; i++) {{\n" + "".join(f"        {line}\n" for line in lines)
            + "    }\n}\n")


def run_host_c(source, arrays, folder, name):
    path = os.path.join(folder, name)
    with open(path + ".c", "w") as f:
        f.write(source)
    flags = ["-std=c99", "-O1", "-fPIC", "-shared", "-Werror=double-promotion", "-Werror=float-conversion",
             "-Werror=implicit-function-declaration", "-Werror=implicit-int"]
    done = subprocess.run([CC, *flags, "-o", path + ".so", path + ".c", "-lm"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ctypes.CDLL(path + ".so").kernel(*[a.ctypes.data_as(ctypes.c_void_p) for a in arrays])
    if CXX is not None:  # CUDA kernels are C++: the same text read as C++ too
        strict = ["-Werror=double-promotion", "-Werror=float-conversion"]
        done = subprocess.run([CXX, "-x", "c++", "-fsyntax-only", *strict, path + ".c"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(CC is None, reason="no C compiler on this machine")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn:nonlinearity=relu", "peephole", "mgu", "indrnn"])
def test_the_generated_c_compiles_as_c99_and_computes_what_the_standin_computes(cupy, name, dtype, monkeypatch,
                                                                                  tmp_path):
    """Compiled by the host's C compiler with double promotion and float narrowing as errors, the kernels
    compute on the CPU what the stand-in's interpreter computes from the same text; read as C++ (what
    NVRTC reads), the text is valid too."""
    monkeypatch.setenv(fusion.ENV, "1")
    cell, _, option = name.partition(":")
    tg.manual_seed(0)
    rnn = Recurrent(registry.cells.get(cell), 2, 5, path="compiled",
                    **dict([option.split("=")] if option else [])).to(dtype=dtype).to("cupy")
    rnn(Tensor(np.zeros((3, 4, 2), dtype)).to("cupy"))
    (tape,) = compile_cell(rnn.cells[0]).tapes.values()
    ops = [e.cls for e in tape.program.step if e.cls.__name__.startswith("Fused[")]
    assert ops
    rng = np.random.default_rng(7)
    for n, op in enumerate(ops):
        layout, (forward, backward) = op.layout, op.kernels
        inputs = [rng.standard_normal(layout.shapes[k]).astype(dtype) for k in layout.used]
        grads = [rng.standard_normal(layout.grid).astype(dtype) for _ in range(layout.n_out)]
        outs = [np.zeros(layout.grid, dtype) for _ in range(layout.n_out)]
        ds = [np.zeros(layout.shapes[k] if layout.modes[k] == "raw" else layout.grid, dtype) for k in layout.wanted]
        for kernel, arrays, written in [(forward, inputs + outs, outs), (backward, inputs + grads + ds, ds)]:
            device = [cupy.asarray(a) for a in arrays]
            cupy.ElementwiseKernel(kernel.in_params, kernel.out_params, kernel.body, kernel.name)(*device)
            run_host_c(as_host_c(kernel, [a.shape for a in arrays], layout.grid), arrays, str(tmp_path),
                       f"{kernel.name}_{n}")
            for host, on_device in zip(written, device[len(arrays) - len(written):]):
                np.testing.assert_allclose(host, on_device.get(), rtol=1e-5 if dtype == np.float32 else 1e-13,
                                           atol=1e-6 if dtype == np.float32 else 1e-14)
