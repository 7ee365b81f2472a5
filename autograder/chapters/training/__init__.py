"""Chapter 4, training a recurrent net:

    clip_grad_norm(parameters, max_norm, norm_type)    vs torch.nn.utils.clip_grad_norm_   (clipping.py)
    rnn_step_backward(grad_h, x, h_prev, weights...)   vs autograd through nn.RNNCell      (backward.py)
    carry_state(state, reset)                          vs Tensor.detach and a reset per stream (carry.py)
    train_step_padded(model, optimizer, padded, ...)   vs each sequence run alone, unpadded (padded.py)

Every reference is computed at check time: torch's own clip_grad_norm_ on clones of
the same parameters, autograd through a torch.nn module built from the case's weights,
torch's detach, and a trusted Tagger loaded with the case's weights that runs every
sequence of a padded batch on its own.
"""
from .backward import check_rnn_step_backward
from .carry import check_carry_state
from .clipping import check_clip_grad_norm
from .padded import PAD, Tagger, check_train_step_padded

ASSIGNMENT = "04-training"
__all__ = ["PAD", "Tagger", "check_carry_state", "check_clip_grad_norm", "check_rnn_step_backward",
           "check_train_step_padded"]
