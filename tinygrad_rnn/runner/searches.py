"""What `sweep()` and `tune()` return: a search over settings, as Python sees it.

    s = sweep(cell=["rnn", "gru"], data="sine", lr=[1e-2, 3e-3], seeds=2)
    s.trials        every trial's run (a `Run`), in the sweep's order
    s.groups        one dict per configuration: its settings, mean ± std over seeds, its runs
    s.best          the best group (by the sweep's rule: see sweeper.aggregate)
    s.summary       the sweep's summary.json (what `rnnrun sweep --json` prints)

    study = tune(cell="gru", data="sine", lr=(1e-4, 1e-1), trials=20)
    study.trials    every trial's run, in trial order; study.best the best trial's `Run`
    study.importances   {parameter: share of importance}; study.summary what `rnnrun tune --json` prints

In a notebook both show as the table the command prints.
"""
from .run import Run, Runs, html


def _runs(records):
    """The runs of trial records that have a run folder (a trial still pending has none)."""
    return Runs(Run(r["run_dir"]) for r in records if r.get("run_dir"))


class SweepResult:
    """A finished (or interrupted) sweep: `trials`, `groups`, `best`, `summary` (see the module)."""

    def __init__(self, doc):
        self.summary = doc
        self.id, self.dir, self.status = doc["id"], doc["path"], doc["status"]
        self.trials = _runs(doc["trials"])
        by_configuration = {}
        for record in doc["trials"]:
            if record.get("run_dir") and record["status"] == "finished":
                by_configuration.setdefault(record["config_key"], []).append(Run(record["run_dir"]))
        self.groups = [{**row, "runs": Runs(by_configuration.get(row["config_key"], []))}
                       for row in doc["configurations"]]
        self.best = next((group for group in self.groups if group["best"]), None)

    def table(self):
        from .report import sweep_table
        return sweep_table(self.summary)

    def __rich__(self):
        return self.table()

    def _repr_html_(self):
        return html(self.table())

    def __repr__(self):
        counts = ", ".join(f"{self.summary[s]} {s}" for s in ("finished", "diverged", "failed", "interrupted",
                                                              "pending") if self.summary.get(s))
        return f"SweepResult({self.id!r}: {len(self.groups)} configurations, {counts})"


class StudyResult:
    """An Optuna study after `tune()`: `trials`, `best` (a Run), `importances`, `summary` (see the module)."""

    def __init__(self, doc):
        self.summary = doc
        self.name, self.dir = doc["study"]["name"], doc["study"]["path"]
        self.trials = _runs(doc["trials"])
        best = doc["best"]
        self.best = Run(best["run_dir"]) if best and best.get("run_dir") else None
        self.importances = dict(doc["importances"])

    def table(self):
        from .report import best_table
        return best_table(self.summary)

    def __rich__(self):
        return self.table()

    def _repr_html_(self):
        return html(self.table())

    def __repr__(self):
        study = self.summary["study"]
        best = self.summary["best"]
        value = f", best {study['objective']} {best['value']:.4g} (trial {best['number']})" if best else ""
        return f"StudyResult({self.name!r}: {study['trials']} trials{value})"
