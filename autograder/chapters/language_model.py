"""Checks for chapter 8, a word-level language model.

    batchify_padded(data, batch_size, pad_id)     vs padded_columns: the remainder kept, padded with pad_id
    get_batch_first(source, i, bptt)              vs batch_first_window: get_batch's window, batch-first
    LanguageModel (__init__'s proj and decoder, forward, init_hidden)
                                                  vs TiedModel: a decoder tied to the embedding, through a
                                                     projection when nhid != ninp
    padded_perplexity(model, source, bptt, pad_id)
                                                  vs padded_reference: pad targets ignored and not counted
    sample_text(model, chars, prompt, length, temperature, generator)
                                                  vs sample_by_hand: a character-level sampling loop

The chapter's own batchify, get_batch, model, perplexity and word-level sampler are in
`rnn_by_hand.lm`, which a student can read; every exercise therefore asks for a neighbour
(padding instead of dropping, batch-first windows, tying when the widths differ, perplexity
that ignores padding, a character-level loop drawing from a generator passed in), checked
against references written here (padded_columns, batch_first_window, TiedModel,
padded_losses, sample_by_hand on the small TinyLM), which tests/chapters/test_language_model.py
tests against independent formulations. Sampling is checked by value: with the same seeded
generator, the same draws in the same order give the same text.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from rnn_by_hand.lm.data import get_batch
from rnn_by_hand.lm.model import RNNModel

from ..checking import (Case, Check, CheckFailure, OwnMessages, call_student, describe_config, seeded, state_of,
                        unpack_pair, with_state)
from ..checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ..common import DTYPE

ASSIGNMENT = "08-language-model"

# The answers exist in the book's package, so while student code runs rnn_by_hand.lm's own
# versions raise ForbiddenCall (see checking.forbid.forbid_functions): an answer must be written.
RNNLM_REASON = "this exercise asks you to write it yourself; rnn_by_hand.lm is what it is checked against"
# The neighbours of rnn_by_hand.lm's functions: neither the package nor the check's reference may do the work.
OWN_REASON = "this exercise asks you to write it yourself, from the chapter's rnn_by_hand.lm code"


def random_ids(*shape: int, ntoken: int = 1000) -> torch.Tensor:
    return torch.randint(0, ntoken, shape, dtype=torch.long)


def same_ids(expected: torch.Tensor, actual) -> bool:
    """Integer tensors equal in shape and value (`matches` is for floats)."""
    return isinstance(actual, torch.Tensor) and actual.shape == expected.shape \
        and not actual.dtype.is_floating_point and torch.equal(actual.long(), expected.long())


# -- batchify_padded -----------------------------------------------------------------

def padded_columns(data: torch.Tensor, batch_size: int, pad_id: int) -> torch.Tensor:
    """The check's own padded batchify: the stream, padded at its end, as contiguous columns."""
    rows = -(-data.numel() // batch_size)                                  # ceil(T / N)
    stream = torch.cat([data, data.new_full((rows * batch_size - data.numel(),), pad_id)])
    return stream.view(batch_size, rows).t().contiguous()                  # (rows, N)


class BatchifyPaddedCheck(OwnMessages, Check):
    name = "08-language-model/batchify_padded"
    student_name = "batchify_padded"
    reference_name = "the stream padded at its end with pad_id, cut into contiguous columns"
    forbidden_functions = ("rnn_by_hand.lm.data.batchify", "rnn_by_hand.chapters.language_model.padded_columns")
    forbidden_reason = OWN_REASON
    ok_text = "keeps every token, in contiguous columns padded at the end"
    failure_text = "differs from the padded columns expected"

    PARTS = {"remainder padded": lambda config: config["T"] % config["batch_size"] != 0,
             "exact fit": lambda config: config["T"] % config["batch_size"] == 0}

    VISIBLE = [dict(T=23, batch_size=4, pad_id=999), dict(T=17, batch_size=5, pad_id=1000),
               dict(T=30, batch_size=3, pad_id=999)]
    HIDDEN = [dict(T=41, batch_size=6, pad_id=1001), dict(T=50, batch_size=7, pad_id=999),
              dict(T=29, batch_size=2, pad_id=1000), dict(T=64, batch_size=8, pad_id=999)]

    def make_tensors(self, config):
        return {"data": random_ids(config["T"], ntoken=999)}  # ids 0 .. 998: pad_id is none of them

    def run_student(self, student, case):
        c = case.config
        return {"result": call_student(self.student_name, student, case.tensors["data"], c["batch_size"],
                                       c["pad_id"])}

    def run_reference(self, case):
        c = case.config
        return {"result": padded_columns(case.tensors["data"], c["batch_size"], c["pad_id"])}

    def compare(self, case, expected, actual):
        return compare_tensor("result", expected["result"], actual["result"], dims=("row", "col"),
                              layout="(rows, batch) = (ceil(T / batch_size), batch_size)")

    def hint(self, case, actual):
        data, batch, pad = case.tensors["data"], case.config["batch_size"], case.config["pad_id"]
        result, T = actual["result"], data.numel()
        if not isinstance(result, torch.Tensor):
            return ""
        rows = -(-T // batch)
        missing = rows * batch - T
        if T % batch and tuple(result.shape) == (T // batch, batch):
            return (f"your result has {T // batch} rows: that drops the last {T % batch} tokens, as the "
                    "chapter's batchify does; keep them, with ceil(T / batch_size) rows and pad_id after them")
        padding = data.new_full((missing,), pad)
        front = torch.cat([padding, data]).view(batch, rows).t()
        zeros = torch.cat([data, torch.zeros_like(padding)]).view(batch, rows).t()
        stream = torch.cat([data, padding])
        if missing and same_ids(front, result):
            return ("your padding comes first: pad the end of the stream, so that every column but the last "
                    "is all text and the last column's text ends in pad_id")
        if missing and same_ids(zeros, result):
            return "your padding is 0, a real word id: fill with pad_id, which no word uses"
        if same_ids(stream.view(batch, rows), result):
            return ("your result is (batch, rows): a view as (batch_size, -1) puts each column's text "
                    "in a row; transpose it (.t()) to get the time-major (rows, batch)")
        if same_ids(stream.view(rows, batch), result):
            return ("the shape is right but each column holds every batch_size-th token: view the padded "
                    "stream as (batch_size, rows) and transpose, so column j is one contiguous piece")
        return ""


# -- get_batch_first ---------------------------------------------------------------

def batch_first_window(source: torch.Tensor, i: int, bptt: int):
    """The check's reference: the chapter's window at row i, batch-first. The targets follow
    the order in which a (N, seq_len, ntoken) logits tensor's .view(-1, ntoken) lists its
    predictions: sample 0's steps, then sample 1's, ...

        source (rows, N)        inputs (N, seq_len)       targets (N * seq_len,)
        row i      a e i        a b                       b c | f g | j k
        row i + 1  b f j   ->   e f                  sample 0 | 1   | 2
        row i + 2  c g k        i j
    """
    inputs, targets = get_batch(source, i, bptt)                  # (seq_len, N), (seq_len * N,)
    return inputs.t().contiguous(), targets.view(inputs.shape).t().reshape(-1)


class GetBatchFirstCheck(OwnMessages, Check):
    name = "08-language-model/get_batch_first"
    student_name = "get_batch_first"
    reference_name = "rnn_by_hand.lm.data.get_batch's window, batch-first"
    forbidden_functions = ("rnn_by_hand.lm.data.get_batch",
                           "rnn_by_hand.chapters.language_model.batch_first_window")
    forbidden_reason = OWN_REASON
    ok_text = "gives every window batch-first, its targets in the order of a batch-first model's logits"
    failure_text = "differs from the batch-first window expected"

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
            what = f"get_batch_first(source, i={i}, bptt={case.config['bptt']})"
            result = call_student(what, student, case.tensors["source"], i, case.config["bptt"])
            x, y = unpack_pair(what, result, ("inputs", "targets"))
            inputs.append(x)
            targets.append(y)
        return {"inputs": inputs, "targets": targets}

    def run_reference(self, case):
        pairs = [batch_first_window(case.tensors["source"], i, case.config["bptt"]) for i in self.starts(case)]
        return {"inputs": [x for x, _ in pairs], "targets": [y for _, y in pairs]}

    def compare(self, case, expected, actual):
        if not isinstance(actual["inputs"], list) or len(actual["inputs"]) != len(expected["inputs"]):
            return ["the windows could not be read back"]
        for i, want_x, want_y, got_x, got_y in zip(self.starts(case), expected["inputs"], expected["targets"],
                                                   actual["inputs"], actual["targets"]):
            seq_len = want_x.shape[1]
            problems = compare_tensor(f"inputs (window at i={i})", want_x, got_x, dims=("n", "t"),
                                      layout=f"(batch, seq_len) with seq_len = min(bptt, rows - 1 - i) = {seq_len}")
            problems += compare_tensor(f"targets (window at i={i})", want_y, got_y, dims=("k",),
                                       layout=f"(batch * seq_len,) = ({case.config['batch']} * {seq_len},), "
                                              "sample 0's steps first")
            if problems:
                return problems
        return []

    def error_hint(self, case, message):
        if "view size is not compatible" in message:
            return ("after .t() the window is not contiguous in memory, so .view(-1) cannot flatten it: "
                    "use .reshape(-1), which copies when it must")
        return ""

    def hint(self, case, actual):
        source, bptt = case.tensors["source"], case.config["bptt"]
        for i, got_x, got_y in zip(self.starts(case), actual["inputs"], actual["targets"]):
            x, y = batch_first_window(source, i, bptt)
            seq_len = x.shape[1]
            if same_ids(x, got_x) and same_ids(y, got_y):
                continue
            following = source[i + 1: i + 1 + seq_len]                  # (seq_len, batch)
            if same_ids(source[i: i + bptt].t(), got_x) and seq_len < bptt:
                return (f"at i={i} only {seq_len} rows have a next word: seq_len = min(bptt, rows - 1 - i). "
                        "Your last window takes bptt rows, so its last input step has no target")
            if same_ids(x.t(), got_x):
                return ("your inputs are (seq_len, batch), time-major as the chapter's get_batch gives them: "
                        "a batch_first model reads (batch, seq_len), so transpose the window (.t())")
            if same_ids(x.reshape(-1), got_y):
                return ("your targets are the inputs: the target of each word is the next one, "
                        "source[i + 1 : i + 1 + seq_len]")
            if same_ids(following.reshape(-1), got_y):
                return ("your targets are flattened row by row, the time-major order: a batch_first model's "
                        "(batch, seq_len, ntoken) logits list sample 0's steps first in .view(-1, ntoken), "
                        "so transpose the slice before you flatten it")
            if same_ids(following.t(), got_y) or same_ids(following, got_y):
                return ("your targets are 2-D: flatten them to (batch * seq_len,), sample by sample, the "
                        "order of logits.view(-1, ntoken) in the loss")
            return ""
        return ""


# -- LanguageModel ------------------------------------------------------------------

MODEL_ARGS = ("rnn_type", "ntoken", "ninp", "nhid", "nlayers", "dropout")


def model_args(config: dict) -> dict:
    return {k: config[k] for k in MODEL_ARGS}


class TiedModel(nn.Module):
    """The check's reference for LanguageModel: the chapter's embedding, dropout and core
    (built by RNNModel), a projection from nhid to ninp when they differ, and a decoder that
    shares the embedding's table (Press & Wolf 2017; Inan et al. 2017).

        input (L, N) -> encoder -> drop -> rnn -> drop -> proj -> decoder -> logits
                        (L, N, ninp)       (L, N, nhid)   (L, N, ninp)  (L, N, ntoken)
        decoder.weight is encoder.weight: one (ntoken, ninp) table, trained by both uses

    RNNModel itself refuses to tie when nhid != ninp: the projection is the neighbour the
    exercise asks for. tests/chapters/test_language_model.py tests this class against an
    explicit formula and RNNModel(tie_weights=True) where nhid == ninp.
    """

    def __init__(self, rnn_type: str, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float):
        super().__init__()
        chapter = RNNModel(rnn_type, ntoken, ninp, nhid, nlayers, dropout)
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers
        self.drop, self.encoder, self.rnn = chapter.drop, chapter.encoder, chapter.rnn
        self.proj = nn.Linear(nhid, ninp, bias=False) if nhid != ninp else nn.Identity()
        self.decoder = nn.Linear(ninp, ntoken)
        self.decoder.weight = self.encoder.weight

    def forward(self, input, hidden):
        return forward_variant(self, input, hidden)

    def init_hidden(self, batch_size: int):
        zeros = self.encoder.weight.new_zeros(self.nlayers, batch_size, self.nhid)   # (nlayers, N, nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros


def reference_model(config: dict, state: dict | None = None) -> TiedModel:
    """The reference in float64, with the case's weights when `state` is given."""
    model = TiedModel(**model_args(config)).to(DTYPE)
    if state is not None:
        model.load_state_dict(state)
    return model


def hidden_of(case: Case):
    """The initial state the case feeds: random, so that ignoring it shows."""
    t = case.tensors
    return (t["h_0"], t["c_0"]) if case.config["rnn_type"] == "LSTM" else t["h_0"]


def forward_variant(model: TiedModel, x, hidden, *, seed=None, drop_in=True, drop_out=True,
                    pass_hidden=True, drop_after_proj=False):
    """The reference's forward, with switches for the classic mistakes (read by the hints);
    `seed` reseeds dropout's draws first."""
    with seeded(seed) if seed is not None else contextlib.nullcontext():
        emb = model.encoder(x)                                        # (L, N, ninp)
        emb = model.drop(emb) if drop_in else emb
        output, h_n = model.rnn(emb, hidden if pass_hidden else None)  # (L, N, nhid)
        if drop_after_proj:
            return model.decoder(model.drop(model.proj(output))), h_n
        output = model.drop(output) if drop_out else output
        return model.decoder(model.proj(output)), h_n                 # (L, N, ntoken)


def parameter_count(model: nn.Module) -> int:
    """Distinct parameters' entries: a shared table counts once, as parameters() lists it once."""
    return sum(p.numel() for p in model.parameters())


class LanguageModelCheck(Check):
    name = "08-language-model/LanguageModel"
    student_name = "LanguageModel"
    reference_name = "a decoder tied to the embedding through a projection (the check's TiedModel)"
    kind = "class"
    forbidden_functions = ("rnn_by_hand.lm.model.RNNModel.__init__", "rnn_by_hand.lm.model.RNNModel.forward",
                           "rnn_by_hand.lm.model.RNNModel.init_hidden",
                           "rnn_by_hand.chapters.language_model.TiedModel.__init__",
                           "rnn_by_hand.chapters.language_model.TiedModel.forward",
                           "rnn_by_hand.chapters.language_model.forward_variant")
    forbidden_reason = OWN_REASON

    PARTS = {"nhid == ninp, tied directly": lambda config: config["nhid"] == config["ninp"],
             "nhid != ninp, tied through proj": lambda config: config["nhid"] != config["ninp"]}

    VISIBLE = [dict(rnn_type="LSTM", ntoken=20, ninp=6, nhid=8, nlayers=2, dropout=0.3, L=5, N=3),
               dict(rnn_type="GRU", ntoken=15, ninp=6, nhid=6, nlayers=1, dropout=0.2, L=4, N=2),
               dict(rnn_type="RNN_TANH", ntoken=12, ninp=6, nhid=4, nlayers=2, dropout=0.0, L=6, N=2),
               dict(rnn_type="RNN_RELU", ntoken=10, ninp=5, nhid=5, nlayers=1, dropout=0.5, L=3, N=4)]
    HIDDEN = [dict(rnn_type="LSTM", ntoken=25, ninp=7, nhid=7, nlayers=1, dropout=0.4, L=7, N=4),
              dict(rnn_type="GRU", ntoken=18, ninp=6, nhid=9, nlayers=3, dropout=0.25, L=5, N=2),
              dict(rnn_type="RNN_RELU", ntoken=14, ninp=5, nhid=9, nlayers=2, dropout=0.3, L=4, N=3),
              dict(rnn_type="RNN_TANH", ntoken=11, ninp=8, nhid=4, nlayers=1, dropout=0.0, L=6, N=1)]

    def make_tensors(self, config):
        L, N, layers, H = config["L"], config["N"], config["nlayers"], config["nhid"]
        tensors = with_state(reference_model(config))
        tensors["input"] = random_ids(L, N, ntoken=config["ntoken"])        # (L, N)
        tensors["h_0"] = torch.randn(layers, N, H, dtype=DTYPE)             # (nlayers, N, nhid)
        if config["rnn_type"] == "LSTM":
            tensors["c_0"] = torch.randn(layers, N, H, dtype=DTYPE)
        tensors["dropout_seed"] = torch.randint(0, 2**31 - 1, ())
        # d(loss)/d(logits) for the gradient check: random, so that every use of the table shows
        tensors["grad_logits"] = torch.randn(L, N, config["ntoken"], dtype=DTYPE)
        return tensors

    def run_student(self, student, case):
        args, t = model_args(case.config), case.tensors
        built = f"LanguageModel({describe_config(args)})"
        model = call_student(built, student, **args)
        if not isinstance(model, nn.Module):
            raise CheckFailure(f"{built} should be an nn.Module, got {type_name(model)}")
        model = model.to(DTYPE)
        self.load_reference_state(built, model, case)
        encoder, decoder = getattr(model, "encoder", None), getattr(model, "decoder", None)
        result = {"tied": getattr(decoder, "weight", None) is getattr(encoder, "weight", False),
                  "parameter_count": parameter_count(model),
                  "init_hidden": call_student(f"{built}.init_hidden", model.init_hidden, case.config["N"])}
        x, h = t["input"], hidden_of(case)
        half = case.config["L"] // 2
        model.eval()
        with torch.no_grad():
            result["logits"], result["hidden"] = self.forward(built, model, x, h)
            first, carried = self.forward(f"{built}.forward on the first {half} steps", model, x[:half], h)
            second, _ = self.forward(f"{built}.forward on the remaining steps, given the hidden state "
                                     "that the first part returned", model, x[half:], carried)
            result["logits_halves"] = torch.cat([first, second]) if self.tensors(first, second) else first
        result["table_grad"] = self.table_grad(built, model, x, h, t["grad_logits"])
        if case.config["dropout"] > 0:
            model.train()
            with torch.no_grad(), seeded(int(t["dropout_seed"])):
                result["logits_train"], _ = self.forward(f"{built}.forward in train mode", model, x, h)
        return result

    def load_reference_state(self, built, model, case) -> None:
        """The reference's weights into the student's model, or one line on what differs."""
        want = set(state_of(case.tensors))
        have = set(model.state_dict())
        c = case.config
        if "proj.weight" in want - have:
            raise CheckFailure(f"{built} has no proj.weight: with nhid={c['nhid']} != ninp={c['ninp']} the "
                               "tied decoder reads ninp features, so project the core's output first, "
                               "self.proj = nn.Linear(nhid, ninp, bias=False)")
        if "proj.weight" in have - want:
            raise CheckFailure(f"{built} has a proj.weight, but nhid == ninp = {c['ninp']}: the output already "
                               "fits the table, so use self.proj = nn.Identity() (no parameters)")
        if "proj.bias" in have:
            raise CheckFailure(f"{built} has a proj.bias: the projection has no bias, "
                               "nn.Linear(nhid, ninp, bias=False); the decoder's bias is the only one")
        try:
            model.load_state_dict(state_of(case.tensors))
        except Exception as error:  # noqa: BLE001
            first_line = str(error).strip().splitlines()[-1].strip()
            raise CheckFailure(f"{built}.load_state_dict(the reference's state_dict()) failed: {first_line}. "
                               "Keep the submodules __init__ creates (encoder, rnn, drop), and add proj "
                               "and decoder") from None

    def table_grad(self, built, model, x, hidden, grad_logits):
        """d(sum(logits * grad_logits))/d(encoder.weight) in eval mode: a tied table gathers the
        embedding's and the decoder's gradients; an untied one only the embedding's."""
        encoder = getattr(model, "encoder", None)
        if not isinstance(getattr(encoder, "weight", None), torch.Tensor):
            return None
        model.zero_grad(set_to_none=True)
        logits, _ = self.forward(f"{built}.forward", model, x, hidden)
        if not isinstance(logits, torch.Tensor) or logits.shape != grad_logits.shape or not logits.requires_grad:
            return None
        logits.backward(grad_logits)
        grad = encoder.weight.grad
        model.zero_grad(set_to_none=True)
        return None if grad is None else grad.detach().clone()

    @staticmethod
    def tensors(*values) -> bool:
        return all(isinstance(v, torch.Tensor) for v in values)

    def forward(self, what, model, x, hidden):
        return unpack_pair(what, call_student(what, model, x, hidden), ("logits", "hidden"))

    def run_reference(self, case):
        model, t = reference_model(case.config, state_of(case.tensors)), case.tensors
        x, h = t["input"], hidden_of(case)
        expected = {"init_hidden": model.init_hidden(case.config["N"]), "parameter_count": parameter_count(model)}
        model.eval()
        with torch.no_grad():
            expected["logits"], expected["hidden"] = model(x, h)
        logits, _ = model(x, h)
        logits.backward(t["grad_logits"])
        expected["table_grad"] = model.encoder.weight.grad.detach().clone()
        if case.config["dropout"] > 0:
            model.train()
            with torch.no_grad(), seeded(int(t["dropout_seed"])):
                expected["logits_train"], _ = model(x, h)
        return expected

    def compare(self, case, expected, actual):
        if not actual["tied"]:
            return ["decoder.weight is not encoder.weight: tie them, self.decoder.weight = self.encoder.weight, "
                    "so that one (ntoken, ninp) table serves both (copying the values is not tying)"]
        if actual["parameter_count"] != expected["parameter_count"]:
            return [f"your model has {actual['parameter_count']} parameters, expected "
                    f"{expected['parameter_count']}: the embedding's table is shared, the projection has no bias"]
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
        problems += compare_tensor("the gradient of encoder.weight, the shared table (eval mode)",
                                   expected["table_grad"], actual["table_grad"], dims=("word", "j"),
                                   layout="(ntoken, ninp): the embedding's and the decoder's uses summed",
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

    @torch.no_grad()
    def hint(self, case, actual):
        model, t = reference_model(case.config, state_of(case.tensors)), case.tensors
        x, h = t["input"], hidden_of(case)
        model.eval()
        logits, h_n = forward_variant(model, x, h)
        top = (h_n[0] if isinstance(h_n, tuple) else h_n)  # (nlayers, N, nhid)
        decoded = model.decoder(model.proj(top)).detach()
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
                       {"logits_train": forward_variant(model, x, h, seed=seed, drop_in=False)[0]}),
                      ("in train mode your dropout acts on the projection's output: apply self.drop to the "
                       "rnn's output, then project",
                       {"logits_train": forward_variant(model, x, h, seed=seed, drop_after_proj=True)[0]})]
        return first_matching_mistake(case, expected, actual, found)


# -- padded_perplexity ---------------------------------------------------------------

class TinyLM(nn.Module):
    """Embedding -> GRU or LSTM -> Linear, time-major: the check's own small language model.

    A plain composition of torch.nn modules, with the interface of the chapter's model:
    forward(input (L, N), hidden) -> (logits (L, N, V), hidden) and init_hidden(N).
    """

    def __init__(self, rnn_type: str, ntoken: int, ninp: int, nhid: int, nlayers: int):
        super().__init__()
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers
        self.encoder = nn.Embedding(ntoken, ninp, dtype=DTYPE)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dtype=DTYPE)
        self.decoder = nn.Linear(nhid, ntoken, dtype=DTYPE)

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)   # (L, N, nhid)
        return self.decoder(output), hidden                       # (L, N, ntoken)

    def init_hidden(self, batch_size: int):
        zeros = self.decoder.weight.new_zeros(self.nlayers, batch_size, self.nhid)   # (nlayers, N, nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros


def tiny_lm(config: dict, tensors: dict | None = None) -> TinyLM:
    """The case's TinyLM, drawn with larger embedding and decoder weights than the default (std 3),
    so that its predictions are far from uniform and depend on the last characters read: a
    sampler that draws from the wrong position's logits then draws other characters."""
    model = TinyLM(config["rnn_type"], config["ntoken"], config["ninp"], config["nhid"], config["nlayers"])
    if tensors is None:
        with torch.no_grad():
            model.encoder.weight.normal_(std=3.0)
            model.decoder.weight.normal_(std=3.0)
    else:
        model.load_state_dict(state_of(tensors))
    return model


def training_flags(model: nn.Module) -> list[bool]:
    """model.training at each of the model's forward calls from now on, appended as they happen:
    an answer must evaluate (and sample) in eval mode, whether or not this model has dropout."""
    flags: list[bool] = []
    model.register_forward_pre_hook(lambda module, args: flags.append(module.training))
    return flags


def padded_losses(model, source, bptt: int, pad_id: int, *, carry=True, ignore=True):
    """(summed loss, real target tokens, all target tokens) of every window, in nats, with the check's own
    loop: pad_id targets are ignored (ignore=False counts them as words); carry=False starts every
    window from zeros. The reference, and (read in mistaken ways) the hints."""
    model.eval()
    hidden, windows = model.init_hidden(source.size(1)), []
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, bptt):
            seq_len = min(bptt, source.size(0) - 1 - i)
            inputs, targets = source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)
            logits, hidden = model(inputs, hidden if carry else model.init_hidden(source.size(1)))
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets, reduction="sum",
                                   ignore_index=pad_id if ignore else -100)
            windows.append((loss.item(), int((targets != pad_id).sum()), targets.numel()))
    return windows


def padded_reference(model, source, bptt: int, pad_id: int) -> float:
    windows = padded_losses(model, source, bptt, pad_id)
    return math.exp(sum(w[0] for w in windows) / sum(w[1] for w in windows))


class PaddedPerplexityCheck(Check):
    name = "08-language-model/padded_perplexity"
    student_name = "padded_perplexity"
    reference_name = "exp of the mean cross-entropy over the split's real target tokens"
    forbidden_functions = ("rnn_by_hand.lm.evaluate.perplexity", "rnn_by_hand.lm.evaluate.cross_entropy",
                           "rnn_by_hand.chapters.language_model.padded_losses",
                           "rnn_by_hand.chapters.language_model.padded_reference")
    forbidden_reason = OWN_REASON

    PARTS = {"padded source": lambda config: config["padding"] > 0,
             "no padding": lambda config: config["padding"] == 0}

    VISIBLE = [dict(rnn_type="LSTM", ntoken=30, ninp=8, nhid=10, nlayers=2, rows=23, batch=3, bptt=5, padding=9),
               dict(rnn_type="GRU", ntoken=25, ninp=6, nhid=8, nlayers=1, rows=18, batch=2, bptt=4, padding=5),
               # rows - 1 a multiple of bptt: the windows tile the source, and a loop that runs one
               # window too far or stops one short shows
               dict(rnn_type="GRU", ntoken=20, ninp=5, nhid=7, nlayers=1, rows=13, batch=4, bptt=6, padding=0)]
    HIDDEN = [dict(rnn_type="LSTM", ntoken=40, ninp=10, nhid=12, nlayers=1, rows=30, batch=4, bptt=7, padding=11),
              dict(rnn_type="GRU", ntoken=35, ninp=7, nhid=9, nlayers=2, rows=20, batch=3, bptt=3, padding=4),
              dict(rnn_type="LSTM", ntoken=28, ninp=6, nhid=6, nlayers=1, rows=17, batch=5, bptt=5, padding=7),
              dict(rnn_type="GRU", ntoken=22, ninp=5, nhid=6, nlayers=1, rows=21, batch=3, bptt=5, padding=6)]

    def make_tensors(self, config):
        """The model, and a source as batchify_padded makes it: the last column's last `padding`
        entries are the pad id, ntoken - 1, a row of the vocabulary that the text never uses."""
        tensors = with_state(tiny_lm(config))
        source = random_ids(config["rows"], config["batch"], ntoken=config["ntoken"] - 1)   # (rows, N)
        if config["padding"]:
            source[-config["padding"]:, -1] = config["ntoken"] - 1
        tensors["source"] = source
        return tensors

    @staticmethod
    def model(case) -> TinyLM:
        """The case's model, left in training mode as after a training epoch."""
        return tiny_lm(case.config, case.tensors).train()

    def run_student(self, student, case):
        model, c = self.model(case), case.config
        modes = training_flags(model)
        value = call_student(self.student_name, student, model, case.tensors["source"], c["bptt"],
                             c["ntoken"] - 1)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        return {"perplexity": value, "train_mode_calls": sum(modes)}

    def run_reference(self, case):
        c = case.config
        return {"perplexity": padded_reference(self.model(case), case.tensors["source"], c["bptt"],
                                               c["ntoken"] - 1)}

    def compare(self, case, expected, actual):
        value, want = actual["perplexity"], expected["perplexity"]
        if type(value) not in (int, float):
            return [f"padded_perplexity should return a number (a Python float), got {type_name(value)}"]
        if not math.isfinite(value):
            return [f"padded_perplexity returned {value}, not a finite number"]
        if abs(value - want) > self.atol + self.rtol * abs(want):
            text = (f"padded_perplexity returned {value:.10g}, expected {want:.10g} (relative error "
                    f"{abs(value - want) / want:.3g}; tolerance rtol={self.rtol:g})")
            if abs(value - want) < 1e-5 * want:
                text += ": the error is as small as float32 rounding, so check for a float32 value in your computation"
            return [text]
        if actual["train_mode_calls"]:
            return [f"the model was in training mode for {actual['train_mode_calls']} of its forward calls: "
                    "call model.eval() before evaluating, so that a model with dropout has it off"]
        return []

    def hint(self, case, actual):
        value, c = actual["perplexity"], case.config
        if type(value) not in (int, float):
            return ""
        model, source, pad = self.model(case), case.tensors["source"], c["ntoken"] - 1
        right = padded_losses(model, source, c["bptt"], pad)
        loss, real, every = (sum(w[i] for w in right) for i in range(3))
        counted = padded_losses(model, source, c["bptt"], pad, ignore=False)
        fresh = padded_losses(model, source, c["bptt"], pad, carry=False)
        means = [w[0] / w[1] for w in right if w[1]]
        found = [("your value divides by every target, pads included: count only the targets that are not "
                  "pad_id, (targets != pad_id).sum()", math.exp(loss / every)),
                 ("your value counts the pads as words: pass ignore_index=pad_id to F.cross_entropy, and "
                  "count only the real targets", math.exp(sum(w[0] for w in counted) / every)),
                 ("your value leaves out the pads' counts but not their losses: pass ignore_index=pad_id "
                  "to F.cross_entropy", math.exp(sum(w[0] for w in counted) / real)),
                 ("your value gives every window the same weight: sum the per-token losses over the whole "
                  "split and divide by the number of real targets", math.exp(sum(means) / len(means))),
                 ("your value matches starting every window from a zero hidden state: carry the hidden state "
                  "from one window to the next", math.exp(sum(w[0] for w in fresh) / real)),
                 ("your value is the mean cross-entropy itself: perplexity is its exp", loss / real)]
        for text, wrong in found:
            if abs(value - wrong) <= 1e-9 * abs(wrong):
                return text
        return ""


# -- sample_text -----------------------------------------------------------------------

def sample_by_hand(model, chars: str, prompt: str, length: int, temperature: float, generator, *,
                   scale="divide", feed=True, carry=True):
    """Characters drawn one at a time from a character-level model, with the check's own loop; the
    keywords describe a mistaken reading (the reference reads them all rightly).

    scale: "divide" (logits / T), "ignore" (T = 1) or "multiply" (logits * T).
    feed: False feeds the prompt's last character at every step instead of the one just drawn.
    carry: False starts every step from model.init_hidden(1), keeping only the prompt's state.
    """
    model.eval()
    ids = torch.tensor([[chars.index(ch)] for ch in prompt])          # (len(prompt), 1)
    with torch.no_grad():
        logits, hidden = model(ids, model.init_hidden(1))             # (len(prompt), 1, V)
        after_prompt, out = hidden, []
        for _ in range(length):
            last = logits[-1, 0]                                      # (V,)
            if temperature < 1e-8:
                token = int(last.argmax())
            else:
                scaled = {"divide": last / temperature, "ignore": last, "multiply": last * temperature}[scale]
                token = int(torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator))
            out.append(chars[token])
            fed = token if feed else chars.index(prompt[-1])
            logits, hidden = model(torch.tensor([[fed]]), hidden if carry else after_prompt)
    return "".join(out)


class SampleTextCheck(OwnMessages, Check):
    name = "08-language-model/sample_text"
    student_name = "sample_text"
    reference_name = "the check's own sampling loop over the same model and generator"
    forbidden_functions = ("rnn_by_hand.lm.generate.sample_next", "rnn_by_hand.lm.generate.generate",
                           "rnn_by_hand.chapters.language_model.sample_by_hand")
    forbidden_reason = OWN_REASON
    ok_text = ("draws every character from softmax(logits / temperature) with the generator passed in, "
               "as the reference loop does, and the argmax at temperature 0")
    failure_text = "does not sample as the reference loop"

    PARTS = {"temperature > 0": lambda config: config["temperature"] > 1e-8,
             "temperature 0": lambda config: config["temperature"] <= 1e-8}

    VISIBLE = [dict(rnn_type="GRU", chars="abcdefgh .", ninp=6, nhid=8, nlayers=1, prompt=4, length=30,
                    temperature=1.0),
               dict(rnn_type="LSTM", chars="aeiou nrst", ninp=5, nhid=7, nlayers=2, prompt=3, length=25,
                    temperature=0.6),
               dict(rnn_type="GRU", chars="xyz ,.!", ninp=4, nhid=6, nlayers=1, prompt=5, length=20,
                    temperature=0.0)]
    HIDDEN = [dict(rnn_type="LSTM", chars="abcdefgh .", ninp=6, nhid=8, nlayers=1, prompt=3, length=30,
                   temperature=1.5),
              dict(rnn_type="GRU", chars="aeiou nrst", ninp=5, nhid=9, nlayers=2, prompt=4, length=25,
                   temperature=0.5),
              dict(rnn_type="LSTM", chars="xyz ,.!", ninp=4, nhid=6, nlayers=1, prompt=2, length=20,
                   temperature=0.0),
              dict(rnn_type="GRU", chars="aeiou nrst", ninp=6, nhid=6, nlayers=1, prompt=5, length=30,
                   temperature=0.8)]

    @staticmethod
    def model_config(config) -> dict:
        return dict(config, ntoken=len(config["chars"]))

    def make_tensors(self, config):
        tensors = with_state(tiny_lm(self.model_config(config)))
        tensors["prompt"] = torch.randint(0, len(config["chars"]), (config["prompt"],))
        tensors["generator_seed"] = torch.randint(0, 2**31 - 1, ())
        return tensors

    def model(self, case) -> TinyLM:
        return tiny_lm(self.model_config(case.config), case.tensors)

    @staticmethod
    def prompt(case) -> str:
        return "".join(case.config["chars"][i] for i in case.tensors["prompt"].tolist())

    def generator(self, case) -> torch.Generator:
        return torch.Generator().manual_seed(int(case.tensors["generator_seed"]))

    def draw(self, student, case, global_seed: int):
        """The student's text, and whether it used torch's global generator (drew from it or reseeded it)."""
        c = case.config
        what = f"sample_text(model, chars={c['chars']!r}, prompt={self.prompt(case)!r}, length={c['length']}, " \
               f"temperature={c['temperature']})"
        model, generator = self.model(case), self.generator(case)   # built first: init draws random numbers
        flags = training_flags(model)
        with seeded(global_seed):
            before = torch.random.get_rng_state()
            text = call_student(what, student, model, c["chars"], self.prompt(case), c["length"],
                                c["temperature"], generator)
            touched = not torch.equal(before, torch.random.get_rng_state())
        return text, touched, sum(flags)

    def run_student(self, student, case):
        text, touched_first, train_calls = self.draw(student, case, 1)
        again, touched_again, _ = self.draw(student, case, 2)   # same generator seed, another global seed
        return {"text": text, "ids": self.ids(case, text), "reproducible": text == again,
                "global_rng": touched_first or touched_again, "train_mode_calls": train_calls}

    @staticmethod
    def ids(case, text) -> torch.Tensor | None:
        """The text's character ids (what is compared), or None for a text with other characters."""
        chars = case.config["chars"]
        if not isinstance(text, str) or any(ch not in chars for ch in text):
            return None
        return torch.tensor([chars.index(ch) for ch in text], dtype=torch.long)

    def run_reference(self, case):
        c = case.config
        text = sample_by_hand(self.model(case), c["chars"], self.prompt(case), c["length"], c["temperature"],
                              self.generator(case))
        return {"text": text, "ids": self.ids(case, text)}

    def error_hint(self, case, message):
        if case.config["temperature"] < 1e-8 and any(word in message for word in
                                                     ("inf", "nan", "ZeroDivisionError")):
            return (f"temperature={case.config['temperature']} is the limit of no randomness: take the "
                    "largest logit's id (the argmax) instead of dividing by it, which gives inf and nan")
        return ""

    def compare(self, case, expected, actual):
        if actual["global_rng"] is True:
            return ["sample_text used torch's global random generator (it drew from it, or reseeded it "
                    "with torch.manual_seed): draw only from the generator passed in, "
                    "torch.multinomial(..., generator=generator), so that the caller's seed stays theirs"]
        text, want, chars = actual["text"], expected["text"], case.config["chars"]
        if not isinstance(text, str):
            return [f"sample_text should return a str, the {case.config['length']} characters drawn, got "
                    f"{type_name(text)}"]
        ids = actual["ids"]
        if not isinstance(ids, torch.Tensor):
            return [f"your text {text!r} has characters that are not in chars={chars!r}"]
        if ids.shape != expected["ids"].shape or not torch.equal(ids, expected["ids"]):
            text = "".join(chars[i] if 0 <= i < len(chars) else "?" for i in ids.tolist())
            at = next((i for i, (a, b) in enumerate(zip(text, want)) if a != b), min(len(text), len(want)))
            return [f"your text {text!r} ({len(text)} characters) differs from the expected {want!r} "
                    f"({len(want)} characters) from character {at} on"]
        if not actual["reproducible"]:
            return ["two calls with generators seeded alike gave different texts: draw with "
                    "torch.multinomial(..., generator=generator) so that a seed reproduces a text"]
        if actual["train_mode_calls"]:
            return [f"the model was in training mode for {actual['train_mode_calls']} of its forward calls: "
                    "call model.eval() before sampling, so that a model with dropout has it off"]
        return []

    def hint(self, case, actual):
        text, c = actual["text"], case.config
        if not isinstance(text, str) or actual["global_rng"] is True:
            return ""
        prompt, right = self.prompt(case), self.run_reference(case)["text"]
        if text == right:
            return ""   # the text is right: what is wrong is not in it (the mode, the generator)
        if text.startswith(prompt) and text[len(prompt):] == right:
            return "your text starts with the prompt: return only the characters drawn after it"

        def sampled(**variant):
            return sample_by_hand(self.model(case), c["chars"], prompt, c["length"], c["temperature"],
                                  self.generator(case), **variant)
        found = [("your draws ignore the temperature (they follow softmax(logits)): divide the logits by it "
                  "before the softmax", dict(scale="ignore")),
                 ("your draws follow softmax(logits * temperature): divide the logits by the temperature",
                  dict(scale="multiply")),
                 ("your text matches feeding the prompt's last character at every step: feed back the "
                  "character just drawn", dict(feed=False)),
                 ("your text matches starting every step from the state after the prompt: carry the hidden "
                  "state from each step to the next", dict(carry=False))]
        if c["temperature"] > 1e-8:
            greedy = sample_by_hand(self.model(case), c["chars"], prompt, c["length"], 0.0, None)
            if text == greedy:
                return ("your text is the argmax at every step: with temperature > 0, draw from "
                        "softmax(logits / temperature) with torch.multinomial")
        for words, variant in found:
            if text == sampled(**variant):
                return words
        return ""


check_batchify_padded = BatchifyPaddedCheck()
check_get_batch_first = GetBatchFirstCheck()
check_language_model = LanguageModelCheck()
check_padded_perplexity = PaddedPerplexityCheck()
check_sample_text = SampleTextCheck()
