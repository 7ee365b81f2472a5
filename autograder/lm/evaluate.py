"""Perplexity over a whole split, and the two baselines it should beat.

Perplexity is exp of the mean cross-entropy per target token over the whole split.
The mean is weighted by tokens: the last BPTT window is usually shorter than the
others, so averaging per-window means (or, worse, per-window perplexities) gives
its few tokens the weight of a full window.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .data import get_batch
from .model import window_loss


@torch.no_grad()
def cross_entropy(model, source: torch.Tensor, bptt: int, batch_size: int | None = None,
                  on_window: Callable[[], None] | None = None) -> float:
    """Token-weighted mean cross-entropy (nats) of `model` over `source` (rows, batch).

    The hidden state is carried from window to window, as in training, so every
    token is predicted with the whole column before it as context. on_window is
    called after each window (the command line's progress bar).
    """
    was_training = model.training
    model.eval()  # dropout off
    hidden = model.init_hidden(batch_size or source.size(1))
    total_loss, total_tokens = 0.0, 0
    for i in range(0, source.size(0) - 1, bptt):
        inputs, targets = get_batch(source, i, bptt)    # (seq_len, N), (seq_len * N,)
        loss, hidden = window_loss(model, inputs, hidden, targets, reduction="sum")
        total_loss += loss.item()
        total_tokens += targets.numel()
        if on_window:
            on_window()
    model.train(was_training)
    return total_loss / total_tokens


def perplexity(model, source: torch.Tensor, bptt: int) -> float:
    return math.exp(cross_entropy(model, source, bptt))


def uniform_perplexity(ntoken: int) -> float:
    """A model that gives every word probability 1/|V| has perplexity |V| on any text."""
    return float(ntoken)


def unigram_perplexity(train_ids: torch.Tensor, split_ids: torch.Tensor, ntoken: int) -> float:
    """Perplexity on `split_ids` of word frequencies counted on `train_ids` (add-one
    smoothing, so a word training never saw still has a probability)."""
    counts = torch.bincount(train_ids, minlength=ntoken).double() + 1.0   # (ntoken,)
    log_probs = (counts / counts.sum()).log()
    return math.exp(-log_probs[split_ids].mean().item())
