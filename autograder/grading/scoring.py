"""Scoring: the trusted side of grading, apart from the process that runs the batch.

Every student of a batch gets the same cases, so the torch.nn references are computed
once per batch, per check and case, before any submission is scored, never per student.
Comparisons and hints, the rest of a submission's trusted cost, run in a small pool of
scoring processes that hold grader code only: they never see student code, only the
messages a sandbox sent back, which they decode with the wire format (so decoding, too,
is off the grading process). So a batch's speed grows
with --workers up to the machine's cores, instead of stopping at what one parent process
can compare. The scorers are forked once the references exist, so they start with them
(and with torch imported) at no cost.

    sandbox (student code) --messages--> parent (count, relay) --Outcome--> scorer --Scored--> parent

A scorer's own failure is never a student's score: the result is kept "not final" with
the error as its reason, and a resumed batch grades it again.
"""
from __future__ import annotations

import multiprocessing
import os
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from ..checking.credit import CASE_ERROR


@dataclass
class CellResult:
    grade_id: str
    points: float
    score: float
    reason: str = ""


@dataclass
class Scored:
    """A scorer's answer: the cells' scores and what it decoded of the submission's messages."""
    cells: list[CellResult]
    cell_errors: list[str]
    exit: str
    problem: str


class Scorer:
    """Scores one assignment's outcomes against references it computes once per case."""

    def __init__(self, assignment, cases: dict):
        self.assignment, self.cases = assignment, cases
        self.references: dict[str, list[dict]] = {}

    def reference(self, name: str, index: int) -> dict:
        if name not in self.references:
            from rnn_by_hand import CHECKS
            check = CHECKS[name]
            self.references[name] = [check.run_reference(case) for case in self.cases[name]]
        return self.references[name][index]

    def compute_references(self) -> None:
        for name in self.cases:
            self.reference(name, 0)

    def score(self, outcome) -> Scored:
        """Decode what the child sent, compare it with the references, score each test cell."""
        outcome.decode()
        failures: dict[str, str] = {}
        shares: dict[str, float] = {}      # each check's share of its points (credit.py)
        for name in self.cases:
            message = outcome.results.get(name)
            if outcome.grader_error:
                failures[name] = outcome.grader_error
            elif outcome.problem:
                failures[name] = f"not graded: {outcome.problem}"
            elif message is None:
                failures[name] = (f"not graded: the notebook's process ended early ({outcome.exit})"
                                  if outcome.exit != "ok" else "not graded: the notebook's process ended early")
            elif message.error is not None:
                failures[name] = message.error
            else:
                failures[name], shares[name] = self.judge(name, message.outputs)
        results = []
        for cell in self.assignment.graded:
            names = [name for name, _ in cell.checks]
            problems = [failures[name] for name in names if failures.get(name)]
            share = sum(shares.get(name, 0.0) for name in names) / len(names) if names else float(not problems)
            results.append(CellResult(cell.grade_id, cell.points, round(cell.points * share, 2),
                                      problems[0] if problems else ""))
        return Scored(results, outcome.cell_errors, outcome.exit, outcome.problem)

    def judge(self, name: str, outputs) -> tuple[str, float]:
        """(the first failing case's message, with the partial credit; the share of the points)."""
        from rnn_by_hand import CHECKS
        check, cases = CHECKS[name], self.cases[name]
        if not isinstance(outputs, list) or len(outputs) != len(cases):
            return "not graded: the notebook returned an incomplete set of results", 0.0
        first, passed = "", []
        for index, (case, actual) in enumerate(zip(cases, outputs)):
            if not isinstance(actual, dict):
                return "not graded: the notebook returned malformed results", 0.0
            problems = self.problems(check, case, self.reference(name, index), actual)
            passed.append(not problems)
            if problems and not first:
                first = (actual[CASE_ERROR] if set(actual) == {CASE_ERROR} else
                         check.failure_message(case, index + 1, len(cases), problems, safe_hint(check, case, actual)))
        if not first:
            return "", 1.0
        share = check.credit([case.config for case in cases], passed)
        return (f"{first}\n{share.text()}" if share.text() else first), share.fraction

    @staticmethod
    def problems(check, case, expected: dict, actual: dict) -> list[str]:
        if set(actual) == {CASE_ERROR}:       # the answer raised on this case
            return [str(actual[CASE_ERROR])]
        try:
            return check.compare(case, expected, actual)
        except Exception as error:  # noqa: BLE001 -- malformed student data, not a grader bug
            return [f"the result could not be compared ({type(error).__name__}: {error})"]


def safe_hint(check, case, actual: dict) -> str:
    """The check's hint, or none when the child's outputs are too malformed to name a mistake."""
    try:
        return check.hint(case, actual)
    except Exception:  # noqa: BLE001 -- malformed student data, not a grader bug
        return ""


# -- the pool of scoring processes -------------------------------------------------------

_scorer: Scorer | None = None  # what a forked scoring process inherits


def _start(inherited: list[int]) -> None:
    """A scoring process: without the grader's pipes to the sandboxes (a worker sees its input
    end only when every copy of it is closed); one torch thread (its siblings and the sandboxes
    share the cores)."""
    for fd in inherited:
        try:
            os.close(fd)
        except OSError:
            pass
    import torch
    torch.set_num_threads(1)


def _started() -> int:
    return os.getpid()


def _score(outcome) -> Scored:
    return _scorer.score(outcome)


class ScoringPool:
    """`processes` scorers; submit(outcome) -> a Future of its Scored.

    The references are computed here, once, before the scorers exist; the scorers are then
    forked from this process, so they inherit them, and close `inherited` (the grader's
    ends of the sandboxes' pipes). With one process, scoring stays in this process.
    Forking a process that has used torch is safe on the CPU: torch resets its thread pool
    in the child (its DataLoader forks the same way).
    """

    def __init__(self, assignment, cases: dict, processes: int, inherited: list[int] = ()):
        global _scorer
        self.local = Scorer(assignment, cases)
        self.local.compute_references()
        self.executor = None
        if processes > 1:
            _scorer = self.local
            self.executor = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"),
                                                initializer=_start, initargs=(list(inherited),))
            # Fork every scorer now: the pool would otherwise fork them as work arrives.
            for started in [self.executor.submit(_started) for _ in range(processes)]:
                started.result()

    def submit(self, outcome) -> Future:
        if self.executor:
            return self.executor.submit(_score, outcome)
        future: Future = Future()
        try:
            future.set_result(self.local.score(outcome))
        except Exception as error:  # noqa: BLE001 -- our own failure: reported, never a score
            future.set_exception(error)
        return future

    def close(self) -> None:
        if self.executor:
            self.executor.shutdown(wait=True, cancel_futures=True)


def grader_failure(error: BaseException) -> str:
    """A scorer's own failure, in one line, for a result that is not final."""
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    at = f" at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else ""
    return f"not graded: grader error (scoring failed: {type(error).__name__}: {str(error)[:200]}{at})"
