"""The whole classroom flow on one machine, through nbgrader's real exchange:
release, fetch, submit, collect, grade (with our grader), feedback, fetch feedback."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

from conftest import REPO, nbgrader, new_course
from submissions import ASSIGNMENT, RELEASE, answered


def test_release_fetch_submit_collect_grade_feedback(tmp_path):
    course = new_course(tmp_path / "course")
    exchange = tmp_path / "exchange"
    exchange.mkdir(mode=0o777)
    where = [f"--Exchange.root={exchange}"]
    student_opts = [*where, "--CourseDirectory.course_id=rnn-course"]
    nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=course)
    nbgrader("release_assignment", ASSIGNMENT, *where, cwd=course)

    answers = {"alice": answered(), "bob": RELEASE}  # alice answers everything, bob nothing
    homes = {}
    for student, notebook in answers.items():
        home = homes[student] = tmp_path / "home" / student
        home.mkdir(parents=True)
        me = f"--CourseDirectory.student_id={student}"  # as a JupyterHub user's login would be
        # Each student has their own HOME, as on a hub: nbgrader caches submissions there.
        nbgrader("fetch_assignment", ASSIGNMENT, *student_opts, cwd=home, HOME=str(home))
        (home / ASSIGNMENT / "recurrence.ipynb").write_text(json.dumps(notebook))
        nbgrader("submit", ASSIGNMENT, *student_opts, me, cwd=home, HOME=str(home))

    nbgrader("collect", ASSIGNMENT, *where, cwd=course)
    graded = subprocess.run([sys.executable, "-m", "rnn_by_hand", "grade", ASSIGNMENT,
                             str(course / "submitted"), "--course", str(course),
                             "--out", str(tmp_path / "graded"), "--quiet"],
                            capture_output=True, text=True, cwd=REPO)
    assert graded.returncode == 0, graded.stderr
    nbgrader("generate_feedback", ASSIGNMENT, cwd=course)
    nbgrader("release_feedback", ASSIGNMENT, *where, cwd=course)
    nbgrader("export", "--to", str(tmp_path / "grades.csv"), cwd=course)

    scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader((tmp_path / "grades.csv").open())}
    assert scores == {"alice": 8.0, "bob": 0.0}
    for student, words in (("alice", "Passed: every case matched"), ("bob", "not implemented yet")):
        me = f"--CourseDirectory.student_id={student}"
        nbgrader("fetch_feedback", ASSIGNMENT, *student_opts, me, cwd=homes[student], HOME=str(homes[student]))
        pages = list((homes[student] / ASSIGNMENT / "feedback").rglob("recurrence.html"))
        assert len(pages) == 1, f"{student} got no feedback"
        assert words in pages[0].read_text()
