"""Zoneout (Krueger et al. 2016, "Zoneout: regularizing RNNs by randomly preserving hidden activations"):
at each step each unit of the state keeps its previous value with probability p, instead of taking the
one the cell computed. Like dropout it trains an ensemble, but the identity, not zero, is what a unit
falls back to, so gradients and information flow through time as through a shorter network.

    training:    s_t = m_t ⊙ s_{t-1} + (1 - m_t) ⊙ s̃_t,    m_t ~ Bernoulli(p), per step, sequence and unit
    evaluation:  s_t = p · s_{t-1} + (1 - p) · s̃_t         (m_t replaced by its mean p)

The evaluation step is the expectation of the training step given s_{t-1}: exact for one step, since
m_t enters linearly. Over many steps it is an approximation of the training-time mean, as dropout's
scaling is, because s̃_t is nonlinear in s_{t-1}, which is itself random from the second step on; it is
what Krueger et al. use. For an LSTM c and h are zoned out separately, and h̃_t = o_t ⊙ tanh(c̃_t) is
computed from the cell's own c̃_t, not the zoned-out c_t (as in the paper's equations).

s̃_t = cell(x_t, s_{t-1}) is what the cell computed; s is every state tensor (h, and an LSTM's c),
h_t = s_t[0]. `p` is for h, `p_c` (default: p) for the others (Krueger et al. used z_c = 0.5,
z_h = 0.05 for LSTMs).

How it runs: the masks are drawn before each sequence, for all its steps, and passed into the step as
inputs (tinygrad_rnn/nn/step_masks.py), so every cell, a plugin cell too, runs compiled with them.
A built-in cell's fused kernel computes the whole recurrence inside one op, where no mask can reach,
so with zoneout on it runs its compiled tape instead (about twice the fused kernel's time). The masks
come from the run's seeded generator, whose state every checkpoint keeps: a resumed run draws the
same masks; the regulariser itself keeps no state.

    rnnrun --cell gru --data sine --reg zoneout:p=0.1
    rnnrun --cell lstm --data sine --reg zoneout:p=0.05,p_c=0.5
"""
from tinygrad_rnn import ConfigError, Regularizer, register_regularizer
from tinygrad_rnn.nn import Recurrent, bernoulli


class ZoneoutMasks:
    """The step-mask rule (nn/step_masks.py): which masks to draw, and the step that reads them."""

    def __init__(self, p, p_c):
        self.p, self.p_c = p, p_c

    def rates(self, state):
        return [self.p] + [self.p_c] * (len(state) - 1)

    def active(self, training):
        return True  # evaluation mixes in the expectation

    def draw(self, state, steps, dtype, training):
        if not training:
            return []  # evaluation needs no masks
        n = state[0].shape[0]
        return [bernoulli((n, steps, s.shape[1]), p, dtype) for s, p in zip(state, self.rates(state))]

    def step(self, cell, x, state, masks, training):
        _, computed = cell(x, state)
        if training:
            new = tuple(m * old + (1 - m) * s for m, old, s in zip(masks, state, computed))
        else:
            new = tuple(old * p + s * (1 - p) for p, old, s in zip(self.rates(state), state, computed))
        return new[0], new


@register_regularizer("zoneout")
class Zoneout(Regularizer):
    """Each state unit keeps its previous value with probability p in training (expectation in eval)."""

    def __init__(self, p=0.1, p_c=None):
        p_c = p if p_c is None else p_c
        for name, value in (("p", p), ("p_c", p_c)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"zoneout: {name} must be in [0, 1), got {value}")
        self.p, self.p_c = float(p), float(p_c)

    def on_model_built(self, trainer):
        for module in trainer.model.modules():
            if isinstance(module, Recurrent):
                module.step_masks.append(ZoneoutMasks(self.p, self.p_c))
