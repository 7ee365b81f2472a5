"""The one version of the checker (from the package metadata) and the torch versions it is tested with.

Each exercise notebook starts with a locked cell that calls `require` with the version
it was released with, so a student with a missing or mismatched checker, or a torch the
checks were never tested on, reads one line that says what to run instead of a check
that misjudges their answer. (The traps that tell code written by hand from a call to
torch.nn rely on torch's internals, so untested torch versions are refused, not guessed.)
"""
from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "rnn-by-hand"
# The torch versions CI tests (requirements.txt pins one): [first, last] by minor version.
# pyproject.toml declares the same range, so pip never installs an untested torch.
TESTED_TORCH = ((2, 13), (2, 13))

try:
    __version__ = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:  # the source folder imported without installing it
    __version__ = "0+unknown"


class SetupError(ImportError):
    """The checker cannot judge here; the message (one line) says what to install."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"{type(self).__name__}: {self}"]


def release_of(version: str) -> tuple[int, ...]:
    """(major, minor, patch) of a version string such as "2.13.0+cpu" or "1.4.2"."""
    parts = []
    for piece in version.split("+")[0].split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def install_hint(spec: str) -> str:
    return f'run  %pip install "{spec}"  in a cell (pip install in a terminal), then restart the kernel'


def torch_problem(installed: str | None) -> str | None:
    """Why this torch cannot be used by the checks, or None when it can."""
    if installed is None:
        return f"torch is not installed: {install_hint(torch_requirement())}"
    first, last = TESTED_TORCH
    if not first <= release_of(installed)[:2] <= last:
        tested = ".".join(map(str, first)) + ("" if first == last else " to " + ".".join(map(str, last)))
        return (f"the checks are tested with torch {tested}, not {installed}, and could misjudge "
                f"your code: {install_hint(torch_requirement())}")
    return None


def torch_requirement() -> str:
    """The pip requirement of the tested range, as pyproject.toml declares it."""
    first, last = TESTED_TORCH
    return f"torch>={first[0]}.{first[1]},<{last[0]}.{last[1] + 1}"


def installed_torch() -> str | None:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def version_problem(wanted: str, installed: str = __version__) -> str | None:
    """Why the installed checker is not the one a notebook released with `wanted` needs."""
    want, have = release_of(wanted), release_of(installed)
    if installed == "0+unknown" or (have[:2] == want[:2] and have >= want):
        return None  # same feature release, same or later fix (an uninstalled source tree: trusted)
    return (f"this notebook was released with {DISTRIBUTION} {wanted}, but {installed} is installed: "
            + install_hint(f"{DISTRIBUTION}~={wanted}"))


def require(wanted: str) -> None:
    """Raise SetupError (one line) unless this checker and this torch can check a notebook of `wanted`."""
    problem = version_problem(wanted) or torch_problem(installed_torch())
    if problem:
        raise SetupError(problem)
