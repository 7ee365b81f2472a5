"""python -m autograder grade ASSIGNMENT SUBMISSIONS [options]: grade a whole class safely."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade every submission of one assignment")
    grade.add_argument("assignment", help="assignment name, e.g. 01-recurrence")
    grade.add_argument("submissions", type=Path,
                       help="a folder of student_id/<notebook>.ipynb, nbgrader's submitted/ tree, or a zip")
    grade.add_argument("--out", type=Path, default=Path("graded"), help="where results go (default: graded/)")
    grade.add_argument("--course", type=Path, help="nbgrader course folder whose gradebook.db gets the scores")
    grade.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel submissions")
    grade.add_argument("--timeout", type=float, default=120.0, help="wall seconds per submission")
    grade.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit per submission")
    grade.add_argument("--seed", type=int, help="seed of the secret cases (default: random, kept for resume)")
    grade.add_argument("--no-resume", action="store_true", help="grade everything again")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    if args.course and not (args.course / "gradebook.db").exists():
        parser.error(f"{args.course} has no gradebook.db (run nbgrader generate_assignment there first)")
    from autograder.grading.batch import Assignment, grade_class
    from autograder.grading.report import write_all
    from autograder.grading.sandbox import Limits
    limits = Limits(wall_seconds=args.timeout, cpu_seconds=int(args.timeout) + 5,
                    memory_bytes=int(args.memory_gb * (1 << 30)))
    results = grade_class(args.assignment, args.submissions, args.out, workers=args.workers,
                          limits=limits, course=args.course, seed=args.seed,
                          resume=not args.no_resume, progress=not args.quiet)
    write_all(results, Assignment.load(args.assignment), args.out, args.course)
    for r in results:
        lost = "; ".join(f"{c.grade_id}: {c.reason.splitlines()[0]}" for c in r.cells if c.reason)
        print(f"{r.student:20s} {r.score:g}/{r.max_score:g}  {lost}"[:200])
    print(f"wrote {args.out}/grades.csv, {args.out}/feedback/, {args.out}/summary.png"
          + (f" and {args.course}/gradebook.db" if args.course else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
