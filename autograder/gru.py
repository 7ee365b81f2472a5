"""Checks for chapter 6, the GRU.

    gru_step(x_t, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)   vs nn.GRUCell
    gru_forward(input, h_0, params, num_layers, batch_first)        vs nn.GRU (stacked layers)
    cho_gru_step(x_t, h_prev, weight_ih, weight_hh, bias)           vs `cho_gru_cell` below, the form of
                                                                       Cho et al. (2014): reset before the product
    count_parameters(mode, input_size, hidden_size, num_layers, bias, bidirectional, proj_size)
                                                                    vs sum(p.numel()) of nn.RNN / nn.GRU / nn.LSTM

Each case builds the torch.nn module afresh from a seed, in float64, and hands
its weights to the student's code; the reference output comes from the module.
The paper's form has no torch.nn module, so its reference is `cho_gru_cell`,
which the unit tests compare with a hand computation and with nn.GRUCell. The
hand-written GRU below (`gru_cell`, `gru_stack`) is used only to name a classic
mistake in a hint.
"""
from __future__ import annotations

import itertools
import numbers
import random

import torch
from torch import nn

from .check import Case, Check, CheckFailure, call_student, describe_config, seeded, unpack_pair
from .compare import compare_tensor, first_matching_mistake, type_name
from .common import DTYPE, WEIGHTS, case_seed, compare_outputs, load_weights, make_sequence

GATES = "rzn"  # PyTorch's order of the three stacked blocks, top to bottom
GATE_NAMES = {"r": "reset gate", "z": "update gate", "n": "new gate (the candidate)"}
# The fused kernels behind nn.GRU and nn.GRUCell: the exercises write them by hand.
GRU_KERNELS = ("gru", "gru_cell")
IN_ORDER = "PyTorch stacks them r, z, n (rows [0, H) are r, [H, 2H) z, [2H, 3H) n)"


def clone_tensors(module: nn.Module, suffix: str = "") -> dict[str, torch.Tensor]:
    """weight_ih, weight_hh, bias_ih, bias_hh of one layer (those that exist), detached copies."""
    return {k: getattr(module, k + suffix).detach().clone() for k in WEIGHTS
            if getattr(module, k + suffix, None) is not None}


def step_layout(batched: bool) -> tuple[tuple[str, ...], str]:
    return (("n", "h"), "(N, H)") if batched else (("h",), "(H,) for an unbatched x_t")


# -- a hand-written GRU, read in mistaken ways, only to name them in a hint -------

def gru_cell(x_t, h, w, order=GATES, reset="after", swap_z=False, use_bias_ih=True,
             use_bias_hh=True, tanh_gates="n"):
    """One step with PyTorch's stacked weights; the keywords describe a mistaken reading.

    order: the gate each of the three blocks is taken for (PyTorch's is "rzn").
    reset: "after", PyTorch's r * (W_hn h + b_hn); "before", Cho et al.'s W_hn (r * h) + b_hn;
        "outside_bias", r * (W_hn h) + b_hn.
    swap_z: h_t = z * n + (1 - z) * h instead of (1 - z) * n + z * h.
    tanh_gates: the gates squashed by tanh instead of the sigmoid (PyTorch's is "n").
    """
    H = h.shape[-1]
    gi = x_t @ w["weight_ih"].T                               # (N, 3H): the input side
    if use_bias_ih and w.get("bias_ih") is not None:
        gi = gi + w["bias_ih"]
    inputs = dict(zip(order, gi.chunk(3, dim=-1)))            # (N, H) each
    weights = dict(zip(order, w["weight_hh"].split(H)))       # (H, H) each
    bias_hh = w.get("bias_hh") if use_bias_hh else None
    biases = dict(zip(order, bias_hh.split(H))) if bias_hh is not None else {}

    def hidden(gate, v):  # W_h{gate} v + b_h{gate}
        return v @ weights[gate].T + biases.get(gate, 0.0)

    def squash(gate, a):
        return (torch.tanh if gate in tanh_gates else torch.sigmoid)(a)

    r = squash("r", inputs["r"] + hidden("r", h))
    z = squash("z", inputs["z"] + hidden("z", h))
    if reset == "after":
        n = squash("n", inputs["n"] + r * hidden("n", h))
    elif reset == "before":
        n = squash("n", inputs["n"] + hidden("n", r * h))
    else:  # "outside_bias"
        n = squash("n", inputs["n"] + r * (h @ weights["n"].T) + biases.get("n", 0.0))
    return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h


def cell_variants(bias: bool) -> list[tuple[str, dict]]:
    """(hint, gru_cell keywords) for each classic mistake inside one step of nn.GRU."""
    found = [("your result matches applying the reset gate before the matrix product, "
              "W_hn (r * h) + b_hn, as Cho et al. (2014) write it; nn.GRU applies it after: "
              "n = tanh(W_in x + b_in + r * (W_hn h + b_hn))", dict(reset="before")),
             ("your result matches h_t = z * n + (1 - z) * h_prev: in nn.GRU the update gate z is the "
              "share of the OLD state that is kept, h_t = (1 - z) * n + z * h_prev", dict(swap_z=True))]
    if bias:
        found += [("your result matches r * (W_hn h) + b_hn, with b_hn outside the reset gate (adding "
                   "bias_hh to the input side does the same): in nn.GRU r multiplies b_hn too, "
                   "n = tanh(W_in x + b_in + r * (W_hn h + b_hn))", dict(reset="outside_bias")),
                  ("your result matches leaving out bias_hh: nn.GRU adds both bias_ih and bias_hh, "
                   "and for the new gate they are not interchangeable", dict(use_bias_hh=False)),
                  ("your result matches leaving out bias_ih: nn.GRU adds both bias_ih and bias_hh",
                   dict(use_bias_ih=False))]
    for order in ("".join(p) for p in itertools.permutations(GATES)):
        if order != GATES:
            found.append((f"your result matches reading the three stacked blocks as {', '.join(order)}; "
                          + IN_ORDER, dict(order=order)))
    for gate in "rz":
        found.append((f"your result matches tanh on the {GATE_NAMES[gate]} {gate}: r and z use the "
                      "sigmoid, so that they lie in (0, 1); only n uses tanh", dict(tanh_gates="n" + gate)))
    found.append(("your result matches the sigmoid on the new gate n: n uses tanh, so that the state "
                  "can move down as well as up", dict(tanh_gates="")))
    return found


def gru_stack(x, h_0, params, num_layers, wiring="", **variant):
    """Time-major stacked GRU: x (L, N, H_in), h_0 (num_layers, N, H) -> output (L, N, H), h_n.

    wiring names a mistake in how the layers connect: "input" (every layer reads x),
    "first_h0" (every layer starts from h_0[0]), "first_output" (output of layer 0).
    """
    layer_input, finals, first_output = x, [], None
    for k in range(num_layers):
        w = {name: params.get(f"{name}_l{k}") for name in WEIGHTS}
        h = h_0[0 if wiring == "first_h0" else k]
        outputs = []
        for x_t in (x if wiring == "input" else layer_input):
            h = gru_cell(x_t, h, w, **variant)
            outputs.append(h)
        layer_input = torch.stack(outputs)   # (L, N, H): what layer k + 1 reads
        first_output = layer_input if first_output is None else first_output
        finals.append(h)
    output = first_output if wiring == "first_output" else layer_input
    return output, torch.stack(finals)


# -- the form of Cho et al. (2014), the reference of cho_gru_step --------------------

def cho_gru_cell(x_t, h, weight_ih, weight_hh, bias=None):
    """One step of the GRU as Cho et al. (2014) write it, in PyTorch's stacked layout.

    weight_ih (3H, H_in) and weight_hh (3H, H) hold the blocks r, z, n; bias (3H,), or None,
    holds one bias per gate, b_r, b_z, b_n, added once, outside every product:

        r = sigmoid(W_ir x + W_hr h + b_r)
        z = sigmoid(W_iz x + W_hz h + b_z)
        n = tanh(W_in x + W_hn (r * h) + b_n)      # the reset gate acts BEFORE the product
        h_t = (1 - z) * n + z * h
    """
    H = h.shape[-1]
    W_ir, W_iz, W_in = weight_ih.split(H)   # (H, H_in) each
    W_hr, W_hz, W_hn = weight_hh.split(H)   # (H, H) each
    b_r, b_z, b_n = bias.split(H) if bias is not None else (0.0, 0.0, 0.0)
    r = torch.sigmoid(x_t @ W_ir.T + h @ W_hr.T + b_r)
    z = torch.sigmoid(x_t @ W_iz.T + h @ W_hz.T + b_z)
    n = torch.tanh(x_t @ W_in.T + (r * h) @ W_hn.T + b_n)
    return (1 - z) * n + z * h


def cho_variants(bias: bool) -> list[tuple[str, dict]]:
    """(hint, gru_cell keywords) for the classic mistakes in the paper's form.

    gru_cell gets {"weight_ih", "weight_hh", "bias_ih": bias, "bias_hh": None}, so that
    reset="before" with these keywords is exactly cho_gru_cell.
    """
    found = [("your result matches PyTorch's form, with the reset gate applied after the product, "
              "r * (W_hn h); in the paper's form it multiplies h before it: W_hn (r * h)", dict(reset="after")),
             ("your result matches h_t = z * n + (1 - z) * h_prev; this exercise, like nn.GRU and the "
              "paper, keeps the share z of the old state: h_t = (1 - z) * n + z * h_prev",
              dict(reset="before", swap_z=True))]
    if bias:
        found.append(("your result matches leaving out the bias: add b_r, b_z and b_n once each",
                      dict(reset="before", use_bias_ih=False)))
    for order in ("".join(p) for p in itertools.permutations(GATES)):
        if order != GATES:
            found.append((f"your result matches reading the three stacked blocks as {', '.join(order)}; "
                          "the weights and the bias are stacked r, z, n", dict(reset="before", order=order)))
    return found


# -- gru_step ------------------------------------------------------------------------

class GruStepCheck(Check):
    name = "06-gru/gru_step"
    forbidden_functions = ("rnn_by_hand.gru.gru_cell",)
    student_name = "gru_step"
    reference_name = "torch.nn.GRUCell"
    forbidden = GRU_KERNELS

    VISIBLE = [dict(N=3, input_size=4, hidden_size=5, bias=True, batched=True),
               dict(input_size=3, hidden_size=6, bias=True, batched=False),
               dict(N=2, input_size=5, hidden_size=4, bias=False, batched=True)]
    HIDDEN = [dict(N=5, input_size=7, hidden_size=8, bias=True, batched=True),
              dict(N=1, input_size=2, hidden_size=3, bias=True, batched=True),
              dict(N=4, input_size=6, hidden_size=6, bias=False, batched=True),
              dict(input_size=6, hidden_size=4, bias=True, batched=False)]

    def make_cases(self, hidden=False, seed=None):
        cases = []
        for i, config in enumerate(self.HIDDEN if hidden else self.VISIBLE):
            with seeded(case_seed(9610 if hidden else 6100, i, seed)):
                cell = self.reference(config)
                lead = (config["N"],) if config["batched"] else ()
                tensors = {"x_t": torch.randn(*lead, config["input_size"], dtype=DTYPE),
                           "h_prev": torch.randn(*lead, config["hidden_size"], dtype=DTYPE)}
                tensors |= clone_tensors(cell)
            cases.append(Case(describe_config(config), config, tensors))
        return cases

    @staticmethod
    def reference(config) -> nn.GRUCell:
        return nn.GRUCell(config["input_size"], config["hidden_size"], bias=config["bias"], dtype=DTYPE)

    def run_student(self, student, case):
        t = case.tensors
        h_t = call_student(self.student_name, student, t["x_t"], t["h_prev"], t["weight_ih"],
                           t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"))
        return {"h_t": h_t}

    def run_reference(self, case):
        cell = load_weights(self.reference(case.config), case.tensors)
        with torch.no_grad():
            return {"h_t": cell(case.tensors["x_t"], case.tensors["h_prev"])}

    def compare(self, case, expected, actual):
        dims, layout = step_layout(case.config["batched"])
        return compare_tensor("h_t", expected["h_t"], actual["h_t"], dims=dims, layout=layout,
                              rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t = case.tensors
        w = {k: t.get(k) for k in WEIGHTS}
        found = [(text, {"h_t": gru_cell(t["x_t"], t["h_prev"], w, **variant)})
                 for text, variant in cell_variants(case.config["bias"])]
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- gru_forward ---------------------------------------------------------------------

def to_time_major(config: dict, x: torch.Tensor) -> torch.Tensor:
    """The case's input as (L, N, H_in)."""
    if not config.get("batched", True):
        return x.unsqueeze(1)
    return x.transpose(0, 1) if config.get("batch_first") else x


def from_time_major(config: dict, output: torch.Tensor, h_n: torch.Tensor) -> dict:
    """(L, N, H) output and (num_layers, N, H) h_n in the case's layout."""
    if not config.get("batched", True):
        return {"output": output[:, 0], "h_n": h_n[:, 0]}
    return {"output": output.transpose(0, 1) if config.get("batch_first") else output, "h_n": h_n}


class GruForwardCheck(Check):
    name = "06-gru/gru_forward"
    forbidden_functions = ("rnn_by_hand.gru.gru_stack", "rnn_by_hand.gru.gru_cell")
    student_name = "gru_forward"
    reference_name = "torch.nn.GRU"
    forbidden = GRU_KERNELS

    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, num_layers=2, batch_first=False, h_0=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, num_layers=2, batch_first=True, h_0=False),
               # input_size == hidden_size: every mistaken wiring of the layers still runs
               dict(L=6, input_size=4, hidden_size=4, num_layers=2, batched=False, h_0=True),
               dict(L=4, N=3, input_size=3, hidden_size=5, num_layers=2, bias=False, batch_first=True,
                    h_0=False)]
    HIDDEN = [dict(L=7, N=4, input_size=5, hidden_size=3, num_layers=3, batch_first=True, h_0=True),
              dict(L=3, N=2, input_size=6, hidden_size=6, num_layers=2, batch_first=False, h_0=True),
              dict(L=1, input_size=3, hidden_size=4, num_layers=1, batched=False, h_0=False),
              dict(L=6, N=2, input_size=3, hidden_size=4, num_layers=2, bias=False, batch_first=False,
                   h_0=True),
              dict(L=8, N=1, input_size=2, hidden_size=5, num_layers=2, batch_first=True, h_0=False)]
    MODULE_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first")

    def module(self, config) -> nn.GRU:
        return nn.GRU(**{k: config[k] for k in self.MODULE_ARGS if k in config}, dtype=DTYPE)

    @staticmethod
    def params(case) -> dict[str, torch.Tensor]:
        return {k[len("param."):]: v for k, v in case.tensors.items() if k.startswith("param.")}

    def make_cases(self, hidden=False, seed=None):
        cases = []
        for i, config in enumerate(self.HIDDEN if hidden else self.VISIBLE):
            with seeded(case_seed(9620 if hidden else 6200, i, seed)):
                gru = self.module(config)
                x, h_0 = make_sequence(config)
                tensors = {"input": x} | ({"h_0": h_0} if h_0 is not None else {})
                tensors |= {f"param.{k}": v.clone() for k, v in gru.state_dict().items()}
            cases.append(Case(describe_config(config), config, tensors))
        return cases

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        params = {k: v.clone() for k, v in self.params(case).items()}
        try:
            result = call_student(self.student_name, student, t["input"], t.get("h_0"), params,
                                  config["num_layers"], batch_first=config.get("batch_first", False))
        except CheckFailure as failure:
            if config["num_layers"] > 1 and "raised RuntimeError" in str(failure):
                raise CheckFailure(
                    f"{failure}\nHint: this case has num_layers = {config['num_layers']}, "
                    f"input_size = {config['input_size']} and hidden_size = {config['hidden_size']}: "
                    "layer 0 reads the input with weight_ih_l0 of shape (3H, input_size), and every layer "
                    "k > 0 reads the outputs h_t of layer k - 1 (hidden_size features) with weight_ih_l{k} "
                    "of shape (3H, H), starting from its own initial state h_0[k]") from None
            raise
        originals = self.params(case)
        changed = [k for k, v in params.items() if k in originals and not torch.equal(v, originals[k])]
        if changed or set(params) != set(originals):
            raise CheckFailure(f"{self.student_name} changed the params dict it was given "
                               f"({', '.join(changed) or 'its keys'}); read the weights without "
                               "modifying them")
        output, h_n = unpack_pair(self.student_name, result, ("output", "h_n"))
        return {"output": output, "h_n": h_n}

    def run_reference(self, case):
        gru = self.module(case.config)
        gru.load_state_dict(self.params(case))
        with torch.no_grad():
            output, h_n = gru(case.tensors["input"], case.tensors.get("h_0"))
        return {"output": output, "h_n": h_n}

    def compare(self, case, expected, actual):
        return compare_outputs(case, expected, actual, rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t, config = case.tensors, case.config
        x = to_time_major(config, t["input"])                  # (L, N, H_in)
        layers, N, H = config["num_layers"], x.shape[1], config["hidden_size"]
        zeros = torch.zeros(layers, N, H, dtype=DTYPE)
        h_0 = t["h_0"].reshape(layers, N, H) if "h_0" in t else zeros
        params = self.params(case)

        def run(wiring="", start=h_0, **variant):
            return from_time_major(config, *gru_stack(x, start, params, layers, wiring, **variant))

        found = [(text, run(**variant)) for text, variant in cell_variants(config.get("bias", True))]
        if layers > 1:
            if config["input_size"] == H:
                found.append(("your layer k > 0 reads the input of the network; it should read the outputs "
                              "h_t of layer k - 1, which are the input of layer k", run("input")))
            if "h_0" in t:
                found.append(("every layer of yours starts from h_0[0]; layer k starts from its own "
                              "initial state h_0[k]", run("first_h0")))
            found.append(("your output holds the states of the first layer; output holds the h_t of the "
                          "last layer, which is what a model on top reads", {"output": run("first_output")["output"]}))
            expected = self.run_reference(case)
            found.append(("the layers of your h_n are in reverse order: h_n[k] is the last state of layer k, "
                          "bottom layer first", {"h_n": expected["h_n"].flip(0)}))
        if "h_0" in t:
            found.append(("your result matches starting from zeros: when h_0 is given, layer k starts "
                          "from h_0[k]", run(start=zeros)))
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- cho_gru_step --------------------------------------------------------------------

class ChoGruStepCheck(Check):
    name = "06-gru/cho_gru_step"
    forbidden_functions = ("rnn_by_hand.gru.cho_gru_cell",)
    student_name = "cho_gru_step"
    reference_name = "the GRU of Cho et al. (2014) (rnn_by_hand.gru.cho_gru_cell)"
    forbidden = GRU_KERNELS

    VISIBLE = [dict(N=3, input_size=4, hidden_size=5, bias=True, batched=True),
               dict(input_size=3, hidden_size=4, bias=True, batched=False),
               dict(N=2, input_size=5, hidden_size=3, bias=False, batched=True)]
    HIDDEN = [dict(N=4, input_size=6, hidden_size=7, bias=True, batched=True),
              dict(N=1, input_size=2, hidden_size=2, bias=True, batched=True),
              dict(input_size=5, hidden_size=6, bias=True, batched=False),
              dict(N=3, input_size=4, hidden_size=4, bias=False, batched=True)]

    def make_cases(self, hidden=False, seed=None):
        cases = []
        for i, config in enumerate(self.HIDDEN if hidden else self.VISIBLE):
            with seeded(case_seed(9630 if hidden else 6300, i, seed)):
                H, lead = config["hidden_size"], ((config["N"],) if config["batched"] else ())
                cell = nn.GRUCell(config["input_size"], H, dtype=DTYPE)  # nn.GRU's initialisation
                tensors = {"x_t": torch.randn(*lead, config["input_size"], dtype=DTYPE),
                           "h_prev": torch.randn(*lead, H, dtype=DTYPE),
                           "weight_ih": cell.weight_ih.detach().clone(),
                           "weight_hh": cell.weight_hh.detach().clone()}
                if config["bias"]:
                    tensors["bias"] = torch.randn(3 * H, dtype=DTYPE)  # large enough to matter
            cases.append(Case(describe_config(config), config, tensors))
        return cases

    def run_student(self, student, case):
        t = case.tensors
        return {"h_t": call_student(self.student_name, student, t["x_t"], t["h_prev"], t["weight_ih"],
                                    t["weight_hh"], t.get("bias"))}

    def run_reference(self, case):
        t = case.tensors
        return {"h_t": cho_gru_cell(t["x_t"], t["h_prev"], t["weight_ih"], t["weight_hh"], t.get("bias"))}

    def compare(self, case, expected, actual):
        dims, layout = step_layout(case.config["batched"])
        return compare_tensor("h_t", expected["h_t"], actual["h_t"], dims=dims, layout=layout,
                              rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t = case.tensors
        w = {"weight_ih": t["weight_ih"], "weight_hh": t["weight_hh"], "bias_ih": t.get("bias"),
             "bias_hh": None}
        found = [(text, {"h_t": gru_cell(t["x_t"], t["h_prev"], w, **variant)})
                 for text, variant in cho_variants(case.config["bias"])]
        if case.config["bias"]:
            inside = dict(w, bias_ih=None, bias_hh=t["bias"])  # b_n where r multiplies it
            found.append(("your result matches r * (W_hn h + b_n): in this form b_n is added once, "
                          "outside the product and outside the reset gate",
                          {"h_t": gru_cell(t["x_t"], t["h_prev"], inside)}))
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- count_parameters ------------------------------------------------------------------

GATE_BLOCKS = {"RNN": 1, "GRU": 3, "LSTM": 4}
MODULES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}
COUNT_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size")


def count_formula(mode, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False,
                  proj_size=0, *, blocks=None, biases=2, deeper_input="D*H_out", directions=None,
                  hh_reads="H_out", weight_hr=True) -> int:
    """The parameter count, with keywords that describe a classic mistake (defaults: none).

    blocks: gate blocks per weight (1, 3, 4); biases: bias vectors per layer and direction;
    deeper_input: what layer k > 0 reads, "D*H_out", "H_out" (no bidirectional doubling),
    "input_size", or "D*H" (the unprojected size); hh_reads: "H_out" or "H" (weight_hh's
    columns); directions: how many sets of parameters each layer is counted with;
    weight_hr: whether the projection is counted.
    """
    G = GATE_BLOCKS[mode] if blocks is None else blocks
    D = 2 if bidirectional else 1
    copies = D if directions is None else directions  # parameter sets per layer
    H, P = hidden_size, proj_size
    H_out = P or H
    reads = {"D*H_out": D * H_out, "H_out": H_out, "input_size": input_size, "D*H": D * H}
    total = 0
    for k in range(num_layers):
        layer_in = input_size if k == 0 else reads[deeper_input]
        one = G * H * layer_in + G * H * (H_out if hh_reads == "H_out" else H)
        one += biases * G * H if bias else 0
        one += P * H if (P and weight_hr) else 0
        total += copies * one
    return total


def count_mistakes(config: dict) -> list[tuple[str, int]]:
    """(hint, count) for each classic mistake in this configuration."""
    mode, args = config["mode"], {k: config[k] for k in COUNT_ARGS}
    G = GATE_BLOCKS[mode]
    found = [(f"your count matches {G} gate block(s) with a single bias vector; nn.{mode} has two "
              f"biases, bias_ih and bias_hh, each of {G} * hidden_size entries", dict(biases=1)),
             ("your count matches layer k > 0 reading hidden_size features; with bidirectional=True it "
              "reads both directions' outputs concatenated, 2 * hidden_size of them (2 * proj_size for a "
              "projected LSTM)", dict(deeper_input="H_out")),
             ("your count matches layer k > 0 reading input_size features; layer k > 0 reads the "
              "outputs of layer k - 1", dict(deeper_input="input_size")),
             ("your count matches counting one direction: bidirectional=True gives every layer a second, "
              "_reverse set of the same parameters", dict(directions=1)),
             ("your count matches ignoring bidirectional=True: every layer has a second, _reverse set of "
              "parameters, and layer k > 0 reads both directions' outputs", dict(directions=1, deeper_input="H_out")),
             ("your count matches counting the biases although bias=False", dict(biases=2, bias=True))]
    for blocks in sorted(set(GATE_BLOCKS.values()) - {G}):
        names = {1: "nn.RNN has 1 (no gates)", 3: "nn.GRU has 3 (r, z, n)", 4: "nn.LSTM has 4 (i, f, g, o)"}
        found.append((f"your count matches {blocks} gate block(s) per weight for nn.{mode}: "
                      f"{names[G]}, and every weight and bias stacks that many blocks", dict(blocks=blocks)))
    if config["proj_size"]:
        found += [("your count leaves out weight_hr_l{k}, the (proj_size, hidden_size) projection of "
                   "every layer and direction", dict(weight_hr=False)),
                  ("your count has weight_hh reading hidden_size columns; with proj_size > 0 it reads the "
                   "projected state, so it is (4 * hidden_size, proj_size)", dict(hh_reads="H")),
                  ("your count has layer k > 0 reading the unprojected hidden_size features; it reads the "
                   "projected outputs, proj_size per direction", dict(deeper_input="D*H"))]
    return [(text, count_formula(mode, **(args | keywords))) for text, keywords in found]


def random_count_config(rng: random.Random) -> dict:
    mode = rng.choice(("RNN", "GRU", "LSTM"))
    H = rng.randint(1, 24)
    config = dict(mode=mode, input_size=rng.randint(1, 24), hidden_size=H, num_layers=rng.randint(1, 4),
                  bias=rng.random() < 0.75, bidirectional=rng.random() < 0.5, proj_size=0)
    if mode == "LSTM" and H > 1 and rng.random() < 0.5:
        config["proj_size"] = rng.randint(1, H - 1)  # nn.LSTM requires proj_size < hidden_size
    return config


class CountParametersCheck(Check):
    name = "06-gru/count_parameters"
    forbidden_functions = ("rnn_by_hand.gru.count_formula",)
    student_name = "count_parameters"
    reference_name = "sum(p.numel() for p in module.parameters()) of torch.nn.RNN, GRU and LSTM"

    # Fixed cases in which each classic mistake shows, then random ones.
    VISIBLE = [dict(mode="GRU", input_size=4, hidden_size=3, num_layers=1, bias=True, bidirectional=False,
                    proj_size=0),
               dict(mode="GRU", input_size=5, hidden_size=6, num_layers=2, bias=True, bidirectional=True,
                    proj_size=0),
               dict(mode="RNN", input_size=3, hidden_size=7, num_layers=3, bias=False, bidirectional=True,
                    proj_size=0),
               dict(mode="LSTM", input_size=6, hidden_size=8, num_layers=2, bias=True, bidirectional=True,
                    proj_size=3)]
    HIDDEN = [dict(mode="LSTM", input_size=2, hidden_size=5, num_layers=3, bias=True, bidirectional=True,
                   proj_size=0),
              dict(mode="GRU", input_size=9, hidden_size=2, num_layers=4, bias=False, bidirectional=True,
                   proj_size=0),
              dict(mode="RNN", input_size=1, hidden_size=1, num_layers=1, bias=True, bidirectional=False,
                   proj_size=0),
              dict(mode="LSTM", input_size=7, hidden_size=10, num_layers=3, bias=False, bidirectional=False,
                   proj_size=4)]
    RANDOM = 20

    def configs(self, hidden: bool, seed: int | None) -> list[dict]:
        """The fixed configurations, then RANDOM drawn ones, none of them a visible one if hidden."""
        rng = random.Random(case_seed(9640 if hidden else 6400, 0, seed))
        configs = list(self.HIDDEN if hidden else self.VISIBLE)
        avoid = [] if not hidden else self.configs(False, seed)
        while len(configs) < len(self.HIDDEN if hidden else self.VISIBLE) + self.RANDOM:
            config = random_count_config(rng)
            if config not in configs and config not in avoid:
                configs.append(config)
        return configs

    def make_cases(self, hidden=False, seed=None):
        return [Case(describe_config(c), c) for c in self.configs(hidden, seed)]

    @staticmethod
    def module(config) -> nn.Module:
        """The real module, on the meta device: its parameters have shapes but no storage."""
        args = {k: config[k] for k in COUNT_ARGS if k != "proj_size" or config["mode"] == "LSTM"}
        return MODULES[config["mode"]](**args, device="meta")

    def run_student(self, student, case):
        config = case.config
        count = call_student(self.student_name, student, config["mode"],
                             **{k: config[k] for k in COUNT_ARGS})
        return {"count": count}

    def run_reference(self, case):
        return {"count": sum(p.numel() for p in self.module(case.config).parameters())}

    def compare(self, case, expected, actual):
        count, want = actual["count"], expected["count"]
        if isinstance(count, torch.Tensor) and count.dim() == 0 and not count.dtype.is_floating_point:
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, numbers.Integral):
            return [f"{self.student_name} should return an int, got {type_name(count)}"
                    + (" (use // rather than / to keep integers)" if isinstance(count, float) else "")]
        if count != want:
            module = f"nn.{case.config['mode']}"
            return [f"the count is {count}, expected {want}, the number of parameters of this {module} "
                    f"({count - want:+d})"]
        return []

    def __call__(self, student, *, hidden=False, seed=None, quiet=False):
        __tracebackhide__ = True  # IPython and pytest hide this frame
        super().__call__(student, hidden=hidden, seed=seed, quiet=True)
        if not quiet:  # the base class's message speaks of float64 tolerances
            print(f"OK: {self.student_name} matches sum(p.numel()) of real nn.RNN, nn.GRU and nn.LSTM "
                  f"modules in {len(self.configs(hidden, seed))} configurations.")

    def hint(self, case, actual):
        count = actual["count"]
        if isinstance(count, bool) or not isinstance(count, numbers.Integral):
            return ""
        for text, wrong in count_mistakes(case.config):
            if wrong == count and wrong != self.run_reference(case)["count"]:
                return text
        return ""


check_gru_step = GruStepCheck()
check_gru_forward = GruForwardCheck()
check_cho_gru_step = ChoGruStepCheck()
check_count_parameters = CountParametersCheck()
