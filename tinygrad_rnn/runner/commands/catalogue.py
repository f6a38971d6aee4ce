"""`rnnrun list`: every cell, dataset, regulariser and optimiser, with its description and options."""
import click

from ..config import signature_text
from ..output import console, print_json
from .. import options as shared
from ...registry import REGISTRIES, datasets

KINDS = tuple(REGISTRIES.items())


@click.command("list")
@shared.as_json(help="Print JSON instead of tables.")
def list_plugins(as_json):
    """Every cell, dataset, regulariser and optimiser, with its description and options."""
    from rich.table import Table
    catalogue = {f"{kind}s": [{"name": n, "description": reg.describe(n), "options": reg.options(n)}
                              for n in reg.names()] for kind, reg in KINDS}
    for entry in catalogue["datasets"]:
        cls = datasets.get(entry["name"])
        entry.update(kind=cls.kind, problem=cls.problem, metric=cls.metric_name)
    if as_json:
        print_json(catalogue)
        return
    out = console()
    for kind, reg in KINDS:
        table = Table(title=f"{kind}s", title_justify="left")
        table.add_column("name", style="bold cyan")
        if kind == "dataset":
            table.add_column("task")
        table.add_column("description")
        table.add_column("options")
        for name in reg.names():
            extra = []
            if kind == "dataset":
                cls = reg.get(name)
                extra = [f"{cls.kind}, {cls.problem}; {cls.metric_name}"]
            table.add_row(name, *extra, reg.describe(name), signature_text(reg.get(name)))
        out.print(table)
