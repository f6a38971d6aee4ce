"""python tests/run_notebook.py SOURCE FOLDER OUT [TIMEOUT]: run a notebook top to bottom in a Jupyter kernel.

SOURCE is an .ipynb file, or a markdown chapter that jupytext opens as a notebook (docs/jupytext.toml);
its cells run with FOLDER as the current directory, and the executed notebook (every output) is written
to OUT. A cell that raises makes this exit 1 with nbclient's message (the cell and its traceback) on stderr.
The tests run it as a subprocess started early (tests/early_jobs.py), so the kernel trains while the
other tests run.
"""
import sys

import nbclient
import nbformat


def main(source, folder, out, timeout=600):
    if source.endswith(".ipynb"):
        notebook = nbformat.read(source, as_version=4)
    else:
        import jupytext
        notebook = jupytext.read(source)
    client = nbclient.NotebookClient(notebook, timeout=int(timeout), kernel_name="python3",
                                     resources={"metadata": {"path": folder}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        sys.exit(str(error))
    finally:
        nbformat.write(notebook, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
