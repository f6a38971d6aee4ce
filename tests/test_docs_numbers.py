"""The numbers in the docs' prose come from the outputs the docs quote, or are computed from them here.

tests/test_docs_commands.py runs every command (training ones shortened to one epoch) and checks the
quoted source; tests/test_docs_outputs.py re-runs every command whose output a page quotes, as written,
and compares; this file checks the prose against the quoted outputs of docs/02 (the vanishing-
gradient walk-through, the page with the most numbers).
"""
import math
import os
import re
import zlib

import pytest

from test_docs_commands import fenced_blocks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "02-bptt-vanishing.md")
TEXT = open(DOC).read()
CONSOLE = [body for info, body in fenced_blocks(TEXT) if info == "console"]
PRINTED = "\n".join(line for info, body in fenced_blocks(TEXT) if info == "python"
                    for line in re.findall(r"^# → (.*)$", body, re.M))
PROSE = re.sub(r"^```.*?^```", "", TEXT, flags=re.S | re.M)
ROW = re.compile(r"^ (\S*)\s+(init|trained)\s+[^\d–]*?\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", re.M)


def quoted_rows():
    """{(command, cell, 'init'|'trained'): (t1, tT, ratio, per_step)} of every quoted vanish table."""
    rows = {}
    for body in CONSOLE:
        command = None
        for chunk in re.split(r"^(?=\$ )", body, flags=re.M):
            if chunk.startswith("$ rnnrun vanish"):
                command = chunk.splitlines()[0][2:]
                cell = None
                for m in ROW.finditer(chunk):
                    cell = m.group(1) or cell
                    rows[(command, cell, m.group(2))] = tuple(float(v) for v in m.groups()[2:])
    return rows


ROWS = quoted_rows()


def t1(cell, contains="n_train=200", when="init"):
    """t=1's norm in the quoted row of `cell` in the first command that contains `contains`."""
    return next(v[0] for (c, name, w), v in ROWS.items() if name == cell and w == when and contains in c)


def test_the_quoted_vanish_tables_were_found():
    assert len(ROWS) >= 15 and any(name == "lstm:1.0" for _, name, _ in ROWS)


# the command's crc32, not hash(): str hashes differ from one process to the next, and so would the test ids
@pytest.mark.parametrize("key", sorted(ROWS), ids=lambda k: f"{k[1]}-{k[2]}-{zlib.crc32(k[0].encode()) % 997}")
def test_each_rows_per_step_factor_is_its_ratio_to_the_power_one_over_T_minus_1(key):
    first, last, ratio, per_step = ROWS[key]
    T = 100
    assert ratio == pytest.approx(first / last, rel=0.08)
    expected = ratio ** (1 / (T - 1)) if ratio > 0 else 0.0
    assert per_step == pytest.approx(expected, abs=0.006)


def test_every_number_in_scientific_notation_in_the_prose_is_in_a_quoted_output():
    numbers = set(re.findall(r"\d\.\de[+-]\d\d", PROSE))
    assert numbers, "the prose quotes no measured number"
    outputs = "\n".join(CONSOLE)
    assert not {n for n in numbers if n not in outputs}


# derived in the prose from the quoted outputs or from the equations: value -> what it is
DERIVED = {"0.58": 1 / math.sqrt(3), "1.15": 2 / math.sqrt(3), "0.73": 1 / (1 + math.exp(-1)),
           "0.57": 0.60 * 0.95, "0.41": 0.60 * 0.68, "1.18": 2.00 * 0.59, "0.083": 1 / 12,
           "0.167": 1 / 6, "0.01": 0.01, "0.5": 0.5,
           "1.75": 1.05 / 0.60, "1.81": 1.97 / 1.09,  # largest singular value / radius: default, Xavier
           "0.95": 1 / (1 + math.exp(-3)), "12.8": 50 * 32 * 8 / 1000,  # σ(3); one step's h in kB
           "0.3": 0.3}  # the loss-cliff picture's bias (docs/pictures/make_pictures.py)


def test_every_decimal_in_the_prose_is_quoted_or_derived():
    quoted = "\n".join(CONSOLE) + "\n" + PRINTED
    # (a mantissa, as in 1.4 · 10⁴, and a base, as in 0.9¹⁰⁰, are checked with their powers below)
    for number in set(re.findall(r"(?<![\d.e-])\d\.\d{1,3}(?![\de\d⁰¹²³⁴⁵⁶⁷⁸⁹])(?!\s*·\s*10)", PROSE)):
        if number in DERIVED:
            assert f"{DERIVED[number]:.{len(number.split('.')[1])}f}" == number, number
        else:
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", quoted), \
                f"{number} is in the prose of docs/02 but in none of its outputs"


def test_the_orders_of_magnitude_in_the_prose_are_those_of_the_tables():
    rnn, lstm, gru = (t1(c, "--cell rnn,lstm,gru --data adding:T=100") for c in ("rnn", "lstm", "gru"))
    assert "four to five orders" in PROSE and 4 <= math.log10(gru / rnn) < math.log10(lstm / rnn) < 5.5
    relu_gap = math.log10(t1("rnn", contains="leaky") / t1("rnn:relu"))
    forget_gap = math.log10(t1("lstm:1.0") / t1("lstm", contains="forget_bias"))
    assert round(relu_gap) == 12 and round(forget_gap) == 12 and PROSE.count("twelve orders") == 2


@pytest.mark.parametrize("claim, value", [
    ("0.56⁹⁹ ≈ 10⁻²⁵", 0.56 ** 99), ("1.1⁹⁹ ≈ 1.3 · 10⁴", 1.1 ** 99), ("1.1¹⁰⁰ ≈ 1.4 · 10⁴", 1.1 ** 100),
    ("0.9¹⁰⁰ ≈ 2.7 · 10⁻⁵", 0.9 ** 100), 
    ("(0.63/0.56)⁹⁹ ≈ 1.2 · 10⁵", (0.63 / 0.56) ** 99), ("0.01 × 2.0e+06 = 2 · 10⁴", 0.01 * 2.0e6)])
def test_the_powers_in_the_prose_are_computed_right(claim, value):
    assert claim in " ".join(PROSE.split())
    exponents = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
    stated = claim.split("≈" if "≈" in claim else "=")[1].strip()
    mantissa, _, exponent = stated.partition("10")
    stated = float(mantissa.strip(" ·") or 1) * 10 ** int(exponent.translate(exponents))
    assert math.log10(value) == pytest.approx(math.log10(stated), abs=0.05 if mantissa.strip() else 0.5)


def test_the_float64_reason_is_float32s_normal_range():
    import numpy as np
    assert "about 1.2 · 10⁻³⁸" in " ".join(PROSE.split()) and f"{np.finfo(np.float32).tiny:.1e}" == "1.2e-38"
    assert t1("rnn:relu") < 10 * np.finfo(np.float32).tiny  # the quoted ReLU row is at the edge of it


def printed(pattern):
    """{name: value} of every `# →` line of docs/02's python blocks that matches pattern (name, number)."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, PRINTED, re.M)}


def per_step(cell, contains="forget_bias"):
    return next(v[3] for (c, name, w), v in ROWS.items() if name == cell and w == "init" and contains in c)


def test_the_gates_blocks_full_product_is_the_vanish_tables_per_step_factor():
    both = printed(r"^(lstm forget_bias=\d|gru): .*both (\d\.\d\d)$")
    assert both == {"lstm forget_bias=0": per_step("lstm"), "lstm forget_bias=1": per_step("lstm:1.0"),
                    "gru": per_step("gru")}


def test_the_rule_of_thumb_is_as_close_as_the_prose_says():
    product = printed(r"^(\S+): radius .*product (\d\.\d\d)$")
    measured = {"default": per_step("rnn", "leaky"), "relu": per_step("rnn:relu", "leaky"),
                "xavier": per_step("rnn", "xavier"), "orthogonal": per_step("rnn", "--reg orthogonal --no"),
                "orthogonal:gain=2": per_step("rnn", "gain=2 --optimizer sgd --epochs 2 --no")}
    close = {name for name in measured if abs(product[name] - measured[name]) <= 0.02 + 1e-9}
    assert close == set(measured) - {"xavier"} and product["xavier"] - measured["xavier"] > 0.1


def test_every_entry_of_the_relu_rows_first_gradient_is_subnormal_in_float32():
    """The prose says each entry of dL/dh_1 (not only their norm, 3.7e-38) is below float32's normal range."""
    import numpy as np
    from tinygrad_rnn import manual_seed
    from tinygrad_rnn.models import SequenceModel
    from tinygrad_rnn.registry import cells, datasets
    manual_seed(0)
    data = datasets.get("adding")(seed=0, T=100, n_train=200)
    model = SequenceModel("seq2vec", cells.get("rnn"), 2, 32, 1, nonlinearity="relu")
    cell, train = model.rnn.cells[0], data.splits()["train"]
    w_ih, w_hh, b_ih, b_hh, head, b_head = (p.numpy().astype(np.float64) for p in (
        cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, model.head.weight, model.head.bias))
    x, y, h, open_ = train.x[:50], np.asarray(train.y[:50], dtype=np.float64).reshape(50), np.zeros((50, 32)), []
    for t in range(100):
        a = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        h = np.maximum(a, 0)
        open_.append(a > 0)
    dh = (2 / 50) * ((h @ head.T)[:, 0] + b_head[0] - y)[:, None] * head  # d mean-squared-error / dh_T
    assert np.linalg.norm(dh) == pytest.approx(ROWS[next(k for k in ROWS if k[1] == "rnn:relu")][1], rel=0.05)
    for t in range(99, 0, -1):
        dh = (dh * open_[t]) @ w_hh
    assert np.linalg.norm(dh) == pytest.approx(t1("rnn:relu"), rel=0.05)
    assert np.abs(dh).max() < np.finfo(np.float32).tiny


@pytest.mark.parametrize("page", ["03-cells.md", "09-deep-and-bidirectional.md"])
def test_every_measured_number_in_the_prose_of_the_page_is_in_its_quoted_outputs(page):
    """As for docs/02 above: a number like 1.4e-09 in the prose must be in one of the page's outputs,
    which tests/test_docs_outputs.py keeps current."""
    text = open(os.path.join(ROOT, "docs", page)).read()
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    outputs = "\n".join(body for info, body in fenced_blocks(text) if info == "console")
    numbers = set(re.findall(r"\d\.\de[+-]\d\d", prose))
    assert numbers and not {n for n in numbers if n not in outputs}
