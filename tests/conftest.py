"""What every test shares: this checkout as an instructor's course folder.

Helpers live beside it: mutants.py (wrong answers made from the solutions, and the test
every chapter runs on them) and submissions.py (student notebooks for the grader's tests).
"""
from __future__ import annotations

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


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
