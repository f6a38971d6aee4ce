"""The fused cells (plugins/cells/*_fused.py) compute exactly what the readable cells compute.

Each whole-sequence Function is checked against a plain NumPy loop written here from the papers'
equations (outputs and final states), against the composed cell run step by step through autograd
(outputs and every gradient, with and without a padding mask), against its own per-step Function,
and by finite differences in float64 on tiny sizes.
"""
import numpy as np
import pytest

from tinygrad_rnn import Tensor, gradcheck
from tinygrad_rnn.nn import unroll
from tinygrad_rnn.registry import cells as cell_registry
from tinygrad_rnn_plugins.cells.gru_fused import GRUSequence, GRUStep
from tinygrad_rnn_plugins.cells.lstm_fused import LSTMSequence, LSTMStep
from tinygrad_rnn_plugins.cells.peephole_fused import PeepholeSequence, PeepholeStep
from tinygrad_rnn_plugins.cells.rnn_fused import RNNSequence, RNNStep

N, T, D, H = 3, 5, 4, 6
GATES = {"rnn": 1, "lstm": 4, "peephole": 4, "gru": 3}
NONLINEARITIES = ("tanh", "relu", "leaky_relu", "elu")


# ---- plain NumPy references, straight from the equations -------------------------------------------------
def sigmoid(a):
    return 1 / (1 + np.exp(-a))


ACT = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "leaky_relu": lambda a: np.where(a > 0, a, 0.01 * a),
       "elu": lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0)))}


def reference(cell, x, state, p, mask=None, option=None):
    """(outputs, final state) of `cell` by a per-step loop; padding keeps the state and outputs zeros."""
    state, outputs = [s.copy() for s in state], []
    for t in range(x.shape[1]):
        xt, h = x[:, t], state[0]
        a = xt @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        if cell == "rnn":
            new = [ACT[option](a)]
        elif cell == "lstm":
            i, f, g, o = np.split(a, 4, axis=1)
            c = sigmoid(f) * state[1] + sigmoid(i) * np.tanh(g)
            new = [sigmoid(o) * np.tanh(c), c]
        elif cell == "peephole":
            i, f, g, o = np.split(a, 4, axis=1)
            c_prev = state[1]
            c = sigmoid(f + p["weight_cf"] * c_prev) * c_prev + sigmoid(i + p["weight_ci"] * c_prev) * np.tanh(g)
            new = [sigmoid(o + p["weight_co"] * c) * np.tanh(c), c]
        else:
            gi = xt @ p["weight_ih"].T + p["bias_ih"]
            w_hn, b_hn = p["weight_hh"][2 * H:], p["bias_hh"][2 * H:]
            rz = sigmoid(gi[:, :2 * H] + h @ p["weight_hh"][:2 * H].T + p["bias_hh"][:2 * H])
            r, z = rz[:, :H], rz[:, H:]
            if option == "pytorch":
                n = np.tanh(gi[:, 2 * H:] + r * (h @ w_hn.T + b_hn))
            else:
                n = np.tanh(gi[:, 2 * H:] + (r * h) @ w_hn.T + b_hn)
            new = [(1 - z) * n + z * h]
        keep = np.ones((x.shape[0], 1)) if mask is None else mask[:, t:t + 1]
        state = [keep * s_new + (1 - keep) * s for s_new, s in zip(new, state)]
        outputs.append(keep * new[0])
    return np.stack(outputs, axis=1), state


# ---- problems ---------------------------------------------------------------------------------------------
def make_problem(cell, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    p = {"weight_ih": rng.uniform(-0.6, 0.6, (G * H, D)), "weight_hh": rng.uniform(-0.6, 0.6, (G * H, H)),
         "bias_ih": rng.uniform(-0.5, 0.5, G * H), "bias_hh": rng.uniform(-0.5, 0.5, G * H)}
    if cell == "peephole":
        p.update({k: rng.uniform(-0.5, 0.5, H) for k in ("weight_ci", "weight_cf", "weight_co")})
    x = rng.standard_normal((N, T, D))
    state = [rng.standard_normal((N, H)) * 0.5 for _ in range(2 if cell in ("lstm", "peephole") else 1)]
    return {k: v.astype(dtype) for k, v in p.items()}, x.astype(dtype), [s.astype(dtype) for s in state]


def padding_mask():
    """Sequence 0 is 3 steps long, sequence 1 all 5, sequence 2 has a hole at t = 2 (masks need not be prefixes)."""
    mask = np.ones((N, T))
    mask[0, 3:] = 0
    mask[2, 2] = 0
    return mask


PARAM_ORDER = {"rnn": ["weight_ih", "weight_hh", "bias_ih", "bias_hh"],
               "lstm": ["weight_ih", "weight_hh", "bias_ih", "bias_hh"],
               "gru": ["weight_ih", "weight_hh", "bias_ih", "bias_hh"],
               "peephole": ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci", "weight_cf", "weight_co"]}


def fused(cell, x, state, params, mask, option):
    """(outputs, [final states]) of the fused sequence Function; all arguments are Tensors or arrays."""
    as_tensor = lambda a: a if isinstance(a, Tensor) else Tensor(a)  # noqa: E731  (apply runs an op on Tensors)
    x, state = as_tensor(x), [as_tensor(s) for s in state]
    weights = [params[k] for k in PARAM_ORDER[cell]]
    if cell == "rnn":
        out, h = RNNSequence.apply(x, state[0], *weights, mask, option)
        return out, [h]
    if cell == "gru":
        out, h = GRUSequence.apply(x, state[0], *weights, mask, option)
        return out, [h]
    op = LSTMSequence if cell == "lstm" else PeepholeSequence
    out, h, c = op.apply(x, state[0], state[1], *weights, mask)
    return out, [h, c]


def stepwise(cell, x, state, params, mask, option):
    """The same through the per-step Functions, blending padded steps as the Recurrent layer does."""
    weights = [params[k] for k in PARAM_ORDER[cell]]
    outputs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        if cell == "rnn":
            new = [RNNStep.apply(xt, state[0], *weights, option)]
        elif cell == "gru":
            new = [GRUStep.apply(xt, state[0], *weights, option)]
        else:
            op = LSTMStep if cell == "lstm" else PeepholeStep
            new = list(op.apply(xt, state[0], state[1], *weights))
        keep = Tensor(np.ones((x.shape[0], 1))) if mask is None else Tensor(mask[:, t:t + 1])
        state = [keep * s_new + (1 - keep) * s for s_new, s in zip(new, state)]
        outputs.append(keep * new[0])
    return Tensor.stack(outputs, axis=1), state


def composed(cell, x, state, params, mask, option):
    """The readable cell from plugins/cells/, step by step through the autograd engine."""
    options = {"rnn": {"nonlinearity": option}, "gru": {"variant": option}}.get(cell, {})
    module = cell_registry.get(cell)(D, H, **options)
    for name, tensor in params.items():
        setattr(module, name, tensor)
    out, final = unroll(module, x, tuple(state), mask)
    return out, list(final)


CASES = ([("rnn", nl) for nl in NONLINEARITIES] + [("lstm", None), ("peephole", None), ("gru", "pytorch"),
                                                      ("gru", "cho")])
IDS = [f"{c}-{o}" if o else c for c, o in CASES]


def run_with_grads(impl, cell, option, mask, seed=0):
    """Outputs, final states and the gradients of a fixed weighted sum of all of them."""
    p, x, state = make_problem(cell, seed)
    params = {k: Tensor(v, requires_grad=True) for k, v in p.items()}
    xt, st = Tensor(x, requires_grad=True), [Tensor(s, requires_grad=True) for s in state]
    out, final = impl(cell, xt, st, params, mask, option)
    rng = np.random.default_rng(99)
    loss = (out * Tensor(rng.standard_normal(out.shape))).sum()
    for s in final:
        loss = loss + (s * Tensor(rng.standard_normal(s.shape))).sum()
    loss.backward()
    grads = {"x": xt.grad, **{f"state{i}": s.grad for i, s in enumerate(st)}, **{k: t.grad for k, t in params.items()}}
    return out.numpy(), [s.numpy() for s in final], grads


# ---- the specifications ---------------------------------------------------------------------------------
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("cell,option", CASES, ids=IDS)
def test_fused_sequence_matches_numpy_reference(cell, option, masked):
    p, x, state = make_problem(cell)
    mask = padding_mask() if masked else None
    want_out, want_state = reference(cell, x, state, p, mask, option)
    out, final = fused(cell, x, state, p, mask, option)
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-10, atol=1e-12)
    for got, want in zip(final, want_state):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("cell,option", CASES, ids=IDS)
def test_fused_sequence_matches_composed_cell_in_value_and_gradient(cell, option, masked):
    mask = padding_mask() if masked else None
    out, final, grads = run_with_grads(fused, cell, option, mask)
    want_out, want_final, want_grads = run_with_grads(composed, cell, option, mask)
    np.testing.assert_allclose(out, want_out, rtol=1e-9, atol=1e-12)
    for got, want in zip(final, want_final):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    for name in want_grads:
        np.testing.assert_allclose(grads[name], want_grads[name], rtol=1e-8, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("cell,option", CASES, ids=IDS)
def test_per_step_functions_match_the_sequence_function(cell, option, masked):
    mask = padding_mask() if masked else None
    out, final, grads = run_with_grads(fused, cell, option, mask)
    want_out, want_final, want_grads = run_with_grads(stepwise, cell, option, mask)
    np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
    for name in want_grads:
        np.testing.assert_allclose(grads[name], want_grads[name], rtol=1e-8, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("cell,option", CASES, ids=IDS)
def test_fused_sequence_passes_gradcheck(cell, option, masked):
    n, t, d, h = 2, 3, 2, 3
    rng = np.random.default_rng(1)
    G = GATES[cell]
    shapes = [(n, t, d)] + [(n, h)] * (2 if cell in ("lstm", "peephole") else 1) + [(G * h, d), (G * h, h), (G * h,), (G * h,)]
    shapes += [(h,)] * 3 if cell == "peephole" else []
    # relu / leaky_relu / elu have a kink at 0: keep pre-activations away from it (|a| > eps w.h.p.)
    inputs = [Tensor(rng.uniform(-0.8, 0.8, s), requires_grad=True) for s in shapes]
    mask = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]) if masked else None
    states = 2 if cell in ("lstm", "peephole") else 1

    def fn(x, *rest):
        st, weights = list(rest[:states]), rest[states:]
        params = dict(zip(PARAM_ORDER[cell], weights))
        out, final = fused(cell, x, st, params, mask, option)
        return Tensor.concatenate([out.reshape(n, -1)] + final, axis=1)

    result = gradcheck(fn, inputs)
    assert result, str(result)


@pytest.mark.parametrize("cell,option", CASES, ids=IDS)
def test_per_step_function_passes_gradcheck(cell, option):
    n, d, h = 2, 2, 3
    rng = np.random.default_rng(2)
    G = GATES[cell]
    states = 2 if cell in ("lstm", "peephole") else 1
    shapes = [(n, d)] + [(n, h)] * states + [(G * h, d), (G * h, h), (G * h,), (G * h,)]
    shapes += [(h,)] * 3 if cell == "peephole" else []
    inputs = [Tensor(rng.uniform(-0.8, 0.8, s), requires_grad=True) for s in shapes]

    def fn(x, *rest):
        params = dict(zip(PARAM_ORDER[cell], rest[states:]))
        out, final = stepwise(cell, x[:, None, :], list(rest[:states]), params, None, option)
        return Tensor.concatenate(final, axis=1)

    result = gradcheck(fn, inputs)
    assert result, str(result)


@pytest.mark.parametrize("cell,option", [("rnn", "tanh"), ("lstm", None), ("peephole", None), ("gru", "pytorch"),
                                         ("gru", "cho")])
def test_float32_stays_float32_and_agrees_with_float64(cell, option):
    p, x, state = make_problem(cell)
    want_out, _ = reference(cell, x, state, p, None, option)
    p32 = {k: Tensor(v.astype(np.float32), requires_grad=True) for k, v in p.items()}
    x32 = Tensor(x.astype(np.float32), requires_grad=True)
    st32 = [Tensor(s.astype(np.float32), requires_grad=True) for s in state]
    out, final = fused(cell, x32, st32, p32, None, option)
    assert out.dtype == np.float32 and all(s.dtype == np.float32 for s in final)
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-4, atol=1e-5)
    (out.sum() + sum(s.sum() for s in final)).backward()
    assert all(t.grad.dtype == np.float32 for t in [x32, *st32, *p32.values()])


def test_padding_equals_running_alone():
    """A sequence padded to T gets the outputs and final state it gets when run alone on its real steps."""
    p, x, state = make_problem("lstm")
    mask = np.ones((N, T))
    mask[0, 3:] = 0
    out, final = fused("lstm", x, state, p, mask, None)
    alone_out, alone_final = fused("lstm", x[:1, :3], [s[:1] for s in state], p, None, None)
    np.testing.assert_allclose(out.numpy()[:1, :3], alone_out.numpy(), rtol=1e-12)
    assert np.all(out.numpy()[0, 3:] == 0)
    for got, want in zip(final, alone_final):
        np.testing.assert_allclose(got.numpy()[:1], want.numpy(), rtol=1e-12)


def test_unused_inputs_get_no_gradient_work():
    """x without requires_grad (the usual case: data) gets no gradient; the weights still do."""
    p, x, state = make_problem("gru")
    params = {k: Tensor(v, requires_grad=True) for k, v in p.items()}
    xt = Tensor(x)
    out, final = fused("gru", xt, [Tensor(s) for s in state], params, None, "pytorch")
    out.sum().backward()
    assert xt.grad is None and all(t.grad is not None for t in params.values())


def test_unknown_options_say_what_is_valid():
    from tinygrad_rnn import ConfigError
    p, x, state = make_problem("rnn")
    with pytest.raises(ConfigError, match="tanh"):
        fused("rnn", x, state, p, None, "sigmoid")
    p, x, state = make_problem("gru")
    with pytest.raises(ConfigError, match="cho"):
        fused("gru", x, state, p, None, "minimal")


# ---- the readable cells hold the equations; the fused files add sequence() and register ------------------
READABLE = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "peephole": "PeepholeLSTM"}


@pytest.mark.parametrize("name", list(READABLE))
def test_a_readable_cell_file_holds_the_equations_and_the_fused_file_subclasses_it(name):
    import ast
    import importlib
    import pathlib
    readable = importlib.import_module(f"tinygrad_rnn_plugins.cells.{name}")
    tree = ast.parse(pathlib.Path(readable.__file__).read_text())
    handlers = [h for node in ast.walk(tree) if isinstance(node, ast.Try) for h in node.handlers]
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not handlers, f"{name}.py catches exceptions (a fused kernel that fails to import must fail loudly)"
    assert not any("fused" in (m or "") for m in imported), f"{name}.py imports its fused twin"
    cls = getattr(readable, READABLE[name])
    assert not hasattr(cls, "sequence"), f"{name}.py's cell has a sequence(): the fused file adds it"
    registered = cell_registry.get(name)
    assert issubclass(registered, cls) and registered.__module__.endswith(f"cells.{name}_fused")
    assert "sequence" in vars(registered) and registered.__doc__ is None  # rnnrun list shows the readable docstring
    assert cell_registry.describe(name) == (cls.__doc__ or "").splitlines()[0]


def test_an_import_error_inside_a_fused_module_fails_loudly():
    """A fused kernel that cannot be imported leaves no silent slow 'lstm': the cell is missing and the
    warning names the file and the error (before, lstm.py caught the ImportError and ran step by step)."""
    import subprocess
    import sys
    script = (
        "import importlib.abc, sys, warnings\n"
        "class Broken(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tinygrad_rnn_plugins.cells.lstm_fused':\n"
        "            raise ImportError('simulated: a name the fused kernel imports is gone')\n"
        "sys.meta_path.insert(0, Broken())\n"
        "from tinygrad_rnn.registry import cells, load_errors\n"
        "with warnings.catch_warnings(record=True):\n"
        "    warnings.simplefilter('always')\n"
        "    names = cells.names()\n"
        "print('lstm' in names, 'gru' in names)\n"
        "print(load_errors)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    present, errors = result.stdout.splitlines()
    assert present == "False True"
    assert "lstm_fused" in errors and "ImportError: simulated: a name the fused kernel imports is gone" in errors
