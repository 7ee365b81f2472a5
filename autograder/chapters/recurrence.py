"""Checks for chapter 1, the recurrence by hand.

    stacked_rnn_step(x_t, h_prev, rnn)                                     vs nn.RNN on one time step
    rnn_forward_padded(input, lengths, h_0, weight_ih, ..., batch_first)   vs nn.RNN with packing
    JordanRNN(input_size, hidden_size, output_size, ...)                   vs JordanNet

The chapter's MyRNN runs each layer over the whole sequence, every sequence of a batch to the
same length; the exercises ask for its neighbours: one time step through every layer (the
order a streaming or generating model needs), and a batch whose sequences end at their own
lengths. Each case builds the torch.nn module afresh from a seed, in float64, and hands its
weights to the student's code; the reference output comes from the module. The Jordan
network, which feeds back its output instead of its hidden state, has no torch.nn module:
JordanNet is ours, and the chapter's tests check it against nn.RNN and nn.RNNCell.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..checking import Check, CheckFailure, call_student, describe_config, state_of, unpack_pair, with_state
from ..checking.compare import compare_tensor, first_matching_mistake, matches, shape_str, type_name
from ..checking.credit import one_feature_each
from ..common import (DTYPE, RNN_KERNELS, WEIGHTS, compare_outputs, layer_tensors, load_weights, make_sequence,
                      recurrence)

ASSIGNMENT = "01-recurrence"

# -- stacked_rnn_step ------------------------------------------------------------------

def rnn_module(config: dict) -> nn.RNN:
    """The case's nn.RNN in float64: building it draws the case's weights."""
    return nn.RNN(config["input_size"], config["hidden_size"], num_layers=config.get("num_layers", 1),
                  nonlinearity=config["nonlinearity"], bias=config.get("bias", True),
                  batch_first=config.get("batch_first", False), dtype=DTYPE)


def other_nonlinearity(nonlinearity: str) -> str:
    return "relu" if nonlinearity == "tanh" else "tanh"


def stack_step(x_t, h_prev, state: dict, num_layers: int, nonlinearity: str, mistake: str = ""):
    """One time step through every layer of a stack: x_t (N, H_in), h_prev (num_layers, N, H)
    -> the new states (num_layers, N, H). Layer k reads the new state of layer k - 1.
    `mistake` names a classic error, only to recognise it in a hint."""
    act = other_nonlinearity(nonlinearity) if mistake == "other nonlinearity" else nonlinearity
    below, states = x_t, []
    for k in range(num_layers):
        layer = 0 if mistake == "layer 0's weights" else k
        w = {name: state.get(f"{name}_l{layer}") for name in WEIGHTS}
        h = h_prev[0] if mistake == "every layer from h_prev[0]" else h_prev[k]
        new = recurrence(below.unsqueeze(0), h, w, act, use_bias_ih=mistake != "missing bias_ih",
                         use_bias_hh=mistake != "missing bias_hh")[0]          # (N, H)
        states.append(new)
        below = h_prev[k] if mistake == "the previous step's state below" else new
    return torch.stack(states)


BIAS_MISTAKES = {"missing bias_hh": "leaving out bias_hh: nn.RNN adds both bias_ih and bias_hh",
                 "missing bias_ih": "leaving out bias_ih: nn.RNN adds both bias_ih and bias_hh"}


class StackedRnnStepCheck(Check):
    name = "01-recurrence/stacked_rnn_step"
    forbidden_functions = ("rnn_by_hand.common.recurrence", "rnn_by_hand.chapters.recurrence.stack_step")
    student_name = "stacked_rnn_step"
    reference_name = "torch.nn.RNN run for one step"
    forbidden = RNN_KERNELS

    # Every case has several layers: that is the exercise. One more feature per case beyond a
    # batched tanh stack with biases, so that each is earned alone.
    VISIBLE = [dict(N=3, input_size=4, hidden_size=5, num_layers=2, nonlinearity="tanh", bias=True, batched=True),
               dict(N=2, input_size=3, hidden_size=6, num_layers=3, nonlinearity="relu", bias=True, batched=True),
               dict(input_size=4, hidden_size=5, num_layers=2, nonlinearity="tanh", bias=True, batched=False),
               dict(N=3, input_size=2, hidden_size=4, num_layers=2, nonlinearity="tanh", bias=False, batched=True)]
    HIDDEN = [dict(N=5, input_size=7, hidden_size=8, num_layers=2, nonlinearity="relu", bias=True, batched=True),
              dict(N=1, input_size=2, hidden_size=3, num_layers=4, nonlinearity="tanh", bias=True, batched=True),
              dict(N=4, input_size=5, hidden_size=6, num_layers=3, nonlinearity="tanh", bias=False, batched=True),
              dict(input_size=6, hidden_size=4, num_layers=3, nonlinearity="tanh", bias=True, batched=False),
              dict(N=2, input_size=5, hidden_size=5, num_layers=2, nonlinearity="tanh", bias=True, batched=True)]
    PARTS = one_feature_each({"relu": lambda config: config["nonlinearity"] == "relu",
                              "unbatched input": lambda config: not config["batched"],
                              "without bias": lambda config: not config["bias"]}, combined=None)

    def make_tensors(self, config):
        rnn = rnn_module(config)  # drawn first: its initialisation sets the weights
        lead = (config["N"],) if config["batched"] else ()
        return {"x_t": torch.randn(*lead, config["input_size"], dtype=DTYPE),                        # (N, H_in)
                "h_prev": torch.randn(config["num_layers"], *lead, config["hidden_size"], dtype=DTYPE)  # (layers, N, H)
                } | with_state(rnn)

    def module(self, case) -> nn.RNN:
        rnn = rnn_module(case.config)
        rnn.load_state_dict(state_of(case.tensors))
        return rnn

    def run_student(self, student, case):
        t = case.tensors
        return {"h_t": call_student(self.student_name, student, t["x_t"], t["h_prev"], self.module(case))}

    def run_reference(self, case):
        t = case.tensors
        with torch.no_grad():
            _, h_n = self.module(case)(t["x_t"].unsqueeze(0), t["h_prev"])   # a sequence of one step
        return {"h_t": h_n}

    def compare(self, case, expected, actual):
        if case.config["batched"]:
            dims, layout = ("layer", "n", "h"), "(num_layers, N, H): every layer's new state, as nn.RNN's h_n"
        else:
            dims, layout = ("layer", "h"), "(num_layers, H) for an unbatched x_t"
        return compare_tensor("h_t", expected["h_t"], actual["h_t"], dims=dims, layout=layout,
                              rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t, c = case.tensors, case.config
        got = actual["h_t"]
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(t["h_prev"].shape[1:]):
            return ("you return one layer's state: return every layer's new state, stacked as "
                    "(num_layers, N, H) like nn.RNN's h_n, the top layer last")
        batched = c["batched"]
        x_t = t["x_t"] if batched else t["x_t"].unsqueeze(0)             # (N, H_in)
        h_prev = t["h_prev"] if batched else t["h_prev"].unsqueeze(1)    # (num_layers, N, H)

        def variant(mistake):
            out = stack_step(x_t, h_prev, state_of(t), c["num_layers"], c["nonlinearity"], mistake)
            return {"h_t": out if batched else out.squeeze(1)}
        texts = {"the previous step's state below": "layer k > 0 reads the new state of layer k - 1, computed "
                                                    "at this step; your result matches it reading h_prev[k - 1], "
                                                    "the state from the step before",
                 "every layer from h_prev[0]": "your result matches starting every layer from h_prev[0]: "
                                               "layer k continues from its own previous state, h_prev[k]",
                 "other nonlinearity": f"your result matches nonlinearity='{other_nonlinearity(c['nonlinearity'])}'"
                                       f", but this rnn has '{c['nonlinearity']}': read rnn.nonlinearity"}
        if c["bias"]:
            texts |= {m: f"your result matches {text}" for m, text in BIAS_MISTAKES.items()}
        if c["input_size"] == c["hidden_size"]:
            texts["layer 0's weights"] = ("your result matches layer 0's weights in every layer: layer k has "
                                          "its own weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k} and bias_hh_l{k}")
        found = [(text, variant(mistake)) for mistake, text in texts.items()]
        return first_matching_mistake(case, self.run_reference(case), actual, found)

    def error_hint(self, case, message):
        if "cannot be multiplied" in message and case.config["input_size"] != case.config["hidden_size"]:
            return ("layer 0 reads x_t (H_in features), every later layer the new state of the one below "
                    "(H features): weight_ih_l0 is (H, H_in), weight_ih_l{k} for k > 0 is (H, H)")
        return ""


# -- rnn_forward_padded ------------------------------------------------------------------

def padded_run(x, lengths, h, w, nonlinearity, mistake=""):
    """One layer over a time-major padded batch, each sequence n stopping after lengths[n] steps:
    x (L, N, H_in), h (N, H) -> output (L, N, H), zero past each sequence's end, and h_n (N, H),
    each sequence's state after its own last step. A state at a real step depends only on the
    steps before it, so the whole run masked afterwards is the run that stops. `mistake` names a
    classic error, only to recognise it in a hint (past_end_hint names those of the output)."""
    act = other_nonlinearity(nonlinearity) if mistake == "other nonlinearity" else nonlinearity
    states = recurrence(x, h, w, act, use_bias_ih=mistake != "missing bias_ih",
                        use_bias_hh=mistake != "missing bias_hh")            # (L, N, H), padding too
    L, N = x.shape[:2]
    real = (torch.arange(L).unsqueeze(1) < lengths).unsqueeze(-1)           # (L, N, 1)
    last = {"h_n after L steps": torch.full_like(lengths, L),
            "h_n one step late": (lengths + 1).clamp(max=L)}.get(mistake, lengths) - 1
    h_n = states[last, torch.arange(N)]                                      # (N, H)
    return states * real, h_n


PAST_END = {"goes on": "past each sequence's end your output goes on with the padding: output[t, n] is 0 "
                       "for t >= lengths[n], as pad_packed_sequence gives it",
            "carried": "past each sequence's end your output repeats its last state: there output is 0, "
                       "as pad_packed_sequence gives it (h_n keeps the last state)"}
PADDED_MISTAKES = {
    "h_n after L steps": "your h_n is every sequence's state after all L steps, padding included: h_n[0, n] "
                         "is the state after the sequence's own last step, t = lengths[n] - 1",
    "h_n one step late": "your h_n has read one padding step: sequence n's last real step is t = lengths[n] - 1",
}


class RnnForwardPaddedCheck(Check):
    name = "01-recurrence/rnn_forward_padded"
    forbidden_functions = ("rnn_by_hand.common.recurrence", "rnn_by_hand.chapters.recurrence.padded_run")
    student_name = "rnn_forward_padded"
    reference_name = "torch.nn.RNN with packing"
    forbidden = RNN_KERNELS

    # Every case is a padded batch of sequences of different lengths; one feature per case beyond
    # time-major tanh with h_0 and biases, then batch_first without h_0, where h_0 = zeros must
    # take the batch size from the right dimension. Some batches are longer than their longest
    # sequence (pad_packed_sequence(total_length=L) pads those steps too).
    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, nonlinearity="tanh", batch_first=False, h_0=True,
                    lengths=(5, 2, 4)),
               dict(L=5, N=4, input_size=2, hidden_size=5, nonlinearity="relu", batch_first=False, h_0=True,
                    lengths=(1, 4, 3, 2)),
               dict(L=4, N=2, input_size=3, hidden_size=5, nonlinearity="tanh", batch_first=True, h_0=True,
                    lengths=(3, 4)),
               dict(L=5, N=3, input_size=2, hidden_size=4, nonlinearity="tanh", batch_first=False, h_0=False,
                    lengths=(2, 5, 5)),
               dict(L=4, N=3, input_size=2, hidden_size=3, nonlinearity="tanh", bias=False, h_0=True,
                    lengths=(4, 1, 3)),
               dict(L=6, N=2, input_size=3, hidden_size=5, nonlinearity="tanh", batch_first=True, h_0=False,
                    lengths=(4, 2))]
    HIDDEN = [dict(L=7, N=4, input_size=5, hidden_size=3, nonlinearity="tanh", batch_first=False, h_0=True,
                   lengths=(7, 3, 1, 6)),
              dict(L=3, N=5, input_size=2, hidden_size=7, nonlinearity="tanh", batch_first=True, h_0=True,
                   lengths=(3, 3, 2, 1, 3)),
              dict(L=6, N=2, input_size=3, hidden_size=4, nonlinearity="tanh", bias=False, h_0=True,
                   lengths=(2, 6)),
              dict(L=5, N=2, input_size=4, hidden_size=4, nonlinearity="relu", batch_first=False, h_0=True,
                   lengths=(5, 3)),
              dict(L=8, N=1, input_size=3, hidden_size=5, nonlinearity="tanh", batch_first=False, h_0=False,
                   lengths=(6,)),
              dict(L=4, N=3, input_size=3, hidden_size=2, nonlinearity="tanh", batch_first=True, h_0=False,
                   lengths=(1, 4, 2))]
    PARTS = one_feature_each({"batch_first": lambda config: config.get("batch_first", False),
                              "h_0 omitted": lambda config: not config["h_0"],
                              "without bias": lambda config: not config.get("bias", True),
                              "relu": lambda config: config["nonlinearity"] == "relu"})

    def make_tensors(self, config):
        rnn = rnn_module(config)
        x, h_0 = make_sequence(config)
        return ({"input": x, "lengths": torch.tensor(config["lengths"], dtype=torch.long)}
                | ({"h_0": h_0} if h_0 is not None else {}) | layer_tensors(rnn, "_l0"))

    def run_student(self, student, case):
        t = case.tensors
        result = call_student(self.student_name, student, t["input"], t["lengths"], t.get("h_0"), t["weight_ih"],
                              t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"),
                              nonlinearity=case.config["nonlinearity"],
                              batch_first=case.config.get("batch_first", False))
        output, h_n = unpack_pair(self.student_name, result, ("output", "h_n"))
        return {"output": output, "h_n": h_n}

    def run_reference(self, case):
        t, c = case.tensors, case.config
        batch_first = c.get("batch_first", False)
        rnn = load_weights(rnn_module(c), t, "_l0")
        packed = pack_padded_sequence(t["input"], t["lengths"], batch_first=batch_first, enforce_sorted=False)
        with torch.no_grad():
            out, h_n = rnn(packed, t.get("h_0"))
        output, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=c["L"])
        return {"output": output, "h_n": h_n}

    def compare(self, case, expected, actual):
        return compare_outputs(case, expected, actual, rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t, c = case.tensors, case.config
        batch_first = c.get("batch_first", False)
        past_end = self.past_end_hint(case, actual)
        if past_end:
            return past_end
        x = t["input"].transpose(0, 1) if batch_first else t["input"]             # (L, N, H_in)
        h = t["h_0"][0] if "h_0" in t else torch.zeros(x.shape[1], c["hidden_size"], dtype=DTYPE)
        w = {k: t.get(k) for k in WEIGHTS}

        def variant(mistake, keys=("output", "h_n")):
            output, h_n = padded_run(x, t["lengths"], h, w, c["nonlinearity"], mistake)
            result = {"output": output.transpose(0, 1) if batch_first else output, "h_n": h_n.unsqueeze(0)}
            return {k: result[k] for k in keys}
        texts = dict(PADDED_MISTAKES, **{"other nonlinearity": f"your result matches nonlinearity="
                                                               f"'{other_nonlinearity(c['nonlinearity'])}', "
                                                               f"but this case asks for '{c['nonlinearity']}'"})
        if c.get("bias", True):
            texts |= {m: f"your result matches {text}" for m, text in BIAS_MISTAKES.items()}
        only = {"h_n after L steps": ("h_n",), "h_n one step late": ("h_n",)}
        found = [(text, variant(m, only.get(m, ("output", "h_n")))) for m, text in texts.items()]
        return first_matching_mistake(case, self.run_reference(case), actual, found)

    def past_end_hint(self, case, actual) -> str:
        """The output right at every real step and not zero after an end: what is there instead."""
        expected, got = self.run_reference(case), actual["output"]
        want = expected["output"]
        if not isinstance(got, torch.Tensor) or got.shape != want.shape or not got.dtype.is_floating_point:
            return ""
        L = case.config["L"]
        real = torch.arange(L).unsqueeze(1) < case.tensors["lengths"]             # (L, N)
        real = (real.t() if case.config.get("batch_first") else real).unsqueeze(-1).expand_as(want)
        if not matches(want[real], got[real]) or matches(want[~real], got[~real]):
            return ""
        carried = expected["h_n"][0].unsqueeze(1 if case.config.get("batch_first") else 0).expand_as(want)
        if matches(carried[~real], got[~real]):
            return PAST_END["carried"]
        return PAST_END["goes on"]

    def error_hint(self, case, message):
        # Stepping over dimension 0 of a batch_first input takes L for the batch size N,
        # and h_0, (1, N, H) whatever batch_first says, no longer fits.
        if case.config.get("batch_first") and "h_0" in case.tensors and "is invalid for input of size" in message:
            return ("with batch_first=True the input is (N, L, H_in) but h_0 is still (1, N, H): "
                    "transpose the input to (L, N, H_in) before reading L and N from it")
        if case.config.get("batch_first") and "must match the size of tensor" in message:
            return ("with batch_first=True the input is (N, L, H_in): transpose it to (L, N, H_in) "
                    "before the loop, so that each step is (N, H_in) and lines up with lengths (N,)")
        if "must be a tensor" in message or "bool value of Tensor" in message:
            return ("lengths is a LongTensor (N,): compare it with the step index as a whole, "
                    "t < lengths, which gives one True or False per sequence")
        return ""


# -- JordanRNN: the reference (ours; tests/chapters/test_recurrence.py checks it against torch.nn) --

JORDAN_WEIGHTS = ("weight_ih", "weight_yh", "bias_ih", "bias_yh", "readout.weight", "readout.bias")


def jordan_recurrence(x, y, w, nonlinearity, mistake=""):
    """Our Jordan network over a time-major x (L, N, H_in) from y_0 (N, O): the outputs (L, N, O).

        h_t = act(W_ih x_t + b_ih + W_yh y_(t-1) + b_yh),    y_t = W_hy h_t + b_hy

    where W_hy, b_hy are the readout's weight and bias. `mistake` names a classic error,
    only to recognise it in a hint.
    """
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    if mistake == "other nonlinearity":
        act = torch.relu if nonlinearity == "tanh" else torch.tanh
    bias_yh = None if mistake == "missing bias_yh" else w.get("bias_yh")
    y_0, fed, outputs = y, y, []
    for x_t in x:
        h = act(F.linear(x_t, w["weight_ih"], w.get("bias_ih")) + F.linear(fed, w["weight_yh"], bias_yh))
        y = F.linear(h, w["readout.weight"], w.get("readout.bias"))  # (N, O): linear readout
        if mistake == "nonlinear readout":
            y = act(y)
        outputs.append(h if mistake == "outputs are h" else y)
        fed = {"elman": h, "y_0 every step": y_0}.get(mistake, y)  # what the next step reads
    return torch.stack(outputs)


class JordanNet(nn.Module):
    """The reference Jordan network, in nn.RNN's layouts; its parameters are the exercise's:
    weight_ih (H, H_in), weight_yh (H, O), bias_ih and bias_yh (H,), and readout, an
    nn.Linear(H, O); all drawn from U(-1/sqrt(H), 1/sqrt(H)), as nn.RNN draws its own."""

    def __init__(self, input_size, hidden_size, output_size, nonlinearity="tanh", bias=True,
                 batch_first=False, dtype=DTYPE):
        super().__init__()
        self.hidden_size, self.output_size = hidden_size, output_size
        self.nonlinearity, self.batch_first = nonlinearity, batch_first
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, dtype=dtype))
        self.weight_yh = nn.Parameter(torch.empty(hidden_size, output_size, dtype=dtype))
        for name in ("bias_ih", "bias_yh"):
            self.register_parameter(name, nn.Parameter(torch.empty(hidden_size, dtype=dtype)) if bias else None)
        self.readout = nn.Linear(hidden_size, output_size, bias=bias, dtype=dtype)
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, input, y_0=None, mistake=""):
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        x = x.transpose(0, 1) if batched and self.batch_first else x          # (L, N, H_in)
        N = x.shape[1]
        y = x.new_zeros(N, self.output_size) if y_0 is None or mistake == "ignore y_0" \
            else y_0.reshape(N, -1)                                           # (N, O)
        w = {k: v for k, v in self.state_dict().items()}
        output = jordan_recurrence(x, y, w, self.nonlinearity, mistake)      # (L, N, O)
        y_n = output[-1].unsqueeze(0)                                         # (1, N, O)
        if not batched:
            return output.squeeze(1), y_n.squeeze(1)
        return (output.transpose(0, 1) if self.batch_first else output), y_n


JORDAN_MISTAKES = [
    ("elman", "your outputs match feeding back the hidden state h_(t-1), as Elman's network "
              "does; a Jordan network feeds back its previous output y_(t-1) = readout(h_(t-1))"),
    ("nonlinear readout", "your outputs match a nonlinearity on the readout: y_t = readout(h_t) "
                          "is linear, only h_t goes through tanh or relu"),
    ("ignore y_0", "your outputs match starting from y_0 = 0: use y_0 when it is given"),
    ("y_0 every step", "your outputs match feeding back y_0 at every step: step t reads y_(t-1), "
                       "the output of the step before it"),
    ("outputs are h", "your output holds the hidden states h_t; it should hold y_t = readout(h_t)"),
    ("missing bias_yh", "your outputs match leaving out bias_yh: add both bias_ih and bias_yh"),
    ("other nonlinearity", "your outputs match the other nonlinearity: read self.nonlinearity"),
]


def jordan_layouts(config: dict) -> dict[str, tuple[tuple[str, ...], str]]:
    """Dimension names and a readable layout for output and y_n."""
    if not config.get("batched", True):
        return {"output": (("t", "o"), "(L, O) for unbatched input"),
                "y_n": (("row", "o"), "(1, O) for unbatched input")}
    if config["batch_first"]:
        return {"output": (("n", "t", "o"), "(N, L, O) because batch_first=True"),
                "y_n": (("row", "n", "o"), "(1, N, O) whatever batch_first says")}
    return {"output": (("t", "n", "o"), "(L, N, O)"), "y_n": (("row", "n", "o"), "(1, N, O)")}


class JordanRnnCheck(Check):
    name = "01-recurrence/JordanRNN"
    forbidden_functions = ("rnn_by_hand.common.recurrence", "rnn_by_hand.chapters.recurrence.jordan_recurrence")
    student_name = "JordanRNN"
    reference_name = "the reference Jordan network"
    kind = "class"
    forbidden = RNN_KERNELS

    # The first case has output_size == hidden_size, where feeding back h_(t-1) runs (and is wrong).
    # One feature per case (relu in the plain cases only), then the two layouts without y_0,
    # where y_0 = zeros must take the batch size from the right dimension.
    VISIBLE = [dict(input_size=4, hidden_size=5, output_size=5, nonlinearity="tanh", bias=True,
                    batch_first=False, L=5, N=3, y_0=True),
               dict(input_size=3, hidden_size=6, output_size=2, nonlinearity="tanh", bias=True,
                    batch_first=True, L=4, N=2, y_0=True),
               dict(input_size=2, hidden_size=4, output_size=3, nonlinearity="tanh", bias=True,
                    batch_first=False, L=6, batched=False, y_0=True),
               dict(input_size=3, hidden_size=4, output_size=2, nonlinearity="tanh", bias=True,
                    batch_first=False, L=4, N=3, y_0=False),
               dict(input_size=3, hidden_size=5, output_size=2, nonlinearity="tanh", bias=False,
                    batch_first=False, L=3, N=4, y_0=True),
               dict(input_size=2, hidden_size=3, output_size=4, nonlinearity="tanh", bias=True,
                    batch_first=True, L=3, N=2, y_0=False),
               dict(input_size=3, hidden_size=5, output_size=2, nonlinearity="tanh", bias=True,
                    batch_first=False, L=4, batched=False, y_0=False),
               dict(input_size=2, hidden_size=3, output_size=2, nonlinearity="relu", bias=True,
                    batch_first=False, L=5, N=2, y_0=True)]
    HIDDEN = [dict(input_size=5, hidden_size=7, output_size=3, nonlinearity="tanh", bias=False,
                   batch_first=False, L=6, N=3, y_0=True),
              dict(input_size=2, hidden_size=3, output_size=3, nonlinearity="tanh", bias=True,
                   batch_first=True, L=5, N=2, y_0=True),
              dict(input_size=3, hidden_size=8, output_size=1, nonlinearity="tanh", bias=True,
                   batch_first=False, L=4, batched=False, y_0=False),
              dict(input_size=4, hidden_size=4, output_size=6, nonlinearity="relu", bias=True,
                   batch_first=False, L=3, N=5, y_0=True),
              dict(input_size=2, hidden_size=6, output_size=3, nonlinearity="tanh", bias=True,
                   batch_first=False, L=5, N=2, y_0=False),
              dict(input_size=3, hidden_size=4, output_size=2, nonlinearity="tanh", bias=True,
                   batch_first=False, L=3, batched=False, y_0=True),
              dict(input_size=4, hidden_size=5, output_size=3, nonlinearity="tanh", bias=True,
                   batch_first=True, L=2, N=3, y_0=False)]
    PARTS = one_feature_each({"batch_first": lambda config: config.get("batched", True)
                              and config["batch_first"],
                              "unbatched input": lambda config: not config.get("batched", True),
                              "y_0 omitted": lambda config: not config["y_0"],
                              "without bias": lambda config: not config["bias"]})
    MODULE_ARGS = ("input_size", "hidden_size", "output_size", "nonlinearity", "bias", "batch_first")

    def module_args(self, config) -> dict:
        return {k: config[k] for k in self.MODULE_ARGS}

    def make_tensors(self, config):
        net = JordanNet(**self.module_args(config))  # drawn first: its initialisation sets the weights
        L, H_in, out_size = config["L"], config["input_size"], config["output_size"]
        batch = (config["N"],) if config.get("batched", True) else ()
        lead = (batch + (L,)) if config["batch_first"] else ((L,) + batch)
        x = torch.randn(*lead, H_in, dtype=DTYPE)        # (L, N, H_in), (N, L, H_in) or (L, H_in)
        y_0 = torch.randn(1, *batch, out_size, dtype=DTYPE)  # (1, N, O) or (1, O)
        return {"input": x} | ({"y_0": y_0} if config["y_0"] else {}) | with_state(net)

    def run_student(self, student, case):
        args = self.module_args(case.config)
        built = f"JordanRNN({describe_config(args)})"
        module = call_student(built, student, **args)
        if not isinstance(module, nn.Module):
            raise CheckFailure(f"{built} should be an nn.Module, got {type_name(module)}")
        parameters = {name: tuple(p.shape) for name, p in module.named_parameters()}
        initial = {name: p.detach().abs().max().item() for name, p in module.named_parameters() if p.numel()}
        result = {"parameters": parameters, "initial_max_abs": initial}
        state = state_of(case.tensors)
        if set(parameters) != set(state) or any(parameters[k] != tuple(v.shape) for k, v in state.items()):
            return result  # compare() explains the names and shapes; loading would only fail
        module = module.to(DTYPE)
        try:
            module.load_state_dict(state)
        except Exception as error:  # noqa: BLE001
            raise CheckFailure(f"{built}.load_state_dict(...) failed: {error}") from None
        call = (case.tensors["input"],) + ((case.tensors["y_0"],) if "y_0" in case.tensors else ())
        pair = call_student(f"{built}.forward", module, *call)
        result["output"], result["y_n"] = unpack_pair(f"{built}.forward", pair, ("output", "y_n"))
        return result

    def reference_net(self, case) -> JordanNet:
        net = JordanNet(**self.module_args(case.config))
        net.load_state_dict(state_of(case.tensors))
        return net

    def run_reference(self, case, mistake=""):
        with torch.no_grad():
            output, y_n = self.reference_net(case)(case.tensors["input"], case.tensors.get("y_0"), mistake)
        state = state_of(case.tensors)
        return {"parameters": {k: tuple(v.shape) for k, v in state.items()}, "output": output, "y_n": y_n}

    def compare(self, case, expected, actual):
        problems = self.compare_parameters(expected["parameters"], actual["parameters"])
        if problems:
            return problems
        problems = compare_initialisation("JordanRNN", case.config["hidden_size"], actual["initial_max_abs"])
        dims = jordan_layouts(case.config)
        for name in ("output", "y_n"):
            got, want = actual[name], expected[name]
            if isinstance(got, torch.Tensor) and got.shape[:-1] == want.shape[:-1] \
                    and got.shape[-1] == case.config["hidden_size"] != want.shape[-1]:
                problems.append(f"{name} has shape {shape_str(got.shape)}, expected {shape_str(want.shape)}: "
                                "it holds the outputs y_t = readout(h_t), output_size features, "
                                "not the hidden states")
                continue
            problems += compare_tensor(name, want, got, dims=dims[name][0], layout=dims[name][1],
                                       rtol=self.rtol, atol=self.atol)
        return problems

    @staticmethod
    def compare_parameters(expected: dict, actual: dict) -> list[str]:
        problems = [f"JordanRNN has no parameter named {name!r} of shape {shape}"
                    for name, shape in expected.items() if name not in actual]
        problems += [f"JordanRNN has a parameter {name!r} that the exercise does not name"
                     for name in actual if name not in expected]
        problems += [f"parameter {name} has shape {actual[name]}, expected {shape}"
                     for name, shape in expected.items() if name in actual and actual[name] != shape]
        if problems and "weight_hh" in actual:
            problems.append("a Jordan network has no hidden-to-hidden matrix: weight_yh, (H, O), "
                            "carries the previous output y_(t-1) into the hidden layer")
        if problems:
            problems.append("the parameters are weight_ih (H, H_in), weight_yh (H, O), bias_ih and "
                            "bias_yh (H,) (none when bias=False), registered on the module, and those "
                            "of readout, an nn.Linear(hidden_size, output_size)")
        return problems

    def hint(self, case, actual):
        found = [(text, {"output": self.run_reference(case, mistake)["output"]})
                 for mistake, text in JORDAN_MISTAKES
                 if mistake != "elman" or case.config["output_size"] == case.config["hidden_size"]]
        return first_matching_mistake(case, self.run_reference(case), actual, found)

    def error_hint(self, case, message):
        if "cannot be multiplied" in message and case.config["output_size"] != case.config["hidden_size"]:
            return ("weight_yh is (H, O): it multiplies the previous output y_(t-1), (N, O), not the "
                    "hidden state h_(t-1)")
        return ""


def compare_initialisation(module: str, H: int, initial: dict) -> list[str]:
    """Problems with a fresh module's largest |parameter|s, for nn.RNN's U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1 / math.sqrt(H)
    too_big = {k: v for k, v in initial.items() if v > bound * (1 + 1e-6)}
    if too_big:
        name, value = max(too_big.items(), key=lambda kv: kv[1])
        return [f"a freshly built {module} has {name} entries up to {value:.3g}; draw every "
                f"parameter from U(-1/sqrt(H), 1/sqrt(H)) = U(-{bound:.3g}, {bound:.3g}) for H={H}"]
    largest = max(initial.values(), default=0.0)
    if largest < 0.5 * bound:
        return [f"a freshly built {module} has every parameter within +-{largest:.3g}, far inside "
                f"the bound {bound:.3g}: draw from U(-1/sqrt(H), 1/sqrt(H)), not U(-1/H, 1/H) or "
                f"a smaller range"]
    return []


check_stacked_rnn_step = StackedRnnStepCheck()
check_rnn_forward_padded = RnnForwardPaddedCheck()
check_jordan_rnn = JordanRnnCheck()
