"""The shape every check has: make cases, run the student, run torch.nn, compare.

A check is split into four parts so that each can run in a different process:

    make_cases(hidden, seed) -> [Case]              pure data (configs + tensors)
    run_student(student, case) -> {name: value}     the only part that runs student code
    run_reference(case) -> {name: value}            builds the torch.nn module, copies weights
    compare(case, expected, actual) -> [problem]    plain sentences; [] means a match

The base class owns the case loop: a subclass lists its configurations (VISIBLE,
HIDDEN) and says how one case is drawn (make_tensors, or make_case when the
configuration itself grows); every case is drawn under its own seed, derived from the
check's name (cases.case_seed), so no two checks share one.

`Check.__call__` runs all four in-process for a notebook's test cell and raises
`CheckFailure` (an AssertionError, so nbgrader scores the cell 0) with a message
written for the student. A grader that does not trust student code runs
`run_student_guarded` in a sandboxed child and keeps the other three in the parent.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

from ..wire import round_trip
from .cases import Case, case_seed, describe_config, seeded
from .compare import ATOL, RTOL, type_name
from .credit import Credit, credit
from .forbid import forbid, forbid_functions
from .student import CheckFailure


class Check:
    """Base class; subclasses fill in the four parts and a few words of text."""

    name: str = ""          # registry key, "<assignment>/<student_name>", e.g. "01-recurrence/stacked_rnn_step"
    student_name: str = ""  # what the student wrote, e.g. "stacked_rnn_step"
    reference_name: str = ""  # what it is checked against, e.g. "torch.nn.RNN run for one step"
    kind: str = "function"  # "function" or "class"
    # torch kernels the student must not call (e.g. "rnn_tanh" behind nn.RNN)
    forbidden: tuple[str, ...] = ()
    # Python functions the student must not call, by dotted path: the answer's library
    # function (e.g. "rnn_by_hand.lm.data.batchify") and the checker's own hand-written
    # reference, which an answer could otherwise import from the installed package
    forbidden_functions: tuple[str, ...] = ()
    forbidden_reason: str = "this exercise asks you to write it yourself"
    rtol: float = RTOL
    atol: float = ATOL
    # Earlier exercises of the same notebook an answer may call (e.g. bigru_forward calls
    # gru_forward): when the answer fails and calls one that fails its own check, the verdict
    # says to fix that one first.
    builds_on: tuple[str, ...] = ()
    # The configurations of the visible cases (the notebook's test) and of the hidden ones.
    VISIBLE: list[dict[str, Any]] = []
    HIDDEN: list[dict[str, Any]] = []
    # Partial credit (credit.py): part name -> whether a case's configuration belongs to it.
    # Every part must have a visible case; empty means all or nothing.
    PARTS: dict[str, Callable[[dict], bool]] = {}

    # -- making cases --------------------------------------------------------
    def configs(self, hidden: bool, seed: int | None) -> list[dict[str, Any]]:
        """The configurations to draw cases for; a check that draws them at random overrides this."""
        return self.HIDDEN if hidden else self.VISIBLE

    def seed_of(self, hidden: bool, index: int, seed: int | None) -> int:
        return case_seed(self.name, hidden, index, seed)

    def make_cases(self, hidden: bool = False, seed: int | None = None) -> list[Case]:
        cases = []
        for index, config in enumerate(self.configs(hidden, seed)):
            case_seed_ = self.seed_of(hidden, index, seed)
            with seeded(case_seed_):
                cases.append(self.make_case(config, case_seed_))
        return cases

    def make_case(self, config: dict[str, Any], seed: int) -> Case:
        """One case, drawn under its seed (torch's global RNG is seeded with it)."""
        return Case(self.label(config), config, self.make_tensors(config))

    def make_tensors(self, config: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The case's inputs and weights, drawn from torch's (seeded) global RNG."""
        return {}

    def label(self, config: dict[str, Any]) -> str:
        return describe_config(config)

    # -- the other three parts -------------------------------------------------
    def run_student(self, student, case: Case) -> dict[str, Any]:
        raise NotImplementedError

    def run_student_guarded(self, student, case: Case) -> dict[str, Any]:
        """run_student with the forbidden calls trapped: what graders and test cells call."""
        with forbid(self.forbidden, self.forbidden_reason), \
                forbid_functions(self.forbidden_functions, self.forbidden_reason):
            return self.run_student(student, case)

    def run_reference(self, case: Case) -> dict[str, Any]:
        raise NotImplementedError

    def compare(self, case: Case, expected: dict, actual: dict) -> list[str]:
        raise NotImplementedError

    def hint(self, case: Case, actual: dict) -> str:
        """Optional: name the classic mistake that `actual` matches."""
        return ""

    def error_hint(self, case: Case, message: str) -> str:
        """Optional: name the classic mistake behind an error the answer raised on `case`
        (`message` is what the check says about it), where torch's own words would not."""
        return ""

    # -- verdict text ---------------------------------------------------------
    def mismatch_text(self) -> str:
        """What a failing case says the answer did, after its name."""
        return f"does not match {self.reference_name}"

    def ok_message(self, count: int) -> str:
        return (f"OK: {self.student_name} matches {self.reference_name} on {count} "
                f"cases (float64, rtol={self.rtol:g}, atol={self.atol:g}).")

    def failure_message(self, case: Case, index: int, total: int, problems: list[str],
                        hint: str) -> str:
        lines = [f"{self.student_name} {self.mismatch_text()} on case {index} of {total} ({case.label}):"]
        lines += [f"  - {p}" for p in problems]
        if hint:
            lines.append(f"Hint: {hint}")
        return "\n".join(lines)

    def earlier_failure(self, student) -> str:
        """A hint naming the first earlier exercise that `student` calls and that fails its
        own visible cases: there the mistake is, whatever this check's cases show."""
        from .registry import CHECKS  # the chapters import this module: look them up late
        assignment = self.name.split("/")[0]
        for name, (namespace, called) in ((n, calls(student, n)) for n in self.builds_on):
            earlier = CHECKS.get(f"{assignment}/{name}")
            if not called or earlier is None or namespace.get(name) is None:
                continue
            try:
                earlier(namespace[name], quiet=True)
            except CheckFailure:
                return (f"{self.student_name} calls your {name}, which fails its own check: "
                        f"fix {name} first (run its test cell)")
            except Exception:  # noqa: BLE001 -- the earlier check's own trouble: no hint
                continue
        return ""

    # -- running it in-process, for a notebook's test cell ---------------
    def validate_student(self, student) -> None:
        expected = "a class" if self.kind == "class" else "a function"
        if student is None or (self.kind == "class" and not inspect.isclass(student)) \
                or (self.kind == "function" and not callable(student)):
            raise CheckFailure(f"the check for {self.student_name} expects {expected} "
                               f"(pass {self.student_name} itself), got {type_name(student)}")

    def __call__(self, student, *, hidden: bool = False, seed: int | None = None,
                 quiet: bool = False) -> None:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        self.validate_student(student)
        cases = self.make_cases(hidden=hidden, seed=seed)
        first, passed = None, []
        for index, case in enumerate(cases, start=1):
            failure = self.judge(student, case, index, len(cases), first is None)
            passed.append(failure is None)
            first = first or failure
            if failure is not None and not self.PARTS:   # all or nothing: the first failure decides
                break
        if first is not None:
            share = self.credit([case.config for case in cases[:len(passed)]], passed).text()
            raise CheckFailure(f"{first}\n{share}" if share else first) from None
        if not quiet:
            print(self.ok_message(len(cases)))
        # Returns None on purpose: nbgrader reads a test cell's displayed value as partial credit.

    def judge(self, student, case: Case, index: int, total: int, explain: bool) -> str | None:
        """None if the answer passes `case`, else what the test cell says (with a hint
        when `explain`: only the first failure is shown, so only it needs one)."""
        try:
            # The same round trip as the class grader's, so both see the same values.
            actual = round_trip(self.run_student_guarded(student, case))
        except CheckFailure as failure:  # the answer raised, or returned the wrong kind
            hint = explain and (self.earlier_failure(student) or self.error_hint(case, str(failure)))
            return f"{failure}\nHint: {hint}" if hint else str(failure)
        problems = self.compare(case, self.run_reference(case), actual)
        if not problems:
            return None
        hint = explain and (self.earlier_failure(student) or self.hint(case, actual))
        return self.failure_message(case, index, total, problems, hint or "")

    def credit(self, configs: list[dict], passed: list[bool]) -> Credit:
        return credit(self.PARTS, configs, passed)


class OwnMessages:
    """Mixin for checks whose verdict is not a float64 comparison: their own words."""

    ok_text = ""      # printed after "OK: <student_name> "
    failure_text = ""  # "<student_name> <failure_text> on case i of n (...)"

    def mismatch_text(self) -> str:
        return self.failure_text

    def ok_message(self, count: int) -> str:
        return f"OK: {self.student_name} {self.ok_text} on {count} cases."


def calls(student, name: str) -> tuple[dict, bool]:
    """(the globals `student` runs in, whether its code names `name`): a function, or the
    methods of a class, as written in the notebook."""
    functions = [student] if inspect.isfunction(student) else \
        [f for f in vars(student).values() if inspect.isfunction(f)] if inspect.isclass(student) else []
    namespace = functions[0].__globals__ if functions else {}
    return namespace, any(names(f.__code__, name) for f in functions)


def names(code, name: str) -> bool:
    """Whether `code` or a code object nested in it (a comprehension, an inner function) names `name`."""
    return name in code.co_names or any(names(const, name) for const in code.co_consts
                                        if inspect.iscode(const))
