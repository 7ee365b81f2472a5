"""Checks for chapter 1, the recurrence by hand.

    rnn_step(x_t, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)  vs nn.RNNCell
    rnn_forward(input, h_0, weight_ih, ..., nonlinearity, batch_first)           vs nn.RNN
    JordanRNN(input_size, hidden_size, output_size, ...)                         vs JordanNet

Each case builds the torch.nn module afresh from a seed, in float64, and hands
its weights to the student's code; the reference output comes from the module. The
Jordan network, which feeds back its output instead of its hidden state, has no torch.nn
module: JordanNet is ours, and the chapter's tests check it against nn.RNN and nn.RNNCell.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checking import Check, CheckFailure, call_student, describe_config, state_of, unpack_pair, with_state
from ..checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ..checking.credit import one_feature_each
from ..common import (DTYPE, RNN_KERNELS, WEIGHTS, CellStep, compare_outputs, layer_tensors, load_weights,
                      make_sequence, recurrence)

ASSIGNMENT = "01-recurrence"

# -- classic mistakes, computed by our own code, only to name them in a hint --------

def mistakes(config: dict, x, h_0, w) -> list[tuple[str, dict]]:
    """(description, outputs) for each classic mistake, in the case's layout."""
    batched, batch_first = config.get("batched", True), config.get("batch_first", False)
    H, act = config["hidden_size"], config["nonlinearity"]
    x_tm = x.unsqueeze(1) if not batched else (x.transpose(0, 1) if batch_first else x)
    N = x_tm.shape[1]
    h = h_0[0] if h_0 is not None else torch.zeros(H, dtype=DTYPE)
    h = h.reshape(-1, H).expand(N, H) if batched else h.reshape(1, H)

    def layout(states, h_prev=None):  # states (L, N, H) -> {"output", "h_n"}
        out = states.transpose(0, 1) if batch_first else states
        out = out[:, 0] if not batched else out
        return {"output": out, "h_n": (out[-1] if not batch_first else out[:, -1]).unsqueeze(0)}

    other = "relu" if act == "tanh" else "tanh"
    found = [(f"your result matches nonlinearity='{other}', but this case asks for '{act}'",
              layout(recurrence(x_tm, h, w, other))),
             ("your result matches leaving out bias_hh: nn.RNN adds both bias_ih and bias_hh",
              layout(recurrence(x_tm, h, w, act, use_bias_hh=False))),
             ("your result matches leaving out bias_ih: nn.RNN adds both bias_ih and bias_hh",
              layout(recurrence(x_tm, h, w, act, use_bias_ih=False)))]
    states = recurrence(x_tm, h, w, act)
    before = torch.cat([h.unsqueeze(0), states[:-1]])  # h_{t-1} instead of h_t
    found.append(("output[t] should be the state after reading x_t (h_t), not the one before it",
                  {"output": layout(before)["output"]}))
    found.append(("h_n should be the state after the last time step, not the first",
                  {"h_n": layout(states[:1])["h_n"]}))
    if batched and batch_first and h_0 is None:
        # Reading (N, L, H_in) as if it were (L, N, H_in): steps over the batch instead of time.
        as_time_major = recurrence(x, torch.zeros(x.shape[1], H, dtype=DTYPE), w, act)
        found.append(("with batch_first=True the input is (N, L, H_in): your result matches "
                      "stepping over dimension 0 as if it were time", {"output": as_time_major}))
    return found


# -- rnn_step ----------------------------------------------------------------------

class RnnStepCheck(CellStep, Check):
    name = "01-recurrence/rnn_step"
    forbidden_functions = ("rnn_by_hand.common.recurrence",)
    student_name = "rnn_step"
    reference_name = "torch.nn.RNNCell"
    forbidden = RNN_KERNELS

    # One feature per case beyond a batched tanh step with biases, so that each is earned alone.
    VISIBLE = [dict(N=3, input_size=4, hidden_size=5, nonlinearity="tanh", bias=True, batched=True),
               dict(N=2, input_size=3, hidden_size=6, nonlinearity="relu", bias=True, batched=True),
               dict(input_size=4, hidden_size=5, nonlinearity="tanh", bias=True, batched=False),
               dict(N=3, input_size=2, hidden_size=4, nonlinearity="tanh", bias=False, batched=True)]
    HIDDEN = [dict(N=5, input_size=7, hidden_size=8, nonlinearity="relu", bias=True, batched=True),
              dict(N=1, input_size=2, hidden_size=3, nonlinearity="tanh", bias=True, batched=True),
              dict(N=4, input_size=5, hidden_size=6, nonlinearity="tanh", bias=False, batched=True),
              dict(input_size=6, hidden_size=4, nonlinearity="tanh", bias=True, batched=False)]
    PARTS = one_feature_each({"relu": lambda config: config["nonlinearity"] == "relu",
                              "unbatched input": lambda config: not config["batched"],
                              "without bias": lambda config: not config["bias"]}, combined=None)

    @staticmethod
    def reference(config) -> nn.RNNCell:
        return nn.RNNCell(config["input_size"], config["hidden_size"], bias=config["bias"],
                          nonlinearity=config["nonlinearity"], dtype=DTYPE)

    def run_student(self, student, case):
        t = case.tensors
        h_t = call_student(self.student_name, student, t["x_t"], t["h_prev"], t["weight_ih"],
                           t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"),
                           nonlinearity=case.config["nonlinearity"])
        return {"h_t": h_t}

    def hint(self, case, actual):
        t, config = case.tensors, dict(case.config, L=1)
        w = {k: t.get(k) for k in WEIGHTS}
        x = t["x_t"].unsqueeze(0)  # (1, [N,] H_in): one time step
        h_0 = t["h_prev"].unsqueeze(0)
        found = [(text, {"h_t": out["output"][0]}) for text, out in mistakes(config, x, h_0, w)
                 if "output" in out and "state after reading" not in text]
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- rnn_forward -------------------------------------------------------------------

class RnnForwardCheck(Check):
    name = "01-recurrence/rnn_forward"
    forbidden_functions = ("rnn_by_hand.common.recurrence",)
    student_name = "rnn_forward"
    builds_on = ("rnn_step",)
    reference_name = "torch.nn.RNN"
    forbidden = RNN_KERNELS

    # One feature per case (relu, rnn_step's, in the plain cases only), then the two layouts
    # without h_0: there h_0 = zeros must take the batch size from the right dimension.
    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, nonlinearity="tanh", batch_first=False, h_0=True),
               dict(L=3, N=4, input_size=2, hidden_size=5, nonlinearity="relu", batch_first=False, h_0=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, nonlinearity="tanh", batch_first=True, h_0=True),
               dict(L=6, input_size=4, hidden_size=5, nonlinearity="tanh", batched=False, h_0=True),
               dict(L=5, N=3, input_size=2, hidden_size=4, nonlinearity="tanh", batch_first=False, h_0=False),
               dict(L=4, N=3, input_size=2, hidden_size=3, nonlinearity="tanh", bias=False, h_0=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, nonlinearity="tanh", batch_first=True, h_0=False),
               dict(L=3, input_size=2, hidden_size=4, nonlinearity="tanh", batched=False, h_0=False)]
    HIDDEN = [dict(L=7, N=4, input_size=5, hidden_size=3, nonlinearity="tanh", batch_first=False, h_0=False),
              dict(L=3, N=5, input_size=2, hidden_size=7, nonlinearity="tanh", batch_first=True, h_0=True),
              dict(L=1, input_size=3, hidden_size=4, nonlinearity="tanh", batched=False, h_0=True),
              dict(L=6, N=2, input_size=3, hidden_size=4, nonlinearity="tanh", bias=False, h_0=True),
              dict(L=5, N=2, input_size=4, hidden_size=4, nonlinearity="relu", batch_first=False, h_0=True),
              dict(L=8, N=1, input_size=3, hidden_size=5, nonlinearity="tanh", batch_first=True, h_0=False),
              dict(L=2, input_size=3, hidden_size=2, nonlinearity="tanh", batched=False, h_0=False)]
    PARTS = one_feature_each({"batch_first": lambda config: config.get("batched", True)
                              and config.get("batch_first", False),
                              "unbatched input": lambda config: not config.get("batched", True),
                              "h_0 omitted": lambda config: not config["h_0"],
                              "without bias": lambda config: not config.get("bias", True)})

    def make_tensors(self, config):
        rnn = self.reference(config)
        x, h_0 = make_sequence(config)
        return {"input": x} | ({"h_0": h_0} if h_0 is not None else {}) | layer_tensors(rnn, "_l0")

    @staticmethod
    def reference(config) -> nn.RNN:
        return nn.RNN(config["input_size"], config["hidden_size"], num_layers=1,
                      nonlinearity=config["nonlinearity"], bias=config.get("bias", True),
                      batch_first=config.get("batch_first", False), dtype=DTYPE)

    def run_student(self, student, case):
        t = case.tensors
        result = call_student(self.student_name, student, t["input"], t.get("h_0"), t["weight_ih"],
                              t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"),
                              nonlinearity=case.config["nonlinearity"],
                              batch_first=case.config.get("batch_first", False))
        output, h_n = unpack_pair(self.student_name, result, ("output", "h_n"))
        return {"output": output, "h_n": h_n}

    def run_reference(self, case):
        rnn = load_weights(self.reference(case.config), case.tensors, "_l0")
        with torch.no_grad():
            output, h_n = rnn(case.tensors["input"], case.tensors.get("h_0"))
        return {"output": output, "h_n": h_n}

    def compare(self, case, expected, actual):
        return compare_outputs(case, expected, actual, rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t = case.tensors
        w = {k: t.get(k) for k in WEIGHTS}
        found = mistakes(case.config, t["input"], t.get("h_0"), w)
        return first_matching_mistake(case, self.run_reference(case), actual, found)

    def error_hint(self, case, message):
        # Stepping over dimension 0 of a batch_first input takes L for the batch size N,
        # and h_0, (1, N, H) whatever batch_first says, no longer fits: reshape refuses it.
        if case.config.get("batched", True) and case.config.get("batch_first") and "h_0" in case.tensors \
                and "is invalid for input of size" in message:
            return ("with batch_first=True the input is (N, L, H_in) but h_0 is still (1, N, H): "
                    "transpose the input to (L, N, H_in) before reading L and N from it")
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
    builds_on = ("rnn_step",)
    reference_name = "the reference Jordan network"
    kind = "class"
    forbidden = RNN_KERNELS

    # The first case has output_size == hidden_size, where feeding back h_(t-1) runs (and is wrong).
    # One feature per case (relu in the plain cases only), then the two layouts without y_0,
    # as for rnn_forward.
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


check_rnn_step = RnnStepCheck()
check_rnn_forward = RnnForwardCheck()
check_jordan_rnn = JordanRnnCheck()
