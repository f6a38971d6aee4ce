"""MLflow: every run in a tracking database, with its settings, curves, results and files.

    rnnrun --cell gru --data sine --log mlflow                    into sqlite:///runs/mlflow.db
    rnnrun --cell gru --data sine --log mlflow:experiment=course  an experiment of that name (default rnnrun)
    rnnrun sweep ... --log mlflow:uri=http://host:5000            a tracking server instead
    mlflow ui --backend-store-uri sqlite:///runs/mlflow.db        browse them

One rnnrun run is one MLflow run (its name the run id), through `mlflow.MlflowClient`:

    params     every resolved setting (cell, data, data_options.T, hidden, lr, regularisers, ...)
    metrics    each epoch's train_loss, val_loss, val_metric, lr, grad_norm_mean, grad_norm_max,
               seconds, *_rate, with the epoch as step (epochs shorter than SEND_EVERY are sent
               together); at the end test_loss, test_metric, baseline (and best_baseline) at the last epoch
    tags       status, cell, data, run_id, plugin_files (and group for a trial)
    artifacts  the run folder's files: config.toml, metrics.csv, summary.json, model.npz, plots

A sweep or tune study is a parent run (tag kind = "sweep" or "tune") and its trials are nested in it
(MLflow's mlflow.parentRunId tag). A resumed run continues its MLflow run. SQLite serialises writers:
for a sweep on many workers, a tracking server (`mlflow server`) is the better store.
"""
import logging
import os
import time

from tinygrad_rnn import Logger, register_logger

STATUS = {"finished": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "interrupted": "KILLED",
          "pruned": "KILLED"}
END_METRICS = ("test_loss", "test_metric", "baseline", "best_baseline")
MAX_PARAM = 6000  # MLflow's longest param value
SEND_EVERY = 2.0  # seconds: epochs shorter than this are sent together (a database write costs ~30 ms of CPU)


@register_logger("mlflow")
class MLflow(Logger):
    """MLflow tracking: params, per-epoch metrics, tags and the run's files; sweeps as nested runs."""

    requires = ("mlflow",)
    extra = "mlflow"

    def __init__(self, uri="", experiment="rnnrun"):
        self.uri, self.experiment = uri, experiment   # uri empty: sqlite:///<runs dir>/mlflow.db
        self.client, self.run_id, self.step, self.logged = None, None, 0, 0  # logged: the last epoch sent
        self.pending, self.sent = [], 0.0   # metrics not yet sent, and when they last were

    # ---- a run -------------------------------------------------------------------------------------
    def start(self, run):
        from mlflow.entities import Param, RunTag
        experiment_id = self._connect(run.runs_dir)
        tags = {"cell": run.config["cell"], "data": run.config["data"], "run_id": run.id, "kind": "run",
                "status": "running", "plugin_files": " ".join(run.plugin_files)}
        if run.group:
            tags["group"] = run.group
            parent = self._group_run(experiment_id, run.group, None)
            if parent:
                tags["mlflow.parentRunId"] = parent
        earlier = self._find(experiment_id, f"tags.run_id = '{run.id}'")
        if earlier:  # a resumed run continues its record
            self.run_id = earlier
            # epochs after the checkpoint were logged before and are trained again, to the same numbers
            # (resuming is exact): they are not sent twice
            self.logged = max((m.step for m in self.client.get_metric_history(earlier, "train_loss")), default=0)
            self.client.update_run(self.run_id, status="RUNNING")
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            return
        self.run_id = self.client.create_run(experiment_id, run_name=run.id, tags=tags).info.run_id
        params = [Param(k, str(v)[:MAX_PARAM]) for k, v in {**run.settings(), "params": run.params}.items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def epoch(self, metrics):
        self.step = int(metrics["epoch"])
        if self.step <= self.logged:
            return
        self.pending += self._metric_list({k: v for k, v in metrics.items() if k != "epoch"}, self.step)
        if time.monotonic() - self.sent >= SEND_EVERY:
            self._send()

    def end(self, summary):
        self.pending += self._metric_list({k: summary[k] for k in END_METRICS if k in summary}, self.step)
        self._send()
        self.client.set_tag(self.run_id, "status", summary.get("status", "unknown"))
        self.status = STATUS.get(summary.get("status"), "FAILED")

    def artifacts(self, paths):
        for path in paths:
            self.client.log_artifact(self.run_id, path)

    def close(self):
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, status=getattr(self, "status", "FINISHED"))

    # ---- a sweep or study: the parent run ----------------------------------------------------------
    def start_group(self, group):
        from mlflow.entities import Param
        experiment_id = self._connect(group.runs_dir)
        self.run_id = self._group_run(experiment_id, group.group, group)
        self.client.update_run(self.run_id, status="RUNNING")
        known = set(self.client.get_run(self.run_id).data.params)
        params = [Param(k, str(v)[:MAX_PARAM]) for k, v in group.flat_settings().items() if k not in known]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def end_group(self, summary):
        counts = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._metrics(counts, 0)
        self.client.set_tag(self.run_id, "status", summary.get("status", "unknown"))
        self.status = STATUS.get(summary.get("status"), "FAILED")

    # ---- helpers -----------------------------------------------------------------------------------
    def _connect(self, runs_dir):
        """The client, and the id of the experiment (made on first use; its files beside the database)."""
        for name in ("alembic", "mlflow"):  # their setup chatter (database migrations) is not the run's
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow import MlflowClient
        uri = self.uri or "sqlite:///" + os.path.join(os.path.abspath(runs_dir), "mlflow.db")
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if uri.startswith("sqlite:///"):
            database = os.path.abspath(uri[len("sqlite:///"):])
            location = "file://" + os.path.join(os.path.dirname(database), "mlartifacts")
        try:
            return self.client.create_experiment(self.experiment, artifact_location=location)
        except Exception:  # another process made it first
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def _find(self, experiment_id, filter_string):
        runs = self.client.search_runs([experiment_id], filter_string=filter_string, max_results=1)
        return runs[0].info.run_id if runs else None

    def _group_run(self, experiment_id, group_name, group):
        """The parent run of a sweep or study: found by its group, made when `group` is given."""
        found = self._find(experiment_id, f"tags.group = '{group_name}' and tags.kind != 'run'")
        if found or group is None:
            return found
        tags = {"group": group.group, "kind": group.kind, "status": "running"}
        return self.client.create_run(experiment_id, run_name=group.id, tags=tags).info.run_id

    def _metrics(self, values, step):
        self.pending += self._metric_list(values, step)
        self._send()

    def _metric_list(self, values, step):
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        return [Metric(k, float(v), now, step) for k, v in values.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)]

    def _send(self):
        for i in range(0, len(self.pending), 1000):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=self.pending[i:i + 1000])
        self.pending, self.sent = [], time.monotonic()

