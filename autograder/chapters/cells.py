"""Checks for chapter 7, cells and the machinery under nn.RNN.

    bilstm_to_cells(lstm)                    a bidirectional nn.LSTM copied into (forward, backward)
                                             pairs of nn.LSTMCell, one pair per layer
    cells_to_bilstm(pairs)                   the pairs copied back into a bidirectional nn.LSTM
    bidirectional_lstm_forward(input, hx, pairs)
                                             the pairs stepped by hand vs nn.LSTM(bidirectional=True)
    greedy_decode_until(cell, embedding, head, start_tokens, steps, eos, state)
                                             greedy decoding in which each sequence stops at eos, vs
                                             nn.LSTM run one step at a time on each sequence alone

The page shows the one-directional case of each (a layer copied into a cell and back, a stack
of cells stepped by hand, a greedy loop that never stops); the exercises ask for the neighbour
the page does not show. Each case builds its torch.nn modules afresh from a seed, in float64.
The copy checks compare parameters exactly (torch.equal) and outputs by value; the loop
checks compare with nn.LSTM, whose weights are copied into the cells the student steps.
`run_pairs` and `decode_until_by_hand` below are the check's own loops: read in mistaken ways,
they name mistakes in hints, or serve as the "cells" side of a copy check; tests/chapters/
test_cells.py checks that, read correctly, they equal nn.LSTM.
"""
from __future__ import annotations

import torch
from torch import nn

from ..checking import Case, Check, CheckFailure, call_student, describe_config, state_of, unpack_pair, with_state
from ..checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ..checking.credit import one_feature_each
from ..common import DTYPE, WEIGHTS, layer_tensors

ASSIGNMENT = "07-cells"

# Only the fused multi-step kernel is trapped: the exercises step nn.LSTMCell (lstm_cell) by hand.
FUSED_LSTM = ("lstm",)
# The parameter suffix of each direction after _l{k}, and its name in messages.
DIRECTIONS = ("", "_reverse")
SIDES = ("forward", "backward")


# -- helpers shared by the checks ---------------------------------------------------

def build_lstm(config: dict, state: dict | None = None) -> nn.LSTM:
    """A float64 bidirectional nn.LSTM with the case's sizes, loaded with `state` when given."""
    lstm = nn.LSTM(config["input_size"], config["hidden_size"], num_layers=config["num_layers"],
                   bias=config.get("bias", True), bidirectional=True, dtype=DTYPE)
    if state is not None:
        lstm.load_state_dict(state)
    return lstm


def layer_input_size(config: dict, k: int) -> int:
    """What the cells of layer k read: the input, or both directions' h of layer k - 1."""
    return config["input_size"] if k == 0 else 2 * config["hidden_size"]


def new_pair(input_size: int, hidden_size: int, bias: bool) -> tuple[nn.LSTMCell, nn.LSTMCell]:
    return tuple(nn.LSTMCell(input_size, hidden_size, bias=bias, dtype=DTYPE) for _ in SIDES)


def build_pairs(config: dict, tensors: dict) -> list[tuple[nn.LSTMCell, nn.LSTMCell]]:
    """The case's float64 (forward, backward) cells, one pair per layer, stored as cell{k}.{side}.*."""
    pairs = []
    for k in range(config["num_layers"]):
        pair = new_pair(layer_input_size(config, k), config["hidden_size"], config.get("bias", True))
        for side, cell in zip(SIDES, pair):
            cell.load_state_dict(state_of(tensors, f"cell{k}.{side}."))
        pairs.append(pair)
    return pairs


def pair_tensors(pairs) -> dict[str, torch.Tensor]:
    """Case tensors of a list of pairs, under cell{k}.{side}.*."""
    return {name: value for k, pair in enumerate(pairs) for side, cell in zip(SIDES, pair)
            for name, value in with_state(cell, f"cell{k}.{side}.").items()}


def pairs_from_lstm(lstm: nn.LSTM) -> list[tuple[nn.LSTMCell, nn.LSTMCell]]:
    """The check's own copy of a bidirectional nn.LSTM into one (forward, backward) pair per layer."""
    pairs = []
    for k in range(lstm.num_layers):
        size = lstm.input_size if k == 0 else 2 * lstm.hidden_size
        pair = new_pair(size, lstm.hidden_size, lstm.bias)
        for suffix, cell in zip(DIRECTIONS, pair):
            cell.load_state_dict(layer_tensors(lstm, f"_l{k}{suffix}"))
        pairs.append(pair)
    return pairs


def run_pairs(pairs, x, hx=None, *, reverse=True, restore=True, backward_first=False, layer_major=True,
              carry=True):
    """Step a bidirectional stack of LSTMCell pairs over x (L, [N,] H_in); the keywords describe
    a mistaken reading.

    reverse: False runs the backward cell from the first step to the last, like the forward one.
    restore: False leaves the backward cell's h in the order it computed them (last step first).
    backward_first: True concatenates (backward, forward) instead of (forward, backward).
    layer_major: False stacks h_n as every layer's forward state, then every layer's backward one.
    carry: False starts every step from the initial state instead of the previous one.
    Returns output (L, [N,] 2H) of the top layer, h_n and c_n (2K, [N,] H).
    """
    L, finals, layer_input = x.shape[0], {}, x
    with torch.no_grad():
        for k, pair in enumerate(pairs):
            sequences = []
            for d, cell in enumerate(pair):
                initial = None if hx is None else (hx[0][2 * k + d], hx[1][2 * k + d])
                state, hs = initial, []
                times = range(L - 1, -1, -1) if d == 1 and reverse else range(L)
                for t in times:
                    state = cell(layer_input[t], state if carry else initial)
                    hs.append(state[0])                     # ([N,] H)
                if d == 1 and reverse and restore:
                    hs = hs[::-1]                           # back in time order
                sequences.append(torch.stack(hs))           # (L, [N,] H)
                finals[k, d] = state
            layer_input = torch.cat(sequences[::-1] if backward_first else sequences, dim=-1)  # (L, [N,] 2H)
    K = len(pairs)
    order = [(k, d) for k in range(K) for d in range(2)] if layer_major else \
        [(k, d) for d in range(2) for k in range(K)]
    return (layer_input, torch.stack([finals[i][0] for i in order]),
            torch.stack([finals[i][1] for i in order]))


def make_input(config: dict, H_in: int) -> torch.Tensor:
    """Random input (L, N, H_in), or (L, H_in) for an unbatched case."""
    lead = (config["N"],) if config.get("batched", True) else ()
    return torch.randn(config["L"], *lead, H_in, dtype=DTYPE)


def make_hx(config: dict) -> dict[str, torch.Tensor]:
    """h_0 and c_0, (2 * num_layers, [N,] H), when the case gives them."""
    if not config.get("hx", True):
        return {}
    lead = (config["N"],) if config.get("batched", True) else ()
    shape = (2 * config["num_layers"], *lead, config["hidden_size"])
    return {"h_0": torch.randn(shape, dtype=DTYPE), "c_0": 2 * torch.randn(shape, dtype=DTYPE)}


def dims_of(config: dict) -> dict[str, tuple[tuple[str, ...], str]]:
    """Dimension names and readable layouts of output, h_n and c_n."""
    if not config.get("batched", True):
        state = (("layer_direction", "h"), "(2 * num_layers, H) for unbatched input, layer k's "
                 "forward state at 2k and its backward state at 2k + 1")
        return {"output": (("t", "h"), "(L, 2H) for unbatched input"), "h_n": state, "c_n": state}
    state = (("layer_direction", "n", "h"), "(2 * num_layers, N, H), layer k's forward state at 2k and "
             "its backward state at 2k + 1")
    return {"output": (("t", "n", "h"), "(L, N, 2H): the forward h, then the backward h"),
            "h_n": state, "c_n": state}


def compare_sequence(config, expected, actual, rtol, atol, prefix="") -> list[str]:
    dims = dims_of(config)
    return [prefix + p for name in ("output", "h_n", "c_n")
            for p in compare_tensor(name, expected[name], actual[name], dims=dims[name][0],
                                    layout=dims[name][1], rtol=rtol, atol=atol)]


def compare_parameters(what: str, expected: dict, actual: dict, where: dict[str, str]) -> list[str]:
    """Exact comparison (torch.equal) of copied parameters, with the source of each named.

    `what` prefixes a parameter's name: "cells[0][1]." or "your nn.LSTM's ".
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


def where_from(k: int, d: int) -> str:
    """Which parameters a cell of layer k, direction d, holds."""
    return (f"cells[{k}][{d}] ({SIDES[d]}) should get the parameters whose names end in "
            f"_l{k}{DIRECTIONS[d]}")


# -- bilstm_to_cells -----------------------------------------------------------------

def flat_cells(pairs) -> list[tuple[str, int, int, nn.LSTMCell]]:
    """(name, layer, direction, cell) of every cell of a list of pairs, in kernel order."""
    return [(f"cells[{k}][{d}]", k, d, cell) for k, pair in enumerate(pairs) for d, cell in enumerate(pair)]


def describe_pairs(pairs) -> str:
    """What the student returned, when it is not a list of (LSTMCell, LSTMCell) pairs."""
    if not isinstance(pairs, (list, tuple)):
        return type_name(pairs)
    items = ", ".join(type(p).__name__ + (f" of {len(p)}" if isinstance(p, (list, tuple)) else "") for p in pairs)
    return f"a {type(pairs).__name__} of {items}"


def is_pairs(pairs) -> bool:
    return isinstance(pairs, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(c, nn.LSTMCell) for c in p) for p in pairs)


class BiLstmToCellsCheck(Check):
    name = "07-cells/bilstm_to_cells"
    forbidden_functions = ("rnn_by_hand.chapters.cells.pairs_from_lstm", "rnn_by_hand.chapters.cells.build_pairs")
    student_name = "bilstm_to_cells"
    reference_name = "the layers and directions of torch.nn.LSTM(bidirectional=True)"

    PARTS = {"with bias": lambda config: config.get("bias", True),
             "without bias": lambda config: not config.get("bias", True)}

    VISIBLE = [dict(input_size=3, hidden_size=4, num_layers=2, bias=True, L=4, N=3),
               dict(input_size=8, hidden_size=4, num_layers=2, bias=True, L=5, N=2),
               dict(input_size=2, hidden_size=3, num_layers=1, bias=False, L=6, N=2)]
    HIDDEN = [dict(input_size=4, hidden_size=3, num_layers=3, bias=True, L=4, N=2),
              dict(input_size=6, hidden_size=3, num_layers=2, bias=False, L=5, N=1),
              dict(input_size=2, hidden_size=5, num_layers=2, bias=True, L=3, N=4)]

    def make_tensors(self, config):
        return with_state(build_lstm(config), "lstm.") | {"input": make_input(config, config["input_size"])}

    def run_student(self, student, case):
        config, before = case.config, state_of(case.tensors, "lstm.")
        lstm = build_lstm(config, before)
        try:
            pairs = call_student(f"{self.student_name}(lstm)", student, lstm)
        except CheckFailure as failure:
            if "raised RuntimeError" in str(failure) and "size" in str(failure):
                raise CheckFailure(f"{failure}\nHint: the cells of layer 0 read the input (input_size = "
                                   f"{config['input_size']}); the cells of layer k > 0 read both directions' "
                                   f"h of layer k - 1, concatenated, so their input_size is 2 * hidden_size = "
                                   f"{2 * config['hidden_size']}; and the pair cells[k] takes layer k's "
                                   "parameters, those ending in _l{k} and _l{k}_reverse") from None
            raise
        if any(not torch.equal(v, before[k]) for k, v in lstm.state_dict().items()):
            raise CheckFailure(f"{self.student_name} changed the nn.LSTM it was given; copy its weights, "
                               "leave the module as it was")
        if not is_pairs(pairs):
            raise CheckFailure(f"{self.student_name} should return a list with one pair (forward cell, "
                               f"backward cell) of nn.LSTMCell per layer; got {describe_pairs(pairs)}")
        cells = flat_cells(pairs)
        actual = {"count": len(pairs),
                  "sizes": [(c.input_size, c.hidden_size, c.bias) for _, _, _, c in cells],
                  "parameters": [{k: v.detach().clone() for k, v in c.named_parameters()} for *_, c in cells]}
        sizes_right = [(c.input_size, c.hidden_size) for *_, c in cells] == \
            [(layer_input_size(config, k), config["hidden_size"]) for k in range(config["num_layers"]) for _ in SIDES]
        if len(pairs) == config["num_layers"] and sizes_right and all(c.weight_ih.dtype == DTYPE for *_, c in cells):
            output, h_n, c_n = run_pairs(pairs, case.tensors["input"])
            actual |= {"output": output, "h_n": h_n, "c_n": c_n}
        # A copy is independent: changing a cell afterwards must leave the module alone.
        with torch.no_grad():
            for *_, cell in cells:
                for p in cell.parameters():
                    p.add_(1.0)
        actual["shares_memory"] = any(not torch.equal(v, before[k]) for k, v in lstm.state_dict().items())
        return actual

    def run_reference(self, case):
        lstm = build_lstm(case.config, state_of(case.tensors, "lstm."))
        with torch.no_grad():
            output, (h_n, c_n) = lstm(case.tensors["input"])
        return {"parameters": [layer_tensors(lstm, f"_l{k}{s}") for k in range(lstm.num_layers) for s in DIRECTIONS],
                "output": output, "h_n": h_n, "c_n": c_n}

    def compare(self, case, expected, actual):
        config = case.config
        K, H, bias = config["num_layers"], config["hidden_size"], config["bias"]
        if actual["count"] != K:
            count = actual["count"]
            return [f"the list holds {count} pair{'s' if count != 1 else ''}, expected {K}: one pair (forward, "
                    f"backward) per layer of nn.LSTM(num_layers={K}, bidirectional=True)"]
        for index, (size_in, size, has_bias) in enumerate(actual["sizes"]):
            k, d = divmod(index, 2)
            want_in = layer_input_size(config, k)
            if (size_in, size) != (want_in, H):
                why = "it reads the input" if k == 0 else \
                    f"it reads layer {k - 1}'s forward and backward h, concatenated: 2 * hidden_size"
                return [f"cells[{k}][{d}] is LSTMCell(input_size={size_in}, hidden_size={size}), expected "
                        f"LSTMCell(input_size={want_in}, hidden_size={H}): {why}"]
            if has_bias != bias:
                return [f"cells[{k}][{d}] has bias={has_bias}, but the nn.LSTM has bias={bias}: "
                        + (f"build the cells with bias=True and copy bias_ih_l{k}{DIRECTIONS[d]} and "
                           f"bias_hh_l{k}{DIRECTIONS[d]} too" if bias else
                           "an nn.LSTM without biases gives cells without biases")]
        for index, (want, got) in enumerate(zip(expected["parameters"], actual["parameters"])):
            k, d = divmod(index, 2)
            where = {w: f"lstm.{w}_l{k}{DIRECTIONS[d]}" for w in WEIGHTS}
            problems = compare_parameters(f"cells[{k}][{d}].", want, got, where)
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
        sources = {f"lstm.{name}": p.detach() for name, p in lstm.named_parameters()}
        copies = [(f"cells[{k}][{d}].{name}", value, f"lstm.{name}_l{k}{DIRECTIONS[d]}", where_from(k, d))
                  for index, parameters in enumerate(actual["parameters"]) for k, d in [divmod(index, 2)]
                  for name, value in parameters.items()]
        return misplaced_copy(copies, sources, "the module", "cell")


# -- cells_to_bilstm -----------------------------------------------------------------

class CellsToBiLstmCheck(Check):
    name = "07-cells/cells_to_bilstm"
    forbidden_functions = ("rnn_by_hand.chapters.cells.build_lstm",)
    student_name = "cells_to_bilstm"
    reference_name = "the same torch.nn.LSTMCell pairs stepped in both directions, layer by layer"

    PARTS = {"with bias": lambda config: config.get("bias", True),
             "without bias": lambda config: not config.get("bias", True)}

    VISIBLE = [dict(input_size=3, hidden_size=4, num_layers=2, bias=True, L=4, N=3),
               dict(input_size=8, hidden_size=4, num_layers=2, bias=True, L=5, N=2),
               dict(input_size=2, hidden_size=3, num_layers=1, bias=False, L=6, N=2)]
    HIDDEN = [dict(input_size=5, hidden_size=3, num_layers=3, bias=True, L=4, N=2),
              dict(input_size=6, hidden_size=3, num_layers=2, bias=False, L=5, N=1),
              dict(input_size=2, hidden_size=4, num_layers=2, bias=True, L=3, N=4)]
    ATTRIBUTES = ("input_size", "hidden_size", "num_layers", "bias")
    FIXED = (("bidirectional", True), ("batch_first", False), ("proj_size", 0))

    def make_tensors(self, config):
        pairs = [new_pair(layer_input_size(config, k), config["hidden_size"], config["bias"])
                 for k in range(config["num_layers"])]
        tensors = pair_tensors(pairs) | {"input": make_input(config, config["input_size"])}
        return tensors | make_hx(dict(config, hx=True))

    def cells_changed(self, case, pairs) -> bool:
        return any(not torch.equal(v, case.tensors[f"cell{k}.{SIDES[d]}.{n}"])
                   for _, k, d, cell in flat_cells(pairs) for n, v in cell.state_dict().items())

    def run_student(self, student, case):
        pairs = build_pairs(case.config, case.tensors)
        try:
            lstm = call_student(f"{self.student_name}(pairs)", student, pairs)
        except CheckFailure as failure:
            if "no attribute" in str(failure) and "_reverse" in str(failure):
                raise CheckFailure(f"{failure}\nHint: only an nn.LSTM built with bidirectional=True has the "
                                   "backward direction's parameters, the ones whose names end in "
                                   "_l{k}_reverse") from None
            if "no attribute 'bias_" in str(failure):
                raise CheckFailure(f"{failure}\nHint: an nn.LSTM built with bias=False has no biases to copy "
                                   "into; cells with biases need an nn.LSTM with bias=True") from None
            if "no attribute 'weight_" in str(failure):
                raise CheckFailure(f"{failure}\nHint: an nn.LSTM has weight_ih_l{{k}} and weight_hh_l{{k}} for "
                                   "k = 0 .. num_layers - 1 only: one layer per pair, num_layers=len(pairs)") from None
            if "raised RuntimeError" in str(failure) and "size" in str(failure):
                raise CheckFailure(f"{failure}\nHint: the module's input_size is what layer 0's cells read, "
                                   "pairs[0][0].input_size; its layers k > 0 read 2 * hidden_size") from None
            raise
        if self.cells_changed(case, pairs):
            raise CheckFailure(f"{self.student_name} changed the cells; copy their weights, leave the "
                               "cells as they were")
        if not isinstance(lstm, nn.LSTM):
            raise CheckFailure(f"{self.student_name} should return an nn.LSTM, got {type_name(lstm)}")
        attributes = {a: getattr(lstm, a, None) for a in self.ATTRIBUTES + tuple(a for a, _ in self.FIXED)}
        actual = {"attributes": attributes,
                  "state": {k: v.detach().clone() for k, v in lstm.state_dict().items()}}
        right = all(attributes[a] == want for a, want in self.FIXED) and \
            all(attributes[a] == case.config[a] for a in self.ATTRIBUTES)
        if right and all(v.dtype == DTYPE for v in actual["state"].values()):
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
        actual["shares_memory"] = self.cells_changed(case, pairs)
        return actual

    def run_reference(self, case):
        t = case.tensors
        pairs = build_pairs(case.config, t)
        output, h_n, c_n = run_pairs(pairs, t["input"], (t["h_0"], t["c_0"]))
        state = {f"{n}_l{k}{DIRECTIONS[d]}": v.detach().clone() for _, k, d, cell in flat_cells(pairs)
                 for n, v in cell.state_dict().items()}
        return {"state": state, "output": output, "h_n": h_n, "c_n": c_n}

    def compare(self, case, expected, actual):
        config, got = case.config, actual["attributes"]
        wrong = [f"{a}={got[a]!r} (expected {config[a]!r})" for a in self.ATTRIBUTES if got[a] != config[a]]
        wrong += [f"{a}={got[a]!r} (expected {want!r})" for a, want in self.FIXED if got[a] != want]
        if wrong:
            text = "the nn.LSTM has " + ", ".join(wrong)
            if got["bias"] is False and config["bias"]:
                text += ": the cells have biases, so the module needs bias=True and copies of bias_ih and bias_hh"
            elif got["num_layers"] != config["num_layers"]:
                text += ": one layer per pair of cells, num_layers=len(pairs)"
            elif got["input_size"] != config["input_size"]:
                text += ": input_size is what the first layer's cells read, pairs[0][0].input_size"
            return [text]
        where = {}
        for name in expected["state"]:
            weight, layer = name.split("_l", 1)
            k, d = int(layer.removesuffix("_reverse")), int(layer.endswith("_reverse"))
            where[name] = f"cells[{k}][{d}].{weight}"
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
        pairs = build_pairs(case.config, case.tensors)
        sources = {f"{name}.{n}": v.detach() for name, _, _, cell in flat_cells(pairs)
                   for n, v in cell.named_parameters()}
        copies = []
        for name, value in actual["state"].items():
            weight, layer = name.split("_l", 1)
            k, d = int(layer.removesuffix("_reverse")), int(layer.endswith("_reverse"))
            copies.append((name, value, f"cells[{k}][{d}].{weight}",
                           f"the parameters ending in _l{k}{DIRECTIONS[d]} are layer {k}'s {SIDES[d]} "
                           f"direction, cells[{k}][{d}]"))
        return misplaced_copy(copies, sources, "the cells", "nn.LSTM")


# -- bidirectional_lstm_forward ------------------------------------------------------

class BidirectionalLstmForwardCheck(Check):
    name = "07-cells/bidirectional_lstm_forward"
    forbidden_functions = ("rnn_by_hand.chapters.cells.run_pairs",)
    student_name = "bidirectional_lstm_forward"
    reference_name = "torch.nn.LSTM(num_layers=len(pairs), bidirectional=True)"
    forbidden = FUSED_LSTM
    forbidden_reason = "step the cells you are given: nn.LSTMCell is allowed, the fused nn.LSTM is not"

    # One part per feature, so that a mistake with hx omitted does not cost the unbatched part
    # too; unbatched input without hx (zeros in the unbatched layout) is its own part, and shown.
    PARTS = one_feature_each({"hx omitted": lambda config: not config["hx"],
                              "unbatched input": lambda config: not config.get("batched", True)})

    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=4, num_layers=2, hx=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, num_layers=2, hx=False),
               dict(L=6, input_size=3, hidden_size=4, num_layers=1, batched=False, hx=True),
               dict(L=4, input_size=2, hidden_size=3, num_layers=2, batched=False, hx=False)]
    HIDDEN = [dict(L=4, N=2, input_size=3, hidden_size=3, num_layers=3, hx=True),
              dict(L=7, N=1, input_size=2, hidden_size=5, num_layers=2, hx=False),
              dict(L=3, N=4, input_size=6, hidden_size=6, num_layers=2, hx=True),
              dict(L=5, input_size=4, hidden_size=4, num_layers=2, batched=False, hx=False),
              dict(L=3, input_size=5, hidden_size=2, num_layers=2, batched=False, hx=True)]

    def make_tensors(self, config):
        tensors = with_state(build_lstm(config), "lstm.") | {"input": make_input(config, config["input_size"])}
        return tensors | make_hx(config)

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        pairs = pairs_from_lstm(build_lstm(config, state_of(t, "lstm.")))
        hx = (t["h_0"].clone(), t["c_0"].clone()) if "h_0" in t else None
        try:
            result = call_student(self.student_name, student, t["input"], hx, pairs)
        except CheckFailure as failure:
            if "raised RuntimeError" in str(failure) and "input_size" in str(failure):
                raise CheckFailure(f"{failure}\nHint: only the cells of layer 0 read the input (input_size = "
                                   f"{config['input_size']}); the cells of layer k > 0 read the forward and "
                                   "the backward h of layer k - 1 at the same step, concatenated "
                                   f"(2 * hidden_size = {2 * config['hidden_size']})") from None
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
        t = case.tensors
        pairs = pairs_from_lstm(build_lstm(case.config, state_of(t, "lstm.")))
        hx = (t["h_0"], t["c_0"]) if "h_0" in t else None

        def outputs(hx=hx, **variant):
            return dict(zip(("output", "h_n", "c_n"), run_pairs(pairs, t["input"], hx, **variant)))
        start = "from zeros" if hx is None else "from its (h_0, c_0)"
        found = [("your result matches running the backward cell from the first step to the last: it reads "
                  "x_{L-1} first and x_0 last", outputs(reverse=False)),
                 ("your backward h are in the order they were computed, last step first: output[t] holds "
                  "the backward h computed at x_t; reverse the list before stacking", outputs(restore=False)),
                 ("your output has the backward h first: concatenate (forward h, backward h), as nn.LSTM "
                  "does (output[..., :H] is forward)", outputs(backward_first=True)),
                 ("your h_n lists every layer's forward state, then every backward one: nn.LSTM "
                  "interleaves them, layer k's forward at 2k and its backward at 2k + 1",
                  outputs(layer_major=False)),
                 (f"your result matches starting every time step {start}: pass each cell's (h, c) from "
                  "one step into the next", outputs(carry=False))]
        if hx is not None:
            found.append(("your result matches ignoring hx and starting from zeros: the cell of layer k, "
                          "direction d, starts from (h_0[2k + d], c_0[2k + d])", outputs(hx=None)))
        expected = self.run_reference(case)
        found.append(("h_n and c_n are swapped: return output, (h_n, c_n), in the order nn.LSTM uses",
                      {"h_n": expected["c_n"], "c_n": expected["h_n"]}))
        return first_matching_mistake(case, expected, actual, found)


# -- greedy_decode_until -------------------------------------------------------------

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


def decode_until_by_hand(cell, embedding, head, start, steps, eos, state=None, *, stop=True, freeze=True,
                         carry=True):
    """Batched greedy decoding that stops each sequence at eos, with the check's own loop; the
    keywords describe a mistaken reading.

    stop: False never stops (every sequence decodes all `steps` tokens, the page's loop).
    freeze: False lets a stopped sequence's state go on changing (its tokens are still eos).
    carry: False starts every step from zeros instead of the previous state.
    """
    token, tokens = start, []
    done = torch.zeros(start.shape, dtype=torch.bool)       # (N,): chose eos at an earlier step
    with torch.no_grad():
        for _ in range(steps):
            h, c = cell(embedding(token), state if carry else None)   # (N, H) each
            if state is not None and stop and freeze:
                keep = done.unsqueeze(-1)                   # (N, 1)
                h, c = torch.where(keep, state[0], h), torch.where(keep, state[1], c)
            state = (h, c)
            chosen = head(h).argmax(dim=-1)                 # (N,)
            token = torch.where(done, torch.full_like(chosen, eos), chosen) if stop else chosen
            tokens.append(token)
            done = done | (token == eos)
    return torch.stack(tokens, dim=1), state


class GreedyDecodeUntilCheck(Check):
    name = "07-cells/greedy_decode_until"
    forbidden_functions = ("rnn_by_hand.chapters.cells.decode_until_by_hand",)
    student_name = "greedy_decode_until"
    reference_name = "torch.nn.LSTM run one step at a time on each sequence alone, stopped at eos"
    forbidden = FUSED_LSTM
    forbidden_reason = "decode with the nn.LSTMCell you are given"

    PARTS = {"state given": lambda config: config["state"],
             "state omitted": lambda config: not config["state"]}

    VISIBLE = [dict(N=4, vocab=7, embedding_dim=4, hidden_size=6, steps=8, state=False),
               dict(N=3, vocab=6, embedding_dim=3, hidden_size=4, steps=7, state=True),
               dict(N=5, vocab=9, embedding_dim=5, hidden_size=5, steps=10, state=False)]
    HIDDEN = [dict(N=5, vocab=6, embedding_dim=4, hidden_size=3, steps=9, state=True),
              dict(N=3, vocab=8, embedding_dim=2, hidden_size=7, steps=12, state=False),
              dict(N=4, vocab=11, embedding_dim=6, hidden_size=4, steps=7, state=True)]

    def make_case(self, config, seed):
        for _ in range(200):  # redraw until some sequences stop early and some never do
            tensors = self.draw(config)
            eos = self.choose_eos(Case("", config, tensors))
            if eos is not None:
                break
        config = dict(config, eos=eos)
        return Case(describe_config(config), config, tensors)

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

    @classmethod
    def choose_eos(cls, case) -> int | None:
        """A token that stops some sequences with at least two steps to go, and never comes in one of
        them; no start token is eos, and a stopped sequence would not have gone on choosing eos."""
        embedding, cell, head = cls.modules(case)
        t, steps = case.tensors, case.config["steps"]
        state = (t["h_0"], t["c_0"]) if "h_0" in t else None
        free, _ = decode_until_by_hand(cell, embedding, head, t["start"], steps, -1, state, stop=False)
        for eos in torch.randperm(case.config["vocab"]).tolist():
            chosen = free == eos                                               # (N, steps)
            first = [row.nonzero()[0].item() if row.any() else steps for row in chosen]
            early = [n for n, at in enumerate(first) if at <= steps - 3]
            goes_on = all(not bool((free[n, first[n] + 1:] == eos).all()) for n in early)
            if early and goes_on and steps in first and not bool((t["start"] == eos).any()):
                return eos
        return None

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
        t, config = case.tensors, case.config
        embedding, cell, head = self.modules(case)
        state = (t["h_0"].clone(), t["c_0"].clone()) if "h_0" in t else None
        try:
            with torch.no_grad():
                result = call_student(self.student_name, student, cell, embedding, head, t["start"],
                                      config["steps"], config["eos"], state)
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
                               f"the cells' last states, the pair (h, c), got {type_name(final)}")
        return {"tokens": tokens, "h": final[0], "c": final[1]}

    def run_reference(self, case):
        """Each sequence alone through nn.LSTM (batch of 1), one step per call, until it chooses eos."""
        t, config = case.tensors, case.config
        embedding, cell, head = self.modules(case)
        lstm = nn.LSTM(config["embedding_dim"], config["hidden_size"], dtype=DTYPE)
        lstm.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
        eos, rows, hs, cs = config["eos"], [], [], []
        with torch.no_grad():
            for n in range(config["N"]):
                state = (t["h_0"][n].view(1, 1, -1), t["c_0"][n].view(1, 1, -1)) if "h_0" in t else None
                token, row = t["start"][n:n + 1], []
                while len(row) < config["steps"] and (not row or row[-1] != eos):
                    output, state = lstm(embedding(token).unsqueeze(0), state)   # one step: (1, 1, H)
                    token = head(output[0]).argmax(dim=-1)                        # (1,)
                    row.append(int(token))
                rows.append(row + [eos] * (config["steps"] - len(row)))  # finished: eos from then on
                hs.append(state[0][0, 0])
                cs.append(state[1][0, 0])
        return {"tokens": torch.tensor(rows, dtype=torch.long), "h": torch.stack(hs), "c": torch.stack(cs)}

    def compare(self, case, expected, actual):
        problems = compare_tokens(expected["tokens"], actual["tokens"], "(N, steps), eos repeated once a "
                                  "sequence has stopped")
        tokens, steps = actual["tokens"], case.config["steps"]
        if problems and isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] < steps:
            problems[0] += (": return all the steps, with eos after a sequence's own eos, even when every "
                            "sequence has stopped")
        for name in ("h", "c"):
            problems += compare_tensor(name, expected[name], actual[name], dims=("n", "h"),
                                       layout="(N, H), each sequence's state after the step that chose its "
                                       "eos (after the last step if it never did)",
                                       rtol=self.rtol, atol=self.atol)
        return problems

    def hint(self, case, actual):
        t = case.tensors
        embedding, cell, head = self.modules(case)
        state = (t["h_0"], t["c_0"]) if "h_0" in t else None
        args = (cell, embedding, head, t["start"], case.config["steps"], case.config["eos"], state)

        def outputs(**variant):
            tokens, (h, c) = decode_until_by_hand(*args, **variant)
            return {"tokens": tokens.double(), "h": h, "c": c}
        found = [("your result is the page's loop, which never stops: a sequence stops at the step at "
                  "which it chooses eos; from then on its tokens are eos and its state stays as it was",
                  outputs(stop=False)),
                 ("your tokens are right, but a stopped sequence's state went on changing: keep the (h, c) it "
                  "had after the step that chose eos (torch.where with the stopped rows)",
                  outputs(freeze=False)),
                 ("your result matches starting every step from a zero state: pass the cell's (h, c) from "
                  "each step into the next", outputs(carry=False))]
        as_float = dict(actual, tokens=actual["tokens"].double()) \
            if isinstance(actual.get("tokens"), torch.Tensor) else actual
        expected = self.run_reference(case)
        return first_matching_mistake(case, dict(expected, tokens=expected["tokens"].double()), as_float,
                                      found) or self.after_eos(case, expected["tokens"], actual["tokens"])

    @staticmethod
    def after_eos(case, expected: torch.Tensor, tokens) -> str:
        """Tokens right up to each sequence's eos, and wrong only after it: the filling is the mistake."""
        if not isinstance(tokens, torch.Tensor) or tokens.shape != expected.shape:
            return ""
        eos, steps = case.config["eos"], case.config["steps"]
        for n, row in enumerate(expected):
            stops = int((row == eos).nonzero()[0]) + 1 if bool((row == eos).any()) else steps
            if not torch.equal(tokens[n, :stops], row[:stops]):
                return ""
        return (f"your tokens are right up to each sequence's eos, and wrong after it: every later token of a "
                f"stopped sequence is eos ({eos} here)")


check_bilstm_to_cells = BiLstmToCellsCheck()
check_cells_to_bilstm = CellsToBiLstmCheck()
check_bidirectional_lstm_forward = BidirectionalLstmForwardCheck()
check_greedy_decode_until = GreedyDecodeUntilCheck()
