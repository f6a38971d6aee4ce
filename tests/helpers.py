"""Small datasets and builders shared by the trainer, regulariser and CLI tests."""
import contextlib
import io
import os
import re

import numpy as np
from click.testing import CliRunner

from tinygrad_rnn import registry
from tinygrad_rnn.data import Dataset, Split
from tinygrad_rnn.runner.cli import cli, main

# Options that make each built-in dataset small enough for a test (only those a dataset has are used).
SMALL = {"sine": {"n_train": 40}, "adding": {"T": 10, "n_train": 40}, "copy": {"T": 6, "n_train": 40},
         "agreement": {"T": 8, "n_train": 40}, "sentiment": {"n_train": 40}, "addition": {"n_train": 40},
         "tagging": {"T": 10, "n_train": 40}, "captions": {"n_train": 40}, "trajectory": {"n_train": 40},
         "stock": {"T": 10, "days": 400}, "heartbeat": {"n_train": 40}, "text": {"T": 20, "chars": 20_000},
         "csv": {"path": os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugins",
                                      "datasets", "data", "airline_passengers_1949_1960.csv"),
                 "target": "passengers", "time": "month"}}


@contextlib.contextmanager
def restored_registry():
    """Plugins registered inside the block are forgotten after it, as they would be by a new process."""
    registry.discover()  # the built-in plugins are part of what is kept
    tables = (registry.cells, registry.datasets, registry.regularisers, registry.optimizers, registry.loggers)
    saved = [dict(t._entries) for t in tables]
    try:
        yield
    finally:
        for t, entries in zip(tables, saved):
            t._entries = entries


def load_example_cells():
    """mgu from the README's my_plugins.py (as a user copies it) and indrnn from examples/, as plugin cells."""
    import tinygrad_rnn as tg
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md")).read()
    source = re.search(r"```python\n(# my_plugins.py\n.*?)```", text, re.S).group(1)
    if "mgu" not in registry.cells:  # another test may have loaded the README's file already
        exec(compile(source, "my_plugins.py", "exec"), {"__name__": "my_plugins"})
    if "indrnn" not in registry.cells:
        tg.load_plugin(os.path.join(root, "examples", "indrnn_cell.py"))


def small_spec(name):
    """'adding:T=10,n_train=40': the dataset at test size, as the command line takes it."""
    options = {k: v for k, v in SMALL.get(name, {}).items() if k in registry.datasets.options(name)}
    return name + (":" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")


class EchoDataset(Dataset):
    """Per-step regression: y_t = x_{t-1} (a one-step memory), for exact BPTT checks."""

    kind, problem = "seq2seq", "regression"
    defaults = {"hidden": 8, "epochs": 2, "lr": 0.01, "batch_size": 8}

    def __init__(self, seed=0, T=12, n=16, lengths=False):
        super().__init__(seed)
        self.T, self.n, self.with_lengths = T, n, lengths
        self.input_size = self.output_size = 1

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.n, self.T, 1)).astype(np.float32)
        y = np.concatenate([np.zeros((self.n, 1, 1), np.float32), x[:, :-1]], axis=1)
        lengths = rng.integers(self.T // 2, self.T + 1, self.n) if self.with_lengths else None
        if lengths is not None:
            lengths[0] = self.T
            x = x * (np.arange(self.T)[None, :, None] < lengths[:, None, None])
        split = Split(x, y, lengths)
        return {"train": split, "val": split, "test": split}

    def baseline(self, split):
        return float(np.sqrt(np.mean(split.y ** 2)))


def rnnrun(*args, env=None):
    """`rnnrun ARGS` in-process through click's CliRunner: a Result (exit_code, stdout, stderr). An
    exception the command line does not turn into an exit code propagates, so a traceback fails the test."""
    return CliRunner(env=env).invoke(cli, [str(a) for a in args], prog_name="rnnrun", catch_exceptions=False)


def console_script(*args):
    """(exit code, stdout, stderr) of the console script's main(ARGS), which exits as the installed
    `rnnrun` does (worker processes and signal handling included)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()
