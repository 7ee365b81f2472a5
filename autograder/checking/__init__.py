"""The checking framework: what every check shares, whatever its chapter.

    cases.py     Case, seeds derived from a check's name, the seeded RNG fork
    student.py   calling student code: CheckFailure, copies of inputs, messages about their code
    forbid.py    forbidding calls: torch's fused kernels, and Python functions by dotted path
    compare.py   float64 comparison of tensors, in sentences a student can act on
    check.py     the Check base: the case loop, the four parts, verdict text
    registry.py  CHECKS, filled from the chapters package (rnn_by_hand.chapters) only
    summary.py   check_all: every exercise of an assignment, one line each, and the next to do

Nothing here knows about RNNs; what the chapters share about them is rnn_by_hand.common.
"""

from .cases import STATE, Case, case_seed, describe_config, seeded, state_of, untouched_rng, with_state
from .check import Check, OwnMessages
from .forbid import ForbiddenCall
from .student import CheckFailure, call_student, unpack_pair

__all__ = ["STATE", "Case", "Check", "CheckFailure", "ForbiddenCall", "OwnMessages", "call_student",
           "case_seed", "describe_config", "seeded", "state_of", "unpack_pair", "untouched_rng",
           "with_state"]
