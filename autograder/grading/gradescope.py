"""Gradescope: an autograder bundle for one assignment, and the grading it runs per submission.

    rnn-by-hand gradescope 01-recurrence --out recurrence-gradescope.zip

The zip is what Gradescope's "Configure Autograder" takes: `setup.sh` builds the image
(Ubuntu 24.04: Python 3.12, bubblewrap, a venv with rnn-by-hand[grade]), `run_autograder`
grades /autograder/submission with the same code, cases and sandbox as `rnn-by-hand grade`
(`grade_one`) and writes /autograder/results/results.json: the score, one test per graded
exercise with its full reason, visible to the student. The course's source notebooks
travel in the bundle (its hidden tests), which Gradescope keeps from students.

When the grader itself fails (no sandbox starts, a worker dies), run_autograder exits
non-zero without results, so Gradescope reports an autograder failure to rerun instead of
a score of 0: the grader's failure is never the student's score.
"""
from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

from rnn_by_hand._version import DISTRIBUTION, __version__
from rnn_by_hand.grading.errors import GradingError
from rnn_by_hand.grading.sandbox import UNSANDBOXED_FLAG

SOURCE = "/autograder/source"

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder image (choose Ubuntu 24.04).
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv bubblewrap
python3 -m venv /autograder/venv
wheel=$(ls {source}/wheels/*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$wheel" ]; then
    /autograder/venv/bin/pip install -q "$wheel[grade]"
else
    /autograder/venv/bin/pip install -q "{distribution}[grade]=={version}"
fi
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission; results go to /autograder/results/results.json.
exec /autograder/venv/bin/python -m rnn_by_hand.grading.gradescope {assignment} \\
    --course {source}/course --submission /autograder/submission \\
    --results /autograder/results/results.json{extra}
"""


def write_bundle(course, assignment_name: str, path: Path, wheel: Path | None = None,
                 unsandboxed: bool = False) -> Path:
    """The autograder zip for `assignment_name` of `course` (see the module docstring)."""
    from rnn_by_hand.course import CONFIG
    from rnn_by_hand.grading.batch import Assignment
    assignment = Assignment.load(assignment_name, course)
    extra = f" \\\n    {UNSANDBOXED_FLAG}" if unsandboxed else ""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, text in (("setup.sh", SETUP.format(source=SOURCE, distribution=DISTRIBUTION, version=__version__)),
                           ("run_autograder", RUN.format(assignment=assignment.name, source=SOURCE, extra=extra))):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable, as Gradescope expects
            bundle.writestr(info, text)
        bundle.write(course.root / CONFIG, f"course/{CONFIG}")
        for folder in ("solutions", "exercises"):
            for file in sorted((course.root / folder / assignment.name).rglob("*")):
                if file.is_file() and ".ipynb_checkpoints" not in file.parts:
                    bundle.write(file, f"course/{file.relative_to(course.root)}")
        if wheel:
            bundle.write(wheel, f"wheels/{Path(wheel).name}")
    return path


def results_json(result) -> dict:
    """Gradescope's results.json for one graded submission."""
    from rnn_by_hand.grading.report import one_line
    tests = [{"name": cell.grade_id, "score": cell.score, "max_score": cell.points,
              "output": cell.reason or "Passed: every case matched.", "visibility": "visible"}
             for cell in result.cells]
    notes = [*(f"Repaired before grading: {r}" for r in result.repairs), *result.notes]
    return {"score": result.score, "tests": tests, "visibility": "visible", "stdout_visibility": "hidden",
            "output": "\n".join(one_line(n) for n in notes)}


def submitted_notebook(folder: Path, expected: str) -> Path | None:
    from rnn_by_hand.grading.collect import pick
    path, _ = pick([p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts], expected)
    return path


def main(argv: list[str] | None = None) -> int:
    from rnn_by_hand.arguments import OneLineParser
    from rnn_by_hand.course import Course
    from rnn_by_hand.grading.batch import Assignment, grade_one
    parser = OneLineParser(prog="python -m rnn_by_hand.grading.gradescope", description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--course", type=Path, required=True)
    parser.add_argument("--submission", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument(UNSANDBOXED_FLAG, dest="unsandboxed", action="store_true")
    args = parser.parse_args(argv)
    try:
        course = Course.at(args.course)
        notebook = submitted_notebook(args.submission, Assignment.load(args.assignment, course).notebook)
        result = grade_one(notebook or args.submission / "missing.ipynb", args.assignment, course=course,
                           unsandboxed=args.unsandboxed)
    except GradingError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    if not result.final:
        print(f"{parser.prog}: error: the grader failed on this submission; run it again", file=sys.stderr)
        return 1
    args.results.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.results.with_suffix(".tmp")
    temporary.write_text(json.dumps(results_json(result), indent=1))
    shutil.move(temporary, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
