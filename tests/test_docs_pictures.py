"""The pictures in docs/ are current: their numbers and DOT text regenerate to what is committed.

docs/pictures/make_pictures.py draws each picture from a data file beside it (vanish-*.json,
graph-*.dot, cell-*.json: each cell's tape, unrolled-rnn.json, tape-and-graph.json, loss-cliff.json).
Here the data is regenerated and compared with the committed files: no PNG bytes are compared, and
neither Graphviz nor matplotlib is needed. When a test fails, run
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


@pytest.mark.parametrize("name", sorted(MAKER.CELLS))
def test_the_cell_diagrams_are_the_cells_tapes_now(name):
    with open(os.path.join(PICTURES, f"{name}.json")) as f:
        committed = json.load(f)
    now = json.loads(json.dumps(MAKER.cell_tape(name)))  # tuples as the JSON file has them
    assert now == committed, REDRAW
    assert os.path.exists(os.path.join(PICTURES, f"{name}.png")), REDRAW


@pytest.mark.parametrize("name", sorted(MAKER.CELLS))
def test_a_cell_diagram_shows_one_node_per_gate_block_of_the_cells_weights(name):
    """The gate letters the diagram gives the chunks' outputs are as many as weight_hh's blocks (the GRU
    chunks two products, the input's and the state's, each into r, z, n)."""
    from tinygrad_rnn.registry import cells
    data = MAKER.cell_tape(name)
    cell = cells.get(data["cell"])(1, 2)
    blocks = cell.weight_hh.shape[0] // 2
    shown = [n["label"] for n in data["nodes"] if len(n["label"]) == 1 and n["label"] in data["gates"]]
    assert len(set(shown)) == (blocks if blocks > 1 else 0) == len(data["gates"])


@pytest.mark.parametrize("name", MAKER.DIAGRAMS)
def test_the_other_diagrams_data_is_what_the_engine_computes_now(name):
    with open(os.path.join(PICTURES, f"{name}.json")) as f:
        committed = json.load(f)
    now = json.loads(json.dumps(MAKER.COMPUTE[name]()))
    assert list(now) == list(committed), REDRAW
    for key, value in now.items():
        if isinstance(value, list) and value and isinstance(value[0], float):
            np.testing.assert_allclose(value, committed[key], rtol=1e-3, err_msg=f"{name} {key}: {REDRAW}")
        else:
            assert value == committed[key], f"{name} {key}: {REDRAW}"
    assert os.path.exists(os.path.join(PICTURES, f"{name}.png")), REDRAW


def test_the_loss_cliff_is_a_cliff():
    """What the picture's caption says: the loss jumps where the gradient explodes."""
    data = MAKER.loss_cliff()
    grad, loss = np.array(data["grad"]), np.array(data["loss"])
    at = int(grad.argmax())
    assert grad[at] > 1e4 and abs(loss[at - 3] - loss[at + 3]) > 1.0


def test_every_picture_is_shown_in_the_docs_and_every_shown_picture_exists():
    shown = set()
    for doc in ("01-autograd.md", "02-bptt-vanishing.md", "03-cells.md"):
        text = open(os.path.join(ROOT, "docs", doc)).read()
        found = re.findall(r"!\[[^\]]*\]\(pictures/([\w.-]+\.png)\)", text)
        assert found, f"docs/{doc} shows no picture"
        shown.update(found)
    drawn = {f"{name}.png" for name in list(MAKER.VANISH) + list(MAKER.GRAPHS) + list(MAKER.CELLS)
             + list(MAKER.DIAGRAMS)}
    assert shown == drawn
