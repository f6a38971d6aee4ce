"""`rnnrun runs`, `show`, `compare` and `forecast`: finding past runs again and using them.

    rnnrun runs                      every run in ./runs, oldest first
    rnnrun show last                 a run's config, per-epoch metrics and results
    rnnrun compare RUN RUN ...       runs side by side
    rnnrun forecast RUN --steps 50   a time-series model fed its own predictions
"""
import click
import numpy as np
from rich.table import Table

from ..app import cli, run_config, runs_dir_option, store_for
from ..output import console, print_json
from ...errors import ConfigError, DivergedError
from ...registry import datasets

MAX_FORECAST_STEPS = 10 ** 6


@cli.command("runs")
@runs_dir_option
@click.option("--sweep", default=None, help="Only the trials of this sweep.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_runs(ctx, runs_dir, sweep, as_json):
    """Past runs: id, cell, data, key settings, best validation metric, time."""
    from ..report import fmt
    store = store_for(ctx, runs_dir)
    runs = store.runs()
    if sweep:
        from ..sweep import sweep_runs
        runs = sweep_runs(store, sweep)
    rows = []
    for run in runs:
        c, s = run.config(), run.summary()
        rows.append({"id": run.id, "cell": c.get("cell"), "data": c.get("data"),
                     "settings": settings_text(c), "metric": s.get("metric"), "val_metric": s.get("val_metric"),
                     "test_metric": s.get("test_metric"), "status": s.get("status", "running?"),
                     "seconds": s.get("seconds")})
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Runs in {store.root}", title_justify="left")
    table.add_column("id", no_wrap=True, min_width=max((len(r["id"]) for r in rows), default=2))
    for column in ("cell", "data", "settings", "metric", "best val", "test", "status", "s"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], r["cell"], r["data"], r["settings"], r["metric"] or "", fmt(r["val_metric"]),
                      fmt(r["test_metric"]), r["status"], fmt(r["seconds"], 3))
    console().print(table if rows else f"no runs in {store.root} yet: try rnnrun --cell gru --data sine")


def settings_text(config):
    parts = [f"h={config.get('hidden')}", f"L={config.get('layers')}", f"lr={config.get('lr')}"]
    if config.get("bidirectional"):
        parts.append("bi")
    parts += [r["name"] for r in config.get("regularisers", [])]
    return " ".join(parts)


@cli.command("show")
@click.argument("run_id", metavar="RUN")
@runs_dir_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx, run_id, runs_dir, as_json):
    """A run's config, per-epoch metrics and final results (RUN: id, id prefix, path or 'last')."""
    from ..report import dict_table, rows_table
    run = store_for(ctx, runs_dir).get(run_id)
    config, metrics, summary = run.config(), run.metrics(), run.summary()
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
    out.print(dict_table("Results", {k: v for k, v in summary.items() if k != "val_losses"}))


@cli.command("compare")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN...")
@runs_dir_option
@click.pass_context
def compare(ctx, run_ids, runs_dir):
    """Several runs side by side; runs scored by different metrics go in separate tables (one per
    metric and dataset), since a best run across metrics means nothing."""
    from ..report import results_table
    store = store_for(ctx, runs_dir)
    groups = {}
    for run_id in run_ids:
        run = store.get(run_id)
        summary, config = run.summary(), run.config()
        summary.setdefault("cell", config.get("cell"))
        summary.setdefault("data", config.get("data"))
        summary["cell"] = f"{summary['cell']} ({run.id})"
        groups.setdefault((summary.get("metric") or "metric", summary.get("data") or "?"), []).append(summary)
    out = console()
    for (metric, data), summaries in groups.items():
        title = "Comparison" if len(groups) == 1 else f"Comparison on {data} ({metric})"
        out.print(results_table(summaries, title=title))
    if len(groups) > 1:
        out.print(f"[dim]{len(groups)} tables: runs on different datasets or metrics are not ranked "
                  "against each other[/]")


@cli.command("forecast")
@click.argument("run_id", metavar="RUN")
@click.option("--steps", default=50, show_default=True, type=click.IntRange(1, MAX_FORECAST_STEPS),
              help="Steps to generate.")
@click.option("--from", "source", type=click.Choice(["data", "zeros"]), default="data", show_default=True,
              help="Start from the last real window or from all zeros.")
@runs_dir_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def forecast_cmd(ctx, run_id, steps, source, runs_dir, as_json):
    """Free-running generation from a time-series run: the model fed its own predictions."""
    from ..experiment import build
    from ...forecast import forecast
    run = store_for(ctx, runs_dir).get(run_id)
    config = run_config(run)
    dataset, model, _ = build(config)
    if not dataset.forecastable:
        raise ConfigError(f"run {run.id} is on dataset {config['data']!r}, which is not a time series; "
                          "forecast needs one of: " + ", ".join(n for n in datasets.names()
                                                                if datasets.get(n).forecastable))
    model.load_state_dict(run.weights())
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
