"""Solutions to the exercises of docs/03-cells.md."""
import numpy as np

from tinygrad_rnn import ConfigError, Tensor, manual_seed, register_cell
from tinygrad_rnn.models import SequenceModel
from tinygrad_rnn.nn import Module, Recurrent, uniform_parameter
from tinygrad_rnn.registry import cells

sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731


def exercise_1():
    """One GRU step by hand: H = 2, D = 1, x_1 = 1.0, h_0 = 0, every weight 0.5 and every bias 0. Then
    h_0 = 0 makes W_hh's share just b_hh = 0: r = z = σ(0.5) ≈ 0.6225, n = tanh(0.5 + r · 0) ≈ 0.4621,
    h_1 = (1 − z) n + z · 0 ≈ 0.3775 · 0.4621 ≈ 0.1745 in both units."""
    rnn = Recurrent(cells.get("gru"), 1, 2)
    cell = rnn.cells[0]
    for p in (cell.weight_ih, cell.weight_hh):
        p.data = np.full(p.shape, 0.5, np.float32)
    for p in (cell.bias_ih, cell.bias_hh):
        p.data = np.zeros(p.shape, np.float32)
    h1 = rnn(Tensor(np.ones((1, 1, 1), np.float32)))[0].numpy()[0, 0]
    by_hand = (1 - sigmoid(0.5)) * np.tanh(0.5)
    assert np.allclose(h1, [by_hand, by_hand], atol=1e-6) and round(float(by_hand), 4) == 0.1745
    return h1.round(4)


def exercise_2():
    """Parameters at D = 2, H = 32 with a 1-output head (33 = 32 weights + 1 bias): each gate block is
    H(D + H) weights and 2H biases. RNN: 1 block, LSTM 4, GRU 3; peephole adds 3 vectors of H.
    1,185, 4,641, 3,489, 4,737: the "parameters" row of the chapter's table."""
    D, H = 2, 32
    predicted = {name: blocks * (H * (D + H) + 2 * H) + extra + H + 1
                 for name, blocks, extra in (("rnn", 1, 0), ("lstm", 4, 0), ("gru", 3, 0), ("peephole", 4, 3 * H))}
    counted = {name: sum(p.size for p in SequenceModel("seq2vec", cells.get(name), D, H, 1).parameters())
               for name in predicted}
    assert predicted == counted == {"rnn": 1185, "lstm": 4641, "gru": 3489, "peephole": 4737}
    return counted


def exercise_3():
    """The other z convention: h_t = (1 − z') h_{t-1} + z' n with z' = σ(a'). Negating the z block's
    weights and biases gives z' = σ(−a_z) = 1 − z, and the same h_t as this project's GRU."""
    manual_seed(0)
    cell = cells.get("gru")(2, 3).to(dtype=np.float64)
    H = 3
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    ours = cell(Tensor(x), (Tensor(h),))[0].numpy()
    w_ih, w_hh, b_ih, b_hh = (p.numpy().copy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    for w in (w_ih, w_hh, b_ih, b_hh):
        w[H:2 * H] *= -1                      # the z block, negated
    ai, ah = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    r, z_new = sigmoid(ai[:, :H] + ah[:, :H]), sigmoid(ai[:, H:2 * H] + ah[:, H:2 * H])
    n = np.tanh(ai[:, 2 * H:] + r * ah[:, 2 * H:])
    theirs = (1 - z_new) * h + z_new * n
    assert np.allclose(ours, theirs, rtol=0, atol=1e-12)
    return True


@register_cell("leaky_rnn")
class LeakyRNN(Module):
    """h_t = (1 − α) h_{t-1} + α tanh(W_ih x_t + b_ih + W_hh h_{t-1}): a fixed leak α in (0, 1]."""

    def __init__(self, input_size, hidden_size, alpha=0.5):
        if not 0 < alpha <= 1:
            raise ConfigError(f"leaky_rnn: alpha must be in (0, 1], got {alpha}")
        bound = 1 / np.sqrt(hidden_size)
        self.hidden_size, self.alpha = hidden_size, alpha
        self.weight_ih = uniform_parameter((hidden_size, input_size), bound)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), bound)
        self.bias_ih = uniform_parameter((hidden_size,), bound)

    def initial_state(self, batch_size):
        w = self.weight_hh
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend),)

    def forward(self, x, state):
        (h,) = state
        h = (1 - self.alpha) * h + self.alpha * (x.linear(self.weight_ih, self.bias_ih) + h @ self.weight_hh.T).tanh()
        return h, (h,)


def exercise_4():
    """Write a cell: the leaky RNN above passes every check `rnnrun check` runs (gradients against
    finite differences on its compiled and composed paths, padding, stacking, 200 finite steps...)."""
    from tinygrad_rnn.testing import check_cell
    results = check_cell(LeakyRNN, alpha=0.5)
    return f"{sum(r.status == 'pass' for r in results)} checks pass"


if __name__ == "__main__":
    for name in sorted(n for n in dir() if n.startswith("exercise_")):
        print(name, "→", globals()[name]())
