"""The repository works as an nbgrader course: release, validate, autograde, export."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.validator import Validator

from conftest import EXERCISES, SOLUTIONS, assignments, generate_release, nbgrader, new_course

NOTEBOOKS = sorted(p.relative_to(SOLUTIONS) for p in SOLUTIONS.glob("*/*.ipynb"))


def comparable(path: Path) -> dict:
    """A notebook as JSON, without fields that say nothing about content."""
    nb = json.loads(path.read_text())
    nb["metadata"].pop("language_info", None)
    return nb


def test_every_assignment_has_a_release():
    assert NOTEBOOKS, "no source notebooks found"
    assert assignments() == sorted(p.name for p in EXERCISES.iterdir() if p.is_dir())


def test_release_is_generated_from_the_source(tmp_path):
    """exercises/ must be exactly what nbgrader generates from solutions/."""
    fresh = generate_release(tmp_path / "release")
    committed = sorted(p.relative_to(EXERCISES) for p in EXERCISES.rglob("*") if p.is_file())
    generated = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert committed == generated, "files differ: run `python3 dev.py release` and commit exercises/"
    for name in generated:
        assert comparable(EXERCISES / name) == comparable(fresh / name), \
            f"exercises/{name} is out of date: run `python3 dev.py release` and commit it"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=str)
def test_solution_validates(notebook):
    results = Validator().validate(str(SOLUTIONS / notebook))
    assert results == {}, results


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=str)
def test_released_exercise_passes_no_test(notebook):
    """`nbgrader validate --invert`: not one test cell of the blank exercise may pass."""
    results = Validator(invert=True).validate(str(EXERCISES / notebook))
    assert results == {}, f"tests that pass on the blank notebook: {results.get('passed') or results}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=str)
def test_released_exercise_fails_because_it_is_unanswered(notebook):
    """Every test fails for the right reason (the stubs), not an import or set-up error."""
    path = EXERCISES / notebook
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert tests
    for cell in tests:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"test cell {cell.metadata.nbgrader.grade_id} did not fail"
        assert "not implemented yet" in errors[0].evalue, errors[0].evalue


def test_course_round_trip(tmp_path):
    """Two submissions (the reference and the untouched release) through autograde and export."""
    course = new_course(tmp_path / "course")
    for assignment in assignments():
        nbgrader("generate_assignment", assignment, "--force", cwd=course)
    submissions = {"reference": SOLUTIONS, "blank": course / "exercises"}
    for student, origin in submissions.items():
        nbgrader("db", "student", "add", student, cwd=course)
        for assignment in assignments():
            target = course / "submitted" / student / assignment
            shutil.copytree(origin / assignment, target)
            (target / "timestamp.txt").write_text("2026-11-22 12:00:00.000000 UTC")
    for assignment in assignments():
        nbgrader("autograde", assignment, cwd=course)
    nbgrader("export", "--to", str(tmp_path / "grades.csv"), cwd=course)
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert len(rows) == len(submissions) * len(assignments())
    for row in rows:
        score, maximum = float(row["score"]), float(row["max_score"])
        assert maximum > 0
        expected = maximum if row["student_id"] == "reference" else 0.0
        assert score == expected, row
