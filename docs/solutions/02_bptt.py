"""Solutions to the exercises of docs/02-bptt-vanishing.md."""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import vanish_json  # noqa: E402

from tinygrad_rnn import Tensor, manual_seed  # noqa: E402
from tinygrad_rnn.registry import cells  # noqa: E402


def exercise_1():
    """Entries drawn from U(-a, a) have variance a²/3 (the integral of x²/2a from -a to a); with
    a = 1/√H that is 1/(3H). A random H × H matrix with entries of variance s² has spectral radius
    about s√H (the circular law): √(H/(3H)) = 1/√3 ≈ 0.58, whatever H."""
    manual_seed(0)
    w = cells.get("rnn")(1, 256).weight_hh.numpy().astype(np.float64)
    assert abs(w.var() * 3 * 256 - 1) < 0.02
    radius = np.abs(np.linalg.eigvals(w)).max()
    assert abs(radius - 1 / math.sqrt(3)) < 0.03
    return round(float(w.var() * 3 * 256), 3), round(float(radius), 3)


def exercise_2():
    """At 0.56 per step, how many steps back until the gradient is 10⁶ times smaller? log(10⁻⁶) /
    log(0.56) ≈ 23.9: 24 steps. Measured on the chapter's RNN, 24 steps back from t = 100 the norm is
    down by about 10⁶ (the factor is an average, so the count is too)."""
    steps = math.ceil(math.log(1e-6) / math.log(0.56))
    norms = np.array(vanish_json("--cell", "rnn", "--data", "adding:T=100,n_train=200", "--epochs", "0")["rnn"]["init"])
    drop = norms[-1] / norms[-1 - steps]
    assert steps == 24 and 1e5 < drop < 1e7
    return steps, f"{drop:.1e}"


def exercise_3():
    """Predict, then run: the plain RNN's per-step factor at T = 50 instead of 100. The factor is a
    property of the weights and of tanh' along the way, not of T, so still about 0.56 (the t = 1
    gradient is then about 0.56⁴⁹ ≈ 10⁻¹² of the last one instead of 10⁻²⁵)."""
    summary = vanish_json("--cell", "rnn", "--data", "adding:T=50,n_train=200", "--epochs", "0")["rnn"]["init_summary"]
    assert abs(summary["per_step"] - 0.56) < 0.03 and 1e-14 < summary["ratio"] < 1e-10
    return round(summary["per_step"], 2)


def exercise_4():
    """Derive the GRU's one-step Jacobian dh_t/dh_{t-1} (the chapter's equation) and check it against
    backward(), H = 3, float64: one backward() per entry of h_t gives one row of J."""
    H, D = 3, 2
    manual_seed(1)
    cell = cells.get("gru")(D, H).to(dtype=np.float64)
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((1, D)), rng.standard_normal((1, H))
    rows = []
    for k in range(H):
        h = Tensor(h0, requires_grad=True)
        cell(Tensor(x), (h,))[0][0, k].backward()
        rows.append(h.grad[0])
    engine = np.array(rows)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    w_ih, w_hh, b_ih, b_hh = (p.numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    ai, ah = x @ w_ih.T + b_ih, h0 @ w_hh.T + b_hh
    r, z = sig(ai[:, :H] + ah[:, :H])[0], sig(ai[:, H:2 * H] + ah[:, H:2 * H])[0]
    hn = ah[0, 2 * H:]
    n = np.tanh(ai[0, 2 * H:] + r * hn)
    W_hr, W_hz, W_hn = w_hh[:H], w_hh[H:2 * H], w_hh[2 * H:]
    J = (np.diag(z) + np.diag((h0[0] - n) * z * (1 - z)) @ W_hz
         + np.diag((1 - z) * (1 - n ** 2)) @ (np.diag(r) @ W_hn + np.diag(hn * r * (1 - r)) @ W_hr))
    assert np.allclose(J, engine, rtol=0, atol=1e-12)
    return True


if __name__ == "__main__":
    for name in sorted(n for n in dir() if n.startswith("exercise_")):
        print(name, "→", globals()[name]())
