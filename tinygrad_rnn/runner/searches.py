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
from .run import Run, Runs, ShownAsTable


class SearchResult(ShownAsTable):
    """What a search returns: `summary` (what its command prints with --json) and `trials`, the run of
    every trial that has one (a trial still pending has none), in the search's order. It shows as the
    table its command prints, made by report's function named in `table_of`."""

    table_of = None

    def __init__(self, doc):
        self.summary = doc
        self.trials = Runs(Run(r["run_dir"]) for r in doc["trials"] if r.get("run_dir"))

    def table(self):
        from . import report
        return getattr(report, self.table_of)(self.summary)


class SweepResult(SearchResult):
    """A finished (or interrupted) sweep: `trials`, `groups`, `best`, `summary` (see the module)."""

    table_of = "sweep_table"

    def __init__(self, doc):
        super().__init__(doc)
        self.id, self.dir, self.status = doc["id"], doc["path"], doc["status"]
        by_configuration = {}
        for record in doc["trials"]:
            if record.get("run_dir") and record["status"] == "finished":
                by_configuration.setdefault(record["config_key"], []).append(Run(record["run_dir"]))
        self.groups = [{**row, "runs": Runs(by_configuration.get(row["config_key"], []))}
                       for row in doc["configurations"]]
        self.best = next((group for group in self.groups if group["best"]), None)

    def __repr__(self):
        counts = ", ".join(f"{self.summary[s]} {s}" for s in ("finished", "diverged", "failed", "interrupted",
                                                              "pending") if self.summary.get(s))
        return f"SweepResult({self.id!r}: {len(self.groups)} configurations, {counts})"


class StudyResult(SearchResult):
    """An Optuna study after `tune()`: `trials`, `best` (a Run), `importances`, `summary` (see the module)."""

    table_of = "best_table"

    def __init__(self, doc):
        super().__init__(doc)
        self.name, self.dir = doc["study"]["name"], doc["study"]["path"]
        best = doc["best"]
        self.best = Run(best["run_dir"]) if best and best.get("run_dir") else None
        self.importances = dict(doc["importances"])

    def __repr__(self):
        study = self.summary["study"]
        best = self.summary["best"]
        value = f", best {study['objective']} {best['value']:.4g} (trial {best['number']})" if best else ""
        return f"StudyResult({self.name!r}: {study['trials']} trials{value})"
