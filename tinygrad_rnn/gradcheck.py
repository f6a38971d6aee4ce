"""Finite-difference gradient check: the test every op and every cell must pass.

    gradcheck(fn, inputs)        backward() vs central differences, entry by entry, in float64
    check_extremes(fn, inputs)   forward and backward stay finite at inputs of +-50 and +-1000

For a function f of some tensors, compare the gradient that backward() computes with central
differences (f(x + eps) - f(x - eps)) / 2 eps, entry by entry, in float64. A non-scalar output is
reduced to a scalar with fixed random weights, so every output entry takes part.

A gradient check at ordinary inputs cannot see overflow: log(1 + exp(x)) has the right derivative
everywhere and still returns inf at x = 1000. `check_extremes` is the check for that.
"""
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .function import no_grad
from .tensor import Tensor


@dataclass
class Mismatch:
    input_index: int
    entry: tuple
    analytic: float
    numeric: float

    @property
    def abs_error(self):
        return abs(self.analytic - self.numeric)


@dataclass
class InputReport:
    """How the analytic gradient of one input compares with finite differences.

    max_rel_error is the largest |error| / |numeric| over the entries whose absolute error exceeds
    atol; it is 0.0 when no entry does (then it was not computed, not an exact match).
    """
    index: int
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    mismatches: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.mismatches


@dataclass
class GradcheckResult:
    inputs: list

    @property
    def ok(self):
        return all(r.ok for r in self.inputs)

    def __bool__(self):
        return self.ok

    @property
    def mismatches(self):
        return [m for r in self.inputs for m in r.mismatches]

    def __str__(self):
        if self.ok:
            worst = max((r.max_abs_error for r in self.inputs), default=0.0)
            return f"gradcheck passed ({len(self.inputs)} inputs, max abs error {worst:.2e})"
        first = self.mismatches[0]
        return (f"gradcheck failed: {len(self.mismatches)} entries disagree; first: input "
                f"{first.input_index} entry {first.entry}: analytic {first.analytic:.6g}, "
                f"numeric {first.numeric:.6g} (abs error {first.abs_error:.2e})")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Check d fn(*inputs) / d input against central differences for every input and entry.

    Each input's data is turned into float64 for the check and perturbed in place (so parameters a
    module holds can be passed as inputs and `fn` may ignore its arguments); dtype and values are
    restored afterwards. Returns a `GradcheckResult`, truthy when everything agrees.
    """
    inputs = list(inputs)
    originals = [t.data for t in inputs]
    for t in inputs:
        t.data = t.data.astype(np.float64)
    try:
        weights = None

        def scalar():
            nonlocal weights
            out = fn(*inputs)
            if weights is None:  # fixed random weights: every output entry matters, none cancel
                rng = np.random.default_rng(1234)
                weights = backend.convert(rng.uniform(0.5, 1.5, out.shape), out.backend)
            return (out * Tensor(weights)).sum()

        for t in inputs:
            t.grad = None
        loss = scalar()
        loss.backward()
        analytic = [backend.to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape) for t in inputs]
        reports = []
        with no_grad():
            for i, t in enumerate(inputs):
                flat = t.data.reshape(-1)  # a view: writing to it perturbs the input in place
                numeric = np.zeros(t.data.size)
                for j in range(t.data.size):
                    old = float(flat[j])
                    flat[j] = old + eps
                    up = float(scalar().item())
                    flat[j] = old - eps
                    down = float(scalar().item())
                    flat[j] = old
                    numeric[j] = (up - down) / (2 * eps)
                got = analytic[i].reshape(-1)
                err = np.abs(got - numeric)
                rel = err / np.maximum(np.abs(numeric), 1e-12)
                bad = np.nonzero(err > atol + rtol * np.abs(numeric))[0]
                reports.append(InputReport(
                    i, t.shape, float(err.max(initial=0.0)), float(np.where(err > atol, rel, 0).max(initial=0.0)),
                    [Mismatch(i, tuple(int(k) for k in np.unravel_index(j, t.shape)), float(got[j]), float(numeric[j]))
                     for j in bad]))
        return GradcheckResult(reports)
    finally:
        for t, data in zip(inputs, originals):
            t.data = data
            t.grad = None


# ---- extreme inputs ---------------------------------------------------------------------------------
EXTREMES = (50.0, -50.0, 1000.0, -1000.0)


@dataclass
class ExtremeReport:
    """fn at one extreme value: is the output finite, and is every input's gradient finite?"""
    value: float
    forward_finite: bool
    backward_finite: bool

    @property
    def ok(self):
        return self.forward_finite and self.backward_finite


@dataclass
class ExtremesResult:
    reports: list

    @property
    def ok(self):
        return all(r.ok for r in self.reports)

    def __bool__(self):
        return self.ok

    def __str__(self):
        if self.ok:
            return f"finite forward and backward at {', '.join(f'{r.value:g}' for r in self.reports)}"
        return "not finite: " + "; ".join(
            f"at {r.value:g} the {'forward' if not r.forward_finite else 'backward'}" for r in self.reports if not r.ok)


def check_extremes(fn, inputs, values=EXTREMES, vary=None):
    """Run fn with the inputs in `vary` (indices into `inputs`; default all) filled with each value
    in turn, and report whether the output and every gradient backward() gives are finite.

    The inputs keep their dtype (float32 overflows exp at 88.7, float64 at 709.8: an op must be
    stable in the dtype it is used in). A non-scalar output is summed. Inputs are restored afterwards.

        check_extremes(lambda x: (1 + x.exp()).log(), [Tensor(np.zeros(3), requires_grad=True)])
        # -> not finite: at 1000 the forward (exp(1000) is inf in float32 and in float64)
    """
    inputs = list(inputs)
    vary = range(len(inputs)) if vary is None else vary
    originals = [t.data for t in inputs]
    reports = []
    try:
        for value in values:
            for i in vary:
                inputs[i].data = backend.array_module(originals[i]).full_like(originals[i], value)
            for t in inputs:
                t.grad = None
            with np.errstate(all="ignore"):  # overflow is what is being looked for, not a warning
                out = fn(*inputs)
                forward = bool(np.isfinite(backend.to_numpy(out.data)).all())
                out.sum().backward()
                backward = all(t.grad is None or bool(np.isfinite(backend.to_numpy(t.grad)).all())
                               for t in inputs)
            reports.append(ExtremeReport(float(value), forward, backward))
    finally:
        for t, data in zip(inputs, originals):
            t.data, t.grad = data, None
    return ExtremesResult(reports)
