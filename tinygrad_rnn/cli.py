"""`rnnrun`: train recurrent nets from the command line, compare them, and find the runs again.

    rnnrun --cell gru --data sine                  train one model, print its results
    rnnrun --cell rnn,lstm,gru --data adding       one run per cell, side by side
    rnnrun list | runs | show RUN | compare RUN... | forecast RUN --steps 50

Every user mistake becomes one line on stderr and exit code 2; a run that fails exits 1; Ctrl-C
exits 130 and keeps the run's files. This file holds the group (training) and `list`; the other
subcommands live in cli_runs.py, cli_teach.py, cli_text.py and cli_sweep.py.
"""
import json
import sys
import warnings

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__
from .config import load_toml, parse_spec, signature_text, split_names
from .errors import BackendError, ConfigError, PluginError, TinygradRNNError, UnknownPluginError
from .registry import cells, datasets, discover, load_errors, load_plugin, optimizers, regularisers
from .runs import RunStore
from .signals import on_ctrl_c

USAGE_ERRORS = (ConfigError, UnknownPluginError, PluginError, BackendError)
KINDS = (("cell", cells), ("dataset", datasets), ("regulariser", regularisers), ("optimizer", optimizers))


class Fail(Exception):
    """A run that failed (exit 1), already reported."""


def console(stderr=False):
    return Console(stderr=stderr, highlight=False)


def load_plugins(paths):
    """Discover the built-in and entry-point plugins, then load --plugin ones; broken ones are warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reported below, once, as one line each
        discover()
    for path in paths:
        load_plugin(path)
    if load_errors:
        err = console(stderr=True)
        for _, message in load_errors:
            err.print(f"[yellow]warning:[/] {message}", soft_wrap=True)
        load_errors.clear()


def with_spec(spec, kind):
    name, positional, options = parse_spec(spec, kind)
    if positional:
        raise ConfigError(f"{kind} {name!r}: bare values are not allowed here; write {name}:key=value")
    return name, options


def config_from_flags(config_file, **flags):
    """The partial config: the TOML file's settings, overridden by the flags that were given."""
    config = {}
    if config_file:
        config = load_toml(config_file)
        config.pop("meta", None)
    data = flags.pop("data", None)
    if data:
        config["data"], config["data_options"] = with_spec(data, "dataset")
    optimizer = flags.pop("optimizer", None)
    if optimizer:
        config["optimizer"], config["optimizer_options"] = with_spec(optimizer, "optimizer")
    schedule = flags.pop("schedule", None)
    if schedule:
        config["schedule"], config["schedule_options"] = with_spec(schedule, "schedule")
    regs = flags.pop("reg", None)
    if regs:
        config["regularisers"] = []
        for spec in regs:
            name, positional, options = parse_spec(spec, "regulariser")
            from .config import check_options
            options = check_options(regularisers.get(name), "regulariser", name, positional, options)
            config["regularisers"].append({"name": name, "options": options})
    for key, value in flags.items():
        if value is not None:
            config[key] = value
    return config


class RnnrunGroup(click.Group):
    """A click group whose errors are one line on stderr and an exit code, never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except USAGE_ERRORS as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(2)
        except Fail:
            sys.exit(1)
        except TinygradRNNError as e:  # a run that failed for a reason the user can act on
            click.echo(f"Error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


# ---- the command group: `rnnrun [OPTIONS]` trains --------------------------------------------------
@click.group(cls=RnnrunGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--cell", multiple=True, metavar="NAME[:k=v]",
              help="Cell(s) to train: gru, or several as rnn,lstm,gru (one run each, compared side by side).")
@click.option("--data", metavar="NAME[:k=v,...]", help="Dataset, with options: sine, adding:T=200.")
@click.option("--reg", multiple=True, metavar="NAME[:k=v,...]",
              help="Regulariser, repeatable: --reg clip:1.0 --reg tbptt:k=25 --reg xavier --reg batchnorm.")
@click.option("--optimizer", metavar="NAME[:k=v]", help="Optimiser (default adam), e.g. sgd:momentum=0.9.")
@click.option("--schedule", metavar="NAME[:k=v]",
              help="Learning-rate schedule per epoch: cosine (over all epochs) or step:step_size=10,gamma=0.5.")
@click.option("--hidden", type=int, help="Hidden units per layer and direction (default: the dataset's).")
@click.option("--layers", type=int, help="Stacked recurrent layers (default 1).")
@click.option("--bidirectional/--unidirectional", default=None, help="Run each layer in both directions.")
@click.option("--epochs", type=int, help="Training epochs (default: the dataset's).")
@click.option("--batch-size", type=int, help="Sequences per batch (default: the dataset's).")
@click.option("--lr", type=float, help="Learning rate (default: the dataset's).")
@click.option("--seed", type=int, help="Seed for data, weights, shuffling and dropout (default 0).")
@click.option("--backend", type=click.Choice(["numpy", "cupy"]), help="Array backend (default numpy).")
@click.option("--fused/--composed", default=None,
              help="Fused whole-sequence cell kernels (default) or the readable composed cells.")
@click.option("--plugin", "plugins", multiple=True, metavar="PATH_OR_MODULE",
              help="Load plugins from a .py file or an importable module (repeatable).")
@click.option("--config", "config_file", type=str, metavar="FILE",
              help="TOML config (e.g. a run's config.toml); flags given here override it.")
@click.option("--runs-dir", default="runs", show_default=True, help="Where runs are stored.")
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON document of the results.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or model summary.")
@click.version_option(__version__, prog_name="rnnrun")
@click.pass_context
def cli(ctx, cell, data, reg, optimizer, schedule, hidden, layers, bidirectional, epochs, batch_size, lr, seed, backend,
        fused, plugins, config_file, runs_dir, as_json, quiet):
    """Train recurrent nets on sequence tasks and compare them.

    \b
    rnnrun --cell gru --data sine
    rnnrun --cell rnn,lstm,gru --data adding:T=100 --reg clip:1.0
    rnnrun list          every cell, dataset, regulariser and optimiser
    rnnrun runs          past runs; then show / compare / forecast them
    """
    ctx.ensure_object(dict)
    ctx.obj.update(plugins=plugins, runs_dir=runs_dir)
    load_plugins(plugins)
    if ctx.invoked_subcommand is not None:
        return
    if not cell and not config_file:
        click.echo(ctx.get_help())
        return
    from .experiment import resolve
    base = config_from_flags(config_file, data=data, optimizer=optimizer, schedule=schedule, reg=reg, hidden=hidden,
                             layers=layers, bidirectional=bidirectional, epochs=epochs, batch_size=batch_size,
                             lr=lr, seed=seed, backend=backend, fused=fused)
    specs = split_names(cell) if cell else [base.get("cell")]
    configs = []
    for spec in specs:
        config = dict(base)
        if cell:
            config["cell"], config["cell_options"] = with_spec(spec, "cell")
        configs.append(resolve(config))
    if configs[0]["backend"] == "cupy":
        from .backend import module
        module("cupy")  # fail now, before any run folder is made
    train_all(configs, RunStore(runs_dir), as_json, quiet)


class Interrupted:
    """Ctrl-C seen. Python raises KeyboardInterrupt wherever the main thread is, and a library can
    swallow it (in a callback, a finaliser); the training callbacks check this flag as well, so the
    run still stops at the next batch."""
    seen = False

    @classmethod
    def handler(cls, signum, frame):
        cls.seen = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls):
        if cls.seen:
            raise KeyboardInterrupt


def train_all(configs, store, as_json, quiet):
    with on_ctrl_c(Interrupted.handler):
        return _train_all(configs, store, as_json, quiet)


def _train_all(configs, store, as_json, quiet):
    from .experiment import execute
    from .report import forecast_lines, model_table, results_table
    out, err = console(), console(stderr=True)
    show = not as_json and not quiet
    summaries = []
    for config in configs:
        progress = Progress(TextColumn("[bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("epoch {task.fields[epoch]}"), TextColumn("loss {task.fields[loss]}"),
                            TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), console=err,
                            disable=as_json or quiet, transient=False)
        task = None

        def on_start(run, dataset, model):
            nonlocal task
            if show:
                out.print(f"[dim]run {run.id}: {config['cell']} on {config['data']} "
                          f"({dataset.kind}, {dataset.problem}; {len(dataset.splits()['train'])} training sequences)[/]")
                out.print(model_table(model, title=f"Model: {config['cell']} on {config['data']}"))
            task = progress.add_task("train", total=config["epochs"], name=f"{config['cell']}/{config['data']}",
                                     epoch=0, loss="–", speed="")

        def on_batch(trainer, batch, batches, loss):
            Interrupted.check()
            progress.update(task, loss=f"{loss:.4g}", speed=f"batch {batch}/{batches}")

        def on_epoch(trainer, metrics):
            Interrupted.check()
            progress.update(task, advance=1, epoch=metrics["epoch"], loss=f"{metrics['val_loss']:.4g} (val)",
                            speed=f"{metrics['seconds']:.1f}s/epoch")

        with progress:
            try:
                summary = execute(config, store, on_start=on_start, on_epoch=on_epoch, on_batch=on_batch)
            except KeyboardInterrupt:
                progress.stop()
                err.print(f"[yellow]interrupted:[/] the run's config, metrics so far and last weights "
                          f"are kept in {store.root}")
                sys.exit(130)
        summaries.append(summary)
        if summary["status"] == "diverged":
            err.print(f"[red]diverged:[/] {summary['message']} (run kept in {summary['run_dir']})", soft_wrap=True)
    if as_json:
        keys = ("cell", "data", "params", "epochs", "train_loss", "val_loss", "val_metric", "test_metric",
                "test_loss", "metric", "baseline", "baseline_name", "seconds", "run_dir", "run_id", "status",
                "grad_norm_mean", "grad_norm_max", "clip_rate", "seed", "forecast")
        docs = [{k: s.get(k) for k in keys} | {k: v for k, v in s.items() if k.startswith("test_")} for s in summaries]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        out.print(results_table(summaries, title=f"Results on {configs[0]['data']}"))
        for s in summaries:
            if s.get("forecast"):
                out.print(forecast_lines(s))
        if not quiet:
            for s in summaries:
                out.print(f"[dim]{s['cell']}: {s['run_dir']}[/]")
    if any(s["status"] != "finished" for s in summaries):
        raise Fail()


# ---- subcommands ------------------------------------------------------------------------------------
@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def list_plugins(as_json):
    """Every cell, dataset, regulariser and optimiser, with its description and options."""
    from rich.table import Table
    catalogue = {f"{kind}s": [{"name": n, "description": reg.describe(n), "options": reg.options(n)}
                              for n in reg.names()] for kind, reg in KINDS}
    for entry in catalogue["datasets"]:
        cls = datasets.get(entry["name"])
        entry.update(kind=cls.kind, problem=cls.problem, metric=cls.metric_name)
    if as_json:
        click.echo(json.dumps(catalogue, indent=2, default=str))
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


def runs_dir_option(f):
    return click.option("--runs-dir", default=None, help="Where runs are stored (default ./runs).")(f)


def store_for(ctx, runs_dir):
    return RunStore(runs_dir or ctx.obj.get("runs_dir") or "runs")


# ---- subcommands kept in their own files register themselves on `cli` when imported ----------------
# (one import line per file here)
from . import cli_runs  # noqa: E402,F401  (rnnrun runs, show, compare, forecast)
from . import cli_sweep  # noqa: E402,F401  (rnnrun sweep)
from . import cli_text  # noqa: E402,F401  (rnnrun sample)
from . import cli_teach  # noqa: E402,F401  (rnnrun gradcheck, vanish, graph)


# ---- the entry point ---------------------------------------------------------------------------------
def main(argv=None):
    """The console script `rnnrun`."""
    cli.main(args=argv, prog_name="rnnrun")


if __name__ == "__main__":
    main()
