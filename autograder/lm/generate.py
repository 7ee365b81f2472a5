"""Sampling the next word: temperature and top-k."""
from __future__ import annotations

import torch

from .data import Dictionary


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one id per row of `logits` (..., V) from softmax(logits / temperature).

    temperature < 1 sharpens the distribution and > 1 flattens it; as it goes to 0
    the draw becomes the argmax, which temperature 0 returns exactly. top_k keeps
    only the k largest logits (by value) and renormalises over them.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature < 1e-8:
        return logits.argmax(dim=-1)
    scaled = logits.double() / temperature                      # (..., V)
    if top_k is not None and top_k < scaled.size(-1):
        values, indices = scaled.topk(top_k, dim=-1)            # (..., k): by value, not by index
        scaled = torch.full_like(scaled, float("-inf")).scatter(-1, indices, values)
    probs = torch.softmax(scaled, dim=-1).reshape(-1, scaled.size(-1))   # (rows, V)
    ids = torch.multinomial(probs, 1, generator=generator)               # (rows, 1)
    return ids.view(logits.shape[:-1])


@torch.no_grad()
def generate(model, dictionary: Dictionary, num_words: int, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0, prompt: str | None = None) -> list[str]:
    """Words sampled one at a time, each fed back as the next input."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    hidden = model.init_hidden(1)
    words = prompt.split() if prompt else ["<eos>"]
    unknown = [w for w in words if w not in dictionary.word2idx]
    if unknown:
        raise ValueError(f"the prompt has words outside the vocabulary: {', '.join(unknown)}")
    ids = torch.tensor([[dictionary.word2idx[w]] for w in words], device=device)  # (len(words), 1)
    logits, hidden = model(ids, hidden)                                               # (len, 1, V)
    out = []
    for _ in range(num_words):
        token = sample_next(logits[-1], temperature, top_k, generator)   # (1,)
        out.append(dictionary.idx2word[token.item()])
        logits, hidden = model(token.view(1, 1), hidden)
    return out
