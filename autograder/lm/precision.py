"""bfloat16 autocast for training, where the processor multiplies in bfloat16 itself.

Under `torch.autocast` the matrix products (the LSTM's gates, the decoder) run in
bfloat16 while the weights, their gradients and the loss stay float32. That is faster
only on a CPU with bfloat16 instructions (AVX512-BF16 or AMX) or a GPU that has them;
elsewhere oneDNN emulates them and it is slower, so the trainer falls back to float32
and says so.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch

PRECISIONS = ("float32", "bfloat16")
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # as Linux names them in /proc/cpuinfo


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux reports them; empty where there is no /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def bf16_native(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_flags() & BF16_FLAGS)


def training_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """(the precision training will use, a line saying why it differs from the one asked for, or "")."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "bfloat16" and not bf16_native(device):
        return "float32", (f"| bfloat16 asked for, but this {device.type.upper()} has no bfloat16 "
                           f"instructions (AVX512-BF16 or AMX): training in float32")
    return precision, ""


def autocast(precision: str, device: torch.device):
    """The context a training step's forward pass runs in."""
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
