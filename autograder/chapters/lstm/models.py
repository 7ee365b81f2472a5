"""Chapter 5's hand-written LSTMs: ours, read in mistaken ways, only to name a mistake in a
hint (lstm_cell, lstm_layer, cell_variants, peephole_cell, peephole_variants, to_pytorch_order);
TensorFlow 1's BasicLSTMCell, the original whose weights tf_lstm_to_pytorch converts
(tf_lstm_layer, compared by the unit tests with nn.LSTM after a conversion of their own);
and the peephole LSTM step, which has no torch.nn module and is peephole_lstm_step's reference
(peephole_lstm_cell, compared by the unit tests with a hand computation and with nn.LSTMCell).
The references of the other checks are torch.nn itself. An answer may not call any of these.
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


def tf_lstm_layer(x, h, c, kernel, bias, forget_bias=1.0):
    """TensorFlow 1's BasicLSTMCell over a sequence, time-major, written for the course from
    its documented equations (the original whose weights tf_lstm_to_pytorch converts).

    x (L, N, H_in), h and c (N, H); kernel (H_in + H, 4H) multiplies concat([x_t, h]) from
    the right, so its first H_in rows read x_t and its last H rows read h; its column blocks
    are i, j, f, o, with j the cell candidate; bias (4H,); forget_bias, a constant of the
    cell (not a variable), is added inside the forget gate's sigmoid:

        i, j, f, o = split(concat([x_t, h]) @ kernel + bias)
        c_t = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j)
        h_t = tanh(c_t) * sigmoid(o)

    Returns output (L, N, H), h_L and c_L (N, H).
    """
    H = kernel.shape[1] // 4
    outputs = []
    for x_t in x:
        a = torch.cat([x_t, h], dim=-1) @ kernel + bias    # (N, 4H): blocks i, j, f, o
        i, j, f, o = a.split(H, dim=-1)
        c = c * torch.sigmoid(f + forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        outputs.append(h)
    return torch.stack(outputs), h, c


def to_pytorch_order(stacked, order, H):
    """Blocks of H rows stacked along dim 0 in `order`, named by PyTorch's gate letters
    (TensorFlow's i, j, f, o is "igfo"), moved into PyTorch's i, f, g, o. For hints."""
    blocks = dict(zip(order, stacked.split(H)))
    return torch.cat([blocks[gate] for gate in GATES])


PEEPHOLES = "ifo"  # the order of the three peephole blocks: the gate g has none


def peephole_lstm_cell(x_t, h, c, weight_ih, weight_hh, bias_ih=None, bias_hh=None, peephole=None):
    """One step of an LSTM with peephole connections, in nn.LSTMCell's stacked layout.

    peephole (3H,) stacks the diagonal peephole weights p_i, p_f, p_o: the input and forget
    gates look at the old cell c_{t-1}, the output gate at the new cell c_t:

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi + p_i * c_{t-1})
        f = sigmoid(W_if x + b_if + W_hf h + b_hf + p_f * c_{t-1})
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c_t = f * c_{t-1} + i * g
        o = sigmoid(W_io x + b_io + W_ho h + b_ho + p_o * c_t)
        h_t = o * tanh(c_t)

    Returns (h_t, c_t). With peephole None or zero this is nn.LSTMCell.
    """
    H = c.shape[-1]
    pre = x_t @ weight_ih.T + h @ weight_hh.T           # (N, 4H) or (4H,)
    if bias_ih is not None:
        pre = pre + bias_ih + bias_hh
    a_i, a_f, a_g, a_o = pre.split(H, dim=-1)           # PyTorch's order i, f, g, o
    p_i, p_f, p_o = peephole.split(H) if peephole is not None else (0.0, 0.0, 0.0)
    i = torch.sigmoid(a_i + p_i * c)
    f = torch.sigmoid(a_f + p_f * c)
    c_t = f * c + i * torch.tanh(a_g)
    o = torch.sigmoid(a_o + p_o * c_t)                  # the output gate sees the NEW cell
    return o * torch.tanh(c_t), c_t


def peephole_cell(x_t, h, c, w, peephole, order=GATES, peep_order=PEEPHOLES, peep_gates=PEEPHOLES,
                  output_peeks_at="new", **cell_mistakes):
    """One peephole step read in a mistaken way, for hints; the defaults are the right step.

    order: the gate each stacked block of the weights is taken for (as in lstm_cell);
    peep_order: the gate each of the three peephole blocks is taken for (right: "ifo");
    peep_gates: the gates that get a peephole at all; output_peeks_at: "new" (c_t) or "old"
    (c_{t-1}); cell_mistakes: tanh_gates, use_bias_hh, ... of lstm_cell's classic mistakes.
    """
    H = c.shape[-1]
    tanh_gates = cell_mistakes.get("tanh_gates", "g")
    pre = x_t @ w["weight_ih"].T + h @ w["weight_hh"].T  # (N, 4H) or (4H,)
    for name, use in (("bias_ih", cell_mistakes.get("use_bias_ih", True)),
                      ("bias_hh", cell_mistakes.get("use_bias_hh", True))):
        if use and w.get(name) is not None:
            pre = pre + w[name]
    a = dict(zip(order, pre.split(H, dim=-1)))
    p = dict(zip(peep_order, peephole.split(H)))

    def gate(name, cell):
        peep = p[name] * cell if name in peep_gates else 0.0
        return (torch.tanh if name in tanh_gates else torch.sigmoid)(a[name] + peep)

    i, f = gate("i", c), gate("f", c)
    c_t = f * c + i * (torch.tanh if "g" in tanh_gates else torch.sigmoid)(a["g"])
    o = gate("o", c_t if output_peeks_at == "new" else c)
    return o * torch.tanh(c_t), c_t


def peephole_variants(bias: bool) -> list[tuple[str, dict]]:
    """(hint, peephole_cell keywords) for each classic mistake in a peephole step."""
    found = [("your result matches an LSTM without peepholes, nn.LSTMCell's step: add p_i * c_prev "
              "to i's, p_f * c_prev to f's and p_o * c_t to o's pre-activation", dict(peep_gates="")),
             ("your result matches the output gate peeping at c_prev; it looks at the new cell: "
              "o_t = sigmoid(... + p_o * c_t), so compute c_t before o_t", dict(output_peeks_at="old"))]
    for missing in PEEPHOLES:
        found.append((f"your result matches leaving out the peephole of gate {missing}: "
                      "i, f and o each have one (p_i, p_f, p_o), g has none",
                      dict(peep_gates=PEEPHOLES.replace(missing, ""))))
    for order in ("".join(p) for p in itertools.permutations(PEEPHOLES)):
        if order != PEEPHOLES:
            found.append((f"your result matches reading the peephole blocks as {', '.join(order)}; "
                          "peephole stacks p_i, p_f, p_o (rows [0, H), [H, 2H), [2H, 3H))",
                          dict(peep_order=order)))
    for order in ("ifog", "figo", "igfo"):
        found.append((f"your result matches reading the four stacked weight blocks as "
                      f"{', '.join(order)}; PyTorch stacks them i, f, g, o", dict(order=order)))
    for text, variant in cell_variants(bias):
        if "order" not in variant and "gate_inside_tanh" not in variant and "tanh_of_c" not in variant:
            found.append((text, variant))
    return found
