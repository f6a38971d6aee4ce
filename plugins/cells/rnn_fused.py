"""Fused Elman RNN: one `Function` per time step, and one for the whole sequence (the fast path).

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act in tanh | relu | leaky_relu | elu

`plugins/cells/rnn.py` is the readable cell, built from Tensor ops; this file holds the same maths
with hand-written backward passes, so that a whole sequence is one graph node instead of ~10 per step.
What makes `RNNSequence` fast (the LSTM, GRU and peephole files follow the same plan):

  * x @ W_ih^T for all T steps is one big matmul before the loop; the loop only does h @ W_hh^T.
  * Arrays are time-major (T, N, ...) and contiguous, so step t is one contiguous (N, ...) block.
  * Buffers are allocated once; the elementwise work writes into them with `out=` / in place.
  * Backward stores each step's d(pre-activation) in a (T, N, H) stack and gets dW_hh, dW_ih, the
    biases and dx from a few big matmuls after the loop, not from T small ones.
  * Only what BPTT needs is kept: the inputs and the states (plus the candidates when masked).

The helpers at the top are shared by the other *_fused.py files.
"""
import numpy as np

from tinygrad_rnn import Function, array_module, fusion_available, register_cell, sigmoid_array  # noqa: F401

from . import rnn

LEAKY_SLOPE, ELU_ALPHA = 0.01, 1.0  # Tensor.leaky_relu's and Tensor.elu's defaults


# ---- helpers shared by the fused cells ----------------------------------------------------------------
def time_major(a, dtype):
    """(N, T, ...) → (T, N, ...) contiguous: each step's rows then sit together in memory."""
    return array_module(a).ascontiguousarray(a.swapaxes(0, 1), dtype=dtype)


def batch_first(a):
    """(T, N, H) → (N, T, H) contiguous, the layout users see."""
    return array_module(a).ascontiguousarray(a.swapaxes(0, 1))


def step_masks(mask, dtype):
    """(N, T) mask → (m, keep), each (T, N, 1) or None: new state = m * candidate + keep * old state."""
    if mask is None:
        return None, None
    m = time_major(mask[:, :, None], dtype)
    return m, 1 - m


def initial(state, shape, xp, dtype):
    """A copy of the initial state (zeros when None), in the compute dtype."""
    return xp.zeros(shape, dtype) if state is None else state.astype(dtype, copy=True)


def project(X, weight, bias, out):
    """out (T, N, G*H) = X (T, N, D) @ weight^T + bias: the input half of every step, in one matmul."""
    xp = array_module(X)
    T, N, D = X.shape
    flat = out.reshape(T * N, -1)  # a view: out may be (T, N, G*H) or (T, N, G, H)
    # with one input feature the product is an outer product, where np.matmul is ~5x slower than np.dot
    (xp.dot if D == 1 else xp.matmul)(X.reshape(T * N, D), weight.T, out=flat)
    if bias is not None:
        flat += bias
    return out


def weight_grads(dA, inputs):
    """dW = sum over t of dA_t^T @ input_t, as one (G*H, T*N) @ (T*N, K) product. dA is (T, N, ...)."""
    T, N = dA.shape[:2]
    return dA.reshape(T * N, -1).T @ inputs.reshape(T * N, -1)


def bias_grad(dA):
    T, N = dA.shape[:2]
    return dA.reshape(T * N, -1).sum(axis=0)


def numba_kernels(weight, mask):
    """kernels.py compiled, where its step kernels apply: the `fast` extra installed (and not switched off by
    TINYGRAD_RNN_FUSE=0), float32 NumPy weights, no padding mask. Else None, and the NumPy loop runs:
    float64 (the gradient checks), CuPy arrays and padded batches keep it."""
    if mask is not None or not isinstance(weight, np.ndarray) or weight.dtype != np.float32:
        return None
    if not fusion_available():
        return None
    from . import kernels  # imports numba: only here, on first use
    return kernels.compiled()


def cast(grad, like):
    """A gradient in its input's dtype (the loop may run in another), None where none is wanted."""
    return None if grad is None or like is None else grad.astype(like.dtype, copy=False)


# ---- activations, in place, with derivatives written from their outputs -------------------------------
def _tanh(a):
    array_module(a).tanh(a, out=a)


def _relu(a):
    array_module(a).maximum(a, 0, out=a)


def _leaky_relu(a):
    array_module(a).maximum(a, a * LEAKY_SLOPE, out=a)  # max(a, 0.01 a) is a for a > 0, 0.01 a below


def _elu(a):
    xp = array_module(a)
    negative = xp.expm1(xp.minimum(a, 0))  # alpha (e^a - 1) below 0, exactly 0 above
    xp.maximum(a, 0, out=a)
    a += ELU_ALPHA * negative


def _dtanh(y, out):  # tanh' = 1 - y^2
    xp = array_module(y)
    xp.multiply(y, y, out=out)
    xp.subtract(1, out, out=out)


def _drelu(y, out):
    out[...] = y > 0


def _dleaky_relu(y, out):
    _where(y > 0, 1.0, LEAKY_SLOPE, out)


def _delu(y, out):  # y > 0: 1; below: alpha e^a = y + alpha
    _where(y > 0, 1.0, y + ELU_ALPHA, out)


def _where(condition, a, b, out):
    out[...] = array_module(out).where(condition, a, b)


ACTIVATIONS = {"tanh": (_tanh, _dtanh), "relu": (_relu, _drelu),
               "leaky_relu": (_leaky_relu, _dleaky_relu), "elu": (_elu, _delu)}


def _activation(name):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        from tinygrad_rnn import ConfigError
        raise ConfigError(f"rnn: unknown nonlinearity {name!r}; valid: {', '.join(ACTIVATIONS)}") from None


# ---- one step ---------------------------------------------------------------------------------------------
class RNNStep(Function):
    """h_new = act(x W_ih^T + b_ih + h W_hh^T + b_hh), forward and backward of one step."""

    @staticmethod
    def forward(ctx, x, h, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
        act, ctx.derivative = _activation(nonlinearity)
        a = x @ weight_ih.T + h @ weight_hh.T
        for b in (bias_ih, bias_hh):
            if b is not None:
                a += b
        act(a)
        ctx.save_for_backward(x, h, weight_ih, weight_hh, a)
        return a

    @staticmethod
    def backward(ctx, grad):
        x, h, weight_ih, weight_hh, y = ctx.saved_tensors
        da = array_module(y).empty_like(y)
        ctx.derivative(y, da)
        da *= grad  # d(pre-activation)
        db = da.sum(axis=0)
        return da @ weight_ih, da @ weight_hh, da.T @ x, da.T @ h, db, db, None


# ---- the whole sequence ---------------------------------------------------------------------------------
class RNNSequence(Function):
    """RNNSequence.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, mask, nonlinearity)
    → (outputs (N, T, H), h_last (N, H)). Where mask[n, t] = 0 the state is kept and the output is 0.
    """

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, mask=None, nonlinearity="tanh"):
        xp, dtype = array_module(weight_hh), weight_hh.dtype
        (N, T, _), H = x.shape, weight_hh.shape[1]
        act, ctx.derivative = _activation(nonlinearity)
        X = time_major(x, dtype)
        m, keep = step_masks(mask, dtype)
        S = xp.empty((T + 1, N, H), dtype)  # states h_0 .. h_T
        S[0] = initial(h0, (N, H), xp, dtype)
        # Without a mask the candidate is the new state, so it is computed in place in S.
        Y = S[1:] if m is None else xp.empty((T, N, H), dtype)
        bias = _sum(bias_ih, bias_hh)
        project(X, weight_ih, bias, Y)
        W_hh_T = xp.ascontiguousarray(weight_hh.T)  # a contiguous right operand is the faster GEMM
        hw = xp.empty((N, H), dtype)
        for t in range(T):
            xp.matmul(S[t], W_hh_T, out=hw)
            Y[t] += hw
            act(Y[t])
            if m is not None:  # padding keeps the old state: m * new + (1 - m) * old
                xp.multiply(Y[t], m[t], out=S[t + 1])
                S[t + 1] += keep[t] * S[t]
        ctx.save_for_backward(X, S, Y, weight_ih, weight_hh, m, keep)
        ctx.dtypes = x, h0, weight_ih, weight_hh, bias_ih, bias_hh
        outputs = batch_first(Y if m is None else Y * m)
        return outputs.astype(x.dtype, copy=False), S[T].astype(x.dtype)

    @staticmethod
    def backward(ctx, grad_outputs, grad_h_last):
        X, S, Y, weight_ih, weight_hh, m, keep = ctx.saved_tensors
        xp, dtype = array_module(S), S.dtype
        T = Y.shape[0]
        G = grad_outputs.swapaxes(0, 1)  # a view, not a copy: step t is G[t]
        dA = xp.empty_like(Y)
        ctx.derivative(Y, dA)  # act'(pre-activation) for all steps at once; each step scales it below
        dh = grad_h_last.astype(dtype, copy=True)
        for t in range(T - 1, -1, -1):
            if m is None:
                dh += G[t]
                dA[t] *= dh
                xp.matmul(dA[t], weight_hh, out=dh)
            else:  # the kept old state passes (1 - m) dh straight back; the candidate gets m (dh + dout)
                passed = keep[t] * dh
                dh += G[t]
                dh *= m[t]
                dA[t] *= dh
                xp.matmul(dA[t], weight_hh, out=dh)
                dh += passed
        need = ctx.needs_input_grad
        x, h0, w_ih, w_hh, b_ih, b_hh = ctx.dtypes
        dx = batch_first((dA.reshape(-1, dA.shape[-1]) @ weight_ih).reshape(X.shape)) if need[0] else None
        dw_ih = weight_grads(dA, X) if need[2] else None
        dw_hh = weight_grads(dA, S[:-1]) if need[3] else None
        db = bias_grad(dA) if need[4] or need[5] else None
        return (cast(dx, x), cast(dh, h0), cast(dw_ih, w_ih), cast(dw_hh, w_hh), cast(db, b_ih), cast(db, b_hh),
                None, None)


def _sum(a, b):
    """a + b where either may be None (a layer without biases)."""
    return b if a is None else a if b is None else a + b


# ---- the registered cell: rnn.py's RNN (its equations, weights and docstring), with sequence() --------
@register_cell("rnn")
class RNN(rnn.RNN):
    def sequence(self, x, state, mask=None):
        """All T steps as one RNNSequence: what Recurrent runs by default; forward() stays the reference."""
        outputs, h = RNNSequence.apply(x, state[0], self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                       mask, self.nonlinearity)
        return outputs, (h,)
