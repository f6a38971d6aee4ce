"""`rnnrun train`: train one model per cell, print the results table (the driver is ../training.py).

    rnnrun train --cell gru --data sine
    rnnrun --cell gru --data sine                the same: a command line that names no command trains

Its flags are options.TRAINING, defined once; `rnnrun --config FILE` repeats a stored run.
"""
import click

from .. import options as shared
from ..app import check_runs_dir, config_from_flags, load_plugins, specs
from ...errors import ConfigError


class TrainCommand(click.Command):
    """`rnnrun --cell gru runs` mixes training flags with another command: say so, not just
    'unexpected extra argument'."""

    def parse_args(self, ctx, args):
        allowed, ctx.allow_extra_args = ctx.allow_extra_args, True
        rest = super().parse_args(ctx, args)
        ctx.allow_extra_args = allowed
        if ctx.args:
            sub = ctx.args[0]
            commands = ctx.parent.command.commands if ctx.parent else {}
            if sub in commands and sub != self.name:
                given = [max(p.opts, key=len) for p in self.params
                         if ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
                raise click.UsageError(f"{', '.join(given) or 'these options'} belong to training "
                                       f"(rnnrun --cell ...), not to `rnnrun {sub}`; options of `rnnrun {sub}` go "
                                       f"after it (see `rnnrun {sub} --help`)")
            raise click.UsageError(f"Got unexpected extra argument{'s' if len(ctx.args) > 1 else ''} "
                                   f"({' '.join(ctx.args)})")
        return rest


@click.command("train", cls=TrainCommand)
@shared.training_options
@click.pass_context
def train_cmd(ctx, cell, data, reg, optimizer, schedule, hidden, layers, bidirectional, epochs, batch_size, lr, seed,
              backend, path, fused_alias, composed_alias, compiled_alias, plugins, log, config_file, runs_dir,
              checkpoint_every, as_json, quiet):
    """Train one model per cell and print the results, beside the dataset's baseline.

    \b
    rnnrun train --cell gru --data sine        (or just rnnrun --cell gru --data sine)
    rnnrun train --cell rnn,lstm,gru --data adding:T=100 --reg clip:1.0
    rnnrun train --config runs/<id>/config.toml --epochs 5
    """
    given = [p.name for p in ctx.command.params
             if ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
    if not cell and not config_file:
        if given:
            raise ConfigError("no cell given: pass --cell NAME (e.g. --cell gru; `rnnrun list` shows them) "
                              "or --config FILE")
        click.echo(ctx.get_help())
        return
    run_path = shared.path_of(path, fused_alias, composed_alias, compiled_alias)
    runs_dir = shared.runs_dir_of(ctx, runs_dir)
    load_plugins(plugins)
    from ..experiment import check_all, resolve
    from ..sweeper import plugin_ref
    base = config_from_flags(config_file, data=data, optimizer=optimizer, schedule=schedule, reg=reg, hidden=hidden,
                             layers=layers, bidirectional=bidirectional, epochs=epochs, batch_size=batch_size,
                             lr=lr, seed=seed, backend=backend, path=run_path, log=log)
    plugins = shared.plugins_of(ctx, plugins)
    if plugins:  # recorded in config.toml, so `rnnrun --config` loads them again
        base["plugins"] = list(dict.fromkeys(base.get("plugins", []) + [plugin_ref(p) for p in plugins]))
    cell_specs = specs(cell, "cell", "--cell") if cell else [(base.get("cell"), base.get("cell_options", {}))]
    configs = [resolve({**base, "cell": name, "cell_options": options}) for name, options in cell_specs]
    if configs[0]["backend"] == "cupy":
        from ...backend import module
        module("cupy")  # fail now, before any run folder is made
    check_runs_dir(runs_dir)
    check_all(configs)
    from ..store import RunStore
    from ..training import train_all
    train_all(configs, RunStore(runs_dir), as_json, quiet, checkpoint_every)
