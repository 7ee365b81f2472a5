"""Chapter 2's tensor checks: bags of an embedding's rows, and its weight's gradient, by hand.

    embedding_bag(input, weight, offsets, mode, include_last_offset)
                                               vs nn.EmbeddingBag (sum, mean, max)
    embedding_bag_matrix(input, offsets, weight, mode, per_sample_weights, padding_idx)
                                               vs nn.EmbeddingBag, through a (bags, rows) matrix
    embedding_grad(grad_output, input, num_embeddings, padding_idx, scale_grad_by_freq)
                                               vs autograd through nn.Embedding (weight.grad)

The page shows a lookup of single rows (weight[input], one_hot @ weight); the bags are its
neighbour: each output row reduces several looked-up rows. Each case builds the module
afresh from a seed, in float64, and hands its weight to the student's code; the reference
comes from the module.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ...checking import Case, Check, CheckFailure, call_student, describe_config
from ...checking.compare import compare_tensor, first_matching_mistake
from ...common import DTYPE

# The kernels behind F.embedding_bag / nn.EmbeddingBag (and F.embedding, a lookup that is
# the first half of a bag): these exercises write them by hand.
BAG_KERNELS = ("embedding", "embedding_bag", "_embedding_bag", "_embedding_bag_forward_only",
               "embedding_renorm_")
GRAD_KERNELS = ("embedding", "embedding_backward", "embedding_dense_backward",
                "embedding_sparse_backward")
BAG_DIMS, BAG_LAYOUT = ("bag", "h"), "(number of bags, embedding_dim)"


class EmbeddingCase:
    """Mixin: cases of an nn.Embedding's weight and random indices into it."""

    def make_case(self, config, seed):
        # no padding_idx here: a padding row of zeros would hide a bag that keeps it
        module = nn.Embedding(config["num_embeddings"], config["embedding_dim"], dtype=DTYPE)
        tensors = {"weight": module.weight.detach().clone()}
        tensors |= self.draw_input(config, tensors["weight"])
        return Case(self.label(config), config, tensors)

    def draw_input(self, config: dict, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError


# -- bags, our own way: for the hints, and tested against nn.EmbeddingBag ----------------

def bag_indices(input, offsets=None, include_last_offset=False, *, split="right"):
    """(indices, positions in input) of each bag; `split` gives classic mistakes:
    "pairs" drops the last bag (which runs to the end of input), "to_end" ignores
    include_last_offset, "columns" takes the columns of a 2-D input as its bags."""
    if input.dim() == 2:
        grid = torch.arange(input.numel()).reshape(input.shape)  # (B, n): positions
        if split == "columns":
            return list(zip(input.T, grid.T))
        return list(zip(input, grid))
    starts = offsets.tolist()
    pairs_only = include_last_offset if split == "right" else split == "pairs"
    stops = starts[1:] + ([] if pairs_only else [len(input)])
    positions = torch.arange(len(input))
    return [(input[a:b], positions[a:b]) for a, b in zip(starts, stops)]


def bagged(input, weight, offsets=None, mode="mean", include_last_offset=False,
           per_sample_weights=None, padding_idx=None, *, split="right", reduce=None,
           max_of="element", padding="skip", weights="use", repeats="count", empty="zeros"):
    """What nn.EmbeddingBag returns, one bag at a time; the keyword arguments give classic
    mistakes (reduce: another mode's reduction; max_of="row": the row with the largest
    sum; padding: "keep" it in the bag, or "count" it in the mean; weights="ignore";
    repeats="once": each index once per bag; empty="nan": an empty mean is 0 / 0)."""
    V, H = weight.shape
    mode = reduce or mode
    out = []
    for index, position in bag_indices(input, offsets, include_last_offset, split=split):
        keep = torch.ones(len(index), dtype=torch.bool)
        if padding_idx is not None and padding != "keep":
            keep = index != padding_idx % V
        if repeats == "once":
            first = [k for k in range(len(index)) if int(index[k]) not in index[:k].tolist()]
            keep &= torch.isin(torch.arange(len(index)), torch.tensor(first, dtype=torch.long))
        rows = weight[index[keep]]  # (n_b, H)
        if per_sample_weights is not None and weights == "use":
            rows = rows * per_sample_weights[position[keep]].unsqueeze(1)
        count = len(index) if padding == "count" else len(rows)
        if count == 0:
            out.append(weight.new_full((H,), math.nan if empty == "nan" and mode == "mean" else 0.0))
        elif mode == "sum":
            out.append(rows.sum(dim=0))
        elif mode == "mean":
            out.append(rows.sum(dim=0) / count)
        elif len(rows) == 0:
            out.append(weight.new_zeros(H))
        else:
            out.append(rows.max(dim=0).values if max_of == "element" else rows[rows.sum(dim=1).argmax()])
    return torch.stack(out) if out else weight.new_zeros(0, H)


def empty_bags(input, offsets=None, include_last_offset=False, padding_idx=None, V=None) -> torch.Tensor:
    """(B,) bool: the bags that reduce no row (empty, or nothing but padding)."""
    return torch.tensor([bool(((index != padding_idx % V) if padding_idx is not None else
                               torch.ones(len(index), dtype=torch.bool)).sum() == 0)
                         for index, _ in bag_indices(input, offsets, include_last_offset)])


def nan_in_empty_bags_hint(expected: torch.Tensor, actual, empty: torch.Tensor) -> str:
    """The answer is right except for non-finite rows, which are exactly the empty bags."""
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or not empty.any():
        return ""
    finite = torch.isfinite(actual.detach().double()).all(dim=1)  # (B,)
    if torch.equal(~finite, empty) and torch.allclose(actual[finite].double(), expected[finite]):
        return ("the bags with no rows to average give nan (0 / 0): a bag that is empty, or holds "
                "only padding, gives a row of zeros")
    return ""


class BagCase(EmbeddingCase):
    """Mixin: a 2-D input (each row a bag), or a 1-D input cut into bags by offsets."""

    def draw_input(self, config, weight):
        high = config.get("high", config["num_embeddings"])
        if config.get("layout") == "2-D":
            input = torch.randint(0, high, config["shape"])
            input[0, 1] = input[0, 0]  # an index twice in one bag, always
            return {"input": input}
        sizes = torch.tensor(config["sizes"])
        input = torch.randint(0, high, (int(sizes.sum()),))
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])  # (B + 1,)
        first = int(torch.nonzero(sizes >= 2)[0])
        input[offsets[first] + 1] = input[offsets[first]]  # an index twice in one bag
        tensors = {"input": input, "offsets": offsets[:-1]}
        if config.get("layout") == "last offset":
            tensors["offsets"] = offsets  # the end of the last bag too
        if config.get("padding_idx") is not None:
            self.plant_padding(tensors, sizes, config["padding_idx"] % config["num_embeddings"],
                               config["num_embeddings"], first)
        if config.get("per_sample_weights"):
            tensors["per_sample_weights"] = torch.rand(len(input), dtype=DTYPE) * 2 - 0.5
        return tensors

    @staticmethod
    def plant_padding(tensors, sizes, pad, V, repeat):
        """Padding only where planted: after the first two entries of a bag of three or more,
        and alone in another bag, which is not the bag `repeat` whose first entry repeats."""
        input, offsets = tensors["input"], tensors["offsets"]
        input[input == pad] = (pad + 1) % V
        mixed = int(torch.nonzero(sizes >= 3)[0])
        input[offsets[mixed] + 2] = pad
        alone = [b for b in range(len(sizes)) if b not in (mixed, repeat) and sizes[b] >= 1][0]
        input[offsets[alone]:offsets[alone] + sizes[alone]] = pad

    def label(self, config):
        return describe_config({k: v for k, v in config.items() if k != "high"})


def bag_error_hint(message: str) -> str:
    if "Expected reduction dim 0 to have non-zero size" in message:
        return ("an empty bag (offsets[i] == offsets[i + 1]) has no rows to take the max of: it "
                "gives a row of zeros, in every mode")
    return ""


# -- embedding_bag -----------------------------------------------------------------------

class BagCheck(BagCase, Check):
    name = "02-embedding/embedding_bag"
    forbidden_functions = ("rnn_by_hand.chapters.embedding.lookup.bagged",
                           "rnn_by_hand.chapters.embedding.lookup.bag_indices")
    student_name = "embedding_bag"
    reference_name = "torch.nn.EmbeddingBag"
    forbidden = BAG_KERNELS
    forbidden_reason = "this exercise asks you to reduce the bags yourself"

    # The max cases cut bags as 2-D rows and by offsets only: a mistake in include_last_offset
    # then costs that part alone, and a mistake in max costs "mode max" alone.
    VISIBLE = [dict(layout="2-D", mode="sum", num_embeddings=10, embedding_dim=4, shape=(4, 3)),
               dict(layout="2-D", mode="mean", num_embeddings=9, embedding_dim=3, shape=(3, 5)),
               dict(layout="offsets", mode="mean", num_embeddings=10, embedding_dim=4, sizes=(3, 0, 2, 4)),
               dict(layout="offsets", mode="sum", num_embeddings=8, embedding_dim=3, sizes=(1, 4, 0)),
               dict(layout="last offset", mode="sum", num_embeddings=7, embedding_dim=3, sizes=(0, 3, 2)),
               dict(layout="last offset", mode="mean", num_embeddings=9, embedding_dim=2,
                    sizes=(2, 2, 0, 3)),
               dict(layout="2-D", mode="max", num_embeddings=8, embedding_dim=4, shape=(3, 4)),
               dict(layout="offsets", mode="max", num_embeddings=10, embedding_dim=3, sizes=(2, 0, 3, 1))]
    HIDDEN = [dict(layout="2-D", mode="mean", num_embeddings=12, embedding_dim=5, shape=(2, 6)),
              dict(layout="offsets", mode="sum", num_embeddings=11, embedding_dim=4, sizes=(4, 2, 0, 0, 3)),
              dict(layout="offsets", mode="mean", num_embeddings=6, embedding_dim=3, sizes=(0, 5, 1)),
              dict(layout="last offset", mode="mean", num_embeddings=10, embedding_dim=4, sizes=(3, 0, 4)),
              dict(layout="last offset", mode="sum", num_embeddings=8, embedding_dim=2, sizes=(1, 2, 2, 0)),
              dict(layout="2-D", mode="max", num_embeddings=9, embedding_dim=5, shape=(4, 2)),
              dict(layout="offsets", mode="max", num_embeddings=12, embedding_dim=3, sizes=(3, 1, 0, 4))]
    PARTS = {"2-D input": lambda c: c["layout"] == "2-D" and c["mode"] != "max",
             "offsets": lambda c: c["layout"] == "offsets" and c["mode"] != "max",
             "include_last_offset": lambda c: c["layout"] == "last offset",
             "mode max": lambda c: c["mode"] == "max"}

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        args = (t["input"], t["weight"]) + ((t["offsets"],) if "offsets" in t else ())
        kwargs = dict(mode=config["mode"])
        if config["layout"] == "last offset":
            kwargs["include_last_offset"] = True
        return {"output": call_student(self.student_name, student, *args, **kwargs)}

    def run_reference(self, case):
        t, config = case.tensors, case.config
        module = nn.EmbeddingBag(config["num_embeddings"], config["embedding_dim"], mode=config["mode"],
                                 include_last_offset=config["layout"] == "last offset", dtype=DTYPE)
        with torch.no_grad():
            module.weight.copy_(t["weight"])
            return {"output": module(t["input"], t.get("offsets"))}

    def compare(self, case, expected, actual):
        return compare_tensor("output", expected["output"], actual["output"], dims=BAG_DIMS,
                              layout=BAG_LAYOUT, rtol=self.rtol, atol=self.atol)

    def error_hint(self, case, message):
        return bag_error_hint(message)

    def hint(self, case, actual):
        t, config = case.tensors, case.config
        args = (t["input"], t["weight"], t.get("offsets"), config["mode"],
                config["layout"] == "last offset")
        mode = config["mode"]
        found = []
        if config["layout"] == "offsets":
            found.append(("your bags stop at the last offset: the last bag runs from offsets[-1] to "
                          "the end of input", bagged(*args, split="pairs")))
        if config["layout"] == "last offset":
            found.append(("with include_last_offset=True, offsets ends with the end of the last bag, "
                          "len(input): there are len(offsets) - 1 bags, not len(offsets)",
                          bagged(*args, split="to_end")))
        if config["layout"] == "2-D":
            found.append(("with 2-D input each row is a bag (input[b] for bag b): reduce over dim 1 "
                          "of the input, not dim 0", bagged(*args, split="columns")))
        if mode == "max":
            found.append(("mode='max' takes the largest value of each column over the bag's rows, "
                          "element by element; yours picks one whole row", bagged(*args, max_of="row")))
        others = {"sum": "adds", "mean": "averages", "max": "takes the element-wise max of"}
        for other in ("sum", "mean", "max"):
            if other != mode:
                found.append((f"mode={mode!r} {others[mode]} the rows of a bag; yours {others[other]} "
                              f"them (mode={other!r})", bagged(*args, reduce=other)))
        found = [(text, {"output": output}) for text, output in found]
        expected = self.run_reference(case)
        empty = empty_bags(t["input"], t.get("offsets"), config["layout"] == "last offset")
        return first_matching_mistake(case, expected, actual, found) or \
            nan_in_empty_bags_hint(expected["output"], actual.get("output"), empty)


# -- embedding_bag_matrix ----------------------------------------------------------------

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


def one_hot_error_hint(message: str) -> str:
    if "cannot be multiplied" in message or "size mismatch" in message or "slice shapes" in message \
            or "must match the size" in message or "must match self tensor shape" in message:
        return ("F.one_hot(input) has only max(input) + 1 columns, not one per row of weight; "
                "pass num_classes=weight.shape[0] (num_embeddings)")
    if "same dtype" in message or "expected scalar type" in message or "same scalar type" in message:
        return ("F.one_hot returns int64 (torch.long) entries; convert the one-hot tensor to "
                "weight.dtype before adding and multiplying")
    return ""


class BagMatrixCheck(BagCase, Check):
    name = "02-embedding/embedding_bag_matrix"
    forbidden_functions = BagCheck.forbidden_functions
    student_name = "embedding_bag_matrix"
    reference_name = "torch.nn.EmbeddingBag"
    forbidden = BAG_KERNELS
    forbidden_reason = "this exercise asks for the bag matrix and its product"

    # high < num_embeddings in some cases: the last rows of weight are never looked up, so a
    # one-hot made without num_classes is too narrow.
    VISIBLE = [dict(mode="sum", num_embeddings=10, embedding_dim=4, sizes=(3, 0, 4, 2), high=7),
               dict(mode="mean", num_embeddings=8, embedding_dim=3, sizes=(2, 5, 0, 1)),
               dict(mode="sum", per_sample_weights=True, num_embeddings=9, embedding_dim=4,
                    sizes=(4, 1, 0, 3), high=6),
               dict(mode="mean", padding_idx=2, num_embeddings=7, embedding_dim=3, sizes=(3, 4, 2, 0)),
               dict(mode="sum", padding_idx=-1, num_embeddings=6, embedding_dim=2, sizes=(2, 3, 0, 1))]
    HIDDEN = [dict(mode="sum", num_embeddings=12, embedding_dim=3, sizes=(5, 2, 0), high=9),
              dict(mode="mean", num_embeddings=9, embedding_dim=5, sizes=(0, 3, 3, 2), high=7),
              dict(mode="sum", per_sample_weights=True, num_embeddings=7, embedding_dim=3,
                   sizes=(2, 0, 5)),
              dict(mode="mean", padding_idx=-2, num_embeddings=10, embedding_dim=4, sizes=(4, 2, 0, 3)),
              dict(mode="sum", padding_idx=0, num_embeddings=8, embedding_dim=3, sizes=(1, 3, 0, 2))]
    PARTS = {"mode sum": lambda c: c["mode"] == "sum" and not c.get("per_sample_weights")
             and c.get("padding_idx") is None,
             "mode mean": lambda c: c["mode"] == "mean" and c.get("padding_idx") is None,
             "per_sample_weights": lambda c: bool(c.get("per_sample_weights")),
             "padding_idx": lambda c: c.get("padding_idx") is not None}

    def run_student(self, student, case):
        t, config = case.tensors, case.config
        watcher = ProductWatcher(tuple(t["weight"].shape))
        args = (t["input"], t["offsets"], t["weight"], config["mode"], t.get("per_sample_weights"))
        with watcher:
            output = call_student(self.student_name, student, *args, padding_idx=config.get("padding_idx"))
        if not watcher.used_in_product:
            raise CheckFailure(f"{self.student_name} never uses weight in a product: build the "
                               "(bags, num_embeddings) matrix and multiply it by weight (looking "
                               "the rows up is the exercise before)")
        return {"output": output}

    def run_reference(self, case):
        t, config = case.tensors, case.config
        module = nn.EmbeddingBag(config["num_embeddings"], config["embedding_dim"], mode=config["mode"],
                                 padding_idx=config.get("padding_idx"), dtype=DTYPE)
        with torch.no_grad():
            module.weight.copy_(t["weight"])  # the padding row too: it must not count
            return {"output": module(t["input"], t["offsets"],
                                     per_sample_weights=t.get("per_sample_weights"))}

    def compare(self, case, expected, actual):
        return compare_tensor("output", expected["output"], actual["output"], dims=BAG_DIMS,
                              layout=BAG_LAYOUT, rtol=self.rtol, atol=self.atol)

    def error_hint(self, case, message):
        return one_hot_error_hint(message) or bag_error_hint(message)

    def hint(self, case, actual):
        t, config = case.tensors, case.config
        pad = config.get("padding_idx")
        args = (t["input"], t["weight"], t["offsets"], config["mode"], False,
                t.get("per_sample_weights"), pad)
        found = [("your bags stop at the last offset: the last bag runs from offsets[-1] to the "
                  "end of input", bagged(*args, split="pairs"))]
        if pad is not None:
            where = f" ({pad} is row {config['num_embeddings'] + pad})" if pad < 0 else ""
            found += [(f"the entries equal to padding_idx{where} are left out of their bag: its "
                       "column of the bag matrix is zero", bagged(*args, padding="keep")),
                      ("the mean is over the entries that are not padding: divide by their number, "
                       "not by the size of the bag", bagged(*args, padding="count"))]
        if config.get("per_sample_weights"):
            found.append(("per_sample_weights were not used: entry k adds per_sample_weights[k] to "
                          "its bag's entry for input[k], not 1", bagged(*args, weights="ignore")))
        found.append(("an index that occurs twice in a bag counts twice: the bag matrix holds counts "
                      "(one-hot rows added up), not 0 or 1", bagged(*args, repeats="once")))
        other = {"sum": "mean", "mean": "sum"}[config["mode"]]
        found.append((f"mode={config['mode']!r}, but yours computes mode={other!r}: the mean divides "
                      "each bag's row of the matrix by the bag's number of entries",
                      bagged(*args, reduce=other)))
        found = [(text, {"output": output}) for text, output in found]
        expected = self.run_reference(case)
        return first_matching_mistake(case, expected, actual, found) or nan_in_empty_bags_hint(
            expected["output"], actual.get("output"),
            empty_bags(t["input"], t["offsets"], False, pad, config["num_embeddings"]))


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
                    scale_grad_by_freq=True),
               dict(num_embeddings=7, embedding_dim=3, shape=(3, 4), padding_idx=None,
                    scale_grad_by_freq=True)]
    HIDDEN = [dict(num_embeddings=12, embedding_dim=2, shape=(3, 2, 4), padding_idx=0,
                   scale_grad_by_freq=False),
              dict(num_embeddings=5, embedding_dim=6, shape=(10,), padding_idx=None,
                   scale_grad_by_freq=True),
              dict(num_embeddings=9, embedding_dim=3, shape=(6, 2), padding_idx=4,
                   scale_grad_by_freq=True),
              dict(num_embeddings=7, embedding_dim=4, shape=(2, 5), padding_idx=-3,
                   scale_grad_by_freq=True),
              dict(num_embeddings=11, embedding_dim=3, shape=(4, 3), padding_idx=None,
                   scale_grad_by_freq=False)]
    PARTS = {"the sum of rows": lambda c: c["padding_idx"] is None and not c["scale_grad_by_freq"],
             "padding_idx": lambda c: c["padding_idx"] is not None and not c["scale_grad_by_freq"],
             "scale_grad_by_freq": lambda c: c["scale_grad_by_freq"]}

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

check_embedding_bag = BagCheck()
check_embedding_bag_matrix = BagMatrixCheck()
check_embedding_grad = GradCheck()
