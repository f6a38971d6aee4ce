"""Compiled cells: one step of a cell recorded as a tape, then replayed for all T steps.

Reverse-mode autodiff can be run from a tape (Wengert's 1964 list, written for forward mode; reverse
accumulation from Linnainmaa 1970 and Speelpenning 1980; Griewank & Walther, "Evaluating Derivatives"): the list of elementary operations a computation applied, in order, each with where its
inputs came from. `Tensor.backward()` rebuilds that list from the graph every time (a topological sort)
and walks it backwards. A recurrent cell applies the *same* list at every step, so it can be recorded
once and replayed:

    tape = trace(cell, x_1, x_2, state_0)   # [(op, inputs, outputs), ...]: one step, traced twice to compare
    forward:   for t = 1 .. T:  run every entry of the tape on plain arrays, keep each op's ctx
    backward:  for t = T .. 1:  run every entry's backward in reverse, sum the parameters' gradients

(Both loops are written out once as Python source and run as that, tape_codegen.py; the table below
can also be interpreted, TINYGRAD_RNN_CODEGEN=0.)

An input of an entry is the step's input x_t, an element of the state, a parameter, a constant, or
an output of an earlier entry. Entries that do not depend on the state (the input projection
x_t W_ih^T + b of every gated cell) are *hoisted*: run once, on all T steps' rows at once, before the
loop, and their backward once after it, as the hand-fused kernels (`plugins/cells/*_fused.py`) do by
hand. Entries that depend only on parameters and constants (W^T, a slice of a weight) run once per
sequence.

What a traceable cell may do: any sequence of ops (`Function`s, built-in or its own) on its inputs,
its parameters and constants, the same ops in the same order at every step. What it may not: choose
ops by looking at values (`if h.sum().item() > 0`), draw random numbers inside `forward`, make new
parameters per step. Two steps are traced and compared: a cell whose tapes differ runs op by op
instead, with one warning. Nothing baked in is trusted blindly: a change to a cell's plain attributes
(`self.scale`), buffers, `training`, dtype or backend traces a new tape, and so does a change to what
the step reads from outside the cell (a module-level value changed between calls): before each sequence
one step is recorded again (no gradients) and compared with the tape (with TINYGRAD_RNN_WATCH=1, only
where a watch of the values its code reads by name, tape_watch.py, sees a change or cannot follow it).
A replay never uses a value that is no longer there.

    compiled = compile_cell(cell)
    outputs, final_state = compiled.sequence(x, state, mask)    # as cell.sequence would
"""
import collections
import functools
import operator
import warnings
import weakref

import numpy as np

from . import fusion
from . import tape_codegen
from . import ops as _ops
from .backend import array_module
from .errors import DTypeError, GraphError
from .function import Function, is_grad_enabled, no_grad, record_ops
from .tape_watch import Watch, plain_state
from .tensor import Tensor
from .unroll import _no_cycle_collection, unroll

# what a slot holds, which decides where its gradient goes
STEP, ROWS, STATIC, CONST = "step", "rows", "static", "const"


class NotTraceable(GraphError):
    """The cell's step cannot be recorded as one tape that holds for every step; says why."""


class CompileWarning(UserWarning):
    """A cell runs op by op because it cannot be compiled."""


class Entry:
    """One op of the tape: `outs = cls.forward(ctx, *slots[args], **kwargs)`."""

    __slots__ = ("cls", "args", "kwargs", "outs", "shapes", "where", "deferred")

    def __init__(self, cls, args, kwargs, outs, shapes):
        self.cls, self.args, self.kwargs, self.outs, self.shapes = cls, args, kwargs, outs, shapes
        self.where = STEP      # STEP (every step), ROWS (hoisted: once over all steps' rows), STATIC (once)
        self.deferred = False  # a row product whose weight gradient is one product after the loop


class Tape:
    """One step of a cell as a list of entries over numbered slots.

    Slot 0 is the step input x_t, then the state elements, then the parameters; constants and
    plain Python arguments (axes, slices) get a slot each, holding their value; every entry's
    outputs get a slot each. `h` and `state_out` are the slots the step returns.
    """

    def __init__(self, record, x, state, params, h, new_state, param_names=()):
        self.values, self.kind = [], []   # per slot: the traced value, and what it is
        slot_of = {}                      # id(Tensor) → slot
        self._keep = [x, *state, *params]  # keep the traced tensors alive, so their ids stay unique

        def new(kind, value, tensor=None):
            self.values.append(value)
            self.kind.append(kind)
            if tensor is not None:
                slot_of[id(tensor)] = len(self.values) - 1
            return len(self.values) - 1

        new("x", x.data, x)
        self.state_in = [new("state", s.data, s) for s in state]
        self.param_slots = [new("param", p.data, p) for p in params]
        self.param_names = list(param_names) or [f"param[{i}]" for i in range(len(params))]
        self.entries = []
        for cls, args, kwargs, outputs in record:
            slots = []
            for a in args:
                if not isinstance(a, Tensor):
                    slots.append(new("value", a))  # an int, a slice, None: passed to forward as it is
                    continue
                slot = slot_of.get(id(a))
                if slot is None:
                    if a.requires_grad:
                        raise NotTraceable(f"{cls.__name__} reads a tensor that needs a gradient but is not "
                                           "one of the cell's parameters (a parameter made inside forward?)")
                    slot = new("const", a.data, a)
                    self._keep.append(a)
                slots.append(slot)
            outs = tuple(new("entry", o.data, o) for o in outputs)
            self._keep.extend(outputs)
            self.entries.append(Entry(cls, tuple(slots), kwargs, outs,
                                      tuple((o.data.shape, o.data.dtype) for o in outputs)))
        returned = [h, *new_state]
        missing = [i for i, t in enumerate(returned) if not isinstance(t, Tensor) or id(t) not in slot_of]
        if missing:
            raise NotTraceable("its step returns a tensor that no op made from its inputs")
        self.h, *self.state_out = (slot_of[id(t)] for t in returned)
        if len(self.state_out) != len(self.state_in):
            raise NotTraceable(f"it takes {len(self.state_in)} state tensors and returns {len(self.state_out)}")
        for i, o in zip(self.state_in, self.state_out):
            if self.values[i].shape != self.values[o].shape:
                raise NotTraceable(f"its state changes shape from {self.values[i].shape} to {self.values[o].shape}")
        self._classify()

    def _classify(self):
        """Mark each entry STATIC (no x, no state in its past), ROWS (x but no state) or STEP."""
        on_x, on_state = {0}, set(self.state_in)
        for e in self.entries:
            x_dep = any(a in on_x for a in e.args)
            s_dep = any(a in on_state for a in e.args)
            e.where = STEP if s_dep else ROWS if x_dep else STATIC
            (on_state if s_dep else on_x if x_dep else set()).update(e.outs)

    def __str__(self):
        """The tape as a Wengert list, one line per entry: `v7 = Linear(h, weight_hh, bias_hh)   step`."""
        names = {0: "x"}
        names.update({s: f"state[{i}]" for i, s in enumerate(self.state_in)})
        names.update({s: n for s, n in zip(self.param_slots, self.param_names)})
        lines = []
        for e in self.entries:
            names.update({o: f"v{o}" for o in e.outs})
            args = [names.get(a) or ("const" if self.kind[a] == "const" else repr(self.values[a])) for a in e.args]
            outs = ", ".join(names[o] for o in e.outs)
            where = {STATIC: "once", ROWS: "hoisted", STEP: "every step"}[e.where]
            lines.append(f"{outs} = {e.cls.__name__}({', '.join(args)})".ljust(52) + f"  {where}")
        returned = ", ".join(names[s] for s in self.state_out)
        lines.append(f"return h = {names[self.h]}, state = ({returned},)")
        return "\n".join(lines)

    def same_as(self, other):
        """True when `other` (the next step's trace) applies the same ops to the same sources."""
        return self.difference(other) is None

    def difference(self, other):
        """Where `other` (the trace of step 2) first differs from this one (step 1), in words naming the op
        and its place in the step; None when both apply the same ops to the same sources."""
        def op(entries, i):
            return f"{entries[i].cls.__name__} (op {i + 1} of the step)" if i < len(entries) else "nothing"

        for i, (a, b) in enumerate(zip(self.entries, other.entries)):
            if a.cls is not b.cls:
                return (f"step 1 applied {op(self.entries, i)} where step 2 applied {b.cls.__name__}: does "
                        "forward choose its ops by looking at values (an if on a tensor)?")
            if a.shapes != b.shapes:
                return (f"{op(self.entries, i)} made {_shapes(a)} at step 1 and {_shapes(b)} at step 2: does "
                        "the state change shape or dtype from one step to the next?")
            if len(a.args) != len(b.args) or not _same(a.kwargs, b.kwargs):
                return f"{op(self.entries, i)} was called with different arguments at step 1 and step 2"
            for pos, (u, v) in enumerate(zip(a.args, b.args)):
                if u != v or self.kind[u] != other.kind[v]:
                    return (f"input {pos + 1} of {op(self.entries, i)} came from a different place at step 2 "
                            "than at step 1")
                if self.kind[u] in ("value", "const") and not _same(self.values[u], other.values[v]):
                    what = "a constant tensor" if self.kind[u] == "const" else f"the value {self.values[u]!r}"
                    return (f"input {pos + 1} of {op(self.entries, i)} is {what} that changed between step 1 "
                            "and step 2: random numbers drawn inside forward? Draw them outside the step and "
                            "pass them in as step inputs (docs/08-the-tape.md, 'Random masks')")
        if len(self.entries) != len(other.entries):
            i = min(len(self.entries), len(other.entries))
            return (f"step 1 applied {len(self.entries)} ops and step 2 applied {len(other.entries)}; the first "
                    f"extra one is {op(max(self.entries, other.entries, key=len), i)}")
        if (self.h, self.state_out) != (other.h, other.state_out):
            return "step 1 and step 2 returned their h or state from different ops"
        return None

    def check_hoisting(self, second):
        """Keep an entry hoisted only if running it on both traced steps' rows at once gives both steps'
        values: true of ops that treat each row (sequence) alone, false of one that mixes the batch."""
        stacked = {0: _cat(self.values[0], second.values[0])}  # slot → both steps' rows, one under the other
        on_rows = {0}  # slots whose value changes with x: they must come from `stacked`
        for e in self.entries:
            if e.where is not ROWS:
                continue
            on_rows.update(e.outs)
            if any(a in on_rows and a not in stacked for a in e.args):
                e.where = STEP  # an input that could not be hoisted: this entry runs per step too
                continue
            try:
                ctx = e.cls()
                ctx.needs_input_grad = (False,) * len(e.args)
                out = e.cls.forward(ctx, *[stacked.get(a, self.values[a]) for a in e.args], **e.kwargs)
                out = out if isinstance(out, tuple) else (out,)
                ok = all(_close(o, _cat(self.values[s], second.values[s])) for o, s in zip(out, e.outs))
            except Exception:
                ok = False
            if ok:
                stacked.update(zip(e.outs, out))
            else:
                e.where = STEP


def _shapes(entry):
    return ", ".join(f"{shape} {dtype}" for shape, dtype in entry.shapes)


def _same(a, b):
    """Equal values (arrays compared entry by entry; tuples, dicts and slices recursively)."""
    if hasattr(a, "shape") and hasattr(b, "shape"):
        return a.shape == b.shape and a.dtype == b.dtype and bool((a == b).all())
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:
        return False


def _cat(a, b):
    return array_module(a).concatenate([a, b], axis=0)


def _close(a, b):
    if a.shape != b.shape:
        return False
    xp = array_module(a)
    tolerance = float(np.finfo(a.dtype).eps) ** 0.5 if a.dtype.kind == "f" else 0
    return bool(xp.allclose(a, b, rtol=tolerance, atol=tolerance))


# ---- tracing ----------------------------------------------------------------------------------------------
def _record(cell, x, state):
    """Run one step of `cell` with every applied op appended to a list: (record, h, new_state)."""
    with no_grad(), record_ops() as record:
        h, new_state = cell(x, state)
    return record, h, tuple(new_state)


def trace(cell, x1, x2, state):
    """The cell's tape, from two traced steps (x1 from `state`, x2 from the state x1 led to).

    Raises NotTraceable if the two steps' tapes differ or the tape breaks a rule (module docstring)."""
    named = cell.named_parameters()
    params, names = [p for _, p in named], [n for n, _ in named]
    inputs1 = [Tensor._from_op(x1, False), [Tensor._from_op(s.data, False) for s in state]]
    try:
        first = _record(cell, *inputs1)
        inputs2 = [Tensor._from_op(x2, False), [Tensor._from_op(s.data, False) for s in first[2]]]
        second = _record(cell, *inputs2)
    except Exception as e:
        raise NotTraceable(f"its step failed while being traced ({type(e).__name__}: {e})") from None
    tape = Tape(first[0], *inputs1, params, first[1], first[2], names)
    tape2 = Tape(second[0], *inputs2, params, second[1], second[2])
    difference = tape.difference(tape2)
    if difference is not None:
        raise NotTraceable(f"two steps differ: {difference}")
    tape.check_hoisting(tape2)
    tape.program = Program(tape, fuse=True)  # where fusion is available and not switched off
    tape.watch = Watch(cell)  # what the step read from outside the cell, as it is now (tape_watch.py)
    return tape


# ---- replay: the whole sequence as one Function ---------------------------------------------------------
class Program:
    """The tape prepared for replay: which slot goes where, in the order the loops need. With `fuse`
    (numba on NumPy, CuPy's ElementwiseKernel on a device), each run of elementwise entries of the step is
    one generated kernel (fusion.py)."""

    def __init__(self, tape, fuse=False):
        self.tape = tape
        entries = _as_linear(tape)
        self.static = [e for e in entries if e.where is STATIC]
        self.rows = [e for e in entries if e.where is ROWS]
        self.step = [e for e in entries if e.where is STEP]
        where = [CONST] * len(tape.values)
        where[0] = ROWS
        for s in tape.state_in:
            where[s] = STEP
        for s in tape.param_slots:
            where[s] = STATIC
        for e in tape.entries:
            for o in e.outs:
                where[o] = e.where
        self.where = where
        for e in self.step:
            e.deferred = _defers(e, where, tape.values)
        if fuse and fusion.available(tape.values[0]):  # numba on NumPy, ElementwiseKernel on CuPy
            self.step = _fused(self.step, tape)
        # the slots a step reads from hoisted arrays (rows t*N .. (t+1)*N of each)
        read = {a for e in self.step for a in e.args} | {tape.h, *tape.state_out}
        self.row_slots = sorted(s for s in read if where[s] is ROWS)
        self.constants = [(i, v) for i, (v, k) in enumerate(zip(tape.values, tape.kind)) if k in ("value", "const")]
        self.plans = {}  # (x needs, state needs, parameters' needs) → Plan

    def source(self, part="both", masked=False):
        """The Python the replay runs for this tape's step loops, with every input needing a gradient:
        `part` "forward", "backward" or "both" (`print(program.source())`; tape_codegen.py writes it).
        None where the writer does not handle the step or TINYGRAD_RNN_CODEGEN=0: then the table is
        interpreted."""
        code = self.plan(True, True, (True,) * len(self.tape.param_slots)).code(True, masked)
        return None if code is None else {"forward": code.forward_source, "backward": code.backward_source,
                                          "both": code.source}[part]

    def plan(self, x_needs, state_needs, param_needs):
        """The Plan for one answer to "which inputs need a gradient", made once. Each forward keeps the
        plan it ran with, so a forward without gradients (an evaluation) between another forward and
        its backward leaves that backward as it was."""
        key = (x_needs, state_needs, tuple(param_needs))
        if key not in self.plans:
            self.plans[key] = Plan(self, x_needs, state_needs, param_needs)
        return self.plans[key]


class Plan:
    """Which inputs of each entry need a gradient, and the backward loop's table that follows from it."""

    def __init__(self, program, x_needs, state_needs, param_needs):
        tape = program.tape
        need = [False] * len(tape.values)  # whether each slot carries a gradient
        need[0] = x_needs
        for s in tape.state_in:
            need[s] = state_needs
        for s, n in zip(tape.param_slots, param_needs):
            need[s] = n
        self.needs, self.loop_needs = {}, {}  # entry → needs_input_grad, and as the step loop asks for it
        for e in program.static + program.rows + program.step:  # the step's entries as fused, if they are
            needs = self.needs[e] = tuple(need[a] for a in e.args)
            # a deferred entry's backward in the loop skips the weights: they get one product after it
            self.loop_needs[e] = (needs[0],) + (False,) * (len(e.args) - 1) if e.deferred else needs
            for o in e.outs:
                need[o] = True in needs
        # the backward loop's table, in reverse order: which inputs get a gradient, and where it goes
        self.backward_ops = []
        for i, e in reversed(list(enumerate(program.step))):
            loop_needs = self.loop_needs[e]
            routes = [(pos, a, program.where[a]) for pos, (a, n) in enumerate(zip(e.args, loop_needs)) if n]
            if not routes and not e.deferred:
                continue  # no input needs a gradient (all constants, say): its backward would be wasted
            to_step = tuple((pos, a) for pos, a, w in routes if w is STEP)  # the common case, tested first
            to_rest = tuple(r for r in routes if r[2] is not STEP)          # hoisted rows, parameters
            self.backward_ops.append((i, _plain_backward(e, loop_needs, tape.values),
                                      e.outs[0] if len(e.outs) == 1 else -1, e, _fetch(e.outs), e.deferred,
                                      to_step, to_rest))
        self.program, self.codes = program, {}
        self.workspace = tape_codegen.Workspace()  # the generated backward's buffers, reused call to call

    def code(self, keep, masked):
        """The step loops written out as Python (tape_codegen.py) for this plan, made once; None where the
        writer does not handle the step, or with TINYGRAD_RNN_CODEGEN=0: then the table is interpreted."""
        key = (keep, masked)
        if key not in self.codes:
            try:
                self.codes[key] = tape_codegen.StepCode(self.program, self, keep, masked) \
                    if tape_codegen.enabled() else None
            except tape_codegen.Unsupported:
                self.codes[key] = None
        return self.codes[key]


def _as_linear(tape):
    """The tape's entries with `x @ W.T` (+ b) written as ops folded into one `Linear(x, W[, b])` entry:
    a `Transpose` of a parameter read only by `MatMul`s becomes their weight, and a hoisted product's
    bias `Add` (of a parameter row) its bias. The same arithmetic (ops.Linear is x W^T + b), without the
    transpose's and the add's forward and backward calls each sequence, and the shape a deferred
    product's weight gradient takes anyway. The tape itself is left as recorded (still_holds compares
    against it); only the replay runs the folded entries."""
    values, kind = tape.values, tape.kind
    readers = collections.Counter(a for e in tape.entries for a in e.args)
    readers.update([tape.h, *tape.state_out])
    transposed = {e.outs[0]: e.args[0] for e in tape.entries
                  if e.cls is _ops.Transpose and e.where is STATIC and len(e.args) == 2 and not e.kwargs
                  and kind[e.args[0]] == "param" and getattr(values[e.args[0]], "ndim", 0) == 2
                  and kind[e.args[1]] == "value" and tuple(values[e.args[1]]) in ((1, 0), (-1, -2))}
    made = {}  # slot → the Linear entry that makes it
    entries = []
    for e in tape.entries:
        if e.cls is _ops.MatMul and not e.kwargs and len(e.args) == 2 and e.args[1] in transposed and \
                getattr(values[e.args[0]], "ndim", 0) == 2:
            e = _entry_like(e, _ops.Linear, (e.args[0], transposed[e.args[1]]))
            made[e.outs[0]] = e
        elif e.cls is _ops.Add and not e.kwargs and e.where is ROWS and e.args[0] in made and \
                readers[e.args[0]] == 1 and kind[e.args[1]] == "param" and \
                getattr(values[e.args[1]], "shape", None) == values[e.args[0]].shape[-1:]:
            linear = made.pop(e.args[0])
            entries.remove(linear)
            e = _entry_like(e, _ops.Linear, linear.args + (e.args[1],))
        entries.append(e)
    still_read = {a for e in entries for a in e.args} | {tape.h, *tape.state_out}
    return [e for e in entries if not (e.cls is _ops.Transpose and e.outs[0] in transposed
                                       and e.outs[0] not in still_read)]


def _entry_like(e, cls, args):
    made = Entry(cls, args, {}, e.outs, e.shapes)
    made.where = e.where
    return made


def _fused(step, tape):
    """The step's entries with each run of elementwise ones replaced by one entry: its generated kernel."""
    groups = fusion.find_groups(step, tape.values, tape.kind, {tape.h, *tape.state_out}, tape.entries)
    dtype = tape.values[tape.h].dtype
    first = {run[0]: (run, group) for run, group in groups}
    covered = {k for run, _ in groups for k in run}
    fused = []
    for i, e in enumerate(step):
        if i in first:
            run, group = first[i]
            op = fusion.compile_group(group, tape.values, tape.kind, dtype)
            entry = Entry(op, tuple(group.inputs), {}, tuple(group.outputs),
                          tuple((tape.values[o].shape, tape.values[o].dtype) for o in group.outputs))
            entry.where = STEP
            fused.append(entry)
        elif i not in covered:
            fused.append(e)
    return fused


def _plain_backward(e, need, values):
    """The entry's backward as the step loop calls it, `op(ctx, g) → input gradients`.

    Usually the op's own backward. Two cases are written out here because on a cell's small arrays
    the Python around the arithmetic costs more than the arithmetic: a deferred row product, which has
    only its input's gradient left to give (one product), and Add, Sub and Mul, whose inputs that need
    a gradient have the output's shape, so `unbroadcast` has nothing to do and the gradient of an
    input that needs none (a constant such as the 1 of 1 - z) is not computed at all."""
    if e.deferred and need[0] and values[e.args[1]].ndim == 2:
        if e.cls is _ops.Linear:
            return lambda ctx, g: (g.dot(ctx.saved_tensors[1]),)  # x W^T: dx = g W
        return lambda ctx, g: (g.dot(ctx.saved_tensors[1].T),)    # a b: da = g b^T
    shape = values[e.outs[0]].shape
    if e.cls not in (_ops.Add, _ops.Sub, _ops.Mul) or any(
            n and getattr(values[a], "shape", None) != shape for a, n in zip(e.args, need)):
        return e.cls.backward
    need_a, need_b = need
    if e.cls is _ops.Add:
        return lambda ctx, g: (g if need_a else None, g if need_b else None)
    if e.cls is _ops.Sub:
        return lambda ctx, g: (g if need_a else None, -g if need_b else None)

    def mul_backward(ctx, g):  # d(ab) = b da + a db
        a, b = ctx.saved_tensors
        return (g * b if need_a else None), (g * a if need_b else None)
    return mul_backward


# Ops whose gradient for their second operand (a weight) is a sum over rows, sum_n input_n^T grad_n:
# after the backward loop one call on all T*N rows gives the sum over steps, as one matrix product
# instead of T small ones (the fused kernels' `weight_grads`). Only their backward's use of
# saved_tensors[0] (the rows) is relied on.
ROW_PRODUCTS = (_ops.Linear, _ops.MatMul)


def _defers(e, where, values):
    if e.cls not in ROW_PRODUCTS or len(e.outs) != 1 or where[e.args[0]] is STATIC:
        return False
    rest = e.args[1:]
    return (values[e.args[0]].ndim == 2 and all(where[a] in (STATIC, CONST) for a in rest)
            and all(values[a] is None or values[a].ndim <= 2 for a in rest))


def _plain_forward(e, slots, values):
    """The entry's forward as the step loop calls it: the op's own, but for a deferred row product
    (below) and Chunk, whose slices are worked out once from the traced shapes (they never change)."""
    if e.deferred:
        return _contiguous_product(e, slots)
    if e.cls is not _ops.Chunk or len(e.args) != 3 or e.kwargs:
        return e.cls.forward
    x, n, axis = (values[a] for a in e.args)
    size, before = x.shape[axis] // n, (slice(None),) * (axis % x.ndim)
    pieces = [before + (slice(i * size, (i + 1) * size),) for i in range(n)]

    def chunk_forward(ctx, x, n, axis):  # Chunk.forward's views, without recomputing where they start
        ctx.axis = axis
        return tuple(map(x.__getitem__, pieces))
    return chunk_forward


def _contiguous_product(entry, slots):
    """Linear's or MatMul's forward with the weight laid out for the product once for all steps.

    The same maths as ops.Linear / ops.MatMul (x W^T + b, a b) and the same saved arrays, so their
    backward applies; but np.dot with a contiguous right operand is 3-4x faster than a product with
    a transposed view, and the fused kernels make that copy once per sequence too."""
    weight = slots[entry.args[1]]
    xp = array_module(weight)
    if entry.cls is _ops.Linear:
        right = xp.ascontiguousarray(weight.T)

        def forward(ctx, x, weight, bias=None):
            ctx.save_for_backward(x, weight)
            y = xp.dot(x, right)
            if bias is not None:
                y += bias
            return y
    else:
        right = xp.ascontiguousarray(weight)

        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return xp.dot(a, right)
    return forward


_is_none = functools.partial(operator.is_, None)  # for map(): tests a tuple's items in C, no generator


def _fetch(args):
    """slots → the tuple (or list) of the values at `args`, in one C call (the step loop's hot path)."""
    return operator.itemgetter(*args) if len(args) > 1 else operator.itemgetter(slice(args[0], args[0] + 1))


def _linear_by_dot(ctx, x, weight, bias=None):
    """ops.Linear's forward (x W^T + b, the same saved arrays, so its backward applies) as np.dot: on the
    hoisted input projection of one feature (D = 1), an outer product, matmul is ~6x slower than dot."""
    ctx.save_for_backward(x, weight)
    y = array_module(x).dot(x, weight.T)
    if bias is not None:
        y += bias
    return y


def _matmul_by_dot(ctx, a, b):
    """ops.MatMul's forward for two matrices, as np.dot (see _linear_by_dot)."""
    ctx.save_for_backward(a, b)
    return array_module(a).dot(a, b)


_BY_DOT = {_ops.Linear: _linear_by_dot, _ops.MatMul: _matmul_by_dot}


def _run(entry, slots, needs):
    """One entry's forward on the arrays in `slots`, its outputs written to their slots; its ctx."""
    ctx = entry.cls()
    ctx.needs_input_grad = needs
    args = [slots[a] for a in entry.args]
    by_dot = _BY_DOT.get(entry.cls)  # a product of two matrices
    by_dot = by_dot if by_dot and not entry.kwargs and all(getattr(a, "ndim", 0) == 2 for a in args[:2]) else None
    forward = by_dot or entry.cls.forward
    out = forward(ctx, *args, **entry.kwargs)
    if len(entry.outs) == 1:
        slots[entry.outs[0]] = out
    else:
        for o, v in zip(entry.outs, out):
            slots[o] = v
    return ctx


def _backward(entry, ctx, grads, shape_of):
    """The entry's input gradients from its output gradients (missing ones filled with zeros)."""
    if len(entry.outs) == 1:
        result = entry.cls.backward(ctx, grads[entry.outs[0]])
    else:
        gouts = [grads[o] for o in entry.outs]
        if any(g is None for g in gouts):
            xp = array_module(next(g for g in gouts if g is not None))
            gouts = [xp.zeros(shape_of(entry, i), entry.shapes[i][1]) if g is None else g
                     for i, g in enumerate(gouts)]
        result = entry.cls.backward(ctx, *gouts)
    return result if isinstance(result, tuple) else (result,)


class TapeSequence(Function):
    """TapeSequence.apply(program, mask, x, *state, *params) → (outputs (N, T, H), *final state).

    The cell's tape replayed for t = 1..T on plain arrays: static entries once, hoisted entries once
    over all T*N rows, the rest every step. `mask` (N, T) keeps the state where it is 0 (padding) and
    zeroes the output there. (Random masks, as of zoneout or recurrent dropout, come in as columns of x:
    nn/step_masks.py.) The step loops run as the Python that tape_codegen.py writes for the plan, or,
    where it writes none, by interpreting the plan's table (`_forward_steps`, `_backward_steps`).
    """

    @staticmethod
    @_no_cycle_collection()  # T * (ops per step) ctx objects and no cycles: the collector would only rescan them
    def forward(ctx, program, mask, x, *tensors):
        tape = program.tape
        xp = array_module(x)
        N, T = x.shape[0], x.shape[1]
        k = len(tape.state_in)
        state, params = tensors[:k], tensors[k:]
        keep = is_grad_enabled() and True in ctx.needs_input_grad
        plan = program.plan(ctx.needs_input_grad[2], keep, ctx.needs_input_grad[3 + k:])
        slots = [None] * len(tape.values)
        for i, v in program.constants:
            slots[i] = v
        for i, p in zip(tape.param_slots, params):
            slots[i] = p
        static = [_run(e, slots, plan.needs[e]) for e in program.static]
        slots[0] = xp.ascontiguousarray(x.swapaxes(0, 1)).reshape((T * N,) + x.shape[2:])  # row t*N + n
        rows = [_run(e, slots, plan.needs[e]) for e in program.rows]
        row_shapes = {o: slots[o].shape for e in program.rows for o in e.outs}
        row_shapes[0] = slots[0].shape
        m = None if mask is None else xp.ascontiguousarray(mask.T[:, :, None]).astype(x.dtype, copy=False)
        keep_old = None if m is None else 1 - m
        current = [s.astype(x.dtype, copy=False) for s in state]  # the state each step starts from
        out = xp.empty((N, T) + tape.values[tape.h].shape[1:], x.dtype)  # written as out[:, t]: no copy after
        code = plan.code(keep, m is not None)
        run_steps = code.forward_steps if code is not None else functools.partial(_forward_steps, program, plan, keep)
        current, steps, *rows_of = run_steps(xp, T, N, slots, current, m, keep_old, out.swapaxes(0, 1))
        if keep:
            ctx.save_for_backward(static, rows, steps)
            ctx.deferred_rows = rows_of[0] if rows_of else {}  # deferred products' input rows, laid out already
            ctx.program, ctx.plan, ctx.m, ctx.row_shapes = program, plan, m, row_shapes
            ctx.code, ctx.slots = code, slots
            ctx.shape = N, T, x.shape[2:]
        return (out, *current)

    @staticmethod
    @_no_cycle_collection()  # the backward makes a few lists and tuples per op and step, none in a cycle
    def backward(ctx, grad_outputs, *grad_state):
        static, rows, steps = ctx.saved_tensors
        program, plan, code, m, row_shapes = ctx.program, ctx.plan, ctx.code, ctx.m, ctx.row_shapes
        tape, where = program.tape, program.where
        N, T, x_tail = ctx.shape
        xp = array_module(grad_outputs)
        G = grad_outputs.swapaxes(0, 1)  # step t's output gradient is G[t], a view
        workspace = plan.workspace
        if code is None or workspace.busy:  # (busy: a backward inside a backward would share its buffers)
            workspace = tape_codegen.Workspace()
        if code is not None and tape.h in tape.state_out:  # G[t] is then always added to the state's gradient,
            # never passed on as it is: read it time-major (a view's rows lie T*H apart, a page each)
            G = workspace("G", G.shape, G.dtype, xp, False)
            G[...] = grad_outputs.swapaxes(0, 1)
        keep_old = None if m is None else 1 - m
        row_grads, static_grads = {}, {}   # hoisted arrays' gradients (T*N rows), and sums over steps
        deferred = {}                      # index of a deferred entry → its output gradient, all rows
        per_step = lambda e, i: e.shapes[i][0]  # noqa: E731  (shapes holds (shape, dtype) per output)
        run_steps = code.backward_steps if code is not None else functools.partial(_backward_steps, program, plan)
        workspace.busy = True
        try:
            dS = run_steps(xp, T, N, ctx.slots, steps, G, list(grad_state), m, keep_old, row_grads, static_grads,
                           deferred, row_shapes, workspace)
            for i, buf in deferred.items():  # the weights of row products: one product over all T*N rows
                e = program.step[i]
                batched = e.cls()
                batched.needs_input_grad = (False,) + plan.needs[e][1:]
                rows_in = ctx.deferred_rows.get(i)  # the forward's buffer of the state, when it holds them in order
                if rows_in is None:
                    inputs = [c[code.deferred_at[i]] for c in steps] if code is not None else \
                        [c[i].saved_tensors[0] for c in steps]
                    rows_in = workspace(f"inputs{i}", (T * N,) + inputs[0].shape[1:], inputs[0].dtype, xp, False)
                    xp.concatenate(inputs, out=rows_in)  # (into a reused array: no page faults)
                batched.saved_tensors = (rows_in, ctx.slots[e.args[1]])
                for a, g, need in zip(e.args[1:], _backward(e, batched, {e.outs[0]: buf}, per_step)[1:], plan.needs[e][1:]):
                    if g is not None and need:
                        _accumulate(static_grads, a, g)
            row_shape = lambda e, i: row_shapes[e.outs[i]]  # noqa: E731
            for e, c in zip(reversed(program.rows), reversed(rows)):
                if all(o not in row_grads for o in e.outs):
                    continue
                for a, g, need in zip(e.args, _backward(e, c, _Grads(row_grads), row_shape), plan.needs[e]):
                    if g is None or not need:
                        continue
                    if where[a] is ROWS:
                        row_grads[a] = g if a not in row_grads else row_grads[a] + g
                    else:
                        _accumulate(static_grads, a, g)
            for e, c in zip(reversed(program.static), reversed(static)):
                if all(o not in static_grads for o in e.outs):
                    continue
                for a, g, need in zip(e.args, _backward(e, c, _Grads(static_grads), per_step), plan.needs[e]):
                    if g is not None and need:
                        _accumulate(static_grads, a, g)
            dx = row_grads.get(0)
            if dx is not None:  # always a copy: the rows may be a reused buffer
                dx = xp.array(dx.reshape((T, N) + tuple(x_tail)).swapaxes(0, 1), order="C", copy=True)
        finally:
            workspace.busy = False
        dparams = [static_grads.get(s) for s in tape.param_slots]
        return (None, None, dx, *dS, *dparams)


def _forward_steps(program, plan, keep, xp, T, N, slots, current, m, keep_old, out):
    """The step loop by the table (what tape_codegen.py writes out as code): (final state, each step's ctxs)."""
    tape = program.tape
    state_in, state_out, h = tape.state_in, tape.state_out, tape.h
    full = [(s, slots[s]) for s in program.row_slots]
    # the step loop's table, so that each op costs a few tuple reads
    forward_ops = [(e.cls, _plain_forward(e, slots, tape.values), _fetch(e.args),
                    e.kwargs, e.outs[0] if len(e.outs) == 1 else -1, e.outs, plan.loop_needs[e])
                   for e in program.step]
    steps = []
    for t in range(T):
        lo, hi = t * N, (t + 1) * N
        for s, a in full:
            slots[s] = a[lo:hi]
        for s, v in zip(state_in, current):
            slots[s] = v
        ctxs = []
        for cls, op, fetch, kwargs, out1, outs, needs in forward_ops:
            c = cls()
            c.needs_input_grad = needs
            result = op(c, *fetch(slots), **kwargs)
            if out1 >= 0:
                slots[out1] = result
            else:
                for o, v in zip(outs, result):
                    slots[o] = v
            ctxs.append(c)
        if keep:
            steps.append(ctxs)
        new = [slots[s] for s in state_out]
        if m is None:
            out[t] = slots[h]
            current = new
        else:  # padding keeps the old state and outputs zeros: m * new + (1 - m) * old
            xp.multiply(slots[h], m[t], out=out[t])
            current = [n * m[t] + o * keep_old[t] for n, o in zip(new, current)]
    for s, a in full:  # the hoisted arrays back in their slots, as the backward reads them
        slots[s] = a
    return current, steps


def _backward_steps(program, plan, xp, T, N, slots, steps, G, dS, m, keep_old, row_grads, static_grads, deferred,
                    row_shapes, buffer):
    """The step loop backwards by the table: the state's gradient at step 0; hoisted rows' gradients,
    sums over steps and deferred products' output gradients go into the three dicts."""
    tape, where = program.tape, program.where

    def rows_of(slot, dtype):
        buf = row_grads.get(slot)
        if buf is None:
            buf = row_grads[slot] = xp.zeros(row_shapes[slot], dtype)
        return buf

    per_step = lambda e, i: e.shapes[i][0]  # noqa: E731  (shapes holds (shape, dtype) per output)
    backward_ops = plan.backward_ops
    state_in, state_out, h = tape.state_in, tape.state_out, tape.h
    returned_rows = [s for s in {h, *state_out} if where[s] is ROWS]  # rare: a step returns a hoisted value
    for t in range(T - 1, -1, -1):
        lo, hi = t * N, (t + 1) * N
        ctxs = steps[t]
        grads = [None] * len(where)
        if m is None:
            passed = None
            for s, g in zip(state_out, dS):
                grads[s] = g if grads[s] is None else grads[s] + g
            grads[h] = G[t] if grads[h] is None else grads[h] + G[t]
        else:  # the new state was m * candidate + (1 - m) * old, the output h * m
            passed = [g * keep_old[t] for g in dS]
            for s, g in zip(state_out, dS):
                g = g * m[t]
                grads[s] = g if grads[s] is None else grads[s] + g
            g = G[t] * m[t]
            grads[h] = g if grads[h] is None else grads[h] + g
        for i, op, out1, e, outs_of, is_deferred, to_step, to_rest in backward_ops:
            if out1 >= 0:
                g = grads[out1]
                if g is None:
                    continue
                if is_deferred:  # keep the gradient for the weights' one product after the loop
                    buf = deferred.get(i)
                    if buf is None:
                        buf = deferred[i] = xp.zeros((T * N,) + g.shape[1:], g.dtype)
                    buf[lo:hi] = g
                    if not (to_step or to_rest):
                        continue
                result = op(ctxs[i], g)
            else:  # several outputs (Chunk): all their gradients are usually there
                gouts = outs_of(grads)
                if not any(map(_is_none, gouts)):
                    result = op(ctxs[i], *gouts)
                elif all(map(_is_none, gouts)):
                    continue
                else:
                    result = _backward(e, ctxs[i], grads, per_step)  # the missing ones as zeros
            if type(result) is not tuple:
                result = (result,)
            for pos, a in to_step:  # a value of this step: the first gradient is kept as it is
                g = result[pos]
                if g is not None:
                    grads[a] = g if grads[a] is None else grads[a] + g
            for pos, a, w in to_rest:
                g = result[pos]
                if g is None:
                    continue
                if w is ROWS:
                    rows_of(a, g.dtype)[lo:hi] += g
                else:
                    _accumulate(static_grads, a, g)
        for s in returned_rows:  # an output read straight from a hoisted array
            if grads[s] is not None:
                rows_of(s, grads[s].dtype)[lo:hi] += grads[s]
        dS = [grads[s] if grads[s] is not None else xp.zeros_like(d) for s, d in zip(state_in, dS)]
        if passed is not None:
            dS = [d + p for d, p in zip(dS, passed)]
    return dS

class _Grads(dict):
    """Gradients by slot, None where there is none (how `_backward` reads them)."""

    def __missing__(self, slot):
        return None


def _accumulate(grads, slot, g):
    """Sum gradients that reach a parameter (or a value made once from parameters) at every step; the
    first is copied so the sum owns its array (an op may hand the same array to several inputs)."""
    total = grads.get(slot)
    if total is None:
        grads[slot] = g.copy()
    elif total.shape == g.shape:
        total += g
    else:
        grads[slot] = total + g


# ---- the public entry ---------------------------------------------------------------------------------------
class CompiledCell:
    """A cell's `sequence(x, state, mask)` made from its `forward` by tracing; see the module docstring.

    A tape bakes in everything its step read except the parameters' values: shapes, dtypes, the
    backend, `training`, and every plain attribute (`self.scale = 0.5`, a flag, a buffer's contents).
    So tapes are kept per all of those, and a change to any of them traces a new tape instead of
    replaying a stale one. A cell that cannot be traced warns once and runs op by op (the composed
    unroll) from then on."""

    KEEP = 8  # tapes kept per cell; a cell whose attributes change every call re-traces, never grows

    def __init__(self, cell):
        self.cell = cell
        self.tapes = collections.OrderedDict()
        self.reason = None  # why the cell cannot be compiled, once found

    def sequence(self, x, state, mask=None):
        params = self.cell.parameters()  # (once: each call walks the cell's modules)
        check_input_dtype(x, self.cell, "compiled cell", params)
        if self.reason is None and x.shape[1] >= 2:
            try:
                tape = self.tape_for(x, state, params)
            except NotTraceable as e:
                self.reason = str(e)
                # op by op first: a step that simply fails raises its own error there, and that, not
                # the tracing, is what its author needs to read
                result = unroll(self.cell, x, state, mask)
                name = getattr(self.cell, "plugin_name", type(self.cell).__name__)
                warnings.warn(f"cell {name!r} cannot be compiled: {e}; running it op by op", CompileWarning,
                              stacklevel=3)
                return result
        if self.reason is not None or x.shape[1] < 2:
            return unroll(self.cell, x, state, mask)
        mask = mask.data if isinstance(mask, Tensor) else mask
        result = TapeSequence.apply(tape.program, mask, x, *state, *params)
        return result[0], tuple(result[1:])

    def tape_for(self, x, state, params=None):
        params = self.cell.parameters() if params is None else params
        key = (x.shape[0], x.shape[2:], x.dtype, type(x.data), tuple((s.shape, s.dtype) for s in state),
               tuple((p.shape, p.dtype) for p in params), plain_state(self.cell))
        tape = self.tapes.get(key)
        if tape is None:
            tape = self._trace(key, x, state)
        else:
            self.tapes.move_to_end(key)
            if not still_holds(tape, self.cell, x.data[:, 0], state, params):
                tape = self._trace(key, x, state)
        return tape

    def _trace(self, key, x, state):
        tape = self.tapes[key] = trace(self.cell, x.data[:, 0], x.data[:, 1], state)
        # a forward that keeps something on the cell (self.last_h = h, to plot it) has changed the cell's
        # state by tracing it; a replay does not run forward, so the next call sees the state as it is now
        self.tapes[key[:-1] + (plain_state(self.cell),)] = tape
        while len(self.tapes) > self.KEEP:
            self.tapes.popitem(last=False)
        return tape


def still_holds(tape, cell, x1, state, params=None):
    """Whether `tape` still is what the cell's step does. The key above watches what the cell holds; this,
    what its forward reads from outside it (a module-level constant changed between calls): one step is
    recorded now (no gradients) and compared with the tape: the same ops, inputs from the same places,
    the same constants. With TINYGRAD_RNN_WATCH=1 the tape's watch (tape_watch.py) comes first: when
    none of the values the code reads by name changed, it holds without a recorded step. On NumPy
    only: on a GPU that comparison would be a device read per call, so there a changed watched value
    traces a new tape and an incomplete watch trusts the key."""
    watch = getattr(tape, "watch", None)
    if watch is not None and watch.unchanged():  # nothing the step read from outside the cell changed
        return True
    if array_module(x1) is not np:
        return watch is None or not watch.complete
    params = cell.parameters() if params is None else params
    inputs = [Tensor._from_op(x1, False), [Tensor._from_op(s.data, False) for s in state]]
    try:
        record, h, new_state = _record(cell, *inputs)
    except Exception:  # the step fails now: trace again, which says why
        return False
    holds = _replays_as(tape, record, [inputs[0], *inputs[1], *params], [h, *new_state])
    if holds and watch is not None:
        watch.refresh()  # a watched value changed but not what the step does with it (a counter, say)
    return holds


def _replays_as(tape, record, sources, returned):
    """Whether `record` (a step just recorded from `sources`: x, the state, the parameters) is the step
    the tape holds: the same ops, each input from the same slot, the same constants and plain values,
    outputs of the same shapes, returning the same slots. Tape() and Tape.difference() say the same of
    two traces, with the reasons in words; this walks the record once and builds nothing (it runs
    before every compiled sequence)."""
    entries, values, kind = tape.entries, tape.values, tape.kind
    if len(record) != len(entries) or len(sources) != len(tape.state_in) + 1 + len(tape.param_slots):
        return False
    slot_of = {id(t): i for i, t in enumerate(sources)}
    for (cls, args, kwargs, outputs), e in zip(record, entries):
        if cls is not e.cls or len(args) != len(e.args) or len(outputs) != len(e.outs) or \
                (kwargs or e.kwargs) and not _same(kwargs, e.kwargs):
            return False
        for a, slot in zip(args, e.args):
            if isinstance(a, Tensor):
                known = slot_of.get(id(a))
                if known is not None:
                    if known != slot:
                        return False
                    continue
                if a.requires_grad or kind[slot] != "const" or not _same(a.data, values[slot]):
                    return False  # a new parameter, or a constant tensor that is not the one baked in
                slot_of[id(a)] = slot
            elif kind[slot] != "value" or not _same(a, values[slot]):
                return False
        for o, slot, (shape, dtype) in zip(outputs, e.outs, e.shapes):
            if o.data.shape != shape or o.data.dtype != dtype:
                return False
            slot_of[id(o)] = slot
    return [slot_of.get(id(t)) for t in returned] == [tape.h, *tape.state_out]


def check_input_dtype(x, cell, who, params=None):
    """A DTypeError naming both dtypes when `x` does not match the cell's weights: NumPy would quietly
    promote the state to the wider type at the first step, and a tape would see two different steps."""
    weights = next((p.dtype for p in (cell.parameters() if params is None else params) if p.dtype.kind == "f"),
                   x.dtype)
    if x.dtype != weights:
        raise DTypeError(f"{who}: the input is {x.dtype} but the cell's weights are {weights}; convert one of "
                         f"them: Tensor(x.numpy(), dtype='{weights}'), or the model with model.to(dtype='{x.dtype}')")


_compiled = weakref.WeakKeyDictionary()


def compile_cell(cell):
    """The compiled form of `cell` (made once per cell): `compile_cell(cell).sequence(x, state, mask)`."""
    try:
        return _compiled[cell]
    except KeyError:
        compiled = _compiled[cell] = CompiledCell(cell)
        return compiled
    except TypeError:  # a cell that cannot be weakly referenced: compiled afresh each time
        return CompiledCell(cell)
