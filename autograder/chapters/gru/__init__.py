"""Chapter 6, the GRU: a stack and a bidirectional layer by hand, Cho et al.'s form, and counting
parameters. checks.py holds the checks; models.py the hand-written GRUs (and Cho et al.'s form,
the reference torch.nn lacks) that name a student's mistake in a hint."""
from .checks import check_bigru_forward, check_cho_gru_step, check_count_parameters, check_gru_forward

ASSIGNMENT = "06-gru"
__all__ = ["check_bigru_forward", "check_cho_gru_step", "check_count_parameters", "check_gru_forward"]
