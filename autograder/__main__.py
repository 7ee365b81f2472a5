"""python -m autograder grade ASSIGNMENT SUBMISSIONS [options]: grade a whole class safely."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.grading.errors import GradingError
from autograder.grading.sandbox import UNSANDBOXED_FLAG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    grading = commands.add_parser("grade", help="grade every submission of one assignment")
    grading.add_argument("assignment", help="assignment name, e.g. 01-recurrence")
    grading.add_argument("submissions", type=Path,
                       help="a folder of student_id/<notebook>.ipynb, nbgrader's submitted/ tree, or a zip")
    grading.add_argument("--out", type=Path, default=Path("graded"), help="where results go (default: graded/)")
    grading.add_argument("--course", type=Path, help="nbgrader course folder whose gradebook.db gets the scores")
    grading.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel submissions")
    grading.add_argument("--cell-timeout", type=float, default=60.0,
                       help="CPU seconds for each cell and each check (wall clock: 3x; default 60)")
    grading.add_argument("--timeout", type=float, default=900.0,
                       help="wall seconds for a whole notebook at most (default 900)")
    grading.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit per submission")
    grading.add_argument("--disk-mb", type=int, default=512,
                       help="what a submission may write: its folder, /tmp and /dev/shm together")
    grading.add_argument("--seed", type=int, help="seed of the secret cases (default: random, kept for resume)")
    grading.add_argument("--no-resume", action="store_true", help="grade everything again")
    grading.add_argument("--quiet", action="store_true", help="no progress bar")
    grading.add_argument(UNSANDBOXED_FLAG, dest="unsandboxed", action="store_true",
                       help="where no sandbox can start, run student code with the grader's own rights "
                            "(it can then read the solutions and change any grade)")
    args = parser.parse_args(argv)
    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    if args.course and not (args.course / "gradebook.db").exists():
        parser.error(f"{args.course} has no gradebook.db (run nbgrader generate_assignment there first)")
    try:
        return grade(args)
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def grade(args) -> int:
    from autograder.grading.batch import Assignment, grade_class
    from autograder.grading.report import write_all
    from autograder.grading.sandbox import Limits
    limits = Limits(cell_seconds=args.cell_timeout, total_seconds=args.timeout,
                    memory_bytes=int(args.memory_gb * (1 << 30)), disk_bytes=args.disk_mb << 20)
    results = grade_class(args.assignment, args.submissions, args.out, workers=args.workers,
                          limits=limits, seed=args.seed,
                          resume=not args.no_resume, progress=not args.quiet,
                          unsandboxed=args.unsandboxed)
    write_all(results, Assignment.load(args.assignment), args.out, args.course)
    for r in results:
        lost = "; ".join(f"{c.grade_id}: {c.reason.splitlines()[0]}" for c in r.cells if c.reason)
        print(f"{r.student:20s} {r.score:g}/{r.max_score:g}  {lost}"[:200])
    print(f"wrote {args.out}/grades.csv, {args.out}/feedback/, {args.out}/summary.png"
          + (f" and {args.course}/gradebook.db" if args.course else ""))
    if results:
        print(f"isolation: {results[0].isolation[0] if results[0].isolation else 'none'}")
    failed = [r.student for r in results if not r.final and any("grader error" in c.reason for c in r.cells)]
    if failed:
        print(f"error: the grader failed on {len(failed)} submission(s) ({', '.join(failed[:5])}); "
              "they are marked 'not graded' and are graded again when you run the same command",
              file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
