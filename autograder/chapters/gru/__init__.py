"""Chapter 6, the GRU: a stack and a bidirectional layer by hand, a Keras GRU's weights converted
into nn.GRU, and counting parameters. checks.py holds the checks; models.py the hand-written GRUs
that name a student's mistake in a hint, and Keras's GRU, the reference torch.nn lacks."""
from .checks import check_bigru_forward, check_count_parameters, check_gru_forward, check_keras_gru_to_pytorch

ASSIGNMENT = "06-gru"
__all__ = ["check_bigru_forward", "check_count_parameters", "check_gru_forward", "check_keras_gru_to_pytorch"]
