"""Compare a student's tensor with the reference and say, in plain words, what differs.

Every comparison is made in float64. A problem is returned as one sentence a
student can act on: which output, expected versus actual shape or dtype, the
first time step and index that differs, and the largest error.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..wire import Opaque

if TYPE_CHECKING:
    from .cases import Case

# float64 on both sides: the reference and a correct answer agree to ~1e-15;
# these tolerances leave room for a different order of operations, and none for a
# computation that went through float32 (errors ~1e-7).
RTOL = 1e-9
ATOL = 1e-10


def type_name(value) -> str:
    """A short description of a value's type, as a student would say it."""
    if isinstance(value, Opaque):  # a value that could not cross from the sandbox
        return value.__opaque__
    if isinstance(value, torch.Tensor):
        return f"a Tensor of shape {shape_str(value.shape)}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if value is None:
        return "None"
    name = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
    return ("an " if name[0] in "aeiou" else "a ") + name


def shape_str(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def index_str(name: str, dims: tuple[str, ...], index) -> str:
    parts = ", ".join(f"{d}={i}" for d, i in zip(dims, index))
    return f"{name}[{parts}]"


def first_bad_index(bad: torch.Tensor, dims: tuple[str, ...]) -> tuple[int, ...]:
    """The differing entry with the earliest time step (dims named 't'), then row-major."""
    where = bad.nonzero()  # (K, ndim), row-major order
    if "t" in dims:
        t = dims.index("t")
        where = where[torch.argsort(where[:, t], stable=True)]
    return tuple(int(i) for i in where[0])


def shape_hint(expected: torch.Size, actual: torch.Size, dims: tuple[str, ...]) -> str:
    """Guess why a shape is wrong from the classic layout mistakes."""
    if "layer" in dims and tuple(actual) == tuple(expected[1:]):
        return (f"the leading (num_layers * num_directions) dimension is missing; "
                f"it stays even when it is {expected[0]}")
    if "layer" in dims and tuple(actual[1:]) == tuple(expected[1:]):
        return (f"the first dimension holds num_layers * num_directions = {expected[0]} "
                f"final states, one from each layer")
    if sorted(actual) == sorted(expected) and len(actual) == len(expected):
        return "the sizes are right but in another order: check time-major versus batch_first"
    extra = [i for i in range(len(actual)) if actual[i] == 1
             and tuple(actual[:i]) + tuple(actual[i + 1:]) == tuple(expected)]
    if extra:  # only where removing that dimension gives the expected shape
        if "n" not in dims:
            return (f"there is an extra dimension of size 1 (dimension {extra[0]}): unbatched "
                    "input gives unbatched output, without a batch dimension")
        return (f"there is an extra dimension of size 1 (dimension {extra[0]}): an unsqueeze, "
                "a view or a torch.stack that adds a dimension (torch.cat joins along an "
                "existing one)")
    if len(actual) + 1 == len(expected) and "n" in dims:
        return "the batch dimension is missing"
    return ""


def compare_tensor(name: str, expected: torch.Tensor, actual, *, dims: tuple[str, ...],
                   layout: str = "", rtol: float = RTOL, atol: float = ATOL) -> list[str]:
    """Problems with `actual` as sentences; an empty list means it matches."""
    if not isinstance(actual, torch.Tensor):
        return [f"{name} should be a torch.Tensor, got {type_name(actual)}"]
    if actual.shape != expected.shape:
        text = f"{name} has shape {shape_str(actual.shape)}, expected {shape_str(expected.shape)}"
        text += f", laid out as {layout}" if layout else ""
        hint = shape_hint(expected.shape, actual.shape, dims)
        return [text + (f": {hint}" if hint else "")]
    problems = []
    if actual.dtype != expected.dtype:
        problems.append(f"{name} has dtype {actual.dtype}, expected {expected.dtype}: "
                        "keep the dtype of the inputs, or of the weights where there is no "
                        f"input (create new tensors with dtype={expected.dtype})")
    if not (actual.dtype.is_floating_point and expected.dtype.is_floating_point):
        if problems:  # a dtype mismatch with integers, booleans or complex: said above
            return problems
        differ = actual.detach().cpu() != expected.detach().cpu()  # integers: exactly equal
        if differ.any():
            where = first_bad_index(differ, dims)
            return [f"{index_str(name, dims, where)} is {actual[where].item()}, expected "
                    f"{expected[where].item()}"]
        return []
    got = actual.detach().to("cpu", torch.float64)
    want = expected.detach().to("cpu", torch.float64)
    if not torch.isfinite(got).all():
        where = first_bad_index(~torch.isfinite(got), dims)
        return problems + [f"{index_str(name, dims, where)} is {got[where].item()}, not a finite number"]
    error = (got - want).abs()
    bad = error > atol + rtol * want.abs()
    if bad.any():
        where = first_bad_index(bad, dims)
        worst = tuple(int(i) for i in torch.unravel_index(error.argmax(), error.shape))
        digits = ".6g" if error[where] > 1e-4 else ".12g"  # show where close values part
        text = (f"{index_str(name, dims, where)} is {got[where].item():{digits}}, expected "
                f"{want[where].item():{digits}} (largest error {error.max().item():.3g} at "
                f"{index_str(name, dims, worst)}; tolerance rtol={rtol:g}, atol={atol:g})")
        if error.max() < 1e-3:
            text += ": the error is as small as float32 rounding, so check for a float32 tensor in your computation"
        problems.append(text)
    return problems


def matches(expected: torch.Tensor, actual, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """True when `actual` is a tensor equal to `expected` in shape and value (any float dtype)."""
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return False
    if not actual.dtype.is_floating_point:
        return False
    return torch.allclose(actual.detach().double(), expected.double(), rtol=rtol, atol=atol)


def first_matching_mistake(case: Case, expected: dict, actual: dict, found) -> str:
    """The first mistake whose outputs all equal the student's, and that is a mistake here.

    Outputs a mistake leaves right may be among them: it is named when every output
    matches the student's and at least one differs from the expected one.
    """
    for text, outputs in found:
        relevant = [k for k in outputs if k in actual]
        if relevant and all(matches(outputs[k], actual[k]) for k in relevant) \
                and any(not matches(expected[k], outputs[k]) for k in relevant):
            return text
    return ""
