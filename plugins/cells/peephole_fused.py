"""Fused peephole LSTM (Gers & Schmidhuber 2000): one `Function` per step, and one per sequence.

Same equations and gate order (i, f, g, o) as `plugins/cells/peephole.py`:

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi + w_ci * c_{t-1})
    f = sigmoid(W_if x + b_if + W_hf h + b_hf + w_cf * c_{t-1})
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    c_t = f * c_{t-1} + i * g
    o = sigmoid(W_io x + b_io + W_ho h + b_ho + w_co * c_t)
    h_t = o * tanh(c_t)

The plan is lstm_fused.py's (read it first), in PyTorch's gate order: o needs c_t, so it is computed
after the other three. Backward folds every peephole path into two per-step factors known before the
loop: dc_t gets dh * E (through tanh(c) and through w_co into o) and passes dc * K back to c_{t-1}
(through f, and through w_ci, w_cf into i and f). With the `fast` extra, float32 NumPy arrays without
a padding mask run each step's elementwise work as one kernel of kernels.py, as the LSTM does.
"""
from tinygrad_rnn import Function, array_module, register_cell, sigmoid_array

from . import peephole
from .lstm_fused import steps_backward
from .rnn_fused import (_sum, batch_first, bias_grad, cast, initial, numba_kernels, project, step_masks, time_major,
                        weight_grads)


def sigmoid_halves(H, xp, dtype):
    """(4H,) factors: 1/2 on the rows of the sigmoid gates i, f, o (sigmoid(a) = (1 + tanh(a/2)) / 2)."""
    half = xp.full(4 * H, 0.5, dtype)
    half[2 * H:3 * H] = 1
    return half


# ---- one step ---------------------------------------------------------------------------------------------
class PeepholeStep(Function):
    """(h_new, c_new) = peephole LSTM(x, (h, c)); the gates' matmuls are one x- and one h-product."""

    @staticmethod
    def forward(ctx, x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co):
        xp, H = array_module(x), h.shape[1]
        a = x @ weight_ih.T + h @ weight_hh.T
        for b in (bias_ih, bias_hh):
            if b is not None:
                a += b
        i = sigmoid_array(a[:, :H] + weight_ci * c)
        f = sigmoid_array(a[:, H:2 * H] + weight_cf * c)
        g = xp.tanh(a[:, 2 * H:3 * H])
        c_new = f * c + i * g
        o = sigmoid_array(a[:, 3 * H:] + weight_co * c_new)
        tanh_c = xp.tanh(c_new)
        ctx.save_for_backward(x, h, c, weight_ih, weight_hh, weight_ci, weight_cf, weight_co, i, f, g, o, c_new,
                              tanh_c)
        return o * tanh_c, c_new

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        x, h, c, weight_ih, weight_hh, w_ci, w_cf, w_co, i, f, g, o, c_new, tanh_c = ctx.saved_tensors
        da_o = grad_h * tanh_c * o * (1 - o)
        dc = grad_c + grad_h * o * (1 - tanh_c * tanh_c) + da_o * w_co
        da_i = dc * g * i * (1 - i)
        da_f = dc * c * f * (1 - f)
        da = array_module(x).concatenate([da_i, da_f, dc * i * (1 - g * g), da_o], axis=1)
        db = da.sum(axis=0)
        dc_prev = dc * f + da_i * w_ci + da_f * w_cf
        return (da @ weight_ih, da @ weight_hh, dc_prev, da.T @ x, da.T @ h, db, db,
                (da_i * c).sum(axis=0), (da_f * c).sum(axis=0), (da_o * c_new).sum(axis=0))


# ---- the whole sequence ---------------------------------------------------------------------------------
class PeepholeSequence(Function):
    """PeepholeSequence.apply(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf,
    weight_co, mask) → (outputs (N, T, H), h_last, c_last). Where mask[n, t] = 0 the state is kept and
    the output is 0.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co, mask=None):
        xp, dtype = array_module(weight_hh), weight_hh.dtype
        (N, T, _), H = x.shape, weight_hh.shape[1]
        X = time_major(x, dtype)
        m, keep = step_masks(mask, dtype)
        half = sigmoid_halves(H, xp, dtype)
        bias = _sum(bias_ih, bias_hh)
        A = project(X, weight_ih * half[:, None], None if bias is None else bias * half,
                    xp.empty((T, N, 4, H), dtype))  # becomes the gate values (i, f, g, o) in place
        W_hh_T = xp.ascontiguousarray((weight_hh * half[:, None]).T)
        w_if = 0.5 * xp.stack([weight_ci, weight_cf]).astype(dtype)  # (2, H), halved like their gates
        w_o = 0.5 * weight_co.astype(dtype)
        S, C = xp.empty((T + 1, N, H), dtype), xp.empty((T + 1, N, H), dtype)  # h_0..h_T and c_0..c_T
        S[0], C[0] = initial(h0, (N, H), xp, dtype), initial(c0, (N, H), xp, dtype)
        Hc, Cc = (S[1:], C[1:]) if m is None else (xp.empty((T, N, H), dtype), xp.empty((T, N, H), dtype))
        TC = xp.empty((T, N, H), dtype)  # tanh(c_t), kept for backward
        hw, peep, tmp = xp.empty((N, 4 * H), dtype), xp.empty((N, 2, H), dtype), xp.empty((N, H), dtype)
        ctx.kernels = kernels = numba_kernels(weight_hh, mask)
        if kernels is not None:  # the same steps, the elementwise work of each one numba kernel (kernels.py)
            hw4 = hw.reshape(N, 4, H)
            for t in range(T):
                xp.dot(S[t], W_hh_T, out=hw)
                kernels.peephole_forward(A[t], hw4, w_if, w_o, C[t], C[t + 1], TC[t], S[t + 1])
        else:
            for t in range(T):
                a = A[t]
                xp.matmul(S[t], W_hh_T, out=hw)
                a += hw.reshape(N, 4, H)
                xp.multiply(C[t][:, None, :], w_if, out=peep)  # i and f look at c_{t-1}
                a[:, :2] += peep
                xp.tanh(a[:, :3], out=a[:, :3])
                a[:, :2] *= 0.5
                a[:, :2] += 0.5
                i, f, g, o = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
                xp.multiply(f, C[t], out=Cc[t])
                xp.multiply(i, g, out=tmp)
                Cc[t] += tmp
                xp.multiply(Cc[t], w_o, out=tmp)  # o looks at c_t
                o += tmp
                xp.tanh(o, out=o)
                o *= 0.5
                o += 0.5
                xp.tanh(Cc[t], out=TC[t])
                xp.multiply(o, TC[t], out=Hc[t])
                if m is not None:  # padding keeps the old state: m * new + (1 - m) * old
                    xp.multiply(Hc[t], m[t], out=S[t + 1])
                    S[t + 1] += keep[t] * S[t]
                    xp.multiply(Cc[t], m[t], out=C[t + 1])
                    C[t + 1] += keep[t] * C[t]
        ctx.save_for_backward(X, A, S, C, Cc, TC, weight_ih, weight_hh, weight_ci, weight_cf, weight_co, m, keep)
        ctx.inputs = x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co
        outputs = batch_first(Hc if m is None else Hc * m)
        return outputs.astype(x.dtype, copy=False), S[T].astype(x.dtype), C[T].astype(x.dtype)

    @staticmethod
    def backward(ctx, grad_outputs, grad_h_last, grad_c_last):
        X, A, S, C, Cc, TC, weight_ih, weight_hh, w_ci, w_cf, w_co, m, keep = ctx.saved_tensors
        xp, dtype = array_module(S), S.dtype
        T, N, _, H = A.shape
        G = grad_outputs.swapaxes(0, 1)  # a view, not a copy: step t is G[t]
        if ctx.kernels is not None:
            dA, dh, dc = numba_backward(ctx.kernels.peephole_backward, A, C, TC, grad_outputs, w_ci, w_cf, w_co,
                                        weight_hh, grad_h_last.astype(dtype, copy=True),
                                        grad_c_last.astype(dtype, copy=True))
            dA2 = dA.reshape(T, N, 4 * H)
        else:
            i, f, g, o = A[:, :, 0], A[:, :, 1], A[:, :, 2], A[:, :, 3]
            # dA = d(pre-activations), (T, N, 4, H). First the factors that need no incoming gradient:
            dA = xp.empty_like(A)
            sig = A[:, :, [0, 1, 3]]
            dA[:, :, [0, 1, 3]] = sig * (1 - sig)    # sigma' for i, f, o
            xp.multiply(g, g, out=dA[:, :, 2])
            xp.subtract(1, dA[:, :, 2], out=dA[:, :, 2])  # tanh'
            dA[:, :, 0] *= g                         # di = dc * g
            dA[:, :, 1] *= C[:-1]                    # df = dc * c_{t-1}
            dA[:, :, 2] *= i                         # dg = dc * i
            dA[:, :, 3] *= TC                        # do = dh * tanh(c)
            E = 1 - TC * TC
            E *= o
            E += dA[:, :, 3] * w_co                  # dc_t += dh * E: through tanh(c_t), and through o's peephole
            K = f + dA[:, :, 0] * w_ci + dA[:, :, 1] * w_cf  # dc_{t-1} = dc_t * K: through f, i's and f's peepholes
            dh = grad_h_last.astype(dtype, copy=True)
            dc = grad_c_last.astype(dtype, copy=True)
            dA = steps_backward(dA, E, K, G, weight_hh, dh, dc, m, keep, 3, slice(0, 3))
            dA2 = dA.reshape(T, N, 4 * H)
        need = ctx.needs_input_grad
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, wci, wcf, wco = ctx.inputs
        dx = batch_first((dA2.reshape(T * N, 4 * H) @ weight_ih).reshape(X.shape)) if need[0] else None
        dw_ih = weight_grads(dA2, X) if need[3] else None
        dw_hh = weight_grads(dA2, S[:-1]) if need[4] else None
        db = bias_grad(dA2) if need[5] or need[6] else None
        dw_ci = (dA[:, :, 0] * C[:-1]).sum(axis=(0, 1)) if need[7] else None
        dw_cf = (dA[:, :, 1] * C[:-1]).sum(axis=(0, 1)) if need[8] else None
        dw_co = (dA[:, :, 3] * Cc).sum(axis=(0, 1)) if need[9] else None
        return (cast(dx, x), cast(dh, h0), cast(dc, c0), cast(dw_ih, w_ih), cast(dw_hh, w_hh), cast(db, b_ih),
                cast(db, b_hh), cast(dw_ci, wci), cast(dw_cf, wcf), cast(dw_co, wco), None)


def numba_backward(peephole_backward, A, C, TC, grad_outputs, w_ci, w_cf, w_co, weight_hh, dh, dc):
    """dA (T, N, 4, H) and the initial state's dh, dc, by kernels.peephole_backward and one matmul per step."""
    xp = array_module(A)
    grad_outputs = xp.ascontiguousarray(grad_outputs)  # (N, T, H); a no-op when it is already
    w_ci, w_cf, w_co = (xp.ascontiguousarray(w, dtype=A.dtype) for w in (w_ci, w_cf, w_co))
    dA = xp.empty_like(A)
    dA2 = dA.reshape(A.shape[0], A.shape[1], -1)
    for t in range(A.shape[0] - 1, -1, -1):
        peephole_backward(A[t], C[t], TC[t], grad_outputs, t, w_ci, w_cf, w_co, dh, dc, dA[t])
        xp.dot(dA2[t], weight_hh, out=dh)
    return dA, dh, dc


# ---- the registered cell: peephole.py's PeepholeLSTM (its equations, weights and docstring), with sequence() --------
@register_cell("peephole")
class PeepholeLSTM(peephole.PeepholeLSTM):
    def sequence(self, x, state, mask=None):
        """All T steps as one PeepholeSequence: what Recurrent runs by default; forward() stays the reference."""
        h0, c0 = state
        outputs, h, c = PeepholeSequence.apply(x, h0, c0, self.weight_ih, self.weight_hh, self.bias_ih,
                                               self.bias_hh, self.weight_ci, self.weight_cf, self.weight_co, mask)
        return outputs, (h, c)
