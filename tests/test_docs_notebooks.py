"""Each chapter opens as a notebook (jupytext reads the markdown, docs/jupytext.toml) and runs top to bottom.

The notebook is executed by nbclient on a real Jupyter kernel, in a fresh folder set up as a reader's
would be after the README (its `my_plugins.py` written there, `examples/` and `plugins/` linked), so
the cells run in the order a reader meets them, each seeing what the ones before it defined.
"""
import os
import re
import sys

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAPTERS = ["01-autograd.md", "02-bptt-vanishing.md", "03-cells.md", "04-plugins.md", "08-the-tape.md",
            "09-deep-and-bidirectional.md"]


def test_quoted_source_and_console_blocks_are_text_cells_and_python_blocks_code_cells():
    notebook = jupytext.read(os.path.join(ROOT, "docs", "01-autograd.md"))
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all("def topological_order" not in c and "$ rnnrun" not in c for c in code)
    assert any("class Softplus(Function)" in c for c in code)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_chapter_runs_top_to_bottom_as_a_notebook(chapter, tmp_path, monkeypatch):
    notebook = jupytext.read(os.path.join(ROOT, "docs", chapter))
    assert any(cell.cell_type == "code" for cell in notebook.cells), f"docs/{chapter} has no code cell"
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    (tmp_path / "my_plugins.py").write_text(re.search(r"```python\n(# my_plugins.py\n.*?)```", readme, re.S).group(1))
    for name in ("examples", "plugins"):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    # the kernel is this interpreter's, one BLAS thread as the other docs tests
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
