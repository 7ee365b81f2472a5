"""Checks for chapter 6, the GRU.

    gru_forward(input, h_0, params, num_layers, batch_first)        vs nn.GRU (stacked layers)
    bigru_forward(input, h_0, params, batch_first)                  vs nn.GRU(bidirectional=True), one layer
    cho_gru_step(x_t, h_prev, weight_ih, weight_hh, bias)           vs `cho_gru_cell` (models.py), the form of
                                                                       Cho et al. (2014): reset before the product
    count_parameters(mode, input_size, hidden_size, num_layers, bias, bidirectional, proj_size)
                                                                    vs sum(p.numel()) of nn.RNN / nn.GRU / nn.LSTM

Each case builds the torch.nn module afresh from a seed, in float64, and hands
its weights to the student's code; the reference output comes from the module.
The paper's form has no torch.nn module, so its reference is `cho_gru_cell`
(models.py), which the unit tests compare with a hand computation and with
nn.GRUCell. The hand-written GRUs there name classic mistakes in hints.
"""
from __future__ import annotations

import numbers
import random

import torch
from torch import nn

from ...checking import Check, CheckFailure, call_student, state_of, unpack_pair, with_state
from ...checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ...common import DTYPE, CellStep, compare_outputs, layouts, make_sequence
from .models import (BIGRU_MISTAKES, COUNT_ARGS, bigru_layer, cell_variants, cho_gru_cell, cho_variants,
                     count_mistakes, gru_cell, gru_stack)

# The fused kernels behind nn.GRU and nn.GRUCell: the exercises write them by hand.
GRU_KERNELS = ("gru", "gru_cell")


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
    forbidden_functions = ("rnn_by_hand.chapters.gru.models.gru_stack", "rnn_by_hand.chapters.gru.models.gru_cell")
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
        return state_of(case.tensors)

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


# -- bigru_forward -------------------------------------------------------------------

class BiGruForwardCheck(Check):
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
              dict(L=5, N=1, input_size=4, hidden_size=4, bias=False, batch_first=True, h_0=False),
              dict(L=3, N=5, input_size=2, hidden_size=6, bias=True, batch_first=False, h_0=False)]
    MODULE_ARGS = ("input_size", "hidden_size", "bias", "batch_first")

    def module(self, config) -> nn.GRU:
        return nn.GRU(**{k: config[k] for k in self.MODULE_ARGS}, bidirectional=True, dtype=DTYPE)

    @staticmethod
    def params(case) -> dict[str, torch.Tensor]:
        return state_of(case.tensors)

    def make_tensors(self, config):
        x, h_0 = make_sequence(dict(config, num_layers=2))  # h_0: one row per direction
        return {"input": x} | ({"h_0": h_0} if h_0 is not None else {}) | with_state(self.module(config))

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        params = {k: v.clone() for k, v in self.params(case).items()}
        result = call_student(self.student_name, student, t["input"], t.get("h_0"), params,
                              batch_first=config["batch_first"])
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


# -- cho_gru_step --------------------------------------------------------------------

class ChoGruStepCheck(CellStep, Check):
    name = "06-gru/cho_gru_step"
    forbidden_functions = ("rnn_by_hand.chapters.gru.models.cho_gru_cell",)
    student_name = "cho_gru_step"
    reference_name = "the GRU of Cho et al. (2014) (rnn_by_hand.chapters.gru.models.cho_gru_cell)"
    forbidden = GRU_KERNELS

    VISIBLE = [dict(N=3, input_size=4, hidden_size=5, bias=True, batched=True),
               dict(input_size=3, hidden_size=4, bias=True, batched=False),
               dict(N=2, input_size=5, hidden_size=3, bias=False, batched=True)]
    HIDDEN = [dict(N=4, input_size=6, hidden_size=7, bias=True, batched=True),
              dict(N=1, input_size=2, hidden_size=2, bias=True, batched=True),
              dict(input_size=5, hidden_size=6, bias=True, batched=False),
              dict(N=3, input_size=4, hidden_size=4, bias=False, batched=True)]

    def make_tensors(self, config):
        H, lead = config["hidden_size"], ((config["N"],) if config["batched"] else ())
        cell = nn.GRUCell(config["input_size"], H, dtype=DTYPE)  # nn.GRU's initialisation
        tensors = {"x_t": torch.randn(*lead, config["input_size"], dtype=DTYPE),
                   "h_prev": torch.randn(*lead, H, dtype=DTYPE),
                   "weight_ih": cell.weight_ih.detach().clone(),
                   "weight_hh": cell.weight_hh.detach().clone()}
        if config["bias"]:
            tensors["bias"] = torch.randn(3 * H, dtype=DTYPE)  # large enough to matter
        return tensors

    def run_student(self, student, case):
        t = case.tensors
        return {"h_t": call_student(self.student_name, student, t["x_t"], t["h_prev"], t["weight_ih"],
                                    t["weight_hh"], t.get("bias"))}

    def run_reference(self, case):
        t = case.tensors
        return {"h_t": cho_gru_cell(t["x_t"], t["h_prev"], t["weight_ih"], t["weight_hh"], t.get("bias"))}

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
                   proj_size=4)]
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
check_cho_gru_step = ChoGruStepCheck()
check_count_parameters = CountParametersCheck()
