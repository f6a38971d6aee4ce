"""Solutions to the exercises of docs/09-deep-and-bidirectional.md."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import vanish_json  # noqa: E402

from tinygrad_rnn import Tensor, manual_seed, no_grad  # noqa: E402
from tinygrad_rnn.models import SequenceModel  # noqa: E402
from tinygrad_rnn.nn import Recurrent  # noqa: E402
from tinygrad_rnn.registry import cells  # noqa: E402


def exercise_1():
    """Parameters of a 2-layer bidirectional LSTM, D = 2, H = 32, one output. Each direction of a
    layer with input size I has 4H(I + H) + 8H; layer 0 reads I = 2, layer 1 reads both directions of
    layer 0, I = 2H = 64; the head reads [→h ; ←h], 2H weights and a bias.
    2 · (4·32·34 + 256) + 2 · (4·32·96 + 256) + 65 = 9,216 + 25,088 + 65 = 34,369."""
    H = 32
    predicted = 2 * (4 * H * (2 + H) + 8 * H) + 2 * (4 * H * (2 * H + H) + 8 * H) + 2 * H + 1
    model = SequenceModel("seq2vec", cells.get("lstm"), 2, H, 1, num_layers=2, bidirectional=True)
    counted = sum(p.size for p in model.parameters())
    assert predicted == counted == 34369
    return counted


def exercise_2():
    """Predict, then run: three stacked unidirectional RNN layers. Layer 0's gradient at t = T has
    come down through two depth edges more than layer 2's, so it is smaller, by a factor of the order
    of a time step's squared; all three layers fade back in time."""
    args = ("--cell", "rnn", "--data", "adding:T=50,n_train=200", "--layers", "3", "--epochs", "0")
    top = vanish_json(*args)["rnn"]["init"]
    bottom = vanish_json(*args, "--layer", "0")["rnn"]["init"]
    assert bottom[-1] < top[-1] and bottom[0] < bottom[-1] and top[0] < top[-1]
    return f"t=T: layer 2 {top[-1]:.1e}, layer 0 {bottom[-1]:.1e}"


def exercise_3():
    """In a bidirectional stack, layer 0's shortest path to a loss has min(T − t, t − 1) time edges:
    its gradient is smallest in the middle. At T = 40, the smallest norm is near t = 20."""
    norms = np.array(vanish_json("--cell", "gru", "--data", "adding:T=40,n_train=200", "--layers", "2",
                                 "--bidirectional", "--layer", "0", "--epochs", "0")["gru"]["init"])
    t_min = int(norms.argmin()) + 1
    assert 15 <= t_min <= 26 and norms[0] > 1e3 * norms.min() and norms[-1] > 1e3 * norms.min()
    return t_min


def exercise_4():
    """A unidirectional model is causal: changing x_{t+1}, ..., x_T changes no output at steps 1 ... t.
    Check every t of a 2-layer GRU; a bidirectional one fails it at every t < T."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 1)).astype(np.float32)
    causal = {}
    for bidirectional in (False, True):
        manual_seed(0)
        rnn = Recurrent(cells.get("gru"), 1, 3, num_layers=2, bidirectional=bidirectional)
        with no_grad():
            before = rnn(Tensor(x))[0].numpy()
            ok = True
            for t in range(7):
                changed = x.copy()
                changed[0, t + 1:] += 1.0
                after = rnn(Tensor(changed))[0].numpy()
                ok &= np.array_equal(after[0, :t + 1], before[0, :t + 1])
        causal[bidirectional] = bool(ok)
    assert causal == {False: True, True: False}
    return causal


if __name__ == "__main__":
    for name in sorted(n for n in dir() if n.startswith("exercise_")):
        print(name, "→", globals()[name]())
