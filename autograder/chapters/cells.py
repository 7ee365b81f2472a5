"""Checks for chapter 7, cells and the machinery under nn.RNN.

    lstm_to_cells(lstm)                      nn.LSTM's weights copied into one nn.LSTMCell per layer
    cells_to_lstm(cells)                     the cells' weights copied back into an nn.LSTM
    stacked_lstm_forward(input, hx, cells)   a stack of LSTMCells stepped by hand vs nn.LSTM(num_layers=K)
    greedy_decode(cell, embedding, head, start_tokens, steps, state)
                                             a greedy loop over a cell vs nn.LSTM run one step at a time

Each case builds its torch.nn modules afresh from a seed, in float64. The copy
checks compare parameters exactly (torch.equal) and outputs by value; the loop
checks compare with nn.LSTM, whose weights are copied into the cells the student
steps. `run_cells` below steps cells with the check's own code; the references
come from nn.LSTM, and `run_cells` (read in mistaken ways) only names mistakes
in hints, or serves as the "cells" side of a copy check.
"""
from __future__ import annotations

import torch
from torch import nn

from ..checking import Case, Check, CheckFailure, call_student, describe_config, state_of, unpack_pair, with_state
from ..checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ..common import DTYPE, WEIGHTS, layer_tensors

ASSIGNMENT = "07-cells"

# Only the fused multi-step kernel is trapped: the exercises step nn.LSTMCell (lstm_cell) by hand.
FUSED_LSTM = ("lstm",)


# -- helpers shared by the checks ---------------------------------------------------

def build_lstm(config: dict, state: dict | None = None) -> nn.LSTM:
    """A float64 nn.LSTM with the case's sizes, loaded with `state` when given."""
    lstm = nn.LSTM(config["input_size"], config["hidden_size"], num_layers=config["num_layers"],
                   bias=config.get("bias", True), dtype=DTYPE)
    if state is not None:
        lstm.load_state_dict(state)
    return lstm


def build_cells(config: dict, tensors: dict) -> list[nn.LSTMCell]:
    """The case's float64 LSTMCells, one per layer, from the tensors stored as cell{k}.*."""
    cells = []
    for k in range(config["num_layers"]):
        state = state_of(tensors, f"cell{k}.")
        cell = nn.LSTMCell(state["weight_ih"].shape[1], config["hidden_size"], bias="bias_ih" in state,
                           dtype=DTYPE)
        cell.load_state_dict(state)
        cells.append(cell)
    return cells


def cells_from_lstm(lstm: nn.LSTM) -> list[nn.LSTMCell]:
    """The check's own copy of an nn.LSTM into one LSTMCell per layer."""
    cells = []
    for k in range(lstm.num_layers):
        weights = layer_tensors(lstm, f"_l{k}")
        cell = nn.LSTMCell(weights["weight_ih"].shape[1], lstm.hidden_size, bias=lstm.bias, dtype=DTYPE)
        cell.load_state_dict(weights)
        cells.append(cell)
    return cells


def run_cells(cells, x, hx=None, *, wiring="h", order=None, carry=True):
    """Step a stack of LSTMCells over x (L, [N,] H_in); the keywords describe a mistaken reading.

    wiring: what layer k + 1 reads from layer k, "h" (right) or "c"; "x" feeds x_t to every layer.
    order: the order in which the cells are applied (default 0, 1, ..., K - 1).
    carry: False starts every step from the initial state instead of the previous one.
    Returns output (L, [N,] H) of the last cell applied, h_n and c_n (K, [N,] H) by cell index.
    """
    K = len(cells)
    order = list(range(K)) if order is None else order
    initial = [None] * K if hx is None else [(hx[0][k], hx[1][k]) for k in range(K)]
    states, outputs = list(initial), []
    with torch.no_grad():
        for x_t in x:
            layer_input = x_t
            for k in order:
                h, c = cells[k](layer_input, states[k] if carry else initial[k])
                states[k] = (h, c)
                layer_input = {"h": h, "c": c, "x": x_t}[wiring]
            outputs.append(h)
    return torch.stack(outputs), torch.stack([s[0] for s in states]), torch.stack([s[1] for s in states])


def make_input(config: dict, H_in: int) -> torch.Tensor:
    """Random input (L, N, H_in), or (L, H_in) for an unbatched case."""
    lead = (config["N"],) if config.get("batched", True) else ()
    return torch.randn(config["L"], *lead, H_in, dtype=DTYPE)


def make_hx(config: dict) -> dict[str, torch.Tensor]:
    """h_0 and c_0, (K, [N,] H), when the case gives them."""
    if not config.get("hx", True):
        return {}
    lead = (config["N"],) if config.get("batched", True) else ()
    K, H = config["num_layers"], config["hidden_size"]
    return {"h_0": torch.randn(K, *lead, H, dtype=DTYPE), "c_0": 2 * torch.randn(K, *lead, H, dtype=DTYPE)}


def dims_of(config: dict) -> dict[str, tuple[tuple[str, ...], str]]:
    """Dimension names and readable layouts of output, h_n and c_n."""
    if not config.get("batched", True):
        return {"output": (("t", "h"), "(L, H) for unbatched input"),
                "h_n": (("layer", "h"), "(num_layers, H) for unbatched input"),
                "c_n": (("layer", "h"), "(num_layers, H) for unbatched input")}
    return {"output": (("t", "n", "h"), "(L, N, H)"), "h_n": (("layer", "n", "h"), "(num_layers, N, H)"),
            "c_n": (("layer", "n", "h"), "(num_layers, N, H)")}


def compare_sequence(config, expected, actual, rtol, atol, prefix="") -> list[str]:
    dims = dims_of(config)
    return [prefix + p for name in ("output", "h_n", "c_n")
            for p in compare_tensor(name, expected[name], actual[name], dims=dims[name][0],
                                    layout=dims[name][1], rtol=rtol, atol=atol)]


def compare_parameters(what: str, expected: dict, actual: dict, where: dict[str, str]) -> list[str]:
    """Exact comparison (torch.equal) of copied parameters, with the source of each named.

    `what` prefixes a parameter's name: "cells[0]." or "your nn.LSTM's ".
    """
    for name, want in expected.items():
        got = actual.get(name)
        if got is None:
            return [f"{what} has no parameter {name}, which should be a copy of {where[name]}"]
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return [f"{what}{name} has shape {shape_str(got.shape) if isinstance(got, torch.Tensor) else '?'}, "
                    f"expected {shape_str(want.shape)} (the shape of {where[name]})"]
        if got.dtype != want.dtype:
            return [f"{what}{name} has dtype {got.dtype}, expected {want.dtype}: build the copy with "
                    f"dtype={want.dtype} (the dtype of {where[name]}), so that the values copy exactly"]
        if not torch.equal(got, want):
            error = (got - want).abs()
            return [f"{what}{name} is not an exact copy of {where[name]}: largest difference "
                    f"{error.max().item():.3g}, at {int(error.argmax())} in flattened order (a copy "
                    "must be equal, torch.equal, not merely close)"]
    return []


def which_source(tensor, sources: dict[str, torch.Tensor]) -> str:
    """The name of the source tensor that `tensor` equals exactly, or ""."""
    for name, source in sources.items():
        if isinstance(tensor, torch.Tensor) and tensor.shape == source.shape and torch.equal(tensor, source):
            return name
    return ""


def misplaced_copy(copies, sources: dict[str, torch.Tensor], origin: str, made: str) -> str:
    """For (name, value, expected source, why) copies: the first one that holds the wrong source."""
    for name, value, expected, why in copies:
        if value.dtype != DTYPE:
            return ""  # compare() has said so; values of another dtype never equal a source
        source = which_source(value, sources)
        if source and source != expected:
            return f"{name} holds {source}: {why}"
        if expected.rsplit(".", 1)[-1].startswith("bias") and not source:
            return (f"{name} is not {expected} nor any other bias of {origin}: the biases were not copied "
                    f"(a new {made} draws its own random ones)")
    return ""


# -- lstm_to_cells -------------------------------------------------------------------

class LstmToCellsCheck(Check):
    name = "07-cells/lstm_to_cells"
    forbidden_functions = ("rnn_by_hand.chapters.cells.cells_from_lstm", "rnn_by_hand.chapters.cells.build_cells")
    student_name = "lstm_to_cells"
    reference_name = "the layers of torch.nn.LSTM"

    VISIBLE = [dict(input_size=5, hidden_size=5, num_layers=2, bias=True, L=4, N=3),
               dict(input_size=3, hidden_size=4, num_layers=2, bias=True, L=5, N=2),
               dict(input_size=2, hidden_size=3, num_layers=1, bias=False, L=6, N=2)]
    HIDDEN = [dict(input_size=4, hidden_size=4, num_layers=3, bias=True, L=4, N=2),
              dict(input_size=6, hidden_size=3, num_layers=2, bias=False, L=5, N=1),
              dict(input_size=2, hidden_size=5, num_layers=3, bias=True, L=3, N=4)]

    def make_tensors(self, config):
        return with_state(build_lstm(config), "lstm.") | {"input": make_input(config, config["input_size"])}

    def run_student(self, student, case):
        lstm = build_lstm(case.config, state_of(case.tensors, "lstm."))
        try:
            cells = call_student(f"{self.student_name}(lstm)", student, lstm)
        except CheckFailure as failure:
            if "raised RuntimeError" in str(failure) and "size" in str(failure):
                raise CheckFailure(f"{failure}\nHint: cells[0] reads the input (input_size = "
                                   f"{case.config['input_size']}); cells[k] for k > 0 reads the h of layer "
                                   f"k - 1, so its input_size is hidden_size = {case.config['hidden_size']}; "
                                   "and cell k takes the parameters of layer k, whose names end in _l{k}") from None
            raise
        before = state_of(case.tensors, "lstm.")
        if any(not torch.equal(v, before[k]) for k, v in lstm.state_dict().items()):
            raise CheckFailure(f"{self.student_name} changed the nn.LSTM it was given; copy its weights, "
                               "leave the module as it was")
        if not isinstance(cells, (list, tuple)) or not all(isinstance(c, nn.LSTMCell) for c in cells):
            described = type_name(cells) if not isinstance(cells, (list, tuple)) else \
                "a " + type(cells).__name__ + " of " + ", ".join(type(c).__name__ for c in cells)
            raise CheckFailure(f"{self.student_name} should return a list of nn.LSTMCell, one per layer; "
                               f"got {described}")
        actual = {"count": len(cells),
                  "sizes": [(c.input_size, c.hidden_size, c.bias) for c in cells],
                  "parameters": [{k: v.detach().clone() for k, v in c.named_parameters()} for c in cells]}
        sizes_right = [(c.input_size, c.hidden_size) for c in cells] == \
            [(case.config["input_size"] if k == 0 else case.config["hidden_size"], case.config["hidden_size"])
             for k in range(case.config["num_layers"])]
        if sizes_right and all(c.weight_ih.dtype == DTYPE for c in cells):
            output, h_n, c_n = run_cells(cells, case.tensors["input"])
            actual |= {"output": output, "h_n": h_n, "c_n": c_n}
        # A copy is independent: changing a cell afterwards must leave the module alone.
        with torch.no_grad():
            for cell in cells:
                for p in cell.parameters():
                    p.add_(1.0)
        actual["shares_memory"] = any(not torch.equal(v, before[k]) for k, v in lstm.state_dict().items())
        return actual

    def run_reference(self, case):
        lstm = build_lstm(case.config, state_of(case.tensors, "lstm."))
        with torch.no_grad():
            output, (h_n, c_n) = lstm(case.tensors["input"])
        return {"parameters": [layer_tensors(lstm, f"_l{k}") for k in range(lstm.num_layers)],
                "output": output, "h_n": h_n, "c_n": c_n}

    def compare(self, case, expected, actual):
        config = case.config
        K, H_in, H, bias = config["num_layers"], config["input_size"], config["hidden_size"], config["bias"]
        if actual["count"] != K:
            count = actual["count"]
            return [f"the list holds {count} cell{'s' if count != 1 else ''}, expected {K}: one "
                    f"nn.LSTMCell per layer of nn.LSTM(num_layers={K})"]
        for k, (size_in, size, has_bias) in enumerate(actual["sizes"]):
            want_in = H_in if k == 0 else H
            if (size_in, size) != (want_in, H):
                why = "it reads the input" if k == 0 else f"it reads layer {k - 1}'s h, of size hidden_size"
                return [f"cells[{k}] is LSTMCell(input_size={size_in}, hidden_size={size}), expected "
                        f"LSTMCell(input_size={want_in}, hidden_size={H}): {why}"]
            if has_bias != bias:
                return [f"cells[{k}] has bias={has_bias}, but the nn.LSTM has bias={bias}: "
                        + ("build the cells with bias=True and copy bias_ih_l{k} and bias_hh_l{k} too"
                           if bias else "an nn.LSTM without biases gives cells without biases")]
        for k in range(K):
            where = {w: f"lstm.{w}_l{k}" for w in WEIGHTS}
            problems = compare_parameters(f"cells[{k}].", expected["parameters"][k], actual["parameters"][k], where)
            if problems:
                return problems
        if actual["shares_memory"]:
            return ["changing a cell's parameters afterwards changed the nn.LSTM too: the cells share "
                    "tensors with the module; copy the values (clone them, or copy_ into the cells' own "
                    "parameters) so that the two can be trained apart"]
        return compare_sequence(config, expected, actual, self.rtol, self.atol,
                                prefix="stepping your cells over the input: ")

    def hint(self, case, actual):
        if "parameters" not in actual or actual["count"] != case.config["num_layers"]:
            return ""
        lstm = build_lstm(case.config, state_of(case.tensors, "lstm."))
        sources = {f"lstm.{w}_l{j}": getattr(lstm, f"{w}_l{j}").detach()
                   for j in range(lstm.num_layers) for w in WEIGHTS if getattr(lstm, f"{w}_l{j}", None) is not None}
        copies = [(f"cells[{k}].{name}", value, f"lstm.{name}_l{k}",
                   f"cells[{k}] should get layer {k}'s parameters, the ones whose names end in _l{k}")
                  for k, parameters in enumerate(actual["parameters"]) for name, value in parameters.items()]
        return misplaced_copy(copies, sources, "the module", "cell")


# -- cells_to_lstm -------------------------------------------------------------------

class CellsToLstmCheck(Check):
    name = "07-cells/cells_to_lstm"
    forbidden_functions = ("rnn_by_hand.chapters.cells.build_lstm",)
    student_name = "cells_to_lstm"
    reference_name = "the same torch.nn.LSTMCell objects stepped layer by layer"

    VISIBLE = [dict(input_size=4, hidden_size=4, num_layers=2, bias=True, L=4, N=3),
               dict(input_size=3, hidden_size=4, num_layers=2, bias=True, L=5, N=2),
               dict(input_size=2, hidden_size=3, num_layers=1, bias=False, L=6, N=2)]
    HIDDEN = [dict(input_size=5, hidden_size=5, num_layers=3, bias=True, L=4, N=2),
              dict(input_size=6, hidden_size=3, num_layers=2, bias=False, L=5, N=1),
              dict(input_size=2, hidden_size=4, num_layers=3, bias=True, L=3, N=4)]
    ATTRIBUTES = ("input_size", "hidden_size", "num_layers", "bias")

    def make_tensors(self, config):
        tensors = {}
        for k in range(config["num_layers"]):
            cell = nn.LSTMCell(config["input_size"] if k == 0 else config["hidden_size"],
                               config["hidden_size"], bias=config["bias"], dtype=DTYPE)
            tensors |= with_state(cell, f"cell{k}.")
        tensors["input"] = make_input(config, config["input_size"])
        return tensors | make_hx(dict(config, hx=True))

    def run_student(self, student, case):
        cells = build_cells(case.config, case.tensors)
        try:
            lstm = call_student(f"{self.student_name}(cells)", student, cells)
        except CheckFailure as failure:
            if "no attribute 'bias_" in str(failure):
                raise CheckFailure(f"{failure}\nHint: an nn.LSTM built with bias=False has no biases to copy "
                                   "into; cells with biases need an nn.LSTM with bias=True") from None
            if "no attribute 'weight_" in str(failure):
                raise CheckFailure(f"{failure}\nHint: an nn.LSTM has weight_ih_l{{k}} and weight_hh_l{{k}} for "
                                   "k = 0 .. num_layers - 1 only: one layer per cell, num_layers=len(cells)") from None
            raise
        for k, cell in enumerate(cells):
            if any(not torch.equal(v, case.tensors[f"cell{k}.{n}"]) for n, v in cell.state_dict().items()):
                raise CheckFailure(f"{self.student_name} changed cells[{k}]; copy their weights, leave the "
                                   "cells as they were")
        if not isinstance(lstm, nn.LSTM):
            raise CheckFailure(f"{self.student_name} should return an nn.LSTM, got {type_name(lstm)}")
        attributes = {a: getattr(lstm, a, None) for a in self.ATTRIBUTES + ("batch_first", "bidirectional",
                                                                            "proj_size")}
        actual = {"attributes": attributes,
                  "state": {k: v.detach().clone() for k, v in lstm.state_dict().items()}}
        plain = attributes["batch_first"] is False and not attributes["bidirectional"] and not attributes["proj_size"]
        same_dtype = all(v.dtype == DTYPE for v in actual["state"].values())
        if plain and same_dtype and all(attributes[a] == case.config[a] for a in self.ATTRIBUTES):
            t = case.tensors
            try:
                with torch.no_grad():
                    output, (h_n, c_n) = lstm(t["input"], (t["h_0"], t["c_0"]))
            except Exception as error:  # noqa: BLE001 -- e.g. a float32 module given float64 input
                raise CheckFailure(f"running the nn.LSTM that {self.student_name} returned raised "
                                   f"{type(error).__name__}: {error}") from None
            actual |= {"output": output, "h_n": h_n, "c_n": c_n}
        with torch.no_grad():
            for p in lstm.parameters():
                p.add_(1.0)
        actual["shares_memory"] = any(not torch.equal(v, case.tensors[f"cell{k}.{n}"])
                                      for k, cell in enumerate(cells) for n, v in cell.state_dict().items())
        return actual

    def run_reference(self, case):
        t = case.tensors
        cells = build_cells(case.config, t)
        output, h_n, c_n = run_cells(cells, t["input"], (t["h_0"], t["c_0"]))
        state = {f"{n}_l{k}": v.detach().clone() for k, cell in enumerate(cells)
                 for n, v in cell.state_dict().items()}
        return {"state": state, "output": output, "h_n": h_n, "c_n": c_n}

    def compare(self, case, expected, actual):
        config, got = case.config, actual["attributes"]
        wrong = [f"{a}={got[a]!r} (expected {config[a]!r})" for a in self.ATTRIBUTES if got[a] != config[a]]
        wrong += [f"{a}={got[a]!r} (expected {want!r})" for a, want in
                  (("batch_first", False), ("bidirectional", False), ("proj_size", 0)) if got[a] != want]
        if wrong:
            text = "the nn.LSTM has " + ", ".join(wrong)
            if got["bias"] is False and config["bias"]:
                text += ": the cells have biases, so the module needs bias=True and copies of bias_ih and bias_hh"
            elif got["num_layers"] != config["num_layers"]:
                text += ": one layer per cell, num_layers=len(cells)"
            return [text]
        where = {name: f"cells[{name.rsplit('_l', 1)[1]}].{name.rsplit('_l', 1)[0]}" for name in expected["state"]}
        extra = sorted(set(actual["state"]) - set(expected["state"]))
        if extra:
            return [f"the nn.LSTM has parameters {', '.join(extra)} that the cells do not have"]
        problems = compare_parameters("your nn.LSTM's ", expected["state"], actual["state"], where)
        if problems:
            return problems
        if actual["shares_memory"]:
            return ["changing the module's parameters afterwards changed the cells too: the module shares "
                    "tensors with the cells; copy the values so that the two can be trained apart"]
        return compare_sequence(config, expected, actual, self.rtol, self.atol,
                                prefix="running your nn.LSTM on the input, with (h_0, c_0): ")

    def hint(self, case, actual):
        cells = build_cells(case.config, case.tensors)
        sources = {f"cells[{k}].{n}": v.detach() for k, cell in enumerate(cells) for n, v in cell.named_parameters()}
        copies = []
        for name, value in actual["state"].items():
            weight, layer = name.rsplit("_l", 1)
            copies.append((name, value, f"cells[{layer}].{weight}",
                           f"layer {layer}'s parameters, the ones whose names end in _l{layer}, come from "
                           f"cells[{layer}]"))
        return misplaced_copy(copies, sources, "the cells", "nn.LSTM")


# -- stacked_lstm_forward ------------------------------------------------------------

class StackedLstmForwardCheck(Check):
    name = "07-cells/stacked_lstm_forward"
    forbidden_functions = ("rnn_by_hand.chapters.cells.run_cells",)
    student_name = "stacked_lstm_forward"
    reference_name = "torch.nn.LSTM(num_layers=len(cells))"
    forbidden = FUSED_LSTM
    forbidden_reason = "step the cells you are given: nn.LSTMCell is allowed, the fused nn.LSTM is not"

    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, num_layers=2, hx=True),
               dict(L=4, N=2, input_size=5, hidden_size=5, num_layers=2, hx=False),
               dict(L=6, input_size=3, hidden_size=4, num_layers=2, batched=False, hx=True)]
    HIDDEN = [dict(L=4, N=2, input_size=3, hidden_size=3, num_layers=3, hx=True),
              dict(L=7, N=1, input_size=2, hidden_size=5, num_layers=2, hx=False),
              dict(L=3, N=4, input_size=6, hidden_size=6, num_layers=2, hx=True),
              dict(L=5, input_size=4, hidden_size=4, num_layers=3, batched=False, hx=False)]

    def make_tensors(self, config):
        tensors = with_state(build_lstm(config), "lstm.") | {"input": make_input(config, config["input_size"])}
        return tensors | make_hx(config)

    def run_student(self, student, case):
        t = case.tensors
        cells = cells_from_lstm(build_lstm(case.config, state_of(t, "lstm.")))
        hx = (t["h_0"].clone(), t["c_0"].clone()) if "h_0" in t else None
        try:
            result = call_student(self.student_name, student, t["input"], hx, cells)
        except CheckFailure as failure:
            if "raised RuntimeError" in str(failure) and "input_size" in str(failure):
                raise CheckFailure(f"{failure}\nHint: only cells[0] reads the input (input_size = "
                                   f"{case.config['input_size']}); cells[k] for k > 0 reads the h of layer "
                                   f"k - 1 (hidden_size = {case.config['hidden_size']})") from None
            raise
        if hx is not None and not (torch.equal(hx[0], t["h_0"]) and torch.equal(hx[1], t["c_0"])):
            raise CheckFailure(f"{self.student_name} changed h_0 or c_0 in place; compute new tensors instead")
        output, state = unpack_pair(self.student_name, result, ("output", "(h_n, c_n)"))
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise CheckFailure(f"{self.student_name} should return (output, (h_n, c_n)), as nn.LSTM does; "
                               f"its second item should be the pair (h_n, c_n), got {type_name(state)}")
        return {"output": output, "h_n": state[0], "c_n": state[1]}

    def run_reference(self, case):
        t = case.tensors
        lstm = build_lstm(case.config, state_of(t, "lstm."))
        with torch.no_grad():
            output, (h_n, c_n) = lstm(t["input"], (t["h_0"], t["c_0"]) if "h_0" in t else None)
        return {"output": output, "h_n": h_n, "c_n": c_n}

    def compare(self, case, expected, actual):
        return compare_sequence(case.config, expected, actual, self.rtol, self.atol)

    def hint(self, case, actual):
        t, K = case.tensors, case.config["num_layers"]
        cells = cells_from_lstm(build_lstm(case.config, state_of(t, "lstm.")))
        hx = (t["h_0"], t["c_0"]) if "h_0" in t else None
        x = t["input"]

        def outputs(**variant):
            output, h_n, c_n = run_cells(cells, x, hx, **variant)
            return {"output": output, "h_n": h_n, "c_n": c_n}
        found = []
        if case.config["input_size"] == case.config["hidden_size"]:
            found.append(("the layers are wired in the wrong order: your result matches feeding the input to "
                          "the last cell and the last cell's h to the one below; cells[0] reads the input and "
                          "cells[k] reads the h of cells[k - 1]", outputs(order=list(range(K))[::-1])))
        found.append(("your result matches each layer above the first reading the cell state c of the layer "
                      "below; the next layer reads h, the layer's output", outputs(wiring="c")))
        if case.config["input_size"] == case.config["hidden_size"]:
            found.append(("your result matches every layer reading the input x_t: only cells[0] reads the "
                          "input; cells[k] for k > 0 reads the new h of cells[k - 1]", outputs(wiring="x")))
        bottom = run_cells(cells[:1], x, None if hx is None else (hx[0][:1], hx[1][:1]))[0]
        found.append(("output should hold the top layer's h_t at every step (what a layer above would "
                      "read); yours matches the bottom layer's", {"output": bottom}))
        start = "from zeros" if hx is None else "from (h_0, c_0)"
        found.append((f"your result matches starting every time step {start}: pass each layer's (h, c) "
                      "from one step into the next", outputs(carry=False)))
        if hx is not None:
            found.append(("your result matches ignoring hx and starting from zeros: layer k starts from "
                          "(h_0[k], c_0[k])", dict(zip(("output", "h_n", "c_n"), run_cells(cells, x)))))
        expected = self.run_reference(case)
        found.append(("h_n and c_n are swapped: return output, (h_n, c_n), in the order nn.LSTM uses",
                      {"h_n": expected["c_n"], "c_n": expected["h_n"]}))
        return first_matching_mistake(case, expected, actual, found)


# -- greedy_decode -------------------------------------------------------------------

def compare_tokens(expected: torch.Tensor, actual, layout: str) -> list[str]:
    """Integer token sequences must be equal; say at which step they first part."""
    if not isinstance(actual, torch.Tensor):
        return [f"tokens should be a torch.Tensor, got {type_name(actual)}"]
    if actual.shape != expected.shape:
        return [f"tokens has shape {shape_str(actual.shape)}, expected {shape_str(expected.shape)}, laid "
                f"out as {layout}"]
    if actual.dtype != torch.long:
        return [f"tokens has dtype {actual.dtype}, expected torch.int64 (what argmax returns): tokens are "
                "indices into the embedding"]
    differ = actual != expected  # (N, T)
    if differ.any():
        where = differ.nonzero()
        n, t = (int(i) for i in where[torch.argsort(where[:, 1], stable=True)][0])
        return [f"tokens[n={n}, t={t}] is {int(actual[n, t])}, expected {int(expected[n, t])}; "
                f"{int(differ.sum())} of the {differ.numel()} tokens differ, the first at step t={t}"]
    return []


def decode_by_hand(cell, embedding, head, start, steps, state=None, *, feed="chosen", record="chosen",
                   carry=True):
    """Greedy decoding with the check's own loop; the keywords describe a mistaken reading.

    feed: "chosen" feeds back the token just chosen, "start" the start token every time.
    record: "chosen" records the chosen token, "fed" the token the cell read at that step.
    carry: False starts every step from zeros.
    """
    token, tokens = start, []
    with torch.no_grad():
        for _ in range(steps):
            fed = token if feed == "chosen" else start
            state = cell(embedding(fed), state if carry else None)
            token = head(state[0]).argmax(dim=-1)
            tokens.append(token if record == "chosen" else fed)
    return torch.stack(tokens, dim=1), state


class GreedyDecodeCheck(Check):
    name = "07-cells/greedy_decode"
    forbidden_functions = ("rnn_by_hand.chapters.cells.decode_by_hand",)
    student_name = "greedy_decode"
    reference_name = "torch.nn.LSTM run one step at a time with the same greedy rule"
    forbidden = FUSED_LSTM
    forbidden_reason = "decode with the nn.LSTMCell you are given"

    VISIBLE = [dict(N=3, vocab=7, embedding_dim=4, hidden_size=6, steps=8, state=False),
               dict(N=2, vocab=5, embedding_dim=3, hidden_size=4, steps=6, state=True),
               dict(N=4, vocab=9, embedding_dim=5, hidden_size=5, steps=10, state=False)]
    HIDDEN = [dict(N=5, vocab=6, embedding_dim=4, hidden_size=3, steps=9, state=True),
              dict(N=1, vocab=8, embedding_dim=2, hidden_size=7, steps=12, state=False),
              dict(N=3, vocab=11, embedding_dim=6, hidden_size=4, steps=7, state=True)]

    def make_case(self, config, seed):
        for _ in range(100):  # redraw until decoding does not settle on one token at once
            case = Case(describe_config(config), config, self.draw(config))
            if self.lively(self.run_reference(case)["tokens"]):
                break
        return case

    @staticmethod
    def draw(config) -> dict[str, torch.Tensor]:
        V, E, H, N = config["vocab"], config["embedding_dim"], config["hidden_size"], config["N"]
        cell = nn.LSTMCell(E, H, dtype=DTYPE)
        with torch.no_grad():  # larger weights than the default: livelier decoding
            for p in cell.parameters():
                p.mul_(3.0)
        tensors = with_state(cell, "cell.")
        tensors["embedding"] = 2 * torch.randn(V, E, dtype=DTYPE)
        tensors["head.weight"] = torch.randn(V, H, dtype=DTYPE)
        tensors["head.bias"] = 0.1 * torch.randn(V, dtype=DTYPE)
        tensors["start"] = torch.randint(V, (N,))
        if config["state"]:
            tensors["h_0"] = torch.randn(N, H, dtype=DTYPE)
            tensors["c_0"] = torch.randn(N, H, dtype=DTYPE)
        return tensors

    @staticmethod
    def lively(tokens: torch.Tensor) -> bool:
        """Every row uses at least three tokens: a sequence stuck on one token could not tell
        the token chosen at the last step from the start token fed back again."""
        return all(len(set(row.tolist())) >= 3 for row in tokens)

    @staticmethod
    def modules(case):
        """The case's embedding, cell and head, float64 torch.nn modules."""
        t, config = case.tensors, case.config
        embedding = nn.Embedding.from_pretrained(t["embedding"], freeze=True)
        cell = nn.LSTMCell(config["embedding_dim"], config["hidden_size"], dtype=DTYPE)
        cell.load_state_dict(state_of(t, "cell."))
        head = nn.Linear(config["hidden_size"], config["vocab"], dtype=DTYPE)
        head.load_state_dict(state_of(t, "head."))
        return embedding, cell, head

    def run_student(self, student, case):
        t = case.tensors
        embedding, cell, head = self.modules(case)
        state = (t["h_0"].clone(), t["c_0"].clone()) if "h_0" in t else None
        try:
            with torch.no_grad():
                result = call_student(self.student_name, student, cell, embedding, head, t["start"],
                                      case.config["steps"], state)
        except CheckFailure as failure:
            if "raised RuntimeError" in str(failure) and "batch size" in str(failure):
                raise CheckFailure(f"{failure}\nHint: the token fed back has one entry per sequence, shape "
                                   "(N,): take the argmax over the last dimension of the (N, V) logits, "
                                   "the vocabulary") from None
            raise
        if state is not None and not (torch.equal(state[0], t["h_0"]) and torch.equal(state[1], t["c_0"])):
            raise CheckFailure(f"{self.student_name} changed the initial state in place; compute new tensors")
        tokens, final = unpack_pair(self.student_name, result, ("tokens", "(h, c)"))
        if not isinstance(final, (tuple, list)) or len(final) != 2:
            raise CheckFailure(f"{self.student_name} should return (tokens, (h, c)); its second item should be "
                               f"the cell's last state, the pair (h, c), got {type_name(final)}")
        return {"tokens": tokens, "h": final[0], "c": final[1]}

    def run_reference(self, case):
        """nn.LSTM with the cell's weights, one step per call, with the same greedy rule."""
        t, config = case.tensors, case.config
        embedding, cell, head = self.modules(case)
        lstm = nn.LSTM(config["embedding_dim"], config["hidden_size"], dtype=DTYPE)
        lstm.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
        state = (t["h_0"].unsqueeze(0), t["c_0"].unsqueeze(0)) if "h_0" in t else None
        token, tokens = t["start"], []
        with torch.no_grad():
            for _ in range(config["steps"]):
                output, state = lstm(embedding(token).unsqueeze(0), state)  # one time step: (1, N, H)
                token = head(output[0]).argmax(dim=-1)                      # (N,)
                tokens.append(token)
        return {"tokens": torch.stack(tokens, dim=1), "h": state[0][0], "c": state[1][0]}

    def compare(self, case, expected, actual):
        problems = compare_tokens(expected["tokens"], actual["tokens"], "(N, steps)")
        tokens, steps = actual["tokens"], case.config["steps"]
        if problems and isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] == steps + 1:
            problems[0] += (f": tokens holds the {steps} generated tokens only; the start token is not "
                            "included")
        for name in ("h", "c"):
            problems += compare_tensor(name, expected[name], actual[name], dims=("n", "h"),
                                       layout="(N, H), the cell's state after the last step",
                                       rtol=self.rtol, atol=self.atol)
        return problems

    def hint(self, case, actual):
        t = case.tensors
        embedding, cell, head = self.modules(case)
        state = (t["h_0"], t["c_0"]) if "h_0" in t else None
        args = (cell, embedding, head, t["start"], case.config["steps"], state)

        def outputs(**variant):
            tokens, (h, c) = decode_by_hand(*args, **variant)
            return {"tokens": tokens.double(), "h": h, "c": c}
        found = [("your result matches feeding the start token back at every step: feed back the token "
                  "chosen at the step before (free running), not the first one", outputs(feed="start")),
                 ("your tokens are one step behind: tokens[:, t] should be the argmax of the logits computed "
                  "at step t, after the cell has read tokens[:, t - 1]; yours record the token the cell read "
                  "(the previous step's choice), starting with the start token", outputs(record="fed")),
                 ("your result matches starting every step from a zero state: pass the cell's (h, c) from "
                  "each step into the next", outputs(carry=False))]
        as_float = dict(actual, tokens=actual["tokens"].double()) \
            if isinstance(actual.get("tokens"), torch.Tensor) else actual
        expected = self.run_reference(case)
        return first_matching_mistake(case, dict(expected, tokens=expected["tokens"].double()), as_float, found)


check_lstm_to_cells = LstmToCellsCheck()
check_cells_to_lstm = CellsToLstmCheck()
check_stacked_lstm_forward = StackedLstmForwardCheck()
check_greedy_decode = GreedyDecodeCheck()
