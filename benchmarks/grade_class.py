"""Seconds per submission, every chapter: `rnn-by-hand grade` with 1 and 2 workers, and serial
`nbgrader autograde` on the same class.

    .venv/bin/python benchmarks/grade_class.py [--count 12] [--nbgrader-count 3] [--chapters 01-recurrence,...]

For each chapter it builds a class of reference submissions (the solution's answers in the
release), grades it with 1 worker and then with 2 in the same run, and prints:

    s/sub        wall seconds per submission
    speed-up     1 worker's wall time over 2 workers'
    parent       the grading process's CPU seconds per submission (collecting, preparing the
                 notebook, relaying what its sandbox sends, saving its result): the part
                 that does not grow with --workers (decoding and scoring are the scorers').
                 Measured as the difference between a class of 2 x --count and one of
                 --count, both with 2 workers, so the batch's fixed costs drop out
    share        parent / (parent + sandbox), with 2 workers
    fixed        the grading process's CPU seconds once per batch (loading the checks, cases,
                 references, starting the scorers), whatever the class's size
    sandbox      seconds a submission spent in its sandbox (its cells and the checks' calls)
    nbgrader     serial `nbgrader autograde` on the first --nbgrader-count of the class

Reference submissions are the heaviest kind: every check runs and is compared in full.
Run it on an otherwise idle machine and name the machine with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from submissions import answered  # noqa: E402 -- the tests' submission builder, beside this repo's tests

from rnn_by_hand.course import Course, nbgrader  # noqa: E402
from rnn_by_hand.grading.batch import grade_class  # noqa: E402


def cpu_seconds() -> float:
    """This process's user + system CPU seconds (children's are not all reaped through us:
    the sandboxes' own processes are reaped inside bubblewrap, so they are timed there)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def write_class(course: Path, assignment: str, notebook: str, count: int, name: str = "submitted") -> Path:
    source = json.loads((course / "solutions" / assignment / notebook).read_text())
    release = json.loads((course / "exercises" / assignment / notebook).read_text())
    reference = answered(source=source, release=release)
    for k in range(count):
        folder = course / name / f"student-{k:03d}" / assignment
        folder.mkdir(parents=True)
        (folder / notebook).write_text(json.dumps(reference))
    return course / name


def ours(course: Path, assignment: str, submissions: Path, workers: int, out: Path) -> dict:
    before_wall, before_cpu = time.perf_counter(), cpu_seconds()
    results = grade_class(assignment, submissions, out, course=course, workers=workers, progress=False,
                          resume=False)
    wall, cpu = time.perf_counter() - before_wall, cpu_seconds() - before_cpu
    assert all(r.score == r.max_score for r in results), [r.student for r in results if r.score != r.max_score]
    sandbox = sum(r.seconds for r in results) / len(results)
    return {"wall": wall, "per": wall / len(results), "cpu": cpu, "sandbox": sandbox, "count": len(results)}


def parent_costs(small: dict, large: dict) -> tuple[float, float]:
    """(CPU seconds per submission, CPU seconds per batch) of the grading process, from two classes."""
    per = max(0.0, (large["cpu"] - small["cpu"]) / (large["count"] - small["count"]))
    return per, max(0.0, small["cpu"] - per * small["count"])


def theirs(course: Path, assignment: str, notebook: str, count: int) -> float:
    """Serial nbgrader autograde on `count` of the class, seconds per submission."""
    students = sorted(p.name for p in (course / "submitted").iterdir())[:count]
    trial = course.parent / f"nbgrader-{assignment}"
    shutil.copytree(course, trial, ignore=shutil.ignore_patterns("submitted", "graded"))
    for student in students:
        shutil.copytree(course / "submitted" / student, trial / "submitted" / student)
        nbgrader("db", "student", "add", student, cwd=trial)
    nbgrader("generate_assignment", assignment, "--force", cwd=trial)
    start = time.perf_counter()
    nbgrader("autograde", assignment, cwd=trial)
    return (time.perf_counter() - start) / len(students)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=12, help="submissions per chapter (default 12)")
    parser.add_argument("--nbgrader-count", type=int, default=3, help="of those, graded by nbgrader (default 3)")
    parser.add_argument("--chapters", help="comma-separated assignments (default: all)")
    args = parser.parse_args()
    course_source = Course(REPO)
    chapters = args.chapters.split(",") if args.chapters else course_source.assignments()
    print(f"{os.cpu_count()} cores; {args.count} reference submissions a chapter "
          f"({args.nbgrader_count} for nbgrader)")
    print(f"{'chapter':<18} {'1 worker':>9} {'2 workers':>9} {'speed-up':>8} {'parent':>7} {'share':>6} "
          f"{'fixed':>6} {'sandbox':>8} {'nbgrader':>9} {'ratio':>6}")
    for assignment in chapters:
        with tempfile.TemporaryDirectory() as tmp:
            course = course_source.copy_to(Path(tmp) / "course")
            shutil.copytree(REPO / "exercises" / assignment, course / "exercises" / assignment)
            notebook = next((course / "solutions" / assignment).glob("*.ipynb")).name
            submissions = write_class(course, assignment, notebook, args.count)
            double = write_class(course, assignment, notebook, 2 * args.count, name="submitted-twice")
            one = ours(course, assignment, submissions, 1, Path(tmp) / "one")
            two = ours(course, assignment, submissions, 2, Path(tmp) / "two")
            parent, fixed = parent_costs(two, ours(course, assignment, double, 2, Path(tmp) / "twice"))
            nb = theirs(course, assignment, notebook, args.nbgrader_count) if args.nbgrader_count else float("nan")
        share = parent / (parent + two["sandbox"])
        print(f"{assignment:<18} {one['per']:8.2f}s {two['per']:8.2f}s {one['wall'] / two['wall']:7.2f}x "
              f"{parent:6.3f}s {share:5.1%} {fixed:5.2f}s {two['sandbox']:7.2f}s {nb:8.2f}s "
              f"{nb / two['per']:5.1f}x", flush=True)
    print("columns: wall s/submission with 1 and 2 workers (--count each), and the speed-up; the grading "
          "process's CPU s/submission and its share, and its CPU s per batch (2 workers); sandbox "
          "s/submission; nbgrader autograde s/submission; nbgrader over 2 workers")


if __name__ == "__main__":
    main()
