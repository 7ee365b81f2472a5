"""clip_grad_norm(parameters, max_norm, norm_type) against torch.nn.utils.clip_grad_norm_,
run on clones of the same parameters and gradients."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...checking import Case, Check, call_student
from ...checking.compare import compare_tensor, matches, shape_str
from ...common import DTYPE

EPS = 1e-6  # what clip_grad_norm_ adds to the total norm before dividing


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
                           "rnn_by_hand.chapters.training.clipping.total_norm")
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
    PARTS = {"2-norm": lambda c: c["norm_type"] == 2.0 and not c["no_grad"],
             "norm_type=inf": lambda c: c["norm_type"] == math.inf and not c["no_grad"],
             "some .grad None": lambda c: bool(c["no_grad"])}

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


check_clip_grad_norm = ClipGradNormCheck()
