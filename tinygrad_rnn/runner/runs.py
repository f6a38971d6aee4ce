"""The run store: one folder per run, files written so that nothing a user has is ever half-written.

    runs/20261123-142501-gru-sine/
        config.toml    the complete resolved config (rnnrun --config this-file repeats the run)
        metrics.csv    one row per epoch, appended and flushed as training goes
        summary.json   final results, status ("finished", "interrupted", "diverged", "failed")
        model.npz      the best weights (the last ones if the run was interrupted)
        loss.png, forecast.png   plots, where matplotlib is installed
"""
import csv
import datetime
import io
import json
import os
import tempfile

import numpy as np
import tomli_w

from ..errors import ConfigError


def atomic_write(path, data, mode="w"):
    """Write to a temporary file beside `path`, then rename: readers see the old file or the new one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plain(value):
    """TOML has no None and no NumPy scalars: drop the former, convert the latter."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_json(path):
    """A JSON file's contents, or {} where it has not been written (yet)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


class Run:
    """One run's folder."""

    def __init__(self, path):
        self.path = path
        self.id = os.path.basename(os.path.normpath(path))
        self._metric_fields = None

    def file(self, name):
        return os.path.join(self.path, name)

    def write_config(self, config):
        atomic_write(self.file("config.toml"), tomli_w.dumps(plain(config)))

    def append_metrics(self, row):
        """Append one epoch's row to metrics.csv (header on the first), flushed to disk at once."""
        path = self.file("metrics.csv")
        if self._metric_fields is None:
            self._metric_fields = list(row)
            atomic_write(path, ",".join(self._metric_fields) + "\n")
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, self._metric_fields, extrasaction="ignore").writerow(
                {k: row.get(k, "") for k in self._metric_fields})
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary):
        atomic_write(self.file("summary.json"), json.dumps(plain(summary), indent=2) + "\n")

    def save_weights(self, state):
        buffer = io.BytesIO()
        np.savez(buffer, **state)
        atomic_write(self.file("model.npz"), buffer.getvalue(), mode="wb")

    # ---- reading back ---------------------------------------------------------------------------------
    def config(self):
        import tomllib
        with open(self.file("config.toml"), "rb") as f:
            return tomllib.load(f)

    def summary(self):
        return read_json(self.file("summary.json"))

    def metrics(self):
        try:
            with open(self.file("metrics.csv"), newline="") as f:
                return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
        except FileNotFoundError:
            return []

    def weights(self):
        with np.load(self.file("model.npz")) as data:
            return {k: data[k] for k in data.files}


class RunStore:
    """The runs directory (default ./runs)."""

    def __init__(self, root="runs"):
        self.root = root

    def create(self, cell, data, group=None):
        """A new, uniquely named run folder: <timestamp>-<cell>-<data>[-n]."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = os.path.join(self.root, group or "", f"{stamp}-{slug(cell)}-{slug(data)}")
        os.makedirs(os.path.dirname(base), exist_ok=True)
        path, n = base, 1
        while True:
            try:
                os.makedirs(path)
                return Run(path)
            except FileExistsError:
                n += 1
                path = f"{base}-{n}"

    def runs(self):
        """Every run (folders holding a config.toml), oldest first, sweeps' trials included."""
        found = []
        if not os.path.isdir(self.root):
            return found
        for folder, _, files in os.walk(self.root):
            if "config.toml" in files:
                found.append(Run(folder))
        return sorted(found, key=lambda r: (os.path.getmtime(r.file("config.toml")), r.id))

    def get(self, run_id):
        """A run by id, by unique id prefix, by path, or 'last'."""
        if os.path.isfile(os.path.join(run_id, "config.toml")):
            return Run(run_id)
        runs = self.runs()
        if run_id == "last" and runs:
            return runs[-1]
        matches = [r for r in runs if r.id == run_id] or [r for r in runs if r.id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            recent = ", ".join(r.id for r in runs[-5:]) or "none yet"
            raise ConfigError(f"no run {run_id!r} in {self.root}; recent runs: {recent} (see `rnnrun runs`)")
        raise ConfigError(f"run id {run_id!r} is ambiguous: {', '.join(r.id for r in matches[:5])}")


def slug(text):
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in str(text))[:40]


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text
