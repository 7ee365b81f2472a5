"""The instructors' worked answers to every chapter's ungraded exercises.

They live beside nbgrader's source notebooks, as solutions/<assignment>.answers.md (a
file, not a folder, so nbgrader and the course see no extra assignment), and, like the
solutions, are never published: the book builds only what _toc.yml lists and excludes
solutions/. Each has one section per exercise of its chapter, in order, and runs top to
bottom without an error, so that every number it states was computed.
"""
from __future__ import annotations

import re

import pytest
from myst_nb.core.read import read_myst_markdown_notebook
from nbclient import NotebookClient

from conftest import REPO, SOLUTIONS, assignments


def chapter_exercises(assignment: str) -> int:
    """How many numbered exercises the chapter page's "## Exercises" section lists."""
    page = (REPO / "book" / f"{assignment}.md").read_text()
    section = page.split("\n## Exercises\n", 1)[1].split("**Graded exercises.**", 1)[0]
    return len(re.findall(r"^\d+\. ", section, re.M))


def test_the_answers_are_not_published():
    config = (REPO / "_config.yml").read_text()
    assert re.search(r"^exclude_patterns:\n(  - .*\n)*  - solutions\n", config, re.M)
    assert "answers" not in (REPO / "_toc.yml").read_text()
    assert not list((REPO / "exercises").rglob("*answers*"))


@pytest.mark.parametrize("assignment", assignments())
def test_every_exercise_has_a_worked_answer_that_runs(assignment, tmp_path):
    path = SOLUTIONS / f"{assignment}.answers.md"
    assert path.is_file(), f"{path.name} is missing"
    text = path.read_text()
    sections = [int(k) for k in re.findall(r"^## Exercise (\d+)\b", text, re.M)]
    assert sections == list(range(1, chapter_exercises(assignment) + 1)), sections
    notebook = read_myst_markdown_notebook(text)  # MyST-NB's own reader, as the book's pages use
    assert sum(cell.cell_type == "code" for cell in notebook.cells) >= 1
    NotebookClient(notebook, timeout=600, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [(index, output.ename, output.evalue[:300]) for index, cell in enumerate(notebook.cells)
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors, errors
