"""Embedding -> recurrent core -> decoder: a word-level language model.

    input (L, N) word ids
      │ encoder: nn.Embedding(ntoken, ninp)          -> (L, N, ninp)
      │ drop
      │ rnn: LSTM / GRU / RNN (nlayers, time-major)  -> output (L, N, nhid), hidden
      │ drop
      │ decoder, one of two:
      │   "full":     nn.Linear(nhid, ntoken)        -> logits (L, N, ntoken)
      │   "adaptive": nn.AdaptiveLogSoftmaxWithLoss  -> log-probabilities (L, N, ntoken)
      │               head: the `cutoffs[0]` most frequent words + one entry per tail cluster
      │               tails: rarer words, through a projection `div_value` times narrower

The adaptive decoder (Grave et al., 2017) spends a full row of work only on frequent
words: most targets are in the head, and a rare word costs its cluster's small
projection. It needs word ids in order of frequency, which the corpus's ids (in order of
first appearance) are not, so the model keeps `rank`, each word's place by training-set
frequency, and renumbers ids on the way in and out of the decoder.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RNN_TYPES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
DECODERS = ("full", "adaptive")


class RNNModel(nn.Module):
    """A language model whose recurrent core is chosen by name (one of RNN_TYPES).

    With tie_weights the decoder reuses the encoder's table (Press & Wolf; Inan et al.):
    the decoder weight is (ntoken, nhid) and the embedding (ntoken, ninp), so the
    two can be one tensor only when nhid == ninp. The adaptive decoder has no single
    (ntoken, nhid) table (its tail words live in narrower projections), so it cannot be tied.
    """

    def __init__(self, rnn_type: str, ntoken: int, ninp: int, nhid: int, nlayers: int,
                 dropout: float = 0.5, tie_weights: bool = False, decoder: str = "full",
                 cutoffs: tuple[int, ...] = (), div_value: float = 4.0):
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"unknown rnn_type {rnn_type!r}: choose one of {', '.join(RNN_TYPES)}")
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
        if tie_weights and nhid != ninp:
            raise ValueError(f"tied weights need nhid == emsize (the decoder reuses the embedding "
                             f"table), got nhid={nhid} and emsize={ninp}")
        if tie_weights and decoder == "adaptive":
            raise ValueError("the adaptive decoder cannot be tied to the embedding: it has no "
                             "(ntoken, nhid) table; use --no-tied")
        self.rnn_type, self.ntoken, self.ninp, self.nhid, self.nlayers = rnn_type, ntoken, ninp, nhid, nlayers
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        # nn.RNN warns when dropout > 0 with one layer: it only acts between layers.
        between = dropout if nlayers > 1 else 0.0
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=between)
        else:
            nonlinearity = rnn_type.removeprefix("RNN_").lower()
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=between)
        if decoder == "adaptive":
            if ntoken < 2:
                raise ValueError(f"the adaptive decoder needs at least 2 words, got a vocabulary of {ntoken}")
            # A vocabulary smaller than the cut-offs (a test corpus) keeps those it can fill,
            # or one tail cluster of its rarer half.
            cutoffs = [c for c in cutoffs if c < ntoken] or [max(1, ntoken // 2)]
            narrowest = int(nhid // div_value ** len(cutoffs))   # the last tail cluster's projection
            if narrowest < 1:
                raise ValueError(f"the adaptive decoder's last cluster would have no units: nhid {nhid} "
                                 f"divided by div_value {div_value:g} {len(cutoffs)} times; use a smaller "
                                 f"div_value or fewer cut-offs")
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(nhid, ntoken, cutoffs, div_value=div_value)
            # rank[id]: the word's place by training frequency (0 = most frequent); set_frequencies
            # fills it, and a checkpoint carries it (a buffer is part of the state_dict).
            self.register_buffer("rank", torch.arange(ntoken))
        else:
            self.decoder = nn.Linear(nhid, ntoken)
            if tie_weights:
                self.decoder.weight = self.encoder.weight
        self.init_weights()

    @property
    def adaptive(self) -> bool:
        return isinstance(self.decoder, nn.AdaptiveLogSoftmaxWithLoss)

    def set_frequencies(self, train_ids: torch.Tensor) -> None:
        """Rank the words by their count in `train_ids` (ties by id), for the adaptive decoder."""
        counts = torch.bincount(train_ids.cpu(), minlength=self.ntoken)             # (ntoken,)
        order = torch.sort(counts, descending=True, stable=True).indices               # (ntoken,) ids by count
        self.rank.copy_(torch.empty_like(order).scatter_(0, order, torch.arange(self.ntoken)))

    def init_weights(self, initrange: float = 0.1) -> None:
        """Small uniform embeddings and decoder, zero decoder bias; the core keeps
        PyTorch's U(-1/sqrt(H), 1/sqrt(H)), and the adaptive decoder PyTorch's own."""
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        if self.adaptive:
            return
        nn.init.zeros_(self.decoder.bias)
        if self.decoder.weight is not self.encoder.weight:
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def features(self, input: torch.Tensor, hidden):
        """What the decoder reads: the core's output after dropout (L, N, nhid), and the state."""
        emb = self.drop(self.encoder(input))        # (L, N, ninp)
        output, hidden = self.rnn(emb, hidden)      # (L, N, nhid)
        return self.drop(output), hidden

    def decoder_input(self, output: torch.Tensor) -> torch.Tensor:
        """(L, N, nhid) -> (L * N, nhid) in the decoder weights' dtype (float32 after a
        bfloat16 core under autocast)."""
        return output.reshape(-1, self.nhid).to(self.encoder.weight.dtype)

    def forward(self, input: torch.Tensor, hidden):
        """Scores over the vocabulary (L, N, ntoken) whose softmax is the model's
        distribution: logits for "full", log-probabilities for "adaptive"."""
        output, hidden = self.features(input, hidden)
        if not self.adaptive:
            return self.decoder(output), hidden       # (L, N, ntoken): raw scores, no softmax
        log_probs = self.decoder.log_prob(self.decoder_input(output))   # (L * N, ntoken) by rank
        return log_probs[:, self.rank].view(*output.shape[:2], self.ntoken), hidden  # back to corpus ids

    def loss(self, input: torch.Tensor, hidden, targets: torch.Tensor, reduction: str = "mean"):
        """Cross-entropy of `targets` (L * N,) after `input` (L, N), and the state.

        The adaptive decoder computes only the targets' log-probabilities, never all
        ntoken of them: that is where it saves its time."""
        output, hidden = self.features(input, hidden)
        flat = self.decoder_input(output)                              # (L * N, nhid)
        if not self.adaptive:
            logits = self.decoder(flat).to(flat.dtype)                  # the softmax in the weights' dtype
            return F.cross_entropy(logits, targets, reduction=reduction), hidden
        # AdaptiveLogSoftmaxWithLoss mixes dtypes under autocast (torch 2.13 fails in
        # index_copy_), so it always runs in float32; the core before it may not.
        with torch.autocast(flat.device.type, enabled=False):
            target_log_prob = self.decoder(flat, self.rank[targets]).output  # (L * N,)
        return -(target_log_prob.mean() if reduction == "mean" else target_log_prob.sum()), hidden

    def init_hidden(self, batch_size: int):
        """Zeros (nlayers, N, nhid); for the LSTM the pair (h_0, c_0)."""
        weight = self.encoder.weight
        zeros = weight.new_zeros(self.nlayers, batch_size, self.nhid)  # (nlayers, N, nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros


def window_loss(model: nn.Module, inputs: torch.Tensor, hidden, targets: torch.Tensor, reduction: str = "mean"):
    """(cross-entropy, state) of any model that maps (inputs, hidden) to (logits, hidden);
    an RNNModel computes it its own way, which the adaptive decoder needs."""
    if isinstance(model, RNNModel):
        return model.loss(inputs, hidden, targets, reduction)
    logits, hidden = model(inputs, hidden)                     # (L, N, ntoken)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets, reduction=reduction), hidden
