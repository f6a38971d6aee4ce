"""The plugin registry: cells, datasets, regularisers, optimisers and loggers, found by name.

A plugin is a class registered under a name:

    from tinygrad_rnn import register_cell

    @register_cell("mygru")
    class MyGRU(nn.Module):
        '''A GRU without biases.'''         # the first docstring line is its description in `rnnrun list`

Plugins are discovered in this order: the built-in ones shipped in `plugins/` (installed as the
package `tinygrad_rnn_plugins`), installed packages that declare an entry point in the group
`tinygrad_rnn.plugins`, and files or modules named with `load_plugin` (the CLI's `--plugin`). A
plugin that fails to import is reported with its file and error and does not stop the others.
"""
import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import pkgutil
import sys
import sysconfig
import traceback
import warnings

from .errors import PluginError, UnknownPluginError

ENTRY_POINT_GROUP = "tinygrad_rnn.plugins"
BUILTIN_PACKAGE = "tinygrad_rnn_plugins"
USER_PLUGIN_PREFIX = "tinygrad_rnn_user_plugin_"  # the module name of a plugin file loaded by path


class Registry:
    """A name → class table for one kind of plugin."""

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}
        self._default = None

    def register(self, name, override=False, default=False):
        """Decorator: `@cells.register("gru")`. Registering a taken name needs override=True.

        `default=True` makes this plugin the one used when none is named (e.g. the optimiser)."""
        def decorate(cls):
            old = self._entries.get(name)
            if old is not None and not override and old is not cls and not _same_definition(old, cls):
                raise PluginError(f"{self.kind} {name!r} is already registered (by "
                                  f"{_where(old)}); pass override=True to replace it")
            self._entries[name] = cls
            cls.plugin_name = name
            if default:
                self._default = name
            return cls
        if not isinstance(name, str) or not name:
            raise PluginError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        return decorate

    def get(self, name):
        discover()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownPluginError(self.unknown_message(name)) from None

    @property
    def default(self):
        """The name of the plugin registered with default=True."""
        discover()
        if self._default is None:
            raise UnknownPluginError(f"no default {self.kind} is registered; name one of: {', '.join(self.names())}")
        return self._default

    def unknown_message(self, name):
        known = self.names()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(known) or '(none)'}{hint}"

    def names(self):
        discover()
        return sorted(self._entries)

    def describe(self, name):
        """The first line of the plugin's docstring."""
        doc = inspect.getdoc(self.get(name)) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def options(self, name):
        """The keyword options a plugin's constructor takes, with defaults: {name: default}."""
        return plugin_options(self.get(name))

    def __contains__(self, name):
        discover()
        return name in self._entries

    def __iter__(self):
        return iter(self.names())


def plugin_options(cls, skip=("self", "input_size", "hidden_size", "params", "optimizer", "lr", "seed")):
    """Keyword options of a class's __init__ and their defaults (what `rnnrun list` shows)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in sig.parameters.values()
            if p.name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


# Public names are spelt as PyTorch and NumPy spell theirs (-ize: optimizer, regularizer, standardize);
# the British spellings of earlier releases stay as aliases of the same objects.
cells = Registry("cell")
datasets = Registry("dataset")
regularizers = regularisers = Registry("regulariser")
optimizers = Registry("optimizer")
loggers = Registry("logger")
# The five registries by the word a spec, a message or `rnnrun list` calls them (in that order).
REGISTRIES = {"cell": cells, "dataset": datasets, "regulariser": regularisers, "optimizer": optimizers,
              "logger": loggers}

register_cell = cells.register
register_dataset = datasets.register
register_regularizer = register_regulariser = regularizers.register
register_optimizer = optimizers.register
register_logger = loggers.register

# Problems met while discovering plugins: (where, message). The CLI prints them as warnings.
load_errors = []
_discovered = False


def discover():
    """Import the built-in plugins, then entry-point plugins, once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    try:
        builtin = importlib.import_module(BUILTIN_PACKAGE)
    except ImportError as e:
        _report(BUILTIN_PACKAGE, e)
    else:
        for info in pkgutil.walk_packages(builtin.__path__, BUILTIN_PACKAGE + "."):
            _import_module(info.name)
    for ep in _entry_points():
        try:
            ep.load()
        except (Exception, SystemExit) as e:  # a broken third-party plugin must not stop the others
            _report(f"entry point {ep.name} = {ep.value}", e)


def _entry_points():
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_plugin(path_or_module):
    """Import a plugin file (`my_cells.py`) or module (`mypkg.cells`); its registrations take effect.

    Unlike discovery, a plugin named here that fails raises PluginError naming the file and the error.
    """
    discover()
    target = str(path_or_module)
    if target.endswith(".py") or os.sep in target or os.path.exists(target):
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise PluginError(f"plugin file not found: {target}")
        name = USER_PLUGIN_PREFIX + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # Python imports .py (and compiled) files only
            raise PluginError(f"plugin {target} is not a Python file: pass a .py file or an importable module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # a plugin that calls sys.exit() on import fails too
            sys.modules.pop(name, None)
            raise PluginError(f"plugin {target} failed to load: {_one_line(e, path)}") from e
        return module
    try:
        return importlib.import_module(target)
    except (Exception, SystemExit) as e:
        raise PluginError(f"plugin module {target!r} failed to load: {_one_line(e)}") from e


def _import_module(name):
    try:
        importlib.import_module(name)
    except (Exception, SystemExit) as e:
        _report(name, e)


def _report(where, error):
    origin = _file_of(where)
    message = f"plugin {origin} failed to load: {_one_line(error)}"
    load_errors.append((where, message))
    warnings.warn(message, RuntimeWarning, stacklevel=2)


def _file_of(module_name):
    """The file a module would load from (it failed to import, so it is not in sys.modules)."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    return getattr(spec, "origin", None) or module_name


def _one_line(error, path=None):
    """`SyntaxError: invalid syntax (line 3)` style: type, message and the line in the plugin file."""
    if isinstance(error, SyntaxError):
        return f"{type(error).__name__}: {error.msg} (line {error.lineno})"
    if isinstance(error, SystemExit):
        error = RuntimeError(f"it called sys.exit({error.code!r}) while loading")
    line = ""
    if path:
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            if os.path.abspath(frame.filename) == path:
                line = f" (line {frame.lineno})"
                break
    return f"{type(error).__name__}: {error}{line}"


_LIBRARY_DIRS = tuple(os.path.abspath(p) + os.sep for p in {
    os.path.dirname(__file__),                                        # the tinygrad_rnn package
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
    *(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))})  # a base venv's too


def plugin_frame(error):
    """(file, line) of the innermost frame of `error`'s traceback that is a plugin's: a built-in
    plugin, a file loaded with --plugin, or any code outside tinygrad_rnn, the standard library and
    installed packages. None where the error came from none (then it is not a plugin's to answer for)."""
    for frame, line in reversed(list(traceback.walk_tb(error.__traceback__))):
        path = os.path.abspath(frame.f_code.co_filename)
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith((BUILTIN_PACKAGE, USER_PLUGIN_PREFIX)) or \
                not path.startswith(_LIBRARY_DIRS) and not frame.f_code.co_filename.startswith("<"):
            return path, line
    return None


def short_path(path):
    """`path` relative to the working folder where it lies below it (what a user typed), else as is."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def _same_definition(old, new):
    """The same class defined again by the same module (a plugin file loaded a second time)."""
    return (old.__module__, old.__qualname__) == (new.__module__, new.__qualname__)


def where_defined(obj):
    """'path/to/file.py line N' where a plugin's class or function is defined (its module where not known)."""
    try:
        path = inspect.getsourcefile(obj) or inspect.getfile(obj)
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return getattr(obj, "__module__", repr(obj))
    return f"{path} line {line}"


def _where(cls):
    module = sys.modules.get(cls.__module__)
    return getattr(module, "__file__", None) or cls.__module__
