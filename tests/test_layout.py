"""The folder listing is the architecture: engine ← nn ← library ← runner, imports one way, no circles.

Read from the source with `ast` (nothing is imported), so a lazy import inside a function counts as
much as one at the top of a file: a circle through a function body is still a circle.
"""
import ast
import pathlib

import tinygrad_rnn

PACKAGE = pathlib.Path(tinygrad_rnn.__file__).parent
ENGINE = {f"tinygrad_rnn.{name}" for name in
          ("tensor", "function", "ops", "backend", "gradcheck", "random", "errors", "unroll", "tape", "tape_codegen", "tape_watch",
           "fusion", "fusion_cupy")}
# `python -m tinygrad_rnn` must start the application, so the package's __main__ is its one door in.
ENTRY = "tinygrad_rnn.__main__"
# The other door, and the only one from above the runner: `tinygrad_rnn.train(...)` (and the rest of
# the runner's Python API) imports the runner on first use, inside the module-level `__getattr__`
# (PEP 562) of tinygrad_rnn/__init__.py. Imports in that one function are kept apart (DOOR_IMPORTS) and
# held to exactly this; everywhere else, the rules below apply to every import, lazy ones too.
DOOR = ("tinygrad_rnn", "__getattr__")
DOOR_IMPORTS = {}


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = set()


def imports_of(path, name=None, text=None):
    """Every tinygrad_rnn module that `path` imports, relative imports resolved (`name` and `text` stand
    in for the module's name and source, to check the checker)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(text if text is not None else path.read_text())
    door = [node for node in tree.body if isinstance(node, ast.FunctionDef) and (name, node.name) == DOOR]
    if door:
        tree.body.remove(door[0])
        DOOR_IMPORTS[name] = _imports_in(door[0], package)
    return {m for m in _imports_in(tree, package) if m != name}


def _imports_in(tree, package):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # `from . import sweep` imports a module, not a name from the package: count it as that module
            submodules = {f"{target}.{alias.name}" for alias in node.names} & MODULES
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(target)
    return {m for m in found if m in MODULES}


MODULES |= {module_name(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layer(module):
    if module in ENGINE:
        return "engine"
    if module.startswith("tinygrad_rnn.nn"):
        return "nn"
    if module.startswith("tinygrad_rnn.runner") or module == ENTRY:
        return "runner"
    return "library"


def test_the_engine_imports_nothing_else_of_the_package():
    offenders = {m: sorted(GRAPH[m] - ENGINE) for m in ENGINE if GRAPH[m] - ENGINE}
    assert not offenders, f"engine modules importing outside the engine: {offenders}"


def test_nn_builds_only_on_the_engine():
    # `Recurrent` takes a cell class; names are looked up in the library (SequenceModel, the runner)
    offenders = {m: sorted(i for i in imports if layer(i) not in ("engine", "nn"))
                 for m, imports in GRAPH.items() if layer(m) == "nn"}
    offenders = {m: bad for m, bad in offenders.items() if bad}
    assert not offenders, f"nn modules importing the library or runner: {offenders}"


def test_nothing_outside_the_runner_imports_it():
    offenders = {m: sorted(i for i in imports if layer(i) == "runner")
                 for m, imports in GRAPH.items() if layer(m) != "runner"}
    offenders = {m: bad for m, bad in offenders.items() if bad}
    assert not offenders, f"modules outside tinygrad_rnn/runner/ importing it: {offenders}"


def test_the_one_door_into_the_runner_is_tinygrad_rnns_module_getattr():
    """`tinygrad_rnn.train` works (the door is there) and imports nothing but the runner's package; no
    other module above the runner has such a door (test_nothing_outside_the_runner_imports_it)."""
    assert DOOR_IMPORTS == {"tinygrad_rnn": {"tinygrad_rnn.runner"}}
    import subprocess
    import sys
    code = ("import sys, tinygrad_rnn; assert 'tinygrad_rnn.runner' not in sys.modules; "
            "from tinygrad_rnn.runner import train, load_run, sweep, tune; "
            "assert (tinygrad_rnn.train, tinygrad_rnn.load_run, tinygrad_rnn.sweep, tinygrad_rnn.tune) == "
            "(train, load_run, sweep, tune) and callable(tinygrad_rnn.sweep)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_import_graph_has_no_circle():
    # A package's __init__ is imported whenever any module below it is, so an edge to a package is an
    # edge to its __init__ only: `from .. import random` in nn/ is not a circle through tinygrad_rnn/.
    # What `tinygrad_rnn/__init__.py` itself re-exports is the public API and is checked like any module.
    state, path = {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target in sorted(GRAPH[module]):
            if target == "tinygrad_rnn":
                continue  # every submodule's parent package; its own imports are visited from the root
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import circle: " + " → ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_the_layer_rules_would_catch_a_wrong_import(tmp_path):
    """The checker itself: a module text that imports upwards is reported (guards against a test that
    cannot fail, e.g. after a rename that makes GRAPH empty)."""
    assert len(GRAPH) > 30 and GRAPH["tinygrad_rnn.runner.cli"]
    assert layer("tinygrad_rnn.tensor") == "engine" and layer("tinygrad_rnn.runner.app") == "runner"
    fake = PACKAGE / "nn" / "recurrent.py"
    imports = imports_of(fake, "tinygrad_rnn.nn.recurrent", "from ..registry import cells\nfrom .module import Module\n")
    assert imports == {"tinygrad_rnn.registry", "tinygrad_rnn.nn.module"}
    assert [layer(i) for i in sorted(imports)] == ["nn", "library"]


ROOT = pathlib.Path(__file__).resolve().parent.parent  # the repository, also when the package is installed
RUNNER = ROOT / "tinygrad_rnn" / "runner"


def test_no_module_name_is_both_a_runner_module_and_a_command_file():
    """`runner/sweeper.py` (the logic) beside `runner/commands/sweep.py` (the command): a reader who
    opens a name finds one file; and the runner's Python API can be named train, sweep, tune."""
    logic = {p.stem for p in RUNNER.glob("*.py")} - {"__init__"}
    commands = {p.stem for p in (RUNNER / "commands").glob("*.py")} - {"__init__"}
    assert logic & commands == set(), f"in both runner/ and runner/commands/: {logic & commands}"
    assert logic & {"train", "sweep", "tune", "load_run"} == set()


def test_commands_are_added_in_one_place_not_by_importing_them():
    """hatch's layout: the command files define commands and know no group; cli.py adds them all."""
    import re
    from tinygrad_rnn.runner.cli import COMMANDS, cli
    for path in (RUNNER / "commands").glob("*.py"):
        text = path.read_text()
        takes_the_group = re.search(r"^from \.\.app import[^\n]*\bcli\b|\bimport cli\b", text, re.M)
        assert "@cli." not in text and not takes_the_group, f"{path.name} registers on the group itself"
    assert sorted(cli.commands) == sorted(c.name for c in COMMANDS)
    assert not any("tinygrad_rnn.runner.commands" in m for m in GRAPH["tinygrad_rnn.runner.app"])


COMMAND_LINE = {"tinygrad_rnn.runner.app", "tinygrad_rnn.runner.cli", "tinygrad_rnn.runner.options"}


def test_the_python_api_does_not_go_through_the_command_line():
    """api.py (train, sweep, tune), run.py (load_run) and searches.py share the checks of user input with
    the commands (runner/inputs.py), not the click modules: nothing they reach imports app, cli, options
    or a command file, and none of them imports click itself."""
    import re
    reached, todo = set(), ["tinygrad_rnn.runner.api", "tinygrad_rnn.runner.run", "tinygrad_rnn.runner.searches"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += GRAPH[module]
    through = sorted(m for m in reached if m in COMMAND_LINE or m.startswith("tinygrad_rnn.runner.commands"))
    assert through == [], f"the Python API imports the command line: {through}"
    for name in ("api", "run", "searches", "inputs"):
        assert not re.search(r"^\s*(import click|from click)", (RUNNER / f"{name}.py").read_text(), re.M), name


def test_shared_options_are_declared_once_in_options_py():
    """pip's cmdoptions.py: --plugin, --runs-dir, --json, --quiet, --debug and --seed are spelt (name,
    metavar, type) in runner/options.py only; commands take them from there."""
    import re
    shared = re.compile(r"""click\.(option|Option)\(\[?["'](--plugin|--runs-dir|--json|--quiet|--debug|--seed)["']""")
    offenders = [p.name for p in RUNNER.rglob("*.py") if p.name != "options.py" and shared.search(p.read_text())]
    assert offenders == [], f"shared options declared again in {offenders}; use runner/options.py"
    assert "TRAINING_OPTIONS" not in (RUNNER / "app.py").read_text()


def test_setup_keeps_no_hand_written_package_list():
    """A hand-kept `packages =` list once left tinygrad_rnn.testing out of every user's install; the
    list is derived from the folders (setup.py), so there is none to forget."""
    import configparser
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "packages" not in setup["options"]


def test_a_built_wheel_holds_every_package_folder_and_the_plugins_data(tmp_path):
    """What a non-editable `pip install .` gets: every folder with an __init__.py (plugins/ as
    tinygrad_rnn_plugins) and the datasets' data files. Built from a copy, offline, without deps."""
    import shutil
    import subprocess
    import sys
    import zipfile
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("tinygrad_rnn", "plugins"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    folders = {"/".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tinygrad_rnn").rglob("__init__.py")}
    folders |= {"/".join(["tinygrad_rnn_plugins", *p.parent.relative_to(ROOT / "plugins").parts])
                for p in (ROOT / "plugins").rglob("__init__.py")}
    missing = {f for f in folders if f"{f}/__init__.py" not in names}
    assert missing == set(), f"package folders missing from the wheel: {missing}"
    data = {p.name for p in (ROOT / "plugins" / "datasets" / "data").iterdir() if p.is_file()}
    assert data and all(f"tinygrad_rnn_plugins/datasets/data/{n}" in names for n in data)


def test_ci_runs_the_readmes_test_command_which_tests_the_checkout():
    """The README's test command installs the checkout editable and runs pytest from it, so an edit
    to ops.py is what the next `pytest` tests; CI runs that same line, verbatim."""
    import re
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^python3 -m venv \.venv && \. \.venv/bin/activate && (.*pytest.*)$", readme, re.M)
    assert len(commands) == 1, commands
    command, = commands
    assert "pip install -e " in command and command.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci], f".ci/run does not run the README's `{command}`"


# The engine is "four short files": this number keeps it true (today's tinygrad keeps one like it in CI).
ENGINE_LINE_BUDGET = 1000
ENGINE_CORE = ("tensor.py", "function.py", "ops.py", "backend.py")


def test_the_engine_stays_within_its_line_budget():
    lines = {name: len((PACKAGE / name).read_text().splitlines()) for name in ENGINE_CORE}
    assert sum(lines.values()) <= ENGINE_LINE_BUDGET, \
        f"the engine is {sum(lines.values())} lines ({lines}); its budget is {ENGINE_LINE_BUDGET}"


def attribute_assignments_to_other_modules(path):
    """`X.name = ...` at a module's top level where X is a name the module imported: back-patching."""
    tree = ast.parse(path.read_text())
    imported = {alias.asname or alias.name.split(".")[0] for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    return [f"{path.name}:{node.lineno}" for node in tree.body if isinstance(node, (ast.Assign, ast.AugAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
            and target.value.id in imported]


def test_no_module_patches_another_modules_names():
    """Tensor is one class whose every method is written in its body (jump to `Tensor.sigmoid` and you
    find it), and Function knows Tensor without tensor.py setting a global of function.py."""
    offenders = [hit for p in PACKAGE.rglob("*.py") for hit in attribute_assignments_to_other_modules(p)]
    assert not offenders, f"module-level assignments to another module's names: {offenders}"
    import tinygrad_rnn.tensor
    for method in ("__add__", "__mul__", "__matmul__", "sigmoid", "tanh", "sum", "mean", "reshape", "__getitem__",
                   "linear", "chunk", "stack", "backward"):
        assert method in vars(tinygrad_rnn.tensor.Tensor), f"Tensor.{method} is not defined in the class body"


def test_the_patch_checker_finds_a_patch(tmp_path):
    fake = tmp_path / "patch.py"
    fake.write_text("from . import function as _function\nfrom .tensor import Tensor\n"
                    "_function._Tensor = Tensor\nTensor.tanh = lambda self: self\n")
    assert attribute_assignments_to_other_modules(fake) == ["patch.py:3", "patch.py:4"]
