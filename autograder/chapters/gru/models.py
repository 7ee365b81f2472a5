"""Chapter 6's hand-written GRUs and counts: ours, read in mistaken ways, only to name a mistake
in a hint (gru_cell, gru_stack, bigru_layer, cell_variants, count_mistakes, rzn); Keras's GRU
with reset_after=True, the original whose weights keras_gru_to_pytorch converts (keras_gru_layer,
compared by the unit tests with a hand computation and with nn.GRU after a conversion of their
own); and the parameter count by formula (count_formula). An answer may not call any of these.
"""
from __future__ import annotations

import itertools

import torch

from ...common import WEIGHTS

COUNT_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size")

GATES = "rzn"  # PyTorch's order of the three stacked blocks, top to bottom


GATE_NAMES = {"r": "reset gate", "z": "update gate", "n": "new gate (the candidate)"}


IN_ORDER = "PyTorch stacks them r, z, n (rows [0, H) are r, [H, 2H) z, [2H, 3H) n)"


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


GATE_BLOCKS = {"RNN": 1, "GRU": 3, "LSTM": 4}


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


def bigru_layer(x, h_0, params, mistake="", **variant):
    """Time-major bidirectional GRU layer: x (L, N, H_in), h_0 (2, N, H) -> output (L, N, 2H), h_n.

    mistake names a classic slip (BIGRU_MISTAKES); variant, a mistaken step (gru_cell's keywords).
    """
    halves, finals = [], []
    for d in range(2):
        backward = d == 1
        suffix = "_l0_reverse" if backward and mistake != "forward weights twice" else "_l0"
        w = {name: params.get(name + suffix) for name in WEIGHTS}
        reads = x.flip(0) if backward and mistake not in ("backward not reversed", "backward never flipped") else x
        h = h_0[0 if mistake == "first h_0 twice" else d]
        states = []
        for x_t in reads:
            h = gru_cell(x_t, h, w, **variant)
            states.append(h)
        raw = torch.stack(states)                     # (L, N, H), in reading order
        in_time = raw.flip(0) if backward and mistake not in ("backward never flipped",
                                                              "backward not flipped back") else raw
        halves.append(in_time)
        finals.append(in_time[-1] if backward and mistake == "h_n at the last step" else raw[-1])
    if mistake == "halves swapped":
        halves = halves[::-1]
    if mistake == "h_n rows swapped":
        finals = finals[::-1]
    return torch.cat(halves, dim=-1), torch.stack(finals)


READS_FORWARDS = ("the backward direction must read the sequence from x_L to x_1; yours reads it from first "
                  "to last, like the forward direction (with the _reverse weights)")
BIGRU_MISTAKES = [  # (mistake, the outputs it shows in, hint)
    ("halves swapped", ("output",), "the forward and backward halves of output are swapped: output[..., :H] "
                                    "is the forward direction, output[..., H:] the backward one"),
    ("h_n rows swapped", ("h_n",), "the rows of your h_n are swapped: h_n[0] is the forward direction's last "
                                   "state, h_n[1] the backward one's"),
    ("backward not reversed", ("output", "h_n"), READS_FORWARDS),
    ("backward never flipped", ("output", "h_n"), READS_FORWARDS),
    ("backward not flipped back", ("output",), "after running the backward direction over the reversed "
                                               "sequence, flip its states back into time order: "
                                               "output[t, :, H:] is its state after reading x_L, ..., x_(t+1)"),
    ("h_n at the last step", ("h_n",), "the backward direction's final state is the one after it has read the "
                                       "whole sequence, which sits at time step 0 of the output "
                                       "(output[0, :, H:]), not at the last step"),
    ("forward weights twice", ("output", "h_n"), "your backward direction uses the forward weights; it has "
                                                 "its own, the keys ending in _l0_reverse (weight_ih_l0_reverse, ...)"),
    ("first h_0 twice", ("output", "h_n"), "both your directions start from h_0[0]; the backward direction "
                                           "starts from h_0[1]"),
]


KERAS_ORDER = "zrn"  # Keras's column blocks z, r, h in PyTorch's letters: its h is the new gate n


def keras_gru_layer(x, h, kernel, recurrent_kernel, bias=None):
    """Keras's GRU with reset_after=True (its default) over a batch-first x (N, L, H_in), from
    h (N, H), written for the course from its documented equations (the original whose
    weights keras_gru_to_pytorch converts).

    kernel (H_in, 3H) and recurrent_kernel (H, 3H) are used as x @ kernel and h @ recurrent_kernel,
    their column blocks z, r, h (the candidate); bias (2, 3H) is the input bias (row 0) and the
    recurrent bias (row 1), or None:

        z = sigmoid(x W_z + b_z + h U_z + c_z)
        r = sigmoid(x W_r + b_r + h U_r + c_r)
        hh = tanh(x W_h + b_h + r * (h U_h + c_h))    # r multiplies the recurrent bias c_h too
        h_t = z * h + (1 - z) * hh                     # z keeps the old state, as in nn.GRU

    Returns output (N, L, H) and h_L (N, H).
    """
    H = recurrent_kernel.shape[0]
    input_bias, recurrent_bias = (bias[0], bias[1]) if bias is not None else (0.0, 0.0)
    outputs = []
    for t in range(x.shape[1]):
        x_z, x_r, x_h = (x[:, t] @ kernel + input_bias).split(H, dim=-1)        # (N, H) each
        h_z, h_r, h_h = (h @ recurrent_kernel + recurrent_bias).split(H, dim=-1)
        z = torch.sigmoid(x_z + h_z)
        r = torch.sigmoid(x_r + h_r)
        candidate = torch.tanh(x_h + r * h_h)
        h = z * h + (1 - z) * candidate
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def rzn(stacked, order, H):
    """Blocks of H rows stacked along dim 0 in `order` (PyTorch's letters, e.g. Keras's "zrn")
    moved into PyTorch's r, z, n. For hints."""
    blocks = dict(zip(order, stacked.split(H)))
    return torch.cat([blocks[gate] for gate in GATES])
