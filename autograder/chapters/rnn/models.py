"""Chapter 3's hand-written models: the classic misreadings of nn.RNN, computed by our own code.

Used only to name a student's mistake in a hint (the references are torch.nn itself);
an answer may not call them (they are in the checks' forbidden_functions).
"""
from __future__ import annotations

import math

import torch

from ...checking import Case, state_of
from ...common import WEIGHTS, recurrence


def shape_mistakes(config: dict, expected: dict) -> list[tuple[str, dict]]:
    """(description, predicted shapes) for the classic misreadings of nn.RNN's shapes."""
    D = 2 if config["bidirectional"] else 1
    layers, H, H_in = config["num_layers"], config["hidden_size"], config["input_size"]
    out, h_n = expected["output"], expected["h_n"]
    batched = len(config["input_shape"]) == 3
    found = []
    if D == 2:
        found += [("with bidirectional=True, output holds both directions side by side: its last "
                   "dimension is D * hidden_size, twice hidden_size", {"output": out[:-1] + (H,)}),
                  ("h_n holds one final state per layer AND per direction: its first dimension is "
                   "D * num_layers", {"h_n": (layers,) + h_n[1:]})]
    if batched:
        N = h_n[1]
        found += [("batch_first changes only input and output; h_n keeps the batch in its second "
                   "dimension, (D * num_layers, N, H), not (N, num_layers, H) as some tutorials write",
                   {"h_n": (N, D * layers, H)}),
                  ("output follows the input's layout: (L, N, ...) by default, (N, L, ...) with "
                   "batch_first=True", {"output": (out[1], out[0], out[2])})]
    else:
        found += [("unbatched input (L, H_in) gives unbatched results: no batch dimension of size 1",
                   {"output": (out[0], 1, out[1]), "h_n": (h_n[0], 1, h_n[1])}),
                  ("unbatched input (L, H_in) gives unbatched results: no batch dimension of size 1",
                   {"h_n": (h_n[0], 1, h_n[1])})]
    found += [("output holds the top layer's states only; its size does not depend on num_layers",
               {"output": out[:-1] + (D * H * layers,)}),
              ("output holds the top layer's states only; it has no num_layers dimension",
               {"output": (layers,) + out}),
              ("h_n is 3-D (2-D unbatched): layers and directions share its first dimension; "
               "h_n.view(num_layers, D, N, H) is how you separate them",
               {"h_n": (layers, D) + h_n[1:]}),
              ("the last dimension of output and h_n is the hidden size, not input_size",
               {"output": out[:-1] + (D * H_in,), "h_n": h_n[:-1] + (H_in,)})]
    return found


def bound_mistakes(config: dict, exact: dict[str, float]) -> list[tuple[str, dict[str, float]]]:
    """(description, {parameter name: bound}) for the classic slips in the bounds of the
    exercise's classifier; `exact` names every parameter. A slip is named when the student's
    bounds equal its own on the names it lists."""
    H, layers, C = config["hidden_size"], config["num_layers"], config["num_classes"]
    D = 2 if config["bidirectional"] else 1
    fan_in = D * layers * H                                    # the head reads h_n flattened
    head = [n for n in exact if n.startswith("head.")]
    rnn = [n for n in exact if not n.startswith("head.")]

    def heads(value: float) -> dict[str, float]:
        return dict.fromkeys(head, value)

    def weight_fan_in(name: str) -> int:  # rnn.weight_ih_l0: input_size; _l1 on: D * H; weight_hh: H
        if "weight_hh" in name:
            return H
        return config["input_size"] if "_l0" in name else D * H

    found = [("the head reads every final state, h_n of every layer and direction side by side for "
              "each sequence: its fan-in is D * num_layers * H, not H", heads(1 / math.sqrt(H)))]
    if layers == D == 2:  # leaving out the layers or the directions gives the same 2H: say both
        found.append(("h_n holds the final state of every layer, not only the top one's, and of both "
                      "directions: the head's fan-in is D * num_layers * H, with D = 2",
                      heads(1 / math.sqrt(2 * H))))
    if layers > 1 and layers != D:
        found.append(("h_n holds the final state of every layer, not only the top one's: the head's "
                      "fan-in is D * num_layers * H", heads(1 / math.sqrt(D * H))))
    if D == 2 and layers != D:
        found.append(("h_n holds both directions of every layer: the head's fan-in is "
                      "D * num_layers * H, with D = 2", heads(1 / math.sqrt(layers * H))))
    found += [("nn.Linear's bound is 1/sqrt(in_features), its fan-in, not 1/sqrt(out_features)",
               heads(1 / math.sqrt(C))),
              ("that is Xavier (Glorot) uniform, sqrt(6 / (fan_in + fan_out)); nn.Linear does not use it",
               heads(math.sqrt(6 / (fan_in + C)))),
              ("1/in_features loses the square root of nn.Linear's 1/sqrt(in_features)", heads(1 / fan_in)),
              ("nn.RNN draws every parameter from U(-1/sqrt(H), 1/sqrt(H)), whatever its fan-in: "
               "1/sqrt(fan_in) is nn.Linear's rule, the head's only",
               {n: 1 / math.sqrt(weight_fan_in(n)) for n in rnn if ".weight_" in n}),
              ("1/hidden_size is the classic misreading of PyTorch's U(-sqrt(k), sqrt(k)) with "
               "k = 1/hidden_size: the square root is lost", dict.fromkeys(rnn, 1 / H))]
    return found


def by_hand(case: Case, mistake: str = "") -> dict[str, torch.Tensor]:
    """Our own multi-layer (bi)directional RNN over the case, optionally with one classic mistake.

    Used only to recognise a student's mistake in a hint; the reference is nn.RNN itself.
    """
    config, state = case.config, state_of(case.tensors)
    D, layers, H = 2 if config["bidirectional"] else 1, config["num_layers"], config["hidden_size"]
    act = config["nonlinearity"]
    if mistake == "other nonlinearity":
        act = "relu" if act == "tanh" else "tanh"
    x = case.tensors["input"]
    x = x.transpose(0, 1) if config["batch_first"] else x        # (L, N, H_in)
    h_0 = case.tensors.get("h_0")
    if h_0 is None or mistake == "ignore h_0":
        h_0 = x.new_zeros(D * layers, x.shape[1], H)              # (D * num_layers, N, H)
    finals = {}
    for k in range(layers):
        halves = []
        for d in range(D):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            w = {name: state.get(name + suffix) for name in WEIGHTS}
            layer_input = x
            if mistake == "forward half only" and k > 0:
                layer_input, w = x[..., :H], dict(w, weight_ih=w["weight_ih"][:, :H])
            reverse = d == 1 and mistake != "backward not reversed"
            h = h_0[d * layers + k] if mistake == "h_0 direction-major" else h_0[k * D + d]
            raw = recurrence(layer_input.flip(0) if reverse else layer_input, h, w, act,
                             use_bias_hh=mistake != "missing bias_hh")  # (L, N, H), reading order
            in_time = raw.flip(0) if reverse and mistake != "backward not flipped back" else raw
            halves.append(in_time)
            finals[k, d] = in_time[-1] if mistake == "h_n at the last step" else raw[-1]
        if mistake == "halves swapped":
            halves = halves[::-1]
        x = torch.cat(halves, dim=-1)                             # (L, N, D * H)
    order = sorted(finals, key=lambda kd: (kd[1], kd[0])) if mistake == "h_n direction-major" \
        else sorted(finals)
    output = x.transpose(0, 1) if config["batch_first"] else x
    return {"output": output, "h_n": torch.stack([finals[kd] for kd in order])}


BIRNN_MISTAKES = [
    ("halves swapped", ("output", "h_n"),
     "the forward and backward halves are swapped: output[..., :H] is the forward direction and "
     "output[..., H:] the backward one, torch.cat([forward, backward], dim=-1), in every layer"),
    ("backward not reversed", ("output", "h_n"),
     "the backward direction must read the sequence from the last step to the first; yours reads it "
     "from first to last, like the forward direction (only with the _reverse weights)"),
    ("backward not flipped back", ("output",),
     "after running the backward direction over the reversed sequence, flip its states back into "
     "time order: output[t, :, H:] is its state after reading x_L, ..., x_(t+1), back to step t"),
    ("h_n at the last step", ("h_n",),
     "the backward direction's final state is the one after it has read the whole sequence, which "
     "sits at time step 0 of its output (output[0, :, H:]), not at the last step"),
    ("h_n direction-major", ("h_n",),
     "h_n is ordered layer by layer, forward then backward within each layer: row layer * 2 + "
     "direction, so that h_n.view(num_layers, 2, N, H) separates them; yours is ordered direction by "
     "direction"),
    ("h_0 direction-major", ("output", "h_n"),
     "h_0 is indexed like h_n: h_0[layer * D + direction] starts that layer and direction"),
    ("ignore h_0", ("output", "h_n"),
     "your result matches starting every layer and direction from zeros: use h_0 when it is given"),
    ("forward half only", ("output", "h_n"),
     "layer k > 0 reads both directions of layer k - 1, concatenated: (L, N, 2H), which is why "
     "weight_ih_l1 has shape (H, 2H)"),
    ("other nonlinearity", ("output", "h_n"),
     "your result matches the other nonlinearity: read rnn.nonlinearity ('tanh' or 'relu')"),
    ("missing bias_hh", ("output", "h_n"),
     "your result matches leaving out bias_hh: nn.RNN adds both bias_ih and bias_hh"),
]


def mean_mistakes(config: dict, output: torch.Tensor, lengths: torch.Tensor) -> list[tuple[str, dict]]:
    """(description, {'mean': rows}) for the classic ways of pooling a padded batch over time."""
    tm = output if not config["batch_first"] else output.transpose(0, 1)  # (L, N, F)
    L, N = tm.shape[:2]
    steps = torch.arange(L)[:, None]                                      # (L, 1)
    count = lengths.to(tm.dtype)[:, None]                                 # (N, 1)

    def masked_sum(valid):  # valid (L, N): the steps summed
        return (tm * valid.unsqueeze(-1).to(tm.dtype)).sum(dim=0)         # (N, F)

    total = masked_sum(steps < lengths)
    rows = torch.arange(N)
    found = [("your rows are the mean over all L_max time steps, padding included: average each "
              "sequence over its own lengths[n] real steps only", {"mean": tm.mean(dim=0)}),
             ("your rows are the sum over the real steps; the mean divides it by lengths[n]",
              {"mean": total}),
             ("you summed the real steps but divided by the padded length L_max; divide by "
              "lengths[n], the number of steps you summed", {"mean": total / L}),
             ("your rows include step lengths[n], the first padding step: the real steps of "
              "sequence n are 0 .. lengths[n] - 1", {"mean": masked_sum(steps <= lengths) / count}),
             ("your rows are each sequence's last valid step, output at lengths[n] - 1; this "
              "exercise asks for the mean over all its valid steps", {"mean": tm[lengths - 1, rows]}),
             ("your rows are sorted by length; return them in the batch's own order (row n for "
              "sequence n)", {"mean": (total / count)[torch.sort(lengths, descending=True).indices]})]
    return found
