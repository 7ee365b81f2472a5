"""A class of adversarial and broken chapter 1 submissions, each with its expected score.

One batch grades them all (so one bad submission must not stop the others);
the tests then read each student's result. Student ids say what each does.
"""
from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import COURSE, SOLUTIONS, REPO, nbgrader, new_course
from rnn_by_hand.grading.batch import grade_class
from rnn_by_hand.grading.report import write_all
from rnn_by_hand.grading.batch import Assignment
from rnn_by_hand.grading.sandbox import Limits
from submissions import (ASSIGNMENT, FULL, RELEASE, RNN_BY_NN, ROOT, SOURCE, answer_ids, answered, cell_index,
                         describe, duplicated, edited, steal, with_cell, without)

# Tight limits keep the endless submissions short; honest cells here need well under a second.
LIMITS = Limits(cell_seconds=3, total_seconds=20)


def timed(nb: dict) -> dict:
    """%%time on every answer cell, as a student measuring their code would write."""
    nb = copy.deepcopy(nb)
    for grade_id in answer_ids(SOURCE):
        cell = nb["cells"][cell_index(nb, grade_id)]
        cell["source"] = "%%time\n" + "".join(cell["source"])
    return nb


def answered_in_copies() -> dict:
    """Each stub left as it is, the answer written in a copy of the stub cell below it."""
    nb = copy.deepcopy(RELEASE)
    for grade_id in answer_ids(SOURCE):
        nb["cells"].insert(cell_index(nb, grade_id) + 1, copy.deepcopy(SOURCE["cells"][cell_index(SOURCE, grade_id)]))
    return nb


def with_big_output(nb: dict) -> dict:
    """25 MB of stored output: outputs are never graded, so they count towards no limit."""
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x" * (25 << 20)}]
    return nb


IGNORES_LIMITS = """
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""


NEEDS_ROOT = ("reads-instructor-files", "writes-gradebook")


def class_list(tmp: Path) -> dict[str, tuple[object, float, str]]:
    """student id -> (notebook dict, or raw bytes; expected score; words expected in the result)."""
    students = {
        "reference": (answered(), FULL, ""),
        "blank": (RELEASE, 0.0, "not implemented yet"),
        "partly-right": (answered("stacked_rnn_step"), 2.0, "rnn_forward_padded is not implemented yet"),
        "tampers-with-comparisons": (with_cell(RELEASE, "import torch, torch.testing\n"
                                                  "torch.allclose = lambda *a, **k: True\n"
                                                  "torch.testing.assert_close = lambda *a, **k: None\n"
                                                  "torch.equal = lambda *a, **k: True"), 0.0, ""),
        "tampers-with-torch": (with_cell(answered(), "import torch\ntorch.nn.RNN.forward = lambda *a, **k: None\n"
                                                     "torch.nn.RNNCell.forward = lambda *a, **k: None"), FULL, ""),
        "tampers-with-autograder": (with_cell(RELEASE, "import rnn_by_hand.checking.check as c, rnn_by_hand.checking.student as s, rnn_by_hand.checking.compare as m\n"
                                                       "c.Check.compare = lambda *a, **k: []\n"
                                                       "m.compare_tensor = lambda *a, **k: []"), 0.0, ""),
        "tampers-with-references": (with_cell(answered("stacked_rnn_step"),
                                              "import rnn_by_hand.chapters.recurrence as r\n"
                                              "r.RnnForwardCheck.run_reference = lambda self, case: {}\n"
                                              "r.JordanRnnCheck.run_student = lambda self, s, case: self.run_reference(case)"),
                                    2.0, ""),
        # Reading the solutions would give full marks; hidden from the child, it gives none.
        "reads-instructor-files": (with_cell(RELEASE, steal(SOLUTIONS / ASSIGNMENT / "recurrence.ipynb"),
                                             at=len(RELEASE["cells"])), 0.0, ""),
        "writes-gradebook": (with_cell(answered(), "import os\ntry:\n"
                                                   "    open(os.environ['GRADEBOOK'], 'a').write('hacked')\n"
                                                   "except OSError:\n    pass"), FULL, ""),
        "deletes-test-cells": (without(without(answered(), "test_stacked_rnn_step"), "test_JordanRNN"), FULL,
                               "restored deleted cell 'test_stacked_rnn_step'"),
        "edits-test-cells": (edited(RELEASE, "test_stacked_rnn_step", source="pass  # all good"), 0.0,
                             "restored edited read-only cell 'test_stacked_rnn_step'"),
        "duplicates-cells": (duplicated(duplicated(answered(), "test_rnn_forward_padded"), "stacked_rnn_step"), FULL,
                             "removed a duplicate of cell 'test_rnn_forward_padded'"),
        "retypes-cells": (edited(edited(answered(), "test_JordanRNN", cell_type="markdown"), "stacked_rnn_step",
                                 cell_type="markdown"), FULL, "changed answer cell 'stacked_rnn_step' back"),
        # A cell that never ends costs only itself: it is stopped at its own limit.
        "infinite-loop": (with_cell(answered(), "while True:\n    pass", at=len(RELEASE["cells"])), FULL,
                          "time limit"),
        # Code that swallows its cell's time limit meets the whole notebook's.
        "ignores-time-limits": (with_cell(answered(), IGNORES_LIMITS, at=len(RELEASE["cells"])), 0.0,
                                "time limit"),
        "os-exit": (with_cell(answered(), "import os\nos._exit(3)", at=len(RELEASE["cells"])), 0.0,
                    "exit code 3"),
        "huge-allocation": (with_cell(answered(), "hog = bytearray(64 * 2**30)"), FULL, "MemoryError"),
        "invalid-json": (b'{"cells": [', 0.0, "not valid notebook JSON"),
        "empty-file": (b"", 0.0, "the submitted file is empty"),
        "unknown-kernel": (dict(answered(), metadata={"kernelspec": {"name": "julia-1.9"}}), FULL,
                           "kernel 'julia-1.9' replaced by python3"),
        "correct-but-warns": (with_cell(answered(), "import sys, warnings\nwarnings.warn('old API')\n"
                                                    "print('noise', file=sys.stderr)"), FULL, ""),
        # Honest work that plain nbgrader grades in full.
        "times-its-answers": (timed(answered()), FULL, ""),
        "answers-in-a-copy": (answered_in_copies(), FULL, "kept a copy of answer cell"),
        "stores-big-outputs": (with_big_output(answered()), FULL, ""),
        "calls-torch-nn": (with_cell(answered("stacked_rnn_step", "JordanRNN"), RNN_BY_NN,
                                     at=cell_index(RELEASE, "rnn_forward_padded") + 1),
                           5.0, "not written by hand"),  # rnn_forward_padded's 3 points lost, the others kept
    }
    return {k: v for k, v in students.items() if ROOT or k not in NEEDS_ROOT}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    course = new_course(tmp / "course")
    nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=course)
    submissions = tmp / "submissions"
    expected = {}
    for student, (notebook, score, words) in class_list(tmp).items():
        folder = submissions / student
        folder.mkdir(parents=True)
        data = notebook if isinstance(notebook, bytes) else json.dumps(notebook).encode()
        (folder / "recurrence.ipynb").write_bytes(data)
        expected[student] = (score, words)
    (submissions / "no-notebook").mkdir()
    expected["no-notebook"] = (0.0, "no notebook found")
    gradebook_before = (course / "gradebook.db").read_bytes()
    os.environ["GRADEBOOK"] = str(course / "gradebook.db")  # the hostile cell's target
    out = tmp / "graded"
    results = grade_class(ASSIGNMENT, submissions, out, course=course, workers=2, progress=False,
                          limits=LIMITS)
    untouched = (course / "gradebook.db").read_bytes() == gradebook_before
    write_all(results, Assignment.load(ASSIGNMENT, course), out, course)
    return {r.student: r for r in results}, expected, out, course, untouched, submissions


def test_every_submission_gets_its_expected_score_and_reason(graded):
    results, expected, *_ = graded
    assert set(results) == set(expected)
    for student, (score, words) in expected.items():
        result = results[student]
        assert result.score == score, f"{student}: {describe(result)}"
        if words:
            assert words in describe(result), f"{student}: {describe(result)}"
        for cell in result.cells:
            assert cell.score == cell.points or cell.reason, f"{student} lost points without a reason"


def test_every_result_and_feedback_page_names_the_isolation(graded):
    results, _, out, *_ = graded
    for student, result in results.items():
        assert result.isolation and result.isolation[0].startswith("bubblewrap"), student
        page = (out / "feedback" / f"{student}.html").read_text()
        assert "Isolation" in page and "bubblewrap" in page, student
    assert json.loads((out / "run.json").read_text())["isolation"].startswith("bubblewrap")


@pytest.mark.skipif(not ROOT, reason="without root the child runs as the grader's own user")
def test_students_cannot_touch_the_gradebook(graded):
    *_, untouched, _ = graded
    assert untouched


def test_outputs_csv_feedback_and_figure(graded):
    results, _, out, *_ = graded
    rows = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert float(rows["reference"]["score"]) == FULL and float(rows["blank"]["score"]) == 0
    assert "not implemented yet" in rows["blank"]["reasons"]
    page = (out / "feedback" / "edits-test-cells.html").read_text()
    assert "restored edited read-only cell" in page and "<script" not in page
    assert (out / "summary.png").stat().st_size > 10_000


def test_nbgrader_export_sees_the_scores(graded, tmp_path):
    results, _, _, course, *_ = graded
    nbgrader("export", "--to", str(tmp_path / "export.csv"), cwd=course)
    exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader((tmp_path / "export.csv").open())}
    for student, result in results.items():
        assert exported[student] == result.score, student


def test_resume_regrades_only_what_changed(graded):
    results, expected, out, course, _, submissions = graded
    (submissions / "blank" / "recurrence.ipynb").write_text(json.dumps(answered("stacked_rnn_step")))
    unchanged = ("reference", "infinite-loop", "os-exit")
    written = {s: (out / "results" / f"{s}.json").stat().st_mtime_ns for s in (*unchanged, "blank")}
    again = {r.student: r for r in grade_class(ASSIGNMENT, submissions, out, course=course, workers=2, progress=False)}
    assert again["blank"].score == 2.0  # changed: graded again
    assert (out / "results" / "blank.json").stat().st_mtime_ns != written["blank"]
    for student in unchanged:  # not regraded: their saved results were read, never written again
        assert (out / "results" / f"{student}.json").stat().st_mtime_ns == written[student], student
        assert again[student] == results[student]


def test_command_line_errors_are_one_line(tmp_path):
    for args, words in ((["grade", "99-nope", str(tmp_path), "--out", str(tmp_path / "o")],
                         "unknown assignment '99-nope'"),
                        (["grade", ASSIGNMENT, str(tmp_path / "missing")], "does not exist"),
                        (["release", "99-nope"], "no such assignment"),
                        (["validate", "--course", str(tmp_path)], "is not a course folder"),
                        (["grade", ASSIGNMENT, str(tmp_path), "--course", str(tmp_path / "nowhere")],
                         "does not exist"),
                        (["lm", "--bptt", "x"], "invalid int value")):
        result = subprocess.run([sys.executable, "-m", "rnn_by_hand", *args],
                                capture_output=True, text=True, cwd=REPO)
        assert result.returncode != 0 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_lms_zip_of_flat_files(tmp_path):
    """A zip as an LMS downloads it: flat files named <student>_<anything>.ipynb."""
    import zipfile
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("ada_attempt_2026-11-20_recurrence.ipynb", json.dumps(answered()))
        zipped.writestr("ben_attempt_2026-11-21_recurrence.ipynb", json.dumps(answered("stacked_rnn_step")))
        zipped.writestr("../escape.ipynb", "{}")  # never extracted outside the scratch folder
    results = grade_class(ASSIGNMENT, archive, tmp_path / "out", course=COURSE, workers=2, progress=False)
    assert {r.student: r.score for r in results} == {"ada": FULL, "ben": 2.0}
    from rnn_by_hand.grading.collect import unzip  # where the grader's scratch folder would put it
    unzip(archive, tmp_path / "scratch" / "unzipped")
    assert not (tmp_path / "scratch" / "escape.ipynb").exists() and not list(tmp_path.rglob("escape.ipynb"))


def test_the_grader_does_not_run_the_summary_cell():
    """check_all only prints what the checks decide; the grader runs every other code cell."""
    from rnn_by_hand.grading.notebook import prepare
    from rnn_by_hand.setup_cell import SUMMARY_ID
    prepared = prepare(json.dumps(answered("stacked_rnn_step")).encode(), RELEASE)
    labels = [label for label, _ in prepared.code]
    assert SUMMARY_ID not in labels and "check_all" not in "".join(code for _, code in prepared.code)
    assert "checker" in labels and len(labels) >= 4
    assert any(cell.get("id") == SUMMARY_ID for cell in prepared.cells)  # restored, only not run
