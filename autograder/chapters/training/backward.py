"""rnn_step_backward(grad_h, x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity):
the gradients of one Elman step, by hand, against autograd through nn.RNNCell with the
case's weights.

The chapter derives dL/dh_{t-1} = (delta * phi'(a_t)) @ W_hh and the W_hh term of one
step; the exercise asks for every gradient of the step, for tanh and ReLU, on a batch.
`step_gradients` is our own by-hand version, used only to name mistakes in hints; the
chapter's tests check it against autograd.
"""
from __future__ import annotations

import torch
from torch import nn

from ...checking import Check, CheckFailure, call_student, describe_config, untouched_rng
from ...checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ...common import DTYPE, layer_tensors, load_weights

# what the exercise returns, in the order of the step's inputs
GRADS = ("grad_x", "grad_h_prev", "grad_weight_ih", "grad_weight_hh", "grad_bias_ih", "grad_bias_hh")
INPUTS = ("x", "h_prev", "weight_ih", "weight_hh", "bias_ih", "bias_hh")
DIMS = {"grad_x": ("n", "i"), "grad_h_prev": ("n", "h"), "grad_weight_ih": ("h", "i"),
        "grad_weight_hh": ("h", "j"), "grad_bias_ih": ("h",), "grad_bias_hh": ("h",)}
LAYOUTS = {"grad_x": "(N, H_in), like x", "grad_h_prev": "(N, H), like h_prev",
           "grad_weight_ih": "(H, H_in), like weight_ih", "grad_weight_hh": "(H, H), like weight_hh",
           "grad_bias_ih": "(H,), like bias_ih", "grad_bias_hh": "(H,), like bias_hh"}


def step_gradients(grad_h, x, h_prev, w, nonlinearity, mistake=None) -> dict[str, torch.Tensor]:
    """The six gradients of h = phi(x W_ih^T + b_ih + h_prev W_hh^T + b_hh), by hand.

    `mistake` names a classic error to reproduce (for hints): "pre" (tanh' from the
    pre-activation), "no_phi" (no derivative of phi), "tanh_slope" (tanh' for a ReLU),
    "mean" (weights and biases averaged over the batch), "w_hh_t" (W_hh^T for h_prev).
    """
    pre = x @ w["weight_ih"].T + w["bias_ih"] + h_prev @ w["weight_hh"].T + w["bias_hh"]  # (N, H)
    h = torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)
    if mistake == "no_phi":
        slope = torch.ones_like(pre)
    elif mistake == "pre":
        slope = 1 - pre ** 2
    elif mistake == "tanh_slope":
        slope = 1 - torch.tanh(pre) ** 2
    elif nonlinearity == "tanh" or mistake == "tanh_slope_h":
        slope = 1 - h ** 2  # tanh'(a) = 1 - tanh(a)^2, from the output
    elif mistake == "relu_at_zero":
        slope = (pre >= 0).to(pre.dtype)
    else:
        slope = (pre > 0).to(pre.dtype)  # relu'(a): 1 where the unit is active
    delta = grad_h * slope  # (N, H): dL/da, the gradient at the pre-activation
    w_hh = w["weight_hh"].T if mistake == "w_hh_t" else w["weight_hh"]
    scale = 1 / x.shape[0] if mistake == "mean" else 1.0
    return {"grad_x": delta @ w["weight_ih"],           # (N, H) @ (H, H_in)
            "grad_h_prev": delta @ w_hh,                  # (N, H) @ (H, H)
            "grad_weight_ih": scale * delta.T @ x,        # (H, N) @ (N, H_in): summed over n
            "grad_weight_hh": scale * delta.T @ h_prev,   # (H, N) @ (N, H)
            "grad_bias_ih": scale * delta.sum(0),         # (H,)
            "grad_bias_hh": scale * delta.sum(0)}


MISTAKES = {
    "pre": "your gradients use 1 - a^2 with a the pre-activation; tanh'(a) = 1 - tanh(a)^2, "
           "which is 1 - h^2 with h the step's output",
    "no_phi": "your gradients leave out the derivative of the nonlinearity: multiply grad_h by "
              "phi'(a) first (1 - h^2 for tanh, 1 where a > 0 for ReLU), then backpropagate",
    "tanh_slope": "for nonlinearity='relu' the slope is 1 where the pre-activation is positive "
                  "and 0 elsewhere; yours is tanh's",
    "tanh_slope_h": "for nonlinearity='relu' the slope is 1 where the pre-activation is positive "
                    "and 0 elsewhere; yours is tanh's formula, 1 - h^2",
    "relu_at_zero": "where a pre-activation is exactly 0 your ReLU slope is 1; PyTorch's is 0 "
                    "there (autograd's convention): count a unit as active where a > 0, not a >= 0",
    "mean": "your weight and bias gradients are averaged over the batch; the loss sums over "
            "the batch's rows, so their gradients add up: sum over n, do not divide by N",
    "w_hh_t": "grad_h_prev uses W_hh^T; h_prev enters as h_prev @ W_hh^T, so its gradient is "
              "delta @ W_hh (rows are states, as in the chapter's recursion)",
}


class RNNStepBackwardCheck(Check):
    name = "04-training/rnn_step_backward"
    student_name = "rnn_step_backward"
    reference_name = "autograd through torch.nn.RNNCell"
    # autograd itself: every public way to have torch compute the gradient
    forbidden_functions = ("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
                           "rnn_by_hand.chapters.training.backward.step_gradients")
    forbidden_reason = "this exercise asks you to write the gradient yourself, without autograd"

    # Square cases (input_size == hidden_size) let a transposed matrix keep its shape.
    VISIBLE = [dict(nonlinearity="tanh", N=3, input_size=4, hidden_size=5),
               dict(nonlinearity="relu", N=4, input_size=3, hidden_size=4),
               dict(nonlinearity="tanh", N=2, input_size=3, hidden_size=3),
               dict(nonlinearity="tanh", N=1, input_size=2, hidden_size=6)]
    HIDDEN = [dict(nonlinearity="relu", N=5, input_size=4, hidden_size=4),
              dict(nonlinearity="tanh", N=6, input_size=5, hidden_size=3),
              dict(nonlinearity="relu", N=1, input_size=3, hidden_size=5),
              dict(nonlinearity="tanh", N=3, input_size=6, hidden_size=6)]
    PARTS = {"tanh": lambda c: c["nonlinearity"] == "tanh", "relu": lambda c: c["nonlinearity"] == "relu"}

    def cell(self, config) -> nn.RNNCell:
        return nn.RNNCell(config["input_size"], config["hidden_size"], nonlinearity=config["nonlinearity"],
                          dtype=DTYPE)

    def make_tensors(self, config):
        weights = layer_tensors(self.cell(config))  # drawn first: the initialiser sets them
        N, H = config["N"], config["hidden_size"]
        tensors = weights | {"x": torch.randn(N, config["input_size"], dtype=DTYPE),
                             "h_prev": torch.randn(N, H, dtype=DTYPE),
                             "grad_h": torch.randn(N, H, dtype=DTYPE)}
        if config["nonlinearity"] == "relu" and N > 1:
            # ReLU units exactly at a = 0, where autograd's slope is 0: the last row has zero
            # input and state, and every other unit's two biases cancel (-b + b is exactly 0)
            tensors["x"][-1] = 0
            tensors["h_prev"][-1] = 0
            tensors["bias_hh"][::2] = -tensors["bias_ih"][::2]
        return tensors

    def label(self, config):
        return describe_config(config)

    def run_student(self, student, case):
        t = case.tensors
        result = call_student(self.student_name, student, t["grad_h"], *(t[k] for k in INPUTS),
                              nonlinearity=case.config["nonlinearity"])
        if not isinstance(result, (tuple, list)) or len(result) != len(GRADS):
            raise CheckFailure(f"{self.student_name} should return a tuple of six gradients "
                               f"({', '.join(GRADS)}), got {type_name(result)}")
        return dict(zip(GRADS, result))

    def run_reference(self, case):
        t = case.tensors
        with untouched_rng():
            cell = load_weights(self.cell(case.config), t)
        x = t["x"].clone().requires_grad_()
        h_prev = t["h_prev"].clone().requires_grad_()
        h = cell(x, h_prev)  # (N, H)
        params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        grads = torch.autograd.grad(h, [x, h_prev, *params], grad_outputs=t["grad_h"])
        return dict(zip(GRADS, grads))

    def compare(self, case, expected, actual):
        problems = []
        for name in GRADS:
            problems += compare_tensor(name, expected[name], actual[name], dims=DIMS[name],
                                       layout=LAYOUTS[name], rtol=self.rtol, atol=self.atol)
            if problems:
                break  # the first wrong gradient; the hint says more
        return problems

    def hint(self, case, actual):
        shapes = {k: tuple(v.shape) for k, v in actual.items() if isinstance(v, torch.Tensor)}
        H, H_in, N = case.config["hidden_size"], case.config["input_size"], case.config["N"]
        for name in ("grad_weight_ih", "grad_weight_hh"):
            other = H_in if name == "grad_weight_ih" else H
            if other != H and shapes.get(name) == (other, H):
                return (f"{name} has the shape of the transposed weight, {shape_str((other, H))}: "
                        "it is delta.T @ (the step's input), (H, N) @ (N, ...)")
        for name in ("grad_bias_ih", "grad_bias_hh"):
            if shapes.get(name) == (N, H) and N > 1:
                return f"{name} has one row per sequence; a bias is shared by the batch: sum over n"
        t = case.tensors
        w = {k: t[k] for k in INPUTS[2:]}
        nonlinearity = case.config["nonlinearity"]
        # each of these names one nonlinearity's slope
        skip = ("tanh_slope", "tanh_slope_h", "relu_at_zero") if nonlinearity == "tanh" else ("pre",)
        found = [(text, step_gradients(t["grad_h"], t["x"], t["h_prev"], w, nonlinearity, mistake))
                 for mistake, text in MISTAKES.items() if mistake not in skip]
        return first_matching_mistake(case, self.run_reference(case), actual, found)


check_rnn_step_backward = RNNStepBackwardCheck()
