"""The plugin registry: names, errors, discovery order, and plugins that fail to load."""
import importlib.metadata
import sys
import textwrap

import pytest

import tinygrad_rnn
from tinygrad_rnn import registry
from tinygrad_rnn.errors import PluginError, UnknownPluginError
from tinygrad_rnn.registry import Registry


def test_builtin_plugins_are_discovered():
    assert {"rnn", "lstm", "gru", "peephole"} <= set(registry.cells.names())
    assert {"sine", "adding", "airline"} <= set(registry.datasets.names())
    assert {"clip", "tbptt", "xavier", "batchnorm"} <= set(registry.regularisers.names())
    assert {"sgd", "adam", "adamw", "rmsprop"} <= set(registry.optimizers.names())


def test_unknown_name_lists_known_names_and_closest_match():
    with pytest.raises(UnknownPluginError) as err:
        registry.cells.get("lstn")
    message = str(err.value)
    assert "'lstm'" in message and "gru" in message and "rnn" in message
    assert isinstance(err.value, KeyError)


def test_description_is_the_docstrings_first_line():
    reg = Registry("thing")

    @reg.register("a")
    class A:
        """First line.

        More text."""

    assert reg.describe("a") == "First line."


def test_registering_a_name_twice_needs_override():
    reg = Registry("thing")
    reg.register("a")(type("A", (), {}))
    with pytest.raises(PluginError, match="already registered"):
        reg.register("a")(type("B", (), {}))
    B = type("B", (), {})
    reg.register("a", override=True)(B)
    assert reg._entries["a"] is B


def test_plugin_file_with_a_syntax_error_names_its_file(tmp_path):
    bad = tmp_path / "broken_plugin.py"
    bad.write_text("def oops(:\n")
    with pytest.raises(PluginError) as err:
        tinygrad_rnn.load_plugin(str(bad))
    assert "broken_plugin.py" in str(err.value) and "SyntaxError" in str(err.value)


def test_plugin_file_that_raises_names_its_file_and_line(tmp_path):
    bad = tmp_path / "raising_plugin.py"
    bad.write_text("x = 1\nraise RuntimeError('no luck')\n")
    with pytest.raises(PluginError) as err:
        tinygrad_rnn.load_plugin(str(bad))
    assert "raising_plugin.py" in str(err.value) and "no luck" in str(err.value) and "line 2" in str(err.value)


def test_missing_plugin_file_is_a_clear_error(tmp_path):
    with pytest.raises(PluginError, match="not found"):
        tinygrad_rnn.load_plugin(str(tmp_path / "nope.py"))


def test_plugin_file_registers_its_classes(tmp_path):
    good = tmp_path / "good_plugin.py"
    good.write_text(textwrap.dedent('''
        from tinygrad_rnn import Regulariser, register_regulariser

        @register_regulariser("do_nothing_test")
        class DoNothing(Regulariser):
            """Does nothing at all."""
    '''))
    tinygrad_rnn.load_plugin(str(good))
    assert registry.regularisers.describe("do_nothing_test") == "Does nothing at all."


def test_entry_point_plugins_load_and_a_broken_one_does_not_stop_the_others(tmp_path, monkeypatch):
    (tmp_path / "ep_good_plugin.py").write_text(textwrap.dedent('''
        from tinygrad_rnn import Regulariser, register_regulariser

        @register_regulariser("from_entry_point_test")
        class FromEntryPoint(Regulariser):
            """Registered through an entry point."""
    '''))
    (tmp_path / "ep_bad_plugin.py").write_text("raise ImportError('missing dependency')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [importlib.metadata.EntryPoint("bad", "ep_bad_plugin", registry.ENTRY_POINT_GROUP),
              importlib.metadata.EntryPoint("good", "ep_good_plugin", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "_entry_points", lambda: points)
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.setattr(registry, "load_errors", [])
    with pytest.warns(RuntimeWarning, match="ep_bad_plugin"):
        registry.discover()
    assert "from_entry_point_test" in registry.regularisers.names()
    assert any("missing dependency" in message for _, message in registry.load_errors)
    sys.modules.pop("ep_good_plugin", None)


def string_constants(source):
    """Every string literal in code, leaving out docstrings (examples in prose are fine)."""
    import ast
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings}


def test_core_names_no_plugin():
    """Nothing in tinygrad_rnn/ special-cases a built-in cell, dataset or regulariser by name."""
    import pathlib
    core = pathlib.Path(tinygrad_rnn.__file__).parent
    names = set(registry.cells.names()) | set(registry.datasets.names()) | set(registry.regularisers.names())
    offenders = [(path.name, name) for path in core.rglob("*.py")
                 for name in names & string_constants(path.read_text())]
    assert not offenders, offenders


def test_loading_the_same_plugin_file_twice_is_harmless(tmp_path):
    plugin = tmp_path / "twice_plugin.py"
    plugin.write_text(textwrap.dedent('''
        from tinygrad_rnn import Regulariser, register_regulariser

        @register_regulariser("loaded_twice_test")
        class LoadedTwice(Regulariser):
            """Loaded twice."""
    '''))
    tinygrad_rnn.load_plugin(str(plugin))
    tinygrad_rnn.load_plugin(str(plugin))
    assert registry.regularisers.describe("loaded_twice_test") == "Loaded twice."


def test_the_default_optimizer_is_the_one_a_plugin_declared():
    reg = Registry("thing")
    with pytest.raises(UnknownPluginError, match="no default thing"):
        reg._default or reg.default
    reg.register("b", default=True)(type("B", (), {}))
    assert reg.default == "b"
    assert registry.optimizers.default in registry.optimizers.names()


def test_public_names_have_one_spelling_and_the_old_ones_are_aliases():
    import tinygrad_rnn
    import tinygrad_rnn.testing as testing
    from tinygrad_rnn import registry
    assert tinygrad_rnn.Regulariser is tinygrad_rnn.Regularizer
    assert tinygrad_rnn.register_regulariser is tinygrad_rnn.register_regularizer
    assert tinygrad_rnn.register_regularizer == registry.regularizers.register  # a bound method: equal, not the same
    assert registry.regularisers is registry.regularizers
    assert testing.check_regulariser is testing.check_regularizer
    # the -ize spelling is the one the public API lists first and the built-in plugins use
    assert {"Regularizer", "register_regularizer", "register_optimizer"} <= set(tinygrad_rnn.__all__)
    import pathlib
    plugins = pathlib.Path(__file__).resolve().parent.parent / "plugins"
    assert not [p.name for p in plugins.rglob("*.py") if "register_regulariser" in p.read_text()]
