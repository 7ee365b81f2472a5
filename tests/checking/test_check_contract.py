"""What every check of every chapter promises, tested once for all of them.

A chapter's own test file tests what is particular to its exercises: the
mistakes its checks must reject (mutants of the solution), its hints and its
messages. This file runs for every check in the registry, so a new chapter's
checks are held to the same contract without a line of new test code:

- the reference solution passes the visible cases, the hidden cases and cases
  made with a secret seed, and there are at least three of each;
- hidden cases use configurations the visible ones do not;
- making cases is reproducible and never consumes the student's random numbers;
- the unanswered release (nbgrader's stub) is told it is not implemented yet;
- a check's parts can run in separate processes: the student's code in a
  spawned child whose outputs come back as plain data, the reference and the
  comparison in the parent, and the comparison still notices spoiled outputs;
- an answer that hands the work to a forbidden function (the library's own, or
  the autograder's hand-written reference) is refused, and the function works
  again after the check.
"""
from __future__ import annotations

import inspect
import multiprocessing
import pickle
import random
import re

import pytest
import torch

from rnn_by_hand import CHECKS, CheckFailure  # every chapter's checks
from rnn_by_hand.checking.forbid import resolve
from rnn_by_hand.wire import encode
from conftest import REPO
from mutants import answer

ALL = sorted(CHECKS)


def test_every_assignment_has_checks():
    assignments = {path.name for path in (REPO / "solutions").iterdir() if path.is_dir()}
    assert assignments == {name.split("/")[0] for name in ALL}


@pytest.mark.parametrize("name", ALL)
def test_reference_solution_passes(name):
    check = CHECKS[name]
    for hidden in (False, True):
        assert len(check.make_cases(hidden=hidden)) >= 3
        assert check(answer(name), hidden=hidden, quiet=True) is None
    assert check(answer(name), hidden=True, seed=31337, quiet=True) is None


@pytest.mark.parametrize("name", ALL)
def test_hidden_cases_use_other_configurations(name):
    check = CHECKS[name]
    visible = [case.config for case in check.make_cases(hidden=False)]
    hidden = [case.config for case in check.make_cases(hidden=True)]
    assert not any(config in visible for config in hidden)


def same_cases(first, second) -> bool:
    return len(first) == len(second) and all(
        a.config == b.config and a.tensors.keys() == b.tensors.keys()
        and all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
        for a, b in zip(first, second))


@pytest.mark.parametrize("name", ALL)
def test_cases_are_reproducible_and_leave_the_global_seed_alone(name):
    check = CHECKS[name]
    torch.manual_seed(123)
    random.seed(123)
    expected_next, expected_random = torch.rand(3), random.random()
    torch.manual_seed(123)
    random.seed(123)
    first = check.make_cases(hidden=True)
    assert torch.equal(torch.rand(3), expected_next), "making cases consumed the student's torch RNG"
    assert random.random() == expected_random, "making cases consumed the student's Python RNG"
    assert same_cases(first, check.make_cases(hidden=True))
    assert not same_cases(first, check.make_cases(hidden=True, seed=2024)), "a secret seed changes nothing"


@pytest.mark.parametrize("name", ALL)
def test_the_released_stub_is_told_it_is_not_implemented(name):
    """The exercise as released: nbgrader replaced the solution by `raise NotImplementedError()`."""
    with pytest.raises(CheckFailure, match="not implemented yet"):
        CHECKS[name](answer(name, "exercises"), quiet=True)


def _student_outputs_in_child(name: str, payload: bytes) -> bytes:
    """Runs in a spawned process: only the student's part of the check, outputs as plain data."""
    check = CHECKS[name]
    return pickle.dumps([encode(check.run_student_guarded(answer(name), case)) for case in pickle.loads(payload)])


def spoiled(value):
    """The same output with every number in it changed: float tensors zeroed (or filled
    with ones when already zero), integers and integer tensors plus one, booleans flipped."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool:
            return ~value
        if value.is_floating_point() or value.is_complex():
            return torch.ones_like(value) if not value.any() else torch.zeros_like(value)
        return value + 1
    if type(value) in (int, float):
        return value + 1
    if isinstance(value, dict):
        return {key: spoiled(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(spoiled(item) for item in value)
    return value


@pytest.mark.parametrize("name", ALL)
def test_parts_of_a_check_run_in_separate_processes(name):
    """Cases made here, student code run in a child process, reference and comparison here."""
    check = CHECKS[name]
    cases = check.make_cases(hidden=True, seed=7)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        actuals = pickle.loads(pool.apply(_student_outputs_in_child, (name, pickle.dumps(cases))))
    for case, actual in zip(cases, actuals):
        assert check.compare(case, check.run_reference(case), actual) == []
    assert check.compare(cases[0], check.run_reference(cases[0]), spoiled(actuals[0]))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad, words", [(None, "got None"), (3, "got an int"),
                                        (torch.zeros(3), "got a Tensor of shape (3,)")])
def test_wrong_thing_passed_to_a_check(name, bad, words):
    """Passing the wrong object (a result, not the function) is named plainly, with what to pass."""
    with pytest.raises(CheckFailure) as failure:
        CHECKS[name](bad, quiet=True)
    message = str(failure.value)
    assert words in message and f"(pass {CHECKS[name].student_name} itself)" in message, message


BORROWED = [(name, path) for name in ALL for path in CHECKS[name].forbidden_functions]


def borrowing(kind: str, path: str):
    """An answer of the check's kind whose every call goes to the function at `path`."""
    borrowed = resolve(path)  # looked up before the check runs, as an import at the top of a cell would be

    def answer(*args, **kwargs):
        return borrowed(*args, **kwargs)
    return type("Borrowed", (torch.nn.Module,), {"__init__": answer}) if kind == "class" else answer


def test_borrowed_functions_exist():
    assert len(BORROWED) >= 25 and all(callable(resolve(path)) for _, path in BORROWED)


@pytest.mark.parametrize("name, path", BORROWED)
@pytest.mark.filterwarnings("ignore:`torch.nn.utils.clip_grad_norm` is now deprecated")
def test_an_answer_that_borrows_a_forbidden_function_is_refused(name, path):
    check = CHECKS[name]
    code = inspect.unwrap(resolve(path)).__code__
    with pytest.raises(CheckFailure, match=f"is not written by hand: it calls {re.escape(path)}"):
        check(borrowing(check.kind, path), quiet=True)
    assert inspect.unwrap(resolve(path)).__code__ is code, "the function was not given its code back"


def feature_values(cases) -> dict[str, set]:
    """Each configuration key's values that pick a feature (flags and modes, not sizes)."""
    values: dict[str, set] = {}
    for case in cases:
        for key, value in case.config.items():
            if value is None or isinstance(value, (bool, str)):
                values.setdefault(key, set()).add(value)
    return values


@pytest.mark.parametrize("name", ALL)
def test_visible_cases_cover_every_feature_the_hidden_ones_use(name):
    """Hidden cases change sizes, values and seeds, never features: whatever the notebook's
    check said OK to, the grade cannot then fail for a flag the student never saw."""
    check = CHECKS[name]
    visible, hidden = feature_values(check.make_cases()), feature_values(check.make_cases(hidden=True))
    missing = {key: sorted(map(repr, values - visible.get(key, set())))
               for key, values in hidden.items() if values - visible.get(key, set())}
    assert not missing, f"{name}: hidden cases use features no visible case shows: {missing}"
