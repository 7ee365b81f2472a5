"""Several graders at once on one PostgreSQL gradebook, as the instructor chapter describes.

The test starts its own PostgreSQL server (Debian's postgresql, installed by `dev.py test`)
in a temporary folder, listening only on a Unix socket there, and stops it at the end.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import EXERCISES, REPO, SOLUTIONS, nbgrader, new_course
from submissions import ASSIGNMENT

NOTEBOOK = "recurrence.ipynb"


def postgres_program(name: str) -> str | None:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    return str(found) if found else None


@pytest.fixture()
def postgres():
    """A running server: (its socket folder, port). As root, the server runs as user postgres,
    in a folder of its own under /tmp (pytest's folders are closed to other users)."""
    if not all(postgres_program(p) for p in ("initdb", "pg_ctl", "createdb")):
        pytest.skip("PostgreSQL is not installed (python3 dev.py test installs it where it runs as root)")
    root = Path(tempfile.mkdtemp(prefix="rnn-course-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", 54000 + os.getpid() % 1000

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, cwd=root)

    run(postgres_program("initdb"), "-D", str(data), "-U", "grader", "--auth=trust")
    run(postgres_program("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
        f"-k {root} -p {port} -c listen_addresses=''", "start")
    try:
        run(postgres_program("createdb"), "-h", str(root), "-p", str(port), "-U", "grader", "rnn_course")
        yield root, port
    finally:
        run(postgres_program("pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_two_graders_share_one_postgres_gradebook(postgres, tmp_path):
    socket_dir, port = postgres
    url = f"postgresql://grader@/rnn_course?host={socket_dir}&port={port}"
    course = new_course(tmp_path / "course")
    with (course / "nbgrader_config.py").open("a") as config:
        config.write(f"\nc.CourseDirectory.db_url = {url!r}\n")
    nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=course)  # once, before graders share it
    answers = {"alice": SOLUTIONS, "bob": EXERCISES, "carol": SOLUTIONS, "dave": EXERCISES}
    shares = {"first": ["alice", "bob"], "second": ["carol", "dave"]}
    graders = []
    for grader, students in shares.items():  # each grader takes a share of the class, at the same time
        for student in students:
            folder = tmp_path / grader / student
            folder.mkdir(parents=True)
            shutil.copy(answers[student] / ASSIGNMENT / NOTEBOOK, folder / NOTEBOOK)
        graders.append(subprocess.Popen(
            [sys.executable, "-m", "rnn_by_hand", "grade", ASSIGNMENT, str(tmp_path / grader), "--course",
             str(course), "--out", str(tmp_path / f"graded-{grader}"), "--quiet", "--workers", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO))
    for process in graders:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors
    assert not (course / "gradebook.db").exists(), "the grader wrote SQLite instead of the configured database"

    from nbgrader.api import Gradebook
    with Gradebook(url) as gradebook:
        scores = {s: gradebook.find_submission(ASSIGNMENT, s).score for s in answers}
        assert not any(gradebook.find_submission(ASSIGNMENT, s).needs_manual_grade for s in answers)
    assert scores == {"alice": 8.0, "bob": 0.0, "carol": 8.0, "dave": 0.0}
    nbgrader("export", "--to", str(tmp_path / "export.csv"), cwd=course)
    exported = {r["student_id"]: float(r["score"]) for r in csv.DictReader((tmp_path / "export.csv").open())}
    assert exported == scores
    assert json.loads((tmp_path / "graded-first" / "run.json").read_text())["assignment"] == ASSIGNMENT
