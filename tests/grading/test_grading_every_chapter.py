"""Every chapter's assignment survives the same hostile and broken class.

Chapter 1 has a few more cases of its own (tests/test_grading.py: the gradebook,
export, resume, LMS zips); this file grades the full list of adversarial and
broken submissions against each assignment in solutions/, so a new chapter is
covered as soon as it has one. Student ids say what each submission does.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from conftest import COURSE, EXERCISES, REPO, SOLUTIONS, assignments
from rnn_by_hand.checking.registry import chapter_modules
from rnn_by_hand.grading.batch import Assignment, grade_class
from rnn_by_hand.grading.sandbox import Limits
from submissions import (ROOT, answer_ids, answered, cell_index, describe, duplicated, edited, steal,
                         with_cell)

TESTS = REPO / "tests"


def library_answer(assignment: str) -> tuple[str, str, list[str]]:
    """The chapter's "from scratch" answer that hands the work to torch.nn (or, in chapter 8, to the
    book's own package): (answer cell it follows, source, exercises lost). Each chapter's tests
    declare theirs as LIBRARY_ANSWER (tests/chapters/test_<chapter module>.py)."""
    chapter = next(m for m in chapter_modules() if m.ASSIGNMENT == assignment)
    module_name = "test_" + chapter.__name__.rsplit(".", 1)[-1]
    module = sys.modules.get(module_name)
    if module is None:  # not collected in this run: load it the way pytest would
        spec = importlib.util.spec_from_file_location(module_name, TESTS / "chapters" / f"{module_name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module.LIBRARY_ANSWER


TAMPER_WITH_TORCH = """import torch, torch.testing
torch.allclose = torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.__eq__ = lambda *a, **k: True
torch.Tensor.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
"""
TAMPER_WITH_AUTOGRADER = """import rnn_by_hand.checking.check as c, rnn_by_hand.checking.student as s, rnn_by_hand.checking.compare as m
c.Check.compare = lambda *a, **k: []
s.CheckFailure.__init__ = lambda *a, **k: None
m.compare_tensor = lambda *a, **k: []
"""
TAMPER_WITH_REFERENCES = """from rnn_by_hand.checking.check import Check
def every(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from every(sub)
for check in every(Check):
    check.run_reference = lambda self, case: {}
    check.compare = lambda self, case, expected, actual: []
    check.run_student = lambda self, student, case: {}
"""


def vandalise(targets: list[Path]) -> str:
    """Try to overwrite other students' work and results, and to plant a file in the solutions."""
    return "\n".join(f"try:\n    open({str(t)!r}, 'w').write('owned')\nexcept OSError:\n    pass"
                     for t in targets)


def points_of(release: dict) -> dict[str, float]:
    """answer grade_id -> points of the test cell that follows it."""
    points, answer = {}, None
    for cell in release["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            answer = meta["grade_id"]
        elif meta.get("grade") and answer:
            points[answer] = points.get(answer, 0) + float(meta["points"])
    return points


def graded_cell_ids(release: dict) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in release["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def common_class(name: str, tmp: Path) -> dict[str, tuple[object, float, str]]:
    """student -> (notebook dict or raw bytes, expected score, words expected in the result)."""
    notebook = next((SOLUTIONS / name).glob("*.ipynb")).name
    source = json.loads((SOLUTIONS / name / notebook).read_text())
    release = json.loads((EXERCISES / name / notebook).read_text())
    full = answered(source=source, release=release)
    points = points_of(release)
    maximum = sum(points.values())
    first, tests = answer_ids(source)[0], graded_cell_ids(release)

    mangled = copy.deepcopy(full)  # every test cell but the first deleted, and a Markdown copy of that one
    for grade_id in tests[1:]:
        del mangled["cells"][cell_index(mangled, grade_id)]
    at = cell_index(mangled, tests[0])
    mangled["cells"].insert(at, copy.deepcopy(mangled["cells"][at]))
    mangled["cells"][at]["cell_type"] = "markdown"

    after, cheat, lost = library_answer(name)
    others = [tmp / "in" / "reference" / "submission.ipynb", tmp / "out" / "results" / "reference.json",
              SOLUTIONS / name / "owned.txt"]
    students = {
        "reference": (full, maximum, ""),
        "blank": (release, 0.0, "not implemented yet"),
        "partly-right": (answered(first, source=source, release=release), points[first], ""),
        "tampers-with-comparisons": (with_cell(release, TAMPER_WITH_TORCH), 0.0, "suspected tampering"),
        "tampers-with-autograder": (with_cell(release, TAMPER_WITH_AUTOGRADER), 0.0, "suspected tampering"),
        "tampers-with-references": (with_cell(release, TAMPER_WITH_REFERENCES), 0.0, "suspected tampering"),
        "mangles-test-cells": (mangled, maximum, "restored deleted cell"),
        "edits-test-cells": (edited(release, tests[0], source="pass  # all good"), 0.0,
                             f"restored edited read-only cell '{tests[0]}'"),
        "duplicates-cells": (duplicated(duplicated(full, tests[0]), first), maximum,
                             "removed a duplicate of cell"),
        "retypes-cells": (edited(full, first, cell_type="markdown"), maximum,
                          f"changed answer cell '{first}' back"),
        "infinite-loop": (with_cell(full, "while True:\n    pass", at=len(release["cells"])), maximum,
                          "time limit"),
        "os-exit": (with_cell(full, "import os\nos._exit(3)", at=1), 0.0, "exit code 3"),
        "huge-allocation": (with_cell(full, "hog = bytearray(64 * 2**30)"), maximum, "MemoryError"),
        "invalid-json": (b"{", 0.0, "not valid notebook JSON"),
        "empty-file": (b"", 0.0, "the submitted file is empty"),
        "unknown-kernel": (dict(full, metadata={"kernelspec": {"name": "julia-1.9"}}), maximum,
                           "kernel 'julia-1.9' replaced by python3"),
        "correct-but-warns": (with_cell(full, "import sys, warnings\nwarnings.warn('old')\n"
                                              "print('noise', file=sys.stderr)"), maximum, ""),
        "calls-the-library": (with_cell(full, cheat, at=cell_index(full, after) + 1),
                              maximum - sum(points[e] for e in lost), "not written by hand"),
    }
    if ROOT:  # without root the child runs as the grader's own user and can reach these (see book/instructors.md)
        students["reads-instructor-files"] = (with_cell(release, steal(SOLUTIONS / name / notebook),
                                                        at=len(release["cells"])), 0.0, "")
        students["writes-other-students"] = (with_cell(full, vandalise(others)), maximum, "")
    return students


@pytest.mark.parametrize("name", assignments())
def test_common_class(name, tmp_path):
    students = common_class(name, tmp_path)
    for student, (notebook, _, _) in students.items():
        (tmp_path / "in" / student).mkdir(parents=True)
        data = notebook if isinstance(notebook, bytes) else json.dumps(notebook).encode()
        (tmp_path / "in" / student / "submission.ipynb").write_bytes(data)
    reference_bytes = (tmp_path / "in" / "reference" / "submission.ipynb").read_bytes()
    planted = SOLUTIONS / name / "owned.txt"
    try:
        # Honest cells here take well under a second of CPU each; the endless one costs its 5 s.
        results = {r.student: r for r in grade_class(name, tmp_path / "in", tmp_path / "out", course=COURSE, workers=2,
                                                     progress=False,
                                                     limits=Limits(cell_seconds=5, total_seconds=60))}
        assert not planted.exists(), "a student wrote into the solutions folder"
    finally:
        planted.unlink(missing_ok=True)
    maximum = Assignment.load(name, COURSE).max_score
    assert maximum > 0 and set(results) == set(students)
    for student, (_, expected, words) in students.items():
        result = results[student]
        assert result.score == expected, f"{name}/{student}: expected {expected}, {describe(result)}"
        assert words in describe(result), f"{name}/{student}: {describe(result)}"
        for cell in result.cells:
            assert cell.score == cell.points or cell.reason, f"{name}/{student} lost points without a reason"
    assert (tmp_path / "in" / "reference" / "submission.ipynb").read_bytes() == reference_bytes
    assert json.loads((tmp_path / "out" / "results" / "reference.json").read_text())["score"] == maximum
