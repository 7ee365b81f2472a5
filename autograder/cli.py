"""rnn-by-hand: the instructor's command (also `python -m rnn_by_hand`).

    rnn-by-hand release [ASSIGNMENT ...]          write exercises/ from solutions/
    rnn-by-hand validate [ASSIGNMENT ...]         the course is ready: releases current,
                                                  solutions full marks, blank releases zero
    rnn-by-hand grade ASSIGNMENT SUBMISSIONS      grade a whole class in sandboxes
    rnn-by-hand plan ASSIGNMENT                   fix the seed and release for sharded grading
    rnn-by-hand grade ... --plan P --shard K/N    grade shard K of N (any host, any job engine)
    rnn-by-hand merge ASSIGNMENT SHARD ...        the shards' results into one report and gradebook
    rnn-by-hand gradescope ASSIGNMENT             a Gradescope autograder zip
    rnn-by-hand lm [OPTIONS]                      train and sample chapter 8's language model

Each course command works on the course folder given by --course (default: the current
folder), wherever this package is installed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from rnn_by_hand._version import __version__
from rnn_by_hand.arguments import OneLineParser as Parser
from rnn_by_hand.grading.errors import GradingError
from rnn_by_hand.grading.sandbox import UNSANDBOXED_FLAG

PROG = "rnn-by-hand"


def parser() -> Parser:
    top = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = top.add_subparsers(dest="command", required=True, parser_class=Parser)

    def course_command(name: str, help: str) -> Parser:
        command = commands.add_parser(name, help=help, description=help)
        command.add_argument("--course", type=Path, default=Path("."),
                             help="the nbgrader course folder (default: the current folder)")
        return command

    release = course_command("release", "write exercises/<assignment>/ from solutions/ with nbgrader")
    release.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: every assignment")

    validate = course_command("validate", "check that the course is ready to hand out")
    validate.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: every assignment")
    validate.add_argument("--workers", type=int, default=os.cpu_count() or 1)

    grade = course_command("grade", "grade every submission of one assignment")
    grade.add_argument("assignment", help="assignment name, e.g. 01-recurrence")
    grade.add_argument("submissions", type=Path,
                       help="a folder of student_id/<notebook>.ipynb, nbgrader's submitted/ tree, or a zip")
    grade.add_argument("--out", type=Path, help="where results go (default: COURSE/graded/ASSIGNMENT)")
    grade.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel submissions")
    grade.add_argument("--cell-timeout", type=float, default=60.0,
                       help="CPU seconds for each cell and each check (wall clock: 3x; default 60)")
    grade.add_argument("--timeout", type=float, default=900.0,
                       help="wall seconds for a whole notebook at most (default 900)")
    grade.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit per submission")
    grade.add_argument("--disk-mb", type=int, default=512,
                       help="what a submission may write: its folder, /tmp and /dev/shm together")
    grade.add_argument("--seed", type=int, help="seed of the secret cases (default: random, kept for resume)")
    grade.add_argument("--no-resume", action="store_true", help="grade everything again")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.add_argument("--no-gradebook", action="store_true",
                       help="leave nbgrader's gradebook and autograded/ alone (a trial run)")
    grade.add_argument(UNSANDBOXED_FLAG, dest="unsandboxed", action="store_true",
                       help="where no sandbox can start, run student code with the grader's own rights "
                            "(it can then read the solutions and change any grade)")
    grade.add_argument("--plan", type=Path, help="a plan from `rnn-by-hand plan` (its seed and release)")
    grade.add_argument("--shard", metavar="K/N",
                       help="grade only shard K of N (0 <= K < N; needs --plan); results only, no gradebook")

    plan = course_command("plan", "fix the secret seed and the release for a class graded in shards")
    plan.add_argument("assignment", help="assignment name, e.g. 01-recurrence")
    plan.add_argument("--seed", type=int, help="seed of the secret cases (default: random)")
    plan.add_argument("--out", type=Path, default=Path("plan.json"), help="default: plan.json")

    merge = course_command("merge", "merge the shards of a plan: reports, and nbgrader's gradebook once")
    merge.add_argument("assignment", help="assignment name, e.g. 01-recurrence")
    merge.add_argument("shards", nargs="+", type=Path, metavar="SHARD", help="each shard's --out folder")
    merge.add_argument("--plan", type=Path, required=True, help="the plan every shard was graded under")
    merge.add_argument("--out", type=Path, help="where reports go (default: COURSE/graded/ASSIGNMENT)")
    merge.add_argument("--no-gradebook", action="store_true", help="leave nbgrader's gradebook alone")

    gradescope = course_command("gradescope", "write a Gradescope autograder zip for one assignment")
    gradescope.add_argument("assignment", help="assignment name, e.g. 01-recurrence")
    gradescope.add_argument("--out", type=Path, help="the zip to write (default: ASSIGNMENT-gradescope.zip)")
    gradescope.add_argument("--wheel", type=Path, help="a wheel of rnn-by-hand to install there instead of PyPI's")
    gradescope.add_argument(UNSANDBOXED_FLAG, dest="unsandboxed", action="store_true",
                            help="where Gradescope's container cannot start bubblewrap, grade without it")

    commands.add_parser("lm", help="the language model of chapter 8 (rnn-by-hand lm --help)", add_help=False)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lm"]:  # its own options, its own parser
        # Before torch loads: spinning OpenMP threads collapse training on a shared machine.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from rnn_by_hand.lm.__main__ import main as lm_main
        return lm_main(argv[1:], prog=f"{PROG} lm")
    args = parser().parse_args(argv)
    try:
        from rnn_by_hand.course import Course
        course = Course.at(args.course)
        return {"release": release, "validate": validate, "grade": grade, "plan": plan,
                "merge": merge, "gradescope": gradescope}[args.command](args, course)
    except GradingError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2


def release(args, course) -> int:
    names = course.release(args.assignments)
    print(f"wrote {course.exercises} for {', '.join(names)}")
    return 0


def validate(args, course) -> int:
    """Releases current, every setup cell of this checker, solutions full marks, releases zero."""
    import json

    from rnn_by_hand import setup_cell
    from rnn_by_hand.grading.batch import Assignment, grade_class
    names = course.known(args.assignments)
    problems = [f"{path.relative_to(course.root)}: its first or last cell is not {PROG} {__version__}'s"
                for name in names for path in sorted((course.solutions / name).glob("*.ipynb"))
                if setup_cell.stamped(json.loads(path.read_text()), name) != json.loads(path.read_text())]
    problems += [f"{file} is out of date" for file in course.stale_releases(names)]
    with tempfile.TemporaryDirectory(prefix="validate-") as tmp:
        for name in names:
            assignment = Assignment.load(name, course)
            submitted = Path(tmp) / name
            for student, folder in (("solution", course.solutions), ("release", course.exercises)):
                (submitted / student).mkdir(parents=True)
                (submitted / student / assignment.notebook).write_bytes(
                    (folder / name / assignment.notebook).read_bytes())
            # The course's own notebooks: trusted, so they may run unsandboxed where no sandbox starts.
            results = {r.student: r for r in grade_class(name, submitted, Path(tmp) / f"{name}-out",
                                                          course=course, workers=args.workers,
                                                          progress=False, unsandboxed=True)}
            full, blank = results["solution"], results["release"]
            print(f"{name}: solution {full.score:g}/{full.max_score:g}, release {blank.score:g}/{blank.max_score:g}")
            if full.score != full.max_score:
                lost = "; ".join(f"{c.grade_id}: {c.reason.splitlines()[0]}" for c in full.cells if c.reason)
                problems.append(f"{name}: the solution loses points ({lost[:300]})")
            if blank.score != 0:
                problems.append(f"{name}: the blank release earns {blank.score:g} points")
    for problem in problems:
        print(f"{PROG}: {problem}", file=sys.stderr)
    if problems:
        print(f"{PROG}: run `{PROG} release` after editing solutions/, then validate again", file=sys.stderr)
    return 1 if problems else 0


def gradescope(args, course) -> int:
    from rnn_by_hand.grading.gradescope import write_bundle
    if args.wheel and not args.wheel.is_file():
        raise GradingError(f"{args.wheel} does not exist")
    path = write_bundle(course, args.assignment, args.out or Path(f"{args.assignment}-gradescope.zip"),
                        args.wheel, args.unsandboxed)
    print(f"wrote {path}: upload it in Gradescope's Configure Autograder (base image Ubuntu 24.04)")
    return 0


def grade(args, course) -> int:
    from rnn_by_hand.grading.batch import Assignment, grade_class
    from rnn_by_hand.grading.report import write_all
    from rnn_by_hand.grading.sandbox import Limits
    if not args.submissions.exists():
        raise GradingError(f"{args.submissions} does not exist")
    from rnn_by_hand.grading.shards import load_plan, parse_shard
    shard = parse_shard(args.shard) if args.shard else None
    if shard and not args.plan:
        raise GradingError("--shard needs --plan: every shard must grade under the same plan")
    the_plan = load_plan(args.plan) if args.plan else None
    if the_plan and args.seed is not None and args.seed != the_plan.seed:
        raise GradingError("--seed and --plan disagree: the plan fixes the seed")
    out = args.out or course.root / "graded" / (args.assignment + (f"-shard-{shard[0]}-of-{shard[1]}" if shard else ""))
    limits = Limits(cell_seconds=args.cell_timeout, total_seconds=args.timeout,
                    memory_bytes=int(args.memory_gb * (1 << 30)), disk_bytes=args.disk_mb << 20)
    results = grade_class(args.assignment, args.submissions, out, course=course, workers=args.workers,
                          limits=limits, seed=args.seed, resume=not args.no_resume,
                          progress=not args.quiet, unsandboxed=args.unsandboxed, plan=the_plan, shard=shard)
    if shard:
        print(f"shard {shard[0]} of {shard[1]}: graded {len(results)} submission(s) into {out}/results; "
              f"`{PROG} merge` writes the reports and the gradebook")
        return report_grader_failures(results)
    write_all(results, Assignment.load(args.assignment, course), out, None if args.no_gradebook else course)
    for r in results:
        lost = "; ".join(f"{c.grade_id}: {c.reason.splitlines()[0]}" for c in r.cells if c.reason)
        print(f"{r.student:20s} {r.score:g}/{r.max_score:g}  {lost}"[:200])
    print(f"wrote {out}/grades.csv, canvas.csv, feedback/ and summary.png"
          + ("" if args.no_gradebook else f", and the scores into nbgrader's gradebook "
             f"({course.gradebook_url()}) with autograded/ notebooks"))
    if results:
        print(f"isolation: {results[0].isolation[0] if results[0].isolation else 'none'}")
    return report_grader_failures(results)


def report_grader_failures(results) -> int:
    failed = [r.student for r in results if not r.final and any("grader error" in c.reason for c in r.cells)]
    if failed:
        print(f"{PROG}: error: the grader failed on {len(failed)} submission(s) ({', '.join(failed[:5])}); "
              "they are marked 'not graded' and are graded again when you run the same command",
              file=sys.stderr)
        return 1
    return 0


def plan(args, course) -> int:
    from rnn_by_hand.grading.shards import make_plan, write_plan
    the_plan = make_plan(course, args.assignment, args.seed)
    write_plan(the_plan, args.out)
    print(f"wrote {args.out} (plan {the_plan.id}): give it to every shard, "
          f"`{PROG} grade {args.assignment} SUBMISSIONS --plan {args.out} --shard K/N`")
    return 0


def merge(args, course) -> int:
    from rnn_by_hand.grading.batch import Assignment, load_result, result_path
    from rnn_by_hand.grading.report import write_all
    from rnn_by_hand.grading.shards import check_plan, load_plan, merge_shards
    the_plan = load_plan(args.plan)
    check_plan(the_plan, course, args.assignment)
    graded_by = merge_shards(the_plan, args.shards)
    results = [load_result(result_path(folder, student)) for student, folder in graded_by.items()]
    out = args.out or course.root / "graded" / args.assignment
    out.mkdir(parents=True, exist_ok=True)
    write_all(results, Assignment.load(args.assignment, course), out, None if args.no_gradebook else course)
    print(f"merged {len(args.shards)} shard(s), {len(results)} submission(s): wrote {out}/grades.csv, canvas.csv, "
          "feedback/ and summary.png" + ("" if args.no_gradebook else ", and nbgrader's gradebook"))
    return report_grader_failures(results)
