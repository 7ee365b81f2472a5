"""carry_state(state, reset): the state that starts the next window of truncated BPTT over
N parallel streams, detached, with the streams that ended a document reset to zeros.

The chapter detaches the whole state at every window boundary; the exercise adds the
per-stream reset, for states of any nesting (nn.GRU's h, nn.LSTM's (h, c), a list of
nn.LSTMCell states) whose batch is the second-to-last dimension. The reference is
Tensor.detach and torch.where on every tensor of the state.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils import _pytree as pytree

from ...checking import Check, OwnMessages, call_student, state_of, untouched_rng, with_state
from ...checking.compare import compare_tensor, shape_str, type_name
from ...common import DTYPE


def describe_structure(state) -> str:
    """A state's shape in words, e.g. "tuple(Tensor(1, 3, 5), Tensor(1, 3, 5))"."""
    if isinstance(state, torch.Tensor):
        return f"Tensor{shape_str(state.shape)}"
    if isinstance(state, (tuple, list)):
        inner = ", ".join(describe_structure(s) for s in state)
        return f"{type(state).__name__}({inner})"
    return type_name(state)


def leaves(state, path: str = "state") -> list[tuple[str, torch.Tensor]]:
    """(path, tensor) for every tensor in a nested tuple/list state, in order."""
    if isinstance(state, torch.Tensor):
        return [(path, state)]
    if isinstance(state, (tuple, list)):
        return [leaf for k, s in enumerate(state) for leaf in leaves(s, f"{path}[{k}]")]
    return []


def carried(tensor: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    """One tensor of the state, detached, with zeros in the rows of the streams that reset."""
    return torch.where(reset.unsqueeze(-1), 0.0, tensor.detach())  # (N, 1) against (..., N, H)


class CarryStateCheck(OwnMessages, Check):
    name = "04-training/carry_state"
    student_name = "carry_state"
    reference_name = "Tensor.detach and a zeroed row per reset stream, on every tensor of the state"
    forbidden_functions = ("rnn_by_hand.chapters.training.carry.carried",)
    ok_text = "returns the structure it was given, detached, with the reset streams at zero,"
    failure_text = "does not carry the state as Tensor.detach and a reset of the ended streams do"

    # kind: which model produced the state, and so its structure.
    VISIBLE = [dict(kind="gru", num_layers=1, N=3, hidden_size=5),
               dict(kind="lstm", num_layers=2, N=4, hidden_size=3),
               dict(kind="lstm_cells", num_layers=2, N=3, hidden_size=4),
               dict(kind="gru_and_lstm", num_layers=1, N=2, hidden_size=3),
               dict(kind="leaf", num_layers=2, N=3, hidden_size=4)]
    HIDDEN = [dict(kind="lstm", num_layers=1, N=5, hidden_size=3),
              dict(kind="gru", num_layers=3, N=2, hidden_size=4),
              dict(kind="gru_and_lstm", num_layers=2, N=4, hidden_size=2),
              dict(kind="lstm_cells", num_layers=3, N=2, hidden_size=2),
              dict(kind="leaf", num_layers=1, N=4, hidden_size=3)]
    PARTS = {"a tensor": lambda c: c["kind"] == "gru",
             "a tuple (h, c)": lambda c: c["kind"] == "lstm",
             "nested states": lambda c: c["kind"] in ("lstm_cells", "gru_and_lstm"),
             "a leaf h_0": lambda c: c["kind"] == "leaf"}
    INPUT_SIZE, L = 3, 4

    def make_tensors(self, config):
        tensors = {}
        for name, module in self.modules(config).items():
            tensors |= with_state(module, f"{name}.")
        N = config["N"]
        reset = torch.rand(N) < 0.5
        reset[torch.randperm(N)[:2]] = torch.tensor([True, False])  # at least one of each
        if config["kind"] == "leaf":  # a learned initial state, (num_layers, N, H)
            tensors["h_0"] = torch.randn(config["num_layers"], N, config["hidden_size"], dtype=DTYPE)
        return tensors | {"input": torch.randn(self.L, N, self.INPUT_SIZE, dtype=DTYPE), "reset": reset}

    def label(self, config):
        return ", ".join(f"{k}={v!r}" for k, v in config.items())

    def modules(self, config) -> dict[str, nn.Module]:
        """The modules whose final state the case carries (fresh, not yet loaded)."""
        H, layers, kind = config["hidden_size"], config["num_layers"], config["kind"]
        if kind == "lstm_cells":  # a stack of LSTMCells: a list of (h, c), one per layer
            return {f"cell{k}": nn.LSTMCell(self.INPUT_SIZE if k == 0 else H, H, dtype=DTYPE)
                    for k in range(layers)}
        if kind == "gru_and_lstm":
            return {"gru": nn.GRU(self.INPUT_SIZE, H, dtype=DTYPE),
                    "lstm": nn.LSTM(self.INPUT_SIZE, H, num_layers=layers, dtype=DTYPE)}
        module = nn.LSTM if kind == "lstm" else nn.GRU
        return {"main": module(self.INPUT_SIZE, H, num_layers=layers, dtype=DTYPE)}

    def state(self, case):
        """Run the case's model(s) and return a state that is still attached to its graph."""
        with untouched_rng():
            modules = self.modules(case.config)
        for name, module in modules.items():
            module.load_state_dict(state_of(case.tensors, f"{name}."))
        x, kind = case.tensors["input"], case.config["kind"]
        if kind == "lstm_cells":
            states, layer_input = [], x
            for k in range(case.config["num_layers"]):
                hc, outputs = None, []
                for x_t in layer_input:  # (N, H_in): one step of this layer
                    hc = modules[f"cell{k}"](x_t, hc)
                    outputs.append(hc[0])
                states.append(hc)  # (h, c) of layer k after the last step, each (N, H)
                layer_input = torch.stack(outputs)
            return states
        if kind == "gru_and_lstm":
            return (modules["gru"](x)[1], [modules["lstm"](x)[1]])
        if kind == "leaf":  # a learned initial state: a leaf that requires grad
            return case.tensors["h_0"].clone().requires_grad_()
        return modules["main"](x)[1]

    @staticmethod
    def summary(state, result, before) -> dict:
        """What the check needs to know about `result`, as plain data."""
        found = [{"path": path, "value": tensor.detach().clone(), "requires_grad": tensor.requires_grad,
                  "has_grad_fn": tensor.grad_fn is not None}
                 for path, tensor in leaves(result)]
        intact = [torch.equal(t.detach(), b) and t.requires_grad == r
                  for (_, t), (b, r) in zip(leaves(state), before)]
        return {"structure": describe_structure(result), "leaves": found, "input_intact": intact}

    def run_student(self, student, case):
        state = self.state(case)
        before = [(t.detach().clone(), t.requires_grad) for _, t in leaves(state)]
        reset = case.tensors["reset"].clone()
        result = call_student(self.student_name, lambda: student(state, reset))
        return self.summary(state, result, before)

    def run_reference(self, case):
        state = self.state(case)
        before = [(t.detach().clone(), t.requires_grad) for _, t in leaves(state)]
        reset = case.tensors["reset"]
        return self.summary(state, pytree.tree_map(lambda t: carried(t, reset), state), before)

    def compare(self, case, expected, actual):
        if actual["structure"] != expected["structure"]:
            return [f"carry_state returned {actual['structure']}, expected {expected['structure']}: "
                    "return the same structure as the state you were given (tuples stay tuples, "
                    "lists stay lists)"]
        problems = []
        for want, got in zip(expected["leaves"], actual["leaves"]):
            path = got["path"]
            problems += compare_tensor(path, want["value"], got["value"],
                                       dims=("k",) * (want["value"].dim() - 2) + ("n", "h"), rtol=0, atol=0)
            if got["requires_grad"] or got["has_grad_fn"]:
                what = "has a grad_fn" if got["has_grad_fn"] else "requires grad"
                problems.append(f"{path} {what}, so it is still attached to the graph of the last "
                                "window: detach it")
            if problems:
                break
        if not problems and not all(actual["input_intact"]):
            problems.append("carry_state changed the state it was given: the original tensors "
                            "still belong to the last window's graph, so leave them alone")
        return problems

    def error_hint(self, case, message):
        if "mask" in message and "does not match the shape" in message:
            return ("the batch is the second-to-last dimension of every tensor: (num_layers, N, H) "
                    "for nn.GRU and nn.LSTM, (N, H) for nn.LSTMCell; index it with [..., reset, :]")
        return ""

    def hint(self, case, actual):
        if not all(actual["input_intact"]):
            return ("detach() shares memory with the original, so zeroing rows of the detached "
                    "tensor in place zeroes the original too: build a new tensor (torch.where, or "
                    "multiply by a mask)")
        reset, state = case.tensors["reset"], self.state(case)
        got = [leaf["value"] for leaf in actual["leaves"]]

        def same(tensors):
            return len(tensors) == len(got) and all(torch.equal(a, b) for a, b in zip(tensors, got))
        if same([carried(t, ~reset) for _, t in leaves(state)]):
            return "your reset is the wrong way round: zero the streams where reset[n] is True"
        if same([t.detach() for _, t in leaves(state)]):
            return "nothing was reset: zero the rows n of every tensor where reset[n] is True"
        first_only = [carried(t, reset) if path.endswith("[0]") or "[" not in path else t.detach()
                      for path, t in leaves(state)]
        if case.config["kind"] in ("lstm", "lstm_cells", "gru_and_lstm") and same(first_only):
            return "an LSTM's state is (h, c): reset the cell state c too, it is the LSTM's memory"
        return ""


check_carry_state = CarryStateCheck()
