"""Chapter 5's hand-written LSTMs: ours, read in mistaken ways, only to name a mistake in a
hint (lstm_cell, lstm_layer, cell_variants); and the i, f, o, g network of CS231n's layout,
the original whose weights ifog_to_pytorch converts (ifog_lstm). The references of the
other checks are torch.nn itself. An answer may not call any of these.
"""
from __future__ import annotations

import itertools

import torch

GATES = "ifgo"  # PyTorch's order of the four stacked blocks, top to bottom


GATE_NAMES = {"i": "input gate", "f": "forget gate", "g": "cell candidate", "o": "output gate"}


def lstm_cell(x_t, h, c, w, order=GATES, tanh_gates="g", use_bias_ih=True, use_bias_hh=True,
              gate_inside_tanh=False, tanh_of_c=True):
    """One step with PyTorch's stacked weights; the keywords describe a mistaken reading.

    order: the gate each of the four blocks is taken for (PyTorch's is "ifgo").
    tanh_gates: the gates squashed by tanh instead of the sigmoid (PyTorch's is "g").
    gate_inside_tanh: h = tanh(o * c) instead of o * tanh(c).
    """
    pre = x_t @ w["weight_ih"].T + h @ w["weight_hh"].T  # (N, 4H) or (4H,)
    if use_bias_ih and w.get("bias_ih") is not None:
        pre = pre + w["bias_ih"]
    if use_bias_hh and w.get("bias_hh") is not None:
        pre = pre + w["bias_hh"]
    gate = {g: (torch.tanh if g in tanh_gates else torch.sigmoid)(block)
            for g, block in zip(order, pre.chunk(4, dim=-1))}
    c = gate["f"] * c + gate["i"] * gate["g"]
    if gate_inside_tanh:
        return torch.tanh(gate["o"] * c), c
    return gate["o"] * (torch.tanh(c) if tanh_of_c else c), c


def lstm_layer(x, h, c, w, weight_hr=None, **variant):
    """Time-major layer: x (L, N, H_in), h (N, P or H), c (N, H) -> output (L, N, *), h_L, c_L."""
    outputs = []
    for x_t in x:
        h, c = lstm_cell(x_t, h, c, w, **variant)
        if weight_hr is not None:
            h = h @ weight_hr.T  # (N, P): only h is projected, c keeps hidden_size
        outputs.append(h)
    return torch.stack(outputs), h, c


def cell_variants(bias: bool) -> list[tuple[str, dict]]:
    """(hint, lstm_cell keywords) for each classic mistake inside one step."""
    found = []
    for order in ("".join(p) for p in itertools.permutations(GATES)):
        if order == GATES:
            continue
        text = (f"your result matches reading the four stacked blocks as {', '.join(order)}; "
                "PyTorch stacks them i, f, g, o (rows [0, H) are i, [H, 2H) f, [2H, 3H) g, [3H, 4H) o)")
        if order == "ifog":
            text += ". The order i, f, o, g is CS231n's and fastbook's, not PyTorch's"
        found.append((text, dict(order=order)))
    for gate in "ifo":
        found.append((f"your result matches tanh on the {GATE_NAMES[gate]} {gate}: i, f and o use the "
                      "sigmoid, so that they lie in (0, 1); only the cell candidate g uses tanh",
                      dict(tanh_gates="g" + gate)))
    found.append(("your result matches the sigmoid on the cell candidate g: g uses tanh, so that it "
                  "can add negative values to the cell", dict(tanh_gates="")))
    if bias:
        found.append(("your result matches leaving out bias_hh: nn.LSTM adds both bias_ih and bias_hh "
                      "(only their sum matters, but both are there)", dict(use_bias_hh=False)))
        found.append(("your result matches leaving out bias_ih: nn.LSTM adds both bias_ih and bias_hh",
                      dict(use_bias_ih=False)))
    found.append(("your result matches h_t = tanh(o_t * c_t): the output gate multiplies the squashed "
                  "cell, h_t = o_t * tanh(c_t)", dict(gate_inside_tanh=True)))
    found.append(("your result matches h_t = o_t * c_t: the cell goes through tanh first, "
                  "h_t = o_t * tanh(c_t)", dict(tanh_of_c=False)))
    return found


def ifog_lstm(x, h, c, Wx, Wh, b):
    """An LSTM in the i, f, o, g convention with CS231n's layout, time-major.

    x (L, N, H_in), h and c (N, H); Wx (H_in, 4H) and Wh (H, 4H) are used as x @ Wx,
    one bias b (4H,). Returns output (L, N, H), h_L and c_L (N, H).
    """
    H = Wh.shape[0]
    outputs = []
    for x_t in x:
        a = x_t @ Wx + h @ Wh + b                  # (N, 4H): blocks i, f, o, g
        i, f, o, g = a.split(H, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs), h, c
