"""check_all: the last cell of every exercise notebook, a summary a student reads at a glance.

    from rnn_by_hand.checks import check_all
    check_all("01-recurrence", globals())

prints one line per exercise of the assignment, in the order the notebook defines them,
and the next one to work on:

    ok    stacked_rnn_step
    FAIL  rnn_forward_padded  is not implemented yet: it raised NotImplementedError
    FAIL  JordanRNN           [1 of 2 parts] does not match the reference Jordan network on case 3 (...)
    1 of 3 pass; next: rnn_forward_padded

Each exercise runs its visible cases only (the grade also uses hidden ones, which test
the same features). The summary is not graded, and the class grader skips its cell
(rnn_by_hand.setup_cell writes it into every notebook, as the last cell).
"""
from __future__ import annotations

import re

from .check import Check
from .student import SHORT_LINE, CheckFailure

def checks_of(assignment: str, checks: dict[str, Check], namespace: dict) -> list[Check]:
    """The assignment's checks, in the order the notebook defined the students' answers."""
    mine = [check for name, check in checks.items() if name.startswith(f"{assignment}/")]
    if not mine:
        known = sorted({name.split("/")[0] for name in checks})
        raise ValueError(f"no exercises are called {assignment!r}; the assignments are {', '.join(known)}")
    order = {name: index for index, name in enumerate(namespace)}
    return sorted(mine, key=lambda check: order.get(check.student_name, len(order)))


def verdict(check: Check, namespace: dict) -> str:
    """'' when the answer passes the visible cases, otherwise the first line of why not."""
    answer = namespace.get(check.student_name)
    if answer is None:
        return "not defined: run its cell first"
    try:
        check(answer, quiet=True)
    except CheckFailure as failure:
        # its first sentence, without the answer's name, which the line already shows,
        # and the partial credit the visible cases would earn
        why = str(failure).splitlines()[0].split(". ")[0].removeprefix(f"{check.student_name} ")
        share = re.search(r"Partial credit: (\d+ of \d+) parts pass", str(failure))
        return f"[{share.group(1)} parts] {why}" if share else why
    except Exception as error:  # noqa: BLE001 -- the checker's own failure, never the student's
        return f"the check itself failed ({type(error).__name__}); run its test cell"
    return ""


def summary_lines(assignment: str, results: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in results)
    lines = []
    for name, why in results:
        line = f"{'ok' if not why else 'FAIL':5s} {name:{width}s}  {why}".rstrip()
        lines.append(line if len(line) <= SHORT_LINE else line[:SHORT_LINE - 3] + "...")
    failing = [name for name, why in results if why]
    passed = len(results) - len(failing)
    lines.append(f"{passed} of {len(results)} pass" + (f"; next: {failing[0]}" if failing
                                                        else f": every exercise of {assignment} is done"))
    return lines


def check_all(assignment: str, namespace: dict) -> None:
    """Run every exercise of `assignment` found in `namespace` (pass globals()) on its
    visible cases and print one line each, then how many pass and which is next."""
    from .registry import discover  # the chapters import this package: look them up late
    checks = checks_of(assignment, discover(), namespace)
    results = [(check.student_name, verdict(check, namespace)) for check in checks]
    print("\n".join(summary_lines(assignment, results)))
