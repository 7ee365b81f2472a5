"""hidden_grad_norms(module, input, loss_fn) against autograd through the nn.RNN, nn.LSTM
or nn.GRU built from the case's weights: the gradient's norm at every hidden state."""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from ...checking import Case, Check, call_student, describe_config, state_of, untouched_rng, with_state
from ...checking.compare import compare_tensor, matches
from ...common import DTYPE, RECURRENT_MODULES

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
        module = RECURRENT_MODULES[c["cell"]](c["input_size"], c["hidden_size"], dtype=DTYPE, **kwargs)
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
    forbidden_functions = ("rnn_by_hand.chapters.training.gradients.unrolled_states",)
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
        module = RECURRENT_MODULES[config["cell"]](config["input_size"], config["hidden_size"], dtype=DTYPE, **kwargs)
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


check_hidden_grad_norms = HiddenGradNormsCheck()
