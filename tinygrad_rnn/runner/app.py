"""`rnnrun`: train recurrent nets from the command line, compare them, and find the runs again.

    rnnrun --cell gru --data sine                  train one model, print its results
    rnnrun --cell rnn,lstm,gru --data adding       one run per cell, side by side
    rnnrun list | runs | show RUN | compare RUN... | forecast RUN --steps 50

Every user mistake becomes one line on stderr and exit code 2; a run that fails exits 1; Ctrl-C
exits 130 and keeps the run's files. This file holds the group, whose own options train (the driver is
training.py), and the helpers every command shares; the subcommands live in commands/, one file per
family, and import `cli` from here to register themselves. cli.py, the entry point, imports them all.
"""
import sys
import warnings

import click

from .. import __version__
from ..errors import BackendError, ConfigError, PluginError, TinygradRNNError, UnknownPluginError
from ..registry import discover, load_errors, load_plugin, regularisers
from .config import load_toml, parse_spec, split_names
from .output import Fail, console
from .runs import RunStore
from .training import train_all

USAGE_ERRORS = (ConfigError, UnknownPluginError, PluginError, BackendError)


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
@click.option("--compiled", is_flag=True, default=None,
              help="Run every cell, built-in ones too, as its traced step replayed (the path cells without "
                   "a fused kernel take by default).")
@click.option("--plugin", "plugins", multiple=True, metavar="PATH_OR_MODULE",
              help="Load plugins from a .py file or an importable module (repeatable).")
@click.option("--config", "config_file", type=str, metavar="FILE",
              help="TOML config (e.g. a run's config.toml); flags given here override it.")
@click.option("--runs-dir", default="runs", show_default=True, help="Where runs are stored.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Write a checkpoint (for `rnnrun resume`) every N epochs, and after the last.")
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON document of the results.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or model summary.")
@click.version_option(__version__, prog_name="rnnrun")
@click.pass_context
def cli(ctx, cell, data, reg, optimizer, schedule, hidden, layers, bidirectional, epochs, batch_size, lr, seed, backend,
        fused, compiled, plugins, config_file, runs_dir, checkpoint_every, as_json, quiet):
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
                             lr=lr, seed=seed, backend=backend, fused=fused, compiled=compiled or None)
    specs = split_names(cell) if cell else [base.get("cell")]
    configs = []
    for spec in specs:
        config = dict(base)
        if cell:
            config["cell"], config["cell_options"] = with_spec(spec, "cell")
        configs.append(resolve(config))
    if configs[0]["backend"] == "cupy":
        from ..backend import module
        module("cupy")  # fail now, before any run folder is made
    train_all(configs, RunStore(runs_dir), as_json, quiet, checkpoint_every)


def runs_dir_option(f):
    return click.option("--runs-dir", default=None, help="Where runs are stored (default ./runs).")(f)


def store_for(ctx, runs_dir):
    return RunStore(runs_dir or ctx.obj.get("runs_dir") or "runs")
