"""rnn_by_hand: the checks and class grader of the course "Recurrent neural networks in
PyTorch, by hand and by torch.nn" (distribution `rnn-by-hand`).

The public API, which internal reorganisation never changes:

    import rnn_by_hand
    rnn_by_hand.require("<release>")           # first cell of every exercise notebook
    from rnn_by_hand.checks import check_stacked_rnn_step
    check_stacked_rnn_step(stacked_rnn_step)   # visible cases: "OK" or a CheckFailure
    check_stacked_rnn_step(stacked_rnn_step, hidden=True)  # other configurations, in hidden tests

    rnn-by-hand release | validate | grade     # the instructor's command (python -m rnn_by_hand)
    rnn_by_hand.lm                             # the language model of chapter 8

`import rnn_by_hand` is light (no torch): the first cell can say what is missing
before anything heavy loads.
"""
from ._version import __version__, require

__all__ = ["__version__", "require", "CHECKS", "Case", "Check", "CheckFailure"]


def __getattr__(name: str):
    """The check framework, imported on first use (it imports torch)."""
    if name == "CHECKS":
        from .checking.registry import discover
        return discover()
    if name in ("Case", "Check", "CheckFailure"):
        from .checking import cases, check, student
        return {"Case": cases.Case, "Check": check.Check, "CheckFailure": student.CheckFailure}[name]
    raise AttributeError(f"module 'rnn_by_hand' has no attribute {name!r}")
