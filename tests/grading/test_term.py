"""An instructor's term, as the instructor chapter walks it: two assignments, one through
nbgrader's exchange (with an on-time and a late student) and one through a Canvas zip;
nbgrader's own tools (export, the formgrader's state through its API) see what
`nbgrader autograde` would have left; Canvas gets a CSV it imports."""
from __future__ import annotations

import csv
import shutil
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from nbgrader.api import Gradebook

from conftest import REPO, SOLUTIONS, nbgrader, new_course
from submissions import ASSIGNMENT

SECOND, SECOND_NOTEBOOK = "06-gru", "gru.ipynb"
DUE = "2026-11-20 17:00:00 UTC"
LATE_BY_HOURS = 10


def grade(course: Path, assignment: str, submissions: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "rnn_by_hand", "grade", assignment, str(submissions),
                             "--course", str(course), "--quiet", "--workers", "2", *extra],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result


def test_a_whole_term(tmp_path):
    course = new_course(tmp_path / "course")
    with (course / "nbgrader_config.py").open("a") as config:
        config.write('\nc.LateSubmissionPlugin.penalty_method = "zero"  # late work scores 0\n')
    exchange = tmp_path / "exchange"
    exchange.mkdir(mode=0o777)
    where = [f"--Exchange.root={exchange}"]
    student_opts = [*where, "--CourseDirectory.course_id=rnn-course"]
    nbgrader("db", "assignment", "add", ASSIGNMENT, f"--duedate={DUE}", cwd=course)
    nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=course)
    nbgrader("release_assignment", ASSIGNMENT, *where, cwd=course)
    solution = json.loads((SOLUTIONS / ASSIGNMENT / "recurrence.ipynb").read_text())
    for student in ("ontime", "late"):  # both answer everything
        home = tmp_path / "home" / student
        home.mkdir(parents=True)
        me = f"--CourseDirectory.student_id={student}"
        nbgrader("fetch_assignment", ASSIGNMENT, *student_opts, cwd=home, HOME=str(home))
        (home / ASSIGNMENT / "recurrence.ipynb").write_text(json.dumps(solution))
        nbgrader("submit", ASSIGNMENT, *student_opts, me, cwd=home, HOME=str(home))
    nbgrader("collect", ASSIGNMENT, *where, cwd=course)
    # What the exchange records at submission: one before the due date, one ten hours after it.
    (course / "submitted" / "ontime" / ASSIGNMENT / "timestamp.txt").write_text("2026-11-20 16:59:00.000000 UTC")
    (course / "submitted" / "late" / ASSIGNMENT / "timestamp.txt").write_text(
        f"2026-11-21 {17 + LATE_BY_HOURS - 24:02d}:00:00.000000 UTC")

    grade(course, ASSIGNMENT, course / "submitted")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in ("ontime", "late"):
            submission = gradebook.find_submission(ASSIGNMENT, student)
            assert submission.timestamp is not None
            assert not submission.needs_manual_grade, "autograded cells must not wait for a grader"
            assert submission.code_score == 8.0
        assert gradebook.find_submission(ASSIGNMENT, "late").total_seconds_late == LATE_BY_HOURS * 3600
        assert gradebook.find_submission(ASSIGNMENT, "late").late_submission_penalty == 8.0
        assert gradebook.find_submission(ASSIGNMENT, "ontime").late_submission_penalty == 0.0

        # A grader overrides one cell by hand; a regrade keeps it and flags it for review, as nbgrader does.
        cell = gradebook.find_grade("test_stacked_rnn_step", "recurrence", ASSIGNMENT, "ontime")
        cell.manual_score = 1.0
        gradebook.db.commit()
    grade(course, ASSIGNMENT, course / "submitted", "--no-resume")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        cell = gradebook.find_grade("test_stacked_rnn_step", "recurrence", ASSIGNMENT, "ontime")
        assert cell.manual_score == 1.0 and cell.needs_manual_grade

    autograded = (course / "autograded" / "ontime" / ASSIGNMENT / "recurrence.ipynb").read_text()
    assert "hidden=True" not in autograded and "BEGIN HIDDEN TESTS" not in autograded, \
        "hidden tests would reach the students through nbgrader's feedback"
    nbgrader("generate_feedback", ASSIGNMENT, cwd=course)
    assert "hidden=True" not in next((course / "feedback" / "ontime").rglob("*.html")).read_text()

    # The second assignment comes back from Canvas as a zip; one student is marked late there.
    nbgrader("generate_assignment", SECOND, "--force", cwd=course)
    canvas = tmp_path / "canvas.zip"
    with zipfile.ZipFile(canvas, "w") as zipped:
        zipped.write(SOLUTIONS / SECOND / SECOND_NOTEBOOK, f"doejane_12345_678901_{SECOND_NOTEBOOK}")
        zipped.write(course / "exercises" / SECOND / SECOND_NOTEBOOK,
                     f"roerichard_LATE_23456_678902_{SECOND_NOTEBOOK}")
    grade(course, SECOND, canvas)
    first_run = json.loads((course / "graded" / ASSIGNMENT / "run.json").read_text())
    second_run = json.loads((course / "graded" / SECOND / "run.json").read_text())
    assert first_run["assignment"] == ASSIGNMENT and second_run["assignment"] == SECOND  # kept apart

    rows = list(csv.reader((course / "graded" / SECOND / "canvas.csv").open()))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", SECOND]
    maximum = rows[1][-1]
    assert rows[1][0].strip() == "Points Possible" and float(maximum) > 0
    assert {(r[0], r[1], r[-1]) for r in rows[2:]} == {("doejane", "12345", maximum), ("roerichard", "23456", "0")}
    ours = {r["student_id"]: r for r in csv.DictReader((course / "graded" / SECOND / "grades.csv").open())}
    assert ours["23456"]["late"] == "late" and ours["12345"]["late"] == "" and ours["12345"]["name"] == "doejane"

    nbgrader("export", "--to", str(tmp_path / "export.csv"), cwd=course)
    exported = {(r["assignment"], r["student_id"]): r for r in csv.DictReader((tmp_path / "export.csv").open())}
    # nbgrader exports every student for every assignment (0 where nothing was submitted)
    assert set(exported) == {(a, s) for a in (ASSIGNMENT, SECOND) for s in ("ontime", "late", "12345", "23456")}
    assert exported[(ASSIGNMENT, "late")]["timestamp"] and float(exported[(ASSIGNMENT, "late")]["score"]) == 0.0
    assert float(exported[(ASSIGNMENT, "ontime")]["score"]) == 8.0 - 2.0 + 1.0  # the manual override counts
    assert float(exported[(SECOND, "12345")]["score"]) == float(maximum)


def test_a_gradescope_bundle_grades_as_the_class_grader_does(tmp_path):
    """The zip Gradescope takes; its run_autograder's command, run here on the unpacked bundle."""
    import stat
    bundle = tmp_path / "bundle.zip"
    made = subprocess.run([sys.executable, "-m", "rnn_by_hand", "gradescope", ASSIGNMENT, "--out", str(bundle)],
                          capture_output=True, text=True, cwd=REPO)
    assert made.returncode == 0, made.stderr
    source = tmp_path / "source"
    with zipfile.ZipFile(bundle) as zipped:
        zipped.extractall(source)
        modes = {i.filename: i.external_attr >> 16 for i in zipped.infolist()}
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert (source / "course" / "solutions" / ASSIGNMENT / "recurrence.ipynb").is_file()
    run = (source / "run_autograder").read_text()
    assert f"-m rnn_by_hand.grading.gradescope {ASSIGNMENT}" in run and "/autograder/results/results.json" in run
    for who, notebook, score in (("reference", SOLUTIONS / ASSIGNMENT / "recurrence.ipynb", 8.0),
                                 ("blank", REPO / "exercises" / ASSIGNMENT / "recurrence.ipynb", 0.0),
                                 ("nothing", None, 0.0)):
        submission = tmp_path / who
        submission.mkdir()
        if notebook:
            (submission / "my upload.ipynb").write_bytes(notebook.read_bytes())
        results = tmp_path / f"{who}.json"
        graded = subprocess.run([sys.executable, "-m", "rnn_by_hand.grading.gradescope", ASSIGNMENT,
                                 "--course", str(source / "course"), "--submission", str(submission),
                                 "--results", str(results)], capture_output=True, text=True, cwd=tmp_path)
        assert graded.returncode == 0, graded.stderr
        data = json.loads(results.read_text())
        assert data["score"] == score
        assert [t["name"] for t in data["tests"]] == ["test_stacked_rnn_step", "test_rnn_forward_padded", "test_JordanRNN"]
        assert sum(t["max_score"] for t in data["tests"]) == 8.0
        assert all(t["visibility"] == "visible" and t["output"] for t in data["tests"])


def test_the_course_gitignore_covers_every_private_output(tmp_path):
    """What a term writes into the course folder (grades, submissions, gradebook) never shows
    up as something to commit in a course kept in git."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / ".gitignore", course / ".gitignore")
    for private in ("gradebook.db", "graded/01-recurrence/grades.csv", "graded/06-gru/canvas.csv",
                    "submitted/alice/01-recurrence/recurrence.ipynb", "autograded/alice/01-recurrence/x.ipynb",
                    "feedback/alice/01-recurrence/recurrence.html", "01-recurrence-gradescope.zip"):
        (course / private).parent.mkdir(parents=True, exist_ok=True)
        (course / private).write_text("private")
    subprocess.run(["git", "init", "-q"], cwd=course, check=True)
    shown = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=course,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    assert [line for line in shown if line.strip()] == ["?? .gitignore"]
