"""Grade a whole class: pre-flight, sandboxed runs in parallel, comparison here, results.

The authoritative grade of a test cell is its points when every check the cell
calls passes on the visible cases, the hidden cases and a batch of cases drawn
from a secret seed; otherwise 0, with the first problem as the reason.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.course import EXERCISES, SOLUTIONS
from autograder.grading import notebook as nbmod
from autograder.grading.collect import Submission, collect
from autograder.grading.sandbox import Job, Limits, Outcome, Pool, dumps


@dataclass
class CellResult:
    grade_id: str
    points: float
    score: float
    reason: str = ""


@dataclass
class Result:
    student: str
    assignment: str
    score: float
    max_score: float
    cells: list[CellResult]
    repairs: list[str] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    isolation: list[str] = field(default_factory=list)
    seconds: float = 0.0
    digest: str = ""
    path: str = ""  # the submitted notebook


@dataclass
class Assignment:
    name: str
    notebook: str
    source: dict
    release: dict
    graded: list[nbmod.GradedCell]

    @classmethod
    def load(cls, name: str, source_dir: Path = SOLUTIONS, release_dir: Path = EXERCISES):
        folder = source_dir / name
        if not folder.is_dir():
            known = ", ".join(sorted(p.name for p in source_dir.iterdir() if p.is_dir()))
            raise SystemExit(f"unknown assignment {name!r}; known: {known}")
        notebooks = sorted(folder.glob("*.ipynb"))
        if len(notebooks) != 1:
            raise SystemExit(f"{folder} should hold exactly one notebook, found {len(notebooks)}")
        source = nbmod.load(notebooks[0])
        release = nbmod.load(release_dir / name / notebooks[0].name)
        return cls(name, notebooks[0].name, source, release, nbmod.graded_cells(source))

    @property
    def max_score(self) -> float:
        return sum(cell.points for cell in self.graded)


def make_cases(assignment: Assignment, seed: int) -> dict:
    """Visible, hidden and secret-seed cases for every check the assignment uses."""
    from autograder import CHECKS
    names = {name for cell in assignment.graded for name, _ in cell.checks}
    return {name: CHECKS[name].make_cases(hidden=False) + CHECKS[name].make_cases(hidden=True)
            + CHECKS[name].make_cases(hidden=True, seed=seed) for name in sorted(names)}


def score(assignment: Assignment, outcome: Outcome, cases: dict) -> list[CellResult]:
    """Compare the child's outputs with the references, here, and score each test cell."""
    from autograder import CHECKS
    failures: dict[str, str] = {}
    reported = {m["check"]: m for m in outcome.messages}
    for name in cases:
        message = reported.get(name)
        if message is None:
            failures[name] = {"timeout": f"not graded: the notebook ran past the time limit",
                              "ok": "not graded: the notebook's process ended early"}.get(
                outcome.exit, f"not graded: the notebook's process ended ({outcome.exit})")
        elif "error" in message:
            failures[name] = message["error"]
        else:
            failures[name] = first_problem(CHECKS[name], cases[name], message.get("outputs"))
    results = []
    for cell in assignment.graded:
        problems = [failures[name] for name, _ in cell.checks if failures.get(name)]
        results.append(CellResult(cell.grade_id, cell.points, 0.0 if problems else cell.points,
                                  problems[0] if problems else ""))
    return results


def first_problem(check, cases: list, outputs) -> str:
    if not isinstance(outputs, list) or len(outputs) != len(cases):
        return "not graded: the notebook returned an incomplete set of results"
    for index, (case, actual) in enumerate(zip(cases, outputs), start=1):
        if not isinstance(actual, dict):
            return "not graded: the notebook returned malformed results"
        try:
            problems = check.compare(case, check.run_reference(case), actual)
        except Exception as error:  # noqa: BLE001 -- malformed student data, not a grader bug
            problems = [f"the result could not be compared ({type(error).__name__}: {error})"]
        if problems:
            return check.failure_message(case, index, len(cases), problems, safe_hint(check, case, actual))
    return ""


def safe_hint(check, case, actual: dict) -> str:
    """The check's hint, or none when the child's outputs are too malformed to name a mistake."""
    try:
        return check.hint(case, actual)
    except Exception:  # noqa: BLE001 -- malformed student data, not a grader bug
        return ""


def digest(path: Path | None) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path else "none"


def private_paths(course: Path | None, submissions: Path, out: Path) -> list[str]:
    """What a child must not read: solutions, tests, gradebooks, everyone's work, results."""
    paths = [SOLUTIONS, SOLUTIONS.parent / "tests", submissions, out]
    if course:
        paths += [course / "source", course / "solutions", course / "submitted", course / "autograded",
                  course / "feedback", course / "gradebook.db"]
    found, seen = [], set()
    for path in paths:
        path = path.resolve()
        if path.exists() and path not in seen:
            seen.add(path)
            found.append(str(path))
    return found


class Progress:
    """One line on stderr, rewritten: done/total, rate and time left."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.start, self.enabled = total, 0, time.monotonic(), enabled

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed else 0.0
        left = (self.total - self.done) / rate if rate else 0.0
        bar = "#" * int(30 * self.done / max(1, self.total))
        sys.stderr.write(f"\r[{bar:<30}] {self.done}/{self.total}  {rate:.2f}/s  ~{left:.0f}s left  {label[:24]:<24}")
        sys.stderr.flush()
        if self.done == self.total:
            sys.stderr.write("\n")


def grade_class(assignment_name: str, submissions: Path, out: Path, *, workers: int | None = None,
                limits: Limits | None = None, course: Path | None = None, seed: int | None = None,
                resume: bool = True, progress: bool = True) -> list[Result]:
    """Grade every submission under `submissions` into `out`; see the module docstring."""
    from autograder.grading import registry  # noqa: F401 -- fill CHECKS before forking
    limits = limits or Limits()
    workers = workers or os.cpu_count() or 1
    assignment = Assignment.load(assignment_name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    run_file = out / "run.json"
    if resume and run_file.exists():
        seed = json.loads(run_file.read_text())["seed"]  # same secret cases on resume
    seed = secrets.randbelow(2**31) if seed is None else seed
    run_file.write_text(json.dumps({"assignment": assignment.name, "seed": seed}))
    pool = Pool(workers, limits)  # fork before this process does any torch work
    try:
        with tempfile.TemporaryDirectory(prefix="grade-") as scratch_name:
            scratch = Path(scratch_name)
            os.chmod(scratch, 0o711)  # children (uid nobody) may enter their own folder only
            found = collect(submissions, assignment.name, assignment.notebook, scratch)
            cases = make_cases(assignment, seed)
            payload = dumps(cases)
            hide = private_paths(course, submissions, out) + [str(scratch / "unzipped")]
            results, jobs, pending = [], [], {}
            for submission in found:
                done = previous(out, submission, resume)
                if done:
                    results.append(done)
                    continue
                prepared_result, job = prepare_job(assignment, submission, scratch, payload, hide)
                if job is None:
                    save(out, prepared_result)
                    results.append(prepared_result)
                else:
                    jobs.append(job)
                    pending[job.key] = prepared_result
            bar = Progress(len(jobs), progress and bool(jobs))
            for outcome in pool.run(jobs):
                result = pending.pop(outcome.key)
                result.cells = score(assignment, outcome, cases)
                result.score = sum(c.score for c in result.cells)
                result.cell_errors, result.isolation = outcome.cell_errors, outcome.isolation
                result.seconds = round(outcome.seconds, 2)
                if outcome.exit != "ok":
                    result.notes.append(f"the notebook's process: {outcome.exit}")
                save(out, result)
                results.append(result)
                bar.step(result.student)
    finally:
        pool.close()
    return sorted(results, key=lambda r: r.student)


def previous(out: Path, submission: Submission, resume: bool) -> Result | None:
    path = out / "results" / f"{safe_name(submission.student)}.json"
    if not resume or not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("digest") != digest(submission.path):
        return None  # the submission changed since: grade it again
    data["cells"] = [CellResult(**c) for c in data["cells"]]
    return Result(**data)


def save(out: Path, result: Result) -> None:
    path = out / "results" / f"{safe_name(result.student)}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(result), indent=1))
    temporary.replace(path)  # atomic: an interrupted batch never leaves half a result


def prepare_job(assignment: Assignment, submission: Submission, scratch: Path, payload: bytes,
                hide: list[str]) -> tuple[Result, Job | None]:
    result = Result(submission.student, assignment.name, 0.0, assignment.max_score,
                    [CellResult(c.grade_id, c.points, 0.0, "") for c in assignment.graded],
                    digest=digest(submission.path), path=str(submission.path or ""))
    if submission.note:
        result.notes.append(submission.note)
    if submission.path is None:
        return zero(result, "no notebook was submitted"), None
    try:
        data = submission.path.read_bytes()
    except OSError as error:
        return zero(result, f"the submitted file could not be read ({error.strerror})"), None
    prepared = nbmod.prepare(data, assignment.release)
    if prepared.problem:
        return zero(result, prepared.problem), None
    result.repairs = prepared.repairs
    result.notes += prepared.suspicions
    # Children run at the same time as the same user: an unguessable folder name in an
    # unlistable parent keeps one student's copy out of another's reach.
    workdir = scratch / "work" / secrets.token_hex(16)
    workdir.mkdir(parents=True)
    (scratch / "work").chmod(0o711)
    shutil.copy(submission.path, workdir / assignment.notebook)
    checks = [entry for cell in assignment.graded for entry in cell.checks]
    return result, Job(submission.student, str(workdir), prepared.code, checks, payload, hide)


def zero(result: Result, reason: str) -> Result:
    for cell in result.cells:
        cell.score, cell.reason = 0.0, reason
    result.score = 0.0
    return result


def safe_name(student: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in student) or "student"
