"""Chapter 5, the LSTM: its stacked gate blocks, one layer by hand, a peephole step (the
neighbour the chapter does not show), weights from another convention, and the chrono
initialisation of the input and forget gates' biases. checks.py holds the checks; models.py
the hand-written LSTMs that name a student's mistake in a hint and the peephole reference."""
from .checks import (check_ifog_to_pytorch, check_lstm_forward, check_peephole_lstm_step, check_set_chrono_bias,
                     check_split_gates)

ASSIGNMENT = "05-lstm"
__all__ = ["check_ifog_to_pytorch", "check_lstm_forward", "check_peephole_lstm_step", "check_set_chrono_bias",
           "check_split_gates"]
