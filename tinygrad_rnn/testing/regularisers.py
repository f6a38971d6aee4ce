"""The checks every regulariser plugin must pass, on a tiny real trainer for two epochs.

The trainer here needs no other plugin: a two-layer tanh RNN (`TinyCell`, named by the cell protocol so
initialisation schemes find its weights), an echo task with padded sequences (`EchoData`: y_t = x_{t-1})
and plain SGD (`PlainSGD`). Hooks that can change training are listed in `SHAPING_HOOKS`; a regulariser
that overrides none of them only watches, and must leave training exactly as it would be without it.
"""
import copy
import math

import numpy as np

from ..data import Dataset, Split
from ..models import SequenceModel
from ..nn import Module, uniform_parameter
from ..optim import Optimizer
from ..random import manual_seed
from ..regulariser import Regularizer
from ..tensor import Tensor
from ..train import Trainer
from .base import SkipCheck, check_bad_options, equal_plain, not_plain, same_arrays

SHAPING_HOOKS = ("on_model_built", "on_optimizer_built", "split_sequence", "before_batch", "after_backward",
                 "after_step")
EPOCHS = 2


class TinyCell(Module):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1})."""

    def __init__(self, input_size, hidden_size):
        bound = 1 / math.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.weight_ih = uniform_parameter((hidden_size, input_size), bound)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), bound)
        self.bias_ih = uniform_parameter((hidden_size,), bound)

    def initial_state(self, batch_size):
        w = self.weight_hh
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=w.dtype).to(w.backend),)

    def forward(self, x, state):
        h = (x.linear(self.weight_ih, self.bias_ih) + state[0].linear(self.weight_hh)).tanh()
        return h, (h,)


class EchoData(Dataset):
    """Per-step regression y_t = x_{t-1}, sequences of 3 to 6 steps, zero-padded."""

    kind, problem, metric_name, baseline_name = "seq2seq", "regression", "rmse", "zeros"

    def __init__(self, seed=0, T=6, n=16):
        super().__init__(seed)
        self.T, self.n = T, n
        self.input_size = self.output_size = 1

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        splits = {}
        for key in ("train", "val", "test"):
            lengths = rng.integers(self.T // 2, self.T + 1, self.n)
            x = rng.standard_normal((self.n, self.T, 1)).astype(np.float32)
            x *= np.arange(self.T)[None, :, None] < lengths[:, None, None]
            y = np.concatenate([np.zeros((self.n, 1, 1), np.float32), x[:, :-1]], axis=1)
            splits[key] = Split(x, y, lengths)
        return splits

    def baseline(self, split):
        return float(np.sqrt(np.mean(split.y ** 2)))


class PlainSGD(Optimizer):
    """p ← p - lr · g."""

    def update(self, p, grad, state):
        p.data -= self.lr * grad


def train(cls, options, regularise=True, seed=0):
    """(regulariser or None, trainer, history): two epochs of the tiny task, seeded."""
    manual_seed(seed)
    dataset = EchoData(seed)
    model = SequenceModel("seq2seq", TinyCell, 1, 4, 1, num_layers=2)
    reg = cls(**options) if regularise else None
    trainer = Trainer(model, dataset, optimizer=lambda params: PlainSGD(params, lr=0.1),
                      regularisers=[reg] if regularise else [], epochs=EPOCHS, batch_size=8)
    return reg, trainer, trainer.fit()


def _numbers(history):
    """The history without wall-clock times."""
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


# ---- the checks -----------------------------------------------------------------------------------
def check_bad_options_raise_config_error(cls, options):
    """An option value out of range raises ConfigError (or the regulariser is built with it)."""
    check_bad_options(cls, options, lambda opts: cls(**opts))


def check_trains_two_epochs(cls, options):
    """Its hooks run in a real trainer for two epochs (or until it stops training) with finite metrics."""
    _, trainer, history = train(cls, options)
    assert history, "expected at least one epoch of metrics, got none"
    assert len(history) == EPOCHS or trainer.should_stop, \
        f"expected {EPOCHS} epochs (or should_stop set), got {len(history)}"
    bad = {k: v for epoch in history for k, v in epoch.items() if not math.isfinite(float(v))}
    assert not bad, f"expected finite metrics, got {bad}"


def check_leaves_the_data_alone(cls, options):
    """Training with it leaves the dataset's arrays as they were (hooks see batches; they must not edit them)."""
    manual_seed(0)
    before = {k: copy.deepcopy(s) for k, s in EchoData(0).splits().items()}
    _, trainer, _ = train(cls, options)
    for key, split in trainer.dataset.splits().items():
        for name in ("x", "y", "lengths"):
            assert same_arrays(getattr(split, name), getattr(before[key], name)), \
                f"expected {key}.{name} unchanged by training, got it changed"


def check_keeps_the_optimizer_on_the_parameters(cls, options):
    """After training, the optimiser still updates exactly the model's parameters (a hook that replaces
    a parameter Tensor, or adds one after the optimiser is built, leaves it untrained)."""
    _, trainer, _ = train(cls, options)
    model = [id(p) for p in trainer.model.parameters()]
    optimised = [id(p) for p in trainer.optimizer.params]
    assert model == optimised, f"expected the optimiser's {len(optimised)} parameters to be the model's " \
                               f"{len(model)}, got {len(set(model) - set(optimised))} the optimiser does not update"


def check_watching_changes_nothing(cls, options):
    """A regulariser that overrides none of the hooks that shape training only watches: losses and
    weights are those of the same run without it."""
    shaping = [h for h in SHAPING_HOOKS if getattr(cls, h) is not getattr(Regularizer, h)]
    if shaping:
        raise SkipCheck(f"it shapes training through {', '.join(shaping)}")
    _, with_it, history = train(cls, options)
    _, without, plain = train(cls, options, regularise=False)
    for epoch, (a, b) in enumerate(zip(history, plain), 1):
        assert a["train_loss"] == b["train_loss"], \
            f"epoch {epoch}: expected the train loss of a run without it, {b['train_loss']!r}, got {a['train_loss']!r}"
    if len(history) == len(plain):
        ours, theirs = with_it.model.state_dict(), without.model.state_dict()
        differ = [k for k in theirs if not np.array_equal(ours.get(k), theirs[k])]
        assert not differ, f"expected the weights of a run without it, got different {differ}"


def check_declares_its_counters(cls, options):
    """Every event it declares in `events` has a `<event>_rate` column in every epoch's metrics, and
    every event it counts is declared."""
    _, _, history = train(cls, options)
    _, _, plain = train(cls, options, regularise=False)
    declared = set(getattr(cls, "events", ()))
    counted = {k[:-len("_rate")] for epoch in history for k in epoch if k.endswith("_rate")} - \
        {k[:-len("_rate")] for epoch in plain for k in epoch if k.endswith("_rate")}
    if not declared and not counted:
        raise SkipCheck("it declares no events and counted none")
    assert counted <= declared, f"expected every counted event in events = {sorted(declared)}, " \
                                f"got undeclared {sorted(counted - declared)}"
    for epoch in history:
        for event in declared:
            rate = epoch.get(f"{event}_rate")
            assert rate is not None and 0 <= rate <= 1, \
                f"epoch {epoch['epoch']}: expected a {event}_rate column in [0, 1], got {rate!r}"


def check_same_seed_same_run(cls, options):
    """Two runs with the same seed give the same metrics and weights (random draws come from the seed)."""
    _, first, a = train(cls, options)
    _, second, b = train(cls, options)
    assert _numbers(a) == _numbers(b), \
        f"expected identical metrics from seed 0 twice, got {_numbers(a)} and {_numbers(b)}"
    ours, theirs = first.model.state_dict(), second.model.state_dict()
    differ = [k for k in ours if not np.array_equal(ours[k], theirs.get(k))]
    assert not differ, f"expected identical weights from seed 0 twice, got different {differ}"


def check_state_dict_round_trip(cls, options):
    """Where it keeps state, state_dict() is plain values, and a new instance given it by load_state_dict()
    (after its trainer is built) returns the same state."""
    reg, _, _ = train(cls, options)
    state = reg.state_dict()
    assert isinstance(state, dict), f"expected state_dict() to return a dict, got {type(state).__name__}"
    if not state:
        raise SkipCheck("it keeps no state (state_dict() is empty)")
    problem = not_plain(state)
    assert problem is None, f"expected plain values (numbers, strings, lists, dicts, NumPy arrays); {problem}"
    saved = copy.deepcopy(state)
    manual_seed(1)
    fresh = cls(**options)
    Trainer(SequenceModel("seq2seq", TinyCell, 1, 4, 1, num_layers=2), EchoData(1),
            optimizer=lambda params: PlainSGD(params, lr=0.1), regularisers=[fresh], epochs=EPOCHS, batch_size=8)
    fresh.load_state_dict(copy.deepcopy(saved))
    assert equal_plain(fresh.state_dict(), saved), \
        f"expected load_state_dict(state) then state_dict() to give {saved!r}, got {fresh.state_dict()!r}"
    assert equal_plain(reg.state_dict(), saved), \
        "expected state_dict() to be stable, got a different one the second time"


CHECKS = [check_bad_options_raise_config_error, check_trains_two_epochs, check_leaves_the_data_alone,
          check_keeps_the_optimizer_on_the_parameters, check_watching_changes_nothing, check_declares_its_counters,
          check_same_seed_same_run, check_state_dict_round_trip]
