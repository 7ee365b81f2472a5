"""Checks for chapter 6, the GRU.

    gru_forward(input, h_0, params, num_layers, batch_first)        vs nn.GRU (stacked layers)
    bigru_forward(input, h_0, params, batch_first)                  vs nn.GRU(bidirectional=True), one layer
    keras_gru_to_pytorch(kernel, recurrent_kernel, bias)            a Keras GRU's weights (reset_after=True),
                                                                       loaded into nn.GRU, vs `keras_gru_layer`
    count_parameters(mode, input_size, hidden_size, num_layers, bias, bidirectional, proj_size)
                                                                    vs sum(p.numel()) of nn.RNN / nn.GRU / nn.LSTM

Each case builds the torch.nn module afresh from a seed, in float64, and hands
its weights to the student's code; the reference output comes from the module.
Keras's GRU is not in torch.nn: the network whose weights keras_gru_to_pytorch
converts is `keras_gru_layer` (models.py), written for the course from Keras's
equations, which the unit tests compare with a hand computation and with nn.GRU
after a conversion of their own. The hand-written GRUs there name classic
mistakes in hints.
"""
from __future__ import annotations

import numbers
import random
from collections.abc import Mapping

import torch
from torch import nn

from ...checking import Check, CheckFailure, call_student, state_of, unpack_pair, with_state
from ...checking.compare import compare_tensor, first_matching_mistake, matches, shape_str, type_name
from ...common import DTYPE, ConversionHints, compare_outputs, layouts, make_sequence, state_dict_problems
from .models import (BIGRU_MISTAKES, COUNT_ARGS, GATE_NAMES, GATES, KERAS_ORDER, bigru_layer, cell_variants,
                     count_mistakes, gru_stack, keras_gru_layer, rzn)

# The fused kernels behind nn.GRU and nn.GRUCell: the exercises write them by hand.
GRU_KERNELS = ("gru", "gru_cell")
ROWS = ("[0, H)", "[H, 2H)", "[2H, 3H)")  # the rows of each block, in words


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


class GruParamsCheck(Check):
    """A forward pass by hand from a params dict (nn.GRU's state_dict), against the nn.GRU
    that `module` builds with those weights: what gru_forward and bigru_forward share."""

    @staticmethod
    def params(case) -> dict[str, torch.Tensor]:
        return state_of(case.tensors)

    def outputs(self, case, params: dict, result) -> dict:
        """The answer's (output, h_n), once it is clear that it left its params as given."""
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


class GruForwardCheck(GruParamsCheck):
    name = "06-gru/gru_forward"
    forbidden_functions = ("rnn_by_hand.chapters.gru.models.gru_stack", "rnn_by_hand.chapters.gru.models.gru_cell")
    student_name = "gru_forward"
    reference_name = "torch.nn.GRU"
    forbidden = GRU_KERNELS

    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, num_layers=2, batch_first=False, h_0=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, num_layers=2, batch_first=True, h_0=False),
               # input_size == hidden_size: every mistaken wiring of the layers still runs
               dict(L=6, input_size=4, hidden_size=4, num_layers=2, batched=False, h_0=True),
               dict(L=4, N=3, input_size=3, hidden_size=5, num_layers=2, bias=False, batch_first=False,
                    h_0=False)]
    HIDDEN = [dict(L=7, N=4, input_size=5, hidden_size=3, num_layers=3, batch_first=True, h_0=True),
              dict(L=3, N=2, input_size=6, hidden_size=6, num_layers=2, batch_first=False, h_0=True),
              dict(L=1, input_size=3, hidden_size=4, num_layers=1, batched=False, h_0=False),
              dict(L=6, N=2, input_size=3, hidden_size=4, num_layers=2, bias=False, batch_first=False,
                   h_0=True),
              dict(L=8, N=1, input_size=2, hidden_size=5, num_layers=2, batch_first=True, h_0=False)]
    # One feature per case beyond the stacking, so that each part is earned on its own.
    PARTS = {"batch_first": lambda config: config.get("batch_first", False),
             "unbatched input": lambda config: not config.get("batched", True),
             "without bias": lambda config: not config.get("bias", True)}
    MODULE_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first")

    def module(self, config) -> nn.GRU:
        return nn.GRU(**{k: config[k] for k in self.MODULE_ARGS if k in config}, dtype=DTYPE)


    def make_tensors(self, config):
        x, h_0 = make_sequence(config)
        return {"input": x} | ({"h_0": h_0} if h_0 is not None else {}) | with_state(self.module(config))

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
        return self.outputs(case, params, result)


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


# -- bigru_forward -------------------------------------------------------------------

class BiGruForwardCheck(GruParamsCheck):
    name = "06-gru/bigru_forward"
    forbidden_functions = ("rnn_by_hand.chapters.gru.models.bigru_layer", "rnn_by_hand.chapters.gru.models.gru_stack",
                           "rnn_by_hand.chapters.gru.models.gru_cell")
    student_name = "bigru_forward"
    builds_on = ("gru_forward",)
    reference_name = "torch.nn.GRU(bidirectional=True)"
    forbidden = GRU_KERNELS

    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, bias=True, batch_first=False, h_0=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, bias=True, batch_first=True, h_0=False),
               dict(L=6, N=2, input_size=2, hidden_size=3, bias=False, batch_first=False, h_0=True)]
    HIDDEN = [dict(L=7, N=4, input_size=5, hidden_size=3, bias=True, batch_first=True, h_0=True),
              dict(L=1, N=2, input_size=3, hidden_size=4, bias=True, batch_first=False, h_0=True),
              dict(L=5, N=1, input_size=4, hidden_size=4, bias=False, batch_first=False, h_0=False),
              dict(L=3, N=5, input_size=2, hidden_size=6, bias=True, batch_first=False, h_0=False)]
    PARTS = {"batch_first": lambda config: config["batch_first"],
             "without bias": lambda config: not config["bias"]}
    MODULE_ARGS = ("input_size", "hidden_size", "bias", "batch_first")

    def module(self, config) -> nn.GRU:
        return nn.GRU(**{k: config[k] for k in self.MODULE_ARGS}, bidirectional=True, dtype=DTYPE)


    def make_tensors(self, config):
        x, h_0 = make_sequence(dict(config, num_layers=2))  # h_0: one row per direction
        return {"input": x} | ({"h_0": h_0} if h_0 is not None else {}) | with_state(self.module(config))

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        params = {k: v.clone() for k, v in self.params(case).items()}
        result = call_student(self.student_name, student, t["input"], t.get("h_0"), params,
                              batch_first=config["batch_first"])
        return self.outputs(case, params, result)


    def compare(self, case, expected, actual):
        dims = layouts(case.config)
        written = {"output": dims["output"][1].replace("H)", "2H)"),
                   "h_n": "(2, N, H), the forward direction's row first, whatever batch_first says"}
        problems = []
        for name in ("output", "h_n"):
            got, want = actual[name], expected[name]
            H = case.config["hidden_size"]
            if name == "output" and isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape[:-1]) + (H,):
                problems.append(f"output has shape {shape_str(got.shape)}, expected {shape_str(want.shape)}: it "
                                "concatenates the forward and backward states along its last dimension, "
                                "torch.cat([forward, backward], dim=-1)")
                continue
            problems += compare_tensor(name, want, got, dims=dims[name][0], layout=written[name],
                                       rtol=self.rtol, atol=self.atol)
        return problems

    def hint(self, case, actual):
        t, config = case.tensors, case.config
        x = to_time_major(config, t["input"])                   # (L, N, H_in)
        N, H = x.shape[1], config["hidden_size"]
        zeros = torch.zeros(2, N, H, dtype=DTYPE)
        h_0 = t.get("h_0", zeros)
        params = self.params(case)

        def run(mistake="", start=h_0, **variant):
            return from_time_major(config, *bigru_layer(x, start, params, mistake, **variant))

        found = [(text, {k: v for k, v in run(mistake).items() if k in names})
                 for mistake, names, text in BIGRU_MISTAKES if mistake != "first h_0 twice" or "h_0" in t]
        if "h_0" in t:
            found.append(("your result matches starting both directions from zeros: when h_0 is given, the "
                          "forward direction starts from h_0[0] and the backward one from h_0[1]",
                          run(start=zeros)))
        found += [(text, run(**variant)) for text, variant in cell_variants(config["bias"])]
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- keras_gru_to_pytorch --------------------------------------------------------------

KERAS_WORDS = "Keras's column blocks are z, r, h, PyTorch's rows r, z, n"


class KerasGruToPytorchCheck(ConversionHints, Check):
    name = "06-gru/keras_gru_to_pytorch"
    forbidden_functions = ("rnn_by_hand.chapters.gru.models.keras_gru_layer", "rnn_by_hand.chapters.gru.models.rzn")
    student_name = "keras_gru_to_pytorch"
    reference_name = "the Keras GRU it converts, once loaded into torch.nn.GRU"

    VISIBLE = [dict(input_size=3, hidden_size=4, L=5, N=2, bias=True),
               dict(input_size=4, hidden_size=2, L=4, N=3, bias=False),
               dict(input_size=2, hidden_size=5, L=6, N=1, bias=True)]
    HIDDEN = [dict(input_size=6, hidden_size=2, L=5, N=2, bias=True),  # H_in = 3H: untransposed fits
              dict(input_size=5, hidden_size=3, L=3, N=4, bias=False),
              dict(input_size=1, hidden_size=4, L=4, N=2, bias=True),
              dict(input_size=4, hidden_size=6, L=2, N=3, bias=True)]
    # The weights alone are one part; the two biases, kept apart, the other.
    PARTS = {"with bias": lambda config: config["bias"],
             "without bias": lambda config: not config["bias"]}

    def make_tensors(self, config):
        H_in, H, L, N = (config[k] for k in ("input_size", "hidden_size", "L", "N"))
        scale = H ** -0.5  # the size nn.GRU's own initialisation gives
        tensors = {"kernel": scale * (2 * torch.rand(H_in, 3 * H, dtype=DTYPE) - 1),
                   "recurrent_kernel": scale * (2 * torch.rand(H, 3 * H, dtype=DTYPE) - 1),
                   "input": torch.randn(N, L, H_in, dtype=DTYPE),      # Keras is batch-first
                   "h_0": torch.randn(1, N, H, dtype=DTYPE)}
        if config["bias"]:
            tensors["bias"] = torch.randn(2, 3 * H, dtype=DTYPE)  # trained, not Keras's zeros
        return tensors

    def keys(self, config) -> dict[str, tuple[int, ...]]:
        """The state_dict nn.GRU(input_size, hidden_size, bias=bias) loads: key -> shape."""
        H_in, H = config["input_size"], config["hidden_size"]
        shapes = {"weight_ih_l0": (3 * H, H_in), "weight_hh_l0": (3 * H, H)}
        return shapes | ({"bias_ih_l0": (3 * H,), "bias_hh_l0": (3 * H,)} if config["bias"] else {})

    def run_student(self, student, case):
        t = case.tensors
        result = call_student(self.student_name, student, t["kernel"], t["recurrent_kernel"], t.get("bias"))
        if not isinstance(result, Mapping):
            raise CheckFailure(f"{self.student_name} should return a dict with the keys "
                               f"{', '.join(self.keys(case.config))}, that nn.GRU.load_state_dict "
                               f"accepts; got {type_name(result)}")
        return {"converted": dict(result)}

    def run_reference(self, case):
        t = case.tensors
        output, h_L = keras_gru_layer(t["input"], t["h_0"][0], t["kernel"], t["recurrent_kernel"], t.get("bias"))
        return {"output": output, "h_n": h_L.unsqueeze(0)}

    def compare(self, case, expected, actual):
        converted = actual["converted"]
        problems = self.compare_state(case, converted)
        if problems:
            return problems
        config = case.config
        gru = nn.GRU(config["input_size"], config["hidden_size"], bias=config["bias"], batch_first=True,
                     dtype=DTYPE)
        try:
            gru.load_state_dict(converted)
        except Exception as error:  # noqa: BLE001 -- reported as feedback
            return [f"nn.GRU.load_state_dict refused the result: {error}"]
        with torch.no_grad():
            output, h_n = gru(case.tensors["input"], case.tensors["h_0"])
        got = {"output": output, "h_n": h_n}
        dims = {"output": ("n", "t", "h"), "h_n": ("layer", "n", "h")}
        return [f"when nn.GRU is loaded with your weights, {p}" for name in dims
                for p in compare_tensor(name, expected[name], got[name], dims=dims[name],
                                        rtol=self.rtol, atol=self.atol)]

    def compare_state(self, case, converted: dict) -> list[str]:
        """The keys, types and shapes that load_state_dict needs, explained."""
        H = case.config["hidden_size"]
        without = "" if case.config["bias"] else " (bias is None: nn.GRU(bias=False) has no biases)"

        def explain(key, value, shape):
            if tuple(value.shape) == shape[::-1]:
                return ("nn.GRU stores (3H, input) and computes x @ weight.T, while Keras's kernels "
                        "are (input, 3H) and used as x @ kernel, so transpose them")
            if key.startswith("bias") and tuple(value.shape) in ((2, 3 * H), (6 * H,)):
                return "bias[0] is Keras's input bias (bias_ih_l0), bias[1] its recurrent bias (bias_hh_l0)"
            return ""
        return state_dict_problems(converted, self.keys(case.config), "this nn.GRU", explain, extra_note=without)

    def error_hint(self, case, message):
        if "not enough values to unpack (expected 3, got 1)" in message:
            return ("a Keras kernel is (rows, 3H), its gate blocks side by side along the columns: "
                    "transpose it to (3H, rows) before splitting it into blocks of H rows")
        return ""

    @staticmethod
    def weight_hint(case, converted: dict) -> str:
        H, t = case.config["hidden_size"], case.tensors
        for key, name in (("weight_ih_l0", "kernel"), ("weight_hh_l0", "recurrent_kernel")):
            source = t[name].T                               # (3H, rows): blocks z, r, h
            right = rzn(source, KERAS_ORDER, H)
            if matches(right, converted[key]):
                continue
            if matches(right.T, converted[key]):
                return (f"{key} is transposed: nn.GRU stores (3H, input) and computes x @ {key}.T, "
                        f"so {key} is {name}.T with its blocks reordered")
            theirs = dict(zip("zrh", source.split(H)))
            got = dict(zip(GATES, converted[key].split(H)))
            if matches(-theirs["z"], got["z"]):
                return ("your update-gate block is negated, as if Keras's z were PyTorch's 1 - z; but Keras "
                        "also keeps the share z of the old state, h_t = z * h_prev + (1 - z) * hh: copy z as it is")
            for gate, letter in zip(GATES, "rzh"):
                if matches(theirs[letter], got[gate]):
                    continue
                for other, block in theirs.items():
                    if matches(block, got[gate]):
                        return (f"rows {ROWS[GATES.index(gate)]} of your {key} hold {name}'s {other} block, but "
                                f"nn.GRU reads them as its {gate} ({GATE_NAMES[gate]}): {KERAS_WORDS}")
                if any(matches(block, got[gate]) for block in t[name].split(H)):  # fits when H_in = 3H
                    return (f"{key} looks untransposed: {name} is used as x @ {name}; nn.GRU computes "
                            f"x @ {key}.T, so {key} is {name}.T with its blocks reordered")
        return ""

    @staticmethod
    def bias_hint(case, converted: dict) -> str:
        if not case.config["bias"]:
            return ""
        H, bias = case.config["hidden_size"], case.tensors["bias"]
        b_in, b_rec = (rzn(row, KERAS_ORDER, H) for row in bias)     # (3H,) each, PyTorch's order
        got_in, got_rec = converted["bias_ih_l0"], converted["bias_hh_l0"]
        if matches(b_rec, got_in) and matches(b_in, got_rec):
            return ("your two biases are swapped: bias[0] is Keras's input bias, bias_ih_l0, and bias[1] "
                    "its recurrent bias, bias_hh_l0, the one the reset gate multiplies")
        if matches(b_in + b_rec, got_in + got_rec):  # the sums are right, the new gate's split is not
            return ("your biases merge Keras's two: that is right for r and z, whose biases are only added, "
                    "but in the new gate r multiplies the recurrent bias, r * (W_hn h + b_hn), so "
                    "bias_ih_l0 is bias[0] and bias_hh_l0 is bias[1], each reordered")
        if matches(bias[0], got_in) or matches(bias[1], got_rec):
            return f"the biases need their blocks reordered like the weights: {KERAS_WORDS}"
        z_negated = [row.clone() for row in (b_in, b_rec)]
        for row in z_negated:
            row[H:2 * H] *= -1
        if matches(z_negated[0], got_in) and matches(z_negated[1], got_rec):
            return ("your update gate's biases are negated, as if Keras's z were PyTorch's 1 - z; Keras keeps "
                    "the share z of the old state as nn.GRU does: copy them as they are")
        return ""


# -- count_parameters ------------------------------------------------------------------

MODULES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}


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
    forbidden_functions = ("rnn_by_hand.chapters.gru.models.count_formula",)
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
                   proj_size=4),
              # the smallest projection: `proj_size > 1` where `> 0` is meant (a mutation run found it)
              dict(mode="LSTM", input_size=3, hidden_size=4, num_layers=2, bias=True, bidirectional=True,
                   proj_size=1)]
    RANDOM = 20

    def configs(self, hidden: bool, seed: int | None) -> list[dict]:
        """The fixed configurations, then RANDOM drawn ones, none of them a visible one if hidden."""
        rng = random.Random(self.seed_of(hidden, -1, seed))  # not torch's global RNG
        configs = list(self.HIDDEN if hidden else self.VISIBLE)
        avoid = [] if not hidden else self.configs(False, seed)
        while len(configs) < len(self.HIDDEN if hidden else self.VISIBLE) + self.RANDOM:
            config = random_count_config(rng)
            if config not in configs and config not in avoid:
                configs.append(config)
        return configs

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

    def ok_message(self, count):  # the base class's message speaks of float64 tolerances
        return (f"OK: {self.student_name} matches sum(p.numel()) of real nn.RNN, nn.GRU and nn.LSTM "
                f"modules in {count} configurations.")

    def hint(self, case, actual):
        count = actual["count"]
        if isinstance(count, bool) or not isinstance(count, numbers.Integral):
            return ""
        for text, wrong in count_mistakes(case.config):
            if wrong == count and wrong != self.run_reference(case)["count"]:
                return text
        return ""


check_gru_forward = GruForwardCheck()
check_bigru_forward = BiGruForwardCheck()
check_keras_gru_to_pytorch = KerasGruToPytorchCheck()
check_count_parameters = CountParametersCheck()
