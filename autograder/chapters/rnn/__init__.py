"""Chapter 3, nn.RNN in depth: its shapes, the initialisation of a classifier built on it, a
bidirectional stack by hand, and the mean over the valid steps of a padded batch. checks.py holds
the checks; models.py the wrong models that name a student's mistake in a hint."""
from .checks import check_birnn_forward, check_classifier_init_bounds, check_mean_valid_output, check_rnn_shapes

ASSIGNMENT = "03-rnn"
__all__ = ["check_birnn_forward", "check_classifier_init_bounds", "check_mean_valid_output", "check_rnn_shapes"]
