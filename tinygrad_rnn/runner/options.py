"""Every option more than one command takes, defined once (pip's cmdoptions.py does the same).

Each name below is a factory: `@options.plugin()` adds `--plugin` with its one spelling, metavar and
type; a command may pass `help=` (what *it* does with the value) or a default, never another name or
metavar. Options only one command takes stay in that command's file.

    plugin, runs_dir, as_json, quiet, debug, seed, log   the options of many commands
    threads                                           --threads N|auto: train, sweep, tune, resume
    TRAINING                                          the training flags of `rnnrun train`, in order
    training_options(f)                               all of TRAINING on one command
    runs_dir_of(ctx, runs_dir)                        where runs are stored: the one way to resolve it
    path_of(path, fused, composed, compiled)          --path and its one-release aliases → one path

The values of the group's own --plugin and --runs-dir (`rnnrun --runs-dir R show last`) reach the
commands through `ctx.obj`; runs_dir_of and plugins_of read both, so every command resolves them alike.
"""
import os

import click

from .. import threads as _threads
from ..errors import ConfigError
from .config import MAX_SEED, PATHS

SEED = click.IntRange(0, MAX_SEED)  # the click type of every --seed
WORKERS = click.IntRange(1, 4096)  # local worker processes of sweep and tune
DEBUG_ENV = "RNNRUN_DEBUG"
DEFAULT_RUNS_DIR = "runs"


def shared(*declarations, **attributes):
    """A factory of the click option `declarations`/`attributes`; a command may change `help` and
    `default`, nothing else (one name, one metavar, one type everywhere)."""
    def option(**changes):
        unknown = set(changes) - {"help", "default", "show_default"}
        if unknown:
            raise TypeError(f"a shared option's {sorted(unknown)} are defined once, in options.py")
        return click.option(*declarations, **{**attributes, **changes})
    option.declarations, option.attributes = declarations, attributes
    return option


# ---- the options of many commands ----------------------------------------------------------------------
plugin = shared("--plugin", "plugins", multiple=True, metavar="PATH_OR_MODULE",
                help="Load plugins from a .py file or an importable module (repeatable).")
runs_dir = shared("--runs-dir", default=None, metavar="DIR",
                  help=f"Where runs are stored (default ./{DEFAULT_RUNS_DIR}).")
as_json = shared("--json", "as_json", is_flag=True, help="Print only a JSON document of the results.")
quiet = shared("--quiet", "-q", is_flag=True, help="No progress bar or model summary.")
seed = shared("--seed", type=SEED, metavar="N", help="Seed for data, weights, shuffling and dropout (default 0).")
layers = shared("--layers", type=int, help="Stacked recurrent layers (default 1).")
bidirectional = shared("--bidirectional/--unidirectional", default=None, help="Run each layer in both directions.")
log = shared("--log", "log", multiple=True, metavar="NAME[:k=v]",
             help="Also log the run(s) to NAME, repeatable: --log tensorboard[:dir=PATH], "
                  "--log mlflow[:uri=URI,experiment=NAME], or a logger plugin (see `rnnrun list`).")

_debug = [False]


def _set_debug(ctx, param, value):
    if value:
        _debug[0] = True


def reset_debug():
    """Forget an earlier --debug: each `rnnrun` invocation (several in one test process) starts without."""
    _debug[0] = False


def debug_enabled():
    """--debug given, or RNNRUN_DEBUG set to anything but '', '0', 'false' or 'no'."""
    return _debug[0] or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


debug = shared("--debug", is_flag=True, is_eager=True, expose_value=False, callback=_set_debug,
               help=f"Print the traceback of an error (for plugin authors); also {DEBUG_ENV}=1.")


def debug_option():
    """--debug as a click.Option object: the group appends it to every command it is given."""
    return click.Option(list(debug.declarations), **debug.attributes)


def _set_threads(ctx, param, value):
    """--threads N|auto goes into RNNRUN_THREADS, where the run (and a sweep's worker processes) read it;
    a bad value, given or inherited, is a usage error before anything runs (tinygrad_rnn/threads.py).
    The group's main() puts RNNRUN_THREADS back as it was when the command ends."""
    if value is None:
        _threads.setting()  # an unusable RNNRUN_THREADS fails now, not in the middle of a run
    else:
        os.environ[_threads.ENV] = str(_threads.parse_threads(value))


# on every command that trains: train, sweep, tune, resume
threads = shared("--threads", metavar="N|auto", is_eager=True, expose_value=False, callback=_set_threads,
                 help=f"BLAS threads per run (also {_threads.ENV}); default auto: 1 unless the model's products "
                      "are big enough to pay for more (tinygrad_rnn/threads.py).")


def runs_dir_of(ctx, runs_dir):
    """The runs folder a command uses: its own --runs-dir, else the group's (`rnnrun --runs-dir R
    show`), else ./runs. A path only; app.check_runs_dir checks it before anything is written."""
    root = ctx.find_root().obj or {}
    for given in (runs_dir, root.get("runs_dir")):
        if given is not None:  # '' too: given, and refused by the check, not quietly ./runs
            return given
    return DEFAULT_RUNS_DIR


def plugins_of(ctx, plugins):
    """The group's --plugin values (`rnnrun --plugin X check`) followed by the command's own."""
    root = ctx.find_root().obj or {}
    return list(dict.fromkeys(list(root.get("plugins", ())) + list(plugins)))


# ---- training: `rnnrun train` (and bare `rnnrun --cell ...`) -------------------------------------------
path = shared("--path", type=click.Choice(PATHS), default=None,
              help="How cells run: auto (the default: a cell's fused kernel where it has one, else compiled), "
                   "fused, compiled (its traced step replayed, built-in cells too) or composed (the "
                   "readable cells op by op).")
# The old spellings of --path, kept for one release: each sets path; path_of says if they disagree.
fused_alias = shared("--fused", "fused_alias", is_flag=True, default=False, help="Same as --path auto, "
                     "what it always meant: a cell's fused kernel where it has one (deprecated alias, kept "
                     "for one release).")
composed_alias = shared("--composed", "composed_alias", is_flag=True, default=False,
                        help="Same as --path composed (deprecated alias, kept for one release).")
compiled_alias = shared("--compiled", "compiled_alias", is_flag=True, default=False,
                        help="Same as --path compiled (deprecated alias, kept for one release).")


def path_of(path, fused=False, composed=False, compiled=False):
    """--path and its aliases → one path (None when none was given); two that disagree are a usage error.
    Each alias used says, on stderr (never in --json's stdout), what replaces it."""
    aliases = [(alias, p) for alias, p, flag in (("--fused", "auto", fused), ("--composed", "composed", composed),
                                                 ("--compiled", "compiled", compiled)) if flag]
    given = [p for _, p in aliases] + ([path] if path else [])
    if len(set(given)) > 1:
        raise ConfigError(f"--path {', '.join(sorted(set(given)))} exclude each other; choose one of "
                          f"--path {'|'.join(PATHS)}")
    for alias, p in aliases:
        click.echo(f"note: {alias} is deprecated; use --path {p}", err=True)
    return given[0] if given else None


TRAINING = [
    shared("--cell", multiple=True, metavar="NAME[:k=v]",
           help="Cell(s) to train: gru, or several as rnn,lstm,gru (one run each, compared side by side)."),
    shared("--data", metavar="NAME[:k=v,...]", help="Dataset, with options: sine, adding:T=200."),
    shared("--reg", multiple=True, metavar="NAME[:k=v,...]",
           help="Regulariser, repeatable: --reg clip:1.0 --reg tbptt:k=25 --reg xavier --reg batchnorm."),
    shared("--optimizer", metavar="NAME[:k=v]", help="Optimiser (default adam), e.g. sgd:momentum=0.9."),
    shared("--schedule", metavar="NAME[:k=v]",
           help="Learning-rate schedule per epoch: cosine (over all epochs) or step:step_size=10,gamma=0.5."),
    shared("--hidden", type=int, help="Hidden units per layer and direction (default: the dataset's)."),
    layers,
    bidirectional,
    shared("--epochs", type=int, help="Training epochs (default: the dataset's)."),
    shared("--batch-size", type=int, help="Sequences per batch (default: the dataset's)."),
    shared("--lr", type=float, help="Learning rate (default: the dataset's)."),
    seed,
    shared("--seeds", type=click.IntRange(1, 1000), metavar="N",
           help="Train seeds SEED..SEED+N-1 of each cell; show mean ± sd over them and their ensemble."),
    shared("--backend", type=click.Choice(["numpy", "cupy"]), help="Array backend (default numpy)."),
    path, fused_alias, composed_alias, compiled_alias,
    plugin,
    log,
    shared("--config", "config_file", type=str, metavar="FILE",
           help="TOML config (e.g. a run's config.toml); flags given here override it."),
    runs_dir,
    shared("--checkpoint-every", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
           help="Write a checkpoint (for `rnnrun resume`) every N epochs, and after the last."),
    as_json,
    quiet,
    threads,
]


def training_options(f):
    """Every option of TRAINING on `f`, in TRAINING's order in --help."""
    for option in reversed(TRAINING):
        f = option()(f)
    return f
