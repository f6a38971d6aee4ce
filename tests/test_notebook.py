"""examples/own_data.ipynb runs top to bottom in a Jupyter kernel (nbclient), as a user would run it,
and is kept in the repository without outputs."""
import json
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "own_data.ipynb")


def test_the_notebook_is_stored_without_outputs():
    with open(NOTEBOOK) as f:
        notebook = json.load(f)
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after running every cell (about 40 small models: a few minutes), in a copy of the repository's layout: examples/ beside
    plugins/ (the notebook reads the shipped CSV file as ../plugins/...), its runs in the copy."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("optuna")  # its last cell tunes (the `tune` extra, which CI installs)
    root = tmp_path_factory.mktemp("repo")
    os.symlink(os.path.join(ROOT, "plugins"), root / "plugins")
    (root / "examples").mkdir()
    shutil.copy(NOTEBOOK, root / "examples")
    notebook = nbformat.read(str(root / "examples" / "own_data.ipynb"), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(root / "examples")}})
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    client.execute()  # a cell that raises fails here, naming the cell and its traceback
    return notebook, root


def outputs(notebook, containing):
    """The outputs of the one code cell whose source contains `containing`."""
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and containing in c.source]
    return cell.outputs


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_and_trains_in_its_own_runs_folder(executed):
    notebook, root = executed
    assert len(os.listdir(root / "examples" / "runs")) >= 6


@pytest.mark.slow
def test_runs_show_as_their_results_table_and_progress_as_a_widget(executed):
    notebook, _ = executed
    shown = outputs(notebook, 'runs = train(cell=["lstm", "gru"]')
    html = [o["data"]["text/html"] for o in shown if o.get("output_type") == "execute_result"]
    assert html and "test rmse" in html[0] and "baseline (persistence)" in html[0]
    widgets = [o for o in shown if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "progress=True showed no progress bar widget"
    assert not any("ipywidgets" in o.get("text", "") for o in shown)  # rich's "install ipywidgets" warning


@pytest.mark.slow
def test_the_plot_shows_as_a_picture_once(executed):
    notebook, _ = executed
    pictures = [o for o in outputs(notebook, "best.plot()") if "image/png" in o.get("data", {})]
    assert len(pictures) == 1


@pytest.mark.slow
def test_the_forecast_shows_twelve_months(executed):
    notebook, _ = executed
    [table] = [o["data"]["text/html"] for o in outputs(notebook, "best.predict(")
               if o.get("output_type") == "execute_result"]
    assert "passengers" in table and "12" in table


@pytest.mark.slow
def test_the_whole_api_cell_runs_in_the_notebook_too(executed):
    notebook, _ = executed
    printed = "".join(o.get("text", "") for o in outputs(notebook, "print(run, len(runs), y, s, study"))
    assert printed.startswith("Run(") and "\n6\nPredictions(12 rows" in printed
    assert "SweepResult(" in printed and "StudyResult(" in printed
