"""CHECKS: every check, by name, discovered in the chapters package and nowhere else.

A chapter is a module (or package) of rnn_by_hand.chapters whose name does not start
with "_". It declares ASSIGNMENT (its nbgrader assignment, e.g. "01-recurrence") and
defines its checks as module attributes named check_<something>; each check's name is
"<ASSIGNMENT>/<student_name>". Two checks under one name, or two chapters exporting
the same check_ name, is an error: the grader would pick either.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from .check import Check

CHECKS: dict[str, Check] = {}
EXPORTS: dict[str, Check] = {}  # "check_stacked_rnn_step" -> the check; what rnn_by_hand.checks offers


class RegistryError(RuntimeError):
    """The chapters package defines checks that cannot be told apart."""


def chapter_modules() -> list[ModuleType]:
    """Every chapter, in assignment order."""
    from .. import chapters
    modules = [importlib.import_module(f"{chapters.__name__}.{info.name}")
               for info in pkgutil.iter_modules(chapters.__path__) if not info.name.startswith("_")]
    for module in modules:
        if not isinstance(getattr(module, "ASSIGNMENT", None), str):
            raise RegistryError(f"chapter module {module.__name__} does not declare ASSIGNMENT")
    return sorted(modules, key=lambda module: module.ASSIGNMENT)


def collect(modules: list[ModuleType]) -> tuple[dict[str, Check], dict[str, Check]]:
    """(checks by name, checks by exported name) of these chapters; refuses ambiguity."""
    checks: dict[str, Check] = {}
    exports: dict[str, Check] = {}
    for module in modules:
        for export, check in vars(module).items():
            if not (export.startswith("check_") and isinstance(check, Check)):
                continue
            expected = f"{module.ASSIGNMENT}/{check.student_name}"
            if check.name != expected:
                raise RegistryError(f"{module.__name__}.{export} is named {check.name!r}; a check "
                                    f"of {module.ASSIGNMENT} for {check.student_name} is named {expected!r}")
            if checks.setdefault(check.name, check) is not check:
                raise RegistryError(f"two checks are named {check.name!r}")
            if exports.setdefault(export, check) is not check:
                raise RegistryError(f"two chapters define {export}")
    return checks, exports


def discover() -> dict[str, Check]:
    """Fill CHECKS and EXPORTS (once, all or nothing) from every chapter; return CHECKS."""
    if not CHECKS:
        checks, exports = collect(chapter_modules())
        EXPORTS.update(exports)
        CHECKS.update(checks)
    return CHECKS
