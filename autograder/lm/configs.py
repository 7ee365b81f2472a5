"""Named training configurations: every option of the command line, with its default."""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Config:
    model: str = "LSTM"          # one of model.RNN_TYPES
    emsize: int = 200            # embedding size (ninp)
    nhid: int = 200              # hidden units per layer
    nlayers: int = 1
    dropout: float = 0.2
    tied: bool = True            # decoder shares the embedding table (needs nhid == emsize)
    decoder: str = "full"        # "full" (Linear + softmax) or "adaptive" (AdaptiveLogSoftmaxWithLoss)
    cutoffs: tuple[int, ...] = (2000,)  # the adaptive decoder's clusters, by frequency rank
    div_value: float = 4.0       # each adaptive tail cluster is div_value times narrower
    precision: str = "float32"   # "float32", or "bfloat16": autocast where the CPU has bf16 units
    batch_size: int = 20
    eval_batch_size: int = 10
    bptt: int = 35               # tokens per truncated-BPTT window
    epochs: int = 6
    lr: float = 20.0             # plain SGD: the classic schedules are for it
    schedule: str = "plateau"    # "constant", "step" (divide after decay_start) or "plateau"
    decay_start: int = 4         # "step": the first epoch after which lr is divided
    lr_decay: float = 4.0        # the divisor
    clip: float = 0.25           # max global norm of the gradient
    seed: int = 1111
    device: str = "auto"         # "auto" (cuda when available), "cpu" or "cuda"
    max_tokens: int | None = None      # training tokens in all, a budget that holds on any machine
    time_budget: float | None = None   # seconds of training; stops between batches
    log_interval: int = 200      # batches between progress lines
    eval_every: int | None = None      # batches between validation points of the curve

    def with_(self, **changes) -> "Config":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


CONFIGS = {
    # CPU, minutes: one LSTM layer of 200 units whose decoder is an adaptive softmax
    # (AdaptiveLogSoftmaxWithLoss: the 2,000 most frequent words in the head, the rest in
    # two tail clusters), which cannot be tied. benchmarks/lm_side_by_side.py measures it
    # against pytorch/examples' defaults; the README has the numbers.
    "small": Config(decoder="adaptive", cutoffs=(2000, 6000), tied=False, dropout=0.1),
    # The previous `small`: the same core with a full softmax decoder tied to the embedding.
    # Better per token, slower per token (the decoder is about 6/7 of its multiply-adds).
    "small-tied": Config(),
    # The baseline of benchmarks/lm_side_by_side.py: pytorch/examples' word_language_model
    # with its default arguments (2 x 200 LSTM, untied, dropout 0.2, SGD lr 20 divided by 4
    # when validation stalls, clip 0.25, bptt 35, batch 20), trained by this course's code.
    "examples": Config(nlayers=2, tied=False, epochs=40),
    # GPU: the size of Zaremba et al.'s (2014) "medium" model (2 x 650, dropout 0.5,
    # 40 epochs, batch 20, bptt 35) trained as PyTorch's word-language-model example
    # trains it (SGD lr 20 divided by 4 on a plateau, clip 0.25), with tied weights.
    "medium": Config(emsize=650, nhid=650, nlayers=2, dropout=0.5, epochs=40),
    # Zaremba et al.'s own recipe: untied, lr 1 divided by 1.2 after each epoch from the 6th, clip 5.
    "zaremba-medium": Config(emsize=650, nhid=650, nlayers=2, dropout=0.5, tied=False, epochs=39,
                             lr=1.0, schedule="step", decay_start=6, lr_decay=1.2, clip=5.0),
}
