"""The registry: every check found in the chapters package, none twice, each seeded by its name."""
from __future__ import annotations

import tomllib
import types

import pytest

import rnn_by_hand.checks as public
from conftest import REPO
from rnn_by_hand import CHECKS
from rnn_by_hand.checking import Check, case_seed
from rnn_by_hand.checking.registry import RegistryError, chapter_modules, collect


def chapter(assignment: str, **checks) -> types.ModuleType:
    module = types.ModuleType(f"rnn_by_hand.chapters.fake_{assignment.replace('-', '_')}")
    module.ASSIGNMENT = assignment
    vars(module).update(checks)
    return module


def a_check(name: str, student_name: str) -> Check:
    return type("Fake", (Check,), {"name": name, "student_name": student_name})()


def test_every_chapter_declares_its_assignment_and_has_a_solutions_folder():
    assignments = [module.ASSIGNMENT for module in chapter_modules()]
    assert assignments == sorted(path.name for path in (REPO / "solutions").iterdir() if path.is_dir())


def test_the_public_module_offers_every_check_under_its_chapter_name():
    """Every check, and check_all (the summary cell's), and nothing else."""
    exported = set(public.__all__) - {"check_all"}
    assert exported == {name for module in chapter_modules() for name in vars(module)
                        if name.startswith("check_") and isinstance(getattr(module, name), Check)}
    assert {id(check) for check in CHECKS.values()} == {id(getattr(public, name)) for name in exported}
    assert callable(public.check_all) and "check_all" in public.__all__


def test_two_checks_under_one_name_are_refused():
    first, second = a_check("09-x/f", "f"), a_check("09-x/f", "f")
    with pytest.raises(RegistryError, match="two checks are named '09-x/f'"):
        collect([chapter("09-x", check_f=first), chapter("09-x", check_g=second)])


def test_two_chapters_exporting_one_name_are_refused():
    with pytest.raises(RegistryError, match="two chapters define check_f"):
        collect([chapter("09-x", check_f=a_check("09-x/f", "f")),
                 chapter("10-y", check_f=a_check("10-y/f", "f"))])


def test_a_check_named_for_another_assignment_is_refused():
    with pytest.raises(RegistryError, match="is named '01-recurrence/f'"):
        collect([chapter("09-x", check_f=a_check("01-recurrence/f", "f"))])


def test_the_same_check_exported_twice_in_one_chapter_is_one_check():
    check = a_check("09-x/f", "f")
    checks, exports = collect([chapter("09-x", check_f=check, check_f_again=check)])
    assert list(checks) == ["09-x/f"] and set(exports) == {"check_f", "check_f_again"}


def test_seeds_come_from_the_name_and_never_collide():
    seeds = [case_seed(name, hidden, index, secret) for name in CHECKS for hidden in (False, True)
             for index in range(40) for secret in (None, 31337)]
    assert len(set(seeds)) == len(seeds)
    assert case_seed("01-recurrence/rnn_step", False, 0) == case_seed("01-recurrence/rnn_step", False, 0)
    # sha256, not hash(): the same in every process, whatever PYTHONHASHSEED says
    assert case_seed("01-recurrence/rnn_step", False, 0) == 1497361871


def test_every_package_of_the_source_is_in_the_distribution():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(("rnn_by_hand",) + init.parent.relative_to(REPO / "autograder").parts)
             for init in (REPO / "autograder").rglob("__init__.py")}
    assert declared == found
