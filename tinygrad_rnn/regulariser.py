"""`Regularizer`: the base class of regulariser plugins, and the trainer's hook points.

A regulariser overrides any of the hooks below; the `Trainer` calls each at the named moment, in the
order the regularisers were given. The trainer knows no regulariser by name: clipping, truncated
BPTT, BatchNorm, initialisation schemes and early stopping are all written against these hooks.

    on_model_built(trainer)      the model exists, the optimiser not yet: change init, insert modules
    on_optimizer_built(trainer)  the optimiser exists (e.g. set its weight decay)
    split_sequence(T)            -> [(start, stop), ...] chunks to backpropagate separately, or None
    before_batch(trainer, batch) a batch (x, y, lengths) is about to run
    after_backward(trainer)      gradients are in p.grad (clip them here); trainer.grad_norm is set
    after_step(trainer)          the optimiser has updated the parameters
    on_epoch_end(trainer, metrics)  metrics of the epoch (a dict); set trainer.should_stop to stop

A regulariser that keeps state between epochs (a patience counter, running statistics) returns it
from `state_dict()` and takes it back in `load_state_dict(state)`, so that a checkpointed run resumes
exactly. The state is a dict of plain values: numbers, strings, lists, nested dicts and host NumPy
arrays. The default keeps nothing, which is right for a regulariser whose hooks are pure.

`trainer.count(name)` records an event in this batch (e.g. "clipped"); the epoch's metrics then
report `name_rate`, the fraction of batches in which it happened. `trainer.count(name, condition)`
records it where a 0-d boolean array is true (`trainer.count("clipped", norm > limit)`): the trainer
adds the conditions up on the arrays' backend and reads them once per epoch, where branching on the
array (`if norm > limit:`) would make a GPU run wait in every batch. A regulariser lists the events it
may count in `events`, so that their columns exist from the first epoch on.
"""


class Regularizer:
    """Base class: every hook does nothing."""

    events = ()  # names this regulariser may pass to trainer.count()
    needs_validation = False  # True for one that reads the validation loss (early stopping): refused without one

    def on_model_built(self, trainer):
        pass

    def on_optimizer_built(self, trainer):
        pass

    def split_sequence(self, length):
        return None

    def before_batch(self, trainer, batch):
        pass

    def after_backward(self, trainer):
        pass

    def after_step(self, trainer):
        pass

    def on_epoch_end(self, trainer, metrics):
        pass

    def state_dict(self):
        """What this regulariser must remember across a checkpoint; {} when it keeps nothing."""
        return {}

    def load_state_dict(self, state):
        """Take back what `state_dict()` returned (called after the trainer is built)."""

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


Regulariser = Regularizer  # the spelling of earlier releases, kept as an alias
