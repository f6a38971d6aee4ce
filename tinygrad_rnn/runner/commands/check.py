"""`rnnrun check`: hold plugins to their protocol with the conformance kit of `tinygrad_rnn.testing`.

    rnnrun check --plugin my_plugins.py          every plugin that file registers
    rnnrun check --cell gru --data copy:T=5      named plugins, built-in or loaded with --plugin

The checks live in `tinygrad_rnn.testing`; this file chooses the plugins and prints the table.
"""
import click

from .. import options as shared
from ..app import load_plugins, with_spec
from ..config import split_names
from ..output import Fail, console, print_json
from ...errors import ConfigError, PluginError
from ...registry import REGISTRIES, load_plugin, where_defined
STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def registered_by(modules):
    """[(kind, name, class, {})] of every plugin the loaded `modules` ({module: path}) define and register."""
    found = []
    for module, path in modules.items():
        mine = [(kind, name, registry.get(name), {}) for kind, registry in REGISTRIES.items()
                for name in registry.names() if registry.get(name).__module__ == module]
        if not mine:
            raise ConfigError(f"plugin {path} registers no cell, dataset, regulariser, optimizer or logger; "
                              "register them with register_cell, register_dataset, ...")
        found += mine
    return found


def named_plugins(kind, specs):
    """[(kind, name, class, options)] for `--cell gru:variant=cho`-style specs, options typed as a run's."""
    chosen = []
    for spec in split_names(specs):
        name, options = with_spec(spec, kind)  # the one spec parser and checker of every command
        chosen.append((kind, name, REGISTRIES[kind].get(name), options))
    return chosen


@click.command("check")
@shared.plugin(help="Check every plugin this .py file or module registers (repeatable).")
@click.option("--cell", "cell_specs", multiple=True, metavar="NAME[:k=v]", help="Check this cell (repeatable).")
@click.option("--data", "data_specs", multiple=True, metavar="NAME[:k=v,...]",
              help="Check this dataset, built with these options (repeatable).")
@click.option("--reg", "reg_specs", multiple=True, metavar="NAME[:k=v,...]",
              help="Check this regulariser (repeatable).")
@click.option("--optimizer", "optimizer_specs", multiple=True, metavar="NAME[:k=v]",
              help="Check this optimiser (repeatable).")
@click.option("--log", "log_specs", multiple=True, metavar="NAME[:k=v]", help="Check this logger (repeatable).")
@shared.as_json(help="Print JSON instead of a table.")
@click.pass_context
def check_cmd(ctx, plugins, cell_specs, data_specs, reg_specs, optimizer_specs, log_specs, as_json):
    """Run the conformance checks of tinygrad_rnn.testing on plugins: the protocol, the maths, the data.

    Cells: gradients against finite differences, sequence() against forward(), padding, seeds.
    Datasets: shapes and dtypes, seeds, no sequence in two splits, a baseline a perfect model beats.
    Regularisers: two epochs of a tiny trainer, counters, state_dict. Optimisers: a convex quadratic,
    lr, state_dict. Loggers: a 3-epoch run and a 2-trial sweep through every hook, a diverged run, the
    arguments left alone. With --cell/--data/--reg/--optimizer/--log only the named plugins are checked (those
    of --plugin files too). Exit code 0 when every check passes (warnings and skips allowed), 1 when
    one fails.

    \b
    rnnrun check --plugin my_plugins.py
    rnnrun check --cell gru,lstm --optimizer adam
    rnnrun check --data copy:T=5,n_train=100
    rnnrun check --log tensorboard
    """
    from ...testing import build_plugin, run_checks
    load_plugins(())
    plugins = shared.plugins_of(ctx, plugins)  # `rnnrun --plugin FILE check` means the same
    modules = {load_plugin(path).__name__: path for path in plugins}
    chosen = (named_plugins("cell", cell_specs) + named_plugins("dataset", data_specs)
              + named_plugins("regulariser", reg_specs) + named_plugins("optimizer", optimizer_specs)
              + named_plugins("logger", log_specs))
    if not chosen and not modules:
        raise ConfigError("name what to check: --plugin PATH_OR_MODULE, or --cell/--data/--reg/--optimizer/--log NAME")
    chosen = chosen or registered_by(modules)
    for kind, name, cls, options in chosen:
        if kind == "cell" and not callable(getattr(cls, "initial_state", None)):  # the plugin's mistake, named
            raise PluginError(f"cell {name!r} ({where_defined(cls)}) has no initial_state(batch_size) method; "
                              "a cell needs forward(x, state) and initial_state(batch_size)")
        build_plugin(cls, **options)  # options it refuses are a usage error, said once (exit 2)
    rows = [(kind, result) for kind, _, cls, options in chosen for result in run_checks(cls, **options)]
    failed = [r for _, r in rows if r.status == "fail"]
    if as_json:
        print_json([{"kind": kind, **vars(r)} for kind, r in rows])
    else:
        _print(rows, failed)
    if failed:
        raise Fail()


def _print(rows, failed):
    from rich.table import Table
    table = Table()
    table.add_column("plugin", max_width=18)
    table.add_column("check", max_width=22)
    table.add_column("result", no_wrap=True)
    table.add_column("reason", ratio=1)
    previous = None
    for kind, r in rows:
        first = (kind, r.plugin) != previous
        if first and previous is not None:
            table.add_section()
        table.add_row(f"{kind} {r.plugin}" if first else "", r.check.replace("_", " "),
                      f"[{STYLE[r.status]}]{r.status}[/]", r.reason)
        previous = (kind, r.plugin)
    out = console()
    out.print(table)
    counts = {s: sum(r.status == s for _, r in rows) for s in STYLE}
    tail = f"{counts['warn']} warnings, {counts['skip']} skipped"
    if failed:
        out.print(f"[bold red]{len(failed)} of {len(rows)} checks fail[/] ({tail}): "
                  + ", ".join(f"{r.plugin} {r.check}" for r in failed))
    else:
        out.print(f"[bold green]all {counts['pass']} checks that apply pass[/] ({tail})")
