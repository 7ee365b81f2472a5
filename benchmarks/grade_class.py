"""Seconds per submission: plain serial `nbgrader autograde` against `python -m rnn_by_hand grade`.

    .venv/bin/python benchmarks/grade_class.py [--count 40] [--workers 2]

Builds a synthetic class of chapter 1 submissions (a quarter each: reference,
blank, partly right, broken), grades it both ways in temporary course folders,
and prints the two rates and their ratio. Takes a few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from submissions import ASSIGNMENT, RELEASE, answered, with_cell

from rnn_by_hand.course import Course, nbgrader
from rnn_by_hand.grading.batch import grade_class


def synthetic_class(count: int) -> dict[str, dict]:
    kinds = {"reference": answered(), "blank": RELEASE, "partly": answered("rnn_step"),
             "broken": with_cell(RELEASE, "this is not python\nimport os\nos._exit(1)")}
    return {f"{kind}-{i:02d}": copy.deepcopy(nb) for i in range(count // len(kinds))
            for kind, nb in kinds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    students = synthetic_class(args.count)
    with tempfile.TemporaryDirectory() as tmp:
        course = Course(Path(__file__).resolve().parents[1]).copy_to(Path(tmp) / "course")
        nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=course)
        for student, notebook in students.items():
            folder = course / "submitted" / student / ASSIGNMENT
            folder.mkdir(parents=True)
            (folder / "recurrence.ipynb").write_text(json.dumps(notebook))
            nbgrader("db", "student", "add", student, cwd=course)

        start = time.perf_counter()
        ours = grade_class(ASSIGNMENT, course / "submitted", Path(tmp) / "graded", course=course,
                           workers=args.workers, progress=False)
        our_seconds = time.perf_counter() - start

        start = time.perf_counter()
        nbgrader("autograde", ASSIGNMENT, cwd=course)
        their_seconds = time.perf_counter() - start

    n = len(students)
    print(f"class of {n} chapter 1 submissions, {args.workers} workers for our grader")
    print(f"nbgrader autograde (serial): {their_seconds:7.1f} s  {their_seconds / n:6.2f} s/submission")
    print(f"rnn-by-hand grade          : {our_seconds:7.1f} s  {our_seconds / n:6.2f} s/submission")
    print(f"throughput ratio           : {their_seconds / our_seconds:7.1f}x")
    print(f"our scores: {sorted({r.score for r in ours})} (reference 8, partly right 2, blank and broken 0)")


if __name__ == "__main__":
    main()
