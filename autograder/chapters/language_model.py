"""Checks for chapter 8, a word-level language model.

    batchify(data, batch_size)                    vs rnn_by_hand.lm.data.batchify
    get_batch(source, i, bptt)                    vs rnn_by_hand.lm.data.get_batch
    LanguageModel (forward, init_hidden)          vs rnn_by_hand.lm.model.RNNModel (Embedding, LSTM/GRU/RNN, Linear)
    corpus_perplexity(model, source, bptt)        vs rnn_by_hand.lm.evaluate.perplexity
    sample_next(logits, temperature, top_k, gen)  vs rnn_by_hand.lm.generate.sample_next and softmax(logits / T)

The references are the course's own language model, `rnn_by_hand.lm`, built on torch.nn, and run at
check time on fresh seeded data. Sampling is checked by value where it is
deterministic (temperature 0) and statistically otherwise, with a bound that a
correct sampler exceeds with negligible probability and every classic mistake
exceeds by far.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnn_by_hand.lm.data import batchify, get_batch
from rnn_by_hand.lm.evaluate import perplexity
from rnn_by_hand.lm.generate import sample_next
from rnn_by_hand.lm.model import RNNModel

from ..checking import (Case, Check, CheckFailure, OwnMessages, call_student, describe_config, seeded, state_of,
                        unpack_pair, with_state)
from ..checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ..common import DTYPE

ASSIGNMENT = "08-language-model"

# The answers exist in the book's package, so while student code runs rnn_by_hand.lm's own
# versions raise ForbiddenCall (see checking.forbid.forbid_functions): an answer must be written.
RNNLM_REASON = "this exercise asks you to write it yourself; rnn_by_hand.lm is what it is checked against"


def random_ids(*shape: int, ntoken: int = 1000) -> torch.Tensor:
    return torch.randint(0, ntoken, shape, dtype=torch.long)


def same_ids(expected: torch.Tensor, actual) -> bool:
    """Integer tensors equal in shape and value (`matches` is for floats)."""
    return isinstance(actual, torch.Tensor) and actual.shape == expected.shape \
        and not actual.dtype.is_floating_point and torch.equal(actual.long(), expected.long())


# -- batchify ----------------------------------------------------------------------

class BatchifyCheck(OwnMessages, Check):
    name = "08-language-model/batchify"
    student_name = "batchify"
    reference_name = "rnn_by_hand.lm.data.batchify"
    forbidden_functions = ("rnn_by_hand.lm.data.batchify",)
    forbidden_reason = RNNLM_REASON
    ok_text = "equals rnn_by_hand.lm.data.batchify exactly"
    failure_text = "differs from rnn_by_hand.lm.data.batchify"

    VISIBLE = [dict(T=23, batch_size=4), dict(T=30, batch_size=3), dict(T=17, batch_size=5)]
    HIDDEN = [dict(T=41, batch_size=6), dict(T=50, batch_size=7), dict(T=29, batch_size=2),
              dict(T=64, batch_size=8)]

    def make_tensors(self, config):
        return {"data": random_ids(config["T"])}

    def run_student(self, student, case):
        return {"result": call_student(self.student_name, student, case.tensors["data"],
                                       case.config["batch_size"])}

    def run_reference(self, case):
        return {"result": batchify(case.tensors["data"], case.config["batch_size"])}

    def compare(self, case, expected, actual):
        return compare_tensor("result", expected["result"], actual["result"], dims=("row", "col"),
                              layout="(rows, batch) = (T // batch_size, batch_size)")

    def hint(self, case, actual):
        data, batch = case.tensors["data"], case.config["batch_size"]
        rows, result = data.numel() // batch, actual["result"]
        if not isinstance(result, torch.Tensor):
            return ""
        kept = data[: rows * batch]
        if tuple(result.shape) == (-(-data.numel() // batch), batch) and data.numel() % batch:
            return (f"your result has {result.shape[0]} rows: the last {data.numel() % batch} tokens do not "
                    "fill a row of the batch and are dropped (T // batch_size rows), not padded")
        if same_ids(kept.view(batch, rows), result):
            return ("your result is (batch, rows): a view as (batch_size, -1) puts each column's text "
                    "in a row; transpose it (.t()) to get the time-major (rows, batch)")
        if same_ids(kept.view(rows, batch), result):
            return ("the shape is right but each column holds every batch_size-th token: data.view(-1, "
                    "batch_size) fills row by row. Column j must be the contiguous slice "
                    "data[j * rows:(j + 1) * rows]: drop the tokens that do not fill a row first, "
                    "data[:rows * batch_size].view(batch_size, -1).t()")
        return ""


# -- get_batch ---------------------------------------------------------------------

class GetBatchCheck(OwnMessages, Check):
    name = "08-language-model/get_batch"
    student_name = "get_batch"
    reference_name = "rnn_by_hand.lm.data.get_batch"
    forbidden_functions = ("rnn_by_hand.lm.data.get_batch",)
    forbidden_reason = RNNLM_REASON
    ok_text = "equals rnn_by_hand.lm.data.get_batch exactly at every window"
    failure_text = "differs from rnn_by_hand.lm.data.get_batch"

    VISIBLE = [dict(rows=11, batch=3, bptt=4), dict(rows=9, batch=2, bptt=3), dict(rows=7, batch=4, bptt=2)]
    HIDDEN = [dict(rows=13, batch=5, bptt=5), dict(rows=20, batch=4, bptt=6), dict(rows=6, batch=3, bptt=10),
              dict(rows=10, batch=1, bptt=4)]

    def make_tensors(self, config):
        return {"source": random_ids(config["rows"], config["batch"])}  # (rows, batch)

    @staticmethod
    def starts(case) -> list[int]:
        """Every window start, as an evaluation loop walks them: the last one is often short."""
        return list(range(0, case.config["rows"] - 1, case.config["bptt"]))

    def run_student(self, student, case):
        inputs, targets = [], []
        for i in self.starts(case):
            what = f"get_batch(source, i={i}, bptt={case.config['bptt']})"
            result = call_student(what, student, case.tensors["source"], i, case.config["bptt"])
            x, y = unpack_pair(what, result, ("inputs", "targets"))
            inputs.append(x)
            targets.append(y)
        return {"inputs": inputs, "targets": targets}

    def run_reference(self, case):
        pairs = [get_batch(case.tensors["source"], i, case.config["bptt"]) for i in self.starts(case)]
        return {"inputs": [x for x, _ in pairs], "targets": [y for _, y in pairs]}

    def compare(self, case, expected, actual):
        if not isinstance(actual["inputs"], list) or len(actual["inputs"]) != len(expected["inputs"]):
            return ["the windows could not be read back"]
        for i, want_x, want_y, got_x, got_y in zip(self.starts(case), expected["inputs"], expected["targets"],
                                                   actual["inputs"], actual["targets"]):
            seq_len = want_x.shape[0]
            problems = compare_tensor(f"inputs (window at i={i})", want_x, got_x, dims=("row", "col"),
                                      layout=f"(seq_len, batch) with seq_len = min(bptt, rows - 1 - i) = {seq_len}")
            problems += compare_tensor(f"targets (window at i={i})", want_y, got_y, dims=("k",),
                                       layout=f"(seq_len * batch,) = ({seq_len} * {case.config['batch']},)")
            if problems:
                return problems
        return []

    def hint(self, case, actual):
        source, bptt = case.tensors["source"], case.config["bptt"]
        for i, got_x, got_y in zip(self.starts(case), actual["inputs"], actual["targets"]):
            x, y = get_batch(source, i, bptt)
            seq_len = x.shape[0]
            if same_ids(x, got_x) and same_ids(y, got_y):
                continue
            following = source[i + 1: i + 1 + seq_len]  # (seq_len, batch)
            if same_ids(source[i: i + bptt], got_x) and seq_len < bptt:
                return (f"at i={i} only {seq_len} rows have a next word: seq_len = min(bptt, rows - 1 - i). "
                        "Your last window takes bptt rows, so its last input row has no target")
            if same_ids(x.reshape(-1), got_y):
                return ("your targets are the inputs: the target of each word is the next one, "
                        "source[i + 1 : i + 1 + seq_len]")
            if same_ids(following, got_y):
                return ("your targets are (seq_len, batch): flatten them to (seq_len * batch,) with "
                        ".reshape(-1), the order of logits.view(-1, ntoken) in the loss")
            if same_ids(following.t().reshape(-1), got_y):
                return ("your targets are flattened column by column (.t() first): flatten the (seq_len, batch) "
                        "slice row by row with .reshape(-1), the order of logits.view(-1, ntoken)")
            return ""
        return ""


# -- LanguageModel ------------------------------------------------------------------

MODEL_ARGS = ("rnn_type", "ntoken", "ninp", "nhid", "nlayers", "dropout")


def model_args(config: dict) -> dict:
    return {k: config[k] for k in MODEL_ARGS}


def reference_model(config: dict, state: dict | None = None) -> RNNModel:
    """rnn_by_hand.lm's model in float64, with the case's weights when `state` is given."""
    model = RNNModel(**model_args(config)).to(DTYPE)
    if state is not None:
        model.load_state_dict(state)
    return model


def hidden_of(case: Case):
    """The initial state the case feeds: random, so that ignoring it shows."""
    t = case.tensors
    return (t["h_0"], t["c_0"]) if case.config["rnn_type"] == "LSTM" else t["h_0"]


def forward_variant(model: RNNModel, x, hidden, *, seed=None, drop_in=True, drop_out=True,
                    pass_hidden=True):
    """The model's forward written out, with switches for the classic mistakes (hints only)."""
    with torch.no_grad(), seeded(seed if seed is not None else 0):
        emb = model.encoder(x)                                        # (L, N, ninp)
        emb = model.drop(emb) if drop_in else emb
        output, h_n = model.rnn(emb, hidden if pass_hidden else None)  # (L, N, nhid)
        output = model.drop(output) if drop_out else output
        return model.decoder(output), h_n                             # (L, N, ntoken)


class LanguageModelCheck(Check):
    name = "08-language-model/LanguageModel"
    student_name = "LanguageModel"
    reference_name = "rnn_by_hand.lm.model.RNNModel"
    kind = "class"
    forbidden_functions = ("rnn_by_hand.lm.model.RNNModel.__init__", "rnn_by_hand.lm.model.RNNModel.forward",
                           "rnn_by_hand.lm.model.RNNModel.init_hidden")
    forbidden_reason = RNNLM_REASON

    VISIBLE = [dict(rnn_type="LSTM", ntoken=20, ninp=6, nhid=8, nlayers=2, dropout=0.3, L=5, N=3),
               dict(rnn_type="GRU", ntoken=15, ninp=5, nhid=7, nlayers=1, dropout=0.2, L=4, N=2),
               dict(rnn_type="RNN_TANH", ntoken=12, ninp=4, nhid=6, nlayers=2, dropout=0.0, L=6, N=2),
               dict(rnn_type="RNN_RELU", ntoken=10, ninp=3, nhid=5, nlayers=1, dropout=0.5, L=3, N=4)]
    HIDDEN = [dict(rnn_type="LSTM", ntoken=25, ninp=7, nhid=5, nlayers=1, dropout=0.4, L=7, N=4),
              dict(rnn_type="GRU", ntoken=18, ninp=6, nhid=6, nlayers=3, dropout=0.25, L=5, N=2),
              dict(rnn_type="RNN_RELU", ntoken=14, ninp=5, nhid=9, nlayers=2, dropout=0.3, L=4, N=3),
              dict(rnn_type="RNN_TANH", ntoken=11, ninp=8, nhid=4, nlayers=1, dropout=0.0, L=6, N=1)]

    def make_tensors(self, config):
        L, N, layers, H = config["L"], config["N"], config["nlayers"], config["nhid"]
        tensors = with_state(reference_model(config))
        tensors["input"] = random_ids(L, N, ntoken=config["ntoken"])   # (L, N)
        tensors["h_0"] = torch.randn(layers, N, H, dtype=DTYPE)        # (nlayers, N, nhid)
        if config["rnn_type"] == "LSTM":
            tensors["c_0"] = torch.randn(layers, N, H, dtype=DTYPE)
        tensors["dropout_seed"] = torch.randint(0, 2**31 - 1, ())
        return tensors

    def run_student(self, student, case):
        args, t = model_args(case.config), case.tensors
        built = f"LanguageModel({describe_config(args)})"
        model = call_student(built, student, **args)
        if not isinstance(model, nn.Module):
            raise CheckFailure(f"{built} should be an nn.Module, got {type_name(model)}")
        model = model.to(DTYPE)
        try:
            model.load_state_dict(state_of(t))
        except Exception as error:  # noqa: BLE001
            raise CheckFailure(f"{built}.load_state_dict(RNNModel(...).state_dict()) failed: {error}. "
                               "Keep the submodules __init__ creates (encoder, rnn, decoder, drop)") from None
        result = {"init_hidden": call_student(f"{built}.init_hidden", model.init_hidden, case.config["N"])}
        x, h = t["input"], hidden_of(case)
        half = case.config["L"] // 2
        model.eval()
        with torch.no_grad():
            result["logits"], result["hidden"] = self.forward(built, model, x, h)
            first, carried = self.forward(f"{built}.forward on the first {half} steps", model, x[:half], h)
            second, _ = self.forward(f"{built}.forward on the remaining steps, given the hidden state "
                                     "that the first part returned", model, x[half:], carried)
            result["logits_halves"] = torch.cat([first, second]) if self.tensors(first, second) else first
            if case.config["dropout"] > 0:
                model.train()
                with seeded(int(t["dropout_seed"])):
                    result["logits_train"], _ = self.forward(f"{built}.forward in train mode", model, x, h)
        return result

    @staticmethod
    def tensors(*values) -> bool:
        return all(isinstance(v, torch.Tensor) for v in values)

    def forward(self, what, model, x, hidden):
        return unpack_pair(what, call_student(what, model, x, hidden), ("logits", "hidden"))

    def run_reference(self, case):
        model, t = reference_model(case.config, state_of(case.tensors)), case.tensors
        expected = {"init_hidden": model.init_hidden(case.config["N"])}
        model.eval()
        with torch.no_grad():
            expected["logits"], expected["hidden"] = model(t["input"], hidden_of(case))
            if case.config["dropout"] > 0:
                model.train()
                with seeded(int(t["dropout_seed"])):
                    expected["logits_train"], _ = model(t["input"], hidden_of(case))
        return expected

    def compare(self, case, expected, actual):
        problems = self.compare_state(case, "init_hidden(N)", expected["init_hidden"], actual["init_hidden"])
        logits = ("t", "n", "v"), "(L, N, ntoken): one raw score per word of the vocabulary"
        problems += compare_tensor("logits", expected["logits"], actual["logits"], dims=logits[0],
                                   layout=logits[1], rtol=self.rtol, atol=self.atol)
        problems += self.compare_state(case, "the hidden state forward returns", expected["hidden"],
                                       actual["hidden"])
        if problems:
            return problems
        problems = compare_tensor("logits of the sequence fed in two parts, the hidden state carried between them",
                                  expected["logits"], actual["logits_halves"], dims=logits[0], layout=logits[1],
                                  rtol=self.rtol, atol=self.atol)
        if "logits_train" in expected:
            problems += compare_tensor(f"logits in train mode (dropout={case.config['dropout']}, same random "
                                       "seed as the reference)", expected["logits_train"],
                                       actual.get("logits_train"), dims=logits[0], layout=logits[1],
                                       rtol=self.rtol, atol=self.atol)
        return problems

    def compare_state(self, case, what, expected, actual) -> list[str]:
        """A tensor (nlayers, N, nhid), or for the LSTM a tuple (h, c) of two."""
        dims, layout = ("layer", "n", "h"), "(nlayers, N, nhid)"
        if case.config["rnn_type"] == "LSTM":
            if not isinstance(actual, (tuple, list)) or len(actual) != 2:
                return [f"{what} should be a tuple (h, c) of two tensors for an LSTM, got {type_name(actual)}"]
            pairs = [(f"{what}[0] (h)", expected[0], actual[0]), (f"{what}[1] (c)", expected[1], actual[1])]
        else:
            if not isinstance(actual, torch.Tensor):
                return [f"{what} should be one tensor for {case.config['rnn_type']} (only the LSTM has a "
                        f"pair (h, c)), got {type_name(actual)}"]
            pairs = [(what, expected, actual)]
        problems = []
        for name, want, got in pairs:
            if isinstance(got, torch.Tensor) and got.shape != want.shape and sorted(got.shape) == sorted(want.shape):
                problems.append(f"{name} has shape {shape_str(got.shape)}, expected {shape_str(want.shape)}: "
                                f"hidden states are laid out as {layout} (layers first, then the batch)")
            else:
                problems += compare_tensor(name, want, got, dims=dims, layout=layout, rtol=self.rtol,
                                           atol=self.atol)
        return problems

    def hint(self, case, actual):
        model, t = reference_model(case.config, state_of(case.tensors)), case.tensors
        x, h = t["input"], hidden_of(case)
        model.eval()
        logits, h_n = forward_variant(model, x, h)
        top = (h_n[0] if isinstance(h_n, tuple) else h_n)  # (nlayers, N, nhid)
        decoded = model.decoder(top).detach()
        found = [("your logits are log-probabilities (log_softmax): forward returns the raw scores, and "
                  "nn.CrossEntropyLoss applies log_softmax itself", {"logits": F.log_softmax(logits, -1)}),
                 ("your logits are probabilities (softmax): forward returns the raw scores, and "
                  "nn.CrossEntropyLoss applies log_softmax itself", {"logits": F.softmax(logits, -1)}),
                 ("your logits are the decoder applied to the final hidden state: apply it to the rnn's output, "
                  "the top layer's state at every time step", {"logits": decoded}),
                 ("your logits are the decoder applied to the final hidden state: apply it to the rnn's output, "
                  "the top layer's state at every time step", {"logits": decoded[-1]}),
                 ("your outputs match starting from zeros: pass the hidden argument to self.rnn",
                  {"logits": forward_variant(model, x, h, pass_hidden=False)[0]})]
        expected = {"logits": logits}
        if "logits_train" in actual and case.config["dropout"] > 0:
            model.train()
            seed = int(t["dropout_seed"])
            expected["logits_train"] = forward_variant(model, x, h, seed=seed)[0]
            found += [("in train mode your logits are those with dropout off: pass the embeddings and the rnn "
                       "output through self.drop", {"logits_train": logits}),
                      ("in train mode only the embeddings go through dropout: pass the rnn output through "
                       "self.drop too, before the decoder",
                       {"logits_train": forward_variant(model, x, h, seed=seed, drop_out=False)[0]}),
                      ("in train mode only the rnn output goes through dropout: pass the embeddings through "
                       "self.drop too, before the rnn",
                       {"logits_train": forward_variant(model, x, h, seed=seed, drop_in=False)[0]})]
        return first_matching_mistake(case, expected, actual, found)


# -- corpus_perplexity ---------------------------------------------------------------

def window_losses(model: RNNModel, source, bptt: int, carry: bool = True) -> tuple[list[float], list[int]]:
    """Mean cross-entropy (nats) and token count of every window: only to name mistakes."""
    model.eval()
    hidden = model.init_hidden(source.size(1))
    losses, counts = [], []
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, bptt):
            inputs, targets = get_batch(source, i, bptt)
            logits, hidden = model(inputs, hidden if carry else model.init_hidden(source.size(1)))
            losses.append(F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets).item())
            counts.append(targets.numel())
    return losses, counts


class CorpusPerplexityCheck(Check):
    name = "08-language-model/corpus_perplexity"
    student_name = "corpus_perplexity"
    builds_on = ("get_batch",)
    reference_name = "rnn_by_hand.lm.evaluate.perplexity"
    forbidden_functions = ("rnn_by_hand.lm.evaluate.perplexity", "rnn_by_hand.lm.evaluate.cross_entropy")
    forbidden_reason = RNNLM_REASON

    VISIBLE = [dict(rnn_type="LSTM", ntoken=30, ninp=8, nhid=10, nlayers=2, dropout=0.5, rows=23, batch=3, bptt=5),
               dict(rnn_type="GRU", ntoken=25, ninp=6, nhid=8, nlayers=1, dropout=0.5, rows=18, batch=2, bptt=4),
               dict(rnn_type="RNN_TANH", ntoken=20, ninp=5, nhid=7, nlayers=1, dropout=0.5, rows=15, batch=4,
                    bptt=6),
               dict(rnn_type="RNN_RELU", ntoken=22, ninp=4, nhid=5, nlayers=2, dropout=0.5, rows=14, batch=3,
                    bptt=4)]
    HIDDEN = [dict(rnn_type="LSTM", ntoken=40, ninp=10, nhid=12, nlayers=1, dropout=0.5, rows=30, batch=4, bptt=7),
              dict(rnn_type="GRU", ntoken=35, ninp=7, nhid=9, nlayers=2, dropout=0.4, rows=20, batch=3, bptt=3),
              dict(rnn_type="RNN_RELU", ntoken=28, ninp=6, nhid=6, nlayers=1, dropout=0.5, rows=17, batch=5,
                   bptt=5)]

    def make_tensors(self, config):
        model = reference_model(config)
        # Larger embeddings than rnn_by_hand.lm's initialisation, so that the model is far from
        # uniform and windows differ: averaging mistakes then change the result a lot.
        with torch.no_grad():
            model.encoder.weight.normal_()
            model.decoder.weight.normal_(std=0.5)
        tensors = with_state(model)
        tensors["source"] = random_ids(config["rows"], config["batch"], ntoken=config["ntoken"])
        tensors["dropout_seed"] = torch.randint(0, 2**31 - 1, ())
        return tensors

    @staticmethod
    def model(case) -> RNNModel:
        """The case's model, left in training mode as after a training epoch."""
        model = reference_model(case.config, state_of(case.tensors))
        return model.train()

    def run_student(self, student, case):
        model = self.model(case)
        modes = []
        model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
        with seeded(int(case.tensors["dropout_seed"])):  # reproducible even if dropout is left on
            value = call_student(self.student_name, student, model, case.tensors["source"], case.config["bptt"])
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        return {"perplexity": value, "train_mode_calls": sum(modes)}

    def run_reference(self, case):
        return {"perplexity": perplexity(self.model(case), case.tensors["source"], case.config["bptt"])}

    def compare(self, case, expected, actual):
        value, want = actual["perplexity"], expected["perplexity"]
        if type(value) not in (int, float):
            return [f"corpus_perplexity should return a number (a Python float), got {type_name(value)}"]
        if not math.isfinite(value):
            return [f"corpus_perplexity returned {value}, not a finite number"]
        if abs(value - want) > self.atol + self.rtol * abs(want):
            text = (f"corpus_perplexity returned {value:.10g}, expected {want:.10g} (relative error "
                    f"{abs(value - want) / want:.3g}; tolerance rtol={self.rtol:g})")
            if abs(value - want) < 1e-5 * want:
                text += ": the error is as small as float32 rounding, so check for a float32 value in your computation"
            return [text]
        return []

    def hint(self, case, actual):
        value = actual["perplexity"]
        if actual.get("train_mode_calls"):
            return (f"the model was in training mode for {actual['train_mode_calls']} of its forward calls, so "
                    "dropout was on: call model.eval() before evaluating")
        if type(value) not in (int, float):
            return ""
        losses, counts = window_losses(self.model(case), case.tensors["source"], case.config["bptt"])
        weighted = sum(loss * n for loss, n in zip(losses, counts)) / sum(counts)
        fresh, _ = window_losses(self.model(case), case.tensors["source"], case.config["bptt"], carry=False)
        found = [("your value is the mean cross-entropy itself: perplexity is its exp", weighted),
                 ("your value is the mean of the windows' perplexities: perplexity is exp of the mean "
                  "cross-entropy per token over the whole split", sum(math.exp(loss) for loss in losses) / len(losses)),
                 ("your value gives every window the same weight: the last window is shorter, so weight each "
                  "window's mean loss by its number of target tokens (or sum the per-token losses and divide "
                  "by the number of tokens)", math.exp(sum(losses) / len(losses))),
                 ("your value matches starting every window from a zero hidden state: carry the hidden state "
                  "from one window to the next, as in training",
                  math.exp(sum(loss * n for loss, n in zip(fresh, counts)) / sum(counts))),
                 ("your value is 2 ** (cross-entropy in nats): F.cross_entropy works in nats, so its perplexity "
                  "is exp of it (2 ** goes with entropy in bits)", 2 ** weighted),
                 ("your value is exp of the cross-entropy in bits: F.cross_entropy works in nats, so "
                  "perplexity is exp of it directly", math.exp(weighted / math.log(2)))]
        for text, wrong in found:
            if abs(value - wrong) <= 1e-9 * abs(wrong):
                return text
        return ""


# -- sample_next -----------------------------------------------------------------------

def target_probabilities(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    """softmax(logits / T) over the top_k largest logits: what the draws must follow."""
    scaled = logits / temperature
    if top_k is not None:
        kept = torch.zeros_like(scaled, dtype=torch.bool).scatter(-1, scaled.topk(top_k, dim=-1).indices, True)
        scaled = scaled.masked_fill(~kept, float("-inf"))
    return torch.softmax(scaled, dim=-1)


class SampleNextCheck(OwnMessages, Check):
    name = "08-language-model/sample_next"
    student_name = "sample_next"
    reference_name = "rnn_by_hand.lm.generate.sample_next"
    forbidden_functions = ("rnn_by_hand.lm.generate.sample_next",)
    forbidden_reason = RNNLM_REASON
    ok_text = ("returns the argmax near temperature 0, and otherwise draws reproducibly from "
               "softmax(logits / temperature) over the top_k (within 4 standard errors)")
    failure_text = "does not sample as rnn_by_hand.lm.generate.sample_next"

    VISIBLE = [dict(V=7, rows=3, draws=20000, temperature=1.0, top_k=None),
               dict(V=8, rows=2, draws=20000, temperature=0.7, top_k=3),
               dict(V=6, rows=4, draws=1, temperature=0.0, top_k=None)]
    HIDDEN = [dict(V=10, rows=2, draws=20000, temperature=2.0, top_k=None),
              dict(V=10, rows=2, draws=20000, temperature=1.5, top_k=3),
              dict(V=12, rows=5, draws=1, temperature=1e-9, top_k=None),
              dict(V=8, rows=3, draws=1, temperature=0.0, top_k=2),
              dict(V=8, rows=2, draws=20000, temperature=1.5, top_k=2)]
    STANDARD_ERRORS = 4

    def make_tensors(self, config):
        rows = [self.row(config["V"], config["top_k"]) for _ in range(config["rows"])]
        return {"logits": torch.stack(rows),                       # (rows, V)
                "generator_seed": torch.randint(0, 2**31 - 1, ())}

    @staticmethod
    def row(V: int, k: int | None) -> torch.Tensor:
        """One row of logits (V,) on which every classic mistake changes the distribution a lot.

        With top_k, the k kept logits spread over [0, 2] (so the temperature matters), the others
        sit just below them (so keeping them, or giving them logit 0, moves much probability),
        and the k largest are never the first k ids (top-k by value, not by index).
        """
        if k is None:
            return 1.5 * torch.randn(V, dtype=DTYPE)
        kept = torch.linspace(2, 0, k, dtype=DTYPE) + 0.1 * torch.randn(k, dtype=DTYPE)
        rest = kept.min() - 0.05 - 0.5 * torch.rand(V - k, dtype=DTYPE)
        values = torch.cat([kept, rest])
        while True:
            row = values[torch.randperm(V)]
            if not bool((row.topk(k).indices < k).all()):
                return row

    @staticmethod
    def logits(case) -> torch.Tensor:
        """(draws, rows, V): each row repeated `draws` times, so one call draws them all; (rows, V) if one draw."""
        logits = case.tensors["logits"]
        return logits if case.config["draws"] == 1 else logits.expand(case.config["draws"], *logits.shape)

    def draw(self, student, case, global_seed: int):
        """The student's draw, and whether it used torch's global generator (drew from it or reseeded it)."""
        generator = torch.Generator().manual_seed(int(case.tensors["generator_seed"]))
        what = f"sample_next(logits, temperature={case.config['temperature']}, top_k={case.config['top_k']})"
        with seeded(global_seed):
            before = torch.random.get_rng_state()
            ids = call_student(what, student, self.logits(case), temperature=case.config["temperature"],
                               top_k=case.config["top_k"], generator=generator)
            touched = not torch.equal(before, torch.random.get_rng_state())
        return ids, touched

    def error_hint(self, case, message):
        if case.config["temperature"] < 1e-8 and any(word in message for word in
                                                     ("inf", "nan", "ZeroDivisionError")):
            return (f"temperature={case.config['temperature']} is the limit of no randomness: "
                    "return the largest logit's id (argmax over the last dimension) instead of "
                    "dividing by it, which gives inf and nan")
        return ""

    def run_student(self, student, case):
        first, touched_first = self.draw(student, case, 1)
        again, touched_again = self.draw(student, case, 2)  # same generator seed, another global seed
        reproducible = isinstance(first, torch.Tensor) and isinstance(again, torch.Tensor) \
            and first.shape == again.shape and torch.equal(first, again)
        return {"ids": first, "reproducible": reproducible, "global_rng": touched_first or touched_again}

    def run_reference(self, case):
        generator = torch.Generator().manual_seed(int(case.tensors["generator_seed"]))
        ids = sample_next(self.logits(case), case.config["temperature"], case.config["top_k"], generator)
        if case.config["temperature"] < 1e-8:
            return {"ids": ids}
        return {"ids": ids, "probabilities": target_probabilities(case.tensors["logits"], case.config["temperature"],
                                                                  case.config["top_k"])}

    def compare(self, case, expected, actual):
        if actual["global_rng"] is True:
            return ["sample_next used torch's global random generator (it drew from it, or reseeded it "
                    "with torch.manual_seed): draw only from the generator passed in, "
                    "torch.multinomial(..., generator=generator), so that the caller's seed stays theirs"]
        ids, want = actual["ids"], expected["ids"]
        dims = ("n",) if case.config["draws"] == 1 else ("draw", "n")
        layout = "(rows,): one id per row of logits" if case.config["draws"] == 1 \
            else "(draws, rows): logits (..., V) gives ids (...)"
        if "probabilities" not in expected:  # temperature 0: the argmax, exactly
            problems = compare_tensor("ids", want, ids, dims=dims, layout=layout)
            return [p + ": with temperature near 0 the draw is the argmax of each row" if "expected" in p
                    and "shape" not in p else p for p in problems]
        if not isinstance(ids, torch.Tensor) or ids.shape != want.shape or ids.dtype != torch.long:
            return compare_tensor("ids", want, ids, dims=dims, layout=layout)  # names the shape or dtype
        V, k = case.config["V"], case.config["top_k"]
        if bool(((ids < 0) | (ids >= V)).any()):
            return [f"ids holds {int(ids.min())} to {int(ids.max())}, outside the vocabulary 0 .. {V - 1}"]
        if k is not None:
            allowed = case.tensors["logits"].topk(k, dim=-1).indices  # (rows, k)
            inside = (ids.unsqueeze(-1) == allowed).any(-1)          # (draws, rows)
            if not bool(inside.all()):
                draw, row = (int(i) for i in (~inside).nonzero()[0])
                return [f"ids[draw={draw}, n={row}] is {int(ids[draw, row])}, which is not among the top_k={k} "
                        f"largest logits of row {row} (indices {sorted(allowed[row].tolist())}); "
                        f"{int((~inside).sum())} of {inside.numel()} draws fall outside them"]
        problems = self.compare_distribution(case, expected["probabilities"], ids)
        if not problems and not actual["reproducible"]:
            problems.append("two calls with generators seeded alike gave different draws (the global seed "
                            "differed): draw with torch.multinomial(..., generator=generator) so that a seed "
                            "reproduces a text")
        return problems

    def bound(self, probabilities: torch.Tensor, draws: int) -> torch.Tensor:
        """Total-variation bound per row: half the sum of STANDARD_ERRORS standard errors per word.

        A frequency of p over n draws has standard error sqrt(p (1 - p) / n); a correct sampler's
        |frequency - p| averages 0.8 of it, so its total variation sits near a fifth of this bound.
        """
        return 0.5 * self.STANDARD_ERRORS * (probabilities * (1 - probabilities) / draws).sqrt().sum(-1)

    @staticmethod
    def frequencies(ids: torch.Tensor, V: int) -> torch.Tensor:
        """(rows, V): how often each id was drawn in each row."""
        counts = F.one_hot(ids, V).sum(0).to(DTYPE)  # (rows, V)
        return counts / ids.shape[0]

    def distances(self, case, probabilities, ids) -> torch.Tensor:
        return 0.5 * (self.frequencies(ids, case.config["V"]) - probabilities).abs().sum(-1)  # (rows,)

    def compare_distribution(self, case, probabilities, ids) -> list[str]:
        tv, bound = self.distances(case, probabilities, ids), self.bound(probabilities, case.config["draws"])
        bad = (tv > bound).nonzero()
        if not len(bad):
            return []
        row = int(bad[0])
        freq = self.frequencies(ids, case.config["V"])[row]
        show = ", ".join(f"{f:.3f}" for f in freq.tolist())
        want = ", ".join(f"{p:.3f}" for p in probabilities[row].tolist())
        return [f"the {case.config['draws']} draws of row {row} do not follow softmax(logits / temperature)"
                + (f" over the top_k={case.config['top_k']} largest logits" if case.config["top_k"] else "")
                + f": frequencies [{show}], expected probabilities [{want}]; total-variation distance "
                f"{float(tv[row]):.3f}, above the bound {float(bound[row]):.3f} ({self.STANDARD_ERRORS} standard "
                "errors per word, which a correct sampler stays well below)"]

    def hint(self, case, actual):
        ids, T, k = actual["ids"], case.config["temperature"], case.config["top_k"]
        if T < 1e-8 or not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.dim() != 2 \
                or bool(((ids < 0) | (ids >= case.config["V"])).any()):
            return ""
        logits = case.tensors["logits"]
        found = [("your draws follow softmax(logits), as if temperature were 1 (dividing the probabilities by "
                  "T after the softmax changes nothing once they are normalised): divide the logits by the "
                  "temperature before the softmax", target_probabilities(logits, 1.0, k)),
                 ("your draws follow softmax(logits * temperature): divide the logits by the temperature",
                  target_probabilities(logits * T, 1.0, k))]
        if k is not None:
            first_k = torch.full_like(logits, float("-inf"))
            first_k[:, :k] = logits[:, :k] / T
            zeros = torch.zeros_like(logits).scatter(-1, logits.topk(k, dim=-1).indices,
                                                     logits.gather(-1, logits.topk(k, dim=-1).indices) / T)
            found += [("your draws keep the first top_k ids, not the top_k largest logits: use torch.topk",
                       torch.softmax(first_k, -1)),
                      ("your draws ignore top_k: keep only the k largest logits (set the others to -inf)",
                       target_probabilities(logits, T, None)),
                      ("the logits outside the top k were set to 0, which still has probability exp(0): set them "
                       "to -inf so that the softmax gives them probability 0", torch.softmax(zeros, -1))]
        expected = target_probabilities(logits, T, k)
        for text, wrong in found:
            if (self.distances(case, wrong, ids) <= self.bound(wrong, case.config["draws"])).all() \
                    and not torch.allclose(wrong, expected):
                return text
        return ""


check_batchify = BatchifyCheck()
check_get_batch = GetBatchCheck()
check_language_model = LanguageModelCheck()
check_corpus_perplexity = CorpusPerplexityCheck()
check_sample_next = SampleNextCheck()
