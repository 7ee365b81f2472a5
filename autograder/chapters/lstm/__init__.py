"""Chapter 5, the LSTM: one gate's blocks in every stacked parameter, one layer by hand, a peephole step (the
neighbour the chapter does not show), TensorFlow 1's BasicLSTMCell weights converted into
nn.LSTM (another layout than the chapter's), and the chrono initialisation of the input and
forget gates' biases. checks.py holds the checks; models.py the hand-written LSTMs that name
a student's mistake in a hint, and the peephole and TensorFlow references."""
from .checks import (check_gate_blocks, check_lstm_forward, check_peephole_lstm_step, check_set_chrono_bias,
                     check_tf_lstm_to_pytorch)

ASSIGNMENT = "05-lstm"
__all__ = ["check_gate_blocks", "check_lstm_forward", "check_peephole_lstm_step", "check_set_chrono_bias",
           "check_tf_lstm_to_pytorch"]
