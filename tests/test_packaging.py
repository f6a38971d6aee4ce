"""Packaging promises that hold on every Python the package says it supports (setup.cfg's
python_requires, the README): Python 3.10 has no tomllib, so the code reads TOML with tomli there."""
import ast
import configparser
import importlib.util
import pathlib
import re
import sys

import pytest

import tinygrad_rnn

ROOT = pathlib.Path(tinygrad_rnn.__file__).parent.parent


def setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def test_setup_cfg_and_readme_name_the_same_oldest_python():
    oldest = setup_cfg()["options"]["python_requires"].strip()
    assert oldest == ">=3.10"
    assert "Python ≥ 3.10" in (ROOT / "README.md").read_text()


def test_tomllib_is_imported_only_where_python_3_10_gets_tomli_instead():
    """Every `import tomllib` of the package sits in config.py's version switch, whose else imports tomli;
    and tomli is a dependency exactly where the switch takes it."""
    found = []
    for path in (ROOT / "tinygrad_rnn").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names):
                found.append(path.relative_to(ROOT).as_posix())
    assert found == ["tinygrad_rnn/runner/config.py"]
    source = (ROOT / "tinygrad_rnn/runner/config.py").read_text()
    assert re.search(r"if sys.version_info >= \(3, 11\):\n    import tomllib\nelse:.*\n    import tomli as tomllib",
                     source)
    requires = setup_cfg()["options"]["install_requires"]
    assert re.search(r'^tomli>=[\d.]+; python_version < "3.11"$', requires, re.M), requires


def test_on_python_3_10_config_files_are_read_with_tomli(monkeypatch, tmp_path):
    """config.py loaded afresh (a copy beside the real module, which stays as it is) as Python 3.10 would."""
    pytest.importorskip("tomli")
    path = ROOT / "tinygrad_rnn/runner/config.py"
    spec = importlib.util.spec_from_file_location("tinygrad_rnn.runner._config_on_3_10", path)
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    spec.loader.exec_module(copy)
    monkeypatch.undo()
    assert copy.tomllib.__name__ == "tomli"
    toml = tmp_path / "c.toml"
    toml.write_text('cell = "gru"\nhidden = 8\n')
    assert copy.load_toml(str(toml)) == {"cell": "gru", "hidden": 8}
