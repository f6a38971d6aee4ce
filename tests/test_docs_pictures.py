"""The pictures in docs/ are current: their numbers and DOT text regenerate to what is committed.

docs/pictures/make_pictures.py draws each picture from a data file beside it (vanish-*.json,
graph-*.dot). Here the data is regenerated and compared with the committed files: no PNG bytes are
compared, and neither Graphviz nor matplotlib is needed. When a test fails, run
`python docs/pictures/make_pictures.py` and commit what it writes.
"""
import importlib.util
import json
import os
import re

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PICTURES = os.path.join(ROOT, "docs", "pictures")
REDRAW = "docs/pictures/ is out of date: run `python docs/pictures/make_pictures.py` and commit what it writes"


def make_pictures():
    spec = importlib.util.spec_from_file_location("make_pictures", os.path.join(PICTURES, "make_pictures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = make_pictures()


@pytest.mark.parametrize("name", sorted(MAKER.VANISH))
def test_the_vanish_pictures_numbers_are_what_vanish_measures_now(name):
    with open(os.path.join(PICTURES, f"{name}.json")) as f:
        committed = json.load(f)
    now = MAKER.vanish_numbers(name)
    assert list(now["series"]) == list(committed["series"]), REDRAW
    for label, values in now["series"].items():
        np.testing.assert_allclose(values, committed["series"][label], rtol=2e-3, err_msg=f"{label}: {REDRAW}")
    assert os.path.exists(os.path.join(PICTURES, f"{name}.png")), REDRAW


@pytest.mark.parametrize("name", sorted(MAKER.GRAPHS))
def test_the_graph_pictures_dot_text_is_what_rnnrun_graph_writes_now(name):
    with open(os.path.join(PICTURES, f"{name}.dot")) as f:
        assert f.read() == MAKER.graph_dot(name), REDRAW
    assert os.path.exists(os.path.join(PICTURES, f"{name}.png")), REDRAW


def test_every_picture_is_shown_in_the_docs_and_every_shown_picture_exists():
    shown = set()
    for doc in ("01-autograd.md", "02-bptt-vanishing.md", "03-cells.md"):
        text = open(os.path.join(ROOT, "docs", doc)).read()
        found = re.findall(r"!\[[^\]]*\]\(pictures/([\w.-]+\.png)\)", text)
        assert found, f"docs/{doc} shows no picture"
        shown.update(found)
    drawn = {f"{name}.png" for name in list(MAKER.VANISH) + list(MAKER.GRAPHS)}
    assert shown == drawn
