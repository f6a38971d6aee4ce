"""Rich tables for the terminal: model summaries, results, runs, plugin lists."""
import math

from rich.table import Table

from ..models import summary_rows
from .config import spec_label
from .sweeper import AXES, label

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values, low=None, high=None):
    """A one-line chart of `values`, e.g. ▇▅▃▂▁▁ for a falling loss (log-scaled when all positive).

    `low` and `high` fix the scale (linear), so that several lines can be compared; a missing value
    is a blank."""
    if low is None or high is None:
        values = [v for v in values if v is not None and math.isfinite(v)]
        if not values:
            return ""
        if min(values) > 0:
            values = [math.log(v) for v in values]
        low, high = min(values), max(values)
    if high - low < 1e-12:
        return "".join(SPARK[0] if v is not None else " " for v in values)
    return "".join(" " if v is None or not math.isfinite(v) else
                   SPARK[min(max(int((v - low) / (high - low) * (len(SPARK) - 1) + 0.5), 0), len(SPARK) - 1)]
                   for v in values)


def forecast_lines(summary):
    """Truth and free-running forecast as two sparklines on one scale, for the terminal."""
    f = summary["forecast"]
    known = [v for v in f["prediction"] + (f["truth"] or []) if v is not None]
    low, high = min(known), max(known)
    lines = [f"Free-running forecast, {summary['cell']} on {summary['data']}: {f['steps']} steps, each fed "
             "the model's own previous prediction" + (f" (RMSE vs truth {fmt(f['rmse'])})" if f.get("rmse") else "")]
    if f["truth"]:
        lines.append(f"  truth     {sparkline(f['truth'], low, high)}")
    lines.append(f"  forecast  {sparkline(f['prediction'], low, high)}")
    return "\n".join(lines)


def fmt(value, digits=4):
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def model_table(model, title="Model"):
    table = Table(title=title, title_justify="left")
    table.add_column("module")
    table.add_column("type")
    table.add_column("parameters (shape)")
    table.add_column("count", justify="right")
    rows = summary_rows(model)
    for name, kind, shapes, count in rows:
        table.add_row(name, kind, shapes, f"{count:,}")
    table.add_row("[bold]total[/]", "", "", f"[bold]{sum(r[3] for r in rows):,}[/]")
    return table


def results_table(summaries, title="Results"):
    """Runs side by side, one column each (a table that stays narrow however many fields it shows).

    The best run by test metric is marked with ★ when there are several."""
    table = Table(title=title, title_justify="left")
    table.add_column("")
    best = _best_index(summaries)
    for i, s in enumerate(summaries):
        status = s.get("status", "finished")
        header = s.get("cell", "?") + ("" if status == "finished" else f" ({status})")
        if i == best and len(summaries) > 1:
            header = f"[bold green]★ {header}[/]"
        table.add_column(header, justify="right")
    metric = next((s["metric"] for s in summaries if s.get("metric")), "metric")
    baseline_name = next((s["baseline_name"] for s in summaries if s.get("baseline_name")), "baseline")
    rows = [
        ("parameters", lambda s: f"{s['params']:,}" if "params" in s else "–"),
        ("train loss", lambda s: fmt(s.get("train_loss"))),
        ("val loss (best)", lambda s: fmt(s.get("val_loss"))),
        (f"val {metric}", lambda s: fmt(s.get("val_metric"))),
        (f"test {metric}", lambda s: fmt(s.get("test_metric"))),
        (f"baseline ({baseline_name})", lambda s: fmt(s.get("baseline"))),
        ("grad norm mean / max", lambda s: f"{fmt(s.get('grad_norm_mean'), 3)} / {fmt(s.get('grad_norm_max'), 3)}"),
        ("clipped batches", lambda s: f"{s['clip_rate']:.0%}" if s.get("clip_rate") else "–"),
        ("epochs", lambda s: fmt(s.get("epochs"))),
        ("seconds", lambda s: fmt(s.get("seconds"), 3)),
        ("val loss per epoch", lambda s: sparkline(s.get("val_losses", []))),
    ]
    extras = sorted({k for s in summaries for k in s if k.startswith("test_") and k not in ("test_metric", "test_loss")})
    rows[5:5] = [(k.replace("_", " "), lambda s, k=k: fmt(s.get(k))) for k in extras]
    for label, value in rows:
        table.add_row(label, *(value(s) for s in summaries))
    return table


def _best_index(summaries):
    scored = [(i, s["test_metric"]) for i, s in enumerate(summaries)
              if isinstance(s.get("test_metric"), (int, float)) and math.isfinite(s["test_metric"])]
    if not scored:
        return None
    higher = summaries[scored[0][0]].get("higher_is_better", False)
    return (max if higher else min)(scored, key=lambda item: item[1])[0]


def dict_table(title, mapping):
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in mapping.items():
        table.add_row(str(key), fmt(value) if not isinstance(value, (dict, list)) else str(value))
    return table


def rows_table(title, rows, columns=None):
    """A table from a list of dicts (e.g. metrics.csv rows); `columns` maps keys to headers."""
    table = Table(title=title, title_justify="left")
    columns = columns or {c: c for c in (rows[0] if rows else [])}
    for header in columns.values():
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*(fmt(row.get(c)) for c in columns))
    return table


# ---- sweeps and studies (rnnrun sweep, rnnrun tune, and what sweep() and tune() return) -------------------
BEST_SHOWN = 10  # trials in a study's table


def sweep_table(doc):
    """One row per configuration: mean ± std over seeds; the best configuration in bold green."""
    rows = doc["configurations"]
    axes = [a for a in AXES if len({str(r["settings"].get(a)) for r in rows}) > 1]
    if not axes:
        axes = [a for a in AXES if any(a in r["settings"] for r in rows)]
    metric = next((r["metric"] for r in rows if r["metric"]), "metric")
    shown = lambda r, a: spec_label(r["settings"][a]) if a == "data" and a in r["settings"] else \
        r["settings"].get(a, "–")  # noqa: E731  (a csv file's data: its name and options, not its path)
    best = [label({a: shown(r, a) for a in axes}) for r in rows if r["best"]]
    caption = "mean ± std over seeds" + (f"; best (bold): {', '.join(best)}" if best and len(rows) > 1 else "")
    table = Table(title=f"Sweep {doc['id']}", title_justify="left", caption=caption, caption_justify="left")
    for axis in axes:
        table.add_column(axis.replace("_", " "), overflow="fold")
    for column in ("seeds", f"test {metric}", "val loss", "baseline", "params", "s/trial"):
        table.add_column(column, justify="left" if column == "seeds" else "right",
                         no_wrap=column in (f"test {metric}", "val loss"))
    for r in rows:
        seeds = f"{r['finished']}/{r['trials']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        table.add_row(*(str(shown(r, a)) for a in axes), seeds,
                      _pm(r["test_metric_mean"], r["test_metric_std"]), _pm(r["val_loss_mean"], r["val_loss_std"]),
                      fmt(r["baseline_mean"]), f"{r['params']:,}" if r.get("params") else "–", fmt(r["seconds_mean"], 3),
                      style="bold green" if r["best"] and len(rows) > 1 else None)
    return table


def _pm(mean, std):
    if mean is None:
        return "–"
    return fmt(mean) + (f" ± {fmt(std, 2)}" if std is not None else "")


def best_table(doc):
    """The best trials, best first: their settings, value, epochs run, and whether they were pruned."""
    study = doc["study"]
    scored = [t for t in doc["trials"] if t["value"] is not None and t["state"] in ("complete", "pruned")]
    reverse = study["direction"] == "maximize"
    # finished trials before pruned ones: a pruned trial's value is where it stopped, not what it reached
    ranked = sorted(scored, key=lambda t: (t["state"] != "complete", -t["value"] if reverse else t["value"]))
    names = list(dict.fromkeys(k for t in doc["trials"] for k in t["params"]))
    table = Table(title=f"Best trials of study {study['name']} ({len(ranked[:BEST_SHOWN])} of {study['trials']})",
                  title_justify="left")
    table.add_column("trial", justify="right")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column(study["objective"].replace("_", " "), justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("state")
    table.add_column("run", overflow="fold")
    best = doc["best"]["number"] if doc["best"] else None
    for t in ranked[:BEST_SHOWN]:
        table.add_row(str(t["number"]), *(fmt(t["params"].get(n), 3) for n in names), fmt(t["value"]),
                      fmt(t["epochs"]), t["state"], t["run_id"] or "–",
                      style="bold green" if t["number"] == best else None)
    return table
