"""Chapter 6, the GRU: one step and a stack by hand, Cho et al.'s form, and counting parameters.
checks.py holds the checks; models.py the hand-written GRUs (and Cho et al.'s form, the
reference torch.nn lacks) that name a student's mistake in a hint."""
from .checks import check_cho_gru_step, check_count_parameters, check_gru_forward, check_gru_step

ASSIGNMENT = "06-gru"
__all__ = ["check_cho_gru_step", "check_count_parameters", "check_gru_forward", "check_gru_step"]
