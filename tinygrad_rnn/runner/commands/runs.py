"""`rnnrun runs`, `show`, `compare` and `forecast`: finding past runs again and using them.

    rnnrun runs                      every run in ./runs, oldest first
    rnnrun show last                 a run's config, per-epoch metrics and results
    rnnrun compare RUN RUN ...       runs side by side
    rnnrun forecast RUN --steps 50   a time-series model fed its own predictions
"""
import datetime

import click
import numpy as np
from rich.table import Table

from .. import options as shared
from ..app import run_config, store_for
from ..config import MAX_FORECAST_STEPS, data_label
from ..output import console, print_json
from ..store import DamagedRun
from ...errors import ConfigError, DivergedError
from ...registry import datasets


@click.command("runs")
@shared.runs_dir()
@click.option("--sweep", default=None, help="Only the trials of this sweep.")
@shared.as_json(help="Print JSON instead of a table.")
@click.pass_context
def list_runs(ctx, runs_dir, sweep, as_json):
    """Past runs: id, cell, data, key settings, best validation metric, status, time.

    A run whose process is gone without a word is `killed`; a run with a file that is missing or
    unreadable is `damaged (FILE: reason)`, and the others are listed as usual."""
    from ..report import fmt
    store = store_for(ctx, runs_dir)
    runs = store.runs()
    if sweep:
        from ..sweeper import sweep_runs
        runs = sweep_runs(store, sweep)
    rows = [run_row(run) for run in runs]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console().print(f"no runs in {store.root} yet: try rnnrun --cell gru --data sine")
        return
    out = console()
    # the id is what users copy into the next command: never cut. On a narrow terminal the table keeps
    # the columns that tell runs apart; the others wrap. Long statuses are spelt out below the table.
    narrow = out.width < 120
    columns = ["cell", "data"] + ([] if narrow else ["settings", "metric"]) + ["best val", "test", "status"] \
        + ([] if narrow else ["s"])
    table = Table(title=f"Runs in {store.root}", title_justify="left")
    table.add_column("id", no_wrap=True, min_width=max(len(r["id"]) for r in rows))
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in rows:
        cells = {"cell": r["cell"] or "", "data": r["data"] or "", "settings": r["settings"],
                 "metric": r["metric"] or "", "best val": fmt(r["val_metric"]), "test": fmt(r["test_metric"]),
                 "s": fmt(r["seconds"], 3), "status": r["status"].split(" (")[0]}
        table.add_row(r["id"], *(cells[c] for c in columns))
    longest = max(len(r["id"]) for r in rows)
    if longest + 40 > out.width:  # no room for a table beside ids this long: one line per run
        for r in rows:
            out.print(f"{r['id']}  {r['status'].split(' (')[0]}  {r['cell'] or ''} on {r['data'] or ''}  "
                      f"best val {fmt(r['val_metric'])}  test {fmt(r['test_metric'])}", soft_wrap=True)
    else:
        out.print(table)
    for r in rows:
        if r["status"].startswith("damaged"):
            out.print(f"{r['id']}: {r['status']}", soft_wrap=True)
        elif r.get("resume"):
            out.print(f"{r['id']} is {r['status']}: continue it with {r['resume']}", soft_wrap=True)


def run_row(run):
    """One line of `rnnrun runs` (and its --json): a damaged run keeps what can still be read."""
    row = {"id": run.id, "path": run.path, "cell": None, "data": None, "settings": "", "metric": None,
           "val_metric": None, "test_metric": None, "status": None, "seconds": None, "resume": None}
    row["status"] = run.checked_status()
    for read in (_config_part, _summary_part):
        try:
            row.update(read(run))
        except DamagedRun:
            pass
    if row["status"] in RESUMABLE and run.has_checkpoint():
        row["resume"] = run.resume_command()
    return row


RESUMABLE = ("killed", "interrupted", "failed")


def _config_part(run):
    c = run.config()
    return {"cell": c.get("cell"), "data": data_label(c), "settings": settings_text(c)}


def _summary_part(run):
    s = run.summary()
    return {"metric": s.get("metric"), "val_metric": s.get("val_metric"), "test_metric": s.get("test_metric"),
            "seconds": s.get("seconds")}


def settings_text(config):
    parts = [f"h={config.get('hidden')}", f"L={config.get('layers')}", f"lr={config.get('lr')}"]
    if config.get("bidirectional"):
        parts.append("bi")
    parts += [r["name"] for r in config.get("regularisers", [])]
    return " ".join(parts)


@click.command("show")
@click.argument("run_id", metavar="RUN")
@shared.runs_dir()
@shared.as_json(help="Print JSON instead of a table.")
@click.pass_context
def show(ctx, run_id, runs_dir, as_json):
    """A run's config, per-epoch metrics and final results (RUN: id, id prefix, path or 'last')."""
    from ..report import breakdown_tables, dict_table, rows_table
    run = store_for(ctx, runs_dir).get(run_id).verify()  # a damaged file: one line naming it, exit 1
    config, metrics, summary = run.config(), run.metrics(), run.summary()
    summary["status"] = run.status()
    if summary["status"] == "killed":
        summary["message"] = "its process is gone (killed without a word: out of memory, a closed laptop, SIGKILL)"
    if "last_seen" in summary:  # a running (or killed) run's last sign of life, as a time people read
        summary["last_seen"] = datetime.datetime.fromtimestamp(summary["last_seen"]).isoformat(timespec="seconds")
    summary.pop("pid_start", None)
    if as_json:
        print_json({"config": config, "metrics": metrics, "summary": summary})
        return
    out = console()
    flat = {k: v for k, v in config.items() if k != "meta"}
    out.print(dict_table(f"Run {run.id}: config", flat))
    if metrics:
        labels = {"epoch": "epoch", "train_loss": "train loss", "val_loss": "val loss",
                  "val_metric": f"val {summary.get('metric', 'metric')}", "grad_norm_mean": "grad mean",
                  "grad_norm_max": "grad max", "clipped_rate": "clipped", "lr": "lr", "seconds": "s"}
        columns = {c: label for c, label in labels.items() if c in metrics[0]}
        out.print(rows_table("Per-epoch metrics", metrics, columns))
    shown_apart = ("val_losses", "test_metric_per_step", "test_per_class", "test_confusion", "baselines")
    out.print(dict_table("Results", {k: v for k, v in summary.items() if k not in shown_apart}))
    for table in breakdown_tables(summary):
        out.print(table)
    if summary["status"] in RESUMABLE and run.has_checkpoint():
        out.print(f"{run.id} is {summary['status']}: continue it with {run.resume_command()}", soft_wrap=True)


@click.command("compare")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN...")
@shared.runs_dir()
@shared.as_json(help="Print the tables as one JSON document.")
@click.pass_context
def compare(ctx, run_ids, runs_dir, as_json):
    """Several runs side by side. Only comparable runs are ranked together: runs whose data (dataset, any
    option, a file's SHA-256) or metric differ go in separate tables. ★ marks the best on validation."""
    from ..comparable import comparison_key, differing_settings
    from ..report import results_table
    store = store_for(ctx, runs_dir)
    groups = {}
    for run_id in run_ids:
        run = store.get(run_id).verify()
        summary, config = run.summary(), run.config()
        summary.setdefault("cell", config.get("cell"))
        summary.setdefault("data", config.get("data"))
        summary["status"] = run.status()
        summary["run_id"] = run.id
        groups.setdefault(comparison_key(config, summary), []).append((summary, config))
    tables = []
    for (spec, metric), members in groups.items():
        summaries = [s for s, _ in members]
        differing = differing_settings([c for _, c in members])
        best = _best_index(summaries)
        tables.append({"data": spec, "label": data_label(members[0][1]), "metric": metric or "metric",
                       "differing": sorted(differing),
                       "best": summaries[best]["run_id"] if best is not None and len(summaries) > 1 else None,
                       "runs": [{"run_id": s["run_id"], "cell": s.get("cell"),
                                 "settings": {k: v[i] for k, v in differing.items()},
                                 **{k: s.get(k) for k in COMPARED}} for i, s in enumerate(summaries)]})
    if as_json:
        print_json({"chosen_on": "validation", "tables": tables})
        return
    out = console()
    for table, members in zip(tables, groups.values()):
        summaries = [{**summary, "cell": f"{summary['cell']} ({summary['run_id']})"} for summary, _ in members]
        settings = {k: [_short(row["settings"][k]) for row in table["runs"]] for k in table["differing"] if k != "cell"}
        # tables name the data as runs do (a csv run: its file and options); two alike in name: a file that
        # changed between the runs, told apart by its SHA-256
        alike = sum(t["label"] == table["label"] and t["metric"] == table["metric"] for t in tables) > 1
        sha256 = (members[0][1].get("data_options") or {}).get("sha256")
        data = f"{table['label']}, file SHA-256 {sha256[:12]}…" if alike and sha256 else \
            table["data"] if alike else table["label"]
        title = "Comparison" if len(tables) == 1 else f"Comparison on {data} ({table['metric']})"
        out.print(results_table(summaries, title=title, settings=settings))
    if len(tables) > 1:
        out.print(f"[dim]{len(tables)} tables: runs on different data (dataset, options or file) or metrics are "
                  "not ranked against each other[/]", soft_wrap=True)


# what compare --json gives of each run
COMPARED = ("status", "data", "metric", "higher_is_better", "params", "epochs", "best_epoch", "val_loss", "val_metric",
            "test_loss", "test_metric", "baseline", "baseline_name", "baselines", "best_baseline", "seconds")


def _best_index(summaries):
    from ..report import _best_index as best
    return best(summaries)


def _short(value):
    """A setting as a table cell: numbers as they are, long text (a path, a spec) cut to 24 characters."""
    if not isinstance(value, str) and not isinstance(value, (dict, list)):
        return value
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "…"


def _forecasts(dataset):
    """Whether a dataset (class or instance) forecasts: a time series, or one that runs its own free run (csv)."""
    from ...data import Dataset
    cls = dataset if isinstance(dataset, type) else type(dataset)
    return cls.forecastable or cls.free_run is not Dataset.free_run


@click.command("forecast")
@click.argument("run_id", metavar="RUN")
@click.option("--steps", default=50, show_default=True, type=click.IntRange(1, MAX_FORECAST_STEPS),
              help="Steps to generate.")
@click.option("--from", "source", type=click.Choice(["data", "zeros"]), default="data", show_default=True,
              help="Start from the last real window or from all zeros.")
@shared.runs_dir()
@shared.as_json(help="Print JSON instead of a table.")
@click.pass_context
def forecast_cmd(ctx, run_id, steps, source, runs_dir, as_json):
    """Free-running generation from a time-series run: the model fed its own predictions."""
    from ..experiment import build
    from ...forecast import forecast
    run = store_for(ctx, runs_dir).get(run_id).verify()
    config = run_config(run)
    dataset, model, _ = build(config)
    if not _forecasts(dataset) or dataset.problem == "classification":
        raise ConfigError(f"run {run.id} is on dataset {config['data']!r}, which is not a time series; "
                          "forecast needs one of: " + ", ".join(n for n in datasets.names()
                                                                if _forecasts(datasets.get(n))))
    run.load_weights_into(model)
    predictions, truth = forecast(model, dataset, steps, source)
    if not np.isfinite(predictions).all():
        status = run.summary().get("status", "unknown")
        raise DivergedError(f"the forecast of run {run.id} is not finite (NaN or infinity): its weights are "
                            f"(status {status}); train it again, e.g. with a smaller --lr or --reg clip:1.0")
    if as_json:
        print_json({"predictions": predictions, "truth": truth})  # truth past the record's end: null
        return
    table = Table(title=f"Forecast of {run.id}, {steps} steps from {source}", title_justify="left")
    table.add_column("step", justify="right")
    table.add_column("prediction", justify="right")
    if truth is not None:
        table.add_column("truth", justify="right")
    for k in range(steps):
        row = [str(k + 1), f"{predictions[k, 0]:.4g}"] + ([f"{truth[k, 0]:.4g}"] if truth is not None else [])
        table.add_row(*row)
    out = console()
    out.print(table)
    try:
        from ..plots import forecast_plot
        path = run.file(f"forecast-{steps}-{source}.png")
        forecast_plot(path, predictions, truth, source)
        out.print(f"[dim]plot: {path}[/]")
    except ImportError:
        pass
    except OSError as e:  # a read-only run folder: the table above is the result, the plot a bonus
        console(stderr=True).print(f"[yellow]warning:[/] plot not written: {e.strerror or e}: {path}",
                                   soft_wrap=True)
