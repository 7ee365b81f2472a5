"""Every chapter's assignment survives the same hostile and broken class.

Chapter 1 has a longer list of its own (tests/test_grading.py); this one runs a
common set against each assignment in solutions/, so a new chapter is covered
as soon as it has one.
"""
from __future__ import annotations

import copy
import json

import pytest

from autograder.course import EXERCISES, SOLUTIONS, assignments
from autograder.grading.batch import Assignment, grade_class
from autograder.grading.sandbox import Limits
from test_grading import answered, cell_index, describe, with_cell


def common_class(name: str) -> dict[str, tuple[object, str, str]]:
    """student -> (notebook or bytes, "full" or "zero", words expected in the result)."""
    notebook = next((SOLUTIONS / name).glob("*.ipynb")).name
    source = json.loads((SOLUTIONS / name / notebook).read_text())
    release = json.loads((EXERCISES / name / notebook).read_text())
    full = answered(source=source, release=release)
    tests = [c["metadata"]["nbgrader"]["grade_id"] for c in release["cells"]
             if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    mangled = copy.deepcopy(full)
    for grade_id in tests[1:]:
        del mangled["cells"][cell_index(mangled, grade_id)]
    first = cell_index(mangled, tests[0])
    mangled["cells"].insert(first, copy.deepcopy(mangled["cells"][first]))
    mangled["cells"][first]["cell_type"] = "markdown"
    return {
        "reference": (full, "full", ""),
        "blank": (release, "zero", ""),
        "tampers-with-comparisons": (with_cell(release, "import torch, torch.testing\n"
                                                        "torch.allclose = lambda *a, **k: True\n"
                                                        "torch.testing.assert_close = lambda *a, **k: None"),
                                     "zero", "suspected tampering"),
        "mangles-test-cells": (mangled, "full", "restored deleted cell"),
        "os-exit": (with_cell(full, "import os\nos._exit(3)", at=1), "zero", "exit code 3"),
        "invalid-json": (b"{", "zero", "not valid notebook JSON"),
        "correct-but-warns": (with_cell(full, "import sys, warnings\nwarnings.warn('old')\n"
                                              "print('noise', file=sys.stderr)"), "full", ""),
    }


@pytest.mark.parametrize("name", assignments())
def test_common_class(name, tmp_path):
    students = common_class(name)
    for student, (notebook, _, _) in students.items():
        (tmp_path / "in" / student).mkdir(parents=True)
        data = notebook if isinstance(notebook, bytes) else json.dumps(notebook).encode()
        (tmp_path / "in" / student / "submission.ipynb").write_bytes(data)
    results = {r.student: r for r in grade_class(name, tmp_path / "in", tmp_path / "out", workers=2,
                                                 progress=False, limits=Limits(wall_seconds=90))}
    maximum = Assignment.load(name).max_score
    assert maximum > 0
    for student, (_, expected, words) in students.items():
        result = results[student]
        assert result.score == (maximum if expected == "full" else 0.0), f"{name}/{student}: {describe(result)}"
        assert words in describe(result), f"{name}/{student}: {describe(result)}"
