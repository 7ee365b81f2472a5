"""Every solution notebook, run top to bottom as a student's Run All runs it: no cell raises,
and its summary cell (check_all) says every exercise is done.

The release tags test and try-it cells raises-exception so that Run All goes on past a
student's failing check; tools that honour the tag (nbval, nbclient) would then let an
error in the solution's own cells pass. So the outputs are read here instead: any error
output in any cell fails.
"""
from __future__ import annotations

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import SOLUTIONS, assignments


@pytest.mark.parametrize("name", assignments())
def test_the_solution_runs_top_to_bottom_without_an_error(name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(SOLUTIONS / name, folder)
    path, = folder.glob("*.ipynb")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=900, allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    errors = [(index, output.ename, output.evalue[:300]) for index, cell in enumerate(notebook.cells)
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors, errors
    printed = "".join(output.get("text", "") for output in notebook.cells[-1].outputs
                      if output.output_type == "stream").splitlines()
    assert printed[-1].endswith(f"pass: every exercise of {name} is done"), printed
