"""detach_state(state) against Tensor.detach on every tensor of a state, whatever its
nesting (nn.RNN's h, nn.LSTM's (h, c), lists of them)."""
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


class DetachStateCheck(OwnMessages, Check):
    name = "04-training/detach_state"
    student_name = "detach_state"
    reference_name = "Tensor.detach on every tensor of the state"
    ok_text = ("returns the structure it was given, every tensor detached and sharing its "
               "storage with the original,")
    failure_text = "does not do what Tensor.detach does to every tensor of the state"

    # kind: which model produced the state, and so its structure.
    VISIBLE = [dict(kind="gru", num_layers=1, N=3, hidden_size=5),
               dict(kind="lstm", num_layers=1, N=2, hidden_size=4),
               dict(kind="lstm_cells", num_layers=2, N=3, hidden_size=4),
               dict(kind="rnn_unbatched", num_layers=1, hidden_size=4),
               dict(kind="gru_and_lstm", num_layers=2, N=3, hidden_size=3),
               dict(kind="leaf", num_layers=2, N=3, hidden_size=4)]
    HIDDEN = [dict(kind="lstm", num_layers=2, N=4, hidden_size=3),
              dict(kind="rnn_unbatched", num_layers=2, hidden_size=6),
              dict(kind="gru_and_lstm", num_layers=1, N=2, hidden_size=5),
              dict(kind="lstm_cells", num_layers=3, N=1, hidden_size=2),
              dict(kind="leaf", num_layers=1, N=2, hidden_size=3)]
    INPUT_SIZE, L = 3, 4

    def make_tensors(self, config):
        tensors = {}
        for name, module in self.modules(config).items():
            tensors |= with_state(module, f"{name}.")
        lead = (self.L,) if config["kind"] == "rnn_unbatched" else (self.L, config["N"])
        return tensors | {"input": torch.randn(*lead, self.INPUT_SIZE, dtype=DTYPE)}

    def modules(self, config) -> dict[str, nn.Module]:
        """The modules whose final state the case detaches (fresh, not yet loaded)."""
        H, layers, kind = config["hidden_size"], config["num_layers"], config["kind"]
        if kind == "lstm_cells":  # a stack of LSTMCells: a list of (h, c), one per layer
            return {f"cell{k}": nn.LSTMCell(self.INPUT_SIZE if k == 0 else H, H, dtype=DTYPE)
                    for k in range(layers)}
        if kind == "gru_and_lstm":
            return {"gru": nn.GRU(self.INPUT_SIZE, H, dtype=DTYPE),
                    "lstm": nn.LSTM(self.INPUT_SIZE, H, dtype=DTYPE)}
        module = {"gru": nn.GRU, "lstm": nn.LSTM, "leaf": nn.GRU}.get(kind, nn.RNN)
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
                states.append(hc)  # (h, c) of layer k after the last step
                layer_input = torch.stack(outputs)
            return states
        if kind == "gru_and_lstm":
            return (modules["gru"](x)[1], [modules["lstm"](x)[1]])
        if kind == "leaf":  # a state that is itself a leaf that requires grad, e.g. a learned h_0
            return torch.zeros(1, case.config["N"], case.config["hidden_size"], dtype=DTYPE,
                               requires_grad=True)
        return modules["main"](x)[1]

    @staticmethod
    def summary(state, result) -> dict:
        """What the check needs to know about `result`, as plain data."""
        originals = dict(leaves(state))
        found = []
        for path, tensor in leaves(result):
            original = originals.get(path)
            found.append({"path": path, "value": tensor.detach().clone(),
                          "requires_grad": tensor.requires_grad,
                          "has_grad_fn": tensor.grad_fn is not None,
                          "shares_data": original is not None and tensor.data_ptr() == original.data_ptr()
                          and tensor.shape == original.shape,
                          "same_object": tensor is original})
        return {"structure": describe_structure(result), "leaves": found,
                "input_intact": [t.requires_grad for _, t in leaves(state)]}

    def run_student(self, student, case):
        state = self.state(case)
        before = [t.requires_grad for _, t in leaves(state)]
        result = call_student(self.student_name, lambda: student(state))
        summary = self.summary(state, result)
        summary["input_intact"] = [now == then for now, then in zip(summary["input_intact"], before)]
        return summary

    def run_reference(self, case):
        state = self.state(case)
        result = pytree.tree_map(torch.Tensor.detach, state)
        summary = self.summary(state, result)
        summary["input_intact"] = [True] * len(summary["input_intact"])
        return summary

    def compare(self, case, expected, actual):
        if actual["structure"] != expected["structure"]:
            return [f"detach_state returned {actual['structure']}, expected {expected['structure']}: "
                    "return the same structure as the state you were given, with every tensor "
                    "detached (tuples stay tuples, lists stay lists)"]
        problems = []
        for want, got in zip(expected["leaves"], actual["leaves"]):
            path = got["path"]
            problems += compare_tensor(path, want["value"], got["value"],
                                       dims=("k",) * want["value"].dim(), rtol=0, atol=0)
            if got["requires_grad"] or got["has_grad_fn"]:
                what = "has a grad_fn" if got["has_grad_fn"] else "requires grad"
                same = " (it is the very tensor you were given)" if got["same_object"] else ""
                problems.append(f"{path} {what}{same}, so it is still attached to the graph of earlier "
                                "steps: return tensor.detach()")
            elif not got["shares_data"]:
                problems.append(f"{path} is a copy stored elsewhere in memory: tensor.detach() shares "
                                "the original's storage, so a detached state costs no copy. Drop the "
                                ".clone() (or whatever copies it)")
        if not problems and not all(actual["input_intact"]):
            problems.append("detach_state changed the state it was given (detach_() works in place): "
                            "the original tensors are still part of the graph that backward() will "
                            "walk, so return new, detached tensors and leave the originals alone")
        return problems

    def hint(self, case, actual):
        structure, expected = actual["structure"], self.run_reference(case)["structure"]
        if expected.startswith("tuple(Tensor") and structure.startswith("Tensor"):
            return ("an LSTM's state is the pair (h, c): detach both and return them as a tuple; "
                    "dropping c loses the cell state, which is the LSTM's memory")
        if structure.replace("list(", "tuple(") == expected.replace("list(", "tuple("):
            return "the containers' types differ: rebuild a tuple as a tuple and a list as a list"
        return ""


check_detach_state = DetachStateCheck()
