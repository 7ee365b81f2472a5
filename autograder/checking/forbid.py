"""Forbidding calls while student code runs: the exercise asks for it by hand.

Two mechanisms, because there are two kinds of target:

- torch's fused kernels (`rnn_tanh` behind nn.RNN, ...) are attributes of torch._VF and
  torch: `forbid` swaps the attributes for a function that raises ForbiddenCall;
- Python functions (an answer's library function such as rnn_by_hand.lm.data.batchify,
  or our own hand-written references): `forbid_functions` swaps the function's code, so
  an alias, an earlier `from ... import`, a subclass or a wrapper reaches the trap too.

Neither is a defence against code written to evade it (torch._C._VariableFunctions is
immutable); that is what out-of-process grading with hidden cases is for.
"""
from __future__ import annotations

import importlib
import inspect
from contextlib import contextmanager
from typing import Any, Callable


class ForbiddenCall(Exception):
    """Student code called what it was asked to write by hand."""


_MISSING = object()


@contextmanager
def forbid(names: tuple[str, ...], reason: str):
    """While student code runs, make torch's fused kernels `names` raise ForbiddenCall.

    nn.RNN, nn.RNNCell and friends reach these through torch._VF (they are also
    exported as torch.rnn_tanh etc.), so subclassing or wrapping the module does
    not hide them.
    """
    import torch
    import torch._VF as VF  # torch's own spelling
    saved = []

    def trap(name):
        def trapped(*args, **kwargs):
            raise ForbiddenCall(f"it calls torch's built-in {name} ({reason})")
        return trapped
    try:
        for owner in (VF, torch):
            for name in names:
                if hasattr(owner, name):
                    saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
                    setattr(owner, name, trap(name))
        yield
    finally:
        for owner, name, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def resolve(dotted: str) -> Callable:
    """The object a dotted path such as "rnn_by_hand.lm.data.batchify" names."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            target = getattr(target, part)
        return target
    raise ImportError(f"cannot resolve {dotted!r}")


def trap_code(function: Callable, message: str):
    """A code object that raises ForbiddenCall(message), fit to replace `function.__code__`.

    The message is our own text (a dotted path and a reason, never student input), compiled
    in as a constant. The code runs with the function's globals, so it imports what it needs;
    and it has the function's free variables (a method that calls super() has `__class__`),
    because Python only swaps code with the same closure.
    """
    free = function.__code__.co_freevars
    source = ("def factory():\n" + "".join(f"    {name} = None\n" for name in free)
              + "    def trapped(*args, **kwargs):\n"
              + (f"        {', '.join(free)}\n" if free else "")
              + "        from rnn_by_hand.checking.forbid import ForbiddenCall\n"
              + f"        raise ForbiddenCall({message!r})\n"
              + "    return trapped\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<forbidden>", "exec"), namespace)  # our own fixed text, never student code
    code = namespace["factory"]().__code__
    assert code.co_freevars == free, (code.co_freevars, free)
    return code.replace(co_name=function.__name__, co_qualname=function.__qualname__)


@contextmanager
def forbid_functions(paths: tuple[str, ...], reason: str):
    """While student code runs, make the Python functions at `paths` raise ForbiddenCall.

    The function's code itself is swapped, not the attribute that names it, so an
    answer that imported the function before the check (`from rnn_by_hand.lm.data import
    batchify`), an alias, a subclass that inherits a forbidden method, or a wrapper
    such as torch's `_no_grad` all reach the trap.
    """
    saved = []
    try:
        for path in paths:
            function = inspect.unwrap(resolve(path))
            if any(function is done for done, _ in saved):
                continue
            saved.append((function, function.__code__))
            function.__code__ = trap_code(function, f"it calls {path} ({reason})")
        yield
    finally:
        for function, code in reversed(saved):
            function.__code__ = code
