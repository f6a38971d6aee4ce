"""Fused GRU, both variants of `plugins/cells/gru.py`: one `Function` per step, and one per sequence.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    "pytorch": n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      (torch.nn.GRU, cuDNN)
    "cho":     n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)       (Cho et al. 2014)
    h_t = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n)

The plan is lstm_fused.py's (read it first): gates as a (T, N, 3, H) array, sigmoid through a tanh
with the /2 folded into the weights, and in backward every chain-rule factor that does not depend on
the incoming gradient computed for all steps before the loop. For the "pytorch" variant that is all of
them: each gate's gradient is dh times a known factor, so a backward step is two scalings and a matmul.
"Cho" needs two matmuls per step both ways, because r acts before W_hn.
With the `fast` extra (numba), "pytorch" on float32 NumPy arrays without a padding mask runs each
step's elementwise work as one kernel of kernels.py, forward and backward (as the LSTM does).
"""
from tinygrad_rnn import ConfigError, Function, array_module, register_cell, sigmoid_array

from . import gru
from .rnn_fused import (_sum, batch_first, bias_grad, cast, initial, numba_kernels, project, step_masks, time_major,
                        weight_grads)

VARIANTS = ("pytorch", "cho")


def _check(variant):
    if variant not in VARIANTS:
        raise ConfigError(f"gru: unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")


def sigmoid_halves(H, xp, dtype):
    """(3H,) factors: 1/2 on the rows of r and z (sigmoid(a) = (1 + tanh(a/2)) / 2), 1 on n."""
    half = xp.full(3 * H, 0.5, dtype)
    half[2 * H:] = 1
    return half


# ---- one step ---------------------------------------------------------------------------------------------
class GRUStep(Function):
    """h_new = GRU(x, h); r and z come from one x-product and one h-product (n's share them for "pytorch")."""

    @staticmethod
    def forward(ctx, x, h, weight_ih, weight_hh, bias_ih, bias_hh, variant="pytorch"):
        _check(variant)
        xp, H = array_module(x), h.shape[1]
        b_ih = 0 if bias_ih is None else bias_ih
        b_hh = xp.zeros(3 * H, h.dtype) if bias_hh is None else bias_hh
        gi = x @ weight_ih.T + b_ih
        if variant == "pytorch":
            gh = h @ weight_hh.T + b_hh
            r = sigmoid_array(gi[:, :H] + gh[:, :H])
            z = sigmoid_array(gi[:, H:2 * H] + gh[:, H:2 * H])
            hn = gh[:, 2 * H:]             # W_hn h + b_hn, which r scales
            n = xp.tanh(gi[:, 2 * H:] + r * hn)
        else:
            ghrz = h @ weight_hh[:2 * H].T + b_hh[:2 * H]
            r = sigmoid_array(gi[:, :H] + ghrz[:, :H])
            z = sigmoid_array(gi[:, H:2 * H] + ghrz[:, H:])
            hn = r * h                     # what W_hn multiplies
            n = xp.tanh(gi[:, 2 * H:] + hn @ weight_hh[2 * H:].T + b_hh[2 * H:])
        ctx.variant = variant
        ctx.save_for_backward(x, h, weight_ih, weight_hh, r, z, n, hn)
        return n + z * (h - n)

    @staticmethod
    def backward(ctx, grad):
        x, h, weight_ih, weight_hh, r, z, n, hn = ctx.saved_tensors
        xp, H = array_module(x), h.shape[1]
        da_n = grad * (1 - z) * (1 - n * n)
        da_z = grad * (h - n) * z * (1 - z)
        dh = grad * z
        if ctx.variant == "pytorch":
            da_r = da_n * hn * r * (1 - r)
            dgh = xp.concatenate([da_r, da_z, da_n * r], axis=1)  # d(h W_hh^T + b_hh)
            dh = dh + dgh @ weight_hh
            dw_hh = dgh.T @ h
        else:
            d_rh = da_n @ weight_hh[2 * H:]
            da_r = d_rh * h * r * (1 - r)
            dgh = xp.concatenate([da_r, da_z, da_n], axis=1)
            dh = dh + d_rh * r + dgh[:, :2 * H] @ weight_hh[:2 * H]
            dw_hh = xp.concatenate([dgh[:, :2 * H].T @ h, da_n.T @ hn])
        dgi = xp.concatenate([da_r, da_z, da_n], axis=1)  # d(x W_ih^T + b_ih)
        return dgi @ weight_ih, dh, dgi.T @ x, dw_hh, dgi.sum(axis=0), dgh.sum(axis=0), None


# ---- the whole sequence ---------------------------------------------------------------------------------
class GRUSequence(Function):
    """GRUSequence.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, mask, variant)
    → (outputs (N, T, H), h_last). Where mask[n, t] = 0 the state is kept and the output is 0.
    """

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, mask=None, variant="pytorch"):
        _check(variant)
        xp, dtype = array_module(weight_hh), weight_hh.dtype
        (N, T, _), H = x.shape, weight_hh.shape[1]
        X = time_major(x, dtype)
        m, keep = step_masks(mask, dtype)
        half = sigmoid_halves(H, xp, dtype)
        b_ih = xp.zeros(3 * H, dtype) if bias_ih is None else bias_ih
        b_hh = xp.zeros(3 * H, dtype) if bias_hh is None else bias_hh
        # r and z take both biases before the loop; n takes b_hn there only for "cho" (for "pytorch" r scales it)
        bias = b_ih + b_hh
        if variant == "pytorch":
            bias[2 * H:] = b_ih[2 * H:]
        A = project(X, weight_ih * half[:, None], bias * half, xp.empty((T, N, 3, H), dtype))  # → r, z, n
        S = xp.empty((T + 1, N, H), dtype)  # h_0 .. h_T
        S[0] = initial(h0, (N, H), xp, dtype)
        Hc = S[1:] if m is None else xp.empty((T, N, H), dtype)
        # Per step, the recurrent term of n for backward: W_hn h + b_hn ("pytorch") or r * h ("cho").
        HN = xp.empty((T, N, H), dtype)
        if variant == "pytorch":
            W_hh_T = xp.ascontiguousarray((weight_hh * half[:, None]).T)
            b_hn = b_hh[2 * H:].astype(dtype)
            hw = xp.empty((N, 3 * H), dtype)
        else:
            W_rz_T = xp.ascontiguousarray((0.5 * weight_hh[:2 * H]).T)
            W_hn_T = xp.ascontiguousarray(weight_hh[2 * H:].T)
            hw, hwn = xp.empty((N, 2 * H), dtype), xp.empty((N, H), dtype)
        ctx.kernels = kernels = numba_kernels(weight_hh, mask) if variant == "pytorch" else None
        if kernels is not None:  # the same steps, the elementwise work of each one numba kernel (kernels.py)
            hw3 = hw.reshape(N, 3, H)
            for t in range(T):
                xp.dot(S[t], W_hh_T, out=hw)
                kernels.gru_forward(A[t], hw3, b_hn, S[t], HN[t], S[t + 1])
        else:
            tmp = xp.empty((N, H), dtype)
            for t in range(T):
                a, h = A[t], S[t]
                xp.matmul(h, W_hh_T if variant == "pytorch" else W_rz_T, out=hw)
                hw3 = hw.reshape(N, -1, H)
                rz = a[:, :2]
                rz += hw3[:, :2]
                xp.tanh(rz, out=rz)
                rz *= 0.5
                rz += 0.5
                r, z, n = a[:, 0], a[:, 1], a[:, 2]
                if variant == "pytorch":
                    xp.add(hw3[:, 2], b_hn, out=HN[t])
                    xp.multiply(r, HN[t], out=tmp)
                    n += tmp
                else:
                    xp.multiply(r, h, out=HN[t])
                    xp.matmul(HN[t], W_hn_T, out=hwn)
                    n += hwn
                xp.tanh(n, out=n)
                xp.subtract(h, n, out=tmp)  # h_t = n + z (h_{t-1} - n)
                tmp *= z
                xp.add(n, tmp, out=Hc[t])
                if m is not None:  # padding keeps the old state: m * new + (1 - m) * old
                    xp.multiply(Hc[t], m[t], out=S[t + 1])
                    S[t + 1] += keep[t] * S[t]
        ctx.variant = variant
        ctx.save_for_backward(X, A, S, HN, weight_ih, weight_hh, m, keep)
        ctx.inputs = x, h0, weight_ih, weight_hh, bias_ih, bias_hh
        outputs = batch_first(Hc if m is None else Hc * m)
        return outputs.astype(x.dtype, copy=False), S[T].astype(x.dtype)

    @staticmethod
    def backward(ctx, grad_outputs, grad_h_last):
        X, A, S, HN, weight_ih, weight_hh, m, keep = ctx.saved_tensors
        xp, dtype = array_module(S), S.dtype
        T, N, _, H = A.shape
        pytorch = ctx.variant == "pytorch"
        G = grad_outputs.swapaxes(0, 1)  # a view, not a copy: step t is G[t]
        if ctx.kernels is not None:
            dA, dA_n, dh = numba_backward(ctx.kernels.gru_backward, A, S, HN, grad_outputs, weight_hh,
                                          grad_h_last.astype(dtype, copy=True))
            dA2 = dA.reshape(T, N, 3 * H)
        else:
            r, z, n = A[:, :, 0], A[:, :, 1], A[:, :, 2]
            # dA (T, N, 3, H): per gate, the factor that the step's incoming gradient will multiply.
            dA = xp.subtract(1, A)                           # over all gates: contiguous passes are the fast ones
            dA *= A                                          # sigma' = s (1 - s) for r and z (n's is set next)
            xp.multiply(n, n, out=dA[:, :, 2])
            xp.subtract(1, dA[:, :, 2], out=dA[:, :, 2])
            tmp = xp.empty_like(HN)                          # one scratch (T, N, H) array for the products below
            xp.subtract(1, z, out=tmp)
            dA[:, :, 2] *= tmp                               # d a_n = dh (1 - z) tanh'
            xp.subtract(S[:-1], n, out=tmp)
            dA[:, :, 1] *= tmp                               # d a_z = dh (h_{t-1} - n) sigma'
            if pytorch:
                xp.multiply(HN, dA[:, :, 2], out=tmp)
                dA[:, :, 0] *= tmp                           # d a_r = d a_n (W_hn h + b_hn) sigma'
                dA_n = tmp                                   # x's n-gradient; dA's n slot becomes r * d a_n, for W_hn
                dA_n[...] = dA[:, :, 2]
                dA[:, :, 2] *= r
            else:
                dA[:, :, 0] *= S[:-1]                        # d a_r = d(r h) h sigma'
            dA2 = dA.reshape(T, N, 3 * H)
            dh = grad_h_last.astype(dtype, copy=True)
            through_z, d_rh = xp.empty((N, H), dtype), xp.empty((N, H), dtype)
            for t in range(T - 1, -1, -1):
                if m is not None:  # the kept old state passes (1 - m) of its gradient straight back
                    passed = keep[t] * dh
                    dh += G[t]
                    dh *= m[t]
                else:
                    dh += G[t]
                xp.multiply(dh, z[t], out=through_z)
                if pytorch:
                    dA[t] *= dh[:, None, :]
                    dA_n[t] *= dh
                    xp.matmul(dA2[t], weight_hh, out=dh)
                else:
                    dA[t, :, 1:] *= dh[:, None, :]
                    xp.matmul(dA[t, :, 2], weight_hh[2 * H:], out=d_rh)
                    dA[t, :, 0] *= d_rh
                    d_rh *= r[t]
                    through_z += d_rh
                    xp.matmul(dA2[t, :, :2 * H], weight_hh[:2 * H], out=dh)
                dh += through_z
                if m is not None:
                    dh += passed
        need = ctx.needs_input_grad
        x, h0, w_ih, w_hh, b_ih, b_hh = ctx.inputs
        dw_hh = db_hh = None
        if need[3]:
            if pytorch:
                dw_hh = weight_grads(dA2, S[:-1])
            else:  # W_hn multiplies r * h, not h
                dw_hh = xp.concatenate([weight_grads(dA[:, :, :2], S[:-1]), weight_grads(dA[:, :, 2], HN)])
        if need[5]:
            db_hh = bias_grad(dA2)
        if pytorch:  # from here on dA is the gradient of x W_ih^T + b_ih
            dA[:, :, 2] = dA_n
        dx = batch_first((dA2.reshape(T * N, 3 * H) @ weight_ih).reshape(X.shape)) if need[0] else None
        dw_ih = weight_grads(dA2, X) if need[2] else None
        db_ih = bias_grad(dA2) if need[4] else None
        return (cast(dx, x), cast(dh, h0), cast(dw_ih, w_ih), cast(dw_hh, w_hh), cast(db_ih, b_ih),
                cast(db_hh, b_hh), None, None)


def numba_backward(gru_backward, A, S, HN, grad_outputs, weight_hh, dh):
    """("pytorch" variant) dA as W_hh sees it, dA_n as x sees it, and dh for h0, by kernels.gru_backward and
    one matmul per step."""
    xp = array_module(A)
    T, N, _, H = A.shape
    grad_outputs = xp.ascontiguousarray(grad_outputs)  # (N, T, H); a no-op when it is already
    dA, dA_n, through_z = xp.empty_like(A), xp.empty((T, N, H), A.dtype), xp.zeros((N, H), A.dtype)
    dA2 = dA.reshape(T, N, 3 * H)
    for t in range(T - 1, -1, -1):
        gru_backward(A[t], S[t], HN[t], grad_outputs, t, dh, through_z, dA[t], dA_n[t])
        xp.dot(dA2[t], weight_hh, out=dh)
    dh += through_z
    return dA, dA_n, dh


# ---- the registered cell: gru.py's GRU (its equations, weights and docstring), with sequence() --------
@register_cell("gru")
class GRU(gru.GRU):
    def sequence(self, x, state, mask=None):
        """All T steps as one GRUSequence: what Recurrent runs by default; forward() stays the reference."""
        outputs, h = GRUSequence.apply(x, state[0], self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                       mask, self.variant)
        return outputs, (h,)
