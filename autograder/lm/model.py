"""Embedding -> recurrent core -> Linear decoder: a word-level language model.

    input (L, N) word ids
      │ encoder: nn.Embedding(ntoken, ninp)          -> (L, N, ninp)
      │ drop
      │ rnn: LSTM / GRU / RNN (nlayers, time-major)  -> output (L, N, nhid), hidden
      │ drop
      │ decoder: nn.Linear(nhid, ntoken)             -> logits (L, N, ntoken)
"""
from __future__ import annotations

import torch
from torch import nn

RNN_TYPES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")


class RNNModel(nn.Module):
    """A language model whose recurrent core is chosen by name (one of RNN_TYPES).

    With tie_weights the decoder reuses the encoder's table (Press & Wolf; Inan et al.):
    the decoder weight is (ntoken, nhid) and the embedding (ntoken, ninp), so the
    two can be one tensor only when nhid == ninp.
    """

    def __init__(self, rnn_type: str, ntoken: int, ninp: int, nhid: int, nlayers: int,
                 dropout: float = 0.5, tie_weights: bool = False):
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"unknown rnn_type {rnn_type!r}: choose one of {', '.join(RNN_TYPES)}")
        if tie_weights and nhid != ninp:
            raise ValueError(f"tied weights need nhid == emsize (the decoder reuses the embedding "
                             f"table), got nhid={nhid} and emsize={ninp}")
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
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.init_weights()

    def init_weights(self, initrange: float = 0.1) -> None:
        """Small uniform embeddings and decoder, zero decoder bias; the core keeps
        PyTorch's U(-1/sqrt(H), 1/sqrt(H))."""
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        if self.decoder.weight is not self.encoder.weight:
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input: torch.Tensor, hidden):
        emb = self.drop(self.encoder(input))        # (L, N, ninp)
        output, hidden = self.rnn(emb, hidden)      # (L, N, nhid)
        logits = self.decoder(self.drop(output))    # (L, N, ntoken): raw scores, no softmax
        return logits, hidden

    def init_hidden(self, batch_size: int):
        """Zeros (nlayers, N, nhid); for the LSTM the pair (h_0, c_0)."""
        weight = next(self.parameters())
        zeros = weight.new_zeros(self.nlayers, batch_size, self.nhid)  # (nlayers, N, nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros
