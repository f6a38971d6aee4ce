"""The checks every cell plugin must pass: the cell protocol of `tinygrad_rnn.nn.recurrent`, and its maths.

Sizes are tiny (D = 2 inputs, H = 3 hidden units, N = 3 sequences of T = 4 steps; D ≠ H so that an
input weight cannot pass for a recurrent one). Numerical comparisons run in float64.
"""
import warnings

import numpy as np

from .. import backend
from ..gradcheck import gradcheck
from ..nn.module import Module
from ..nn.recurrent import Recurrent
from ..tape import CompileWarning, compile_cell
from ..unroll import unroll
from ..random import manual_seed
from ..tensor import Tensor
from .base import PluginCheckWarning, SkipCheck, assert_close, check_bad_options

D, H, N, T = 2, 3, 3, 4
LENGTHS = np.array([T, T - 1, 1])  # uneven, one of them a single step


def make(cls, options, dtype=np.float64, seed=0):
    manual_seed(seed)
    cell = cls(D, H, **options)
    return cell.to(dtype=dtype) if dtype is not None else cell


def inputs(dtype=np.float64, steps=T, seed=1):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((N, steps, D)).astype(dtype), requires_grad=True)


def random_state(cell, dtype=np.float64, seed=2):
    """The initial state's shapes, filled with random values (zeros would hide a wrong state gradient)."""
    rng = np.random.default_rng(seed)
    return tuple(Tensor(0.5 * rng.standard_normal(s.shape).astype(dtype), requires_grad=True)
                 for s in cell.initial_state(N))


def mask_of(lengths, like):
    """The (N, T) 1/0 mask that `Recurrent` hands a cell's `sequence`, on the input's backend."""
    steps = np.arange(like.shape[1])[None, :]
    return backend.convert((steps < lengths[:, None]).astype(like.dtype), like.backend)


def flat(outputs, state):
    """Everything a run returns, as one (N, ·) tensor, so one gradient check covers all of it."""
    return Tensor.concatenate([outputs.reshape(N, -1)] + [s.reshape(N, -1) for s in state], axis=1)


def host(t):
    return backend.to_numpy(t.data)


def grad_of(t):
    """t's gradient on the host; zeros where backward() left none (nothing depended on t)."""
    return np.zeros(t.shape) if t.grad is None else backend.to_numpy(t.grad)


# ---- the checks -----------------------------------------------------------------------------------
def check_constructor(cls, options):
    """Cell(input_size, hidden_size, **options) builds a Module with parameters and initial_state()."""
    cell = cls(D, H, **options)
    assert isinstance(cell, Module), f"expected a tinygrad_rnn.nn.Module, got a {type(cell).__name__}"
    assert cell.parameters(), "expected trainable parameters (Tensors with requires_grad=True), found none"
    assert callable(getattr(cell, "initial_state", None)), "expected an initial_state(batch_size) method"


def check_bad_options_raise_config_error(cls, options):
    """An option value out of range raises ConfigError (or the cell works with it)."""
    def build(opts):
        cell = make(cls, opts)
        cell(inputs()[:, 0], cell.initial_state(N))
    check_bad_options(cls, options, build)


def check_initial_state(cls, options):
    """initial_state(N) is a tuple of zero Tensors (N, ...), state[0] (N, H), in the cell's dtype and backend."""
    for dtype in (np.float32, np.float64):
        cell = make(cls, options, dtype)
        state = cell.initial_state(N)
        assert isinstance(state, tuple) and state, f"expected a non-empty tuple, got {type(state).__name__}"
        assert all(isinstance(s, Tensor) for s in state), \
            f"expected Tensors, got {[type(s).__name__ for s in state]}"
        assert state[0].shape == (N, H), f"expected state[0] (h) of shape {(N, H)}, got {state[0].shape}"
        for i, s in enumerate(state):
            assert s.shape[0] == N, f"state[{i}]: expected batch size {N} first, got shape {s.shape}"
            assert s.dtype == dtype, f"state[{i}]: expected the parameters' dtype {np.dtype(dtype)}, got {s.dtype}"
            assert s.backend == cell.parameters()[0].backend, \
                f"state[{i}]: expected the parameters' backend {cell.parameters()[0].backend}, got {s.backend}"
            assert not host(s).any(), f"state[{i}]: expected zeros, got max |entry| {np.abs(host(s)).max():.3g}"


def check_forward_returns_h_and_state(cls, options):
    """cell(x_t, state) returns (h (N, H), new state) with new_state[0] equal to h, shaped as the state."""
    cell = make(cls, options)
    state = random_state(cell)
    out = cell(inputs()[:, 0], state)
    assert isinstance(out, tuple) and len(out) == 2, f"expected a pair (h, state), got {type(out).__name__}"
    h, new = out
    assert isinstance(h, Tensor) and h.shape == (N, H), \
        f"expected h a Tensor of shape {(N, H)}, got {getattr(h, 'shape', h)}"
    assert isinstance(new, tuple) and len(new) == len(state), \
        f"expected the new state a tuple of {len(state)} Tensors like initial_state's, got {type(new).__name__} " \
        f"of {len(new) if isinstance(new, (tuple, list)) else '?'}"
    for i, (a, b) in enumerate(zip(new, state)):
        assert a.shape == b.shape, f"new state[{i}]: expected shape {b.shape}, got {a.shape}"
    assert_close(host(new[0]), host(h), "new state[0] versus h", rtol=0, atol=0)


def check_float32_stays_float32(cls, options):
    """float32 parameters, input and state give float32 outputs and state (forward and sequence)."""
    cell = make(cls, options, np.float32)
    x = inputs(np.float32)
    h, state = cell(x[:, 0], cell.initial_state(N))
    got = {"h": h.dtype, **{f"state[{i}]": s.dtype for i, s in enumerate(state)}}
    if hasattr(cell, "sequence"):
        outputs, final = cell.sequence(x, cell.initial_state(N), None)
        got["sequence outputs"] = outputs.dtype
        got.update({f"sequence state[{i}]": s.dtype for i, s in enumerate(final)})
    wrong = {k: str(v) for k, v in got.items() if v != np.float32}
    assert not wrong, f"expected float32 everywhere, got {wrong}"


def check_gradients_match_finite_differences(cls, options):
    """backward() of a T-step unroll of forward() agrees with central differences (float64) for the
    input, the initial state and every parameter."""
    cell = make(cls, options)
    x, state = inputs(), random_state(cell)
    named = [("input x", x)] + [(f"initial state[{i}]", s) for i, s in enumerate(state)] + cell.named_parameters()
    result = gradcheck(lambda *_: flat(*unroll(cell, x, state)), [t for _, t in named])
    wrong = [(name, r) for (name, _), r in zip(named, result.inputs) if not r.ok]
    if wrong:
        name, r = wrong[0]
        first = r.mismatches[0]
        raise AssertionError(
            f"expected backward() to agree with finite differences; it does not for {len(wrong)} of {len(named)} "
            f"tensors: {', '.join(n for n, _ in wrong)}. First, {name} entry {first.entry}: backward "
            f"{first.analytic:.6g}, finite differences {first.numeric:.6g}")


def values_and_gradients(run, tensors):
    """What `run()` returns (outputs and each final state tensor, on the host), and the gradient of a
    fixed random weighting of all of it with respect to each of `tensors`."""
    for t in tensors:
        t.grad = None
    outputs, final = run()
    everything = flat(outputs, final)
    weights = np.random.default_rng(3).uniform(0.5, 1.5, everything.shape)
    (everything * Tensor(weights.astype(everything.dtype))).sum().backward()
    return [host(outputs)] + [host(s) for s in final], [grad_of(t) for t in tensors]


def run_inputs(cell):
    """(x, state, every tensor a gradient is checked for, names of what a run returns, names of those
    gradients): what the checks that compare two ways of running a cell over a sequence share."""
    x, state = inputs(), random_state(cell)
    params = cell.named_parameters()
    tensors = [x, *state] + [p for _, p in params]
    gradient_names = ["input x"] + [f"initial state[{i}]" for i in range(len(state))] + [n for n, _ in params]
    value_names = ["outputs"] + [f"final state[{i}]" for i in range(len(state))]
    return x, state, tensors, value_names, gradient_names


def check_sequence_matches_step_by_step(cls, options):
    """sequence(x, state, mask) equals the step-by-step unroll of forward(): outputs, final state and
    every gradient, without and with a padding mask."""
    if not hasattr(cls, "sequence"):
        raise SkipCheck("the cell has no sequence(): it runs as its compiled tape (checked below) or step by step")
    cell = make(cls, options)
    x, state, tensors, value_names, gradient_names = run_inputs(cell)
    for mask, label in ((None, "without a mask"), (mask_of(LENGTHS, x), f"with lengths {LENGTHS.tolist()}")):
        fused, fused_grads = values_and_gradients(lambda: cell.sequence(x, state, mask), tensors)
        step, step_grads = values_and_gradients(lambda: unroll(cell, x, state, mask), tensors)
        assert len(fused) == len(step), f"{label}: expected sequence() to return {len(state)} final state " \
                                        f"tensors as forward() does, got {len(fused) - 1}"
        for name, got, expected in zip(value_names, fused, step):
            assert_close(got, expected, f"{label}: sequence() {name} versus the step-by-step unroll")
        for name, got, expected in zip(gradient_names, fused_grads, step_grads):
            assert_close(got, expected, f"{label}: gradient of {name} through sequence() versus step by step")


def plain_attributes(cell):
    """The cell's own numbers and flags (`self.scale = 0.5`): what a compiled tape bakes in as constants."""
    return {name: value for name, value in vars(cell).items()
            if not name.startswith("_") and isinstance(value, (bool, int, float)) and name != "training"}


def changed(value):
    """Another valid-looking value of the same type: a flag flipped, a number moved."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return 0.5 * value + 0.25


def check_compiled_matches_step_by_step(cls, options):
    """The compiled path (what Recurrent runs by default for a cell without sequence()) equals the
    step-by-step unroll of forward(): outputs, final state and every gradient, with and without a
    mask, and again after each plain attribute of the cell is changed (a tape must not replay a stale
    constant)."""
    cell = make(cls, options)
    x, state, tensors, value_names, gradient_names = run_inputs(cell)
    compiled = compile_cell(cell)

    def compare(when):
        for mask, label in ((None, "without a mask"), (mask_of(LENGTHS, x), f"with lengths {LENGTHS.tolist()}")):
            with warnings.catch_warnings():
                warnings.simplefilter("error", CompileWarning)
                try:
                    got, got_grads = values_and_gradients(lambda: compiled.sequence(x, state, mask), tensors)
                except CompileWarning as e:
                    raise SkipCheck(f"the cell runs op by op, not compiled ({e})") from None
            step, step_grads = values_and_gradients(lambda: unroll(cell, x, state, mask), tensors)
            for name, a, b in zip(value_names, got, step):
                assert_close(a, b, f"{when}, {label}: compiled {name} versus the step-by-step unroll")
            for name, a, b in zip(gradient_names, got_grads, step_grads):
                assert_close(a, b, f"{when}, {label}: gradient of {name} compiled versus step by step")

    compare("as built")
    for name, value in plain_attributes(cell).items():
        setattr(cell, name, changed(value))
        try:
            try:  # an attribute the step cannot run with (a size, say) is not one a user would change
                unroll(cell, x, state)
            except Exception:
                continue
            compare(f"after {name} = {value!r} was changed to {changed(value)!r}")
        finally:
            setattr(cell, name, value)


def check_padding_equals_running_alone(cls, options):
    """In a padded batch inside a bidirectional Recurrent, each sequence gets exactly what it gets run
    alone, and outputs zeros on its padding (fused and composed paths)."""
    for path in ("fused", "composed") if hasattr(cls, "sequence") else ("composed",):
        way = "sequence()" if path == "fused" else "step by step"
        manual_seed(0)
        rnn = Recurrent(cls, D, H, bidirectional=True, path=path, **options).to(dtype=np.float64)
        x = inputs()
        x = Tensor(host(x) * (np.arange(T)[None, :, None] < LENGTHS[:, None, None]))
        outputs, final = rnn(x, lengths=LENGTHS)
        for n, length in enumerate(LENGTHS):
            alone, alone_final = rnn(Tensor(host(x)[n:n + 1, :length]))
            assert_close(host(outputs)[n, :length], host(alone)[0],
                         f"{way}: outputs of sequence {n} (length {length}) in the padded batch versus alone")
            assert_close(host(outputs)[n, length:], np.zeros_like(host(outputs)[n, length:]),
                         f"{way}: outputs of sequence {n} on its padding (expected zeros)")
            for k, (s, a) in enumerate(zip(final, alone_final)):
                for i, (si, ai) in enumerate(zip(s, a)):
                    direction = "forward" if k % 2 == 0 else "backward"
                    assert_close(host(si)[n], host(ai)[0], f"{way}: {direction} final state[{i}] of sequence "
                                                           f"{n} in the padded batch versus alone")


def check_works_in_stacked_bidirectional_recurrent(cls, options):
    """Inside Recurrent(num_layers=2, bidirectional=True), float32: right shapes, finite values, and a
    finite float32 gradient for every parameter (fused and composed paths)."""
    for path in ("fused", "composed") if hasattr(cls, "sequence") else ("composed",):
        way = "sequence()" if path == "fused" else "step by step"
        manual_seed(0)
        rnn = Recurrent(cls, D, H, num_layers=2, bidirectional=True, path=path, **options)
        outputs, final = rnn(inputs(np.float32), lengths=LENGTHS)
        assert outputs.shape == (N, T, 2 * H), f"{way}: expected outputs of shape {(N, T, 2 * H)}, got {outputs.shape}"
        assert len(final) == 4 and all(s[0].shape == (N, H) for s in final), \
            f"{way}: expected 4 final states (2 layers x 2 directions) with h of shape {(N, H)}"
        assert np.isfinite(host(outputs)).all(), f"{way}: outputs are not all finite"
        (outputs.sum() + sum(s.sum() for state in final for s in state)).backward()
        for name, p in rnn.named_parameters():
            assert p.grad is not None, f"{way}: parameter {name} got no gradient"
            g = backend.to_numpy(p.grad)
            assert g.shape == p.shape and g.dtype == np.float32, \
                f"{way}: gradient of {name}: expected float32 {p.shape}, got {g.dtype} {g.shape}"
            assert np.isfinite(g).all(), f"{way}: gradient of {name} is not finite"


def check_same_seed_same_weights(cls, options):
    """manual_seed(s) before building gives the same weights: the cell draws from the package's generator."""
    a, b = make(cls, options, None, seed=5).state_dict(), make(cls, options, None, seed=5).state_dict()
    assert a.keys() == b.keys(), f"expected the same parameters, got {sorted(a)} and {sorted(b)}"
    differ = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not differ, (f"expected identical weights after the same manual_seed, got different {differ}; draw "
                        "initial values with tinygrad_rnn.nn.uniform_parameter or tinygrad_rnn.random.generator()")


def check_finite_over_200_steps(cls, options):
    """At initialisation, 200 steps of N(0, 1) input keep every output and state finite (float32)."""
    manual_seed(0)
    rnn = Recurrent(cls, D, H, **options)
    x = Tensor(np.random.default_rng(4).standard_normal((N, 200, D)).astype(np.float32))
    with np.errstate(all="ignore"):
        outputs, final = rnn(x)
    values = host(outputs)
    bad = np.nonzero(~np.isfinite(values).all(axis=(0, 2)))[0]
    assert not len(bad), f"expected finite outputs, got NaN or inf from step {bad[0]} on"
    assert all(np.isfinite(host(s)).all() for state in final for s in state), "expected a finite final state"


def check_parameter_names(cls, options):
    """Input weights are named weight_ih*, recurrent ones weight_hh* (the initialisation regularisers
    find them by these names; a warning when they do not follow it)."""
    cell = cls(D, H, **options)
    names = {}
    for name, p in cell.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.ndim == 2 and p.shape[1] == D and not leaf.startswith("weight_ih"):
            names[name] = "weight_ih*"
        elif p.ndim == 2 and p.shape[1] == H and not leaf.startswith("weight_hh"):
            names[name] = "weight_hh*"
    if names:
        warnings.warn("expected " + ", ".join(f"{n} ({tuple(dict(cell.named_parameters())[n].shape)}) to be named "
                                              f"{want}" for n, want in names.items()), PluginCheckWarning)


CHECKS = [check_constructor, check_bad_options_raise_config_error, check_initial_state,
          check_forward_returns_h_and_state, check_float32_stays_float32, check_gradients_match_finite_differences,
          check_sequence_matches_step_by_step, check_compiled_matches_step_by_step,
          check_padding_equals_running_alone,
          check_works_in_stacked_bidirectional_recurrent, check_same_seed_same_weights, check_finite_over_200_steps,
          check_parameter_names]
