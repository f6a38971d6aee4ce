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

import early_jobs  # noqa: E402 (after the skips: without jupytext the module is skipped)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_NOTEBOOK = os.path.join(ROOT, "tests", "run_notebook.py")
CHAPTERS = ["01-autograd.md", "02-bptt-vanishing.md", "03-cells.md", "04-plugins.md", "08-the-tape.md",
            "09-deep-and-bidirectional.md"]


def test_quoted_source_and_console_blocks_are_text_cells_and_python_blocks_code_cells():
    notebook = jupytext.read(os.path.join(ROOT, "docs", "01-autograd.md"))
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all("def topological_order" not in c and "$ rnnrun" not in c for c in code)
    assert any("class Softplus(Function)" in c for c in code)


def prepare_the_chapter(chapter):
    def prepare(folder):
        readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
        (folder / "my_plugins.py").write_text(re.search(r"```python\n(# my_plugins.py\n.*?)```", readme, re.S).group(1))
        for name in ("examples", "plugins"):
            os.symlink(os.path.join(ROOT, name), folder / name)
        # the kernel is this interpreter's, one BLAS thread as the other docs tests
        env = {**early_jobs.ENVIRON, "OMP_NUM_THREADS": "1",
               "PATH": os.path.dirname(sys.executable) + os.pathsep + early_jobs.ENVIRON.get("PATH", "")}
        return {"args": [sys.executable, RUN_NOTEBOOK, os.path.join(ROOT, "docs", chapter), str(folder),
                         str(folder / "executed.ipynb"), "300"], "env": env}
    return prepare


# each runs in a kernel of its own, started when the tests are collected (tests/early_jobs.py)
for _chapter, _seconds in zip(CHAPTERS, (5, 3, 3, 7, 28, 2)):
    early_jobs.define(f"docs/{_chapter}", prepare_the_chapter(_chapter), seconds=_seconds,
                      needs=("jupytext", "nbclient", "ipykernel"))


@pytest.mark.parametrize("chapter", [pytest.param(c, marks=pytest.mark.early_job(f"docs/{c}")) for c in CHAPTERS])
def test_the_chapter_runs_top_to_bottom_as_a_notebook(chapter):
    notebook = jupytext.read(os.path.join(ROOT, "docs", chapter))
    assert any(cell.cell_type == "code" for cell in notebook.cells), f"docs/{chapter} has no code cell"
    code, _, stderr, _ = early_jobs.result(f"docs/{chapter}")
    assert code == 0, stderr  # a cell that raised: nbclient names the cell and shows its traceback
