"""The elementwise work of one step of the fused LSTM, GRU and peephole LSTM as numba kernels: the `fast` extra's path.

A step of lstm_fused.py's NumPy loop is one matrix product and about ten NumPy calls on (N, H) arrays
(add, tanh, scale, shift, three products, a sum, tanh, a product); on small batches each call costs
more in dispatch than in arithmetic. Here the calls after the product are loops over the elements,
forward and backward, so a step is `np.dot` + one kernel call. The arithmetic is the NumPy loops', in
the same order (so the two agree to float32 rounding, checked by tests/test_cell_kernels.py), except
tanh: numba's np.tanh is one libm call per element, far slower than NumPy's vectorised loop, so
`tanh` below is the rational approximation of Eigen and XLA (`generic_fast_tanh_float`, the one the
tape's kernels use, tinygrad_rnn/fusion.py), pure arithmetic that vectorises: within 4 float32
roundings of tanh near 0 and 3.3e-7 (3 roundings of 1) near saturation, where NumPy's is within 1.4.
So the kernels are for float32 only: float64 (the gradient checks) keeps the NumPy loops.

numba is imported by `compiled()` at the first use, not when the plugin is discovered: importing it
costs about half a second, which a run without these cells should not pay. The functions below are
plain Python until then (readable, and runnable as a slow reference).

Gate layouts are the fused files': a step's gates are (N, G, H), the pre-activations of the sigmoid
gates already halved (sigmoid(x) = 1/2 + tanh(x/2)/2, the x/2 folded into a copy of the weights); after the
forward step they hold the gate values, which the backward step reads. Each loop computes one or two
quantities: LLVM vectorises a loop that touches a few arrays (16 floats at a time) and gives up on one
that reads and writes seven (measured: 10x slower).
"""
import sys

import numpy as np

F32 = np.float32
CLAMP = F32(7.90531110763549805)


def tanh(x):
    """tanh(x) in float32, to a few roundings: a degree-13/6 odd rational, its input clamped to +-7.905...,
    where it reaches 1 in float32 (Eigen's and XLA's clamp, as fusion.py's: the older 9 let it return
    1 + 2 ulp, and so a sigmoid gate below 0 and 1 - g^2 below 0)."""
    x = CLAMP if x > CLAMP else (-CLAMP if x < -CLAMP else x)
    x2 = x * x
    p = x2 * F32(-2.76076847742355e-16) + F32(2.00018790482477e-13)
    p = p * x2 + F32(-8.60467152213735e-11)
    p = p * x2 + F32(5.12229709037114e-08)
    p = p * x2 + F32(1.48572235717979e-05)
    p = p * x2 + F32(6.37261928875436e-04)
    p = p * x2 + F32(4.89352455891786e-03)
    q = x2 * F32(1.19825839466702e-06) + F32(1.18534705686654e-04)
    q = q * x2 + F32(2.26843463243900e-03)
    q = q * x2 + F32(4.89352518554385e-03)
    return x * p / q


def lstm_forward(a, hw, c_prev, c_new, h_new):
    """LSTM, gates (o, i, f, g). a (N, 4, H): x-part of the pre-activations in, gate values out; hw (N, 4, H)
    the h-part; writes c_new = f * c_prev + i * g and h_new = o * tanh(c_new)."""
    half = F32(0.5)
    for n in range(a.shape[0]):
        for k in range(3):  # o, i, f: sigmoid(x) = 1/2 + tanh(x/2)/2, the /2 already in the weights
            for j in range(a.shape[2]):
                a[n, k, j] = tanh(a[n, k, j] + hw[n, k, j]) * half + half
        for j in range(a.shape[2]):  # g
            a[n, 3, j] = tanh(a[n, 3, j] + hw[n, 3, j])
        for j in range(a.shape[2]):
            c = a[n, 2, j] * c_prev[n, j] + a[n, 1, j] * a[n, 3, j]  # c = f * c_prev + i * g
            c_new[n, j] = c
            h_new[n, j] = a[n, 0, j] * tanh(c)                       # h = o * tanh(c)


def lstm_backward(a, c_prev, c, grad_outputs, t, dh, dc, da):
    """Step t back, LSTM: a (N, 4, H) the gate values (o, i, f, g), c_prev and c the cell before and after,
    grad_outputs (N, T, H) the outputs' gradient (read at t: passing the whole array keeps its last axis
    contiguous, which vectorising needs), dh and dc the state gradients from the step after (dc becomes
    the one for c_prev); writes da (N, 4, H), d(pre-activations), whose product with W_hh is the next dh."""
    one = F32(1)
    for n in range(a.shape[0]):
        for j in range(a.shape[2]):
            h_grad = dh[n, j] + grad_outputs[n, t, j]
            o, tc = a[n, 0, j], tanh(c[n, j])
            da[n, 0, j] = (one - o) * o * tc * h_grad                   # do = dh * tanh(c) * sigma'(o)
            dc[n, j] = dc[n, j] + h_grad * ((one - tc * tc) * o)        # dc += dh * o * tanh'(c)
        for j in range(a.shape[2]):
            da[n, 1, j] = (one - a[n, 1, j]) * a[n, 1, j] * a[n, 3, j] * dc[n, j]    # di = dc * g * sigma'(i)
        for j in range(a.shape[2]):
            da[n, 2, j] = (one - a[n, 2, j]) * a[n, 2, j] * c_prev[n, j] * dc[n, j]  # df = dc * c_prev * sigma'(f)
        for j in range(a.shape[2]):
            da[n, 3, j] = (one - a[n, 3, j] * a[n, 3, j]) * a[n, 1, j] * dc[n, j]    # dg = dc * i * tanh'(g)
        for j in range(a.shape[2]):
            dc[n, j] = dc[n, j] * a[n, 2, j]                            # dc_prev = dc * f


def gru_forward(a, hw, b_hn, h, hn, h_new):
    """GRU, variant "pytorch", gates (r, z, n). a (N, 3, H): x-part of the pre-activations in (n's with b_in
    only), gate values out; hw (N, 3, H) the h-part; writes hn = W_hn h + b_hn (kept for backward) and
    h_new = n + z * (h - n)."""
    half = F32(0.5)
    for m in range(a.shape[0]):
        for k in range(2):  # r, z
            for j in range(a.shape[2]):
                a[m, k, j] = tanh(a[m, k, j] + hw[m, k, j]) * half + half
        for j in range(a.shape[2]):
            hn[m, j] = hw[m, 2, j] + b_hn[j]
            a[m, 2, j] = tanh(a[m, 2, j] + a[m, 0, j] * hn[m, j])          # n = tanh(x_n + r * hn)
        for j in range(a.shape[2]):
            h_new[m, j] = a[m, 2, j] + (h[m, j] - a[m, 2, j]) * a[m, 1, j]  # h = n + z (h - n)


def gru_backward(a, h, hn, grad_outputs, t, dh, through_z, da, da_n):
    """Step t back, GRU "pytorch": a (N, 3, H) the gate values (r, z, n), h the state before, hn its W_hn h + b_hn,
    dh the matmul part of the state's gradient from the step after and through_z its direct part (z dh,
    zero at the last step); writes da (N, 3, H), whose product with W_hh is the next dh (its n slot
    r * d a_n, as W_hn sees it), da_n (N, H) the n gradient x sees, and the new through_z."""
    one = F32(1)
    for m in range(a.shape[0]):
        for j in range(a.shape[2]):
            dh[m, j] = dh[m, j] + through_z[m, j] + grad_outputs[m, t, j]  # the whole dh_t
            through_z[m, j] = dh[m, j] * a[m, 1, j]                          # h_t = ... + z h_{t-1}
        for j in range(a.shape[2]):  # d a_r = d a_n hn sigma'(r), with d a_n = dh (1 - z) tanh'(n)
            r, z, n = a[m, 0, j], a[m, 1, j], a[m, 2, j]
            da[m, 0, j] = (one - r) * r * (hn[m, j] * ((one - n * n) * (one - z))) * dh[m, j]
        for j in range(a.shape[2]):
            da_n[m, j] = (one - a[m, 2, j] * a[m, 2, j]) * (one - a[m, 1, j]) * dh[m, j]
        for j in range(a.shape[2]):
            da[m, 2, j] = (one - a[m, 2, j] * a[m, 2, j]) * (one - a[m, 1, j]) * a[m, 0, j] * dh[m, j]
        for j in range(a.shape[2]):
            da[m, 1, j] = (one - a[m, 1, j]) * a[m, 1, j] * (h[m, j] - a[m, 2, j]) * dh[m, j]  # d a_z


def peephole_forward(a, hw, w_if, w_o, c_prev, c_new, tanh_c, h_new):
    """Peephole LSTM, gates (i, f, g, o). a (N, 4, H): x-part of the pre-activations in, gate values out;
    hw (N, 4, H) the h-part; w_if (2, H) and w_o (H,) the peephole weights, halved like their gates;
    writes c_new, tanh_c = tanh(c_new) (kept for backward) and h_new."""
    half = F32(0.5)
    for n in range(a.shape[0]):
        for k in range(2):  # i, f look at c_prev
            for j in range(a.shape[2]):
                a[n, k, j] = tanh(a[n, k, j] + hw[n, k, j] + c_prev[n, j] * w_if[k, j]) * half + half
        for j in range(a.shape[2]):  # g
            a[n, 2, j] = tanh(a[n, 2, j] + hw[n, 2, j])
        for j in range(a.shape[2]):
            c_new[n, j] = a[n, 1, j] * c_prev[n, j] + a[n, 0, j] * a[n, 2, j]  # c = f * c_prev + i * g
        for j in range(a.shape[2]):  # o looks at c_t
            a[n, 3, j] = tanh(a[n, 3, j] + hw[n, 3, j] + c_new[n, j] * w_o[j]) * half + half
            tanh_c[n, j] = tanh(c_new[n, j])
            h_new[n, j] = a[n, 3, j] * tanh_c[n, j]


def peephole_backward(a, c_prev, tanh_c, grad_outputs, t, w_ci, w_cf, w_co, dh, dc, da):
    """Step t back, peephole LSTM: as lstm_backward, with the peepholes' paths: dc_t also gets dh through
    o's peephole (w_co), and passes back to c_prev through i's and f's (w_ci, w_cf) besides f."""
    one = F32(1)
    for n in range(a.shape[0]):
        for j in range(a.shape[2]):
            h_grad = dh[n, j] + grad_outputs[n, t, j]
            o, tc = a[n, 3, j], tanh_c[n, j]
            do = o * (one - o) * tc                                        # d o / d(its pre-activation), per dh
            da[n, 3, j] = do * h_grad
            dc[n, j] = dc[n, j] + h_grad * ((one - tc * tc) * o + do * w_co[j])  # through tanh(c) and o's peephole
        for j in range(a.shape[2]):
            da[n, 0, j] = a[n, 0, j] * (one - a[n, 0, j]) * a[n, 2, j] * dc[n, j]     # di = dc * g * sigma'(i)
        for j in range(a.shape[2]):
            da[n, 1, j] = a[n, 1, j] * (one - a[n, 1, j]) * c_prev[n, j] * dc[n, j]  # df = dc * c_prev * sigma'(f)
        for j in range(a.shape[2]):
            da[n, 2, j] = (one - a[n, 2, j] * a[n, 2, j]) * a[n, 0, j] * dc[n, j]     # dg = dc * i * tanh'(g)
        for j in range(a.shape[2]):  # dc_prev = dc * (f + the paths through i's and f's peepholes)
            i, f, g = a[n, 0, j], a[n, 1, j], a[n, 2, j]
            dc[n, j] = dc[n, j] * (f + i * (one - i) * g * w_ci[j] + f * (one - f) * c_prev[n, j] * w_cf[j])


_compiled = False


def compiled():
    """This module, its functions compiled by numba (once per process; numba caches the machine code on
    disk, so only the first run on a machine pays the compilation, a few seconds)."""
    global tanh, lstm_forward, lstm_backward, gru_forward, gru_backward, peephole_forward, peephole_backward
    global _compiled
    if not _compiled:
        from numba import njit
        # error_model="numpy": a division by zero gives inf as in NumPy, no Python exception check per element
        tanh = njit(inline="always", error_model="numpy", cache=True)(tanh)
        kernel = njit(error_model="numpy", cache=True)
        lstm_forward, lstm_backward = kernel(lstm_forward), kernel(lstm_backward)
        gru_forward, gru_backward = kernel(gru_forward), kernel(gru_backward)
        peephole_forward, peephole_backward = kernel(peephole_forward), kernel(peephole_backward)
        _compiled = True
    return sys.modules[__name__]
