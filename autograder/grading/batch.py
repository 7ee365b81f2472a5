"""Grade a whole class: pre-flight, sandboxed runs in parallel, trusted scoring, results.

The authoritative grade of a test cell is its points when every check the cell
calls passes on the visible cases, the hidden cases and a batch of cases drawn
from a secret seed; otherwise 0, with the first problem as the reason.

This process collects the submissions, feeds the sandboxes and relays what they send
to the scoring processes (scoring.py), which compare it with references computed
once per batch; a shard of a larger class (shards.py) grades a stable share of it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rnn_by_hand.course import Course
from rnn_by_hand.grading import notebook as nbmod
from rnn_by_hand.grading.collect import Submission, collect, file_name
from rnn_by_hand.grading.errors import GradingError
from rnn_by_hand.grading.sandbox import Isolation, Job, Limits, Outcome, Pool, find_isolation
from rnn_by_hand.grading.scoring import CellResult, Scored, ScoringPool, grader_failure


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
    name: str = ""  # the student's display name, where the LMS gives one
    late: bool = False  # marked late by the LMS
    submitted_at: str = ""  # ISO 8601 UTC, where known (nbgrader's collect, Blackboard)
    final: bool = True  # False: the grader failed, or the results broke the channel; graded again on resume


@dataclass
class Assignment:
    name: str
    notebook: str
    source: dict
    release: dict
    graded: list[nbmod.GradedCell]

    @classmethod
    def load(cls, name: str, course: Course | Path | str = "."):
        """Assignment `name` of the course folder `course` (its source and its release)."""
        course = course if isinstance(course, Course) else Course.at(course)
        folder = course.solutions / name
        if not folder.is_dir():
            raise GradingError(f"unknown assignment {name!r} in {course.solutions}; "
                               f"known: {', '.join(course.assignments())}")
        notebooks = sorted(folder.glob("*.ipynb"))
        if len(notebooks) != 1:
            raise GradingError(f"{folder} should hold exactly one notebook, found {len(notebooks)}")
        released = course.exercises / name / notebooks[0].name
        if not released.exists():
            raise GradingError(f"{released} does not exist: run `rnn-by-hand release {name}` first")
        source = nbmod.load(notebooks[0])
        release = nbmod.load(released)
        return cls(name, notebooks[0].name, source, release, nbmod.graded_cells(source))

    @property
    def max_score(self) -> float:
        return sum(cell.points for cell in self.graded)


def make_cases(assignment: Assignment, seed: int) -> dict:
    """Visible, hidden and secret-seed cases for every check the assignment uses."""
    from rnn_by_hand import CHECKS
    names = {name for cell in assignment.graded for name, _ in cell.checks}
    return {name: CHECKS[name].make_cases(hidden=False) + CHECKS[name].make_cases(hidden=True)
            + CHECKS[name].make_cases(hidden=True, seed=seed) for name in sorted(names)}


def digest(path: Path | None) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path else "none"


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


def grade_class(assignment_name: str, submissions: Path, out: Path, *, course: Course | Path | str = ".",
                workers: int | None = None,
                limits: Limits | None = None, seed: int | None = None,
                resume: bool = True, progress: bool = True, unsandboxed: bool = False,
                plan=None, shard: tuple[int, int] | None = None) -> list[Result]:
    """Grade every submission under `submissions` into `out`; see the module docstring.

    plan (shards.Plan) fixes the seed and the release every shard grades against; shard
    (K, N), which needs a plan, grades only the students of shard K of N. Raises
    GradingError when the batch cannot run (no sandbox, a worker that cannot start);
    a student's results are never an exception.
    """
    limits = limits or Limits()
    workers = workers or os.cpu_count() or 1
    assignment = Assignment.load(assignment_name, course)
    if shard and plan is None:
        raise GradingError("a shard is graded under a plan: make one with `rnn-by-hand plan` "
                           "and give it to every shard")
    if plan is not None:
        from rnn_by_hand.grading.shards import check_plan
        check_plan(plan, course if isinstance(course, Course) else Course.at(course), assignment.name)
        seed = plan.seed
    isolation = find_isolation(unsandboxed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    run_file = out / "run.json"
    last_run = json.loads(run_file.read_text()) if resume and run_file.exists() else {}
    if last_run.get("assignment") == assignment.name and seed in (None, last_run.get("seed")):
        seed = last_run["seed"]  # resuming this batch: the same secret cases
    elif last_run:  # another assignment's or another seed's results: a new batch
        shutil.rmtree(out / "results", ignore_errors=True)
        (out / "results").mkdir()
    seed = secrets.randbelow(2**31) if seed is None else seed
    run_file.write_text(json.dumps({"assignment": assignment.name, "seed": seed,
                                    "isolation": isolation.description}))
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch_name:
        scratch = Path(scratch_name)  # the grader's alone: no sandbox ever sees it
        found = collect(submissions, assignment.name, assignment.notebook, scratch)
        if shard:
            from rnn_by_hand.grading.shards import shard_of
            everyone = [submission.student for submission in found]
            found = [s for s in found if shard_of(s.student, shard[1]) == shard[0]]
        results = [done for done in (previous(out, s, resume) for s in found) if done]
        todo = [s for s in found if s.student not in {r.student for r in results}]
        # The sandboxes start first: their Pythons import torch while this process loads the
        # checks, makes the cases and references and prepares the notebooks.
        pool = Pool(min(workers, len(todo)), limits, isolation, preloads(assignment)) if todo else None
        try:
            results += grade_todo(todo, assignment, seed, out, pool, progress)
        finally:
            if pool:
                pool.close()
    if shard:
        from rnn_by_hand.grading.shards import write_manifest
        write_manifest(out, plan, shard, everyone, [r.student for r in results])
    return sorted(results, key=lambda r: r.student)


def grade_todo(todo: list[Submission], assignment: Assignment, seed: int, out: Path, pool: Pool | None,
               progress: bool) -> list[Result]:
    """Prepare and grade the submissions not graded yet, in `pool`'s sandboxes."""
    from rnn_by_hand.timing import one_thread
    # This process's torch work (references, comparisons) is many small operations, done
    # while the sandboxes use the cores: more threads only spin against them (on 2 cores,
    # chapter 8's references took 3.75 s with torch's default threads beside one starting
    # sandbox, 0.34 s with one thread).
    with one_thread():
        return prepare_and_run(todo, assignment, seed, out, pool, progress)


def prepare_and_run(todo: list[Submission], assignment: Assignment, seed: int, out: Path, pool: Pool | None,
                    progress: bool) -> list[Result]:
    from rnn_by_hand.checking.registry import discover
    discover()  # every chapter's checks
    cases = make_cases(assignment, seed)
    results, jobs, pending = [], [], {}
    for submission in todo:
        prepared_result, job = prepare_job(assignment, submission, pool.isolation)
        if job is None:
            save(out, prepared_result)
            results.append(prepared_result)
        else:
            jobs.append(job)
            pending[job.key] = prepared_result
    if jobs:
        results += run_jobs(jobs, pending, assignment, cases, out, pool, Progress(len(jobs), progress))
    return results


def preloads(assignment: Assignment) -> tuple[str, ...]:
    """Modules the assignment's code will import on first use, loaded once per worker instead
    of once per submission (each submission is a fork of the worker, so what it imports
    dies with it): torch._dynamo (about 2 s) comes with the first optimizer step, pyplot
    (about 0.9 s) with plotting. Where the assignment does neither, loading them would only
    slow every worker's start; a student who plots anyway pays the import in their own run."""
    code = "".join("".join(cell["source"]) for cell in assignment.source["cells"] if cell["cell_type"] == "code")
    modules = ("torch._dynamo",) if re.search(r"\boptim\b", code) else ()
    return modules + (("matplotlib.pyplot",) if re.search(r"\b(matplotlib|plt)\b", code) else ())


def run_jobs(jobs: list[Job], pending: dict[str, Result], assignment: Assignment, cases: dict, out: Path,
             pool: Pool, bar: Progress) -> list[Result]:
    """Sandboxes run the jobs; each outcome goes to a scoring process as soon as it arrives."""
    results, scoring = [], {}
    # The references, once; then one scorer per sandbox, forked without the sandboxes' pipes.
    scorers = ScoringPool(assignment, cases, len(pool.workers), pool.descriptors())

    def collect_scored(block: bool) -> None:
        for future in [f for f in scoring if block or f.done()]:
            result, outcome = scoring.pop(future)
            try:
                scored = future.result()
            except Exception as error:  # noqa: BLE001 -- the grader's failure, never a score
                outcome.grader_error = grader_failure(error)
                scored = Scored([CellResult(c.grade_id, c.points, 0.0, outcome.grader_error)
                                 for c in assignment.graded], [], outcome.exit, outcome.problem)
            result = finish(result, outcome, scored)
            save(out, result)
            results.append(result)
            bar.step(result.student)
    try:
        pool.start(cases)
        for outcome in pool.run(jobs):
            scoring[scorers.submit(outcome)] = (pending.pop(outcome.key), outcome)
            collect_scored(block=False)
        collect_scored(block=True)
    finally:
        scorers.close()
    return results


def grade_one(notebook: Path, assignment_name: str, *, course: Course | Path | str = ".",
              limits: Limits | None = None, seed: int | None = None, unsandboxed: bool = False) -> Result:
    """Grade one submitted notebook exactly as grade_class grades each of a class: for
    platforms that call a grader once per submission (Gradescope, a web service)."""
    assignment = Assignment.load(assignment_name, course)
    with tempfile.TemporaryDirectory(prefix="grade-one-") as tmp:
        folder = Path(tmp) / "in" / "submission"
        folder.mkdir(parents=True)
        if Path(notebook).is_file():
            shutil.copy(notebook, folder / assignment.notebook)
        result, = grade_class(assignment.name, folder.parent, Path(tmp) / "out", course=course, workers=1,
                              limits=limits, seed=seed, resume=False, progress=False, unsandboxed=unsandboxed)
    result.path = str(notebook)
    return result


def finish(result: Result, outcome: Outcome, scored: Scored) -> Result:
    """The result, from how the job ended (`outcome`) and what its scorer made of it."""
    result.cells = scored.cells
    result.score = sum(c.score for c in result.cells)
    result.cell_errors = scored.cell_errors
    result.seconds = round(outcome.seconds, 2)
    result.final = not (scored.problem or outcome.grader_error)
    if scored.exit != "ok":
        result.notes.append(f"the notebook's process: {scored.exit}")
    if scored.problem:
        result.notes.append(f"suspected tampering: {scored.problem}")
    return result


def previous(out: Path, submission: Submission, resume: bool) -> Result | None:
    path = result_path(out, submission.student)
    if not resume or not path.exists():
        return None
    result = load_result(path)
    if result.digest != digest(submission.path) or not result.final:
        return None  # changed since, or not graded for good last time: grade it again
    return result


def load_result(path: Path) -> Result:
    """A result that save() wrote (results/<student>.json)."""
    data = json.loads(path.read_text())
    data["cells"] = [CellResult(**c) for c in data["cells"]]
    return Result(**data)


def result_path(out: Path, student: str) -> Path:
    return out / "results" / f"{safe_name(student)}.json"


def save(out: Path, result: Result) -> None:
    path = result_path(out, result.student)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(result), indent=1))
    temporary.replace(path)  # atomic: an interrupted batch never leaves half a result


def prepare_job(assignment: Assignment, submission: Submission,
                isolation: Isolation) -> tuple[Result, Job | None]:
    result = Result(submission.student, assignment.name, 0.0, assignment.max_score,
                    [CellResult(c.grade_id, c.points, 0.0, "") for c in assignment.graded],
                    digest=digest(submission.path), path=str(submission.path or ""),
                    isolation=[isolation.description], name=submission.name, late=submission.late,
                    submitted_at=submission.submitted_at)
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
    checks = [entry for cell in assignment.graded for entry in cell.checks]
    notebook = json.dumps({"cells": prepared.cells, "metadata": {}, "nbformat": 4,
                           "nbformat_minor": 5}).encode()
    return result, Job(submission.student, assignment.notebook, notebook, prepared.code, checks)


def zero(result: Result, reason: str) -> Result:
    for cell in result.cells:
        cell.score, cell.reason = 0.0, reason
    result.score = 0.0
    return result


safe_name = file_name  # the one mapping from a student id to a file name (collect.file_name)
