"""The trainer: truncated BPTT is exact where it must be, divergence stops cleanly, seeds reproduce."""
import re
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import registry
from tinygrad_rnn.models import SequenceModel
from tinygrad_rnn.trainer import Trainer, detach_state

from helpers import EchoDataset


def make(cell="lstm", T=12, regs=(), lengths=False, dtype=np.float64, n=16, hidden=5):
    tg.manual_seed(0)
    data = EchoDataset(T=T, n=n, lengths=lengths)
    model = SequenceModel("seq2seq", cell, 1, hidden, 1)
    model.to(dtype=dtype)
    # lr = 0: the optimiser step changes nothing, so p.grad after train_batch is the batch's gradient
    trainer = Trainer(model, data, optimizer="sgd", lr=1e-30, regularisers=regs, epochs=1, batch_size=n)
    return data, model, trainer


def batch(data, dtype=np.float64):
    split = data.splits()["train"]
    return split.x.astype(dtype), split.y.astype(dtype), split.lengths


def grads(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_tbptt_with_k_equal_to_T_is_exactly_full_bptt(cell):
    tbptt = registry.regularisers.get("tbptt")
    data, model, trainer = make(cell)
    trainer.train_batch(*batch(data))
    full = grads(model)
    data, model, trainer = make(cell, regs=[tbptt(k=12)])
    trainer.train_batch(*batch(data))
    chunked = grads(model)
    for name in full:
        np.testing.assert_array_equal(full[name], chunked[name])


@pytest.mark.parametrize("lengths", [False, True])
def test_tbptt_gradient_is_the_sum_of_the_chunk_gradients(lengths):
    tbptt = registry.regularisers.get("tbptt")
    data, model, trainer = make("gru", T=12, regs=[tbptt(k=5)], lengths=lengths)
    x, y, lens = batch(data)
    trainer.train_batch(x, y, lens)
    got = grads(model)

    # by hand: run chunks [0,5) [5,10) [10,12) from the detached state, each loss weighted by its share
    model.zero_grad()
    total = {name: np.zeros_like(p.data) for name, p in model.named_parameters()}
    state = None
    valid = np.ones(x.shape[:2]) if lens is None else (np.arange(12)[None, :] < lens[:, None])
    for start, stop in [(0, 5), (5, 10), (10, 12)]:
        chunk_lengths = None if lens is None else np.clip(lens - start, 0, stop - start)
        out, state = model(tg.Tensor(x[:, start:stop]), lengths=chunk_lengths, state=state)
        mask = valid[:, start:stop, None]
        loss = (((out - tg.Tensor(y[:, start:stop])) ** 2) * tg.Tensor(mask)).sum() * (1.0 / valid.sum())
        loss.backward()
        for name, p in model.named_parameters():
            total[name] += p.grad
            p.grad = None
        state = detach_state(state)
    for name in got:
        np.testing.assert_allclose(got[name], total[name], rtol=1e-10, atol=1e-12)


def test_tbptt_gradient_differs_from_full_bptt_when_k_is_short():
    tbptt = registry.regularisers.get("tbptt")
    data, model, trainer = make("rnn", T=12)
    trainer.train_batch(*batch(data))
    full = grads(model)
    data, model, trainer = make("rnn", T=12, regs=[tbptt(k=1)])
    trainer.train_batch(*batch(data))
    assert not np.allclose(full["rnn.cells.0.weight_hh"], grads(model)["rnn.cells.0.weight_hh"])


def peak_training_memory(T, regs):
    data, model, trainer = make("lstm", T=T, regs=regs, dtype=np.float32, n=8, hidden=32)
    x, y, lens = batch(data, np.float32)
    trainer.train_batch(x, y, lens)  # warm-up: caches, lazy imports
    tracemalloc.start()
    trainer.train_batch(x, y, lens)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - x.nbytes - y.nbytes


def test_tbptt_peak_memory_stays_flat_as_T_grows():
    tbptt = registry.regularisers.get("tbptt")
    short, long = peak_training_memory(200, [tbptt(k=20)]), peak_training_memory(800, [tbptt(k=20)])
    full_short, full_long = peak_training_memory(200, []), peak_training_memory(800, [])
    assert full_long > 3 * full_short          # full BPTT keeps every step
    assert long < 1.5 * short                  # truncated BPTT keeps k steps


HUGE_LR = 10.0  # plain SGD on a ReLU RNN: the loss overflows to inf unless the gradients are clipped


def test_diverging_run_stops_with_a_message_naming_the_epoch_and_a_remedy():
    tg.manual_seed(0)
    data = EchoDataset(T=10, n=32)
    model = SequenceModel("seq2seq", "rnn", 1, 16, 1, nonlinearity="relu")
    trainer = Trainer(model, data, optimizer="sgd", lr=HUGE_LR, epochs=5, batch_size=8)
    with pytest.raises(tg.DivergedError) as err:
        trainer.fit()
    message = str(err.value)
    assert re.search(r"diverged at epoch \d", message) and "clip" in message and "--lr" in message


def test_clipping_keeps_the_same_run_finite():
    tg.manual_seed(0)
    data = EchoDataset(T=10, n=32)
    model = SequenceModel("seq2seq", "rnn", 1, 16, 1, nonlinearity="relu")
    clip = registry.regularisers.get("clip")(1.0)
    trainer = Trainer(model, data, optimizer="sgd", lr=HUGE_LR, regularisers=[clip], epochs=5, batch_size=8)
    history = trainer.fit()
    assert all(np.isfinite(m["val_loss"]) for m in history)
    assert "clipped_rate" in history[0]


def test_training_reduces_the_loss_and_restores_the_best_weights():
    tg.manual_seed(0)
    data = EchoDataset(T=10, n=64)
    model = SequenceModel("seq2seq", "gru", 1, 8, 1)
    trainer = Trainer(model, data, optimizer="adam", lr=0.02, epochs=15, batch_size=16)
    history = trainer.fit()
    assert history[-1]["val_loss"] < 0.5 * history[0]["val_loss"]
    assert trainer.evaluate("val")["loss"] == pytest.approx(min(m["val_loss"] for m in history), rel=1e-5)


def test_early_stopping_regulariser_stops_training():
    tg.manual_seed(0)
    data = EchoDataset(T=6, n=16)
    model = SequenceModel("seq2seq", "rnn", 1, 4, 1)
    stop = registry.regularisers.get("early_stopping")(patience=1)
    # lr so small that nothing improves: patience 1 stops after the second epoch
    trainer = Trainer(model, data, optimizer="sgd", lr=1e-12, regularisers=[stop], epochs=10, batch_size=16)
    assert len(trainer.fit()) < 10


def test_the_same_seed_gives_bit_identical_metrics():
    def run():
        tg.manual_seed(3)
        data = EchoDataset(T=8, n=32, seed=3)
        model = SequenceModel("seq2seq", "lstm", 1, 6, 1)
        dropout = registry.regularisers.get("dropout")(p=0.3, variational=True)
        return Trainer(model, data, optimizer="adam", lr=0.01, regularisers=[dropout], epochs=2, batch_size=8).fit()

    first, second = run(), run()
    strip = lambda h: [{k: v for k, v in m.items() if k != "seconds"} for m in h]  # noqa: E731
    assert strip(first) == strip(second)


class HugeUnitsEcho(EchoDataset):
    """EchoDataset whose metric is in units of 1e300: its squares overflow though the loss is finite."""

    def metric(self, outputs, split):
        return float(np.sqrt(np.mean((1e300 * (np.asarray(outputs) - split.y)) ** 2)))


def test_a_metric_that_overflows_while_the_loss_is_finite_stops_the_run_naming_the_epoch():
    tg.manual_seed(0)
    model = SequenceModel("seq2seq", "rnn", 1, 4, 1)
    trainer = Trainer(model, HugeUnitsEcho(T=6, n=16), epochs=3, batch_size=8)
    with np.errstate(over="ignore"), pytest.raises(tg.DivergedError) as err:
        trainer.fit()
    message = str(err.value)
    assert "validation metric is inf at epoch 1" in message and "check the data" in message
    assert trainer.history == []  # no epoch with a NaN score is kept as if it were a result
