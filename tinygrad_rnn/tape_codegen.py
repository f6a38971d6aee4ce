"""The tape's step loops written out as Python source, once per plan: what the replay runs by default.

`TapeSequence` (tape.py) can replay a tape by interpreting its table: for every op of every step, read
the op's inputs from a list of slots, make a ctx, call the op, write its outputs back, and in the
backward look up where each gradient goes. On a cell's small arrays that bookkeeping costs as much as
the arithmetic (an Elman RNN's step is one product and one fused kernel). So, as torch.fx turns a
traced graph into Python code, this module writes the loops as straight-line source, with locals for
slots, and `exec`s it:

    for t in range(T):
        lo = t * N; hi = lo + N
        v9 = rows9[lo:hi]                    # hoisted x_t W_ih^T + b_ih: this step's rows
        v12 = dot(v1, right0)                # MatMul: h W_hh^T, the weight laid out once
        v15, = fused1(v9, v12, v5)           # Fused[Add, Add, Tanh]: one numba kernel
        ...                                  # (an Elman RNN's, fused; program.source() prints it)

An op's ctx is made only where its own backward needs it; the row products, the fused kernels, Add,
Sub, Mul and Chunk keep just the arrays their backward reads, in one tuple per step. The gradient
bookkeeping (which gradient exists, where it goes) is decided while writing, from the tape, not at
every step. `program.source()` shows the result; `TINYGRAD_RNN_CODEGEN=0` replays by the table instead
(the two are tested to agree). Whatever this writer does not handle, it refuses (`Unsupported`) and the
table runs: both call the same ops, so they compute the same numbers.
"""
import os
import re

from . import ops as _ops

ENV = "TINYGRAD_RNN_CODEGEN"
STEP, ROWS, STATIC = "step", "rows", "static"  # as in tape.py (compared by value there too)
NONE, MAYBE, PRESENT = 0, 1, 2  # what is known, while writing, about a gradient local at a point of the step


def _tuple(names):
    return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"


class Unsupported(Exception):
    """The step has something this writer does not handle; the table replay runs it."""


def accumulate(total, g):
    """total + g, in place after the first (copied): a parameter's gradient summed over the steps."""
    if total is None:
        return g.copy()
    if total.shape == g.shape:
        total += g
        return total
    return total + g


class Workspace:
    """Arrays of T*N rows that one backward fills and drops (hoisted rows' gradients, the deferred
    products' output gradients), kept from one call to the next. A fresh array of that size comes from
    the system as untouched pages, and filling it costs a page fault per 4 KiB: measured, more than the
    arithmetic of a small LSTM's backward (its step loop, 32x50x1x32: 2.2 ms of CPU with fresh arrays,
    0.9 ms reused). Nothing of them leaves the backward: what it returns is computed from them into new
    arrays (the input's gradient is copied out for that reason)."""

    def __init__(self):
        self.arrays, self.busy = {}, False

    def __call__(self, key, shape, dtype, xp, zero):
        a = self.arrays.get(key)
        if a is None or a.shape != shape or a.dtype != dtype or type(a) is not xp.ndarray:
            a = self.arrays[key] = xp.empty(shape, dtype)
        if zero:
            a.fill(0)
        return a


def enabled():
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class StepCode:
    """The generated `forward_steps` and `backward_steps` of one plan (see the module docstring)."""

    def __init__(self, program, plan, keep, masked):
        self.program, self.plan, self.keep, self.masked = program, plan, keep, masked
        self.tape = tape = program.tape
        self.namespace = {"accumulate": accumulate}
        if not tape.state_in:
            raise Unsupported("a step without state")
        self.saved = []  # the step's locals the backward reads, kept per step as one tuple
        self.deferred_at = {}  # index of a deferred entry → position of its input rows in that tuple
        self.deferred_rows = {}  # index of a deferred entry → the buffer already holding its input rows
        self.buffers = {}  # slot → the forward's array for that slot at every step (see _target)
        self.kinds = {i: self._kind(i, e) for i, e in enumerate(program.step)}
        forward = self._forward()
        backward = self._backward() if keep else []
        self.forward_source, self.backward_source = "\n".join(forward) + "\n", "\n".join(backward) + "\n"
        self.source = self.forward_source + self.backward_source
        exec(compile(self.source, f"<tape step of {len(program.step)} ops>", "exec"), self.namespace)
        self.forward_steps = self.namespace["forward_steps"]
        self.backward_steps = self.namespace.get("backward_steps")

    # ---- what each op of the step is written as ------------------------------------------------------
    def _kind(self, i, e):
        values, needs = self.tape.values, self.plan.loop_needs[e]
        if e.deferred:
            if values[e.args[1]].ndim != 2:
                raise Unsupported("a deferred product with a weight that is not a matrix")
            return "product"
        if getattr(e.cls, "numba_kernels", None) is not None:
            return "fused"
        shape = values[e.outs[0]].shape
        if e.cls in (_ops.Add, _ops.Sub, _ops.Mul) and not e.kwargs and all(
                not n or getattr(values[a], "shape", None) == shape for a, n in zip(e.args, needs)):
            return "binary"
        if e.cls is _ops.Chunk and len(e.args) == 3 and not e.kwargs:
            return "chunk"
        return "op"

    def op_name(self, i, e):
        return re.sub(r"\W", "_", e.cls.__name__) + str(i)  # Mul3: the step's op 3, a Mul

    def name(self, slot):
        return f"v{slot}"

    def bind(self, name, value):
        self.namespace[name] = value
        return name

    # ---- forward -------------------------------------------------------------------------------------
    def _forward(self):
        program, tape = self.program, self.tape
        where, values = program.where, tape.values
        step_made = {o for e in program.step for o in e.outs} | set(tape.state_in)
        used = {a for e in program.step for a in e.args} | {tape.h, *tape.state_out}
        head = ["def forward_steps(xp, T, N, slots, current, m, keep_old, out):",
                '    """The step loop: (final state, what each step keeps for the backward)."""']
        body = []
        self.fixed = {self.name(s) for s in used - step_made if where[s] != ROWS}  # loaded once, never kept per step
        for s in sorted(used - step_made):
            if where[s] == ROWS:
                head.append(f"    rows{s} = slots[{s}]  # hoisted, all T*N rows")
                body.append(f"        {self.name(s)} = rows{s}[lo:hi]")
            else:
                head.append(f"    {self.name(s)} = slots[{s}]  # {tape.kind[s]}, the same every step")
        if any(k == "product" for k in self.kinds.values()):
            head.append("    dot = xp.dot")
        state = ", ".join(self.name(s) for s in tape.state_in)
        head.append(f"    {state}, = current")
        self._buffers(head)
        for i, e in enumerate(program.step):
            body += self._forward_op(i, e, head)
        if self.keep:  # before the state locals below are rebound to the next step's
            body.append(f"        steps.append({_tuple(self.saved)})")
        h = self.name(tape.h)
        new = [self.name(s) for s in tape.state_out]
        if self.masked:  # padding keeps the old state and outputs zeros
            body.append(f"        xp.multiply({h}, m[t], out=out[t])")
            new = [f"{n} * m[t] + {self.name(s)} * keep_old[t]" for n, s in zip(new, tape.state_in)]
        elif tape.h not in self.buffers:  # the outputs are copied into place in one call after the loop
            body.append(f"        outputs.append({h})")
        body.append(f"        {state}, = {', '.join(new)},")
        lines = head + ["    steps, outputs = [], []", "    for t in range(T):", "        lo = t * N; hi = lo + N"] + body
        if tape.h in self.buffers and not self.masked:  # every step wrote its h there: one copy, time-major
            buf, first = self.buffers[tape.h]
            lines.append(f"    out[...] = {buf}{'[1:]' if first else ''}")
        elif not self.masked:
            lines.append("    xp.stack(outputs, axis=1, out=out.swapaxes(0, 1))")
        rows = ", ".join(f"{i}: {b}" for i, b in self.deferred_rows.items())
        final = ", ".join(f"{self.name(s)}.copy()" if o in self.buffers else self.name(s)  # (not a view that
                          for s, o in zip(tape.state_in, tape.state_out))               # holds the buffer)
        lines.append(f"    return [{final}], steps" + (f", {{{rows}}}" if rows else ""))
        return lines

    def _buffers(self, head):
        """One array per call for each output of the step's products and fused kernels, (T, ...) with step
        t's value at [t]: the product and the kernel write into it (`out=`), no array is made per step,
        and h is copied out in one call at the end. The state the step returns gets (T + 1, ...), the
        initial state at [0]: then a deferred product whose input is that state finds its T*N input rows
        there, in order, instead of gathering them from the steps after the loop."""
        tape, state_of = self.tape, dict(zip(self.tape.state_out, self.tape.state_in))
        for i, e in enumerate(self.program.step):
            if self.kinds[i] not in ("product", "fused") or self.kinds[i] == "fused" and \
                    getattr(e.cls, "forward_into", None) is None:
                continue
            for o, (shape, dtype) in zip(e.outs, e.shapes):
                if o in self.buffers or len(shape) < 1:
                    continue
                dt = self.bind(f"dtype_out{o}", dtype)
                if o in state_of and not self.masked:
                    head.append(f"    S{o} = xp.empty((T + 1,) + {tuple(shape)!r}, {dt}); "
                                f"S{o}[0] = {self.name(state_of[o])}")
                    self.buffers[o] = (f"S{o}", True)
                else:
                    head.append(f"    P{o} = xp.empty((T,) + {tuple(shape)!r}, {dt})")
                    self.buffers[o] = (f"P{o}", False)
        for i, e in enumerate(self.program.step):  # a deferred product of the state: its rows are S[:-1]
            if self.kinds[i] == "product" and self.keep:
                a = e.args[0]
                made = next((o for o, s in state_of.items() if s == a), None)
                if made is not None and made in self.buffers and self.buffers[made][1]:
                    self.deferred_rows[i] = f"S{made}[:-1].reshape((T * N,) + S{made}.shape[2:])"

    def _target(self, slot):
        """Where step t writes `slot`: its row of the call's buffer (see _buffers)."""
        buf, first = self.buffers[slot]
        return f"{buf}[t + 1]" if first else f"{buf}[t]"

    def _forward_op(self, i, e, head):
        kind, args = self.kinds[i], [self.name(a) for a in e.args]
        outs = "".join(self.name(o) + ", " for o in e.outs)  # a tuple's targets: `v13, v14, = ...`
        single = f"{self.name(e.outs[0])} = " if len(e.outs) == 1 else outs[:-2] + " = "
        label = f"  # {e.cls.__name__}"
        if kind == "product":  # x W^T (+ b) or a b, with the right operand made contiguous once
            right = f"right{i}"
            weight = args[1] + (".T" if e.cls is _ops.Linear else "")
            head.append(f"    {right} = xp.ascontiguousarray({weight})")
            out = self.name(e.outs[0])
            line = [f"        {out} = dot({args[0]}, {right}, out={self._target(e.outs[0])}){label}"
                    if e.outs[0] in self.buffers else f"        {out} = dot({args[0]}, {right}){label}"]
            if e.cls is _ops.Linear and len(args) > 2 and self.tape.values[e.args[2]] is not None:
                # the bias laid out once as N full rows: a same-shape add costs half of a broadcast one
                # (measured, 16x256 float32 with one thread: 0.9 against 1.8 us a step)
                bias = f"bias{i}"
                head.append(f"    {bias} = xp.ascontiguousarray(xp.broadcast_to({args[2]}, (N, {right}.shape[1])))")
                line.append(f"        {self.name(e.outs[0])} += {bias}")
            self.deferred_at[i] = self._save(args[0])
            return line
        if kind == "fused":
            forward, backward, wanted = e.cls.numba_kernels
            kernel = self.bind(f"fused{i}", forward)
            self.bind(f"fused{i}_backward", backward)
            for a in args:
                self._save(a)
            if all(o in self.buffers for o in e.outs):
                into = self.bind(f"fused{i}_forward_into", e.cls.forward_into)
                targets = [self._target(o) for o in e.outs]
                return [f"        {outs}= {', '.join(targets)},",
                        f"        {into}({', '.join(args)}, {outs[:-2]}){label}"]
            return [f"        {outs}= {kernel}({', '.join(args)}){label}"]
        if kind == "binary":
            if e.cls is _ops.Mul:
                for a in args:
                    self._save(a)
            symbol = {_ops.Add: "+", _ops.Sub: "-", _ops.Mul: "*"}[e.cls]
            return [f"        {single}{args[0]} {symbol} {args[1]}{label}"]
        if kind == "chunk":
            x, n, axis = (self.tape.values[a] for a in e.args)
            size, before = x.shape[axis] // n, ":, " * (axis % x.ndim)
            pieces = ", ".join(f"{args[0]}[{before}{k * size}:{(k + 1) * size}]" for k in range(n))
            return [f"        {single}{pieces}{label}"]
        op = self.bind(self.op_name(i, e), e.cls)
        self.bind(f"needs{i}", self.plan.loop_needs[e])
        kwargs = f", **{self.bind(f'kwargs{i}', e.kwargs)}" if e.kwargs else ""
        self._save(f"c{i}")
        result = f"{op}.forward(c{i}, {', '.join(args)}{kwargs})"
        return [f"        c{i} = {op}(); c{i}.needs_input_grad = needs{i}", f"        {single}{result}"]

    def _save(self, name):
        if name in self.fixed:
            return None
        if name not in self.saved:
            self.saved.append(name)
        return self.saved.index(name)

    # ---- backward ------------------------------------------------------------------------------------
    def _backward(self):
        program, tape, plan = self.program, self.tape, self.plan
        where = program.where
        self.status = {}  # gradient local → NONE / MAYBE / PRESENT at the current line
        self.sums, self.row_bufs = set(), set()  # parameter-side sums over steps, hoisted rows' buffers
        self.depth = 2
        self.maybe = set()  # gradient locals that are None at some point where they are read
        self.zero_sums = {}  # sums a kernel adds into: zeros before the loop (slot → shape, dtype)
        self.direct = {}  # slot → the product buffer its gradient was written into, while that is all of it
        self.added_into = set()  # the product buffers a kernel adds into (so zeroed first)
        self.row_writers = {}  # hoisted slot → how many places of the step write its rows' gradient
        self.rows_set = set()  # hoisted slots whose rows a kernel writes (not adds) first at every step
        self.stayed_direct = set()  # product buffers that hold just what a kernel wrote into them
        self.shared = []  # (hoisted slot, product buffer) that a kernel writes the same gradient into
        self.products = {o: i for i, e in enumerate(program.step) if self.kinds[i] == "product" for o in e.outs}
        head = ["def backward_steps(xp, T, N, slots, steps, G, dS, m, keep_old, row_grads, static_grads, "
                "deferred, row_shapes, buffer):",
                '    """The step loop backwards: the state gradient at step 0; the rest goes in the dicts."""']
        step_made = {o for e in program.step for o in e.outs} | set(tape.state_in)
        used = {a for e in program.step for a in e.args}
        for s in sorted(used - step_made):
            if where[s] != ROWS:
                head.append(f"    {self.name(s)} = slots[{s}]")
        state = ", ".join(f"dS{k}" for k in range(len(tape.state_in)))
        head.append(f"    {state}, = dS")
        body = [f"        {''.join(n + ', ' for n in self.saved)}= steps[t]"] if self.saved else []
        seeds = []
        if self.masked:
            body.append(f"        {', '.join(f'passed{k}' for k in range(len(tape.state_in)))}, = "
                        f"{', '.join(f'dS{k} * keep_old[t]' for k in range(len(tape.state_in)))},")
            seeds += [(s, f"dS{k} * m[t]") for k, s in enumerate(tape.state_out)] + [(tape.h, "G[t] * m[t]")]
        else:
            seeds += [(s, f"dS{k}") for k, s in enumerate(tape.state_out)] + [(tape.h, "G[t]")]
        summed = {}  # h is usually a state too: its two seeds in one expression
        for s, value in seeds:
            summed.setdefault(s, []).append(value)
        for s, values in summed.items():
            if len(values) == 2 and not self.masked:  # dS + G[t] into one array per call, not a new one per step
                head.append(f"    seed{s} = xp.empty_like({values[0]})")
                body.append(f"        g{s} = xp.add({values[0]}, {values[1]}, out=seed{s})")
                self.status[f"g{s}"] = PRESENT
                continue
            body += self._add(s, " + ".join(values), PRESENT)
        for i, op, out1, e, outs_of, is_deferred, to_step, to_rest in plan.backward_ops:
            body += self._backward_op(i, e, to_step, to_rest, head)
        for s in sorted({tape.h, *tape.state_out}):
            if where[s] == ROWS and self.status.get(f"g{s}", NONE) != NONE:
                body += self._route_rows(s, f"g{s}", self.status[f"g{s}"])
        for k, s in enumerate(tape.state_in):
            g, known = f"g{s}", self.status.get(f"g{s}", NONE)
            value = g if known == PRESENT else f"xp.zeros_like(dS{k})" if known == NONE else \
                f"{g} if {g} is not None else xp.zeros_like(dS{k})"
            body.append(f"        dS{k} = ({value}) + passed{k}" if self.masked else f"        dS{k} = {value}")
        grads = sorted(self.maybe)  # the gradients that may be None when read: None at each step's start
        init = [f"        {' = '.join(grads)} = None"] if grads else []
        for s in sorted(self.sums):
            head.append(f"    sum{s} = xp.zeros({self.zero_sums[s][0]!r}, {self.zero_sums[s][1]})" if s in self.zero_sums
                        else f"    sum{s} = None")
        shared = {a: (buf, i, k) for a, buf, i, k in self.shared
                  if self.row_writers.get(a) == 1 and buf in self.stayed_direct}
        for s in sorted(self.row_bufs):
            dtype = self.bind("dtype", tape.values[tape.h].dtype)
            if s in shared:  # the kernel writes both with the same gradient: one array, the product's. (The
                # kernel's other copy goes to a small scratch array: given the same array twice, LLVM's
                # run-time overlap check would send the kernel to its scalar loop, measured 1.6x slower.)
                buf, i, k = shared[s]
                head.append(f"    rows{s} = row_grads[{s}] = {buf}  # the same gradient as the product's output")
                value = tape.values[s]
                head.append(f"    scratch{i}_{k} = buffer('scratch{i}_{k}', (N,) + {value.shape[1:]!r}, "
                            f"{self.bind(f'dtype{i}_in{k}', value.dtype)}, xp, zero=False)")
                mark = f"  # op {i} of the step"  # the kernel's line (_fused_into ends it so)
                body = [line.replace(f"rows{s}[lo:hi]", f"scratch{i}_{k}") if line.endswith(mark) else line
                        for line in body]
                continue
            head.append(f"    rows{s} = row_grads[{s}] = buffer('rows{s}', row_shapes[{s}], {dtype}, xp, "
                        f"zero={s not in self.rows_set})")
        lines = head + ["    for t in range(T - 1, -1, -1):", "        lo = t * N; hi = lo + N"] + init + body
        for s in sorted(self.sums):
            lines.append(f"    if sum{s} is not None: static_grads[{s}] = sum{s}")
        lines.append(f"    return [{state}]")
        return lines

    def _fused_into(self, i, e, grads, routes, head):
        """A fused kernel's backward that adds its input gradients straight into where they go: a hoisted
        input's into its rows of the buffer, a parameter's into its sum over steps, and the gradient of a
        row product's output into that product's buffer of all steps' gradients (then read from there).
        One call instead of the kernel plus a NumPy call per gradient."""
        pad, lines, targets = self._indent(), [], []
        where = {pos: (a, w) for pos, a, w in routes}
        after = []
        # backward_set writes the settable inputs' gradients instead of adding them: usable when each of
        # those goes where nothing was written yet at this step (a hoisted rows' slice no op wrote, a product's
        # buffer, a new local), so that no array needs zeros first
        kernels = getattr(e.cls, "kernels", None)
        settable = set(kernels.settable) if kernels is not None else set()
        writes = settable and all(self._fresh(*where.get(k, (e.args[k], None))) for k in settable)
        for k in e.cls.numba_kernels[2]:
            a, w = where.get(k, (e.args[k], None))
            value = self.tape.values[a]
            dtype = self.bind(f"dtype{i}_in{k}", value.dtype)
            if w is None:  # no gradient wanted: a scratch array the kernel may write
                head.append(f"    scratch{i}_{k} = buffer('scratch{i}_{k}', {value.shape!r}, {dtype}, xp, zero=False)")
                targets.append(f"scratch{i}_{k}")
            elif w == ROWS:
                self.row_bufs.add(a)
                self.row_writers[a] = self.row_writers.get(a, 0) + 1
                if writes and k in settable:
                    self.rows_set.add(a)
                targets.append(f"rows{a}[lo:hi]")
            elif w != STEP:
                self.sums.add(a)
                self.zero_sums[a] = (value.shape, dtype)
                targets.append(f"sum{a}")
            elif self.status.get(f"g{a}", NONE) == NONE and a in self.products:
                buf = self.direct[a] = f"deferred{self.products[a]}"
                if not (writes and k in settable):
                    self.added_into.add(buf)
                lines.append(f"{pad}g{a} = {buf}[lo:hi]")
                self.status[f"g{a}"] = PRESENT
                targets.append(f"g{a}")
            else:
                make = "empty" if writes and k in settable else "zeros"
                lines.append(f"{pad}d{i}_{k} = xp.{make}({value.shape!r}, {dtype})")
                targets.append(f"d{i}_{k}")
                after += self._add(a, f"d{i}_{k}", PRESENT)
        if writes:
            for k1, k2 in kernels.same:  # a hoisted input and a product's output added: one gradient array
                for kr, kp in ((k1, k2), (k2, k1)):
                    (ra, rw), (pa, pw) = where.get(kr, (e.args[kr], None)), where.get(kp, (e.args[kp], None))
                    if rw == ROWS and pw == STEP and self.direct.get(pa) == f"deferred{self.products.get(pa)}" and \
                            self.tape.values[ra].dtype == self.tape.values[pa].dtype and \
                            self.tape.values[ra].shape[1:] == self.tape.values[pa].shape[1:]:
                        self.shared.append((ra, self.direct[pa], i, kr))
        kernel = self.bind(f"fused{i}_set", e.cls.backward_set) if writes else \
            self.bind(f"fused{i}_into", e.cls.backward_into)
        args = [self.name(a) for a in e.args] + grads + targets
        return lines + [f"{pad}{kernel}({', '.join(args)})  # op {i} of the step"] + after

    def _fresh(self, a, w):
        """Whether a kernel may write (not add) slot a's gradient at this point of the step (see _fused_into)."""
        if w is None:
            return True
        if w == ROWS:
            return a not in self.row_writers  # no op of the step (after this one) wrote its rows yet
        if w != STEP:
            return False  # a sum over steps
        return self.status.get(f"g{a}", NONE) == NONE  # a new local, or a product's buffer (written every step)

    def _indent(self):
        return " " * (4 * self.depth)

    def _add(self, slot, value, known):
        """`g{slot} += value`, written for what is known about both (a new gradient is never added in place:
        the same array may reach several inputs)."""
        g, have = f"g{slot}", self.status.get(f"g{slot}", NONE)
        self.direct.pop(slot, None)  # no longer only what a kernel wrote into a product's buffer
        pad = self._indent()
        if known == MAYBE:  # an op's own backward: None where it has no gradient
            lines = [f"{pad}if {value} is not None:"]
            self.depth += 1
            lines += self._add(slot, value, PRESENT)
            self.depth -= 1
            self.status[g] = PRESENT if have == PRESENT else MAYBE
            self.maybe.update([g] if self.status[g] == MAYBE else [])
            return lines
        if have == NONE:
            line = f"{pad}{g} = {value}"
        elif have == PRESENT:
            line = f"{pad}{g} = {g} + {value}"
        else:
            line = f"{pad}{g} = {value} if {g} is None else {g} + {value}"
        self.status[g] = PRESENT if self.depth == 2 or have == PRESENT else MAYBE
        self.maybe.update([g] if self.status[g] == MAYBE else [])
        return [line]

    def _route(self, pos, a, w, value, known):
        """The gradient `value` of input `pos` (slot a, where w) to its place: this step, the hoisted rows,
        or a sum over steps."""
        if w == STEP:
            return self._add(a, value, known)
        if w == ROWS:
            return self._route_rows(a, value, known)
        pad = self._indent()
        self.sums.add(a)
        if known == PRESENT:  # the same shape as the slot: sum in place after the first step's copy
            return [f"{pad}if sum{a} is None: sum{a} = {value}.copy()", f"{pad}else: sum{a} += {value}"]
        return [f"{pad}if {value} is not None: sum{a} = accumulate(sum{a}, {value})"]

    def _route_rows(self, a, value, known):
        self.row_bufs.add(a)
        self.row_writers[a] = self.row_writers.get(a, 0) + 1
        pad = self._indent()
        if known == PRESENT:
            return [f"{pad}rows{a}[lo:hi] += {value}"]
        return [f"{pad}if {value} is not None: rows{a}[lo:hi] += {value}"]

    def _backward_op(self, i, e, to_step, to_rest, head):
        kind = self.kinds[i]
        outs = [self.status.get(f"g{o}", NONE) for o in e.outs]
        if all(k == NONE for k in outs):
            return []
        pad, lines = self._indent(), []
        grads = [f"g{o}" for o in e.outs]
        if len(e.outs) == 1 and outs[0] == MAYBE or len(e.outs) > 1 and PRESENT not in outs:
            lines.append(f"{pad}if {' or '.join(f'{g} is not None' for g, k in zip(grads, outs) if k)}:")
            self.depth += 1
            pad = self._indent()
        if len(e.outs) > 1:  # a missing output gradient is zeros of the traced shape
            full = []
            for k, (g, known) in enumerate(zip(grads, outs)):
                zeros = f"xp.zeros({e.shapes[k][0]!r}, {self.bind(f'dtype{i}_{k}', e.shapes[k][1])})"
                full.append(g if known == PRESENT else zeros if known == NONE else f"({g} if {g} is not None else {zeros})")
            grads = full
        routes = [(pos, a, STEP) for pos, a in to_step] + list(to_rest)
        if kind == "product":
            buf, value = f"deferred{i}", self.tape.values[e.outs[0]]
            if outs[0] == PRESENT:  # written at every step: zeros only for a kernel that adds into it
                dtype = self.bind(f"dtype{i}", value.dtype)
                head.append(f"    {buf} = deferred[{i}] = buffer('deferred{i}', (T * N,) + {value.shape[1:]!r}, {dtype}, "
                            f"xp, zero={buf in self.added_into})")
            else:
                head.append(f"    {buf} = None")
                lines.append(f"{pad}if {buf} is None: {buf} = deferred[{i}] = xp.zeros((T * N,) + {grads[0]}.shape[1:], "
                             f"{grads[0]}.dtype)")
            if self.direct.get(e.outs[0]) != buf:  # (else the kernel that made the gradient wrote it there)
                lines.append(f"{pad}{buf}[lo:hi] = {grads[0]}")
            else:
                self.stayed_direct.add(buf)
            weight = self.name(e.args[1]) + (".T" if e.cls is _ops.MatMul else "")
            results = {0: (f"{grads[0]}.dot({weight})", PRESENT)}
        elif kind == "fused" and self.depth == 2 and getattr(e.cls, "backward_into", None) is not None:
            return lines + self._fused_into(i, e, grads, routes, head)
        elif kind == "fused":
            d = ", ".join(f"d{i}_{k}" for k in e.cls.numba_kernels[2])
            if d:
                lines.append(f"{pad}{d}, = fused{i}_backward({', '.join(self.name(a) for a in e.args)}, {', '.join(grads)})")
            results = {k: (f"d{i}_{k}", PRESENT) for k in e.cls.numba_kernels[2]}
        elif kind == "binary":
            g = grads[0]
            a, b = (self.name(s) for s in e.args)
            results = {_ops.Add: {0: (g, PRESENT), 1: (g, PRESENT)},
                       _ops.Sub: {0: (g, PRESENT), 1: (f"-{g}", PRESENT)},
                       _ops.Mul: {0: (f"{g} * {b}", PRESENT), 1: (f"{g} * {a}", PRESENT)}}[e.cls]
        elif kind == "chunk":
            axis = self.tape.values[e.args[2]]
            results = {0: (f"xp.concatenate(({', '.join(grads)}), axis={axis!r})", PRESENT)}
        else:
            lines += [f"{pad}r = {self.op_name(i, e)}.backward(c{i}, {', '.join(grads)})",
                      f"{pad}if type(r) is not tuple: r = (r,)"]
            results = {pos: (f"r[{pos}]", MAYBE) for pos, _, _ in routes}
        for pos, a, w in routes:
            if pos not in results:
                continue
            value, known = results[pos]
            if known == PRESENT and value.count(" ") and sum(1 for p, _, _ in routes if p == pos) == 1:
                lines.append(f"{pad}d = {value}")  # an expression: computed once, then routed
                value = "d"
            lines += self._route(pos, a, w, value, known)
        self.depth = 2
        return lines
