"""Partial credit: an exercise's separable parts, each an equal share of its points.

A check lists its parts in PARTS, a name and a test of a case's configuration for each:

    PARTS = {"batched input": lambda config: config["batched"],
             "unbatched input": lambda config: not config["batched"],
             "relu": lambda config: config["nonlinearity"] == "relu"}

A part is earned when every case it applies to (visible and hidden alike) passes; a case
can belong to several parts, and cases that no part names form the part "the rest". A
check without PARTS is one part: all or nothing. The notebook's check and the class
grader both score through `credit`, so the share a test cell announces is the grade's.

    cases      1 (batched, tanh)   2 (batched, relu)   3 (unbatched, tanh)
    passed     yes                 no                  yes
    parts      batched input: no (case 2)   unbatched input: yes   relu: no   -> 1 of 3
"""
from __future__ import annotations

from dataclasses import dataclass

REST = "the rest"
# A case whose answer raised, as the sandbox reports it to the grader: its message stands
# in for the case's outputs, so that one raising case costs its parts, not the exercise.
CASE_ERROR = "__case_error__"


@dataclass(frozen=True)
class Credit:
    earned: tuple[str, ...]
    missed: tuple[str, ...]

    @property
    def fraction(self) -> float:
        total = len(self.earned) + len(self.missed)
        return len(self.earned) / total if total else 0.0

    def text(self) -> str:
        """'' for all or nothing; otherwise the sentence a failing test cell ends with."""
        total = len(self.earned) + len(self.missed)
        if total < 2 or not self.missed:
            return ""
        if not self.earned:
            return f"Partial credit: 0 of {total} parts pass ({', '.join(self.missed)})."
        return (f"Partial credit: {len(self.earned)} of {total} parts pass ({', '.join(self.earned)}); "
                f"still to do: {', '.join(self.missed)}.")


def one_feature_each(features: dict, combined: str | None = "combined features") -> dict:
    """PARTS in which a case belongs to one part only: the one feature it has, `combined`
    when it has several (no such part when None), the rest when it has none. A mistake in
    one feature then costs its own part (and the combined one), not every part whose cases
    happen to share that feature too."""
    def count(config: dict) -> int:
        return sum(bool(has(config)) for has in features.values())

    parts = {name: (lambda config, has=has: bool(has(config)) and count(config) == 1)
             for name, has in features.items()}
    if combined:
        parts[combined] = lambda config: count(config) > 1
    return parts


def parts_of(parts: dict, config: dict) -> list[str]:
    """The parts a case with this configuration belongs to."""
    return [name for name, applies in parts.items() if applies(config)] or [REST]


def credit(parts: dict, configs: list[dict], passed: list[bool]) -> Credit:
    """Which parts are earned, given each case's configuration and whether it passed."""
    status: dict[str, bool] = {}
    for config, ok in zip(configs, passed):
        for name in parts_of(parts, config):
            status[name] = status.get(name, True) and ok
    order = [name for name in [*parts, REST] if name in status]     # as the check lists them
    return Credit(tuple(n for n in order if status[n]), tuple(n for n in order if not status[n]))
