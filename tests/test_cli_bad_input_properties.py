"""Random malformed specs, numbers and config documents: the parser and checker answer every one with
a project error (exit 2) or accept it, and never with a traceback.

The same rule as tests/test_cli_bad_input.py, over inputs no one thought of. Training itself is
replaced by a stub: what is under test is everything before the first run starts.
"""
import math

import numpy as np

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_rnn.runner import app, training
from tinygrad_rnn.runner.app import USAGE_ERRORS, with_spec
from tinygrad_rnn.runner.cli import cli
from tinygrad_rnn.runner.config import SCHEMA, check_config

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
NAMES = ["gru", "rnn", "lstm", "sine", "adding", "clip", "tbptt", "adam", "sgd", "cosine", "step", "T", "n_train",
         "k", "threshold", "nonlinearity", "relu", "variant", "momentum", "step_size"]
NUMBERS = st.one_of(st.integers(min_value=-2 ** 70, max_value=2 ** 70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["1e400", "-0", "nan", "inf", "1e-320", "0x10", "1_000", "", " ", "٣"]))
TOKENS = st.one_of(st.sampled_from(NAMES + [":", ",", "=", "=", ":", " ", "", "."]), NUMBERS.map(str),
                   st.text(max_size=3))
SPECS = st.lists(TOKENS, max_size=8).map("".join)


def assert_clean(result):
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.stderr, result.stderr
    if result.exit_code == 2:
        assert [line for line in result.stderr.splitlines() if line.startswith("Error:")], result.stderr


def stub_training(monkeypatch, tmp_path):
    """No training: the stub only records that the checks let the command through."""
    monkeypatch.setattr(training, "train_all", lambda *args, **kwargs: None)
    return ["--runs-dir", str(tmp_path / "runs")]


@FAST
@given(spec=SPECS, kind=st.sampled_from(["cell", "dataset", "regulariser", "optimizer", "schedule"]))
def test_every_spec_is_accepted_or_a_project_error(spec, kind):
    try:
        name, options = with_spec(spec, kind)
    except USAGE_ERRORS:
        return
    assert isinstance(name, str) and isinstance(options, dict)
    assert all(not isinstance(v, float) or math.isfinite(v) for v in options.values())


@FAST
@given(cell=SPECS, data=SPECS, hidden=NUMBERS, lr=NUMBERS, seed=NUMBERS)
def test_the_training_command_answers_random_specs_and_numbers_cleanly(tmp_path, cell, data, hidden, lr, seed):
    with pytest.MonkeyPatch.context() as monkeypatch:
        runs = stub_training(monkeypatch, tmp_path)
        args = ["--cell", cell, "--data", data, "--hidden", str(hidden), "--lr", str(lr), "--seed", str(seed)]
        assert_clean(CliRunner().invoke(cli, runs + args))


@FAST
@given(cell=SPECS, hidden=NUMBERS, steps=NUMBERS)
def test_graph_answers_random_specs_and_numbers_cleanly(cell, hidden, steps):
    result = CliRunner().invoke(cli, ["graph", "--cell", cell, "--hidden", str(hidden), "--steps", str(steps)])
    assert_clean(result)


SCALARS = st.one_of(st.booleans(), st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NAMES), st.text(max_size=5))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(NAMES + ["name", "options"]),
                                                                       inner, max_size=3)), max_leaves=6)
DOCUMENTS = st.dictionaries(st.one_of(st.sampled_from(sorted(SCHEMA)), st.text(min_size=1, max_size=6)), VALUES,
                            max_size=8)


@FAST
@given(doc=DOCUMENTS)
def test_every_config_document_is_accepted_or_names_what_is_wrong(tmp_path, doc):
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(doc))
    with pytest.MonkeyPatch.context() as monkeypatch:
        runs = stub_training(monkeypatch, tmp_path)
        assert_clean(CliRunner().invoke(cli, runs + ["--config", str(path)]))


@FAST
@given(text=st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_random_text_as_a_config_file_is_refused_cleanly(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        runs = stub_training(monkeypatch, tmp_path)
        assert_clean(CliRunner().invoke(cli, runs + ["--config", str(path)]))


@FAST
@given(key=st.sampled_from(sorted(SCHEMA)), value=VALUES)
def test_the_schema_accepts_or_names_key_and_value(key, value):
    try:
        check_config({key: value}, "a.toml")
    except USAGE_ERRORS as e:
        assert repr(key) in str(e) and "a.toml" in str(e)


def test_the_stub_is_where_training_would_start(tmp_path, monkeypatch):
    """The property tests above are only meaningful if valid input reaches the (stubbed) training."""
    called = []
    monkeypatch.setattr(training, "train_all", lambda *args, **kwargs: called.append(args))
    result = CliRunner().invoke(cli, ["--runs-dir", str(tmp_path), "--cell", "gru", "--data", "sine"])
    assert result.exit_code == 0 and len(called) == 1
    assert app.cli is cli


# ---- CSV content (issue 29): whatever the file holds, a clean answer, and no row lost without a word ----
MISSING_TOKENS = ["", "NA", "NaN", "null", "None", "N/A", "na", " "]
FIELDS = st.one_of(st.integers(-5, 5).map(str), st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: f"{v:.3g}"),
                   st.sampled_from(MISSING_TOKENS + ["x", "1e400", "inf", "-0", "2005-01", "a,b", 'say "hi"']),
                   st.text(alphabet='0123456789.-e ";,|\tab', max_size=4))


@st.composite
def csv_files(draw):
    """(text, delimiter): a header t, y, g and 0–12 rows, some quoted (closed or not), some missing
    tokens, some rows one field short or long, blank lines, \\n or \\r\\n line ends."""
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [sep.join(["t", "y", "g"])]
    for k in range(draw(st.integers(0, 12))):
        width = draw(st.sampled_from([3, 3, 3, 3, 2, 4]))
        fields = [str(k)] + [draw(FIELDS) for _ in range(width - 1)]
        quoting = draw(st.sampled_from(["none", "none", "closed", "open"]))
        if quoting == "closed":
            fields = [f'"{f.replace(chr(34), chr(34) * 2)}"' for f in fields]
        elif quoting == "open":
            fields[-1] = '"' + fields[-1]
        lines.append(sep.join(fields))
        if draw(st.integers(0, 9)) == 0:
            lines.append("")
    return end.join(lines) + draw(st.sampled_from([end, ""])), sep


def data_rows(text):
    """The oracle: lines after the header that hold anything (an empty line is no row; CR, LF, CRLF end lines)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return sum(1 for line in lines[1:] if line)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A trained forecaster of column y over time t, window 1: `rnnrun predict` reads the random files too."""
    root = tmp_path_factory.mktemp("csvrun")
    data = root / "train.csv"
    data.write_text("t,y,g\n" + "".join(f"{k},{k % 5},{k % 3}\n" for k in range(40)))
    result = CliRunner().invoke(cli, ["--runs-dir", str(root), "--cell", "gru", "--hidden", "2", "--epochs", "1",
                                      "--data", f"csv:path={data},target=y,time=t,window=1", "--quiet"])
    assert result.exit_code == 0, result.output
    return root


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(content=csv_files(), missing=st.sampled_from(["error", "drop", "ffill", "interpolate"]))
def test_every_csv_file_is_read_whole_or_refused_naming_the_problem(tmp_path, csv_run, content, missing):
    from tinygrad_rnn import ConfigError
    from tinygrad_rnn.data import read_rows
    from tinygrad_rnn.registry import datasets, discover
    text, sep = content
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode("utf-8"))
    try:
        names, table, lines = read_rows(str(path))
    except ConfigError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    else:   # read: every line that holds anything is a row, whole
        assert names == ["t", "y", "g"] and len(table["t"]) == len(lines) == data_rows(text)
        assert all(len(table[name]) == len(lines) for name in names)
    discover()
    dataset = datasets.get("csv")(path=str(path), target="y", time="t", window=1, missing=missing, val=0.2,
                                  test=0.2)
    try:
        data = dataset.load(str(path))
    except ConfigError:
        pass
    else:   # nothing dropped but what missing=drop drops, and only rows with a missing value
        kept = len(data["values"])
        assert kept == data_rows(text) or (missing == "drop" and kept < data_rows(text))
        assert np.isfinite(data["values"]).all()
    with pytest.MonkeyPatch.context() as monkeypatch:
        runs = stub_training(monkeypatch, tmp_path)
        assert_clean(CliRunner().invoke(cli, runs + ["--cell", "gru", "--data", f"csv:path={path},target=y,time=t,"
                                                     f"window=1,missing={missing}"]))
    assert_clean(CliRunner().invoke(cli, ["--runs-dir", str(csv_run), "predict", "last", "--input", str(path),
                                          "--steps", "2"]))
