"""Checks for chapter 4, training a recurrent net.

    clip_grad_norm(parameters, max_norm, norm_type)   vs torch.nn.utils.clip_grad_norm_
    hidden_grad_norms(module, input, loss_fn)         vs autograd through nn.RNN/LSTM/GRU
    detach_state(state)                               vs Tensor.detach on every tensor of the state
    train_hello(cell, hidden_size, seed, max_steps)   a HelloNet that maps "hello" to "ohlol"

Every reference is computed here, at check time: torch's own clip_grad_norm_ on
clones of the same parameters, autograd through a torch.nn module built from the
case's weights, torch's detach, and a trusted HelloNet that is loaded with the
weights the student's training produced. Nothing the student reports is taken on
trust: the training check counts the optimizer steps itself.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils import _pytree as pytree

from ..checking import (Case, Check, CheckFailure, OwnMessages, call_student, describe_config, seeded,
                        state_of, unpack_pair, with_state)
from ..checking.compare import compare_tensor, matches, shape_str, type_name
from ..common import DTYPE

ASSIGNMENT = "04-training"

EPS = 1e-6  # what clip_grad_norm_ adds to the total norm before dividing
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def untouched_rng():
    """Build reference modules without consuming the student's random numbers."""
    return torch.random.fork_rng(devices=[])


# -- the toy task: "hello" -> "ohlol" --------------------------------------------

VOCAB = "ehlo"  # sorted characters of "hello": e=0, h=1, l=2, o=3
SOURCE, TARGET = "hello", "ohlol"


def encode(text: str) -> torch.Tensor:
    """Characters to a (L,) tensor of indices into VOCAB."""
    return torch.tensor([VOCAB.index(c) for c in text])


def decode(indices: torch.Tensor) -> str:
    """A (L,) tensor of indices back to characters."""
    return "".join(VOCAB[int(i)] for i in indices)


class HelloNet(nn.Module):
    """nn.Embedding(4, 10) -> nn.RNN, nn.LSTM or nn.GRU (one layer) -> nn.Linear(hidden_size, 4).

    forward(x) takes indices of shape (L,) (or (L, N)) and returns one row of 4
    logits per step, (L, 4) (or (L, N, 4)), for a cross-entropy over every step.
    """

    def __init__(self, cell: str = "rnn", hidden_size: int = 8, embedding_dim: int = 10):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.embedding = nn.Embedding(len(VOCAB), embedding_dim)
        self.rnn = CELLS[cell](embedding_dim, hidden_size)
        self.decoder = nn.Linear(hidden_size, len(VOCAB))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(self.embedding(x))  # (L, [N,] H): h_t for every step
        return self.decoder(output)               # (L, [N,] 4): logits for every step


# -- clip_grad_norm -------------------------------------------------------------------

def total_norm(grads: list[torch.Tensor], norm_type: float) -> torch.Tensor:
    """The norm of the vector of per-gradient norms, as clip_grad_norm_ defines it."""
    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])
    return torch.linalg.vector_norm(norms, norm_type)


class ClipGradNormCheck(Check):
    name = "04-training/clip_grad_norm"
    student_name = "clip_grad_norm"
    reference_name = "torch.nn.utils.clip_grad_norm_"

    # torch's public entry points (clip_grad_norm_ itself calls the other two), and the grader's own norm
    forbidden_functions = ("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm",
                           "torch.nn.utils.get_total_norm", "torch.nn.utils.clip_grads_with_norm_",
                           "rnn_by_hand.chapters.training.total_norm")
    forbidden_reason = "this exercise asks you to write the clipping yourself"

    # shapes: one parameter each; no_grad: indices whose .grad is None; ratio: max_norm
    # as a multiple of the total norm ("equal" is max_norm == total norm, where only
    # the 1e-6 decides); scale: multiplies every gradient (tiny norms make the 1e-6 count);
    # container: how the parameters are passed (a list, a generator, one tensor).
    VISIBLE = [dict(shapes=[(4, 3), (4,), (2, 4)], no_grad=[], norm_type=2.0, ratio=0.25,
                    scale=1.0, container="list"),
               dict(shapes=[(5, 5), (5,), (3, 5)], no_grad=[1], norm_type=2.0, ratio=3.0,
                    scale=1.0, container="list"),
               dict(shapes=[(3, 4), (6,)], no_grad=[], norm_type=math.inf, ratio=0.5,
                    scale=1.0, container="generator"),
               dict(shapes=[(3, 3)], no_grad=[], norm_type=2.0, ratio="equal",
                    scale=1.0, container="tensor"),
               dict(shapes=[(3, 2), (2,)], no_grad=[0, 1], norm_type=2.0, ratio=0.5,
                    scale=1.0, container="list")]
    HIDDEN = [dict(shapes=[(6, 2)], no_grad=[], norm_type=2.0, ratio=0.1, scale=1.0,
                   container="tensor"),
              dict(shapes=[(2, 3), (3,), (4, 2), (4,)], no_grad=[0, 3], norm_type=math.inf,
                   ratio=0.2, scale=1.0, container="generator"),
              dict(shapes=[(3, 2), (2,)], no_grad=[], norm_type=2.0, ratio=0.5, scale=1e-6,
                   container="list"),
              dict(shapes=[(4, 4), (4,), (2, 4), (2,), (7,)], no_grad=[2], norm_type=2.0,
                   ratio=1.5, scale=10.0, container="generator"),
              dict(shapes=[(5,), (2, 2)], no_grad=[], norm_type=math.inf, ratio="equal",
                   scale=1e-3, container="list"),
              dict(shapes=[(4,), (3, 3), (2,)], no_grad=[0, 1, 2], norm_type=math.inf, ratio=2.0,
                   scale=1.0, container="generator")]

    def make_case(self, config, seed):
        tensors = {}
        for k, shape in enumerate(config["shapes"]):
            tensors[f"param{k}"] = torch.randn(*shape, dtype=DTYPE)
            if k not in config["no_grad"]:
                tensors[f"grad{k}"] = config["scale"] * torch.randn(*shape, dtype=DTYPE)
        grads = [tensors[f"grad{k}"] for k in range(len(config["shapes"])) if f"grad{k}" in tensors]
        total = total_norm(grads, config["norm_type"]).item() if grads else 0.0
        ratio = 1.0 if config["ratio"] == "equal" else config["ratio"]
        # No gradient at all: the total norm is 0 whatever max_norm says (torch returns tensor(0.)).
        config = dict(config, max_norm=ratio * total if grads else ratio)
        return Case(self.case_label(config, total), config, tensors)

    @staticmethod
    def case_label(config, total) -> str:
        shapes = ", ".join(shape_str(s) for s in config["shapes"])
        none = f", .grad None for parameter(s) {config['no_grad']}" if config["no_grad"] else ""
        ratio = config["ratio"]
        if len(config["no_grad"]) == len(config["shapes"]):
            none = ", no parameter has a gradient (every .grad is None)"
        where = ("max_norm equal to the total norm" if ratio == "equal" else
                 f"max_norm = {config['max_norm']:g}" if len(config["no_grad"]) == len(config["shapes"]) else
                 f"max_norm = {ratio:g} x the total norm {total:.3g}" + (" (no clipping needed)"
                                                                        if ratio >= 1 else ""))
        passed = {"list": "a list", "generator": "a generator, like model.parameters()",
                  "tensor": "a single tensor"}[config["container"]]
        return (f"parameters of shapes {shapes}{none}, norm_type={config['norm_type']}, {where}, "
                f"passed as {passed}")

    @staticmethod
    def parameters(case) -> list[nn.Parameter]:
        """Fresh parameters with clones of the case's gradients (.grad None where it says so)."""
        params = []
        for k in range(len(case.config["shapes"])):
            p = nn.Parameter(case.tensors[f"param{k}"].clone())
            if f"grad{k}" in case.tensors:
                p.grad = case.tensors[f"grad{k}"].clone()
            params.append(p)
        return params

    @staticmethod
    def passed(params, container):
        if container == "tensor":
            return params[0]
        if container == "generator":
            return (p for p in params)
        return list(params)

    def run_student(self, student, case):
        params = self.parameters(case)
        grads_before = [p.grad for p in params]  # the tensor objects, to see whether they stay
        arg = self.passed(params, case.config["container"])
        returned = call_student(self.student_name, lambda: student(
            arg, case.config["max_norm"], norm_type=case.config["norm_type"]))
        return {"total_norm": returned,
                "grads": [None if p.grad is None else p.grad.detach().clone() for p in params],
                "same_grad_tensor": [p.grad is g for p, g in zip(params, grads_before)],
                "params_unchanged": [torch.equal(p.detach(), case.tensors[f"param{k}"])
                                     for k, p in enumerate(params)]}

    def run_reference(self, case):
        params = self.parameters(case)
        total = torch.nn.utils.clip_grad_norm_(self.passed(params, case.config["container"]),
                                               case.config["max_norm"],
                                               norm_type=case.config["norm_type"])
        return {"total_norm": total, "grads": [p.grad for p in params]}

    def compare(self, case, expected, actual):
        problems = []
        returned = actual["total_norm"]
        if isinstance(returned, (int, float)) and not isinstance(returned, bool):
            problems.append(f"the returned total norm is a Python {type(returned).__name__} "
                            f"({returned:.6g}); return it as a 0-dimensional tensor, as "
                            "clip_grad_norm_ does (do not call .item())")
        else:
            name = "the returned total norm"
            problems += [p.replace(f"{name}[]", name) for p in compare_tensor(
                name, expected["total_norm"], returned, dims=(), layout="() (a 0-dimensional tensor)",
                rtol=self.rtol, atol=self.atol)]
        for k, (want, got) in enumerate(zip(expected["grads"], actual["grads"])):
            name = f"parameters[{k}].grad"
            if want is None and got is not None:
                problems.append(f"{name} was None (that parameter had no gradient) and should stay "
                                "None; skip parameters whose .grad is None")
            elif want is not None and got is None:
                problems.append(f"{name} became None; clipping scales gradients, it never removes them")
            elif want is not None:
                dims = ("i", "j")[:want.dim()]
                problems += compare_tensor(name, want, got, dims=dims, rtol=self.rtol, atol=self.atol)
        if not problems:
            for k, same in enumerate(actual["same_grad_tensor"]):
                if not same:
                    problems.append(f"parameters[{k}].grad has the right values but is a new tensor: "
                                    "clip_grad_norm_ scales each gradient in place (p.grad.mul_(scale)), "
                                    "so that every reference to p.grad sees the clipped values")
                    break
            for k, same in enumerate(actual["params_unchanged"]):
                if not same:
                    problems.append(f"parameters[{k}] itself changed; clipping changes only .grad")
                    break
        return problems

    def hint(self, case, actual):
        config = case.config
        grads = [case.tensors.get(f"grad{k}") for k in range(len(config["shapes"]))]
        present = [g for g in grads if g is not None]
        if not present:
            return ("no parameter has a gradient here, so nothing is clipped and the total norm is 0: "
                    "return torch.tensor(0.0), as clip_grad_norm_ does")
        p, max_norm = config["norm_type"], config["max_norm"]
        total = total_norm(present, p)
        clipped_total = total * min(1.0, (max_norm / (total + EPS)).item())

        def scaled(factor):
            return [None if g is None else g * factor for g in grads]

        def own_norm(g):
            if g is None:
                return None
            return g * min(1.0, max_norm / (torch.linalg.vector_norm(g, p).item() + EPS))

        candidates = [
            ("you clipped each parameter by the norm of its own gradient; clip_grad_norm_ computes "
             "ONE norm over all gradients together (the norm of the vector of per-parameter norms) "
             "and scales every gradient by the same factor, which keeps the direction of the update",
             {"grads": [own_norm(g) for g in grads]}),
            ("you scaled the gradients although their total norm was below max_norm: the factor "
             "max_norm / (total_norm + 1e-6) is applied only when it is below 1, so small "
             "gradients are never enlarged",
             {"grads": scaled(max_norm / (total + EPS))}),
            ("parameters can be a single tensor, and iterating over a tensor walks its rows, which "
             "have no .grad: wrap a single tensor in a list first",
             {"grads": grads, "total_norm": torch.tensor(0.0)} if config["container"] == "tensor" else {}),
            ("your scale leaves out the 1e-6: clip_grad_norm_ multiplies by "
             "max_norm / (total_norm + 1e-6) whenever that is below 1, which matters when the total "
             "norm is tiny or equal to max_norm",
             {"grads": scaled(min(1.0, max_norm / total.item()))}),
            ("parameters was a generator (as model.parameters() is), which can be read only once: "
             "your second pass over it found nothing to scale. Turn it into a list first",
             {"grads": grads} if config["container"] == "generator" else {}),
            ("you returned the norm after clipping; clip_grad_norm_ returns the total norm of the "
             "gradients as they were before clipping, so that you can log how large it really was",
             {"total_norm": clipped_total}),
            ("for norm_type=inf the norm is the largest absolute value of any gradient entry; your "
             "total matches the 2-norm",
             {"total_norm": total_norm(present, 2.0)} if p == math.inf else {}),
            ("the total norm is the norm of the per-parameter norms, sqrt(sum_k ||g_k||^2) for the "
             "2-norm; your total matches the plain sum of the per-parameter norms",
             {"total_norm": sum(torch.linalg.vector_norm(g, p) for g in present)}
             if p == 2.0 and len(present) > 1 else {}),
        ]
        expected = self.run_reference(case)
        for text, outputs in candidates:
            if outputs and all(self.same(outputs[k], actual.get(k)) and not self.same(outputs[k], expected[k])
                               for k in outputs):
                return text
        return ""

    @staticmethod
    def same(a, b) -> bool:
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(
                (x is None and y is None) or (x is not None and matches(x, y)) for x, y in zip(a, b))
        return a is not None and matches(a, b)


# -- hidden_grad_norms ---------------------------------------------------------------

LOSSES = {
    "last": "(output[-1] * target).sum(): the last step only",
    "every": "(output * target).sum(): every step",
    "mse_last": "F.mse_loss(output[-1], target): the last step only",
    "mean_square": "output.pow(2).mean(): every step",
}


def make_loss(case: Case):
    """The case's loss as a function of the whole output (L, N, H)."""
    kind, target = case.config["loss"], case.tensors.get("target")
    if kind == "last":
        return lambda output: (output[-1] * target).sum()
    if kind == "every":
        return lambda output: (output * target).sum()
    if kind == "mse_last":
        return lambda output: F.mse_loss(output[-1], target)
    return lambda output: output.pow(2).mean()


def recurrent_module(case: Case) -> nn.Module:
    """The case's nn.RNN, nn.LSTM or nn.GRU with its weights, in float64."""
    c = case.config
    kwargs = {"nonlinearity": c["nonlinearity"]} if c["cell"] == "rnn" else {}
    with untouched_rng():  # the weights come from the case, not from the initialiser
        module = CELLS[c["cell"]](c["input_size"], c["hidden_size"], dtype=DTYPE, **kwargs)
    module.load_state_dict(state_of(case.tensors))
    return module


def unrolled_states(module: nn.Module, x: torch.Tensor, h_0=None):
    """Run `module` one step at a time; return the states h_1..h_L (each (1, N, H)) and c_1..c_L.

    Each h_t returned here is the very tensor the next step reads, so a gradient
    with respect to it includes everything that flows back from later steps.
    """
    state, hs, cs = h_0, [], []
    for t in range(x.shape[0]):
        _, state = module(x[t:t + 1], state)
        h, c = state if isinstance(state, tuple) else (state, None)
        hs.append(h)
        cs.append(c)
    return hs, cs


class HiddenGradNormsCheck(Check):
    name = "04-training/hidden_grad_norms"
    forbidden_functions = ("rnn_by_hand.chapters.training.unrolled_states",)
    student_name = "hidden_grad_norms"
    reference_name = "autograd through the same torch.nn module"

    VISIBLE = [dict(cell="rnn", nonlinearity="tanh", L=12, N=2, input_size=3, hidden_size=5, loss="last"),
               dict(cell="lstm", L=10, N=3, input_size=4, hidden_size=6, loss="every"),
               dict(cell="gru", L=8, N=1, input_size=2, hidden_size=4, loss="mse_last"),
               dict(cell="rnn", nonlinearity="relu", L=9, N=2, input_size=3, hidden_size=4, loss="mean_square")]
    HIDDEN = [dict(cell="rnn", nonlinearity="relu", L=15, N=2, input_size=3, hidden_size=4, loss="every"),
              dict(cell="lstm", L=20, N=1, input_size=2, hidden_size=3, loss="last"),
              dict(cell="gru", L=6, N=4, input_size=5, hidden_size=7, loss="every"),
              dict(cell="rnn", nonlinearity="tanh", L=25, N=3, input_size=2, hidden_size=8,
                   loss="mean_square"),
              dict(cell="lstm", L=7, N=2, input_size=3, hidden_size=5, loss="mse_last")]

    def make_tensors(self, config):
        kwargs = {"nonlinearity": config["nonlinearity"]} if config["cell"] == "rnn" else {}
        module = CELLS[config["cell"]](config["input_size"], config["hidden_size"], dtype=DTYPE, **kwargs)
        L, N, H = config["L"], config["N"], config["hidden_size"]
        tensors = {"input": torch.randn(L, N, config["input_size"], dtype=DTYPE)}
        if config["loss"] in ("last", "mse_last"):
            tensors["target"] = torch.randn(N, H, dtype=DTYPE)
        elif config["loss"] == "every":
            tensors["target"] = torch.randn(L, N, H, dtype=DTYPE)
        return tensors | with_state(module)

    def label(self, config):
        label = describe_config({k: v for k, v in config.items() if k != "loss"})
        return f"{label}, loss = {LOSSES[config['loss']]}"

    def run_student(self, student, case):
        module = recurrent_module(case)
        norms = call_student(self.student_name, student, module, case.tensors["input"], make_loss(case))
        return {"norms": norms}

    def run_reference(self, case):
        hs, _ = unrolled_states(recurrent_module(case), case.tensors["input"])
        loss = make_loss(case)(torch.cat(hs))  # (L, N, H) -> scalar
        grads = torch.autograd.grad(loss, hs)
        return {"norms": torch.stack([g.norm() for g in grads])}  # (L,)

    def compare(self, case, expected, actual):
        return compare_tensor("norms", expected["norms"], actual["norms"], dims=("t",),
                              layout="(L,), with norms[t - 1] = ||dL/dh_t|| for t = 1..L",
                              rtol=self.rtol, atol=self.atol)

    def mistakes(self, case) -> list[tuple[str, torch.Tensor]]:
        x, loss_fn = case.tensors["input"], make_loss(case)
        module = recurrent_module(case)
        found = []
        output, _ = module(x)  # one call over the whole sequence
        direct = torch.autograd.grad(loss_fn(output), output)[0]  # (L, N, H)
        found.append(("your norms match output.grad of one call over the whole sequence, which holds "
                      "only the gradient that reaches output[t] directly from the loss. Inside the module "
                      "h_t also feeds step t + 1, and that path never goes through `output`: run the "
                      "module one step at a time and take the gradient with respect to the state that "
                      "the next step reads", direct.flatten(1).norm(dim=1)))
        H, N = case.config["hidden_size"], case.config["N"]
        h_0 = torch.zeros(1, N, H, dtype=DTYPE, requires_grad=True)
        state_0 = (h_0, torch.zeros(1, N, H, dtype=DTYPE)) if case.config["cell"] == "lstm" else h_0
        hs, cs = unrolled_states(module, x, state_0)
        loss = loss_fn(torch.cat(hs))
        grads = torch.autograd.grad(loss, [h_0] + hs, retain_graph=True, allow_unused=True,
                                    materialize_grads=True)
        norms = torch.stack([g.norm() for g in grads])  # (L + 1,): h_0 .. h_L
        found.append(("your norms are in reverse order: norms[0] should be ||dL/dh_1|| (the first "
                      "step) and norms[-1] ||dL/dh_L||", norms[1:].flip(0)))
        found.append(("norms[t - 1] should be the gradient at h_t, the state AFTER reading x_t; yours "
                      "are for the state before it, h_{t-1} (starting from h_0)", norms[:-1]))
        found.append(("you returned squared norms; return ||dL/dh_t||, the square root of the sum "
                      "of squares", norms[1:] ** 2))
        if N > 1:
            first = torch.stack([g[0, 0].norm() for g in grads[1:]])
            found.append(("your norms cover only the first sequence of the batch; take the norm "
                          "over the whole (N, H) gradient of each step", first))
        if case.config["cell"] == "lstm":
            c_grads = torch.autograd.grad(loss, cs, allow_unused=True, materialize_grads=True)
            found.append(("your norms match the gradient with respect to the cell state c_t; an LSTM's "
                          "state is the pair (h, c), and h_t is its first element",
                          torch.stack([g.norm() for g in c_grads])))
        return found

    def hint(self, case, actual):
        expected = self.run_reference(case)["norms"]
        for text, norms in self.mistakes(case):
            if matches(norms, actual["norms"]) and not matches(norms, expected):
                return text
        return ""


# -- detach_state ----------------------------------------------------------------------

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


# -- train_hello -----------------------------------------------------------------------

class StepCounter:
    """Counts every optimizer.step() of any torch.optim optimizer while it is active, and keeps
    a copy of the parameters before and after each step (by tensor identity): to replay the
    training, and to see updates that went around the counted steps (a call of the step
    function's __wrapped__, a hand-written update), which nothing else would count."""

    def __enter__(self):
        self.count = 0
        self.before: list[dict[int, torch.Tensor]] = []
        self.snapshots: list[dict[int, torch.Tensor]] = []  # after each step
        self.handles = [register_optimizer_step_pre_hook(self.pre_hook),
                        register_optimizer_step_post_hook(self.hook)]
        return self

    @staticmethod
    def parameters(optimizer) -> dict[int, torch.Tensor]:
        return {id(p): p.detach().clone() for group in optimizer.param_groups for p in group["params"]}

    def pre_hook(self, optimizer, args, kwargs):
        self.before.append(self.parameters(optimizer))

    def hook(self, optimizer, args, kwargs):
        self.count += 1
        self.snapshots.append(self.parameters(optimizer))

    def first_success(self, model: nn.Module, cell: str, hidden_size: int) -> int | None:
        """The first step after which `model`'s parameters, as they were then, map SOURCE to TARGET."""
        named = dict(model.named_parameters())
        for step, snapshot in enumerate(self.snapshots, start=1):
            if not all(id(p) in snapshot for p in named.values()):
                return None  # trained through another model's parameters: nothing to replay
            state = {name: snapshot[id(p)] for name, p in named.items()}
            if predict(cell, hidden_size, state)[0] == TARGET:
                return step
        return None

    def initial_state(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """`model`'s parameters by name just before the first counted step, where it took one."""
        named = dict(model.named_parameters())
        if not self.before or not all(id(p) in self.before[0] for p in named.values()):
            return None
        return {name: self.before[0][id(p)] for name, p in named.items()}

    def uncounted_updates(self, model: nn.Module) -> int:
        """How many times the parameters changed between two counted steps or after the last."""
        final = {id(p): p.detach() for p in model.parameters()}
        changes = 0
        for after, next_seen in zip(self.snapshots, self.before[1:len(self.snapshots)] + [final]):
            common = after.keys() & next_seen.keys()
            changes += any(not torch.equal(after[k], next_seen[k]) for k in common)
        return changes

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return False


def predict(cell: str, hidden_size: int, state: dict) -> tuple[str, float]:
    """Load `state` into a trusted HelloNet; its argmax for "hello" and its loss on "ohlol"."""
    dtype = next(iter(state.values())).dtype
    with untouched_rng():
        model = HelloNet(cell, hidden_size).to(dtype)
    model.load_state_dict(state)
    with torch.no_grad():
        logits = model(encode(SOURCE))  # (5, 4)
        loss = F.cross_entropy(logits, encode(TARGET)).item()
    return decode(logits.argmax(-1)), loss


def is_fresh(state: dict, fresh: dict[str, torch.Tensor]) -> bool:
    """Whether `state` holds the weights of the fresh HelloNet `fresh`, as made from the seed.
    Close, not equal: the sandbox's process may draw the same seed's floats an ulp apart
    (measured: 3e-8, and 1e-6 from normal_), while one Adam step at lr=0.01 moves them ~1e-2."""
    return state.keys() == fresh.keys() and all(
        isinstance(state[k], torch.Tensor) and state[k].shape == fresh[k].shape
        and torch.allclose(state[k], fresh[k].to(state[k].dtype), rtol=1e-4, atol=1e-5) for k in fresh)


class TrainHelloCheck(OwnMessages, Check):
    name = "04-training/train_hello"
    student_name = "train_hello"
    reference_name = "a trusted HelloNet loaded with the trained weights"
    ok_text = (f"reaches {TARGET!r} within the step budget (read from the check's own HelloNet "
               "loaded with your weights; optimizer steps counted by the check)")
    failure_text = f"did not train a HelloNet that maps {SOURCE!r} to {TARGET!r}"

    VISIBLE = [dict(cell="rnn", hidden_size=8, max_steps=200),
               dict(cell="lstm", hidden_size=8, max_steps=200),
               dict(cell="gru", hidden_size=8, max_steps=200)]
    HIDDEN = [dict(cell="gru", hidden_size=12, max_steps=200),
              dict(cell="rnn", hidden_size=16, max_steps=150),
              dict(cell="lstm", hidden_size=10, max_steps=200),
              dict(cell="rnn", hidden_size=10, max_steps=200)]

    def make_case(self, config, seed):
        config = dict(config, seed=seed)
        return Case(describe_config(config), config)

    def run_student(self, student, case):
        c = case.config
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a network this small trains fastest on one thread
        try:
            with StepCounter() as counter:
                result = call_student(self.student_name, student, c["cell"], c["hidden_size"],
                                      c["seed"], max_steps=c["max_steps"])
        finally:
            torch.set_num_threads(threads)
        model, steps = unpack_pair(self.student_name, result, ("model", "steps"))
        if not isinstance(model, nn.Module):
            raise CheckFailure(f"{self.student_name} should return (model, steps) with model an "
                               f"nn.Module (a HelloNet), got {type_name(model)}")
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        try:
            first = counter.first_success(model, c["cell"], c["hidden_size"])
        except Exception:  # noqa: BLE001 -- not a HelloNet's parameters: compare() says so
            first = None
        return {"state": state, "steps": steps, "counted_steps": counter.count, "first_success": first,
                "initial": counter.initial_state(model), "uncounted": counter.uncounted_updates(model)}

    def run_reference(self, case):
        c = case.config
        with seeded(c["seed"]):  # what the model was before training, to recognise "not trained"
            fresh = HelloNet(c["cell"], c["hidden_size"])
        return {"target": TARGET, "fresh": {k: v.detach().clone() for k, v in fresh.state_dict().items()}}

    def compare(self, case, expected, actual):
        c = case.config
        counted, steps = actual["counted_steps"], actual["steps"]
        if counted == 0:
            return ["no optimizer step was taken: train with a torch.optim optimizer (the check "
                    "counts the calls of optimizer.step())"]
        problems = []
        if isinstance(steps, torch.Tensor) and steps.numel() == 1 and not steps.is_floating_point():
            steps = int(steps)
        if type(steps) is not int:
            problems.append(f"steps should be an int, the number of optimizer steps taken; got "
                            f"{type_name(steps)}")
        elif steps != counted:
            problems.append(f"you reported steps={steps}, but optimizer.step() was called {counted} "
                            "times: report the number of steps actually taken")
        if counted > c["max_steps"]:
            problems.append(f"training took {counted} optimizer steps, more than the budget "
                            f"max_steps={c['max_steps']}")
        if actual.get("uncounted"):
            problems.append(f"the parameters changed {actual['uncounted']} time(s) between the counted "
                            "optimizer.step() calls or after the last: train with optimizer.step() only "
                            "(the check counts its calls; nothing else may update the weights)")
        initial = actual.get("initial")
        if isinstance(initial, dict) and not is_fresh(initial, expected["fresh"]):
            problems.append("before the first counted optimizer.step(), the model was not the HelloNet "
                            "built right after torch.manual_seed(seed): seed, build the model, then "
                            "train it with optimizer.step() alone")
        first = actual.get("first_success")
        # One step of slack: a loop may judge the logits it computed before its last step.
        if type(first) is int and counted > first + 1:
            problems.append(f"the model already mapped {SOURCE!r} to {TARGET!r} after step {first}, but "
                            f"training went on to step {counted}: stop as soon as it does (its argmax over "
                            "the last dimension, dim=-1, equals the targets)")
        with untouched_rng():
            reference = HelloNet(c["cell"], c["hidden_size"]).state_dict()
        state = actual["state"]
        shapes = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
        wanted = {k: tuple(v.shape) for k, v in reference.items()}
        if shapes != wanted:
            return problems + [f"the returned model's parameters are {shapes}, but "
                               f"HelloNet(cell={c['cell']!r}, hidden_size={c['hidden_size']}) has "
                               f"{wanted}: build the model with HelloNet(cell, hidden_size)"]
        predicted, loss = predict(c["cell"], c["hidden_size"], state)
        if predicted != expected["target"]:
            problems.append(f"the returned model maps {SOURCE!r} to {predicted!r}, not "
                            f"{expected['target']!r} (cross-entropy {loss:.3f})")
        return problems

    def hint(self, case, actual):
        state = actual.get("state")
        if isinstance(state, dict) and is_fresh(state, self.run_reference(case)["fresh"]):
            return ("the returned weights are those of a fresh HelloNet made right after "
                    "torch.manual_seed(seed): return the model you trained, not a new one")
        if isinstance(actual.get("steps"), int) and actual["steps"] in (actual["counted_steps"] - 1,
                                                                        actual["counted_steps"] + 1):
            return ("off by one: count the steps from 1, so that steps equals the number of "
                    "optimizer.step() calls")
        return ""


check_clip_grad_norm = ClipGradNormCheck()
check_hidden_grad_norms = HiddenGradNormsCheck()
check_detach_state = DetachStateCheck()
check_train_hello = TrainHelloCheck()
