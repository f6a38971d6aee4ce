"""examples/own_data.ipynb runs top to bottom in a Jupyter kernel (nbclient), as a user would run it,
and is kept in the repository without outputs."""
import json
import os
import shutil
import sys

import pytest

import early_jobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "own_data.ipynb")
RUN_NOTEBOOK = os.path.join(ROOT, "tests", "run_notebook.py")


def test_the_notebook_is_stored_without_outputs():
    with open(NOTEBOOK) as f:
        notebook = json.load(f)
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


def prepare_the_notebook(root):
    """A copy of the repository's layout in `root`: examples/ beside plugins/ (the notebook reads the shipped
    CSV file as ../plugins/...); the notebook runs in examples/, its runs in the copy."""
    os.symlink(os.path.join(ROOT, "plugins"), root / "plugins")
    (root / "examples").mkdir()
    shutil.copy(NOTEBOOK, root / "examples")
    examples = str(root / "examples")
    return {"args": [sys.executable, RUN_NOTEBOOK, os.path.join(examples, "own_data.ipynb"), examples,
                     os.path.join(examples, "executed.ipynb"), "600"],
            "env": {"OMP_NUM_THREADS": "1", **early_jobs.ENVIRON}}


# the last cell tunes (the `tune` extra, which CI installs); the plots need matplotlib
NEEDS = ("nbclient", "nbformat", "ipykernel", "matplotlib", "optuna")
early_jobs.define("own_data.ipynb", prepare_the_notebook, seconds=80, needs=NEEDS)
runs_the_notebook = pytest.mark.early_job("own_data.ipynb")


@pytest.fixture(scope="module")
def executed():
    """The notebook after running every cell (about 40 small models: a minute or more) in a Jupyter kernel,
    as a user runs it: started when the tests were collected (tests/early_jobs.py)."""
    for module in NEEDS:
        pytest.importorskip(module)
    import nbformat
    code, _, stderr, root = early_jobs.result("own_data.ipynb")
    assert code == 0, stderr  # a cell that raised: nbclient names the cell and shows its traceback
    return nbformat.read(str(root / "examples" / "executed.ipynb"), as_version=4), root


def outputs(notebook, containing):
    """The outputs of the one code cell whose source contains `containing`."""
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and containing in c.source]
    return cell.outputs


@pytest.mark.slow
@runs_the_notebook
def test_the_notebook_runs_top_to_bottom_and_trains_in_its_own_runs_folder(executed):
    notebook, root = executed
    assert len(os.listdir(root / "examples" / "runs")) >= 6


@pytest.mark.slow
@runs_the_notebook
def test_runs_show_as_their_results_table_and_progress_as_a_widget(executed):
    notebook, _ = executed
    shown = outputs(notebook, 'runs = train(cell=["lstm", "gru"]')
    html = [o["data"]["text/html"] for o in shown if o.get("output_type") == "execute_result"]
    assert html and "test rmse" in html[0] and "baseline (persistence)" in html[0]
    widgets = [o for o in shown if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "progress=True showed no progress bar widget"
    assert not any("ipywidgets" in o.get("text", "") for o in shown)  # rich's "install ipywidgets" warning


@pytest.mark.slow
@runs_the_notebook
def test_the_plot_shows_as_a_picture_once(executed):
    notebook, _ = executed
    pictures = [o for o in outputs(notebook, "best.plot()") if "image/png" in o.get("data", {})]
    assert len(pictures) == 1


@pytest.mark.slow
@runs_the_notebook
def test_the_forecast_shows_twelve_months(executed):
    notebook, _ = executed
    [table] = [o["data"]["text/html"] for o in outputs(notebook, "best.predict(")
               if o.get("output_type") == "execute_result"]
    assert "passengers" in table and "12" in table


@pytest.mark.slow
@runs_the_notebook
def test_the_whole_api_cell_runs_in_the_notebook_too(executed):
    notebook, _ = executed
    printed = "".join(o.get("text", "") for o in outputs(notebook, "print(run, len(runs), y, s, study"))
    assert printed.startswith("Run(") and "\n6\nPredictions(12 rows" in printed
    assert "SweepResult(" in printed and "StudyResult(" in printed
