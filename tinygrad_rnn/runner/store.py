"""The run store: one folder per run, files written so that nothing a user has is ever half-written.

    runs/20261123-142501-gru-sine/
        config.toml      the complete resolved config (rnnrun --config this-file repeats the run)
        summary.json     the status, written at the start and after every epoch (a heartbeat), then the results
        metrics.csv      one row per epoch, appended and flushed as training goes
        checkpoint.npz   everything the next epoch needs (rnnrun resume RUN continues from it)
        model.npz        the best weights (the last ones if the run was interrupted)
        loss.png, forecast.png   plots, where matplotlib is installed

A run's status is a plain string in summary.json: "running", "finished", "interrupted" (Ctrl-C,
SIGTERM or SIGHUP), "diverged", "failed" (with its one-line reason in "message"), "pruned" (stopped
early by `rnnrun tune`'s pruner; `rnnrun resume` can train it on), or what a plugin
command writes there. "killed" is never written: a run whose summary says "running" but whose
process (pid and host recorded at the start, a heartbeat every epoch) is gone was killed, and
`Run.status()` says so when the run is read.

Every file is written whole (a temporary file, then a rename) except metrics.csv, which grows by
flushed rows. Each reader checks what it reads: a file that is missing, truncated or foreign raises
`DamagedRun` naming the file, so that one broken run never hides the others.
"""
import csv
import datetime
import hashlib
import io
import json
import os
import re
import socket
import sys
import tempfile
import time
import zipfile
import zlib

import numpy as np
import tomli_w

from ..errors import ConfigError, TinygradRNNError

FILES = ("config.toml", "summary.json", "metrics.csv", "model.npz", "checkpoint.npz")
CHECKPOINT = "checkpoint.npz"
PREPROCESSING = "preprocessing.json"   # a run's fitted preprocessing, where its dataset has one
REQUIRED_SETTINGS = ("cell", "data", "hidden", "layers", "epochs", "batch_size", "lr", "seed")  # in every config.toml
RUN_NAME = re.compile(r"\d{8}-\d{6}-")  # how RunStore.create names a run folder: <timestamp>-<cell>-<data>
HEARTBEAT_SECONDS = 30  # a running run rewrites its summary at least this often (between batches)
STALE_SECONDS = 600     # a run on another host with no heartbeat for this long is gone


class DamagedRun(TinygradRNNError):
    """A run file that is missing, unreadable or not what the run wrote (exit 1, one line)."""

    def __init__(self, run, name, reason):
        self.run_id, self.name, self.reason = run.id, name, reason
        super().__init__(f"run {run.id} is damaged: {name}: {reason} ({run.file(name)})")


def _file_mode():
    """The mode a new file gets from open(): 0666 less the umask (mkstemp's 0600 would hide run
    files from the others sharing a folder). Read once: os.umask can only be read by setting it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def atomic_write(path, data, mode="w", durable=True):
    """Write to a temporary file beside `path`, then rename: readers see the old file or the new one.

    `durable`: fsync before the rename, so that the new file survives a crash of the machine too (a
    killed process loses nothing either way); a heartbeat, rewritten every epoch, can skip it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            if durable:
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


# ---- the process that runs a run: is it still there? ----------------------------------------------
def process_identity():
    """{"pid", "host", "pid_start"} of this process; pid_start (Linux) tells a reused pid apart. In a Dask
    worker, "worker" too: its address, which the scheduler can say is gone wherever the worker ran."""
    identity = {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _start_time(os.getpid())}
    worker = dask_worker_address()
    if worker:
        identity["worker"] = worker
    return identity


def dask_worker_address():
    """The address of the Dask worker this code runs in, or None (not in one, or no Dask at all)."""
    if "distributed" not in sys.modules:  # never import Dask just to ask
        return None
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError, AttributeError):  # ValueError: not in a worker
        return None


def _start_time(pid):
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])  # a zombie has exited already


def process_alive(summary, live_workers=None):
    """Whether the process that wrote this "running" summary may still be running it.

    `live_workers`: the addresses of the Dask workers the scheduler knows now (None: not asked). A run
    whose worker is not among them is gone, on whatever host it ran."""
    if live_workers is not None and summary.get("worker") and summary["worker"] not in live_workers:
        return False
    if summary.get("host") != socket.gethostname():  # no way to ask another machine: trust the heartbeat
        quiet = time.time() - float(summary.get("last_seen") or 0)
        return quiet < STALE_SECONDS
    pid = summary.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    if not os.path.isdir("/proc/self"):  # no /proc (macOS): the pid answering is all we know
        return True
    start = _start_time(pid)
    if start is None:  # exited, not yet reaped (a zombie)
        return False
    recorded = summary.get("pid_start")
    return recorded is None or recorded == start


# ---- one run ---------------------------------------------------------------------------------------
class Run:
    """One run's folder."""

    def __init__(self, path):
        self.path = path
        self.id = os.path.basename(os.path.normpath(path))
        self._metric_fields = None

    def file(self, name):
        return os.path.join(self.path, name)

    def resume_command(self):
        return f"rnnrun resume {self.id}"

    # ---- writing ------------------------------------------------------------------------------------
    def write_config(self, config):
        atomic_write(self.file("config.toml"), tomli_w.dumps(plain(config)))

    def append_metrics(self, row):
        """Append one epoch's row to metrics.csv (header on the first), flushed to disk at once."""
        path = self.file("metrics.csv")
        if self._metric_fields is None:
            self._metric_fields = list(row)
            atomic_write(path, ",".join(self._metric_fields) + "\n")
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, self._metric_fields, extrasaction="ignore", lineterminator="\n").writerow(
                {k: row.get(k, "") for k in self._metric_fields})
            f.flush()
            os.fsync(f.fileno())

    def write_metrics(self, rows):
        """metrics.csv holding exactly `rows` (a resumed run's history up to its checkpoint); later
        rows are appended by `append_metrics` with the same columns."""
        self._metric_fields = list(rows[0]) if rows else None
        if not rows:
            if os.path.exists(self.file("metrics.csv")):
                os.unlink(self.file("metrics.csv"))
            return
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, self._metric_fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in self._metric_fields} for row in rows)
        atomic_write(self.file("metrics.csv"), text.getvalue())

    def write_summary(self, summary, durable=True):
        atomic_write(self.file("summary.json"), json.dumps(plain(summary), indent=2) + "\n", durable=durable)

    def save_weights(self, state):
        buffer = io.BytesIO()
        np.savez(buffer, **state)
        atomic_write(self.file("model.npz"), buffer.getvalue(), mode="wb")

    def save_checkpoint(self, state):
        """Write a trainer's `state_dict()` (nested dicts and lists of plain values and arrays) as one
        .npz: every array by itself, the rest as JSON in the array `__state__`, arrays referred to by key."""
        arrays = {}
        doc = json.dumps(_pack(state, arrays))
        buffer = io.BytesIO()
        np.savez(buffer, __state__=np.array(doc), **arrays)
        atomic_write(self.file(CHECKPOINT), buffer.getvalue(), mode="wb")

    # ---- reading back (each reader raises DamagedRun naming the file) -------------------------------
    def config(self):
        from .config import tomllib  # tomllib, or tomli on Python 3.10
        text = self._read("config.toml", "rb")
        try:
            config = tomllib.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise DamagedRun(self, "config.toml", f"not valid TOML ({_first_line(e)})") from None
        if not isinstance(config.get("cell"), str) or not isinstance(config.get("data"), str):
            raise DamagedRun(self, "config.toml", "no cell and data settings: not a run's config")
        missing = [k for k in REQUIRED_SETTINGS if k not in config]
        if missing:
            raise DamagedRun(self, "config.toml", f"settings missing: {', '.join(missing)}")
        return config

    def summary(self):
        text = self._read("summary.json", "rb")
        try:
            summary = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise DamagedRun(self, "summary.json", f"not valid JSON ({_first_line(e)})") from None
        if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
            raise DamagedRun(self, "summary.json", "no status: not a run's summary")
        return summary

    def metrics(self):
        """One dict per epoch; [] before the first epoch has ended."""
        if not os.path.exists(self.file("metrics.csv")):
            if self._epochs_recorded():
                raise DamagedRun(self, "metrics.csv", "missing")
            return []
        text = self._read("metrics.csv", "rb")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DamagedRun(self, "metrics.csv", "not text") from None
        if text and not text.endswith("\n"):
            raise DamagedRun(self, "metrics.csv", "truncated (the last line is incomplete)")
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header or header[0] != "epoch":
            raise DamagedRun(self, "metrics.csv", "no header starting with 'epoch'")
        rows = []
        for number, fields in enumerate(reader, start=2):
            if len(fields) != len(header):
                raise DamagedRun(self, "metrics.csv", f"line {number} has {len(fields)} fields, the header "
                                                      f"{len(header)}")
            row = {k: _number(v) for k, v in zip(header, fields)}
            if row["epoch"] != len(rows) + 1:
                raise DamagedRun(self, "metrics.csv", f"line {number} is epoch {row['epoch']!r}, "
                                                      f"expected {len(rows) + 1}")
            rows.append(row)
        if len(rows) < self._epochs_recorded():
            raise DamagedRun(self, "metrics.csv", f"{len(rows)} epochs, summary.json records "
                                                  f"{self._epochs_recorded()}")
        return rows

    def weights(self):
        """The saved weights {name: array}, never unpickled."""
        return self._load_npz("model.npz")

    def load_weights_into(self, model):
        """model.load_state_dict(weights), or DamagedRun if model.npz is not this run's model."""
        weights = self.weights()
        try:
            model.load_state_dict(weights)
        except (ConfigError, ValueError) as e:
            raise DamagedRun(self, "model.npz", f"does not fit the model of config.toml ({_first_line(e)})") from None
        return model

    def has_checkpoint(self):
        return os.path.exists(self.file(CHECKPOINT))

    def checkpoint(self):
        """What `save_checkpoint` wrote, arrays back in place."""
        data = self._load_npz(CHECKPOINT)
        try:
            doc = json.loads(str(data.pop("__state__")[()]))
            return _unpack(doc, data)
        except (KeyError, ValueError, TypeError) as e:
            raise DamagedRun(self, CHECKPOINT, f"not a checkpoint of this program ({_first_line(e)})") from None

    def status(self, live_workers=None):
        """The run's status as it is now: "killed" where summary.json says running but its process is gone
        (see process_alive; `live_workers` are the Dask workers the scheduler knows, where asked)."""
        summary = self.summary()
        if summary["status"] == "running" and not process_alive(summary, live_workers):
            return "killed"
        return summary["status"]

    def verify(self):
        """Read every file of the run back; DamagedRun names the first that does not read, or that is
        not what this run wrote (weights of another model, a checkpoint that was deleted)."""
        self.config()
        summary = self.summary()
        self.metrics()
        signature = summary.get("weights_signature")  # the model's names and shapes (older runs lack it)
        checkpoint = None
        if self.has_checkpoint():
            checkpoint = self.checkpoint()
            model = checkpoint.get("model")
            if signature and (not isinstance(model, dict) or weights_signature(model) != signature):
                raise DamagedRun(self, CHECKPOINT, "not this run's: its model is another one than summary.json records")
        elif isinstance(summary.get("checkpoint_epoch"), int):  # it wrote one (older runs did not record it)
            raise DamagedRun(self, CHECKPOINT, f"missing (the run wrote one after epoch {summary['checkpoint_epoch']})")
        if summary["status"] == "finished" or os.path.exists(self.file("model.npz")):
            weights = self.weights()
            if signature and weights_signature(weights) != signature:
                raise DamagedRun(self, "model.npz", "not this run's model: its arrays are not the ones summary.json "
                                                    "records")
            if not signature and isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict) \
                    and weights_signature(weights) != weights_signature(checkpoint["model"]):
                raise DamagedRun(self, "model.npz", "not this run's model, or checkpoint.npz is not: they hold "
                                                    "different arrays")
        preprocessing = self.preprocessing()
        if preprocessing is None and summary.get("has_preprocessing"):
            raise DamagedRun(self, PREPROCESSING, "missing (the run wrote one; `rnnrun predict` needs it)")
        if preprocessing is not None:
            self._check_fits_its_dataset(preprocessing)
        return self

    def restore_preprocessing(self, dataset, data_name, preprocessing):
        """`dataset.restore(preprocessing)`, as `rnnrun predict` does before it predicts. A file that is
        valid JSON but not what the dataset wrote (a key missing, a value of the wrong type) is
        DamagedRun naming preprocessing.json, the same line for `rnnrun runs` and `rnnrun predict`."""
        try:
            dataset.restore(preprocessing)
        except TinygradRNNError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:  # the file, not the plugin
            raise DamagedRun(self, PREPROCESSING, f"does not fit dataset {data_name!r} "
                                                  f"({type(e).__name__}: {e}); not what the run wrote") from None
        return dataset

    def _check_fits_its_dataset(self, preprocessing):
        """preprocessing.json restored into a fresh instance of the run's dataset. A dataset that is not
        registered here (its plugin not loaded) or whose options no longer construct is not judged:
        those are config.toml's to answer for, and every command that builds the run names them."""
        from ..registry import datasets
        from .config import construct
        config = self.config()
        name, options = config.get("data"), config.get("data_options", {})
        if not isinstance(name, str) or name not in datasets or not isinstance(options, dict):
            return
        try:
            dataset = construct(datasets.get(name), "dataset", name, options, seed=config.get("seed", 0))
        except Exception:  # noqa: BLE001  (a plugin's constructor: judged where the run is built)
            return
        try:
            self.restore_preprocessing(dataset, name, preprocessing)
        except DamagedRun:
            raise
        except Exception:  # noqa: BLE001  (a fault of the plugin, not of the file: predict names it)
            return

    def preprocessing(self):
        """What the run's dataset fitted (preprocessing.json, written by datasets read from a user's
        file), or None where there is none."""
        if not os.path.exists(self.file(PREPROCESSING)):
            return None
        text = self._read(PREPROCESSING, "rb")
        try:
            doc = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise DamagedRun(self, PREPROCESSING, f"not valid JSON ({_first_line(e)})") from None
        if not isinstance(doc, dict) or not doc:
            raise DamagedRun(self, PREPROCESSING, "not a JSON object of fitted values: not what the run wrote")
        return doc

    def check(self):
        """None if every file of the run reads back, else "FILE: reason" of the first that does not."""
        try:
            self.verify()
        except DamagedRun as e:
            return f"{e.name}: {e.reason}"
        return None

    def checked_status(self, live_workers=None):
        """What `rnnrun runs` lists and the Python API's `Run.status` says: `damaged (FILE: reason)`
        where a file does not read back (verify's one line, as every command that reads the run says
        it), else status()."""
        problem = self.check()
        return f"damaged ({problem})" if problem else self.status(live_workers)

    # ---- helpers --------------------------------------------------------------------------------------
    def _read(self, name, mode):
        try:
            with open(self.file(name), mode) as f:
                return f.read()
        except FileNotFoundError:
            raise DamagedRun(self, name, "missing") from None
        except OSError as e:
            raise DamagedRun(self, name, f"unreadable ({e.strerror or type(e).__name__})") from None

    def _load_npz(self, name):
        if not os.path.exists(self.file(name)):
            raise DamagedRun(self, name, "missing")
        try:  # every array is read, so that a zip's CRC check catches a damaged member too
            with np.load(self.file(name), allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise DamagedRun(self, name, f"not a readable .npz ({_first_line(e)})") from None

    def _epochs_recorded(self):
        """The epochs summary.json says are done (0 where it cannot tell)."""
        try:
            summary = self.summary()
        except DamagedRun:
            return 0
        epochs = summary.get("epochs_done", summary.get("epochs") if summary["status"] == "finished" else 0)
        return epochs if isinstance(epochs, int) else 0


def weights_signature(weights):
    """A short fingerprint of a model's parameter names and shapes ({name: array or shape}): two files
    of the same model agree, weights of another model (or not of a model at all) do not."""
    shapes = sorted((str(name), [int(n) for n in (value if isinstance(value, tuple) else np.shape(value))])
                    for name, value in weights.items())
    return hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16]


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _pack(value, arrays):
    """JSON-able `value` with every array (and NumPy scalar, to keep its dtype) moved into `arrays`."""
    if isinstance(value, (np.ndarray, np.generic)):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"__array__": key, "scalar": isinstance(value, np.generic)}
    if isinstance(value, dict):
        return {str(k): _pack(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, arrays) for v in value]
    return value


def _unpack(value, arrays):
    if isinstance(value, dict):
        if "__array__" in value:
            array = arrays[value["__array__"]]
            return array[()] if value.get("scalar") else array
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


# ---- the runs directory ------------------------------------------------------------------------------
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
        """Every run, damaged ones included, oldest first, sweeps' trials included.

        A run folder holds config.toml, or two of the other run files (so that a run whose config was
        lost is still listed, as damaged); a sweep's own folder (sweep.toml) is not a run."""
        found = []
        if not os.path.isdir(self.root):
            return found
        unreadable = []  # folders os.walk cannot list (chmod 000): shown as damaged, never left out
        for folder, subfolders, files in os.walk(self.root, onerror=unreadable.append):
            present = set(files) & set(FILES)
            empty_run = not files and not subfolders and RUN_NAME.match(os.path.basename(folder))
            if "sweep.toml" not in files and ("config.toml" in present or len(present) >= 2 or empty_run):
                found.append(Run(folder))
        found += [Run(error.filename) for error in unreadable
                  if error.filename and os.path.normpath(error.filename) != os.path.normpath(self.root)]
        return sorted(found, key=lambda r: (_mtime(r), r.id))

    def get(self, run_id):
        """A run by id, by unique id prefix, by path, or 'last'."""
        if os.path.isdir(run_id) and any(os.path.exists(os.path.join(run_id, f)) for f in FILES):
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
        shown = ", ".join(r.id for r in matches[:5]) + (", …" if len(matches) > 5 else "")
        raise ConfigError(f"run id {run_id!r} is ambiguous: {len(matches)} runs match ({shown}); "
                          "give more of the id")


def _mtime(run):
    """When the run started: its config.toml's time (its folder's if that is lost)."""
    for path in (run.file("config.toml"), run.path):
        try:
            return os.path.getmtime(path)
        except OSError:
            pass
    return 0.0


def slug(text):
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in str(text))[:40]


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text
