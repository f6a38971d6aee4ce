"""TensorBoard: a run's curves as event files, its settings and results for the HParams tab.

    rnnrun --cell gru --data sine --log tensorboard             event files in runs/<id>/tb/
    rnnrun --cell gru --data sine --log tensorboard:dir=tb      in tb/<id>/ instead
    tensorboard --logdir runs                                   every run (and sweep trial) side by side

Written with the `tensorboard` package's own event-file writer and summary protos (no TensorFlow):

    every epoch (step = epoch)   loss/train, loss/val, metric/val, lr, grad_norm/mean, grad_norm/max,
                                 seconds, and rate/<event> for each counted event (rate/clipped)
    at the start                 the run's settings in the HParams plugin's format (a session start)
    at the end                   loss/test, metric/test, baseline/test (and best_baseline/test where
                                 the summary has one) at the last epoch, and the session's status

TensorBoard's HParams tab then lists the runs of a sweep as a table of settings against results.
A resumed run writes a new event file in the same folder, from the first epoch not written before.
"""
import glob
import os
import time

from tinygrad_rnn import Logger, register_logger

EPOCH_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "val_metric": "metric/val", "lr": "lr",
              "grad_norm_mean": "grad_norm/mean", "grad_norm_max": "grad_norm/max", "seconds": "seconds"}
END_TAGS = {"test_loss": "loss/test", "test_metric": "metric/test", "baseline": "baseline/test",
            "best_baseline": "best_baseline/test"}
FLUSH_EVERY = 2.0  # seconds between flushes of the event file to disk
STATUS = {"finished": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE", "failed": "STATUS_FAILURE"}


@register_logger("tensorboard")
class TensorBoard(Logger):
    """TensorBoard event files: scalars per epoch, hyper-parameters and results for the HParams tab."""

    requires = ("tensorboard",)
    extra = "tensorboard"

    def __init__(self, dir=""):
        self.dir = dir      # empty: the run's own folder, runs/<id>/tb/
        self.writer, self.step, self.flushed = None, 0, 0.0
        self.written = 0  # the last epoch an earlier attempt of the run wrote (a resumed run)

    def start(self, run):
        from tensorboard.plugins.hparams import summary_v2 as hparams
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        folder = os.path.join(self.dir, run.id) if self.dir else os.path.join(run.path, "tb")
        self.written = _last_epoch_written(folder)
        self.writer = EventFileWriter(folder)
        settings = {k: v for k, v in run.settings().items() if isinstance(v, (bool, int, float, str))}
        self._write(hparams.hparams_pb(settings, trial_id=run.id, start_time_secs=time.time()), step=0)

    def epoch(self, metrics):
        self.step = int(metrics["epoch"])
        if self.step <= self.written:  # trained again after the checkpoint, to the same numbers: written once
            return
        tags = {**EPOCH_TAGS, **{k: "rate/" + k.removesuffix("_rate") for k in metrics if k.endswith("_rate")}}
        self._scalars({tag: metrics[key] for key, tag in tags.items() if key in metrics}, self.step)
        if time.monotonic() - self.flushed >= FLUSH_EVERY:  # a TensorBoard open on the run shows it soon
            self.writer.flush()
            self.flushed = time.monotonic()

    def end(self, summary):
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        self._scalars({tag: summary[key] for key, tag in END_TAGS.items()
                       if isinstance(summary.get(key), (int, float))}, self.step)
        status = getattr(api_pb2, STATUS.get(summary.get("status"), "STATUS_UNKNOWN"))
        ended = plugin_data_pb2.HParamsPluginData(
            session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time()))
        record = Summary()
        record.value.add(tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(ended),
                         tensor=metadata.NULL_TENSOR)
        self._write(record, self.step)

    def close(self):
        if self.writer is not None:
            self.writer.close()

    def _scalars(self, values, step):
        from tensorboard.compat.proto.summary_pb2 import Summary
        # simple_value: the scalar record every TensorBoard reader knows (tensorboardX and PyTorch write it too)
        self._write(Summary(value=[Summary.Value(tag=tag, simple_value=float(value)) for tag, value in values.items()]),
                    step)

    def _write(self, summary, step):
        from tensorboard.compat.proto.event_pb2 import Event
        self.writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))


def _last_epoch_written(folder):
    """The last epoch the event files already in `folder` hold (0 where there are none)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    epochs = [event.step for name in glob.glob(os.path.join(folder, "events.out.tfevents.*"))
              for event in EventFileLoader(name).Load()
              if any(value.tag == EPOCH_TAGS["train_loss"] for value in event.summary.value)]
    return max(epochs, default=0)
