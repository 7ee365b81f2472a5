"""Chapter 5, the LSTM: its stacked gate blocks, one step and one layer by hand, weights from
another convention, and the forget gate's bias. checks.py holds the checks; models.py the
hand-written LSTMs that name a student's mistake in a hint."""
from .checks import (check_ifog_to_pytorch, check_lstm_forward, check_lstm_step, check_set_forget_bias,
                     check_split_gates)

ASSIGNMENT = "05-lstm"
__all__ = ["check_ifog_to_pytorch", "check_lstm_forward", "check_lstm_step", "check_set_forget_bias",
           "check_split_gates"]
