"""Every chapter's assignment survives the same hostile and broken class.

Chapter 1 has a few more cases of its own (tests/test_grading.py: the gradebook,
export, resume, LMS zips); this file grades the full list of adversarial and
broken submissions against each assignment in solutions/, so a new chapter is
covered as soon as it has one. Student ids say what each submission does.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conftest import COURSE, EXERCISES, SOLUTIONS, assignments
from rnn_by_hand.grading.batch import Assignment, grade_class
from rnn_by_hand.grading.sandbox import Limits
from test_grading import (ROOT, RNN_BY_NN, answer_ids, answered, cell_index, describe, duplicated, edited, steal,
                          with_cell)

# One "from scratch" answer per chapter that hands the work to torch.nn (or, in
# chapter 8, to the book's own package): (answer cell it follows, source, exercises lost).
DIRECTION_BY_NN = '''
def run_direction(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh",
                  reverse=False):
    rnn = nn.RNN(weight_ih.shape[1], weight_ih.shape[0], nonlinearity=nonlinearity,
                 bias=bias_ih is not None, dtype=x.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(weight_ih); rnn.weight_hh_l0.copy_(weight_hh)
        if bias_ih is not None:
            rnn.bias_ih_l0.copy_(bias_ih); rnn.bias_hh_l0.copy_(bias_hh)
    states, final = rnn(x.flip(0) if reverse else x, h.unsqueeze(0))
    return (states.flip(0) if reverse else states), final[0]
'''
CALLS_THE_LIBRARY = {
    "01-recurrence": ("rnn_forward", RNN_BY_NN, ["rnn_forward", "MyRNN"]),  # MyRNN reuses rnn_forward
    "02-embedding": ("embedding_lookup", "def embedding_lookup(input, weight):\n"
                                         "    return torch.nn.functional.embedding(input, weight)",
                     ["embedding_lookup"]),
    "03-rnn": ("birnn_forward", DIRECTION_BY_NN, ["birnn_forward"]),
    "04-training": ("clip_grad_norm", "from torch.nn.utils import clip_grad_norm_ as clip_grad_norm",
                    ["clip_grad_norm"]),
    "05-lstm": ("lstm_step", "def lstm_step(x_t, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n"
                             "    cell = nn.LSTMCell(weight_ih.shape[1], weight_hh.shape[1], dtype=x_t.dtype)\n"
                             "    cell.load_state_dict(dict(weight_ih=weight_ih, weight_hh=weight_hh,\n"
                             "                              bias_ih=bias_ih, bias_hh=bias_hh))\n"
                             "    return cell(x_t, state)", ["lstm_step"]),
    "06-gru": ("gru_step", "def gru_step(x_t, h_prev, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n"
                           "    return torch.gru_cell(x_t, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)",
               ["gru_step"]),
    "07-cells": ("stacked_lstm_forward",
                 "def stacked_lstm_forward(input, hx, cells):\n"
                 "    lstm = nn.LSTM(cells[0].input_size, cells[0].hidden_size, num_layers=len(cells),\n"
                 "                   dtype=cells[0].weight_ih.dtype)\n"
                 "    lstm.load_state_dict({f'{name}_l{k}': value for k, cell in enumerate(cells)\n"
                 "                          for name, value in cell.state_dict().items()})\n"
                 "    return lstm(input, hx)", ["stacked_lstm_forward"]),
    "08-language-model": ("batchify", "from rnn_by_hand.lm.data import batchify", ["batchify"]),
}

TAMPER_WITH_TORCH = """import torch, torch.testing
torch.allclose = torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.__eq__ = lambda *a, **k: True
torch.Tensor.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
"""
TAMPER_WITH_AUTOGRADER = """import rnn_by_hand.check as c, rnn_by_hand.compare as m
c.Check.compare = lambda *a, **k: []
c.CheckFailure.__init__ = lambda *a, **k: None
m.compare_tensor = lambda *a, **k: []
"""
TAMPER_WITH_REFERENCES = """from rnn_by_hand.check import Check
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

    after, cheat, lost = CALLS_THE_LIBRARY[name]
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
