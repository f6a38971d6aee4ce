"""`rnnrun train`: train one model per cell, print the results table (the driver is ../training.py).

    rnnrun train --cell gru --data sine
    rnnrun --cell gru --data sine                the same: a command line that names no command trains

Its flags are options.TRAINING, defined once; `rnnrun --config FILE` repeats a stored run.
"""
import sys

import click

from .. import options as shared
from ..output import Fail
from ..signals import exit_code
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
              seeds, backend, path, fused_alias, composed_alias, compiled_alias, plugins, log, config_file,
              runs_dir, checkpoint_every, as_json, quiet):
    """Train one model per cell and print the results, beside the dataset's baseline.

    \b
    rnnrun train --cell gru --data sine        (or just rnnrun --cell gru --data sine)
    rnnrun train --cell rnn,lstm,gru --data adding:T=100 --reg clip:1.0
    rnnrun train --config runs/<id>/config.toml --epochs 5
    rnnrun train --cell gru --data airline --seeds 5   (mean ± sd over seeds 0..4, and their ensemble)
    """
    given = [p.name for p in ctx.command.params
             if ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
    if not cell and not config_file:
        if given:
            raise ConfigError("no cell given: pass --cell NAME (e.g. --cell gru; `rnnrun list` shows them) "
                              "or --config FILE")
        click.echo(ctx.get_help())
        return
    from ..api import plan_training  # one code path: the Python API's train() does the same
    from ..store import RunStore
    from ..training import print_results, train_all
    runs_dir = shared.runs_dir_of(ctx, runs_dir)
    configs = plan_training(cell=cell, data=data, reg=reg, optimizer=optimizer, schedule=schedule, hidden=hidden,
                            layers=layers, bidirectional=bidirectional, epochs=epochs, batch_size=batch_size, lr=lr,
                            seed=seed, seeds=seeds, backend=backend, path=shared.path_of(path, fused_alias, composed_alias,
                                                                            compiled_alias),
                            plugins=plugins, log=log, config=config_file, runs_dir=runs_dir,
                            loaded_plugins=shared.plugins_of(ctx, ()))
    show = not as_json and not quiet
    try:
        summaries = train_all(configs, RunStore(runs_dir), checkpoint_every, progress=show, verbose=show, notes=True)
    except KeyboardInterrupt as e:  # said in one line already; the run's files are kept
        sys.exit(exit_code(e))
    print_results(summaries, as_json, quiet, configs, seeds=seeds)
    if any(s["status"] != "finished" for s in summaries):
        raise Fail()
