"""`rnnrun gradcheck`, `rnnrun vanish` and `rnnrun graph`: commands that open the engine up.

    rnnrun gradcheck --cell lstm --layers 2 --bidirectional     backward() vs finite differences
    rnnrun vanish --cell rnn,lstm,gru --data adding:T=100       ||dLoss/dh_t|| over t, before/after training
    rnnrun graph --cell gru --steps 3 --dot gru.dot             the graph backward() walks

The computing is in `../teach.py`; this file only turns its results into tables, trees and plots.
"""
import math
import os
import time

import click
import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .. import options as shared
from ..app import check_output_file, check_runs_dir, config_from_flags, load_plugins, \
    specs, with_spec
from ..config import MAX_EPOCHS
from ..output import Fail, console, print_json
from ..report import SPARK
from ...errors import ConfigError
from ...registry import cells


def _cell_specs(values):
    return specs(values, "cell", "--cell")


def _built(what, make):
    """make(), with a cell constructor's TypeError/ValueError (a bad option value) as a ConfigError."""
    try:
        return make()
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {e}") from None


# ---- rnnrun gradcheck -------------------------------------------------------------------------------
@click.command("gradcheck")
@click.option("--cell", "cell_specs", multiple=True, required=True, metavar="NAME[:k=v]",
              help="Cell(s) to check: gru, or several as rnn,lstm (user plugins too, with --plugin).")
# finite differences run the layer twice per entry: the sizes are bounded, and a check estimated to
# take over GRADCHECK_SECONDS is refused before it starts (_check_cost)
@click.option("--layers", default=1, show_default=True, type=click.IntRange(1, 8), help="Stacked layers.")
@click.option("--bidirectional", is_flag=True, help="Check a bidirectional layer.")
@click.option("--hidden", default=3, show_default=True, type=click.IntRange(1, 64), help="Hidden units.")
@click.option("--input-size", default=2, show_default=True, type=click.IntRange(1, 64), help="Input features.")
@click.option("--steps", default=4, show_default=True, type=click.IntRange(1, 100), help="Time steps T.")
@click.option("--batch", default=3, show_default=True, type=click.IntRange(1, 16),
              help="Sequences, of lengths T, T-1, ... (at least 1): padding is checked too.")
@click.option("--path", type=click.Choice(["all", "auto", "fused", "compiled", "composed", "both"]), default="all",
              show_default=True, help="As a run's --path: auto (what a run takes by default: fused where the "
                                      "cell has a sequence(), else compiled), fused (its sequence()), compiled (its "
                                      "traced step replayed), composed (its forward() step by step); or all of "
                                      "them that apply (both: the same, an old spelling).")
@shared.seed(default=0, show_default=True, help="Seed of the weights and the input.")
@shared.plugin(help="Load plugins from a .py file or an importable module first (repeatable).")
@shared.as_json(help="Print JSON instead of tables.")
def gradcheck_cmd(cell_specs, layers, bidirectional, hidden, input_size, steps, batch, path, seed, plugins,
                  as_json):
    """Check backward() against finite differences for every parameter of a small recurrent layer.

    Central differences (f(w + eps) - f(w - eps)) / 2 eps in float64, entry by entry, for every
    parameter and the input, of everything the layer returns (outputs and final states). Exit code 1
    if any gradient disagrees.

    \b
    rnnrun gradcheck --cell gru
    rnnrun gradcheck --cell lstm --layers 2 --bidirectional
    rnnrun gradcheck --plugin examples/indrnn_cell.py --cell indrnn
    """
    from ..experiment import smoke_test_cell
    from ..lessons import check_cell, has_fused_path
    load_plugins(plugins)
    out = console()
    checks = []
    cell_list = _cell_specs(cell_specs)
    for name, options in cell_list:
        smoke_test_cell(name, options, input_size)
        if path == "fused" and not has_fused_path(cells.get(name)):
            raise ConfigError(f"cell {name!r} has no fused sequence(), which --path fused checks; use --path "
                              "auto or compiled (its compiled tape), composed or all")
        _check_cost(name, options, layers, bidirectional, hidden, input_size, steps, batch, path)
    for name, options in cell_list:
        fused = has_fused_path(cells.get(name))
        if path in ("all", "both"):
            paths = ["fused", "compiled", "composed"] if fused else ["compiled", "composed"]
            if not fused and not as_json:
                out.print(f"[dim]{name} has no fused sequence(): the compiled and composed paths are checked[/]")
        else:  # auto is checked as the path it takes for this cell, and named so
            paths = [("fused" if fused else "compiled") if path == "auto" else path]
        for p in paths:
            check = _built(f"cell {name!r}", lambda: check_cell(
                name, layers=layers, bidirectional=bidirectional, hidden=hidden, input_size=input_size,
                steps=steps, batch=batch, path=p, seed=seed, **options))
            checks.append(check)
            if not as_json:
                out.print(_check_table(check, layers, bidirectional))
    failed = [(c, r) for c in checks for r in c.rows if not r.ok]
    total = sum(len(c.rows) for c in checks)
    if as_json:
        print_json([{"cell": c.cell, "path": c.path, "ok": c.ok, "lengths": c.lengths,
                     "tensors": [vars(r) for r in c.rows]} for c in checks])
    elif failed:
        out.print(f"[bold red]{len(failed)} of {total} gradients disagree with finite differences[/]: "
                  + ", ".join(f"{c.cell} ({c.path}) {r.name}" for c, r in failed))
    else:
        out.print(f"[bold green]all {total} gradients agree with finite differences[/] "
                  f"({', '.join(f'{c.cell} {c.path}' for c in checks)})")
    if failed:
        raise Fail()


GRADCHECK_SECONDS = 60


def _check_cost(name, options, layers, bidirectional, hidden, input_size, steps, batch, path):
    """ConfigError if the check would take over GRADCHECK_SECONDS: central differences evaluate the
    layer twice per entry of every parameter and of the input, so the time is about
    2 × entries × (one forward pass, timed here on the slower path asked for)."""
    from ...function import no_grad
    from ...nn.recurrent import Recurrent
    from ...tensor import Tensor
    rnn = _built(f"cell {name!r}", lambda: Recurrent(
        cells.get(name), input_size, hidden, num_layers=layers, bidirectional=bidirectional,
        path="composed", **options).to(dtype=np.float64))  # composed: the slowest path, an upper bound
    x = Tensor(np.zeros((batch, steps, input_size)))
    entries = x.size + sum(p.size for p in rnn.parameters())
    seconds = []
    with no_grad():
        for _ in range(2):
            start = time.perf_counter()
            rnn(x)
            seconds.append(time.perf_counter() - start)
    paths = 3 if path in ("all", "both") else 1
    estimate = 2 * entries * min(seconds) * paths
    if estimate > GRADCHECK_SECONDS:
        raise ConfigError(f"gradcheck of {name} at these sizes would take about {_duration(estimate)} "
                          f"({entries:,} entries x 2 forward passes of {min(seconds) * 1e3:.2g} ms"
                          f"{f' x {paths} paths' if paths > 1 else ''}); use a smaller --hidden, --steps, "
                          "--batch, --layers or --input-size")


def _duration(seconds):
    """90 -> '2 min', 40000 -> '11 h', 2e6 -> '23 days'."""
    for unit, size in (("days", 86400), ("h", 3600)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{max(seconds / 60, 1):.0f} min"


PATH_TEXT = {"fused": "the cell's sequence(): one graph node for all steps, a hand-written backward",
             "compiled": "one step of forward() traced into a tape, replayed for all steps as one graph node",
             "composed": "the cell's forward() step by step: every op with its own backward"}


def _check_table(check, layers, bidirectional):
    shape = f"{layers} layer{'s' if layers > 1 else ''}{', bidirectional' if bidirectional else ''}"
    table = Table(title=f"gradcheck {check.cell}, {check.path} path ({shape}; lengths {check.lengths})",
                  title_justify="left", caption_justify="left",
                  caption=f"{check.path} path: {PATH_TEXT[check.path]}. An entry fails when |error| > "
                          "1e-5 + 1e-3 |numeric|. The relative error is computed only where the absolute "
                          "error exceeds 1e-5; '–': no entry did, none was computed.")
    for column, justify in (("tensor", "left"), ("shape", "left"), ("max abs error", "right"),
                            ("max rel error", "right"), ("", "left")):
        table.add_column(column, justify=justify)
    for r in check.rows:
        relative = f"{r.max_rel_error:.1e}" if r.max_abs_error > 1e-5 else "–"  # see gradcheck(): atol
        table.add_row(r.name, str(tuple(r.shape)), f"{r.max_abs_error:.1e}", relative,
                      "[green]pass[/]" if r.ok else "[bold red]FAIL[/]")
    return table


# ---- rnnrun vanish ----------------------------------------------------------------------------------
@click.command("vanish")
@click.option("--cell", "cell_specs", multiple=True, required=True,
              metavar="NAME[:k=v],...", help="Cells to compare, e.g. rnn,lstm,gru or rnn:nonlinearity=relu.")
@click.option("--data", required=True, metavar="NAME[:k=v,...]",
              help="Dataset with long sequences, e.g. adding:T=200.")
@click.option("--reg", multiple=True, metavar="NAME[:k=v,...]",
              help="Regulariser, repeatable, as in a run: xavier, orthogonal, clip:1.0, batchnorm, tbptt:k=20.")
@click.option("--epochs", default=1, show_default=True, type=click.IntRange(0, MAX_EPOCHS),
              help="Training epochs between the two measurements (0: initialisation only).")
@click.option("--hidden", type=int, help="Hidden units (default: the dataset's).")
@click.option("--lr", type=float, help="Learning rate (default: the dataset's).")
@click.option("--optimizer", metavar="NAME[:k=v]", help="Optimiser (default adam).")
@click.option("--batch-size", type=int,
              help="Batch size, also the size of the measured batch (default: the dataset's).")
@shared.seed(help="Seed (default 0).")
@click.option("--plot", "plot_path", metavar="FILE", help="PNG of the norms over t, log scale "
              "(default: vanish-DATA.png in the runs dir).")
@click.option("--no-plot", is_flag=True, help="Do not write the PNG.")
@shared.plugin(help="Load plugins from a .py file or an importable module first (repeatable).")
@shared.runs_dir()
@shared.as_json(help="Print JSON instead of tables.")
@click.pass_context
def vanish_cmd(ctx, cell_specs, data, reg, epochs, hidden, lr, optimizer, batch_size, seed, plot_path, no_plot,
               plugins, runs_dir, as_json):
    """How the gradient ||dLoss/dh_t|| fades (or grows) back through time, per cell.

    For each cell, the norm over a batch of dLoss/dh_t at every step t of the dataset's sequences
    (top layer, forward direction), at initialisation and after a short ordinary training with the
    given regularisers; and the gradient norm of every epoch, before and after clipping.

    \b
    rnnrun vanish --cell rnn,lstm,gru --data adding:T=100
    rnnrun vanish --cell rnn:nonlinearity=relu --data adding:T=100 --reg clip:1.0
    """
    from ..experiment import check_all, resolve
    from ..lessons import Vanish, vanish
    load_plugins(plugins)
    if plot_path and not no_plot:
        _check_plot_path(plot_path)
    elif not no_plot:  # the plot goes to the runs dir: a dir that cannot take it is refused before measuring
        check_runs_dir(shared.runs_dir_of(ctx, runs_dir))
    base = config_from_flags(None, data=data, optimizer=optimizer, reg=reg, hidden=hidden, layers=None,
                             bidirectional=None, epochs=max(epochs, 1), batch_size=batch_size, lr=lr, seed=seed,
                             backend=None, path=None)
    configs = [resolve({**base, "cell": name, "cell_options": options}) for name, options in _cell_specs(cell_specs)]
    check_all(configs)  # every cell built and sized before the first is measured
    for config in configs:
        config["epochs"] = epochs
    err = console(stderr=True)
    results = []
    for config in configs:
        if not as_json:
            err.print(f"[dim]{config['cell']}: measuring at initialisation"
                      + (f", training {epochs} epoch{'s' if epochs != 1 else ''}, measuring again" if epochs else "")
                      + "...[/]")
        results.append(vanish(config))
    label = _cell_label
    # the results print first: a plot that cannot be written must not cost the measurements
    plot, plot_error = None, None
    if not no_plot:
        try:
            plot = _plot(results, configs, plot_path, shared.runs_dir_of(ctx, runs_dir), data)
        except (OSError, ValueError, ConfigError) as e:
            plot_error = f"the plot was not written: {getattr(e, 'strerror', None) or e}"
    if as_json:
        print_json({"data": data, "plot": plot, "cells": [
            {"cell": label(c), "init": r.init.tolist(), "init_summary": Vanish.summary(r.init),
             "trained": None if r.trained is None else r.trained.tolist(),
             "trained_summary": None if r.trained is None else Vanish.summary(r.trained),
             "trained_epoch": r.trained_epoch,
             "history": r.history, "diverged": r.diverged} for r, c in zip(results, configs)]})
        _plot_failed(plot_error, plot_path)
        return
    out = console()
    first = configs[0]
    table, caption = _norms_table(results, configs, first)
    out.print(table)
    out.print(caption)
    if epochs:
        out.print(_history_table(results, configs))
    for r, c in zip(results, configs):
        if r.diverged:
            err.print(f"[red]{label(c)} diverged:[/] {r.diverged}", soft_wrap=True)
    if plot:
        out.print(f"[dim]plot: {plot}[/]")
    _plot_failed(plot_error, plot_path)


def _check_plot_path(path):
    try:
        from ..plots import supported_formats
    except ImportError:
        return  # no matplotlib: _plot says so
    check_output_file(path, "--plot", supported_formats())


def _plot_failed(message, asked_for):
    """A plot asked for with --plot that could not be written fails the command (exit 1, after the
    results); the default plot is a convenience, and its failure only a warning."""
    if message is None:
        return
    if asked_for:
        console(stderr=True).print(f"[red]error:[/] {message}", soft_wrap=True)
        raise Fail()
    console(stderr=True).print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def _cell_label(config):
    """rnn:relu for rnn:nonlinearity=relu: the option values are enough to tell cells apart."""
    options = ",".join(str(v) for v in config["cell_options"].values())
    return config["cell"] + (f":{options}" if options else "")


def _norms_table(results, configs, first):
    from ..lessons import Vanish
    T = len(results[0].init)
    regs = ", ".join(r["name"] for r in first["regularisers"]) or "no regulariser"
    epochs = max((len(r.history) for r in results), default=0)
    # the caption is printed after the table, not as its caption: rich crops a caption's last word
    # when the table is exactly as wide as the terminal
    caption = (f"hidden {first['hidden']}, {regs}; norms over a batch of {first['batch_size']}, "
               + (f"top layer; 'trained' is at the weights after epoch {epochs}, the last "
                  "(not the best-validation ones a run keeps). " if epochs else "top layer. ")
               + "'per step' = (t1/tT)^(1/(T-1)): the mean factor of one step back. The "
                 "sparklines share one log scale: lower is smaller.")
    table = Table(title=f"||dLoss/dh_t|| on {first['data']}{_options_text(first['data_options'])}",
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("cell", width=max(4, min(max(len(_cell_label(c)) for c in configs), 9)), no_wrap=True)
    table.add_column("", no_wrap=True, min_width=7)
    table.add_column(f"t = 1 … {T}", no_wrap=True, min_width=16)
    for column in ("t=1", f"t={T}", "t1/tT"):  # (t=T/2 is in --json)
        table.add_column(column, justify="right", no_wrap=True, min_width=7)
    table.add_column("per step", justify="right", no_wrap=True, min_width=8)
    rows = []
    for r, c in zip(results, configs):
        rows.append((_cell_label(c), "init", r.init))
        if r.trained is not None:
            rows.append(("", "trained", r.trained))
        elif r.diverged:
            rows.append(("", "diverged", None))
    lines = shared_sparklines([norms for _, _, norms in rows if norms is not None])
    for cell, when, norms in rows:
        if norms is None:
            table.add_row(cell, when, "", "–", "–", "–", "–")
            continue
        s = Vanish.summary(norms)
        table.add_row(cell, when, lines.pop(0), _sci(s["t=1"]), _sci(s["t=T"]), _sci(s["ratio"]),
                      _factor(s["per_step"]))
    return table, caption


def _history_table(results, configs):
    table = Table(title="Gradient norm per epoch", title_justify="left", box=box.SIMPLE_HEAD, caption_justify="left",
                  caption="'norm': the global gradient norm backward() produced, mean and max over the "
                          "epoch's batches; 'applied': the same after the regularisers (clip) acted, what "
                          "the optimiser used; 'clipped': the share of batches clipped.")
    table.add_column("cell", min_width=min(max(len(_cell_label(c)) for c in configs), 9))
    for column in ("epoch", "train loss", "norm mean", "max", "applied mean", "max", "clipped"):
        table.add_column(column, justify="right", min_width=5 if column in ("epoch", "max") else 7)
    for r, c in zip(results, configs):
        for i, m in enumerate(r.history):
            table.add_row(_cell_label(c) if i == 0 else "", str(m["epoch"]), _short(m["train_loss"]),
                          _short(m["grad_norm_mean"]), _short(m["grad_norm_max"]),
                          _short(m.get("applied_grad_norm_mean")), _short(m.get("applied_grad_norm_max")),
                          f"{m['clipped_rate']:.0%}" if "clipped_rate" in m else "–")
    return table


def _short(value):
    """At most 7 characters: 0.123, 45.6, 3.9e+03."""
    if value is None or not math.isfinite(value):
        return "–" if value is None else str(value)
    return f"{value:.3g}" if value == 0 or 1e-2 <= abs(value) < 1e4 else f"{value:.1e}"


def shared_sparklines(series, width=16):
    """One sparkline per series, all on the same log scale (so a lower line is a smaller gradient);
    long series are sampled at `width` evenly spaced steps. Zeros (no gradient at all) show as ' '."""
    sampled = []
    for values in series:
        index = sorted({round(i * (len(values) - 1) / max(width - 1, 1)) for i in range(min(width, len(values)))})
        sampled.append([values[i] for i in index])
    logs = [math.log10(v) for values in sampled for v in values if v > 0 and math.isfinite(v)]
    if not logs:
        return [" " * len(values) for values in sampled]
    low, high = min(logs), max(logs)
    span = max(high - low, 1e-12)
    return ["".join(" " if not (v > 0 and math.isfinite(v)) else
                    SPARK[int((math.log10(v) - low) / span * (len(SPARK) - 1) + 0.5)] for v in values)
            for values in sampled]


def _plot(results, configs, path, runs_dir, data):
    try:
        from ..plots import line_plot
    except ImportError:
        console(stderr=True).print("[dim]matplotlib is not installed: no plot (pip install 'tinygrad_rnn[plot]')[/]")
        return None
    if path is None:
        check_runs_dir(runs_dir)
        os.makedirs(runs_dir, exist_ok=True)
        path = os.path.join(runs_dir, f"vanish-{data.replace(':', '-').replace(',', '-').replace('=', '')}.png")
    series = {}
    for r, c in zip(results, configs):
        series[f"{_cell_label(c)} (init)"] = [v if v > 0 else float("nan") for v in r.init]
        if r.trained is not None:
            series[f"{_cell_label(c)} (after epoch {r.trained_epoch})"] = \
                [v if v > 0 else float("nan") for v in r.trained]
    line_plot(path, series, f"||dLoss/dh_t|| on {configs[0]['data']}", "gradient norm (log scale)", log=True)
    return path


def _options_text(options):
    return (":" + ",".join(f"{k}={v}" for k, v in options.items())) if options else ""


def _factor(value):
    """A per-step factor: 0.56, 1.15 (two decimals show a 10% difference; it compounds over T steps)."""
    return "–" if value is None or not math.isfinite(value) else "0" if value == 0 else f"{value:.2f}"


def _sci(value):
    return "–" if value is None or not math.isfinite(value) else "0" if value == 0 else f"{value:.1e}"


# ---- rnnrun graph -----------------------------------------------------------------------------------
@click.command("graph")
@click.option("--cell", "cell_spec", required=True, metavar="NAME[:k=v]", help="The cell to unroll.")
@click.option("--steps", default=3, show_default=True, type=click.IntRange(1, 20), help="Time steps to unroll.")
@click.option("--hidden", default=2, show_default=True, type=click.IntRange(1, 64), help="Hidden units.")
@click.option("--input-size", default=1, show_default=True, type=click.IntRange(1, 64), help="Input features.")
@click.option("--dot", "dot_path", metavar="FILE", help="Also write the graph as Graphviz DOT to FILE.")
@shared.seed(default=0, show_default=True, help="Seed of the weights and the input.")
@shared.plugin(help="Load plugins from a .py file or an importable module first (repeatable).")
def graph_cmd(cell_spec, steps, hidden, input_size, dot_path, seed, plugins):
    """The computation graph of a tiny unrolled model: the graph that backward() walks.

    One recurrent layer on the composed path (so every op shows), unrolled over --steps, and the loss
    mean((h_T - 0)^2). Ops are numbered in the order backward() calls them ([1] is the loss); an op
    used by several others (the graph is a DAG) is printed once and referred to after.

    \b
    rnnrun graph --cell rnn --steps 3
    rnnrun graph --cell gru --steps 2 --dot gru.dot && dot -Tpng gru.dot -o gru.png
    """
    from ..experiment import smoke_test_cell
    from ..lessons import preorder, tiny_model_graph, to_dot
    load_plugins(plugins)
    name, options = with_spec(cell_spec, "cell")
    smoke_test_cell(name, options, input_size, path="composed")
    if dot_path:
        check_output_file(dot_path, "--dot")
    graph, _ = _built(f"cell {name!r}", lambda: tiny_model_graph(name, steps=steps, hidden=hidden,
                                                                 input_size=input_size, seed=seed, **options))
    out = console()
    trees, width = [], out.width
    for depth, node, first in preorder(graph):
        label = _node_label(node, first, node.key == graph.root)
        width = max(width, 4 * depth + len(Text.from_markup(label)) + 1)
        del trees[depth:]
        trees.append(Tree(label, guide_style="dim") if depth == 0 else trees[-1].add(label))
    # a deep unroll is wider than the terminal: print it whole, never squeeze a label onto two lines
    (Console(width=width, highlight=False) if width > out.width else out).print(trees[0])
    params = [n for n in graph.leaves if n.kind == "parameter"]
    out.print(f"{len(graph.ops)} ops, {len(graph.leaves)} leaves ({len(params)} parameters, "
              f"{sum(n.kind == 'constant' for n in graph.leaves)} constants). backward() calls the ops' "
              f"backward in the order [1], [2], ... [{len(graph.ops)}]: each op after every op that uses "
              "its output, so its gradient is complete when its turn comes.", soft_wrap=False)
    if dot_path:
        with open(dot_path, "w", encoding="utf-8") as f:  # an OSError here is one line from the error path
            f.write(to_dot(graph, f"{name}, {steps} steps"))
        out.print(f"[dim]DOT: {dot_path} (render: dot -Tpng {dot_path} -o graph.png)[/]")


def _node_label(node, first, is_root):
    shape = str(tuple(node.shape))
    if node.kind == "op":
        text = f"[bold][{node.order}][/] {node.label} [dim]{shape}[/]"
        if is_root:
            return text + " [dim]← the loss[/]"
        return text if first else f"[dim][{node.order}] {node.label} {shape} ↑ shown above[/]"
    style = {"parameter": "cyan", "input": "green", "constant": "dim"}[node.kind]
    return f"[{style}]{node.label}[/] [dim]{shape}[/]"
