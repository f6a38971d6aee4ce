"""The training loop: batches, (truncated) backpropagation through time, validation, early stopping.

    trainer = Trainer(model, dataset, optimizer="adam", lr=1e-2, regularisers=[Clip(1.0)], epochs=20)
    history = trainer.fit()            # one dict of metrics per epoch
    results = trainer.test()           # test loss, the dataset's metric and its baseline

Regularisers change training only through the hooks documented in `regulariser.py`; the trainer
names none of them. The best weights (best validation metric, see `selection_key`) are restored at
the end of `fit`.

Between epochs the whole trainer fits in `state_dict()`: weights, optimiser and schedule, the random
generator, the epoch, the history, the best result and its weights, every regulariser's state.
`load_state_dict(state)` on a trainer built the same way continues exactly where that one stopped:

    checkpoint = trainer.state_dict()          # after epoch k (e.g. in the on_epoch callback)
    fresh = Trainer(model, dataset, ...)       # built from the same config, in a new process
    fresh.load_state_dict(checkpoint)
    fresh.fit()                                # epochs k+1.. : bit for bit what `trainer` would do
"""
import math
import time

import numpy as np

from . import backend
from . import random as _random
from .baselines import best as best_baseline
from .errors import ConfigError, DivergedError
from .function import no_grad
from .losses import cross_entropy, mse
from .optim import make_schedule
from .registry import optimizers
from .selection import selection_key
from .tensor import Tensor

DIVERGED_HINT = ("lower the learning rate (--lr), clip gradients (--reg clip:1.0), use a gated cell, or check the "
                 "data for extreme values")


class Trainer:
    def __init__(self, model, dataset, optimizer=None, lr=1e-2, optimizer_options=None, regularisers=(),
                 epochs=20, batch_size=32, patience=None, on_epoch=None, on_batch=None, schedule=None,
                 schedule_options=None):
        if epochs < 1 or batch_size < 1:
            raise ConfigError(f"epochs and batch size must be positive, got {epochs} and {batch_size}")
        self.model, self.dataset = model, dataset
        self.regularisers = list(regularisers)
        self.epochs, self.batch_size, self.patience = epochs, batch_size, patience
        self.on_epoch, self.on_batch = on_epoch, on_batch
        self.backend = backend.get_backend()
        self.history, self.should_stop, self.epoch = [], False, 0
        self.best_val_loss, self.best_epoch, self.best_state = math.inf, None, None
        self._best_key = None
        self.grad_norm = None
        self._counters = {}
        self._batch_events = {}
        splits = dataset.splits()
        check_validation(dataset, self.regularisers, patience)
        # no validation split (csv's val=0): nothing to choose an epoch on, so the last one is kept
        self.validating = len(splits["val"]) > 0
        if dataset.kind in ("vec2seq", "encdec"):
            model.target_length = splits["train"].y.shape[1]
        for r in self.regularisers:
            r.on_model_built(self)
        if callable(optimizer) and not isinstance(optimizer, str):
            self.optimizer = optimizer(model.parameters())
        else:
            name = optimizer or optimizers.default  # the optimiser plugin registered as the default
            self.optimizer = optimizers.get(name)(model.parameters(), lr=lr, **(optimizer_options or {}))
        if schedule:
            make_schedule(self.optimizer, schedule, schedule_options, epochs)
        for r in self.regularisers:
            r.on_optimizer_built(self)

    # ---- hooks' helpers -----------------------------------------------------------------------------
    def count(self, event, happened=True):
        """Record that `event` happened in this batch (reported per epoch as `event_rate`).

        `happened` may be a 0-d boolean array on the training backend (e.g. `norm > threshold`): it is
        added up on the device and read once per epoch, so counting costs a GPU run no host sync."""
        previous = self._batch_events.get(event)
        self._batch_events[event] = happened if previous is None else previous | happened

    def chunks(self, length):
        """[(start, stop), ...]: how a sequence of `length` steps is cut for backpropagation (one
        chunk, unless a regulariser such as truncated BPTT splits it)."""
        for r in self.regularisers:
            chunks = r.split_sequence(length)
            if chunks is not None:
                return chunks
        return [(0, length)]

    # ---- one batch ------------------------------------------------------------------------------------
    def _tensor(self, array):
        return Tensor(backend.convert(np.ascontiguousarray(array), self.backend))

    def loss(self, outputs, y, lengths=None, start=0):
        """The task's loss: MSE for regression, cross-entropy for classification, masked past lengths."""
        mask = None
        if self.dataset.kind == "seq2seq" and lengths is not None:
            t = outputs.shape[1]
            mask = (np.arange(start, start + t)[None, :] < np.asarray(lengths)[:, None]).astype(np.float32)
        if self.dataset.problem == "classification":
            return cross_entropy(outputs, y, mask=mask)
        if mask is not None:
            mask = np.broadcast_to(mask[..., None], outputs.shape)
        return mse(outputs, self._tensor(y), mask=mask)

    def train_batch(self, x, y, lengths=None, state=None):
        """Forward, backward (chunk by chunk with truncated BPTT), hooks, one optimiser step.

        Returns the batch's loss as a 0-d float64 array on the training backend: it is not read here,
        because reading a GPU array waits for the GPU (the epoch reads all its batches' losses at once).

        `state` (detached) starts the batch from where the previous one ended, for stateful datasets;
        the batch's final state is kept in `self.state`."""
        model, kind = self.model, self.dataset.kind
        batch = (x, y, lengths)
        for r in self.regularisers:
            r.before_batch(self, batch)
        self.optimizer.zero_grad()
        model.zero_grad()
        total_steps = x.shape[1]
        chunks = self.chunks(total_steps) if kind in ("seq2vec", "seq2seq") else [(0, total_steps)]
        total = 0.0  # the batch's loss, added up where it is computed (see `_read_epoch`)
        for i, (start, stop) in enumerate(chunks):
            xs = self._tensor(x[:, start:stop])
            lens = None if lengths is None else np.clip(lengths - start, 0, stop - start)
            if kind == "seq2vec" and i < len(chunks) - 1:
                with no_grad():  # only the last chunk sees the target: earlier ones just carry state
                    _, state = model(xs, lengths=lens, state=state)
                state = detach_state(state)
                continue
            if kind in ("vec2seq", "encdec"):
                outputs, _ = model(xs if kind == "encdec" else self._tensor(x), lengths=lens, targets=y)
                loss = self.loss(outputs, y)
            else:
                outputs, state = model(xs, lengths=lens, state=state)
                ys = y[:, start:stop] if kind == "seq2seq" else y
                loss = self.loss(outputs, ys, lens)
                if kind == "seq2seq" and len(chunks) > 1:
                    loss = loss * _share(lengths, start, stop, total_steps)
                state = detach_state(state)
            loss.backward()
            total = total + loss.data.astype(np.float64)
        self.state = state
        self.grad_norm = gradient_norm(model.parameters())
        for r in self.regularisers:
            r.after_backward(self)
        self.optimizer.step()
        for r in self.regularisers:
            r.after_step(self)
        return total

    # ---- epochs ---------------------------------------------------------------------------------------
    def fit(self):
        # overflow on the way to a NaN is reported once, by the DivergedError below, not as warnings
        with np.errstate(over="ignore", invalid="ignore"):
            return self._fit()

    def _fit(self):
        train = self.dataset.splits()["train"]
        while self.epoch < self.epochs and not self.should_stop:  # from where a checkpoint left off
            self.epoch += 1
            started = time.perf_counter()
            self.model.train()
            # a stateful dataset's batch rows continue each other: keep their order and carry the state
            stateful = self.dataset.stateful
            order = np.arange(len(train)) if stateful else _random.generator().permutation(len(train))
            self.state = None
            losses, norms, events = [], [], {}  # kept on the training backend until the epoch ends
            size = self.dataset.streams if stateful else self.batch_size
            n_batches = math.ceil(len(train) / size)
            for b in range(n_batches):
                batch = train.subset(order[b * size:(b + 1) * size])
                x, lengths = batch.x, batch.lengths
                if lengths is not None:  # no step past the batch's longest sequence
                    longest = int(lengths.max())
                    x = x[:, :longest]
                    y = batch.y[:, :longest] if self.dataset.kind == "seq2seq" else batch.y
                else:
                    y = batch.y
                self._batch_events = {}
                carried = self.state if stateful and self.state is not None and \
                    self.state[0][0].shape[0] == len(x) else None
                losses.append(self.train_batch(x, y, lengths, state=carried))
                norms.append(self.grad_norm)
                for e, happened in self._batch_events.items():
                    events[e] = events.get(e, 0) + happened
                if self.on_batch:
                    self.on_batch(self, b + 1, n_batches, losses[-1])
            # every event a regulariser declares gets a column from epoch 1 on, even before it happens
            names = sorted(set(events) | {e for r in self.regularisers for e in getattr(r, "events", ())})
            train_loss, norm_mean, norm_max, *counts = self._read_epoch(losses, norms, [events.get(e, 0) for e in names])
            if not math.isfinite(train_loss):
                raise DivergedError(f"training diverged at epoch {self.epoch}: the training loss is {train_loss}; "
                                    f"{DIVERGED_HINT}")
            metrics = {"epoch": self.epoch, "train_loss": train_loss}
            metrics.update({f"val_{k}": v for k, v in self.evaluate("val").items()} if self.validating else
                           {"val_loss": math.nan, "val_metric": math.nan})
            metrics.update({"grad_norm_mean": norm_mean, "grad_norm_max": norm_max})
            metrics.update({f"{e}_rate": count / n_batches for e, count in zip(names, counts)})
            metrics["lr"] = float(self.optimizer.lr)
            metrics["seconds"] = time.perf_counter() - started
            if self.validating and not math.isfinite(metrics["val_loss"]):
                raise DivergedError(f"training diverged at epoch {self.epoch}: the validation loss is "
                                    f"{metrics['val_loss']}; {DIVERGED_HINT}")
            if self.validating and not math.isfinite(metrics["val_metric"]):  # a finite loss, yet no score:
                # the metric, in the data's own units, overflowed (values near 1e154 square to inf)
                raise DivergedError(f"the validation metric is {metrics['val_metric']} at epoch {self.epoch} "
                                    "while the loss is finite: the data's values overflow in the metric's "
                                    "units; check the data for extreme values and rescale them")
            self._keep_best(metrics)
            for r in self.regularisers:
                r.on_epoch_end(self, metrics)
            if hasattr(self.optimizer, "scheduler") and self.optimizer.scheduler is not None:
                self.optimizer.scheduler.step()
            self.history.append(metrics)
            if self.on_epoch:
                self.on_epoch(self, metrics)
        self.restore_best()
        return self.history

    def _read_epoch(self, losses, norms, counts):
        """[mean loss, mean and max gradient norm, each event's count] as host floats, in one transfer.

        Every batch left its loss, gradient norm and event flags on the training backend; on a GPU,
        reading each of them as it came would stall the device once or more per batch, so the epoch
        gathers them into one array and reads that once."""
        xp = backend.module(self.backend)
        as_array = lambda v: xp.asarray(v, dtype=np.float64).reshape(())  # noqa: E731  (Python 0 or a 0-d array)
        losses, norms = xp.stack([as_array(v) for v in losses]), xp.stack([as_array(v) for v in norms])
        figures = xp.stack([losses.mean(), norms.mean(), norms.max()] + [as_array(c) for c in counts])
        return backend.to_numpy(figures).tolist()

    def _keep_best(self, metrics):
        if not self.validating:
            return   # best_state stays None: the last epoch's weights are kept
        key = selection_key(metrics, self.dataset.higher_is_better)
        if self.best_epoch is None or key < self._best_key:
            self.best_val_loss, self.best_epoch, self._best_key = metrics["val_loss"], self.epoch, key
            self.best_state = self.model.state_dict()
        elif self.patience is not None and self.epoch - self.best_epoch >= self.patience:
            self.should_stop = True

    def restore_best(self):
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    # ---- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self):
        """Everything the next epoch depends on, between two epochs: a nested dict of plain values and
        host NumPy arrays (what `runner/store.py` writes to checkpoint.npz)."""
        scheduler = getattr(self.optimizer, "scheduler", None)
        return {"epoch": self.epoch, "epochs": self.epochs, "should_stop": self.should_stop,
                "history": [dict(m) for m in self.history],
                "best_val_loss": self.best_val_loss, "best_epoch": self.best_epoch, "best_state": self.best_state,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                # weights, shuffling and dropout all draw from this one generator (random.py)
                "random": _random.generator().bit_generator.state,
                "regularisers": [r.state_dict() for r in self.regularisers]}

    def load_state_dict(self, state):
        """Continue from `state_dict()`'s result: this trainer must be built from the same config."""
        if len(state["regularisers"]) != len(self.regularisers):
            raise ConfigError(f"the checkpoint has {len(state['regularisers'])} regularisers' states, this "
                              f"trainer has {len(self.regularisers)} regularisers")
        self.epoch, self.should_stop = int(state["epoch"]), bool(state["should_stop"])
        self.history = [dict(m) for m in state["history"]]
        self.best_val_loss, self.best_epoch = float(state["best_val_loss"]), state["best_epoch"]
        if self.best_epoch is not None:  # the chosen epoch's key, from its row of the history
            self._best_key = selection_key(self.history[int(self.best_epoch) - 1], self.dataset.higher_is_better)
        self.best_state = state["best_state"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        scheduler = getattr(self.optimizer, "scheduler", None)
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        self.optimizer.lr = state["optimizer"]["lr"]  # the schedule's formula may differ in the last bit
        _random.generator().bit_generator.state = state["random"]
        for r, s in zip(self.regularisers, state["regularisers"]):
            r.load_state_dict(s)
        return self

    # ---- evaluation -----------------------------------------------------------------------------------
    def outputs(self, split, batch_size=256):
        """The model's outputs for a whole split (host NumPy), in evaluation mode, no graph."""
        self.model.eval()
        parts = []
        with no_grad():
            for start in range(0, len(split), batch_size):
                part = split.subset(slice(start, start + batch_size))
                x = self._tensor(part.x)
                parts.append(self.model.predict(x, lengths=part.lengths).data)
        self.model.train()
        return backend.to_numpy(backend.array_module(parts[0]).concatenate(parts))  # one read, not one per part

    def evaluate(self, name):
        """{'loss', 'metric', extra metrics...} on split `name` ('train', 'val' or 'test')."""
        split = self.dataset.splits()[name]
        outputs = self.outputs(split)
        with no_grad():
            if self.dataset.kind in ("vec2seq", "encdec"):  # loss with teacher forcing, metric greedy
                self.model.eval()
                tf, _ = self.model(self._tensor(split.x), lengths=split.lengths, targets=split.y)
                self.model.train()
                loss = float(self.loss(tf, split.y).item())
            else:
                loss = float(self.loss(Tensor(outputs), split.y, split.lengths).item())
        result = {"loss": loss, "metric": float(self.dataset.metric(outputs, split))}
        result.update(self.dataset.extra_metrics(outputs, split))
        return result

    def test(self):
        """Final results on the test split, beside the dataset's trivial baseline."""
        split = self.dataset.splits()["test"]
        result = {f"test_{k}": v for k, v in self.evaluate("test").items()}
        result["baseline"] = float(self.dataset.baseline(split))
        result["baselines"] = self.dataset.baselines("test")
        result["best_baseline"] = best_baseline(result["baselines"], self.dataset.higher_is_better)
        return result


def check_validation(dataset, regularisers=(), patience=None):
    """ConfigError where something needs a validation split that `dataset` does not have (csv's val=0):
    early stopping (a regulariser with `needs_validation`, or `patience`)."""
    if len(dataset.splits()["val"]):
        return
    needing = [getattr(r, "plugin_name", type(r).__name__) for r in regularisers
               if getattr(r, "needs_validation", False)]
    if needing or patience is not None:
        what = f"regulariser {needing[0]}" if needing else "patience"
        raise ConfigError(f"{what} stops on the validation loss, and this data has no validation split (val=0); "
                          "drop it, or give the data a validation split (val=0.15, val_from=...)")


def detach_state(state):
    """Cut a recurrent state (list of tuples of Tensors) from the graph: truncated BPTT's boundary."""
    if state is None:
        return None
    return [tuple(t.detach() for t in s) for s in state]


def gradient_norm(params):
    """The global L2 norm of all gradients (what clip_grad_norm compares with max_norm), as a 0-d
    float64 array on the gradients' backend: computed there, not read (float() it to read it)."""
    total = 0.0
    for p in params:
        if p.grad is not None:
            total = total + (p.grad.astype(np.float64) ** 2).sum()
    return backend.array_module(total).sqrt(total) if not isinstance(total, float) else np.sqrt(total)


def _share(lengths, start, stop, total_steps):
    """The fraction of the sequence's loss entries that fall in [start, stop): chunk losses then add up
    to the full-sequence mean, so truncated BPTT with one chunk equals full BPTT exactly."""
    if lengths is None:
        return (stop - start) / total_steps
    lengths = np.asarray(lengths)
    in_chunk = np.clip(lengths - start, 0, stop - start).sum()
    return float(in_chunk / max(lengths.sum(), 1))
