"""The stand-in catches what would break on a GPU: each test here plants one such mistake in working
code and checks that NumPy does not notice it and the stand-in does."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend
from tinygrad_rnn.nn import Recurrent
from tinygrad_rnn.registry import cells
from tinygrad_rnn.train import Trainer
from tinygrad_rnn_plugins.cells import rnn_fused
from tinygrad_rnn_plugins.cells.rnn_fused import RNNSequence

from .test_training_on_device import SYNCS_PER_EPOCH, syncs_per_epoch


def padded_rnn_run(where):
    tg.manual_seed(0)
    layer = Recurrent(cells.get("rnn"), 2, 3).to(where)
    x = Tensor(np.ones((3, 4, 2), np.float32), requires_grad=True).to(where)
    out, _ = layer(x, lengths=np.array([4, 2, 3]))
    out.sum().backward()
    return out


def test_an_implicit_np_asarray_in_a_fused_cell_fails_on_the_device(cupy, monkeypatch):
    # the mistake: the fused RNN turns its input time-major with np.asarray, as if it were on the host
    monkeypatch.setattr(rnn_fused, "time_major",
                        lambda a, dtype: np.ascontiguousarray(np.asarray(a).swapaxes(0, 1), dtype=dtype))
    padded_rnn_run("numpy")  # NumPy does not mind
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        padded_rnn_run("cupy")


def test_a_numpy_mask_mixed_into_a_device_op_fails_on_the_device(cupy, monkeypatch):
    # the mistake: the padding mask reaches the fused kernel as a host array (as if never moved over)
    forward = RNNSequence.forward

    def with_host_mask(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, mask=None, nonlinearity="tanh"):
        return forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, None if mask is None else backend.to_numpy(mask),
                       nonlinearity)
    monkeypatch.setattr(RNNSequence, "forward", staticmethod(with_host_mask))
    padded_rnn_run("numpy")
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        padded_rnn_run("cupy")


def test_a_host_read_per_batch_breaks_the_sync_budget(cupy, monkeypatch):
    # the mistake: the trainer reads each batch's loss as it comes (float(loss) per batch)
    train_batch = Trainer.train_batch
    monkeypatch.setattr(Trainer, "train_batch", lambda self, *a, **k: float(train_batch(self, *a, **k)))
    per_epoch, places = syncs_per_epoch(cupy, batches=6)
    assert per_epoch > SYNCS_PER_EPOCH, places
