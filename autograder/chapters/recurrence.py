"""Checks for chapter 1, the recurrence by hand.

    rnn_step(x_t, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)  vs nn.RNNCell
    rnn_forward(input, h_0, weight_ih, ..., nonlinearity, batch_first)           vs nn.RNN
    MyRNN(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first)  vs nn.RNN

Each case builds the torch.nn module afresh from a seed, in float64, and hands
its weights to the student's code; the reference output comes from the module.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..checking import Check, CheckFailure, call_student, describe_config, state_of, unpack_pair, with_state
from ..checking.compare import first_matching_mistake, type_name
from ..common import (DTYPE, RNN_KERNELS, WEIGHTS, CellStep, compare_outputs, layer_tensors, load_weights,
                      make_sequence, recurrence)

ASSIGNMENT = "01-recurrence"

# -- classic mistakes, computed by our own code, only to name them in a hint --------

def mistakes(config: dict, x, h_0, w) -> list[tuple[str, dict]]:
    """(description, outputs) for each classic mistake, in the case's layout."""
    batched, batch_first = config.get("batched", True), config.get("batch_first", False)
    H, act = config["hidden_size"], config["nonlinearity"]
    x_tm = x.unsqueeze(1) if not batched else (x.transpose(0, 1) if batch_first else x)
    N = x_tm.shape[1]
    h = h_0[0] if h_0 is not None else torch.zeros(H, dtype=DTYPE)
    h = h.reshape(-1, H).expand(N, H) if batched else h.reshape(1, H)

    def layout(states, h_prev=None):  # states (L, N, H) -> {"output", "h_n"}
        out = states.transpose(0, 1) if batch_first else states
        out = out[:, 0] if not batched else out
        return {"output": out, "h_n": (out[-1] if not batch_first else out[:, -1]).unsqueeze(0)}

    other = "relu" if act == "tanh" else "tanh"
    found = [(f"your result matches nonlinearity='{other}', but this case asks for '{act}'",
              layout(recurrence(x_tm, h, w, other))),
             ("your result matches leaving out bias_hh: nn.RNN adds both bias_ih and bias_hh",
              layout(recurrence(x_tm, h, w, act, use_bias_hh=False))),
             ("your result matches leaving out bias_ih: nn.RNN adds both bias_ih and bias_hh",
              layout(recurrence(x_tm, h, w, act, use_bias_ih=False)))]
    states = recurrence(x_tm, h, w, act)
    before = torch.cat([h.unsqueeze(0), states[:-1]])  # h_{t-1} instead of h_t
    found.append(("output[t] should be the state after reading x_t (h_t), not the one before it",
                  {"output": layout(before)["output"]}))
    found.append(("h_n should be the state after the last time step, not the first",
                  {"h_n": layout(states[:1])["h_n"]}))
    if batched and batch_first and h_0 is None:
        # Reading (N, L, H_in) as if it were (L, N, H_in): steps over the batch instead of time.
        as_time_major = recurrence(x, torch.zeros(x.shape[1], H, dtype=DTYPE), w, act)
        found.append(("with batch_first=True the input is (N, L, H_in): your result matches "
                      "stepping over dimension 0 as if it were time", {"output": as_time_major}))
    return found


# -- rnn_step ----------------------------------------------------------------------

class RnnStepCheck(CellStep, Check):
    name = "01-recurrence/rnn_step"
    forbidden_functions = ("rnn_by_hand.common.recurrence",)
    student_name = "rnn_step"
    reference_name = "torch.nn.RNNCell"
    forbidden = RNN_KERNELS

    VISIBLE = [dict(N=3, input_size=4, hidden_size=5, nonlinearity="tanh", bias=True, batched=True),
               dict(N=2, input_size=3, hidden_size=6, nonlinearity="relu", bias=True, batched=True),
               dict(input_size=4, hidden_size=5, nonlinearity="tanh", bias=True, batched=False),
               dict(N=3, input_size=2, hidden_size=4, nonlinearity="relu", bias=False, batched=True)]
    HIDDEN = [dict(N=5, input_size=7, hidden_size=8, nonlinearity="relu", bias=True, batched=True),
              dict(N=1, input_size=2, hidden_size=3, nonlinearity="tanh", bias=True, batched=True),
              dict(N=4, input_size=5, hidden_size=6, nonlinearity="tanh", bias=False, batched=True),
              dict(input_size=6, hidden_size=4, nonlinearity="relu", bias=True, batched=False)]

    @staticmethod
    def reference(config) -> nn.RNNCell:
        return nn.RNNCell(config["input_size"], config["hidden_size"], bias=config["bias"],
                          nonlinearity=config["nonlinearity"], dtype=DTYPE)

    def run_student(self, student, case):
        t = case.tensors
        h_t = call_student(self.student_name, student, t["x_t"], t["h_prev"], t["weight_ih"],
                           t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"),
                           nonlinearity=case.config["nonlinearity"])
        return {"h_t": h_t}

    def hint(self, case, actual):
        t, config = case.tensors, dict(case.config, L=1)
        w = {k: t.get(k) for k in WEIGHTS}
        x = t["x_t"].unsqueeze(0)  # (1, [N,] H_in): one time step
        h_0 = t["h_prev"].unsqueeze(0)
        found = [(text, {"h_t": out["output"][0]}) for text, out in mistakes(config, x, h_0, w)
                 if "output" in out and "state after reading" not in text]
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- rnn_forward -------------------------------------------------------------------

class RnnForwardCheck(Check):
    name = "01-recurrence/rnn_forward"
    forbidden_functions = ("rnn_by_hand.common.recurrence",)
    student_name = "rnn_forward"
    builds_on = ("rnn_step",)
    reference_name = "torch.nn.RNN"
    forbidden = RNN_KERNELS

    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, nonlinearity="tanh", batch_first=False, h_0=True),
               dict(L=4, N=2, input_size=3, hidden_size=5, nonlinearity="relu", batch_first=True, h_0=False),
               dict(L=6, input_size=4, hidden_size=5, nonlinearity="tanh", batched=False, h_0=True),
               dict(L=4, N=3, input_size=2, hidden_size=3, nonlinearity="relu", bias=False, h_0=True)]
    HIDDEN = [dict(L=7, N=4, input_size=5, hidden_size=3, nonlinearity="relu", batch_first=False, h_0=False),
              dict(L=3, N=5, input_size=2, hidden_size=7, nonlinearity="tanh", batch_first=True, h_0=True),
              dict(L=1, input_size=3, hidden_size=4, nonlinearity="relu", batched=False, h_0=False),
              dict(L=6, N=2, input_size=3, hidden_size=4, nonlinearity="tanh", bias=False, h_0=True),
              dict(L=8, N=1, input_size=3, hidden_size=5, nonlinearity="tanh", batch_first=True, h_0=False)]

    def make_tensors(self, config):
        rnn = self.reference(config)
        x, h_0 = make_sequence(config)
        return {"input": x} | ({"h_0": h_0} if h_0 is not None else {}) | layer_tensors(rnn, "_l0")

    @staticmethod
    def reference(config) -> nn.RNN:
        return nn.RNN(config["input_size"], config["hidden_size"], num_layers=1,
                      nonlinearity=config["nonlinearity"], bias=config.get("bias", True),
                      batch_first=config.get("batch_first", False), dtype=DTYPE)

    def run_student(self, student, case):
        t = case.tensors
        result = call_student(self.student_name, student, t["input"], t.get("h_0"), t["weight_ih"],
                              t["weight_hh"], t.get("bias_ih"), t.get("bias_hh"),
                              nonlinearity=case.config["nonlinearity"],
                              batch_first=case.config.get("batch_first", False))
        output, h_n = unpack_pair(self.student_name, result, ("output", "h_n"))
        return {"output": output, "h_n": h_n}

    def run_reference(self, case):
        rnn = load_weights(self.reference(case.config), case.tensors, "_l0")
        with torch.no_grad():
            output, h_n = rnn(case.tensors["input"], case.tensors.get("h_0"))
        return {"output": output, "h_n": h_n}

    def compare(self, case, expected, actual):
        return compare_outputs(case, expected, actual, rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t = case.tensors
        w = {k: t.get(k) for k in WEIGHTS}
        found = mistakes(case.config, t["input"], t.get("h_0"), w)
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- MyRNN -------------------------------------------------------------------------

class MyRnnCheck(Check):
    name = "01-recurrence/MyRNN"
    forbidden_functions = ("rnn_by_hand.common.recurrence",)
    student_name = "MyRNN"
    builds_on = ("rnn_forward", "rnn_step")
    reference_name = "torch.nn.RNN"
    kind = "class"
    forbidden = RNN_KERNELS

    VISIBLE = [dict(input_size=4, hidden_size=6, num_layers=1, nonlinearity="tanh", bias=True,
                    batch_first=False, L=5, N=3, h_0=True),
               dict(input_size=3, hidden_size=8, num_layers=2, nonlinearity="relu", bias=True,
                    batch_first=True, L=4, N=2, h_0=False),
               dict(input_size=4, hidden_size=6, num_layers=2, nonlinearity="tanh", bias=True,
                    batch_first=False, L=5, batched=False, h_0=True),
               dict(input_size=3, hidden_size=5, num_layers=2, nonlinearity="relu", bias=False,
                    batch_first=False, L=3, N=2, h_0=True)]
    HIDDEN = [dict(input_size=5, hidden_size=7, num_layers=3, nonlinearity="tanh", bias=False,
                   batch_first=True, L=6, N=3, h_0=True),
              dict(input_size=2, hidden_size=9, num_layers=1, nonlinearity="relu", bias=True,
                   batch_first=False, L=4, batched=False, h_0=False),
              dict(input_size=6, hidden_size=6, num_layers=2, nonlinearity="tanh", bias=True,
                   batch_first=False, L=3, N=4, h_0=True)]
    MODULE_ARGS = ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first")

    def module_args(self, config) -> dict:
        return {k: config[k] for k in self.MODULE_ARGS}

    def make_tensors(self, config):
        rnn = nn.RNN(**self.module_args(config), dtype=DTYPE)
        x, h_0 = make_sequence(config)
        return {"input": x} | ({"h_0": h_0} if h_0 is not None else {}) | with_state(rnn)

    def run_student(self, student, case):
        args = self.module_args(case.config)
        built = f"MyRNN({describe_config(args)})"
        module = call_student(built, student, **args)
        if not isinstance(module, nn.Module):
            raise CheckFailure(f"{built} should be an nn.Module, got {type_name(module)}")
        parameters = {name: tuple(p.shape) for name, p in module.named_parameters()}
        initial = {name: p.detach().abs().max().item() for name, p in module.named_parameters()
                   if p.numel()}
        result = {"parameters": parameters, "initial_max_abs": initial}
        state = state_of(case.tensors)
        if set(parameters) != set(state) or any(parameters[k] != tuple(v.shape) for k, v in state.items()):
            return result  # compare() explains the names and shapes; loading would only fail
        module = module.to(DTYPE)
        try:
            module.load_state_dict(state)
        except Exception as error:  # noqa: BLE001
            raise CheckFailure(f"{built}.load_state_dict(nn.RNN(...).state_dict()) failed: {error}") from None
        call = (case.tensors["input"],) + ((case.tensors["h_0"],) if "h_0" in case.tensors else ())
        result_pair = call_student(f"{built}.forward", module, *call)
        result["output"], result["h_n"] = unpack_pair(f"{built}.forward", result_pair, ("output", "h_n"))
        return result

    def run_reference(self, case):
        rnn = nn.RNN(**self.module_args(case.config), dtype=DTYPE)
        state = state_of(case.tensors)
        rnn.load_state_dict(state)
        with torch.no_grad():
            output, h_n = rnn(case.tensors["input"], case.tensors.get("h_0"))
        return {"parameters": {k: tuple(v.shape) for k, v in state.items()},
                "output": output, "h_n": h_n}

    def compare(self, case, expected, actual):
        problems = self.compare_parameters(case, expected["parameters"], actual["parameters"])
        if problems:
            return problems
        problems = self.compare_initialisation(case, actual["initial_max_abs"])
        return problems + compare_outputs(case, expected, actual, rtol=self.rtol, atol=self.atol)

    @staticmethod
    def compare_parameters(case, expected: dict, actual: dict) -> list[str]:
        problems = [f"MyRNN has no parameter named {name!r} of shape {shape}"
                    for name, shape in expected.items() if name not in actual]
        problems += [f"MyRNN has a parameter {name!r} that nn.RNN does not have"
                     for name in actual if name not in expected]
        for name, shape in expected.items():
            if name in actual and actual[name] != shape:
                text = f"parameter {name} has shape {actual[name]}, expected {shape}"
                if name.startswith("weight_ih_l") and name != "weight_ih_l0":
                    text += ": layer k > 0 reads the output of layer k - 1, so its input size is hidden_size"
                problems.append(text)
        if problems:
            problems.append("nn.RNN names its parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k} "
                            "and bias_hh_l{k} for layers k = 0 .. num_layers - 1 (no biases when "
                            "bias=False), registered directly on the module")
        return problems

    @staticmethod
    def compare_initialisation(case, initial: dict) -> list[str]:
        H = case.config["hidden_size"]
        bound = 1 / math.sqrt(H)
        too_big = {k: v for k, v in initial.items() if v > bound * (1 + 1e-6)}
        if too_big:
            name, value = max(too_big.items(), key=lambda kv: kv[1])
            return [f"a freshly built MyRNN has {name} entries up to {value:.3g}; nn.RNN draws every "
                    f"parameter from U(-1/sqrt(H), 1/sqrt(H)) = U(-{bound:.3g}, {bound:.3g}) for H={H}"]
        largest = max(initial.values(), default=0.0)
        if largest < 0.5 * bound:
            return [f"a freshly built MyRNN has every parameter within +-{largest:.3g}, far inside "
                    f"the bound {bound:.3g}: nn.RNN draws from U(-1/sqrt(H), 1/sqrt(H)), "
                    f"not U(-1/H, 1/H) or a smaller range"]
        return []


check_rnn_step = RnnStepCheck()
check_rnn_forward = RnnForwardCheck()
check_my_rnn = MyRnnCheck()
