"""train_step_padded(model, optimizer, padded, lengths, targets): one SGD step of a
bidirectional tagger on a padded batch of sequences of different lengths, with the loss
masked to the real steps.

The reference runs every sequence on its own, unpadded, through the same torch.nn
modules (a trusted Tagger loaded with the case's weights), so it needs neither packing
nor a mask: it is what packing and masking must reproduce. `step_variant` also makes
the classic wrong steps (no packing, padding in the loss, a wrong mean, stale
gradients) that the hints name; the chapter's tests check the reference against
F.cross_entropy on a batch of equal lengths.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ...checking import Case, Check, CheckFailure, call_student, state_of, untouched_rng, with_state
from ...checking.compare import compare_tensor, first_matching_mistake, type_name
from ...common import DTYPE, RECURRENT_MODULES

PAD = 0  # the padding index of every batch, and the Tagger's padding_idx


class Tagger(nn.Module):
    """nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD) -> a one-layer bidirectional
    nn.RNN, nn.LSTM or nn.GRU -> nn.Linear(2 * hidden_size, num_classes).

    forward(x) takes a batch of sequences of ONE length, (L, N) without padding, and
    returns (L, N, num_classes): one row of logits per step.
    """

    def __init__(self, vocab_size: int, num_classes: int, cell: str = "gru", embedding_dim: int = 4,
                 hidden_size: int = 5):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.rnn = RECURRENT_MODULES[cell](embedding_dim, hidden_size, bidirectional=True)
        self.decoder = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(self.embedding(x))  # (L, N, 2 * hidden_size)
        return self.decoder(output)               # (L, N, num_classes)


def tagger(config: dict) -> Tagger:
    return Tagger(config["vocab_size"], config["num_classes"], config["cell"],
                  config["embedding_dim"], config["hidden_size"]).to(DTYPE)


def valid_mask(lengths: torch.Tensor, L: int) -> torch.Tensor:
    """(L, N) booleans, True at the real steps t < lengths[n]."""
    return torch.arange(L).unsqueeze(1) < lengths  # (L, 1) < (N,) -> (L, N)


def masked_losses(model: Tagger, padded, lengths, targets, packed: bool = True) -> torch.Tensor:
    """(L, N) cross-entropy at every step of a padded batch (packed, or the padding read)."""
    embedded = model.embedding(padded)  # (L, N, E)
    if packed:
        output, _ = model.rnn(pack_padded_sequence(embedded, lengths, enforce_sorted=False))
        output, _ = pad_packed_sequence(output, total_length=padded.shape[0])  # (L, N, 2H)
    else:
        output, _ = model.rnn(embedded)  # the backward direction starts in the padding
    logits = model.decoder(output)  # (L, N, C)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view_as(targets)


def reference_loss(model: Tagger, padded, lengths, targets) -> torch.Tensor:
    """The mean cross-entropy over every real step, each sequence run alone without padding."""
    total = 0
    for n, length in enumerate(lengths.tolist()):
        logits = model(padded[:length, n:n + 1])  # (length, 1, C): this sequence only
        total = total + F.cross_entropy(logits[:, 0], targets[:length, n], reduction="sum")
    return total / lengths.sum()


def step_variant(case: Case, variant: str | None = None) -> dict:
    """One SGD step on the case's model: the right one (None) or a named mistake.
    Returns the loss, the gradients and the parameters after the step, by name."""
    c, t = case.config, case.tensors
    with untouched_rng():
        model = tagger(c)
    model.load_state_dict(state_of(t))
    padded, lengths, targets = t["padded"], t["lengths"], t["targets"]
    mask = valid_mask(lengths, padded.shape[0])
    if variant is None or variant == "stale":
        loss = reference_loss(model, padded, lengths, targets)
    elif variant == "unpacked":
        loss = masked_losses(model, padded, lengths, targets, packed=False)[mask].mean()
    elif variant == "unmasked":
        loss = masked_losses(model, padded, lengths, targets).mean()
    elif variant == "neither":
        loss = masked_losses(model, padded, lengths, targets, packed=False).mean()
    elif variant == "all_positions":
        loss = masked_losses(model, padded, lengths, targets)[mask].sum() / mask.numel()
    elif variant == "per_sequence":
        losses = masked_losses(model, padded, lengths, targets) * mask
        loss = (losses.sum(0) / lengths).mean()
    else:
        raise ValueError(variant)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    named = dict(model.named_parameters())
    if variant == "stale":  # backward() adds to what .grad held before the call
        grads = [g + t[f"stale.{k}"] for g, k in zip(grads, named)]
    with torch.no_grad():
        after = {k: p - c["lr"] * g for (k, p), g in zip(named.items(), grads)}
    return {"loss": loss.detach(), "grads": dict(zip(named, grads)), "params": after}


MISTAKES = {
    "unpacked": "your step matches running the padded batch through the RNN without packing: "
                "the backward direction then starts in the padding and carries it into every "
                "real step. Pack the embedded batch (pack_padded_sequence, enforce_sorted=False)",
    "unmasked": "your loss includes the padded steps (their targets are junk): average the "
                "cross-entropy over the real steps t < lengths[n] only",
    "neither": "your step runs the padded batch unpacked and counts the padded steps in the loss: "
               "pack the batch, and average the cross-entropy over the real steps only",
    "all_positions": "your loss sums the real steps but divides by L * N, padding included: "
                     "divide by the number of real steps, lengths.sum()",
    "per_sequence": "your loss is the mean of each sequence's mean: every real step must count "
                    "once, so a long sequence weighs more than a short one",
    "stale": "the gradients left in .grad from before the call were added to yours: call "
             "optimizer.zero_grad() before loss.backward()",
}


class TrainStepPaddedCheck(Check):
    name = "04-training/train_step_padded"
    student_name = "train_step_padded"
    reference_name = "each sequence run alone, without padding, through the same torch.nn modules"
    forbidden_functions = ("rnn_by_hand.chapters.training.padded.reference_loss",
                           "rnn_by_hand.chapters.training.padded.masked_losses",
                           "rnn_by_hand.chapters.training.padded.step_variant")

    # lengths in no particular order (enforce_sorted=False is needed), and the longest
    # one is L, as pad_sequence makes it.
    VISIBLE = [dict(cell="gru", lengths=[3, 5, 2], vocab_size=7, num_classes=3, embedding_dim=4,
                    hidden_size=5, lr=0.5),
               dict(cell="lstm", lengths=[2, 4, 4, 1], vocab_size=6, num_classes=4, embedding_dim=3,
                    hidden_size=4, lr=0.3),
               dict(cell="rnn", lengths=[1, 6], vocab_size=5, num_classes=3, embedding_dim=3,
                    hidden_size=3, lr=1.0)]
    HIDDEN = [dict(cell="rnn", lengths=[4, 2, 5, 3, 1], vocab_size=8, num_classes=5, embedding_dim=4,
                   hidden_size=4, lr=0.5),
              dict(cell="gru", lengths=[2, 7], vocab_size=6, num_classes=2, embedding_dim=3,
                   hidden_size=6, lr=0.8),
              dict(cell="lstm", lengths=[3, 1, 4], vocab_size=9, num_classes=3, embedding_dim=5,
                   hidden_size=3, lr=0.4)]

    def make_tensors(self, config):
        model = tagger(config)  # drawn first: the initialiser sets the weights
        lengths = torch.tensor(config["lengths"])
        L, N = max(config["lengths"]), len(config["lengths"])
        mask = valid_mask(lengths, L)
        padded = torch.randint(1, config["vocab_size"], (L, N)).masked_fill(~mask, PAD)  # (L, N)
        targets = torch.randint(config["num_classes"], (L, N))  # junk classes in the padding too
        stale = {f"stale.{k}": torch.randn_like(p) for k, p in model.named_parameters()}
        return with_state(model) | stale | {"padded": padded, "lengths": lengths, "targets": targets}

    def label(self, config):
        return (f"nn.{config['cell'].upper()} (bidirectional), lengths={config['lengths']}, "
                f"vocab_size={config['vocab_size']}, num_classes={config['num_classes']}, "
                f"SGD lr={config['lr']}")

    def run_student(self, student, case):
        t = case.tensors
        with untouched_rng():
            model = tagger(case.config)
        model.load_state_dict(state_of(t))
        for k, p in model.named_parameters():
            p.grad = t[f"stale.{k}"].clone()  # a previous step's gradients, still there
        optimizer = torch.optim.SGD(model.parameters(), lr=case.config["lr"])
        loss = call_student(self.student_name, student, model, optimizer, t["padded"], t["lengths"],
                            t["targets"])
        if isinstance(loss, float):
            loss = torch.tensor(loss, dtype=DTYPE)
        elif not isinstance(loss, torch.Tensor):
            raise CheckFailure(f"{self.student_name} should return the loss, a 0-dimensional tensor, "
                               f"got {type_name(loss)}")
        named = dict(model.named_parameters())
        return {"loss": loss.detach(),
                "grads": {k: None if p.grad is None else p.grad.detach().clone() for k, p in named.items()},
                "params": {k: p.detach().clone() for k, p in named.items()}}

    def run_reference(self, case):
        return step_variant(case)

    def compare(self, case, expected, actual):
        problems = compare_tensor("the returned loss", expected["loss"], actual["loss"], dims=(),
                                  layout="() (a 0-dimensional tensor)", rtol=self.rtol, atol=self.atol)
        if problems:
            return [p.replace("the returned loss[]", "the returned loss") for p in problems]
        unchanged = all(torch.equal(actual["params"][k], case.tensors[f"state.{k}"]) for k in actual["params"])
        if unchanged:
            return ["the loss is right, but no parameter changed: call optimizer.step() after "
                    "loss.backward()"]
        for what in ("grads", "params"):
            for k, want in expected[what].items():
                name = f"model.{k}.grad" if what == "grads" else f"model.{k} after the step"
                got = actual[what].get(k)
                if got is None:
                    return [f"{name} is None: call loss.backward() before optimizer.step()"]
                problems = compare_tensor(name, want, got, dims=tuple("ij"[:want.dim()]),
                                          rtol=self.rtol, atol=self.atol)
                if problems:
                    return problems
        return []

    def error_hint(self, case, message):
        if "enforce_sorted" in message or "sorted in decreasing order" in message:
            return ("the lengths come in any order: pack_padded_sequence(..., enforce_sorted=False) "
                    "sorts them, and unsorts the result")
        return ""

    def hint(self, case, actual):
        found = [(text, {"loss": v["loss"], **{f"grad.{k}": g for k, g in v["grads"].items()}})
                 for variant, text in MISTAKES.items() for v in [step_variant(case, variant)]]
        flat = {"loss": actual["loss"], **{f"grad.{k}": g for k, g in actual["grads"].items()
                                           if g is not None}}
        expected = self.run_reference(case)
        expected = {"loss": expected["loss"], **{f"grad.{k}": g for k, g in expected["grads"].items()}}
        return first_matching_mistake(case, expected, flat, found)


check_train_step_padded = TrainStepPaddedCheck()
