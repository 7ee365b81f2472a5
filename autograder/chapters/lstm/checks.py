"""Checks for chapter 5, the LSTM.

    gate_blocks(lstm, gate)                                     vs that gate's rows of every gated parameter
    lstm_forward(input, hx, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, batch_first)
                                                                vs nn.LSTM (one layer, proj_size)
    peephole_lstm_step(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh, peephole)
                                                                vs `peephole_lstm_cell` (models.py)
    tf_lstm_to_pytorch(kernel, bias, forget_bias)               TensorFlow 1's BasicLSTMCell's weights,
                                                                loaded into nn.LSTM, vs `tf_lstm_layer`
    set_chrono_bias(lstm, timescales)                           vs nn.LSTM with b_f = log(T - 1) = -b_i

Each case builds the torch.nn module afresh from a seed, in float64, and hands
its weights to the student's code; the reference output comes from the module.
The peephole LSTM has no torch.nn module: its reference is `peephole_lstm_cell`
(models.py), which the unit tests compare with a hand computation and, with zero
peepholes, with nn.LSTMCell. The hand-written LSTMs there name classic mistakes in
hints; `tf_lstm_layer` is the TensorFlow cell whose weights `tf_lstm_to_pytorch` converts,
written for the course from its equations and tested against nn.LSTM after a conversion.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ...checking import Check, CheckFailure, OwnMessages, call_student, state_of, unpack_pair, with_state
from ...checking.compare import compare_tensor, first_matching_mistake, matches, shape_str, type_name
from ...common import DTYPE, WEIGHTS, CellStep, ConversionHints, layer_tensors, load_weights, state_dict_problems
from .models import (GATE_NAMES, GATES, cell_variants, lstm_layer, peephole_cell, peephole_lstm_cell,
                     peephole_variants, tf_lstm_layer, to_pytorch_order)

ROWS = ("[0, H)", "[H, 2H)", "[2H, 3H)", "[3H, 4H)")  # the rows of each block, in words
# The fused kernels behind nn.LSTM and nn.LSTMCell: the exercises write them by hand.
LSTM_KERNELS = ("lstm", "lstm_cell")


def blocks(stacked: torch.Tensor, H: int) -> dict[str, torch.Tensor]:
    """The four gate blocks of a stacked (4H, ...) parameter, by gate letter."""
    return {gate: stacked[k * H:(k + 1) * H] for k, gate in enumerate(GATES)}






# -- gate_blocks ---------------------------------------------------------------------

def gated_parameters(lstm: nn.LSTM) -> list[str]:
    """The names of the module's parameters that stack four gate blocks, in its order (the
    projection of proj_size, weight_hr_l{k}, has none)."""
    return [name for name, _ in lstm.named_parameters() if not name.startswith("weight_hr")]


class GateBlocksCheck(OwnMessages, Check):
    name = "05-lstm/gate_blocks"
    forbidden_functions = ("rnn_by_hand.chapters.lstm.checks.blocks",)
    student_name = "gate_blocks"
    reference_name = "the rows of that gate in every stacked parameter of torch.nn.LSTM"
    ok_text = "returns that gate's rows of every gated parameter, as views that write through"
    failure_text = "does not return that gate's blocks"

    # Every case has the layers or the directions that name the parameters _l1, _reverse;
    # the gates go round, and proj_size and bias=False each come twice.
    VISIBLE = [dict(input_size=3, hidden_size=5, num_layers=2, gate="f"),
               dict(input_size=4, hidden_size=3, num_layers=2, bidirectional=True, gate="i"),
               dict(input_size=2, hidden_size=4, bias=False, bidirectional=True, gate="g"),
               dict(input_size=4, hidden_size=6, proj_size=3, num_layers=2, bidirectional=True, gate="o")]
    HIDDEN = [dict(input_size=5, hidden_size=2, num_layers=3, gate="o"),
              dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, gate="g"),
              dict(input_size=6, hidden_size=3, bias=False, num_layers=2, gate="f"),
              dict(input_size=2, hidden_size=5, proj_size=2, num_layers=2, gate="i"),
              dict(input_size=1, hidden_size=1, num_layers=2, bidirectional=True, gate="f")]
    MODULE_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size")

    def module(self, config: dict, tensors: dict | None = None) -> nn.LSTM:
        """The case's nn.LSTM, with the case's weights when `tensors` is given."""
        lstm = nn.LSTM(**{k: config[k] for k in self.MODULE_ARGS if k in config}, dtype=DTYPE)
        if tensors is not None:
            lstm.load_state_dict(state_of(tensors))
        return lstm

    def make_tensors(self, config):
        return with_state(self.module(config))

    def call(self, student, lstm, gate) -> dict:
        what = f"{self.student_name}(lstm, {gate!r})"
        result = call_student(what, student, lstm, gate)
        if not isinstance(result, Mapping):
            raise CheckFailure(f"{what} should return a dict from each gated parameter's name to its "
                               f"{gate} block, got {type_name(result)}")
        return dict(result)

    def run_student(self, student, case):
        gate = case.config["gate"]
        blocks_of = self.call(student, self.module(case.config, case.tensors), gate)
        actual = {"keys": list(blocks_of), "blocks": {k: v.detach().clone() if isinstance(v, torch.Tensor) else v
                                                      for k, v in blocks_of.items()}}
        # Writing through: on a fresh module, add 1000 to each block the answer returns and see
        # which of the module's own rows moved.
        lstm = self.module(case.config, case.tensors)
        written = self.call(student, lstm, gate)
        with torch.no_grad():
            for block in written.values():
                if isinstance(block, torch.Tensor) and block.is_floating_point():
                    block.add_(1000.0)
        state = state_of(case.tensors)
        actual["moved"] = {name: (p.detach() - state[name]).abs() > 500 for name, p in lstm.named_parameters()}
        return actual

    def run_reference(self, case):
        lstm, H = self.module(case.config, case.tensors), case.config["hidden_size"]
        with torch.no_grad():
            return {"blocks": {name: blocks(getattr(lstm, name), H)[case.config["gate"]].clone()
                               for name in gated_parameters(lstm)}}

    def compare(self, case, expected, actual):
        want, got = expected["blocks"], actual["blocks"]
        extra = [k for k in actual["keys"] if k not in want]
        missing = [k for k in want if k not in got]
        problems = []
        if any(str(k).startswith("weight_hr") for k in extra):
            problems.append("weight_hr_l{k}, the projection of proj_size, has no gates: leave it out of the dict")
        problems += [f"the dict has a key {k!r} that is not a gated parameter of this nn.LSTM" for k in extra
                     if not str(k).startswith("weight_hr")]
        if missing:
            problems.append(f"the dict has no key {missing[0]!r}" + (f" (nor {len(missing) - 1} more)"
                                                                    if len(missing) > 1 else "")
                            + ": it holds every gated parameter of the module, each layer's and each direction's")
        if problems:
            return problems
        H, gate = case.config["hidden_size"], case.config["gate"]
        for name in want:
            dims = ("row", "col") if want[name].dim() == 2 else ("row",)
            problems = compare_tensor(f"{name}'s {gate} block", want[name], got[name], dims=dims,
                                      rtol=self.rtol, atol=self.atol)
            if problems:
                return problems
        k = GATES.index(gate)
        for name in want:
            rows = torch.zeros_like(actual["moved"][name])
            rows[k * H:(k + 1) * H] = True
            if not torch.equal(actual["moved"][name], rows):
                return [f"writing into your {name} block did not change rows [{k * H}, {(k + 1) * H}) of the "
                        f"module's {name}: your blocks are copies (.clone(), torch.cat, or indexing with a "
                        "list or a mask); slice the rows, param[k * H:(k + 1) * H], so that a block is a view "
                        "and writing into it changes the LSTM"]
        return []

    def error_hint(self, case, message):
        if case.config.get("proj_size") and ("out of range" in message or "chunk" in message):
            return ("with proj_size > 0 each layer also has weight_hr_l{k}, (proj_size, H), the projection of "
                    "h_t: it has no gates, so leave it out rather than cut it into four")
        return ""

    def hint(self, case, actual):
        H, gate = case.config["hidden_size"], case.config["gate"]
        k = GATES.index(gate)
        state = state_of(case.tensors)
        for name, got in actual["blocks"].items():
            stacked = state.get(name)
            if stacked is None or matches(blocks(stacked, H)[gate], got):
                continue
            for other, block in blocks(stacked, H).items():
                if other != gate and matches(block, got):
                    return (f"your {gate} ({GATE_NAMES[gate]}) block of {name} is PyTorch's {other} block: "
                            "nn.LSTM stacks the gates i, f, g, o from the top, H rows each")
            if matches(stacked.reshape(H, 4, *stacked.shape[1:])[:, k], got):
                return ("each gate's block is H consecutive rows (rows [k*H, (k+1)*H) for the k-th gate), "
                        "not every fourth row")
            if isinstance(got, torch.Tensor) and stacked.dim() == 2 and got.shape[0] == 4 * H:
                return ("your block has all 4H rows: the gates are stacked along dimension 0 (the rows), "
                        "so take H of them, not a quarter of the columns")
            return ""
        return ""


# -- peephole_lstm_step -------------------------------------------------------------

class PeepholeLstmStepCheck(CellStep, Check):
    name = "05-lstm/peephole_lstm_step"
    forbidden_functions = ("rnn_by_hand.chapters.lstm.models.peephole_lstm_cell",
                           "rnn_by_hand.chapters.lstm.models.peephole_cell",
                           "rnn_by_hand.chapters.lstm.models.lstm_cell")
    student_name = "peephole_lstm_step"
    reference_name = "a peephole LSTM step (rnn_by_hand.chapters.lstm.models.peephole_lstm_cell)"
    forbidden = LSTM_KERNELS

    VISIBLE = [dict(N=3, input_size=4, hidden_size=5, bias=True, batched=True),
               dict(N=2, input_size=3, hidden_size=6, bias=False, batched=True),
               dict(input_size=4, hidden_size=5, bias=True, batched=False)]
    HIDDEN = [dict(N=5, input_size=7, hidden_size=8, bias=True, batched=True),
              dict(N=1, input_size=2, hidden_size=3, bias=True, batched=True),
              dict(N=4, input_size=5, hidden_size=6, bias=False, batched=True),
              dict(input_size=6, hidden_size=4, bias=True, batched=False)]
    PARTS = {"unbatched input": lambda config: not config["batched"],
             "without bias": lambda config: not config["bias"]}

    STATES = ("h_t", "c_t")

    @staticmethod
    def reference(config) -> nn.LSTMCell:
        """The cell whose initialisation draws the weights; the peepholes come on top."""
        return nn.LSTMCell(config["input_size"], config["hidden_size"], bias=config["bias"], dtype=DTYPE)

    def step_inputs(self, config):
        inputs = super().step_inputs(config)  # x_t and h_prev, then c_prev (the cases' draw order)
        inputs["c_prev"] = 2 * torch.randn_like(inputs["h_prev"])  # c is not bounded
        return inputs

    def make_tensors(self, config):
        tensors = super().make_tensors(config)
        # large enough that every peephole mistake shows
        return tensors | {"peephole": torch.randn(3 * config["hidden_size"], dtype=DTYPE)}

    def run_student(self, student, case):
        t = case.tensors
        state = (t["h_prev"].clone(), t["c_prev"].clone())
        result = call_student(self.student_name, student, t["x_t"], state, t["weight_ih"],
                              t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"), t["peephole"])
        if not (torch.equal(state[0], t["h_prev"]) and torch.equal(state[1], t["c_prev"])):
            raise CheckFailure(f"{self.student_name} changed h_prev or c_prev in place; compute new "
                               "tensors instead of modifying the state it was given")
        h_t, c_t = unpack_pair(self.student_name, result, ("h_t", "c_t"))
        return {"h_t": h_t, "c_t": c_t}

    def run_reference(self, case):
        t = case.tensors
        h_t, c_t = peephole_lstm_cell(t["x_t"], t["h_prev"], t["c_prev"], t["weight_ih"], t["weight_hh"],
                                      t.get("bias_ih"), t.get("bias_hh"), t["peephole"])
        return {"h_t": h_t, "c_t": c_t}

    def error_hint(self, case, message):
        H = case.config["hidden_size"]
        four_blocks = "expected 4, got 3" in message or (  # unpacked, or chunked, into four blocks
            "must match the size of tensor" in message and f"({-(-3 * H // 4)})" in message)
        if four_blocks:
            return ("peephole has 3H entries, p_i, p_f, p_o (g has no peephole): split it into "
                    "three blocks of H, not four")
        return ""

    def hint(self, case, actual):
        t = case.tensors
        w = {k: t.get(k) for k in WEIGHTS}
        found = [(text, dict(zip(self.STATES, peephole_cell(t["x_t"], t["h_prev"], t["c_prev"], w,
                                                             t["peephole"], **variant))))
                 for text, variant in peephole_variants(case.config["bias"])]
        expected = self.run_reference(case)
        found.append(("your h_t and c_t are swapped: return (h_t, c_t), in the order nn.LSTMCell uses",
                      {"h_t": expected["c_t"], "c_t": expected["h_t"]}))
        return first_matching_mistake(case, expected, actual, found)


# -- lstm_forward -------------------------------------------------------------------

def forward_layouts(config: dict) -> dict[str, tuple[tuple[str, ...], str]]:
    """Dimension names and readable layouts of output, h_n and c_n in this configuration."""
    h = "proj_size" if config.get("proj_size") else "H"
    if not config.get("batched", True):
        return {"output": (("t", "h"), f"(L, {h}) for unbatched input"),
                "h_n": (("layer", "h"), f"(1, {h}) for unbatched input"),
                "c_n": (("layer", "h"), "(1, H) for unbatched input")}
    if config.get("batch_first"):
        return {"output": (("n", "t", "h"), f"(N, L, {h}) because batch_first=True"),
                "h_n": (("layer", "n", "h"), f"(1, N, {h}) whatever batch_first says"),
                "c_n": (("layer", "n", "h"), "(1, N, H) whatever batch_first says")}
    return {"output": (("t", "n", "h"), f"(L, N, {h})"),
            "h_n": (("layer", "n", "h"), f"(1, N, {h})"),
            "c_n": (("layer", "n", "h"), "(1, N, H)")}


class LstmForwardCheck(Check):
    name = "05-lstm/lstm_forward"
    forbidden_functions = ("rnn_by_hand.chapters.lstm.models.lstm_layer", "rnn_by_hand.chapters.lstm.models.lstm_cell")
    student_name = "lstm_forward"
    reference_name = "torch.nn.LSTM"
    forbidden = LSTM_KERNELS

    # One feature per case, so that each part of the exercise is earned on its own.
    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, proj_size=0, batch_first=False, hx=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, proj_size=2, batch_first=False, hx=False),
               dict(L=6, N=2, input_size=4, hidden_size=5, proj_size=0, batch_first=True, hx=True),
               dict(L=6, input_size=4, hidden_size=5, proj_size=0, batched=False, hx=True),
               dict(L=4, N=3, input_size=2, hidden_size=5, proj_size=0, bias=False, hx=False)]
    HIDDEN = [dict(L=7, N=4, input_size=5, hidden_size=3, proj_size=0, batch_first=True, hx=False),
              dict(L=3, N=5, input_size=2, hidden_size=7, proj_size=4, batch_first=False, hx=True),
              dict(L=1, input_size=3, hidden_size=4, proj_size=0, batched=False, hx=False),
              dict(L=6, N=2, input_size=3, hidden_size=4, proj_size=0, bias=False, hx=True),
              dict(L=8, N=1, input_size=3, hidden_size=5, proj_size=1, batch_first=False, hx=False),
              dict(L=3, N=2, input_size=6, hidden_size=3, proj_size=0, batch_first=False, hx=True)]
    PARTS = {"projection": lambda config: config["proj_size"] > 0,
             "batch_first": lambda config: config.get("batch_first", False),
             "unbatched input": lambda config: not config.get("batched", True),
             "without bias": lambda config: not config.get("bias", True)}

    def make_tensors(self, config):
        lstm = self.reference(config)
        return self.make_sequence(config) | layer_tensors(lstm, "_l0")

    @staticmethod
    def make_sequence(config) -> dict[str, torch.Tensor]:
        """input, and h_0 and c_0 when the case gives them, in the case's layout."""
        L, H_in, H = config["L"], config["input_size"], config["hidden_size"]
        H_out = config.get("proj_size") or H
        N = config.get("N", 1)
        if not config.get("batched", True):
            lead, x = (), torch.randn(L, H_in, dtype=DTYPE)
        elif config.get("batch_first"):
            lead, x = (N,), torch.randn(N, L, H_in, dtype=DTYPE)
        else:
            lead, x = (N,), torch.randn(L, N, H_in, dtype=DTYPE)
        tensors = {"input": x}
        if config.get("hx", True):
            tensors["h_0"] = torch.randn(1, *lead, H_out, dtype=DTYPE)
            tensors["c_0"] = 2 * torch.randn(1, *lead, H, dtype=DTYPE)
        return tensors

    @staticmethod
    def reference(config) -> nn.LSTM:
        return nn.LSTM(config["input_size"], config["hidden_size"], num_layers=1,
                       bias=config.get("bias", True), batch_first=config.get("batch_first", False),
                       proj_size=config.get("proj_size", 0), dtype=DTYPE)

    def run_student(self, student, case):
        t = case.tensors
        hx = (t["h_0"].clone(), t["c_0"].clone()) if "h_0" in t else None
        try:
            result = call_student(self.student_name, student, t["input"], hx, t["weight_ih"], t["weight_hh"],
                                  t.get("bias_ih"), t.get("bias_hh"), weight_hr=t.get("weight_hr"),
                                  batch_first=case.config.get("batch_first", False))
        except CheckFailure as failure:
            H, P = case.config["hidden_size"], case.config.get("proj_size", 0)
            if P and "raised RuntimeError" in str(failure):
                raise CheckFailure(
                    f"{failure}\nHint: this case has proj_size = {P} and hidden_size = {H}: h_t (and h_0) "
                    f"has {P} entries, c_t (and c_0) keeps {H}, weight_hh is (4H, {P}) because it reads the "
                    f"projected h, and weight_hr is ({P}, {H}), applied to o_t * tanh(c_t) only") from None
            raise
        if hx is not None and not (torch.equal(hx[0], t["h_0"]) and torch.equal(hx[1], t["c_0"])):
            raise CheckFailure(f"{self.student_name} changed h_0 or c_0 in place; compute new tensors "
                               "instead of modifying the state it was given")
        output, state = unpack_pair(self.student_name, result, ("output", "(h_n, c_n)"))
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise CheckFailure(f"{self.student_name} should return (output, (h_n, c_n)), as nn.LSTM "
                               f"does; its second item should be the pair (h_n, c_n), got {type_name(state)}")
        return {"output": output, "h_n": state[0], "c_n": state[1]}

    def run_reference(self, case):
        t = case.tensors
        lstm = load_weights(self.reference(case.config), t, "_l0")
        with torch.no_grad():
            if "weight_hr" in t:
                lstm.weight_hr_l0.copy_(t["weight_hr"])
            hx = (t["h_0"], t["c_0"]) if "h_0" in t else None
            output, (h_n, c_n) = lstm(t["input"], hx)
        return {"output": output, "h_n": h_n, "c_n": c_n}

    def compare(self, case, expected, actual):
        dims = forward_layouts(case.config)
        return [p for name in ("output", "h_n", "c_n")
                for p in compare_tensor(name, expected[name], actual[name], dims=dims[name][0],
                                        layout=dims[name][1], rtol=self.rtol, atol=self.atol)]

    def hint(self, case, actual):
        return self.projection_hint(case, actual) or self.value_hint(case, actual)

    @staticmethod
    def projection_hint(case, actual) -> str:
        """With proj_size > 0, name the classic mistakes that show in the last dimension."""
        H, P = case.config["hidden_size"], case.config.get("proj_size", 0)
        if not P:
            return ""
        size = {k: v.shape[-1] if isinstance(v, torch.Tensor) and v.dim() else None
                for k, v in actual.items()}
        if size["h_n"] == H and size["c_n"] == P:
            return ("h_n and c_n look swapped: h_n has proj_size entries per sample and c_n hidden_size; "
                    "return output, (h_n, c_n)")
        if size["c_n"] == P:
            return (f"c_n has proj_size = {P} entries per sample; the cell keeps hidden_size = {H}. "
                    "Only h is projected: h_t = weight_hr @ (o_t * tanh(c_t))")
        if size["output"] == H or size["h_n"] == H:
            return (f"with proj_size = {P}, h_t is projected, h_t = weight_hr @ (o_t * tanh(c_t)), and "
                    f"output and h_n hold the projected h_t of size {P}, not the hidden_size = {H} "
                    "vector before the projection")
        return ""

    def value_hint(self, case, actual):
        t, config = case.tensors, case.config
        batched, batch_first = config.get("batched", True), config.get("batch_first", False)
        w = {k: t.get(k) for k in WEIGHTS}
        x = t["input"].unsqueeze(1) if not batched else (
            t["input"].transpose(0, 1) if batch_first else t["input"])  # (L, N, H_in)
        N, H = x.shape[1], config["hidden_size"]
        H_out = config.get("proj_size") or H
        if "h_0" in t:
            h, c = t["h_0"].reshape(N, H_out), t["c_0"].reshape(N, H)
        else:
            h, c = torch.zeros(N, H_out, dtype=DTYPE), torch.zeros(N, H, dtype=DTYPE)

        def layout(output, h_L, c_L):  # time-major results -> the case's layout
            if not batched:
                return {"output": output[:, 0], "h_n": h_L, "c_n": c_L}
            return {"output": output.transpose(0, 1) if batch_first else output,
                    "h_n": h_L.unsqueeze(0), "c_n": c_L.unsqueeze(0)}

        found = [(text, layout(*lstm_layer(x, h, c, w, t.get("weight_hr"), **variant)))
                 for text, variant in cell_variants(config.get("bias", True))]
        expected = self.run_reference(case)
        found.append(("h_n and c_n are swapped: return output, (h_n, c_n), in the order nn.LSTM uses",
                      {"h_n": expected["c_n"], "c_n": expected["h_n"]}))
        if "h_0" in t:
            zeros = torch.zeros(N, H_out, dtype=DTYPE), torch.zeros(N, H, dtype=DTYPE)
            found.append(("your result matches starting from zeros: when hx = (h_0, c_0) is given, the "
                          "first step reads h_0 and c_0", layout(*lstm_layer(x, *zeros, w, t.get("weight_hr")))))
        if "h_0" in t and H_out == H:
            found.append(("your result matches unpacking hx as (c_0, h_0): nn.LSTM's state is the pair "
                          "(h_0, c_0), in that order", layout(*lstm_layer(x, c, h, w, t.get("weight_hr")))))
        return first_matching_mistake(case, expected, actual, found)


# -- tf_lstm_to_pytorch ---------------------------------------------------------------

STATE_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
TF_ORDER = "igfo"  # TensorFlow's blocks i, j, f, o in PyTorch's letters: j is the candidate g
TF_LETTER = {"i": "i", "f": "f", "g": "j", "o": "o"}  # PyTorch's gate -> TensorFlow's name for it
TF_WORDS = "TensorFlow's order is i, j, f, o (j is the candidate, PyTorch's g), PyTorch's i, f, g, o"


class TfLstmToPytorchCheck(ConversionHints, Check):
    name = "05-lstm/tf_lstm_to_pytorch"
    forbidden_functions = ("rnn_by_hand.chapters.lstm.checks.blocks", "rnn_by_hand.chapters.lstm.models.tf_lstm_layer",
                           "rnn_by_hand.chapters.lstm.models.to_pytorch_order")
    student_name = "tf_lstm_to_pytorch"
    reference_name = "the TensorFlow BasicLSTMCell it converts, once loaded into torch.nn.LSTM"

    VISIBLE = [dict(input_size=3, hidden_size=4, L=5, N=2, forget_bias=1.0),
               dict(input_size=5, hidden_size=3, L=4, N=3, forget_bias=0.0),
               dict(input_size=2, hidden_size=3, L=6, N=1, forget_bias=2.5)]
    HIDDEN = [dict(input_size=8, hidden_size=2, L=5, N=2, forget_bias=1.0),  # H_in = 4H: untransposed fits
              dict(input_size=2, hidden_size=4, L=3, N=4, forget_bias=0.0),
              dict(input_size=1, hidden_size=3, L=4, N=2, forget_bias=1.0),
              dict(input_size=6, hidden_size=5, L=2, N=3, forget_bias=0.5)]
    # The weights and the bias reordered is one part; folding forget_bias in is the other.
    PARTS = {"forget_bias = 0": lambda config: config["forget_bias"] == 0,
             "forget_bias != 0": lambda config: config["forget_bias"] != 0}

    def make_tensors(self, config):
        H_in, H, L, N = (config[k] for k in ("input_size", "hidden_size", "L", "N"))
        scale = H ** -0.5  # the size nn.LSTM's own initialisation gives
        return {"kernel": scale * (2 * torch.rand(H_in + H, 4 * H, dtype=DTYPE) - 1),
                "bias": torch.randn(4 * H, dtype=DTYPE),  # trained, not TensorFlow's zeros
                "input": torch.randn(L, N, H_in, dtype=DTYPE),
                "h_0": torch.randn(1, N, H, dtype=DTYPE),
                "c_0": 2 * torch.randn(1, N, H, dtype=DTYPE)}

    def run_student(self, student, case):
        t = case.tensors
        result = call_student(self.student_name, student, t["kernel"], t["bias"],
                              forget_bias=case.config["forget_bias"])
        if not isinstance(result, Mapping):
            raise CheckFailure(f"{self.student_name} should return a dict with the keys "
                               f"{', '.join(STATE_KEYS)}, that nn.LSTM.load_state_dict accepts; "
                               f"got {type_name(result)}")
        return {"converted": dict(result)}

    def run_reference(self, case):
        t = case.tensors
        output, h_L, c_L = tf_lstm_layer(t["input"], t["h_0"][0], t["c_0"][0], t["kernel"], t["bias"],
                                         case.config["forget_bias"])
        return {"output": output, "h_n": h_L.unsqueeze(0), "c_n": c_L.unsqueeze(0)}

    def expected_shapes(self, case) -> dict[str, tuple[int, ...]]:
        H_in, H = case.config["input_size"], case.config["hidden_size"]
        return {"weight_ih_l0": (4 * H, H_in), "weight_hh_l0": (4 * H, H),
                "bias_ih_l0": (4 * H,), "bias_hh_l0": (4 * H,)}

    def compare(self, case, expected, actual):
        converted = actual["converted"]
        problems = self.compare_state(case, converted)
        if problems:
            return problems
        lstm = nn.LSTM(case.config["input_size"], case.config["hidden_size"], dtype=DTYPE)
        try:
            lstm.load_state_dict(converted)
        except Exception as error:  # noqa: BLE001 -- reported as feedback
            return [f"nn.LSTM.load_state_dict refused the result: {error}"]
        t = case.tensors
        with torch.no_grad():
            output, (h_n, c_n) = lstm(t["input"], (t["h_0"], t["c_0"]))
        got = {"output": output, "h_n": h_n, "c_n": c_n}
        dims = forward_layouts({})
        return [f"when nn.LSTM is loaded with your weights, {p}" for name in ("output", "h_n", "c_n")
                for p in compare_tensor(name, expected[name], got[name], dims=dims[name][0],
                                        rtol=self.rtol, atol=self.atol)]

    def compare_state(self, case, converted: dict) -> list[str]:
        """The keys, types and shapes that load_state_dict needs, explained."""
        H_in, H = case.config["input_size"], case.config["hidden_size"]

        def explain(key, value, shape):
            if tuple(value.shape) == shape[::-1]:
                return ("nn.LSTM stores (4H, input) and computes x @ weight.T, while the kernel "
                        "is (input, 4H) and used as x @ kernel, so transpose it")
            if key.startswith("weight") and value.dim() == 2 and 4 * H in value.shape:
                return (f"the kernel's first input_size = {H_in} rows read x_t and its last hidden_size = "
                        f"{H} rows read h, as concat([x_t, h]) @ kernel: weight_ih_l0 comes from "
                        "kernel[:input_size] and weight_hh_l0 from kernel[input_size:]")
            return ""
        return state_dict_problems(converted, self.expected_shapes(case), "nn.LSTM(num_layers=1)", explain,
                                   order=STATE_KEYS)

    def error_hint(self, case, message):
        if "unexpected keyword argument 'forget_bias'" in message:
            return ("keep the signature tf_lstm_to_pytorch(kernel, bias, forget_bias=1.0): the check "
                    "passes the cell's forget_bias by that name")
        if "not enough values to unpack (expected 4" in message:
            return ("the kernel is (H_in + H, 4H), its gate blocks side by side along the columns: "
                    "transpose each half to (4H, rows) before splitting it into blocks of H rows")
        return ""

    @staticmethod
    def weight_hint(case, converted: dict) -> str:
        H_in, H = case.config["input_size"], case.config["hidden_size"]
        kernel = case.tensors["kernel"]
        halves = {"weight_ih_l0": kernel[:H_in], "weight_hh_l0": kernel[H_in:]}  # (rows, 4H) each
        for key, half in halves.items():
            source = half.T                                      # (4H, rows): blocks i, j, f, o
            if matches(to_pytorch_order(source, TF_ORDER, H), converted[key]):
                continue
            if matches(to_pytorch_order(source, TF_ORDER, H).T, converted[key]):
                return (f"{key} is transposed: nn.LSTM stores (4H, input) and computes x @ {key}.T, "
                        f"so {key} is the kernel's rows transposed, with its blocks reordered")
            h_first = kernel[H:] if key == "weight_ih_l0" else kernel[:H]  # as if h's rows came first
            if matches(to_pytorch_order(h_first.T, TF_ORDER, H), converted[key]):
                return (f"your {key} comes from the other end of the kernel: concat([x_t, h]) puts x_t "
                        "first, so its first input_size rows read x_t and its last hidden_size rows h")
            if matches(to_pytorch_order(source, "ifog", H), converted[key]):
                return ("your blocks are moved as if the kernel's were CS231n's i, f, o, g (the "
                        f"chapter's example); {TF_WORDS}")
            theirs = dict(zip("ijfo", source.split(H)))
            got = blocks(converted[key], H)
            for gate in GATES:
                if matches(theirs[TF_LETTER[gate]], got[gate]):
                    continue
                for letter, block in theirs.items():
                    if matches(block, got[gate]):
                        return (f"rows {ROWS[GATES.index(gate)]} of your {key} hold the kernel's {letter} "
                                f"block, but nn.LSTM reads them as its {gate} ({GATE_NAMES[gate]}): "
                                + TF_WORDS)
                if any(matches(block, got[gate]) for block in half.split(H)):  # fits when rows = 4H
                    return (f"{key} looks untransposed: the kernel is used as x @ kernel; nn.LSTM computes "
                            f"x @ {key}.T, so {key} is the kernel's rows transposed, blocks reordered")
        return ""

    @staticmethod
    def bias_hint(case, converted: dict) -> str:
        H, forget_bias = case.config["hidden_size"], case.config["forget_bias"]
        b = case.tensors["bias"]
        total = converted["bias_ih_l0"] + converted["bias_hh_l0"]   # what nn.LSTM adds
        ordered = to_pytorch_order(b, TF_ORDER, H)

        def plus(stacked, k, amount):  # `amount` added to the k-th block of H rows
            added = stacked.clone()
            added[k * H:(k + 1) * H] += amount
            return added
        right = plus(ordered, 1, forget_bias)
        found = [(2 * right, "nn.LSTM adds bias_ih_l0 and bias_hh_l0, so your bias is counted twice: "
                             "put it in one and zeros in the other")]
        if forget_bias:
            found += [(plus(ordered, 1, 2 * forget_bias), "forget_bias is in both biases, and nn.LSTM adds "
                                                         "them: put it in one of the two"),
                      (ordered, "forget_bias is missing: TensorFlow adds it inside the forget gate, "
                                "sigmoid(f + forget_bias); nn.LSTM has no such constant, so add it to the "
                                "forget gate's rows [H, 2H) of one bias"),
                      (ordered + forget_bias, "forget_bias was added to every gate; it belongs to the forget "
                                              "gate only, rows [H, 2H) of one bias"),
                      (plus(ordered, 1, -forget_bias), "forget_bias has the wrong sign: TensorFlow computes "
                                                       "sigmoid(f + forget_bias), so add it")]
            found += [(plus(ordered, k, forget_bias), f"forget_bias went into rows {ROWS[k]}, nn.LSTM's "
                                                      f"{GATE_NAMES[GATES[k]]}; the forget gate is rows [H, 2H) "
                                                      "in PyTorch's order (TensorFlow's f is its third block)")
                      for k in (0, 2, 3)]
        found += [(b, "the bias needs its blocks reordered from i, j, f, o to i, f, g, o, like the weights"),
                  (plus(b, 2, forget_bias), "the bias needs its blocks reordered from i, j, f, o to "
                                            "i, f, g, o, like the weights")]
        return next((text for value, text in found if matches(value, total) and not matches(right, value)), "")


# -- set_chrono_bias ------------------------------------------------------------------

def chrono_bias(timescales: torch.Tensor) -> torch.Tensor:
    """b_f = log(T - 1) per unit, the chrono initialisation's forget-gate bias; b_i = -b_f."""
    return torch.log(timescales - 1)


class SetChronoBiasCheck(Check):
    name = "05-lstm/set_chrono_bias"
    forbidden_functions = ("rnn_by_hand.chapters.lstm.checks.chrono_bias",)
    student_name = "set_chrono_bias"
    builds_on = ("gate_blocks",)
    reference_name = "torch.nn.LSTM with b_if + b_hf = log(T - 1) and b_ii + b_hi = -log(T - 1)"

    VISIBLE = [dict(input_size=3, hidden_size=4, num_layers=1, bidirectional=False, t_max=20.0, L=5, N=2),
               dict(input_size=2, hidden_size=5, num_layers=2, bidirectional=False, t_max=50.0, L=4, N=3),
               dict(input_size=4, hidden_size=3, num_layers=1, bidirectional=True, t_max=10.0, L=3, N=2)]
    HIDDEN = [dict(input_size=3, hidden_size=6, num_layers=3, bidirectional=False, t_max=30.0, L=4, N=2),
              dict(input_size=5, hidden_size=4, num_layers=2, bidirectional=False, proj_size=2, t_max=60.0,
                   L=5, N=3),
              dict(input_size=2, hidden_size=5, num_layers=1, bidirectional=True, t_max=40.0, L=3, N=3),
              dict(input_size=2, hidden_size=3, num_layers=1, bidirectional=False, t_max=8.0, L=6, N=1)]
    PARTS = {"stacked layers": lambda config: config["num_layers"] > 1,
             "bidirectional": lambda config: config["bidirectional"]}
    MODULE_ARGS = ("input_size", "hidden_size", "num_layers", "bidirectional", "proj_size")
    GATE_ROWS = {"i": "input gate, rows [0, H)", "f": "forget gate, rows [H, 2H)"}

    def module(self, config) -> nn.LSTM:
        return nn.LSTM(**{k: config[k] for k in self.MODULE_ARGS if k in config}, dtype=DTYPE)

    def build(self, case) -> nn.LSTM:
        """A float64 nn.LSTM with the case's constructor arguments and initial parameters."""
        lstm = self.module(case.config)
        lstm.load_state_dict(self.state(case))
        return lstm

    @staticmethod
    def state(case) -> dict[str, torch.Tensor]:
        return state_of(case.tensors)

    def make_tensors(self, config):
        lstm = self.module(config)
        H, t_max = config["hidden_size"], config["t_max"]
        # T in [3, t_max]: log(T - 1) is well away from 0 and from log(T)
        timescales = 3 + (t_max - 3) * torch.rand(H, dtype=DTYPE)
        return with_state(lstm) | {"timescales": timescales,
                                   "input": torch.randn(config["L"], config["N"], config["input_size"],
                                                        dtype=DTYPE)}

    def run_student(self, student, case):
        lstm = self.build(case)
        try:
            call_student(f"{self.student_name}(lstm, timescales)", student, lstm, case.tensors["timescales"])
        except CheckFailure as failure:
            if "leaf Variable" in str(failure):
                raise CheckFailure(f"{failure}\nHint: change parameters inside `with torch.no_grad():`, "
                                   "so that autograd does not record the assignment") from None
            raise
        return {"state": {k: v.detach().clone() for k, v in lstm.state_dict().items()}}

    def run_reference(self, case):
        lstm = self.build(case)
        H, b_f = lstm.hidden_size, chrono_bias(case.tensors["timescales"])
        with torch.no_grad():
            for name, p in lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[:H], p[H:2 * H] = -b_f, b_f
                elif name.startswith("bias_hh"):
                    p[:2 * H] = 0.0
            output, (h_n, c_n) = lstm(case.tensors["input"])
        return {"state": {k: v.clone() for k, v in lstm.state_dict().items()},
                "output": output, "h_n": h_n, "c_n": c_n}

    def compare(self, case, expected, actual):
        problems = self.compare_parameters(case, expected["state"], actual["state"])
        if problems:
            return problems
        lstm = self.build(case)
        lstm.load_state_dict(actual["state"])
        with torch.no_grad():
            output, (h_n, c_n) = lstm(case.tensors["input"])
        got = {"output": output, "h_n": h_n, "c_n": c_n}
        dims = {"output": ("t", "n", "h"), "h_n": ("layer", "n", "h"), "c_n": ("layer", "n", "h")}
        return [f"after set_chrono_bias, nn.LSTM's {p}" for name in dims
                for p in compare_tensor(name, expected[name], got[name], dims=dims[name],
                                        rtol=self.rtol, atol=self.atol)]

    def compare_parameters(self, case, expected: dict, actual: dict) -> list[str]:
        """Which parameters changed that should not, and where a gate's bias sum is wrong."""
        if set(actual) != set(expected):
            return ["the module's parameters are no longer those of the nn.LSTM it was given: change "
                    "their values in place instead of adding, removing or replacing parameters"]
        H = case.config["hidden_size"]
        before = self.state(case)
        for name, p in actual.items():
            if p.shape != expected[name].shape or not p.dtype.is_floating_point:
                return [f"{name} has shape {shape_str(p.shape)} and dtype {p.dtype}; it should keep "
                        f"shape {shape_str(expected[name].shape)} and dtype {expected[name].dtype}"]
            untouched = p.clone()
            if name.startswith("bias_"):
                untouched[:2 * H] = before[name][:2 * H]
            if not torch.equal(untouched, before[name]):
                rows = (untouched != before[name]).reshape(p.shape[0], -1).any(dim=1).nonzero()[:, 0]
                where = f"row {int(rows[0])}" + (f" (the gate {GATES[int(rows[0]) // H]}: only i and f change)"
                                                 if name.startswith("bias_") else "")
                return [f"{name} changed at {where}; only the input- and forget-gate rows [0, 2H) = "
                        f"[0, {2 * H}) of the biases should change"]
        problems = []
        for name in actual:
            if name.startswith("bias_ih"):
                problems += self.gate_problems(case, name, actual, before)
        if len(problems) > 2:  # the same mistake in every layer: two examples say it
            problems[2:] = [f"and {len(problems) - 2} more like them in other gates, layers or directions"]
        return problems

    def gate_problems(self, case, name: str, actual: dict, before: dict) -> list[str]:
        """The gates i and f of one layer and direction whose b_ih + b_hh is not the chrono value."""
        H, T = case.config["hidden_size"], case.tensors["timescales"]
        partner = name.replace("bias_ih", "bias_hh")
        b_f = chrono_bias(T)
        problems = []
        for k, (gate, want) in enumerate((("i", -b_f), ("f", b_f))):
            rows = slice(k * H, (k + 1) * H)
            total = actual[name][rows] + actual[partner][rows]
            if torch.allclose(total, want, rtol=self.rtol, atol=self.atol):
                continue
            symbol = f"b_i{gate} + b_h{gate}"
            text = (f"{symbol} ({self.GATE_ROWS[gate]}) of {name} and {partner} is {total[0].item():.6g} "
                    f"for unit 0, whose T is {T[0].item():.6g}; expected {want[0].item():.6g}")
            old = before[name][rows] + before[partner][rows]
            sign = -1 if gate == "i" else 1
            reasons = [(2 * want, "both biases were set, but nn.LSTM adds them: set bias_ih to the value "
                                  "and bias_hh to 0"),
                       (old + want, "the value was added to the random initial biases; set the sum"),
                       (sign * torch.log(T), "that is log(T), not log(T - 1): f = sigmoid(b_f) = 1 - 1/T "
                                             "needs b_f = log(T - 1)"),
                       (-want, "the sign is wrong: b_f = log(T - 1) and the input gate's b_i = -b_f"),
                       (old, "this gate of this layer or direction was not changed; every "
                             "bias_ih_l{k}[_reverse] needs it"),
                       (before[name][rows], f"{name}'s rows of this gate were not set (only {partner}'s "
                                            "were zeroed)")]
            for value, reason in reasons:
                if torch.allclose(total, value, rtol=self.rtol, atol=self.atol):
                    text += f": {reason}"
                    break
            problems.append(text)
        return problems


check_gate_blocks = GateBlocksCheck()
check_lstm_forward = LstmForwardCheck()
check_peephole_lstm_step = PeepholeLstmStepCheck()
check_tf_lstm_to_pytorch = TfLstmToPytorchCheck()
check_set_chrono_bias = SetChronoBiasCheck()
