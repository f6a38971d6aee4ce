"""`rnnrun`: train recurrent nets from the command line, compare them, and find the runs again.

    rnnrun --cell gru --data sine                  train one model, print its results
    rnnrun --cell rnn,lstm,gru --data adding       one run per cell, side by side
    rnnrun list | runs | show RUN | compare RUN... | forecast RUN --steps 50

Every user mistake becomes one line on stderr and exit code 2; a run that fails exits 1; Ctrl-C
exits 130 and keeps the run's files. This file holds the group (its own options are only --plugin,
--runs-dir and --debug; a command line that names no command is routed to `train`, commands/train.py)
and what every command shares; the options many commands take are in options.py, and cli.py adds the
commands to the group. The checks of what a user gives are in inputs.py, without click, as the Python
API uses them too; the commands import them from here:

    run_config(run)             a stored run's config, its recorded plugins loaded, checked
    load_run_plugins(run)       only its recorded plugins loaded (a moved file: pass --plugin)
    with_spec(spec, kind)       parse and check one NAME:k=v spec (cell, dataset, regulariser,
                                optimizer, schedule) → (name, options); specs(values, kind) for lists
    config_from_flags(...)      a TOML file and flags → one partial config, both held to config.SCHEMA
    experiment.check_all(cfgs)  build every plugin of every run, and estimate memory, before any runs
    check_runs_dir(path)        a --runs-dir that can hold runs, checked before anything is written
    output.print_json(doc)      the one way to print --json: strict JSON, NaN and infinity as null
    RnnrunGroup.main            the one error path: every exception → one line + exit code; the
                                traceback only with --debug or RNNRUN_DEBUG=1
    store_for(ctx, runs_dir)    the run store of a command (options.runs_dir_of: the one way to find it)

A new command (a file in commands/, added to the list in cli.py) uses these and raises the project's
exceptions (ConfigError for a usage mistake, exit 2; TinygradRNNError or `Fail` for a run that failed,
exit 1); it never prints a traceback or catches what the error path handles.
"""
import errno
import os
import sys
import traceback
import warnings

import click

from .. import __version__, threads
from ..errors import BackendError, ConfigError, PluginError, TinygradRNNError, UnknownPluginError
from ..registry import plugin_frame, short_path
from . import options as shared
# what every command shares of the checks of user input, which the Python API shares too (no click there)
from .inputs import (check_output_file, check_readable_runs_dir, check_runs_dir, config_from_flags,  # noqa: F401
                     forget_given_plugins, load_plugins, load_run_plugins, run_config, specs, with_spec)
from .options import DEBUG_ENV, debug_enabled, debug_option
from .output import Fail, make_streams_tolerant, stdout_held_for_json

USAGE_ERRORS = (ConfigError, UnknownPluginError, PluginError, BackendError)
BROKEN_PIPE = 141  # `rnnrun runs | head`: quietly, with the status of a tool ended by SIGPIPE (128 + 13), as cat's


# ---- the one error path ---------------------------------------------------------------------------------
def report(error):
    """The exit code for `error`, after printing it as one line on stderr (and its traceback with
    --debug). Every command's failures come through here, so none ever prints a bare traceback."""
    err = sys.stderr
    if debug_enabled() and not isinstance(error, (Fail, click.exceptions.Exit)):
        traceback.print_exception(type(error), error, error.__traceback__, file=err)
    if isinstance(error, click.exceptions.Exit):
        return error.exit_code
    if isinstance(error, click.exceptions.Abort):
        click.echo("Aborted.", err=True)
        return 130
    if isinstance(error, click.ClickException):
        click.echo(f"Error: {error.format_message()}", err=True)
        return error.exit_code
    if isinstance(error, USAGE_ERRORS):
        click.echo(f"Error: {error}", err=True)
        return 2
    if isinstance(error, Fail):
        return 1
    if isinstance(error, TinygradRNNError):  # a run that failed for a reason the user can act on
        click.echo(f"Error: {error}", err=True)
        return 1
    if isinstance(error, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        return 130
    if isinstance(error, ReaderGone) or isinstance(error, OSError) and error.errno == errno.EPIPE:
        return BROKEN_PIPE  # the reader went away (`| head`): nothing to say, nobody to say it to
    if isinstance(error, MemoryError):
        click.echo("Error: out of memory; use a smaller --hidden, --batch-size or dataset", err=True)
        return 1
    if isinstance(error, OSError):
        if error.filename:
            click.echo(f"Error: {error.strerror or error}: {error.filename}", err=True)
        else:  # no file named: writing to stdout (> /dev/full) or a pipe
            click.echo(f"Error: cannot write the output: {error.strerror or error}", err=True)
        return 1
    click.echo(f"Error: {blame(error)}", err=True)
    return 1


def blame(error):
    """One line for an unexpected exception: the plugin (file and line) it came from, or, when none
    did, an internal error of rnnrun; both say how to see the traceback."""
    what = f"{type(error).__name__}: {error}".strip().splitlines()[0] if str(error).strip() else type(error).__name__
    frame = plugin_frame(error)
    if frame:
        return (f"plugin {short_path(frame[0])} failed: {what} (line {frame[1]}); "
                f"rerun with --debug (or {DEBUG_ENV}=1) for the traceback")
    frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
    where = f" (at {short_path(frames[-1].f_code.co_filename)} line {frames[-1].f_lineno})" if frames else ""
    return (f"internal error: {what}{where}; this is a bug in rnnrun, please report it with the "
            f"traceback that --debug (or {DEBUG_ENV}=1) prints")


class ReaderGone(Exception):
    """stdout's reader went away (`rnnrun runs | head`): not an error of the command, nothing to say."""


class RnnrunGroup(click.Group):
    """A click group whose errors are one line on stderr and an exit code, never a traceback.

    The output streams replace characters they cannot encode (PYTHONIOENCODING=ascii, LC_ALL=C), and
    output that cannot be written (`> /dev/full`) is one line on stderr and exit 1."""

    def add_command(self, cmd, name=None):
        """Every command takes --debug too, wherever the user types it (`rnnrun graph ... --debug`)."""
        if not any(param.name == "debug" for param in cmd.params):
            cmd.params.append(debug_option())
        super().add_command(cmd, name)

    def invoke(self, ctx):
        """click would turn a broken pipe into exit 1; it goes to `report` (BROKEN_PIPE) instead."""
        try:
            return super().invoke(ctx)
        except OSError as e:
            if e.errno == errno.EPIPE:
                raise ReaderGone() from e
            raise

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        shared.reset_debug()
        forget_given_plugins()
        make_streams_tolerant()
        inherited_threads = os.environ.get(threads.ENV)  # --threads sets it for this command only
        warnings.showwarning = _warning_line
        argv = sys.argv[1:] if args is None else list(args)
        try:
            with stdout_held_for_json("--json" in argv[:argv.index("--")] if "--" in argv else "--json" in argv):
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = code if isinstance(code, int) else 0
            sys.stdout.flush()
        except SystemExit as e:  # from a plugin or library that called sys.exit: not a success
            code = e.code if isinstance(e.code, int) and e.code != 0 else 1
            if e.code in (0, None):
                click.echo("Error: something (a plugin?) called sys.exit() before the command finished", err=True)
        except BaseException as e:  # noqa: B902 - every exception, KeyboardInterrupt too, ends here
            code = report(e)
        if inherited_threads is None:
            os.environ.pop(threads.ENV, None)
        else:
            os.environ[threads.ENV] = inherited_threads
        code = _flush_or_report(code)
        sys.exit(code)


def _warning_line(message, category, filename, lineno, file=None, line=None):
    """A warning as one line on stderr, where it came from at its end, never the source line Python
    quotes (a NumPy overflow deep in an op reads `warning: overflow encountered in multiply (...)`)."""
    if debug_enabled():
        text = warnings.formatwarning(message, category, filename, lineno, line)
    else:
        text = f"warning: {message} ({category.__name__}, {short_path(filename)} line {lineno})\n"
    try:
        (file or sys.stderr).write(text)
    except (OSError, ValueError):  # stderr gone: a warning is not worth failing for
        pass


def _flush_or_report(code):
    """Flush stdout now, while a failure can still be reported; afterwards stdout is /dev/null, so
    the interpreter's own flush at exit has nothing left to fail on."""
    try:
        sys.stdout.flush()
        return code
    except OSError as e:
        if e.errno != errno.EPIPE:
            click.echo(f"Error: cannot write the output: {e.strerror or e}", err=True)
        else:
            code = code or BROKEN_PIPE
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return code or 1


# ---- the command group: `rnnrun [OPTIONS] COMMAND`; bare `rnnrun --cell ...` is `rnnrun train` ----------
class RnnrunCli(RnnrunGroup):
    """The group of `rnnrun`. Training is the command `train`; a command line that names no command
    but starts with an option the group does not take (`rnnrun --cell gru --data sine`) is routed to
    it, as it always was. The commands themselves are added in cli.py, the one place that lists them."""

    DEFAULT_COMMAND = "train"

    def parse_args(self, ctx, args):
        if self._routes_to_training(ctx, args):
            args = [self.DEFAULT_COMMAND] + list(args)
        return super().parse_args(ctx, args)

    def _routes_to_training(self, ctx, args):
        own = {opt: param for param in self.get_params(ctx) for opt in param.opts + param.secondary_opts}
        words = iter(args)
        for word in words:
            name = word.split("=", 1)[0]
            if name in own:
                if name in ("--help", "-h", "--version"):
                    return False
                if not own[name].is_flag and "=" not in word:
                    next(words, None)  # the option's value
                continue
            return word.startswith("-") and word != "--"  # an option of training; a word is a command
        return False


@click.group(cls=RnnrunCli, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@shared.plugin(help="Load plugins from a .py file or an importable module (repeatable), for the command "
                    "that follows.")
@shared.runs_dir(help=f"Where runs are stored (default ./{shared.DEFAULT_RUNS_DIR}), for the command that follows.")
@shared.debug()
@click.version_option(__version__, prog_name="rnnrun")
@click.pass_context
def cli(ctx, plugins, runs_dir):
    """Train recurrent nets on sequence tasks and compare them.

    \b
    rnnrun --cell gru --data sine      the same as `rnnrun train --cell gru --data sine`
    rnnrun --cell rnn,lstm,gru --data adding:T=100 --reg clip:1.0
    rnnrun train --help  every training flag (--cell, --data, --path, --epochs, ...)
    rnnrun list          every cell, dataset, regulariser and optimiser
    rnnrun runs          past runs; then show / compare / forecast them
    """
    ctx.ensure_object(dict)
    ctx.obj.update(plugins=plugins, runs_dir=runs_dir)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        return
    load_plugins(plugins)


def store_for(ctx, runs_dir):
    """The run store of a command that reads runs: its --runs-dir, else the group's, else ./runs
    (options.runs_dir_of), checked first (check_readable_runs_dir)."""
    from .store import RunStore
    return RunStore(check_readable_runs_dir(shared.runs_dir_of(ctx, runs_dir)))
