"""Each regulariser plugin does what its docstring says, through the trainer's hooks only."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import registry
from tinygrad_rnn.models import SequenceModel
from tinygrad_rnn.nn import BatchNormOverTime
from tinygrad_rnn.trainer import Trainer

from helpers import EchoDataset


def trainer_with(*regs, cell="gru", layers=2, hidden=6, lr=0.01, optimizer="sgd"):
    tg.manual_seed(0)
    data = EchoDataset(T=8, n=16)
    model = SequenceModel("seq2seq", cell, 1, hidden, 1, num_layers=layers)
    return Trainer(model, data, optimizer=optimizer, lr=lr, regularisers=list(regs), epochs=1, batch_size=8)


def reg(name, *args, **options):
    return registry.regularisers.get(name)(*args, **options)


def test_xavier_uniform_sets_every_weight_matrix_within_the_glorot_bound():
    trainer = trainer_with(reg("xavier", gain=2.0))
    for name, p in trainer.model.named_parameters():
        if name.rsplit(".", 1)[-1].startswith("weight"):
            fan_out, fan_in = p.shape
            bound = 2.0 * np.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(p.data).max() <= bound + 1e-6
            assert np.abs(p.data).max() > 0.5 * bound, name  # really re-drawn, not left at PyTorch's bound


def test_orthogonal_makes_each_recurrent_gate_block_orthogonal():
    trainer = trainer_with(reg("orthogonal"), cell="lstm", hidden=5)
    checked = 0
    for name, p in trainer.model.named_parameters():
        if name.endswith("weight_hh"):
            for block in np.split(p.numpy().astype(np.float64), 4):
                np.testing.assert_allclose(block @ block.T, np.eye(5), atol=1e-5)
                checked += 1
    assert checked == 8


def test_he_initialisation_has_the_kaiming_variance():
    tg.manual_seed(0)
    trainer = trainer_with(reg("he", distribution="normal"), hidden=64, layers=1)
    w = trainer.model.rnn.cells[0].weight_hh.numpy()
    assert np.std(w) == pytest.approx(np.sqrt(2.0 / w.shape[1]), rel=0.1)


def test_batchnorm_normalises_each_layers_input_and_uses_running_statistics_in_eval():
    trainer = trainer_with(reg("batchnorm"))
    transforms = trainer.model.rnn.input_transforms
    assert all(isinstance(t, BatchNormOverTime) for t in transforms)
    # the optimiser was built after the hook, so it trains BatchNorm's affine parameters too
    assert any(p is transforms[0].weight for p in trainer.optimizer.params)
    trainer.fit()
    assert not np.allclose(transforms[0].running_mean.numpy(), 0)
    x = tg.Tensor(np.random.default_rng(1).standard_normal((4, 8, 1)).astype(np.float32) * 5 + 3)
    trainer.model.eval()
    with tg.no_grad():
        first = trainer.model(x)[0].numpy()
        second = trainer.model(x[:2])[0].numpy()
    np.testing.assert_allclose(first[:2], second, rtol=1e-5, atol=1e-6)  # eval: no batch statistics


def test_dropout_sets_layer_and_variational_dropout_on_the_recurrent_layer():
    trainer = trainer_with(reg("dropout", p=0.3, variational=True), cell="lstm")
    assert trainer.model.rnn.dropout == 0.3 and trainer.model.rnn.recurrent_dropout == 0.3
    plain = trainer_with(reg("dropout", p=0.3), cell="lstm")
    assert plain.model.rnn.recurrent_dropout == 0.0


def test_weight_decay_adds_decay_times_weight_to_weight_gradients_only():
    data = EchoDataset(T=8, n=8).splits()["train"]
    plain = trainer_with(lr=1e-30)
    plain.train_batch(data.x, data.y)
    decayed = trainer_with(reg("weight_decay", 0.5), lr=1e-30)
    decayed.train_batch(data.x, data.y)
    for (name, p), (_, q) in zip(plain.model.named_parameters(), decayed.model.named_parameters()):
        expected = p.grad + (0 if "bias" in name else 0.5 * p.data)
        np.testing.assert_allclose(q.grad, expected, rtol=1e-5, atol=1e-6)


def test_clip_by_norm_bounds_the_global_norm_and_counts_when_it_fires():
    data = EchoDataset(T=8, n=8).splits()["train"]
    trainer = trainer_with(reg("clip", 1e-3), lr=1e-30)
    trainer.train_batch(data.x, data.y)
    total = np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in trainer.model.parameters()))
    assert total == pytest.approx(1e-3, rel=1e-3)
    assert trainer.grad_norm > 1e-3 and "clipped" in trainer._batch_events


def test_clip_by_value_cuts_every_entry():
    data = EchoDataset(T=8, n=8).splits()["train"]
    trainer = trainer_with(reg("clip", 1e-4, mode="value"), lr=1e-30)
    trainer.train_batch(data.x, data.y)
    assert max(np.abs(p.grad).max() for p in trainer.model.parameters()) <= 1e-4 + 1e-12


@pytest.mark.parametrize("name, options", [("clip", {"mode": "sideways"}), ("clip", {"threshold": -1}),
                                           ("tbptt", {"k": 0}), ("dropout", {"p": 1.5}),
                                           ("xavier", {"distribution": "cauchy"}),
                                           ("early_stopping", {"patience": 0})])
def test_bad_options_are_config_errors(name, options):
    with pytest.raises(tg.ConfigError):
        reg(name, **options)


def test_a_declared_event_has_its_column_from_the_first_epoch_even_when_it_never_fires():
    trainer = trainer_with(reg("clip", 1e6), lr=1e-3)  # a threshold nothing reaches
    history = trainer.fit()
    assert history[0]["clipped_rate"] == 0.0
