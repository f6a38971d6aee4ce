"""Rich tables for the terminal: model summaries, results, runs, plugin lists."""
import math

from rich.table import Table

from ..models import summary_rows
from ..selection import pick_best
from .config import spec_label
from .sweeper import AXES, axis_order, label

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


def results_table(summaries, title="Results", settings=None):
    """Runs side by side, one column each (a table that stays narrow however many fields it shows).

    The best run by *validation* metric (selection.selection_key) is marked with ★ when there are several;
    the test rows are reported, never used to choose, and the caption says so. `settings` ({name: [value
    per run]}, e.g. the settings that differ between compared runs) are the first rows."""
    table = Table(title=title, title_justify="left",
                  caption=SELECTION_CAPTION if len(summaries) > 1 else None, caption_justify="left")
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
        ("strongest baseline", lambda s: _strongest(s)),
        ("beats it", lambda s: fmt(beats_baseline(s))),
        ("grad norm mean / max", lambda s: f"{fmt(s.get('grad_norm_mean'), 3)} / {fmt(s.get('grad_norm_max'), 3)}"),
        ("clipped batches", lambda s: f"{s['clip_rate']:.0%}" if s.get("clip_rate") else "–"),
        ("epochs", lambda s: fmt(s.get("epochs"))),
        ("seconds", lambda s: fmt(s.get("seconds"), 3)),
        ("val loss per epoch", lambda s: sparkline(s.get("val_losses", []))),
    ]
    extras = sorted({k for s in summaries for k, v in s.items() if k.startswith("test_") and
                     k not in ("test_metric", "test_loss") and not isinstance(v, (dict, list))})  # breakdowns: `show`
    rows[5:5] = [(k.replace("_", " "), lambda s, k=k: fmt(s.get(k))) for k in extras]
    for name, values in (settings or {}).items():
        table.add_row(f"[bold]{name.replace('_', ' ')}[/]", *(fmt(v) if not isinstance(v, (dict, list)) else str(v)
                                                              for v in values))
    for label, value in rows:
        table.add_row(label, *(value(s) for s in summaries))
    return table


SELECTION_CAPTION = "★ best on validation; test is reported, never used to choose"


def _strongest(summary):
    best = summary.get("best_baseline")
    return f"{best['name']} {fmt(best['value'])}" if best else "–"


def beats_baseline(summary):
    """True when the run's test metric is better than its strongest baseline's; None when either is missing."""
    best, value = summary.get("best_baseline"), summary.get("test_metric")
    if not best or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value > best["value"] if summary.get("higher_is_better") else value < best["value"]


def _best_index(summaries):
    """The index of the run with the best validation metric (the loss where no metric is finite)."""
    finished = [i for i, s in enumerate(summaries) if s.get("status", "finished") == "finished"]
    if not finished:
        return None
    higher = summaries[finished[0]].get("higher_is_better", False)
    return pick_best(finished, higher, key=lambda i: summaries[i])


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


def breakdown_tables(summary):
    """`rnnrun show`'s tables of a run's test score taken apart: the baselines beside it, the metric per
    step ahead, and per class with the confusion matrix (those the summary holds)."""
    metric = summary.get("metric", "metric")
    tables = []
    if summary.get("baselines"):
        table = Table(title=f"Test {metric} beside the baselines (fitted on train, chosen on val)",
                      title_justify="left", min_width=60)
        table.add_column("predictor")
        table.add_column(f"test {metric}", justify="right")
        table.add_row(f"the model ({summary.get('cell', '?')})", fmt(summary.get("test_metric")))
        best = (summary.get("best_baseline") or {}).get("name")
        for name, value in summary["baselines"].items():
            table.add_row(f"{name}{' (strongest)' if name == best else ''}", fmt(value))
        tables.append(table)
    steps = summary.get("test_metric_per_step")
    if steps:
        table = Table(title=f"Test {metric} per step ahead", title_justify="left", min_width=40)
        for k in range(len(steps)):
            table.add_column(str(k + 1), justify="right")
        table.add_row(*(fmt(v) for v in steps))
        tables.append(table)
    per_class = summary.get("test_per_class")
    if per_class:
        table = Table(title="Test per class", title_justify="left", min_width=40)
        for column in ("class", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for label, row in per_class.items():
            table.add_row(label, *(fmt(row[k]) for k in ("precision", "recall", "f1")), str(row["support"]))
        tables.append(table)
    confusion = summary.get("test_confusion")
    if confusion:
        table = Table(title="Test confusion (row: true, column: predicted)", title_justify="left", min_width=48)
        table.add_column("")
        for label in confusion["labels"]:
            table.add_column(label, justify="right")
        for label, row in zip(confusion["labels"], confusion["matrix"]):
            table.add_row(label, *(str(v) for v in row))
        tables.append(table)
    return tables


def seeds_table(groups, title="Over seeds"):
    """One row per cell: n seeds, validation and test metric as mean ± sd, the ensemble's test metric,
    the strongest baseline and whether the ensemble beats it; ★ marks the best cell on validation."""
    metric = next((g["metric"] for g in groups if g.get("metric")), "metric")
    higher = next((g.get("higher_is_better", False) for g in groups), False)
    best = pick_best(groups, higher, key=lambda g: {"val_metric": g.get("val_metric_mean"),
                                                    "val_loss": g.get("val_loss_mean")}) if len(groups) > 1 else None
    caption = ("mean ± sd over n seeds; ensemble: the test metric of the runs' mean prediction; best baseline: "
               "the strongest on test; beats it: the ensemble beats it")
    if best is not None:
        caption += "; " + SELECTION_CAPTION
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    widest = max([len(g["cell"]) + 2 for g in groups] + [4])
    for column in ("cell", "n", f"val {metric}", f"test {metric}", "ensemble", "best baseline", "beats it"):
        table.add_column(column, justify="left" if column == "cell" else "right", no_wrap=True,
                         min_width=widest if column == "cell" else None)
    for g in groups:
        cell = f"[bold green]★ {g['cell']}[/]" if g is best else g["cell"]
        strongest = g.get("best_baseline")
        table.add_row(cell, str(g["n"]), plus_minus(g.get("val_metric_mean"), g.get("val_metric_std")),
                      plus_minus(g.get("test_metric_mean"), g.get("test_metric_std")),
                      fmt(g.get("ensemble_test_metric")),
                      f"{strongest['name']} {fmt(strongest['value'])}" if strongest else "–",
                      fmt(g.get("ensemble_beats_best_baseline")))
    return table


def plus_minus(mean, std):
    """'0.812 ± 0.041', or the mean alone (one seed), or – (none)."""
    if mean is None:
        return "–"
    return fmt(mean) + (f" ± {fmt(std, 2)}" if std is not None else "")


# ---- sweeps and studies (rnnrun sweep, rnnrun tune, and what sweep() and tune() return) -------------------
BEST_SHOWN = 10  # trials in a study's table


def sweep_table(doc):
    """One row per configuration: mean ± std over seeds; the best configuration in bold green."""
    rows = doc["configurations"]
    every = axis_order({a for r in rows for a in r["settings"]})
    axes = [a for a in every if len({str(r["settings"].get(a)) for r in rows}) > 1] or every
    metric = next((r["metric"] for r in rows if r["metric"]), "metric")
    shown = lambda r, a: spec_label(r["settings"][a]) if a == "data" and a in r["settings"] else \
        r["settings"].get(a, "–")  # noqa: E731  (a csv file's data: its name and options, not its path)
    best = [label({a: shown(r, a) for a in axes}) for r in rows if r["best"]]
    caption = "mean ± std over seeds" + (f"; best on validation (bold): {', '.join(best)}; test is reported, "
                                         "never used to choose" if best and len(rows) > 1 else "")
    if len({r.get("comparable") for r in rows}) > 1:
        caption += "; one best per comparable data and metric"
    table = Table(title=f"Sweep {doc['id']}", title_justify="left", caption=caption, caption_justify="left")
    for axis in axes:
        table.add_column(axis.replace("_", " "), overflow="fold")
    for column in ("seeds", f"val {metric}", f"test {metric}", "strongest baseline", "params", "s/trial"):
        table.add_column(column, justify="left" if column == "seeds" else "right",
                         no_wrap=column in (f"test {metric}", f"val {metric}"))
    for r in rows:
        seeds = f"{r['finished']}/{r['trials']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        strongest = r.get("best_baseline")
        table.add_row(*(str(shown(r, a)) for a in axes), seeds,
                      _pm(r.get("val_metric_mean"), r.get("val_metric_std")),
                      _pm(r["test_metric_mean"], r["test_metric_std"]),
                      f"{strongest['name']} {fmt(strongest['value'])}" if strongest else fmt(r["baseline_mean"]),
                      f"{r['params']:,}" if r.get("params") else "–", fmt(r["seconds_mean"], 3),
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
                  title_justify="left", caption_justify="left",
                  caption=f"ranked by {study['objective'].replace('_', ' ')}: chosen on validation; the test split "
                          "is never used to choose")
    table.add_column("trial", justify="right")
    for name in names:  # exact values, never cut: typed back, they repeat the trial
        widest = max([len(exact(t["params"].get(name))) for t in ranked[:BEST_SHOWN]] + [len(name)])
        table.add_column(name.replace("_", " "), justify="right", no_wrap=True, min_width=widest)
    table.add_column(study["objective"].replace("_", " "), justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("state")
    table.add_column("run", overflow="fold")
    best = doc["best"]["number"] if doc["best"] else None
    for t in ranked[:BEST_SHOWN]:
        table.add_row(str(t["number"]), *(exact(t["params"].get(n)) for n in names), fmt(t["value"]),
                      fmt(t["epochs"]), t["state"], t["run_id"] or "–",
                      style="bold green" if t["number"] == best else None)
    return table


def exact(value):
    """A tried setting as text that gives the same trial when typed back: a float's shortest repr
    (0.0031415926535897933, not 0.00314), anything else as it is."""
    return repr(value) if isinstance(value, float) else fmt(value)
