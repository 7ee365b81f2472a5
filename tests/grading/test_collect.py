"""Student ids as LMSs and folders give them: kept as keys, never colliding, never escaping."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rnn_by_hand.grading.collect import collect, file_name

NOTEBOOK = "recurrence.ipynb"


def found(root: Path, tmp_path: Path) -> dict:
    return {s.student: s for s in collect(root, "01-recurrence", NOTEBOOK, tmp_path / "scratch")}


def flat(tmp_path: Path, *names: str) -> Path:
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in names:
            zipped.writestr(name, "{}")
    return archive


def test_canvas_keeps_its_user_id_the_name_and_the_late_marker(tmp_path):
    got = found(flat(tmp_path, "doejane_12345_678901_recurrence.ipynb",
                     "roerichard_LATE_23456_678902_recurrence-1.ipynb"), tmp_path)
    assert set(got) == {"12345", "23456"}
    assert (got["12345"].name, got["12345"].late) == ("doejane", False)
    assert (got["23456"].name, got["23456"].late) == ("roerichard", True)


def test_moodle_keeps_its_participant_id_in_folders_and_flat_files(tmp_path):
    got = found(flat(tmp_path, "Jane Doe_4242_assignsubmission_file_/recurrence.ipynb",
                     "Richard Roe_4343_assignsubmission_file_recurrence.ipynb"), tmp_path)
    assert {k: v.name for k, v in got.items()} == {"4242": "Jane Doe", "4343": "Richard Roe"}


def test_blackboard_keeps_the_username_and_the_attempt_time(tmp_path):
    got = found(flat(tmp_path, "Assignment 1_jdoe_attempt_2026-11-20-14-05-09_recurrence.ipynb"), tmp_path)
    assert got["jdoe"].submitted_at == "2026-11-20T14:05:09+00:00"


def test_nbgrader_submitted_tree_keeps_collects_timestamp(tmp_path):
    folder = tmp_path / "submitted" / "alice" / "01-recurrence"
    folder.mkdir(parents=True)
    (folder / NOTEBOOK).write_text("{}")
    (folder / "timestamp.txt").write_text("2026-11-20 16:59:00.000000 UTC")
    assert found(tmp_path / "submitted", tmp_path)["alice"].submitted_at == "2026-11-20T16:59:00+00:00"


@pytest.mark.parametrize("ids", [("anna maria", "anna_maria"), ("x/y", "x_y"), ("Ana", "ana"), (".", "_")])
def test_file_names_never_collide(ids):
    names = [file_name(i) for i in ids]
    assert len(set(n.lower() for n in names)) == len(ids), names  # not even on a case-blind disk


@pytest.mark.parametrize("student", ["..", ".", "../../etc", "a/../../b", "x" * 252, "é" * 200, "", "-rf", ".hidden"])
def test_file_names_stay_in_their_folder_and_fit(student, tmp_path):
    name = file_name(student)
    assert 0 < len(name.encode()) <= 100 and "/" not in name and not name.startswith((".", "-"))
    (tmp_path / name).write_text("ok")
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_a_flat_member_named_dots_gets_a_safe_key(tmp_path):
    got = found(flat(tmp_path, "...ipynb"), tmp_path)
    student, = got
    assert file_name(student) != student  # its files get a digest name, not ".."


def test_a_batch_with_awkward_ids_grades_everyone_apart(tmp_path):
    import json

    from conftest import COURSE, EXERCISES
    from rnn_by_hand.grading.batch import Assignment, grade_class
    from rnn_by_hand.grading.report import write_all
    ids = ["anna maria", "anna_maria", "x" * 252, "Ana", "ana"]
    blank = (EXERCISES / "01-recurrence" / NOTEBOOK).read_text()
    for student in ids:
        (tmp_path / "in" / student).mkdir(parents=True)
        (tmp_path / "in" / student / NOTEBOOK).write_text(blank)
    out = tmp_path / "out"
    results = grade_class("01-recurrence", tmp_path / "in", out, course=COURSE, workers=2, progress=False)
    write_all(results, Assignment.load("01-recurrence", COURSE), out, None)
    assert sorted(r.student for r in results) == sorted(ids)
    assert all(r.final and r.score == 0 for r in results)
    assert len(list((out / "results").glob("*.json"))) == len(ids)
    pages = list((out / "feedback").glob("*.html"))
    assert len({p.name.lower() for p in pages}) == len(ids)
    shown = {json.loads(p.read_text())["student"] for p in (out / "results").glob("*.json")}
    assert shown == set(ids)
