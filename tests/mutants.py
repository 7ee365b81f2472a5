"""Wrong answers made from the solutions' own source, and the one test every chapter runs on them.

A mutant is one plausible student mistake away from the reference answer: (check, answer cell,
source text, replacement, words the feedback must contain, or None). A chapter's tests list theirs and
call mutant_test(NOTEBOOK, MUTANTS) once.
"""
from __future__ import annotations

import functools
import json
import types
from pathlib import Path

import pytest

from conftest import REPO

def untrapped(function):
    """A copy of `function` that a check's forbid_functions does not reach.

    Checks swap the code of their own reference helpers while an answer runs; a test
    that builds a wrong answer out of such a helper calls this copy instead.
    """
    copy = types.FunctionType(function.__code__, function.__globals__, function.__name__,
                              function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


def graded(cell) -> bool:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade", False)


def notebook_code(path: Path) -> dict[str, str]:
    """The source of every code cell that is not a test, keyed by grade_id (or index)."""
    cells = json.loads(path.read_text())["cells"]
    return {c["metadata"].get("nbgrader", {}).get("grade_id", f"cell{i}"): "".join(c["source"])
            for i, c in enumerate(cells) if c["cell_type"] == "code" and not graded(c)}


def student_namespace(path: Path, mutation: tuple[str, str, str] | None = None) -> dict:
    """Execute a notebook's answer cells as a submission would, with one edit applied.

    `mutation` is (grade_id, old, new); `old` must occur exactly once, so that a
    mutant can never silently become the unmutated solution. The ungraded cells
    that start with "# Try it" are demonstrations for the student and are not run.
    """
    sources = notebook_code(path)
    if mutation:
        grade_id, old, new = mutation
        assert sources[grade_id].count(old) == 1, f"mutation text not found once in {grade_id}: {old!r}"
        sources[grade_id] = sources[grade_id].replace(old, new)
    namespace: dict = {}
    for key, source in sources.items():
        if not source.lstrip().startswith("# Try it"):
            exec(compile(source, f"<{path.stem}:{key}>", "exec"), namespace)
    return namespace


def rejections(path: Path, check, mutation: tuple[str, str, str]) -> list[str]:
    """The feedback `check` gives a mutant of the notebook, on the visible and on the hidden
    cases; both must reject it (a check that accepts a mutant fails the test here)."""
    from rnn_by_hand import CheckFailure
    student = student_namespace(path, mutation)[check.student_name]
    messages = []
    for hidden in (False, True):
        with pytest.raises(CheckFailure) as failure:
            check(student, hidden=hidden, quiet=True)
        messages.append(str(failure.value))
    return messages


def mutant_test(notebook: Path, mutants: dict):
    """The parametrised test that every mutant is rejected, visibly and hidden, with its words."""
    @pytest.mark.parametrize("name", sorted(mutants))
    def test_mistake_is_rejected_with_specific_feedback(name):
        check, cell, old, new, words = mutants[name]
        messages = rejections(notebook, check, (cell, old, new))  # both reject it, or this fails
        if words is not None:  # None: rejected, in whatever words
            assert any(words in message for message in messages), messages
    return test_mistake_is_rejected_with_specific_feedback


def failing_when(answer, fails):
    """The answer, except that it raises on the calls `fails` picks: an answer missing one part."""
    def mutant(*args):
        if fails(*args):
            raise ValueError("this case is not done yet")
        return answer(*args)
    return mutant


def assert_partial_credit(check, wrong, share: str, missing: tuple[str, ...], sets=(False, True)) -> None:
    """`wrong` misses exactly the parts `missing`, on the visible and on the hidden cases (those of
    `sets`, for a part that the hidden cases do not test): the message announces the share
    ("3 of 4") and what is still to do, and credit() over the cases' own verdicts (what the class
    grader scores) misses the same parts."""
    from rnn_by_hand import CheckFailure
    for hidden in sets:
        with pytest.raises(CheckFailure) as failure:
            check(wrong, hidden=hidden, quiet=True)
        message = str(failure.value)
        assert f"Partial credit: {share} parts pass" in message, message
        assert message.endswith(f"still to do: {', '.join(missing)}."), message
        cases = check.make_cases(hidden=hidden)
        passed = [check.judge(wrong, case, 1, 1, False) is None for case in cases]
        assert check.credit([case.config for case in cases], passed).missed == tuple(missing)


def partial_credit_test(notebook: Path, partial: dict):
    """The parametrised test that each mutant in `partial` (check, (cell, old, new), share,
    missing parts) earns the other parts."""
    @pytest.mark.parametrize("name", sorted(partial))
    def test_an_answer_failing_one_part_earns_the_others(name):
        check, mutation, share, missing = partial[name]
        assert_partial_credit(check, student_namespace(notebook, mutation)[check.student_name], share, missing)
    return test_an_answer_failing_one_part_earns_the_others


def notebook(name: str, folder: str = "solutions"):
    """The one notebook of a check's assignment ('01-recurrence/JordanRNN' -> solutions/01-recurrence/*.ipynb)."""
    found = sorted((REPO / folder / name.split("/")[0]).glob("*.ipynb"))
    assert len(found) == 1, f"expected one notebook for {name} in {folder}/, found {found}"
    return found[0]


@functools.cache
def namespace(name: str, folder: str = "solutions") -> dict:
    return student_namespace(notebook(name, folder))


def answer(name: str, folder: str = "solutions"):
    """The function or class that the notebook in `folder` defines for the check `name`."""
    from rnn_by_hand import CHECKS
    return namespace(name, folder)[CHECKS[name].student_name]
