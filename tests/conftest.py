"""Shared helpers: run a notebook's own code, optionally mutated, as a student would."""
from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from rnn_by_hand.course import Course, nbgrader  # noqa: F401 -- for the tests that import it here

REPO = Path(__file__).resolve().parents[1]
COURSE = Course(REPO)           # this checkout, as an instructor's course folder
SOLUTIONS = COURSE.solutions
EXERCISES = COURSE.exercises
assignments = COURSE.assignments
new_course = COURSE.copy_to
generate_release = COURSE.generate_release


def untrapped(function):
    """A copy of `function` that a check's forbid_functions does not reach.

    Checks swap the code of their own reference helpers while an answer runs; a test
    that builds a wrong answer out of such a helper calls this copy instead.
    """
    copy = types.FunctionType(function.__code__, function.__globals__, function.__name__,
                              function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


def graded(cell) -> bool:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade", False)


def notebook_code(path: Path) -> dict[str, str]:
    """The source of every code cell that is not a test, keyed by grade_id (or index)."""
    cells = json.loads(path.read_text())["cells"]
    return {c["metadata"].get("nbgrader", {}).get("grade_id", f"cell{i}"): "".join(c["source"])
            for i, c in enumerate(cells) if c["cell_type"] == "code" and not graded(c)}


def student_namespace(path: Path, mutation: tuple[str, str, str] | None = None) -> dict:
    """Execute a notebook's answer cells as a submission would, with one edit applied.

    `mutation` is (grade_id, old, new); `old` must occur exactly once, so that a
    mutant can never silently become the unmutated solution. The ungraded cells
    that start with "# Try it" are demonstrations for the student and are not run.
    """
    sources = notebook_code(path)
    if mutation:
        grade_id, old, new = mutation
        assert sources[grade_id].count(old) == 1, f"mutation text not found once in {grade_id}: {old!r}"
        sources[grade_id] = sources[grade_id].replace(old, new)
    namespace: dict = {}
    for key, source in sources.items():
        if not source.lstrip().startswith("# Try it"):
            exec(compile(source, f"<{path.stem}:{key}>", "exec"), namespace)
    return namespace


def rejections(path: Path, check, mutation: tuple[str, str, str]) -> list[str]:
    """The feedback `check` gives a mutant of the notebook, on the visible and on the hidden
    cases; both must reject it (a check that accepts a mutant fails the test here)."""
    from rnn_by_hand import CheckFailure
    student = student_namespace(path, mutation)[check.student_name]
    messages = []
    for hidden in (False, True):
        with pytest.raises(CheckFailure) as failure:
            check(student, hidden=hidden, quiet=True)
        messages.append(str(failure.value))
    return messages


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
