"""Timings for the book's pages that hold on a slow or busy machine.

A page may not claim what depends on the machine's speed or load. Absolute times do;
the ratio of two pieces of code measured at the same moment mostly does not. So
`interleaved_ms` times its candidates in turn, round after round, on one thread:

- a burst of load from another job slows the candidates of one round alike, so it
  cancels in that round's ratio (`median_ratio` takes the ratio per round first, then
  the median over rounds, which ignores the rounds a burst hit unevenly);
- one thread, because a second thread competes with whatever else runs on the other
  core, and the collapse that causes is the machine's, not the code's.

The book's pages show the medians and ratios from here; the absolute numbers they
print are labelled as this build's.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Callable

import torch


@contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def interleaved_ms(candidates: dict[str, Callable[[], object]], rounds: int = 15) -> dict[str, list[float]]:
    """Milliseconds of one call of each candidate in each of `rounds` rounds, taken in turn."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    with one_thread(), torch.no_grad():
        for function in candidates.values():
            function()  # warm-up: one-off allocations and kernel selection
        for _ in range(rounds):
            for name, function in candidates.items():
                start = time.perf_counter()
                function()
                times[name].append(1e3 * (time.perf_counter() - start))
    return times


def median_ms(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(samples) for name, samples in times.items()}


def median_ratio(times: dict[str, list[float]], slower: str, faster: str) -> float:
    """Median over rounds of time(slower) / time(faster), each round's pair measured together."""
    return statistics.median(s / f for s, f in zip(times[slower], times[faster]))
