"""Cases: one configuration with its inputs, drawn under a seed that comes from the check's name."""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Case:
    """One configuration with its inputs. Everything in it crosses processes (see wire.py)."""
    label: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def case_seed(check_name: str, hidden: bool, index: int, secret: int | None = None) -> int:
    """The seed of one case: a hash of the check's name, so no two checks share a seed.

    Visible and hidden cases differ; a grader's secret seed changes every hidden case
    (sha256, not hash(): Python salts hash() of strings in every process).
    """
    key = "\0".join((check_name, "hidden" if hidden else "visible", str(index),
                     "" if secret is None else str(secret)))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 2**31


@contextmanager
def seeded(seed: int):
    """Fork the global RNG so that making cases never disturbs the student's seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def untouched_rng():
    """Build reference modules without consuming the student's random numbers."""
    return torch.random.fork_rng(devices=[])


def describe_config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.items())


STATE = "state."  # tensors named "state.<key>" are a module's state_dict, carried in a Case


def with_state(module: torch.nn.Module, prefix: str = STATE) -> dict[str, torch.Tensor]:
    """A module's state_dict as case tensors, each under `prefix` (copies, not views)."""
    return {prefix + k: v.detach().clone() for k, v in module.state_dict().items()}


def state_of(tensors: dict[str, torch.Tensor], prefix: str = STATE) -> dict[str, torch.Tensor]:
    """The state_dict that with_state packed into a case's tensors."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
