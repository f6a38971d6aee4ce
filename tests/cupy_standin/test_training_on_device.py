"""Training on the CuPy stand-in: every optimiser, every regulariser (clipping, BatchNorm, ...), the
trainer end to end — the same history and weights as on NumPy — and a host-sync budget per epoch
that does not grow with the number of batches."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, registry
from tinygrad_rnn.models import SequenceModel
from tinygrad_rnn.nn import BatchNorm1d, BatchNormOverTime, clip_grad_norm, clip_grad_value
from tinygrad_rnn.trainer import Trainer

from helpers import EchoDataset

OPTIMIZERS = {"sgd": ("sgd", {}), "sgd nesterov decay": ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
              "adam": ("adam", {}), "adam amsgrad decay": ("adam", {"amsgrad": True, "weight_decay": 0.01}),
              "adamw": ("adamw", {}), "rmsprop centered momentum": ("rmsprop", {"centered": True, "momentum": 0.5})}
REGULARISERS = {"clip norm": [("clip", {"threshold": 0.05})], "clip value": [("clip", {"threshold": 0.01, "mode": "value"})],
                "weight decay": [("weight_decay", {"decay": 0.1})], "batchnorm": [("batchnorm", {})],
                "variational dropout": [("dropout", {"p": 0.3, "variational": True})], "tbptt": [("tbptt", {"k": 2})],
                "xavier": [("xavier", {})], "orthogonal": [("orthogonal", {})], "he": [("he", {"distribution": "normal"})],
                "early stopping": [("early_stopping", {"patience": 1})]}
# the most host reads an epoch may make: its training figures, the validation outputs and loss, the
# best weights so far (state_dict: one read per dtype, float32 and BatchNorm's int64 counter); none per batch
SYNCS_PER_EPOCH = 5


def fit(where, optimizer=("adam", {}), regs=(), n=24, batch_size=8, cell="gru", epochs=2, layers=2):
    tg.set_backend(where)
    tg.manual_seed(0)
    data = EchoDataset(T=6, n=n, lengths=True)
    model = SequenceModel("seq2seq", cell, 1, 4, 1, num_layers=layers)
    regularisers = [registry.regularisers.get(name)(**options) for name, options in regs]
    trainer = Trainer(model, data, optimizer=optimizer[0], optimizer_options=optimizer[1], lr=0.05,
                      regularisers=regularisers, epochs=epochs, batch_size=batch_size)
    history = trainer.fit()
    tg.set_backend("numpy")
    return history, model.state_dict(), trainer


def assert_same_training(got, want):
    (history, weights, _), (want_history, want_weights, _) = got, want
    assert len(history) == len(want_history)
    for epoch, expected in zip(history, want_history):
        for key, value in expected.items():
            if key != "seconds":
                assert epoch[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    for name, value in want_weights.items():
        np.testing.assert_allclose(weights[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimiser_trains_on_the_device_as_on_numpy(cupy, name):
    regs = [("clip", {"threshold": 0.5})]
    assert_same_training(fit("cupy", OPTIMIZERS[name], regs), fit("numpy", OPTIMIZERS[name], regs))


@pytest.mark.parametrize("name", REGULARISERS)
def test_every_regulariser_trains_on_the_device_as_on_numpy(cupy, name):
    assert_same_training(fit("cupy", regs=REGULARISERS[name]), fit("numpy", regs=REGULARISERS[name]))


def syncs_per_epoch(cupy, batches, epochs=3):
    regs = [("clip", {"threshold": 0.05}), ("batchnorm", {})]  # clipping counts an event every batch
    original = Trainer.fit
    seen = []

    def counted_fit(trainer):
        with cupy.SYNCS.counting() as syncs:
            history = original(trainer)
        seen.extend(syncs)
        return history
    Trainer.fit = counted_fit
    try:
        history, _, _ = fit("cupy", regs=regs, n=8 * batches, epochs=epochs)
    finally:
        Trainer.fit = original
    assert len(history) == epochs and history[-1]["clipped_rate"] > 0
    return len(seen) / epochs, cupy.SYNCS.summary(seen)


def test_host_syncs_per_epoch_are_a_fixed_handful_whatever_the_number_of_batches(cupy):
    for batches in (2, 6):  # a read per batch (or per chunk, or per clipping) would be >= 6 an epoch
        per_epoch, places = syncs_per_epoch(cupy, batches)
        assert per_epoch <= SYNCS_PER_EPOCH, f"{batches} batches an epoch: {places}"


def test_clipping_on_the_device_equals_numpy_and_reads_nothing(cupy):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(3, 4), (5,)]]
    results = {}
    for where in ("numpy", "cupy"):
        params = [Tensor(np.zeros(g.shape, np.float32), requires_grad=True).to(where) for g in grads]
        for p, g in zip(params, grads):
            p.grad = backend.convert(g.copy(), where)
        with cupy.SYNCS.counting() as syncs:
            totals = [clip_grad_norm(params, 1.0, norm_type) for norm_type in (2.0, 1.0, np.inf)]
            clip_grad_value(params, 0.05)
        assert not syncs, cupy.SYNCS.summary(syncs)
        results[where] = [float(t) for t in totals] + [backend.to_numpy(p.grad) for p in params]
        assert all(p.grad.dtype == np.float32 for p in params)
    for got, want in zip(results["cupy"], results["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("layer", ["BatchNorm1d", "BatchNormOverTime masked"])
def test_batchnorm_on_the_device_equals_numpy_in_training_and_evaluation(cupy, layer, momentum):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    mask = (np.arange(5)[None, :] < np.array([5, 3, 2, 4])[:, None]).astype(np.float32)
    results = {}
    for where in ("numpy", "cupy"):
        tg.set_backend(where)
        bn = BatchNorm1d(3, momentum=momentum) if layer == "BatchNorm1d" else BatchNormOverTime(5, momentum=momentum)
        inputs = Tensor(x, requires_grad=True)
        outputs = []
        for _ in range(2):
            out = bn(inputs) if layer == "BatchNorm1d" else bn(inputs, mask=backend.convert(mask[:, :3], where))
            (out * out).sum().backward()
            outputs.append(out.numpy())
        bn.eval()
        outputs.append(bn(inputs).numpy())
        results[where] = outputs + [backend.to_numpy(inputs.grad)] + list(bn.state_dict().values())
        tg.set_backend("numpy")
    for got, want in zip(results["cupy"], results["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_model_and_optimiser_state_come_to_the_host_in_one_read_and_go_back(cupy, name):
    _, _, trainer = fit("cupy", OPTIMIZERS[name], epochs=1)
    _, _, reference = fit("numpy", OPTIMIZERS[name], epochs=1)
    with cupy.SYNCS.counting() as syncs:
        model, optimizer = trainer.model.state_dict(), trainer.optimizer.state_dict()
    assert len(syncs) <= 2, cupy.SYNCS.summary(syncs)  # float32 arrays, and BatchNorm's int64 counter if any
    want_model, want_optimizer = reference.model.state_dict(), reference.optimizer.state_dict()
    for key, value in want_model.items():
        np.testing.assert_allclose(model[key], value, rtol=1e-5, atol=1e-7, err_msg=key)
    for got, want in zip(optimizer["state"], want_optimizer["state"]):
        for key, value in want.items():
            assert isinstance(got[key], type(value)) or np.isscalar(value)
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-7, err_msg=key)
    trainer.optimizer.load_state_dict(optimizer)  # back onto the device
    assert all(backend.name_of(v) == "cupy" for s in trainer.optimizer.state for v in s.values() if hasattr(v, "shape"))
