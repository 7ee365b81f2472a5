"""Chapter 2's tensor checks: nn.Embedding's lookup, its gradient and max_norm, by hand.

    embedding_lookup(input, weight)            vs nn.Embedding
    embedding_one_hot(input, weight)           vs nn.Embedding, through a matrix product
    embedding_grad(grad_output, input, num_embeddings, padding_idx, scale_grad_by_freq)
                                               vs autograd through nn.Embedding (weight.grad)
    embedding_max_norm(input, weight, max_norm, norm_type)
                                               vs nn.Embedding(max_norm=...): output and weight

Each case builds an nn.Embedding afresh from a seed, in float64, and hands its weight
to the student's code; the reference comes from the module.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ...checking import Case, Check, CheckFailure, call_student, describe_config
from ...checking.compare import compare_tensor, first_matching_mistake, shape_str
from ...common import DTYPE

# The kernels behind F.embedding / nn.Embedding: these exercises write them by hand.
LOOKUP_KERNELS = ("embedding",)
GRAD_KERNELS = ("embedding", "embedding_backward", "embedding_dense_backward",
                "embedding_sparse_backward")
RENORM_KERNELS = ("embedding", "embedding_renorm_")
FLOAT32_GUESS = ": the error is as small as float32 rounding"


# -- shared by the embedding checks ----------------------------------------------------

def output_dims(shape) -> tuple[str, ...]:
    """Names for the dimensions of an output of shape (*input.shape, H)."""
    return tuple(f"i{k}" for k in range(len(shape))) + ("h",)


def compare_rows(name: str, expected: torch.Tensor, actual, input_shape, num_embeddings: int,
                 rtol: float, atol: float) -> list[str]:
    """compare_tensor for an output of shape (*input.shape, H), with this chapter's shape hints."""
    if isinstance(actual, torch.Tensor) and actual.shape != expected.shape:
        H = expected.shape[-1]
        text = (f"{name} has shape {shape_str(actual.shape)}, expected {shape_str(expected.shape)}, "
                f"that is (*input.shape, embedding_dim) for input of shape {shape_str(input_shape)}")
        if tuple(actual.shape) == (math.prod(input_shape), H):
            text += ": the input's shape was flattened; reshape the rows to (*input.shape, embedding_dim)"
        elif tuple(actual.shape) == tuple(input_shape) + (num_embeddings,):
            text += (": the last dimension has num_embeddings entries, one per row of weight; each "
                     "index should select a row of weight, which has embedding_dim entries")
        elif tuple(actual.shape) == (H,) + tuple(input_shape):
            text += ": the embedding dimension comes last, not first"
        return [text]
    dims = output_dims(input_shape)
    layout = f"(*input.shape, embedding_dim) = {shape_str(expected.shape)}"
    return compare_tensor(name, expected, actual, dims=dims, layout=layout, rtol=rtol, atol=atol)


def safe_rows(weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor | None:
    """weight[index] when every index is in range, else None (for mistakes that go out of range)."""
    if index.numel() and (index.min() < -weight.shape[0] or index.max() >= weight.shape[0]):
        return None
    return weight[index]


class EmbeddingCase:
    """Mixin: cases of an nn.Embedding's weight and random indices into it."""

    def make_case(self, config, seed):
        module = nn.Embedding(config["num_embeddings"], config["embedding_dim"],
                              padding_idx=config.get("padding_idx"), dtype=DTYPE)
        tensors = {"weight": module.weight.detach().clone()}
        tensors |= self.draw_input(config, tensors["weight"])
        config = self.complete_config(config, tensors)
        return Case(describe_config(config), config, tensors)

    def draw_input(self, config: dict, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        high = config.get("high", config["num_embeddings"])
        return {"input": torch.randint(0, high, config["shape"])}

    def complete_config(self, config: dict, tensors: dict) -> dict:
        return config


# -- embedding_lookup ------------------------------------------------------------------

class LookupCheck(EmbeddingCase, Check):
    name = "02-embedding/embedding_lookup"
    forbidden_functions = ("rnn_by_hand.chapters.embedding.lookup.safe_rows",)
    student_name = "embedding_lookup"
    reference_name = "torch.nn.Embedding"
    forbidden = LOOKUP_KERNELS
    forbidden_reason = "this exercise asks you to look the rows up yourself"

    VISIBLE = [dict(num_embeddings=10, embedding_dim=4, shape=(6,)),
               dict(num_embeddings=12, embedding_dim=5, shape=(4, 3)),
               dict(num_embeddings=7, embedding_dim=3, shape=(2, 3, 4))]
    HIDDEN = [dict(num_embeddings=20, embedding_dim=6, shape=(5, 2)),
              dict(num_embeddings=5, embedding_dim=8, shape=()),
              dict(num_embeddings=9, embedding_dim=2, shape=(3, 1, 2, 2)),
              dict(num_embeddings=15, embedding_dim=7, shape=(1,), high=3)]

    def run_student(self, student, case):
        t = case.tensors
        try:
            return {"output": call_student(self.student_name, student, t["input"], t["weight"])}
        except CheckFailure as failure:
            raise CheckFailure(str(failure) + columns_hint(str(failure), t["weight"])) from None

    def run_reference(self, case):
        config = case.config
        module = nn.Embedding(config["num_embeddings"], config["embedding_dim"], dtype=DTYPE)
        with torch.no_grad():
            module.weight.copy_(case.tensors["weight"])
            return {"output": module(case.tensors["input"])}

    def compare(self, case, expected, actual):
        return compare_rows("output", expected["output"], actual["output"],
                            tuple(case.tensors["input"].shape), case.config["num_embeddings"],
                            self.rtol, self.atol)

    def hint(self, case, actual):
        w, idx = case.tensors["weight"], case.tensors["input"]
        found = [("output[...] is the row one before the index: weight[input - 1] instead of "
                  "weight[input]; row i of weight belongs to index i, counting from 0", idx - 1),
                 ("output[...] is the row one after the index: weight[input + 1] instead of "
                  "weight[input]", idx + 1)]
        found = [(text, {"output": rows}) for text, index in found
                 if (rows := safe_rows(w, index)) is not None]
        return first_matching_mistake(case, self.run_reference(case), actual, found)


def columns_hint(message: str, weight: torch.Tensor) -> str:
    """An index error whose size is embedding_dim means the columns of weight were indexed."""
    E, H = weight.shape
    if "IndexError" in message and f"with size {H}" in message and H != E:
        return (f"\nHint: {H} is embedding_dim; each index selects a row of weight (dimension 0, "
                f"of size num_embeddings = {E}), not a column.")
    return ""


# -- embedding_one_hot -------------------------------------------------------------------

PRODUCTS = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "einsum", "linear", "tensordot",
            "mul", "__mul__", "__rmul__", "addmm", "mv", "inner", "baddbmm", "addbmm", "multi_dot",
            "chain_matmul", "dot"}


class ProductWatcher(TorchFunctionMode):
    """Records whether a tensor shaped like weight (or its transpose) took part in a product."""

    def __init__(self, shape: tuple[int, int]):
        super().__init__()
        self.shapes = {tuple(shape), tuple(reversed(shape))}
        self.used_in_product = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in PRODUCTS:
            operands = list(args) + list(kwargs.values())
            operands += [x for a in args if isinstance(a, (list, tuple)) for x in a]
            if any(isinstance(a, torch.Tensor) and tuple(a.shape) in self.shapes for a in operands):
                self.used_in_product = True
        return func(*args, **kwargs)


class OneHotCheck(LookupCheck):
    name = "02-embedding/embedding_one_hot"
    forbidden_functions = ("rnn_by_hand.chapters.embedding.lookup.safe_rows",)
    student_name = "embedding_one_hot"
    reference_name = "torch.nn.Embedding"
    forbidden_reason = "this exercise asks for the one-hot product"

    # high < num_embeddings in some cases: the last rows of weight are never looked up, so a
    # one-hot made without num_classes is too narrow.
    VISIBLE = [dict(num_embeddings=10, embedding_dim=4, shape=(6,), high=7),
               dict(num_embeddings=12, embedding_dim=5, shape=(4, 3)),
               dict(num_embeddings=7, embedding_dim=3, shape=(2, 3, 2), high=5)]
    HIDDEN = [dict(num_embeddings=16, embedding_dim=3, shape=(3, 5), high=12),
              dict(num_embeddings=6, embedding_dim=9, shape=()),
              dict(num_embeddings=8, embedding_dim=5, shape=(2, 2, 2, 3), high=6),
              dict(num_embeddings=11, embedding_dim=4, shape=(9,))]

    def run_student(self, student, case):
        t = case.tensors
        watcher = ProductWatcher(tuple(t["weight"].shape))
        try:
            with watcher:
                output = call_student(self.student_name, student, t["input"], t["weight"])
        except CheckFailure as failure:
            raise CheckFailure(str(failure) + one_hot_error_hint(str(failure))) from None
        if not watcher.used_in_product:
            raise CheckFailure(f"{self.student_name} never uses weight in a product: build the "
                               "one-hot matrix of input and multiply it by weight (indexing "
                               "weight directly is the first exercise)")
        return {"output": output}


def one_hot_error_hint(message: str) -> str:
    if "cannot be multiplied" in message or "size mismatch" in message:
        return ("\nHint: F.one_hot(input) has only max(input) + 1 columns, not one per row of "
                "weight; pass num_classes=weight.shape[0] (num_embeddings).")
    if "same dtype" in message or "expected scalar type" in message:
        return ("\nHint: F.one_hot returns int64 (torch.long) entries; convert the one-hot tensor "
                "to weight.dtype before the product.")
    return ""


# -- embedding_grad --------------------------------------------------------------------

def dense_grad(grad_output, input, num_embeddings, padding_idx=None, scale_grad_by_freq=False,
               *, zero_padding=True, accumulate=True, scale="count"):
    """The weight gradient, our own way; the keyword arguments give classic mistakes."""
    H = grad_output.shape[-1]
    flat, rows = input.reshape(-1), grad_output.reshape(-1, H)
    if scale_grad_by_freq:
        counts = torch.bincount(flat, minlength=num_embeddings)
        divisor = counts[flat] if scale == "count" else torch.full_like(flat, flat.numel())
        rows = rows / divisor.unsqueeze(1).to(rows.dtype)
    grad = torch.zeros(num_embeddings, H, dtype=grad_output.dtype)
    if accumulate:
        grad.index_add_(0, flat, rows)
    else:
        grad[flat] = rows  # repeated indices: one of the rows wins
    if padding_idx is not None and zero_padding:
        grad[padding_idx] = 0
    return grad


class GradCheck(EmbeddingCase, Check):
    name = "02-embedding/embedding_grad"
    forbidden_functions = ("rnn_by_hand.chapters.embedding.lookup.dense_grad",)
    student_name = "embedding_grad"
    reference_name = "autograd through torch.nn.Embedding (weight.grad)"
    forbidden = GRAD_KERNELS
    forbidden_reason = "this exercise asks you to compute the gradient yourself"

    VISIBLE = [dict(num_embeddings=8, embedding_dim=3, shape=(6,), padding_idx=None,
                    scale_grad_by_freq=False),
               dict(num_embeddings=10, embedding_dim=4, shape=(5, 3), padding_idx=-1,
                    scale_grad_by_freq=False),
               dict(num_embeddings=6, embedding_dim=5, shape=(4, 4), padding_idx=2,
                    scale_grad_by_freq=True)]
    HIDDEN = [dict(num_embeddings=12, embedding_dim=2, shape=(3, 2, 4), padding_idx=0,
                   scale_grad_by_freq=False),
              dict(num_embeddings=5, embedding_dim=6, shape=(10,), padding_idx=None,
                   scale_grad_by_freq=True),
              dict(num_embeddings=9, embedding_dim=3, shape=(6, 2), padding_idx=4,
                   scale_grad_by_freq=True),
              dict(num_embeddings=7, embedding_dim=4, shape=(2, 5), padding_idx=-3,
                   scale_grad_by_freq=True)]

    def draw_input(self, config, weight):
        E, pad = config["num_embeddings"], config["padding_idx"]
        flat = torch.randint(0, E, (math.prod(config["shape"]),))
        flat[1] = flat[0]  # a repeated index, always
        if pad is not None:
            flat[2:4] = pad % E  # the padding index, twice
        flat = flat[torch.randperm(len(flat))]
        input = flat.reshape(config["shape"])
        return {"input": input,
                "grad_output": torch.randn(*config["shape"], config["embedding_dim"], dtype=DTYPE)}

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        grad = call_student(self.student_name, student, t["grad_output"], t["input"],
                            config["num_embeddings"], padding_idx=config["padding_idx"],
                            scale_grad_by_freq=config["scale_grad_by_freq"])
        return {"grad_weight": grad}

    def run_reference(self, case):
        config = case.config
        module = nn.Embedding(config["num_embeddings"], config["embedding_dim"],
                              padding_idx=config["padding_idx"],
                              scale_grad_by_freq=config["scale_grad_by_freq"], dtype=DTYPE)
        with torch.no_grad():
            module.weight.copy_(case.tensors["weight"])
        module(case.tensors["input"]).backward(case.tensors["grad_output"])
        return {"grad_weight": module.weight.grad}

    def compare(self, case, expected, actual):
        return compare_tensor("grad_weight", expected["grad_weight"], actual["grad_weight"],
                              dims=("row", "h"), layout="(num_embeddings, embedding_dim)",
                              rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t, config = case.tensors, case.config
        args = (t["grad_output"], t["input"], config["num_embeddings"], config["padding_idx"],
                config["scale_grad_by_freq"])
        pad = config["padding_idx"]
        padding_text = "the padding row received gradient: nn.Embedding gives row padding_idx none"
        if pad is not None and pad < 0:
            padding_text += (f"; a negative padding_idx counts from the end, so {pad} is row "
                             f"{config['num_embeddings'] + pad}")
        found = [(padding_text, dense_grad(*args, zero_padding=False)),
                 ("an index that occurs several times must receive the sum of its rows of "
                  "grad_output; assigning with grad[input] = ... keeps only one of them "
                  "(index_add_ accumulates)", dense_grad(*args, accumulate=False))]
        if config["scale_grad_by_freq"]:
            found += [("with scale_grad_by_freq=True each row's gradient is divided by the number "
                       "of times its index occurs in input; yours is not scaled",
                       dense_grad(*args[:4], False)),
                      ("scale_grad_by_freq divides by how often each index occurs in input, not by "
                       "the total number of indices", dense_grad(*args, scale="total"))]
        else:
            found.append(("the gradient is divided by index counts, but scale_grad_by_freq=False "
                          "in this case", dense_grad(*args[:4], True)))
        found = [(text, {"grad_weight": grad}) for text, grad in found]
        return first_matching_mistake(case, self.run_reference(case), actual, found)


# -- embedding_max_norm ------------------------------------------------------------------

def renormed(weight, input, max_norm, norm_type, *, rows="looked_up", eps=1e-7,
             only_above=True):
    """A copy of weight after max_norm renormalisation, our own way; options give mistakes."""
    weight = weight.clone()
    which = input.reshape(-1).unique() if rows == "looked_up" else torch.arange(len(weight))
    for k in which:
        norm = weight[k].norm(norm_type)
        if norm > max_norm or not only_above:
            weight[k] *= max_norm / (norm + eps)
    return weight


class MaxNormCheck(EmbeddingCase, Check):
    name = "02-embedding/embedding_max_norm"
    forbidden_functions = ("rnn_by_hand.chapters.embedding.lookup.renormed",)
    student_name = "embedding_max_norm"
    reference_name = "torch.nn.Embedding(max_norm=...)"
    forbidden = RENORM_KERNELS
    forbidden_reason = "this exercise asks you to write the renormalisation yourself"

    VISIBLE = [dict(num_embeddings=10, embedding_dim=4, shape=(8,), norm_type=2.0),
               dict(num_embeddings=12, embedding_dim=3, shape=(3, 4), norm_type=1.0),
               dict(num_embeddings=8, embedding_dim=5, shape=(2, 3, 2), norm_type=2.0)]
    HIDDEN = [dict(num_embeddings=16, embedding_dim=6, shape=(5, 4), norm_type=3.0),
              dict(num_embeddings=9, embedding_dim=2, shape=(12,), norm_type=math.inf),
              dict(num_embeddings=14, embedding_dim=8, shape=(2, 2, 3), norm_type=1.5),
              dict(num_embeddings=6, embedding_dim=4, shape=(7,), norm_type=2.0)]

    def draw_input(self, config, weight):
        """Indices that look up rows above and below max_norm, leave some of each alone, repeat some."""
        norms = weight.norm(config["norm_type"], dim=1)
        order = torch.argsort(norms)
        half = len(order) // 2
        below, above = order[:half], order[half:]
        max_norm = float((norms[below[-1]] + norms[above[0]]) / 2)
        if (norms - round(max_norm, 3)).abs().min() > 1e-6 and \
                (norms[above[0]] > round(max_norm, 3) > norms[below[-1]]):
            max_norm = round(max_norm, 3)  # a readable number when it still separates the two halves
        chosen = [group[torch.randperm(len(group))][:(len(group) + 1) // 2] for group in (below, above)]
        looked_up = torch.cat(chosen)
        n = math.prod(config["shape"])
        extra = looked_up[torch.randint(len(looked_up), (n - len(looked_up),))]
        flat = torch.cat([looked_up, extra])
        flat = flat[torch.randperm(n)]
        return {"input": flat.reshape(config["shape"]),
                "max_norm": torch.tensor(max_norm, dtype=DTYPE)}

    def complete_config(self, config, tensors):
        return dict(config, max_norm=float(tensors.pop("max_norm")))

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        weight = t["weight"].clone()  # the student renormalises this one in place

        def call(input):
            return student(input, weight, config["max_norm"], norm_type=config["norm_type"])
        output = call_student(self.student_name, call, t["input"])
        return {"output": output, "weight": weight}

    def run_reference(self, case):
        config = case.config
        module = nn.Embedding(config["num_embeddings"], config["embedding_dim"],
                              max_norm=config["max_norm"], norm_type=config["norm_type"],
                              dtype=DTYPE)
        with torch.no_grad():
            module.weight.copy_(case.tensors["weight"])
            output = module(case.tensors["input"])
        return {"output": output, "weight": module.weight.detach().clone()}

    def compare(self, case, expected, actual):
        shape = tuple(case.tensors["input"].shape)
        problems = compare_rows("output", expected["output"], actual["output"], shape,
                                case.config["num_embeddings"], self.rtol, self.atol)
        problems += compare_tensor("weight", expected["weight"], actual["weight"], dims=("row", "h"),
                                   layout="(num_embeddings, embedding_dim)", rtol=self.rtol,
                                   atol=self.atol)
        if self.without_epsilon(case, actual):  # tiny errors here are no float32 rounding
            problems = [p.split(FLOAT32_GUESS)[0] for p in problems]
        return problems

    def without_epsilon(self, case, actual) -> bool:
        t, config = case.tensors, case.config
        variant = renormed(t["weight"], t["input"], config["max_norm"], config["norm_type"], eps=0.0)
        got = actual.get("weight")
        return isinstance(got, torch.Tensor) and got.shape == variant.shape and \
            torch.allclose(got.double(), variant, rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        t, config = case.tensors, case.config
        w, idx, max_norm, p = t["weight"], t["input"], config["max_norm"], config["norm_type"]

        def outputs(weight, output_from=None):
            return {"weight": weight, "output": (weight if output_from is None else output_from)[idx]}
        every = renormed(w, idx, max_norm, p, rows="all")
        no_eps = renormed(w, idx, max_norm, p, eps=0.0)
        two = renormed(w, idx, max_norm, 2.0)
        clamp_all = renormed(w, idx, max_norm, p, only_above=False)
        found = [("rows that input does not look up were renormalised too; nn.Embedding only "
                  "renormalises the rows it looks up", {"weight": every}),
                 ("the scale is max_norm / (norm + 1e-7) in PyTorch, with the 1e-7; yours matches "
                  "max_norm / norm", outputs(no_eps)),
                 ("looked-up rows whose norm is already at most max_norm were scaled as well; only "
                  "rows with norm > max_norm change", outputs(clamp_all)),
                 ("weight is unchanged: nn.Embedding renormalises the rows of its weight in place "
                  "(the forward pass modifies weight), so change the tensor you were given",
                  {"weight": w}),
                 ("the output holds the rows as they were before renormalisation; renormalise "
                  "first, then look up", {"output": w[idx]})]
        if p != 2.0:
            found.insert(0, (f"your rows were measured with the 2-norm, but norm_type={p:g} in this "
                             "case: use the p-norm with p = norm_type", outputs(two)))
        expected = self.run_reference(case)
        return first_matching_mistake(case, expected, actual, found) or \
            self.repeated_rows_hint(idx, expected["weight"], actual.get("weight"))

    def repeated_rows_hint(self, input, expected, got) -> str:
        """When only rows that input looks up several times are wrong, say so."""
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return ""
        wrong = ~torch.isclose(got.double(), expected, rtol=self.rtol, atol=self.atol).all(dim=1)
        counts = torch.bincount(input.reshape(-1), minlength=len(expected))
        if wrong.any() and (counts[wrong] >= 2).all():
            return ("only rows that input looks up more than once are wrong: renormalise each row "
                    "once however often it occurs (PyTorch goes through the unique indices)")
        return ""


check_embedding_lookup = LookupCheck()
check_embedding_one_hot = OneHotCheck()
check_embedding_grad = GradCheck()
check_embedding_max_norm = MaxNormCheck()
