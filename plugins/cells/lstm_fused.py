"""Fused LSTM: one `Function` per time step, and one for the whole sequence (the fast path).

Same equations and gate order (i, f, g, o) as `plugins/cells/lstm.py` and torch.nn.LSTM:

    i, f, o = sigmoid(W_i* x + b_i* + W_h* h + b_h*),   g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

How `LSTMSequence` is fast (see rnn_fused.py for the plan shared by all fused cells):

  * Inside, the gates are stored in the order (o, i, f, g) as a (T, N, 4, H) array: the three sigmoid
    gates are then one slice, and so are the three gates whose gradient is scaled by dc (i, f, g).
  * sigmoid(a) = (1 + tanh(a / 2)) / 2; the /2 is folded into the weights once, so one tanh call
    covers all four gates of a step.
  * Backward: every factor of the chain rule that does not depend on the incoming gradient
    (sigma', tanh', the other gate's value) is computed for all steps at once before the loop; the
    loop then only scales by dh and dc and does one matmul per step.
  * With the `fast` extra (numba), on float32 NumPy arrays without a padding mask, the elementwise work
    of a step is one compiled kernel (kernels.py), forward and backward: a step is then one matmul
    and one kernel call instead of a dozen NumPy calls. TINYGRAD_RNN_FUSE=0 switches it off, as it does
    the compiled tape's kernels; the two loops agree to float32 rounding.
"""
from tinygrad_rnn import Function, array_module, register_cell, sigmoid_array

from . import lstm
from .rnn_fused import (_sum, batch_first, bias_grad, cast, initial, numba_kernels, project, step_masks, time_major,
                        weight_grads)

INTERNAL = [3, 0, 1, 2]  # internal gate k is PyTorch's gate INTERNAL[k]: (o, i, f, g) from (i, f, g, o)
BACK = [1, 2, 3, 0]      # and back again


def reorder(w, H, order):
    """Rows of a (4H, ...) weight, bias or gradient with its four gate blocks put in `order`."""
    return w.reshape((4, H) + w.shape[1:])[order].reshape(w.shape)


def sigmoid_halves(H, xp, dtype):
    """(4H,) factors: 1/2 on the rows of the internal sigmoid gates (o, i, f), 1 on g."""
    half = xp.full(4 * H, 0.5, dtype)
    half[3 * H:] = 1
    return half


# ---- one step ---------------------------------------------------------------------------------------------
class LSTMStep(Function):
    """(h_new, c_new) = LSTM(x, (h, c)); the four gates come from one x-product and one h-product."""

    @staticmethod
    def forward(ctx, x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        H = h.shape[1]
        a = x @ weight_ih.T + h @ weight_hh.T
        for b in (bias_ih, bias_hh):
            if b is not None:
                a += b
        i, f, o = (sigmoid_array(a[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
        g = array_module(a).tanh(a[:, 2 * H:3 * H])
        c_new = f * c + i * g
        tanh_c = array_module(c).tanh(c_new)
        ctx.save_for_backward(x, h, c, weight_ih, weight_hh, i, f, g, o, tanh_c)
        return o * tanh_c, c_new

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        x, h, c, weight_ih, weight_hh, i, f, g, o, tanh_c = ctx.saved_tensors
        dc = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
        da = array_module(x).concatenate([dc * g * i * (1 - i),            # input gate
                                          dc * c * f * (1 - f),            # forget gate
                                          dc * i * (1 - g * g),            # candidate
                                          grad_h * tanh_c * o * (1 - o)],  # output gate
                                         axis=1)
        db = da.sum(axis=0)
        return da @ weight_ih, da @ weight_hh, dc * f, da.T @ x, da.T @ h, db, db


# ---- the whole sequence ---------------------------------------------------------------------------------
class LSTMSequence(Function):
    """LSTMSequence.apply(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, mask)
    → (outputs (N, T, H), h_last, c_last). Where mask[n, t] = 0 the state is kept and the output is 0.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, mask=None):
        xp, dtype = array_module(weight_hh), weight_hh.dtype
        (N, T, _), H = x.shape, weight_hh.shape[1]
        X = time_major(x, dtype)
        m, keep = step_masks(mask, dtype)
        half = sigmoid_halves(H, xp, dtype)
        W_ih = reorder(weight_ih, H, INTERNAL) * half[:, None]
        W_hh_T = xp.ascontiguousarray((reorder(weight_hh, H, INTERNAL) * half[:, None]).T)
        bias = _sum(bias_ih, bias_hh)
        bias = None if bias is None else reorder(bias, H, INTERNAL) * half
        A = project(X, W_ih, bias, xp.empty((T, N, 4, H), dtype))  # becomes the gate values in place
        S, C = xp.empty((T + 1, N, H), dtype), xp.empty((T + 1, N, H), dtype)  # h_0..h_T and c_0..c_T
        S[0], C[0] = initial(h0, (N, H), xp, dtype), initial(c0, (N, H), xp, dtype)
        # Without a mask the candidates are the new states, so they are written straight into S and C.
        Hc, Cc = (S[1:], C[1:]) if m is None else (xp.empty((T, N, H), dtype), xp.empty((T, N, H), dtype))
        ctx.kernels = kernels = numba_kernels(weight_hh, mask)
        if kernels is not None:
            numba_forward(kernels.lstm_forward, A, S, C, W_hh_T)
        else:
            numpy_forward(A, S, C, Hc, Cc, W_hh_T, m, keep)
        ctx.save_for_backward(X, A, S, C, Cc, weight_ih, weight_hh, m, keep)  # tanh(c) is recomputed
        ctx.inputs = x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh
        outputs = batch_first(Hc if m is None else Hc * m)
        return outputs.astype(x.dtype, copy=False), S[T].astype(x.dtype), C[T].astype(x.dtype)

    @staticmethod
    def backward(ctx, grad_outputs, grad_h_last, grad_c_last):
        X, A, S, C, Cc, weight_ih, weight_hh, m, keep = ctx.saved_tensors
        dtype = S.dtype
        T, N, _, H = A.shape
        G = grad_outputs.swapaxes(0, 1)  # a view, not a copy: step t is G[t]
        W_hh = reorder(weight_hh, H, INTERNAL)
        dh = grad_h_last.astype(dtype, copy=True)
        dc = grad_c_last.astype(dtype, copy=True)
        if ctx.kernels is not None:
            dA = numba_backward(ctx.kernels.lstm_backward, A, C, grad_outputs, W_hh, dh, dc)
        else:
            dA = numpy_backward(A, C, Cc, G, W_hh, dh, dc, m, keep)
        dA2 = dA.reshape(T, N, 4 * H)
        need = ctx.needs_input_grad
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = ctx.inputs
        W_ih = reorder(weight_ih, H, INTERNAL)
        dx = batch_first((dA2.reshape(T * N, 4 * H) @ W_ih).reshape(X.shape)) if need[0] else None
        dw_ih = reorder(weight_grads(dA2, X), H, BACK) if need[3] else None
        dw_hh = reorder(weight_grads(dA2, S[:-1]), H, BACK) if need[4] else None
        db = reorder(bias_grad(dA2), H, BACK) if need[5] or need[6] else None
        return (cast(dx, x), cast(dh, h0), cast(dc, c0), cast(dw_ih, w_ih), cast(dw_hh, w_hh),
                cast(db, b_ih), cast(db, b_hh), None)


def numba_forward(forward_step, A, S, C, W_hh_T):
    """The steps by kernels.lstm_forward: A becomes the gate values, S and C the states (no mask)."""
    xp = array_module(A)
    T, N, _, H = A.shape
    hw = xp.empty((N, 4 * H), A.dtype)
    hw4 = hw.reshape(N, 4, H)
    for t in range(T):
        xp.dot(S[t], W_hh_T, out=hw)
        forward_step(A[t], hw4, C[t], C[t + 1], S[t + 1])


def numpy_forward(A, S, C, Hc, Cc, W_hh_T, m, keep):
    """The steps with NumPy calls: A becomes the gate values, Hc and Cc the candidates, S and C the states."""
    xp, dtype = array_module(A), A.dtype
    T, N, _, H = A.shape
    hw, ig, tc = xp.empty((N, 4 * H), dtype), xp.empty((N, H), dtype), xp.empty((N, H), dtype)
    scale = xp.asarray([[0.5], [0.5], [0.5], [1.0]], dtype)
    shift = xp.asarray([[0.5], [0.5], [0.5], [0.0]], dtype)
    for t in range(T):
        a = A[t]
        xp.dot(S[t], W_hh_T, out=hw)  # np.dot: less per-call overhead than np.matmul for 2-D
        a += hw.reshape(N, 4, H)
        xp.tanh(a, out=a)
        a *= scale                      # (1 + tanh(a/2)) / 2 on o, i, f; g stays tanh(a)
        a += shift
        o, i, f, g = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        xp.multiply(f, C[t], out=Cc[t])
        xp.multiply(i, g, out=ig)
        Cc[t] += ig
        xp.tanh(Cc[t], out=tc)
        xp.multiply(o, tc, out=Hc[t])
        if m is not None:  # padding keeps the old state: m * new + (1 - m) * old
            xp.multiply(Hc[t], m[t], out=S[t + 1])
            S[t + 1] += keep[t] * S[t]
            xp.multiply(Cc[t], m[t], out=C[t + 1])
            C[t + 1] += keep[t] * C[t]


def numba_backward(backward_step, A, C, grad_outputs, W_hh, dh, dc):
    """dA (T, N, 4, H) by kernels.lstm_backward and one matmul per step; dh, dc end as the initial state's."""
    xp = array_module(A)
    grad_outputs = xp.ascontiguousarray(grad_outputs)  # (N, T, H); a no-op when it is already
    dA = xp.empty_like(A)
    dA2 = dA.reshape(A.shape[0], A.shape[1], -1)
    for t in range(A.shape[0] - 1, -1, -1):
        backward_step(A[t], C[t], C[t + 1], grad_outputs, t, dh, dc, dA[t])
        xp.dot(dA2[t], W_hh, out=dh)
    return dA


def numpy_backward(A, C, Cc, G, W_hh, dh, dc, m, keep):
    """dA (T, N, 4, H), the NumPy way; dh, dc end as the initial state's gradients."""
    xp = array_module(A)
    o, i, f, g = A[:, :, 0], A[:, :, 1], A[:, :, 2], A[:, :, 3]
    # dA = d(pre-activations), (T, N, 4, H). First the factors that need no incoming gradient:
    dA = xp.subtract(1, A)                   # over all four gates: contiguous passes are the fast ones
    dA *= A                                  # sigma' = s (1 - s) for o, i, f (g's is set next)
    xp.multiply(g, g, out=dA[:, :, 3])
    xp.subtract(1, dA[:, :, 3], out=dA[:, :, 3])  # tanh' = 1 - g^2
    E = xp.tanh(Cc)                          # tanh(c_t): recomputing it is cheaper than keeping it
    dA[:, :, 0] *= E                         # do  = dh * tanh(c)
    dA[:, :, 1] *= g                         # di  = dc * g
    dA[:, :, 2] *= C[:-1]                    # df  = dc * c_{t-1}
    dA[:, :, 3] *= i                         # dg  = dc * i
    E *= E
    xp.subtract(1, E, out=E)
    E *= o                                   # dc += dh * o * tanh'(c)
    return steps_backward(dA, E, f, G, W_hh, dh, dc, m, keep, 0, slice(1, None))


def steps_backward(dA, E, F, G, W_hh, dh, dc, m, keep, o_gate, c_gates):
    """The loop over t = T .. 1 of the LSTM's backward and the peephole LSTM's: dA (T, N, 4, H) comes in
    holding each gate's factor that needs no incoming gradient and leaves as d(pre-activations); dh, dc
    end as the initial state's gradients. Gate `o_gate` is scaled by dh, the gates `c_gates` by dc, and
    dc_t = dc + dh * E_t reaches step t-1 as dc_t * F_t (F: f for the LSTM, f plus the peepholes' terms)."""
    xp = array_module(dA)
    T, N, _, H = dA.shape
    dA2 = dA.reshape(T, N, 4 * H)            # the same memory, as the matmul sees it
    tmp = xp.empty((N, H), dA.dtype)
    for t in range(T - 1, -1, -1):
        if m is not None:  # the kept old state passes (1 - m) of its gradient straight back
            passed_h, passed_c = keep[t] * dh, keep[t] * dc
            dh += G[t]
            dh *= m[t]
            dc *= m[t]
        else:
            dh += G[t]
        dA[t, :, o_gate] *= dh
        xp.multiply(dh, E[t], out=tmp)
        dc += tmp
        dA[t, :, c_gates] *= dc[:, None, :]
        dc *= F[t]
        xp.dot(dA2[t], W_hh, out=dh)  # np.dot: less per-call overhead than np.matmul for 2-D
        if m is not None:
            dh += passed_h
            dc += passed_c
    return dA


# ---- the registered cell: lstm.py's LSTM (its equations, weights and docstring), with sequence() --------
@register_cell("lstm")
class LSTM(lstm.LSTM):
    def sequence(self, x, state, mask=None):
        """All T steps as one LSTMSequence: what Recurrent runs by default; forward() stays the reference."""
        h0, c0 = state
        outputs, h, c = LSTMSequence.apply(x, h0, c0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                           mask)
        return outputs, (h, c)
