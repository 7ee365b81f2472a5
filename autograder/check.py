"""The shape every check has: make cases, run the student, run torch.nn, compare.

A check is split into four parts so that each can run in a different process:

    make_cases(hidden, seed) -> [Case]              pure data (configs + tensors)
    run_student(student, case) -> {name: value}     the only part that runs student code
    run_reference(case) -> {name: value}            builds the torch.nn module, copies weights
    compare(case, expected, actual) -> [problem]    plain sentences; [] means a match

`Check.__call__` runs all four in-process for a notebook's test cell and raises
`CheckFailure` (an AssertionError, so nbgrader scores the cell 0) with a message
written for the student. A grader that does not trust student code can run
`run_student` in a sandboxed child and keep the other three in the parent.
"""
from __future__ import annotations

import importlib
import inspect
import os
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .compare import ATOL, RTOL, shape_str, type_name
from .wire import round_trip

CHECKS: dict[str, "Check"] = {}
# Frames in these folders are the checker's or torch's, never the student's.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep


class CheckFailure(AssertionError):
    """A student's answer is wrong; the message says how."""


@dataclass
class Case:
    """One configuration with its inputs. Everything in it is picklable."""
    label: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


@contextmanager
def seeded(seed: int):
    """Fork the global RNG so that making cases never disturbs the student's seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def describe_config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.items())


def student_error(what: str, error: BaseException) -> CheckFailure:
    """Turn an exception raised by student code into a message about that code only."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not os.path.abspath(f.filename).startswith((PACKAGE_DIR, TORCH_DIR))]
    where = ""
    if frames:
        last = frames[-1]
        where = f"\n  at line {last.lineno} of {last.name}" + (f": {last.line[:MAX_QUOTED]}" if last.line else "")
    if isinstance(error, ForbiddenCall):
        return CheckFailure(f"{what} is not written by hand: {error}")
    if isinstance(error, NotImplementedError):
        return CheckFailure(f"{what} is not implemented yet: it raised NotImplementedError. "
                            "Replace the `raise NotImplementedError()` with your code.")
    return CheckFailure(f"{what} raised {type(error).__name__}: {first_line(error)}{where}")


MAX_QUOTED = 300


def first_line(error: BaseException) -> str:
    """The first line of a student's exception message, bounded in length.

    Feedback is released to the student: quoting the whole text would hand back
    whatever the code put in it (a dump of its environment, a flood of output).
    """
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 -- a student's __str__ may raise
        text = ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= MAX_QUOTED else line[:MAX_QUOTED] + " [...]"


class ForbiddenCall(Exception):
    """Student code called the torch.nn kernel it was asked to write by hand."""


@contextmanager
def forbid(names: tuple[str, ...], reason: str):
    """While student code runs, make torch's fused kernels `names` raise ForbiddenCall.

    nn.RNN, nn.RNNCell and friends reach these through torch._VF (they are also
    exported as torch.rnn_tanh etc.), so subclassing or wrapping the module does
    not hide them. This catches "from scratch" answers that call the module; it is
    not a defence against code written to evade it (torch._C._VariableFunctions
    is immutable), which is what out-of-process grading with hidden cases is for.
    """
    import torch._VF as VF  # torch's own spelling
    owners = [VF, torch]
    saved = []

    def trap(name):
        def trapped(*args, **kwargs):
            raise ForbiddenCall(f"it calls torch's built-in {name} ({reason})")
        return trapped
    try:
        for owner in owners:
            for name in names:
                if hasattr(owner, name):
                    saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
                    setattr(owner, name, trap(name))
        yield
    finally:
        for owner, name, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


_MISSING = object()


def resolve(dotted: str) -> Callable:
    """The object a dotted path such as "rnn_by_hand.lm.data.batchify" names."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            target = getattr(target, part)
        return target
    raise ImportError(f"cannot resolve {dotted!r}")


# id(trap code) -> (trap code, message); the code is kept so that its id stays unique.
_TRAP_MESSAGES: dict[int, tuple[Any, str]] = {}


def _trap_code(function: Callable):
    """A code object that raises ForbiddenCall, fit to replace `function.__code__`.

    It runs with the function's globals, so it imports what it needs; and it has the
    function's free variables (a method that calls super() has `__class__`), because
    Python only swaps code with the same closure.
    """
    free = function.__code__.co_freevars
    source = ("def factory():\n" + "".join(f"    {name} = None\n" for name in free)
              + "    def trapped(*args, **kwargs):\n"
              + (f"        {', '.join(free)}\n" if free else "")
              + "        import sys as frames\n"
              + "        from rnn_by_hand.check import _TRAP_MESSAGES, ForbiddenCall\n"
              + "        raise ForbiddenCall(_TRAP_MESSAGES[id(frames._getframe().f_code)][1])\n"
              + "    return trapped\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<forbidden>", "exec"), namespace)  # our own fixed text, never student code
    code = namespace["factory"]().__code__
    assert code.co_freevars == free, (code.co_freevars, free)
    return code.replace(co_name=function.__name__, co_qualname=function.__qualname__)


@contextmanager
def forbid_functions(paths: tuple[str, ...], reason: str):
    """While student code runs, make the Python functions at `paths` raise ForbiddenCall.

    The function's code itself is swapped, not the attribute that names it, so an
    answer that imported the function before the check (`from rnn_by_hand.lm.data import
    batchify`), an alias, a subclass that inherits a forbidden method, or a wrapper
    such as torch's `_no_grad` all reach the trap.
    """
    saved = []
    try:
        for path in paths:
            function = inspect.unwrap(resolve(path))
            if any(function is done for done, _ in saved):
                continue
            trap = _trap_code(function)
            _TRAP_MESSAGES[id(trap)] = (trap, f"it calls {path} ({reason})")
            saved.append((function, function.__code__))
            function.__code__ = trap
        yield
    finally:
        for function, code in reversed(saved):
            _TRAP_MESSAGES.pop(id(function.__code__), None)
            function.__code__ = code


def call_student(what: str, fn: Callable, *args, **kwargs):
    """Call student code on copies of the inputs; report exceptions and in-place edits."""
    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    try:
        result = fn(*copies, **kwargs)
    except Exception as error:  # noqa: BLE001 -- any student error becomes feedback
        raise student_error(what, error) from None
    for original, copy in zip(args, copies):
        if isinstance(original, torch.Tensor) and not torch.equal(original, copy):
            raise CheckFailure(f"{what} changed one of its input tensors in place "
                               "(an argument of shape " + shape_str(original.shape) +
                               "); compute a new tensor instead of modifying the argument")
    return result


def unpack_pair(what: str, result, names: tuple[str, str]):
    """Check that a student function returned a pair such as (output, h_n)."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise CheckFailure(f"{what} should return a tuple ({names[0]}, {names[1]}), "
                           f"got {type_name(result)}")
    return result


class Check:
    """Base class; subclasses fill in the four parts and a few words of text."""

    name: str = ""          # registry key, e.g. "01-recurrence/rnn_step"
    student_name: str = ""  # what the student wrote, e.g. "rnn_step"
    reference_name: str = ""  # what it is checked against, e.g. "torch.nn.RNNCell"
    kind: str = "function"  # "function" or "class"
    # torch kernels the student must not call (e.g. "rnn_tanh" behind nn.RNN)
    forbidden: tuple[str, ...] = ()
    # Python functions the student must not call, by dotted path: the answer's library
    # function (e.g. "rnn_by_hand.lm.data.batchify") and the autograder's own hand-written
    # reference, which an answer could otherwise import from the installed package
    forbidden_functions: tuple[str, ...] = ()
    forbidden_reason: str = "this exercise asks you to write it yourself"
    rtol: float = RTOL
    atol: float = ATOL

    def __init__(self):
        if self.name in CHECKS:  # two checks under one name: the grader would pick either
            raise RuntimeError(f"a check named {self.name!r} is already registered")
        CHECKS[self.name] = self

    # -- the four parts -------------------------------------------------
    def make_cases(self, hidden: bool = False, seed: int | None = None) -> list[Case]:
        raise NotImplementedError

    def run_student(self, student, case: Case) -> dict[str, Any]:
        raise NotImplementedError

    def run_student_guarded(self, student, case: Case) -> dict[str, Any]:
        """run_student with the forbidden kernels trapped: what graders and test cells call."""
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

    # -- running it in-process, for a notebook's test cell ---------------
    def validate_student(self, student) -> None:
        expected = "a class" if self.kind == "class" else "a function"
        if student is None or (self.kind == "class" and not inspect.isclass(student)) \
                or (self.kind == "function" and not callable(student)):
            raise CheckFailure(f"the check for {self.student_name} expects {expected} "
                               f"(pass {self.student_name} itself), got {type_name(student)}")

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

    def __call__(self, student, *, hidden: bool = False, seed: int | None = None,
                 quiet: bool = False) -> None:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        self.validate_student(student)
        cases = self.make_cases(hidden=hidden, seed=seed)
        for index, case in enumerate(cases, start=1):
            # The same round trip as the class grader's, so both see the same values.
            actual = round_trip(self.run_student_guarded(student, case))
            expected = self.run_reference(case)
            problems = self.compare(case, expected, actual)
            if problems:
                message = self.failure_message(case, index, len(cases), problems,
                                               self.hint(case, actual))
                raise CheckFailure(message)
        if not quiet:
            print(self.ok_message(len(cases)))
        # Returns None on purpose: nbgrader reads a test cell's displayed value as partial credit.


class OwnMessages:
    """Mixin for checks whose verdict is not a float64 comparison: their own words."""

    ok_text = ""      # printed after "OK: <student_name> "
    failure_text = ""  # "<student_name> <failure_text> on case i of n (...)"

    def mismatch_text(self) -> str:
        return self.failure_text

    def ok_message(self, count: int) -> str:
        return f"OK: {self.student_name} {self.ok_text} on {count} cases."
