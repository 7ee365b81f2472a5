"""Calling student code: on copies of the inputs, with every exception turned into feedback
about the student's own code (never the checker's or torch's frames)."""
from __future__ import annotations

import os
import textwrap
import traceback
from typing import Callable

import torch

from .compare import shape_str, type_name
from .forbid import ForbiddenCall

# Frames in these folders are the checker's or torch's, never the student's.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
MAX_QUOTED = 300


SHORT_LINE = 88  # nbgrader's Validate box cuts longer lines; so would the book's column


class CheckFailure(AssertionError):
    """A student's answer is wrong; the message says how."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for a failed check, in JupyterLab, Colab, nbgrader's Validate
        and its feedback: the verdict alone, in short lines. The frames of the checker
        say nothing about the student's code (where that code raised, the message quotes
        its line), and they pushed the verdict below the fold."""
        return short_lines(f"{type(self).__name__}: {self}")


def short_lines(text: str, width: int = SHORT_LINE) -> list[str]:
    """`text` as lines of at most `width` characters, each wrapped line indented under
    the one it continues, so that a list of problems stays a list."""
    lines = []
    for line in text.splitlines() or [""]:
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        lines += textwrap.wrap(line, width=width, subsequent_indent=indent, break_on_hyphens=False,
                               drop_whitespace=True) or [""]
    return lines


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
