"""What a student's results look like when they cross a process boundary.

A check's `run_student` returns Python values: tensors, numbers, strings and
containers of them. The class grader runs that part in a sandbox and compares in
its own process, so the values travel as bytes. Both ways of checking, the
notebook's test cell and the grader, pass the values through the same round trip
(`round_trip`), so whatever the notebook says OK to, the grader sees too:

    student value --encode--> plain tree --torch.save--> bytes
    bytes --torch.load(weights_only=True)--> plain tree --decode--> value

The plain tree holds only tensors, None, bool, int, float, str and lists, tuples
and dicts of them, which `torch.load(weights_only=True)` reads without running
code. Types that compare differently are tagged so that they come back as they
were (a `numpy.int64`, an `OrderedDict`, a dict with int keys, a set); anything
else comes back as an `Opaque` that names its type, so a check can say "got a
generator" instead of crashing.
"""
from __future__ import annotations

import collections
import io

import torch

MAX_DEPTH = 8
MAX_ITEMS = 200_000  # values in one result; beyond that it is described, not sent
TAG = "__wire__"


class Opaque:
    """Stands for a value that could not be sent: it only knows its type's name."""

    def __init__(self, description: str):
        self.__opaque__ = str(description)[:200]

    def __repr__(self):
        return self.__opaque__


class WireError(ValueError):
    """Bytes or a tree that are not a well-formed result."""


def _type_words(value) -> str:
    from .checking.compare import type_name
    return type_name(value)


def encode(value):
    """A plain tree for `value` (see the module docstring)."""
    budget = [MAX_ITEMS]
    return _encode(value, 0, budget)


def _tagged(kind: str, **fields) -> dict:
    return {TAG: kind, **fields}


def _encode(value, depth: int, budget: list[int]):
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        return _tagged("opaque", text="a value too large or too deeply nested to check")
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        if tensor.layout != torch.strided:
            tensor = tensor.to_dense()
        return tensor.clone().as_subclass(torch.Tensor)
    if value is None or type(value) in (bool, int, float, str):
        return value
    numpy = _numpy_tree(value)
    if numpy is not None:
        return numpy
    if isinstance(value, (bool, int, float, str)):  # subclasses (an IntEnum, say) as the base
        base = next(t for t in (bool, int, float, str) if isinstance(value, t))
        return base(value)
    if isinstance(value, tuple):
        return tuple(_encode(v, depth + 1, budget) for v in value)
    if isinstance(value, list):
        return [_encode(v, depth + 1, budget) for v in value]
    if isinstance(value, collections.abc.Mapping):
        kind = ("ordered" if isinstance(value, collections.OrderedDict)
                else "counter" if isinstance(value, collections.Counter) else "dict")
        try:
            items = list(value.items())
        except Exception:  # noqa: BLE001 -- a student's mapping may raise anywhere
            return _tagged("opaque", text=_type_words(value))
        if kind == "dict" and all(type(k) is str for k, _ in items) and TAG not in value:
            return {k: _encode(v, depth + 1, budget) for k, v in items}
        return _tagged(kind, items=[(_encode(k, depth + 1, budget), _encode(v, depth + 1, budget))
                                    for k, v in items])
    if isinstance(value, (set, frozenset)):
        return _tagged("frozenset" if isinstance(value, frozenset) else "set",
                       items=[_encode(v, depth + 1, budget) for v in value])
    if isinstance(value, torch.dtype):
        return _tagged("dtype", name=str(value).removeprefix("torch."))
    return _tagged("opaque", text=_type_words(value))


def _numpy_tree(value):
    """numpy scalars and arrays, tagged; None for anything else (numpy is optional)."""
    numpy = type(value).__module__ == "numpy" and __import__("numpy")
    if not numpy:
        return None
    if isinstance(value, numpy.generic) and value.dtype.kind in "biuf":
        return _tagged("numpy-scalar", dtype=value.dtype.str, value=value.item())
    if isinstance(value, numpy.ndarray) and value.dtype.kind in "biuf":
        return _tagged("numpy-array", data=torch.from_numpy(numpy.ascontiguousarray(value).copy()))
    return None


def decode(tree):
    """The value an encoded tree stands for; WireError for a tree `encode` could not make."""
    return _decode(tree, 0)


def _decode(tree, depth: int):
    if depth > MAX_DEPTH + 2:
        raise WireError("nested too deeply")
    if tree is None or type(tree) in (bool, int, float, str):
        return tree
    if type(tree) is torch.Tensor:
        return tree
    if type(tree) is tuple:
        return tuple(_decode(v, depth + 1) for v in tree)
    if type(tree) is list:
        return [_decode(v, depth + 1) for v in tree]
    if type(tree) in (dict, collections.OrderedDict):
        if TAG not in tree:
            if not all(type(k) is str for k in tree):
                raise WireError("a plain dict with keys that are not strings")
            return {k: _decode(v, depth + 1) for k, v in tree.items()}
        return _decode_tagged(tree, depth)
    raise WireError(f"an unexpected {type(tree).__name__}")


def _pairs(tree: dict, depth: int) -> list[tuple]:
    items = tree.get("items")
    if type(items) is not list or not all(type(p) is tuple and len(p) == 2 for p in items):
        raise WireError("a mapping without a list of pairs")
    pairs = [(_decode(k, depth + 1), _decode(v, depth + 1)) for k, v in items]
    for key, _ in pairs:
        try:
            hash(key)
        except TypeError:
            raise WireError("a mapping key that cannot be hashed") from None
    return pairs


def _decode_tagged(tree: dict, depth: int):
    kind = tree[TAG]
    if kind == "opaque" and type(tree.get("text")) is str:
        return Opaque(tree["text"])
    if kind == "dict":
        return dict(_pairs(tree, depth))
    if kind == "ordered":
        return collections.OrderedDict(_pairs(tree, depth))
    if kind == "counter":
        return collections.Counter(dict(_pairs(tree, depth)))
    if kind in ("set", "frozenset") and type(tree.get("items")) is list:
        items = [_decode(v, depth + 1) for v in tree["items"]]
        try:
            return frozenset(items) if kind == "frozenset" else set(items)
        except TypeError:
            raise WireError("a set item that cannot be hashed") from None
    if kind == "dtype" and type(tree.get("name")) is str:
        dtype = getattr(torch, tree["name"], None)
        if isinstance(dtype, torch.dtype):
            return dtype
    if kind == "numpy-scalar" and type(tree.get("dtype")) is str \
            and type(tree.get("value")) in (bool, int, float):
        import numpy
        try:
            return numpy.dtype(tree["dtype"]).type(tree["value"])
        except (TypeError, ValueError, OverflowError):
            raise WireError("a malformed numpy scalar") from None
    if kind == "numpy-array" and type(tree.get("data")) is torch.Tensor:
        return tree["data"].numpy()
    raise WireError(f"an unknown or malformed {kind!r} value")


def dumps(tree) -> bytes:
    buffer = io.BytesIO()
    torch.save(tree, buffer)
    return buffer.getvalue()


def loads(data: bytes):
    """Bytes from an untrusted process: tensors and plain containers only, never code."""
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as error:  # noqa: BLE001 -- anything unreadable is malformed
        raise WireError(f"unreadable ({type(error).__name__})") from None


def round_trip(value):
    """`value` as the grader will see it after it crossed from the sandbox."""
    return decode(loads(dumps(encode(value))))
