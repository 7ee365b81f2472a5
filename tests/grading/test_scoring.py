"""Scoring: references once per batch, and a scorer's own failure is never a student's score."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import COURSE
from rnn_by_hand import CHECKS
from rnn_by_hand.grading import scoring
from rnn_by_hand.grading.batch import grade_class
from submissions import ASSIGNMENT, FULL, RELEASE, answered


def write_class(folder: Path, students: dict) -> Path:
    for student, notebook in students.items():
        (folder / student).mkdir(parents=True)
        (folder / student / "recurrence.ipynb").write_text(json.dumps(notebook))
    return folder


def test_references_are_computed_once_per_batch_not_per_student(tmp_path, monkeypatch):
    calls = []
    for check in {CHECKS[name].__class__ for name in CHECKS if name.startswith(ASSIGNMENT)}:
        original = check.run_reference

        def counted(self, case, original=original):
            calls.append(self.name)
            return original(self, case)
        monkeypatch.setattr(check, "run_reference", counted)
    students = write_class(tmp_path / "in", {f"full-{k}": answered() for k in range(4)})
    results = grade_class(ASSIGNMENT, students, tmp_path / "out", course=COURSE, workers=1, progress=False)
    assert [r.score for r in results] == [FULL] * 4
    cases = {name: len(CHECKS[name].make_cases()) + 2 * len(CHECKS[name].make_cases(hidden=True))
             for name in set(calls)}
    assert sorted(calls) == sorted(name for name, count in cases.items() for _ in range(count))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_scorer_that_fails_leaves_the_result_not_graded_and_not_final(tmp_path, monkeypatch, workers):
    def broken(self, outcome):
        raise RuntimeError("a bug in the grader")
    monkeypatch.setattr(scoring.Scorer, "score", broken)  # forked scorers inherit it
    students = write_class(tmp_path / "in", {"full": answered(), "blank": RELEASE})
    results = grade_class(ASSIGNMENT, students, tmp_path / "out", course=COURSE, workers=workers, progress=False)
    for result in results:
        assert not result.final and result.score == 0
        assert all(c.reason.startswith("not graded: grader error (scoring failed: RuntimeError: a bug")
                   for c in result.cells), result.cells
