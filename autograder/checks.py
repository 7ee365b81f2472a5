"""Every check a notebook's test cell may call: the public import path of the course.

    from rnn_by_hand.checks import check_rnn_step

Test cells import from here and nowhere else, so the chapters' modules can move and
split without breaking a released notebook. Importing this module fills CHECKS (the
grader's registry) with every check, once each. It refuses, in one line, a torch the
checks were never tested with (see _version.py).
"""
import torch

from ._version import SetupError, torch_problem

if (_problem := torch_problem(torch.__version__)):
    raise SetupError(_problem)

# 1. The recurrence by hand
from .recurrence import check_rnn_step, check_rnn_forward, check_my_rnn
# 2. nn.Embedding
from .embedding import (
    check_build_vocab, check_encode, check_embedding_lookup, check_embedding_one_hot, check_embedding_grad,
    check_embedding_max_norm)
# 3. nn.RNN in depth
from .rnn import check_rnn_shapes, check_rnn_init_bound, check_birnn_forward, check_last_valid_output
# 4. Training through time
from .training import check_clip_grad_norm, check_hidden_grad_norms, check_detach_state, check_train_hello
# 5. LSTM
from .lstm import (
    check_split_gates, check_lstm_step, check_lstm_forward, check_ifog_to_pytorch, check_set_forget_bias)
# 6. GRU
from .gru import check_gru_step, check_gru_forward, check_cho_gru_step, check_count_parameters
# 7. Cells
from .cells import (
    check_lstm_to_cells, check_cells_to_lstm, check_stacked_lstm_forward, check_greedy_decode)
# 8. A word-level language model
from .language_model import (
    check_batchify, check_get_batch, check_language_model, check_corpus_perplexity, check_sample_next)

__all__ = [
    "check_rnn_step", "check_rnn_forward", "check_my_rnn", "check_build_vocab", "check_encode",
    "check_embedding_lookup", "check_embedding_one_hot", "check_embedding_grad", "check_embedding_max_norm",
    "check_rnn_shapes", "check_rnn_init_bound", "check_birnn_forward", "check_last_valid_output",
    "check_clip_grad_norm", "check_hidden_grad_norms", "check_detach_state", "check_train_hello",
    "check_split_gates", "check_lstm_step", "check_lstm_forward", "check_ifog_to_pytorch", "check_set_forget_bias",
    "check_gru_step", "check_gru_forward", "check_cho_gru_step", "check_count_parameters", "check_lstm_to_cells",
    "check_cells_to_lstm", "check_stacked_lstm_forward", "check_greedy_decode", "check_batchify", "check_get_batch",
    "check_language_model", "check_corpus_perplexity", "check_sample_next",
]
