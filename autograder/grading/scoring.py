"""Scoring: the trusted side of grading, apart from the process that runs the batch.

Every student of a batch gets the same cases, so the torch.nn references are computed
once per check and case (in each scoring process, on first use), never per student.
Comparisons and hints, the rest of a submission's trusted cost, run in a small pool of
scoring processes that hold grader code only: they never see student code, only the
values a sandbox sent back, already decoded by the wire format. So a batch's speed grows
with --workers up to the machine's cores, instead of stopping at what one parent process
can compare.

    sandbox (student code) --values--> parent (collect, relay) --Outcome--> scorer --cells--> parent

A scorer's own failure is never a student's score: the result is kept "not final" with
the error as its reason, and a resumed batch grades it again.
"""
from __future__ import annotations

import multiprocessing
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass


@dataclass
class CellResult:
    grade_id: str
    points: float
    score: float
    reason: str = ""


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

    def score(self, outcome) -> list[CellResult]:
        """Compare the child's outputs with the references and score each test cell."""
        failures: dict[str, str] = {}
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
                failures[name] = self.first_problem(name, message.outputs)
        results = []
        for cell in self.assignment.graded:
            problems = [failures[name] for name, _ in cell.checks if failures.get(name)]
            results.append(CellResult(cell.grade_id, cell.points, 0.0 if problems else cell.points,
                                      problems[0] if problems else ""))
        return results

    def first_problem(self, name: str, outputs) -> str:
        from rnn_by_hand import CHECKS
        check, cases = CHECKS[name], self.cases[name]
        if not isinstance(outputs, list) or len(outputs) != len(cases):
            return "not graded: the notebook returned an incomplete set of results"
        for index, (case, actual) in enumerate(zip(cases, outputs)):
            if not isinstance(actual, dict):
                return "not graded: the notebook returned malformed results"
            expected = self.reference(name, index)
            try:
                problems = check.compare(case, expected, actual)
            except Exception as error:  # noqa: BLE001 -- malformed student data, not a grader bug
                problems = [f"the result could not be compared ({type(error).__name__}: {error})"]
            if problems:
                return check.failure_message(case, index + 1, len(cases), problems, safe_hint(check, case, actual))
        return ""


def safe_hint(check, case, actual: dict) -> str:
    """The check's hint, or none when the child's outputs are too malformed to name a mistake."""
    try:
        return check.hint(case, actual)
    except Exception:  # noqa: BLE001 -- malformed student data, not a grader bug
        return ""


# -- the pool of scoring processes -------------------------------------------------------

_scorer: Scorer | None = None


def _start(assignment, cases: dict) -> None:
    """A scoring process: one torch thread (its siblings and the sandboxes share the cores)."""
    import torch
    torch.set_num_threads(1)
    from rnn_by_hand.checking.registry import discover
    discover()
    global _scorer
    _scorer = Scorer(assignment, cases)


def _score(outcome) -> list[CellResult]:
    return _scorer.score(outcome)


class ScoringPool:
    """`processes` scorers; submit(outcome) -> a Future of its cells.

    With one process, or one submission, scoring stays in this process (a pool's start-up,
    about two seconds to import torch, would cost more than it saves). Scorers are spawned,
    not forked: the parent has torch's threads running, which a fork would not carry over.
    """

    def __init__(self, assignment, cases: dict, processes: int):
        self.local = Scorer(assignment, cases) if processes <= 1 else None
        self.executor = None if self.local else ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
            initargs=(assignment, cases))

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
