"""Checks that compare a student's RNN code with torch.nn, by value, in float64.

A notebook's test cell calls a check with the student's function or class:

    from autograder.recurrence import check_rnn_step
    check_rnn_step(rnn_step)               # visible cases
    check_rnn_step(rnn_step, hidden=True)  # other configurations, in hidden tests

and gets either a one-line confirmation or a `CheckFailure` that says what is
wrong. `CHECKS` maps "<assignment>/<name>" to every check, for graders.
"""
from .check import CHECKS, Case, Check, CheckFailure

__all__ = ["CHECKS", "Case", "Check", "CheckFailure"]
__version__ = "0.1.0"
