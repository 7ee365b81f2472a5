"""Chapter 4, training a recurrent net:

    clip_grad_norm(parameters, max_norm, norm_type)   vs torch.nn.utils.clip_grad_norm_   (clipping.py)
    hidden_grad_norms(module, input, loss_fn)         vs autograd through nn.RNN/LSTM/GRU (gradients.py)
    detach_state(state)                               vs Tensor.detach on every tensor    (detach.py)
    train_hello(cell, hidden_size, seed, max_steps)   a HelloNet that maps "hello" to "ohlol" (hello.py)

Every reference is computed at check time: torch's own clip_grad_norm_ on clones of
the same parameters, autograd through a torch.nn module built from the case's weights,
torch's detach, and a trusted HelloNet loaded with the weights the student's training
produced.
"""
from .clipping import check_clip_grad_norm
from .detach import check_detach_state
from .gradients import check_hidden_grad_norms
from .hello import VOCAB, HelloNet, check_train_hello, decode, encode

ASSIGNMENT = "04-training"
__all__ = ["VOCAB", "HelloNet", "check_clip_grad_norm", "check_detach_state", "check_hidden_grad_norms",
           "check_train_hello", "decode", "encode"]
