"""Every check a notebook's test cell may call: the public import path of the course.

    from rnn_by_hand.checks import check_stacked_rnn_step
    from rnn_by_hand.checks import check_all      # the summary cell at the end

Test cells import from here and nowhere else, so the chapters' modules can move and
split without breaking a released notebook. The names are those the chapters define
(rnn_by_hand.chapters.*, found by the registry): a new chapter adds none here.
It refuses, in one line, a torch the checks were never tested with (see _version.py).
"""
import torch

from ._version import SetupError, torch_problem

if (_problem := torch_problem(torch.__version__)):
    raise SetupError(_problem)

from .checking.registry import EXPORTS, discover  # imported only once torch is known good
from .checking.summary import check_all  # the notebooks' last cell: every exercise at a glance

discover()
globals().update(EXPORTS)
__all__ = sorted(EXPORTS) + ["check_all"]
