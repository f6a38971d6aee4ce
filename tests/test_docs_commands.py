"""Every command in README.md and docs/*.md runs, in order, as a user would copy it.

Commands are the lines starting with `rnnrun ` or `$ rnnrun ` inside fenced ```bash and ```console
blocks (a trailing backslash continues a line; `# ...` comments are dropped). Each document runs in
a tmp dir of its own, which is also the current directory, with `--runs-dir` pointed there, so
`rnnrun show last` sees the run an earlier command of the same document made. Before its commands:
python blocks whose first line is `# NAME.py` are written there as files (plugins that commands
load with --plugin; the README's, its `my_plugins.py`, for every document), and the repository's
`examples/` and `plugins/` (whose data files the `csv` dataset's commands read) are linked there.

To keep the suite fast, training commands (a run, `rnnrun vanish`, `rnnrun sweep`, `rnnrun tune`) get `--epochs 1`
appended (the last --epochs wins) and train on 40 sequences (`n_train=40` added to a built-in dataset's spec
that does not set it; see `smaller`). A command must exit 0, or the code a trailing `# exit N` comment
on its line states.

The same for examples/README.md. The docs' other promises are checked here too: a snippet quoted from the source (a ```python
file=PATH block) must still appear verbatim in that file; the other python blocks run (with examples/
linked beside them too, and print what their `# → ...` comments say, where they have them); and the
hand-unrolled RNN of docs/03-cells.md is recomputed with `Recurrent`.
"""
import contextlib
import glob
import io
import os
import re
import shlex
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_rnn.runner.cli import cli

from helpers import restored_registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ([os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
             + [os.path.join(ROOT, "examples", "README.md")])
TRAINING = (None, "train", "vanish", "sweep", "tune")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)


def fenced_blocks(text):
    """(info string, body) of every fenced block, e.g. ('console', '$ rnnrun list\n...')."""
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(text)]


def commands_in(text):
    """[(argv after `rnnrun`, expected exit code)] in document order."""
    found = []
    for info, body in fenced_blocks(text):
        if info.split(" ")[0] not in ("bash", "console", "shell", "sh"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:].strip()
            if not line.startswith("rnnrun ") and line != "rnnrun":
                continue
            expected = re.search(r"#\s*exits?(?: code)?\s+(\d+)", line)
            words = shlex.split(line.split(" && ")[0], comments=True)
            found.append((words[1:], int(expected.group(1)) if expected else 0))
    return found


def subcommand_of(argv):
    """The subcommand an argv runs (None for a training run), skipping the group's options and values."""
    takes_value = {opt for p in cli.params if not getattr(p, "is_flag", False) for opt in p.opts}
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in takes_value
        else:
            return word if word in cli.commands else None
    return None


def prepared(argv, runs_dir):
    """The argv as the test runs it: --runs-dir first; for training commands, --epochs 1 last and a
    small training set (`smaller`)."""
    argv = ["--runs-dir", str(runs_dir)] + list(argv)
    if subcommand_of(argv) in TRAINING and "--help" not in argv:
        argv = [smaller(value) if flag == "--data" else value for flag, value in zip([None] + argv, argv)]
        argv += ["--epochs", "1"]
    return argv


SMALL_TRAINING_SET = 40


def smaller(data):
    """A --data value with `n_train=40` added to each built-in dataset spec that has the option and does not
    set it: `adding:T=100` -> `adding:T=100,n_train=40`. What the doc sets (T=100) is kept, so every
    option it shows is still parsed and used; only the number of training sequences, which no command's
    exit code depends on, shrinks (2000 sequences of 100 steps are most of a sweep's time otherwise)."""
    from tinygrad_rnn import registry
    from tinygrad_rnn.runner.config import parse_spec, split_names
    registry.discover()
    specs = []
    for spec in split_names([data]):
        name, positional, options = parse_spec(spec, "dataset")
        known = registry.datasets.options(name) if name in registry.datasets else {}
        if "n_train" in known and "n_train" not in options and len(positional) <= list(known).index("n_train"):
            spec += ("," if ":" in spec else ":") + f"n_train={SMALL_TRAINING_SET}"
        specs.append(spec)
    return ",".join(specs)


def write_plugin_files(text, where):
    for info, body in fenced_blocks(text):
        first = body.splitlines()[0] if body.strip() else ""
        name = re.fullmatch(r"#\s*([\w.-]+\.py)\s*", first)
        if info.split(" ")[0] == "python" and name:
            (where / name.group(1)).write_text(body)


def document_id(path):
    return os.path.relpath(path, ROOT)


def test_the_docs_have_commands_to_run():
    names = {os.path.basename(p) for p in DOCUMENTS}
    for expected in ("01-autograd.md", "02-bptt-vanishing.md", "03-cells.md", "04-plugins.md"):
        assert expected in names
        assert commands_in(open(os.path.join(ROOT, "docs", expected)).read()), expected


def test_command_extraction_reads_console_and_bash_blocks():
    text = ("```console\n$ rnnrun list  # all plugins\nlist output\n```\n"
            "```bash\nrnnrun --cell gru \\\n  --data sine\necho hi\nrnnrun gradcheck --cell bad  # exit 1\n```\n"
            "```python\nrnnrun = 1\n```\n")
    assert commands_in(text) == [(["list"], 0), (["--cell", "gru", "--data", "sine"], 0),
                                 (["gradcheck", "--cell", "bad"], 1)]
    assert subcommand_of(["--plugin", "x.py", "gradcheck", "--cell", "gru"]) == "gradcheck"
    assert subcommand_of(["--cell", "gru", "--data", "sine"]) is None
    assert prepared(["vanish", "--cell", "rnn"], "R")[-2:] == ["--epochs", "1"]
    assert prepared(["show", "last"], "R") == ["--runs-dir", "R", "show", "last"]
    assert prepared(["sweep", "--data", "adding:T=100,sine,heartbeat:n_train=8", "--cell", "gru"], "R")[3:6] == \
        ["--data", "adding:T=100,n_train=40,sine:n_train=40,heartbeat:n_train=8", "--cell"]
    assert smaller("csv:path=x.csv,target=y") == "csv:path=x.csv,target=y"
    assert smaller("adding:50") == "adding:50,n_train=40"


# A page about an optional extra runs only where that extra is installed (the README's test command
# installs test and plot; CI installs every extra).
NEEDS = {"tuning.md": "optuna"}


def missing_extra(argv):
    """The package a command needs that is not installed (an optional extra), or None: such a command
    is left out where its extra is missing, as a page about the extra is."""
    import importlib.util
    needs = {"optuna"} if argv and argv[0] == "tune" else set()
    for flag, value in zip(argv, argv[1:]):
        if flag == "--log":
            needs.add(value.split(":")[0])
    return next((package for package in sorted(needs) if importlib.util.find_spec(package) is None), None)


@pytest.mark.parametrize("path", DOCUMENTS, ids=document_id)
def test_every_command_of_the_document_runs(path, tmp_path, monkeypatch):
    text = open(path).read()
    commands = commands_in(text)
    if not commands:
        pytest.skip(f"{document_id(path)} has no rnnrun commands yet")
    if os.path.basename(path) in NEEDS:
        pytest.importorskip(NEEDS[os.path.basename(path)])
    write_plugin_files(open(DOCUMENTS[0]).read(), tmp_path)  # the README's example plugins, which the docs use
    write_plugin_files(text, tmp_path)
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    os.symlink(os.path.join(ROOT, "plugins"), tmp_path / "plugins")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    for argv, expected in commands:
        if missing_extra(argv):
            continue
        with restored_registry():
            result = CliRunner().invoke(cli, prepared(argv, runs), prog_name="rnnrun", catch_exceptions=False)
        assert result.exit_code == expected, (f"`rnnrun {shlex.join(argv)}` in {document_id(path)} exited "
                                              f"{result.exit_code}, not {expected}:\n{result.output}"
                                              f"{result.stderr}")


# ---- quoted source stays true ----------------------------------------------------------------------
def quoted_snippets():
    for path in DOCUMENTS:
        for info, body in fenced_blocks(open(path).read()):
            source = re.search(r"\bfile=(\S+)", info)
            if source:
                yield document_id(path), source.group(1), body


@pytest.mark.parametrize("doc, source, snippet", list(quoted_snippets()),
                         ids=lambda v: v if isinstance(v, str) and "\n" not in v else None)
def test_quoted_source_is_still_in_the_source(doc, source, snippet):
    text = open(os.path.join(ROOT, source)).read()
    assert snippet.rstrip("\n") in text, f"{doc} quotes {source}, but the quote is no longer in it"


def test_the_docs_quote_the_source():
    assert len(list(quoted_snippets())) >= 8


# ---- the docs' python blocks run --------------------------------------------------------------------
def runnable_python():
    for path in DOCUMENTS[1:]:  # the README's python is run by its own tests
        for i, (info, body) in enumerate(fenced_blocks(open(path).read())):
            first = body.splitlines()[0] if body.strip() else ""
            if info == "python" and not re.fullmatch(r"#\s*[\w.-]+\.py\s*", first):
                yield f"{document_id(path)}#{i}", body


@pytest.mark.parametrize("name, code", list(runnable_python()), ids=lambda v: v if "#" in str(v)[:40] else None)
def test_python_blocks_of_the_docs_run(name, code, tmp_path, monkeypatch):
    """... and a block whose comments say what it prints (`# → line`, one per printed line) prints that."""
    monkeypatch.chdir(tmp_path)
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")  # as for the commands
    # what the docs print is the tape replayed op by op, with or without the `fast` extra (numba): as
    # for the quoted console outputs (test_docs_outputs.py), fusion is switched off
    monkeypatch.setenv("TINYGRAD_RNN_FUSE", "0")
    printed = io.StringIO()
    with restored_registry(), contextlib.redirect_stdout(printed):
        exec(compile(code, name, "exec"), {"__name__": "__doc__"})
    expected = re.findall(r"^# → (.*)$", code, re.M)
    if expected:
        assert printed.getvalue().rstrip("\n").split("\n") == expected, f"{name} no longer prints what it says"


# ---- the hand-unrolled example of docs/03-cells.md ---------------------------------------------------
def test_hand_unrolled_rnn_numbers_are_what_recurrent_computes():
    from tinygrad_rnn import Tensor
    from tinygrad_rnn.nn import Recurrent
    from tinygrad_rnn.registry import cells
    text = open(os.path.join(ROOT, "docs", "03-cells.md")).read()
    block = next(body for info, body in fenced_blocks(text) if "W_hh =" in body and info == "python")
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(block, namespace)
    rnn = Recurrent(cells.get("rnn"), 1, 3)
    cell = rnn.cells[0]
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data = np.asarray(namespace[name.replace("weight", "W").replace("bias", "b")],
                                              np.float32).reshape(getattr(cell, name).shape)
    x = np.asarray(namespace["x"], np.float32).reshape(1, -1, 1)
    outputs, _ = rnn(Tensor(x))
    rows = re.findall(r"^\|\s*h_(\d)\s*\|\s*([-\d.]+)\s*\|\s*([-\d.]+)\s*\|\s*([-\d.]+)\s*\|", text, re.M)
    assert [int(t) for t, *_ in rows] == [1, 2, 3], "the doc's table of h_1, h_2, h_3 is missing"
    table = np.array([[float(v) for v in values] for _, *values in rows])
    np.testing.assert_allclose(table, outputs.numpy()[0], atol=6e-5)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
