"""Partial credit: parts earned from cases passed, in the notebook's check and in the grade alike."""
from __future__ import annotations

import json

import pytest

from conftest import COURSE
from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.checking.credit import REST, credit
from rnn_by_hand.grading.batch import grade_class
from submissions import ASSIGNMENT, SOURCE, answered, cell_index

PARTS = {"batched input": lambda config: config.get("batched", True),
         "unbatched input": lambda config: not config.get("batched", True),
         "relu": lambda config: config.get("nonlinearity") == "relu"}


def test_a_part_is_earned_when_every_case_it_applies_to_passes():
    configs = [{"batched": True}, {"batched": True, "nonlinearity": "relu"}, {"batched": False}]
    share = credit(PARTS, configs, [True, False, True])
    assert share.earned == ("unbatched input",) and share.missed == ("batched input", "relu")
    assert share.fraction == pytest.approx(1 / 3)
    assert share.text() == ("Partial credit: 1 of 3 parts pass (unbatched input); "
                            "still to do: batched input, relu.")
    assert credit(PARTS, configs, [True] * 3).fraction == 1 and credit(PARTS, configs, [True] * 3).text() == ""
    assert credit(PARTS, configs, [False] * 3).text() == ("Partial credit: 0 of 3 parts pass "
                                                          "(batched input, unbatched input, relu).")


def test_cases_no_part_names_are_the_rest_and_no_parts_is_all_or_nothing():
    only_relu = {"relu": PARTS["relu"]}
    share = credit(only_relu, [{"nonlinearity": "tanh"}, {"nonlinearity": "relu"}], [False, True])
    assert share.earned == ("relu",) and share.missed == (REST,)
    whole = credit({}, [{}, {}], [True, False])
    assert whole.fraction == 0 and whole.text() == ""          # one part: nothing to announce
    assert credit({}, [{}, {}], [True, True]).fraction == 1


def test_every_check_with_parts_shows_each_part_in_its_visible_cases():
    # hidden cases change values and seeds, never features: a part the notebook cannot
    # show would be graded without the student ever seeing it fail
    for name, check in CHECKS.items():
        if check.PARTS:
            visible = {part for case in check.make_cases() for part in credit(check.PARTS, [case.config],
                                                                               [True]).earned}
            hidden = {part for case in check.make_cases(hidden=True)
                      for part in credit(check.PARTS, [case.config], [True]).earned}
            assert hidden <= visible, f"{name}: parts only in hidden cases: {hidden - visible}"
            assert len(visible) >= 2, f"{name}: one part is all or nothing; leave PARTS empty"


def rnn_step_failing_unbatched() -> dict:
    """The reference answer to chapter 1's stacked_rnn_step, except that unbatched input raises."""
    nb = answered()
    cell = nb["cells"][cell_index(nb, "stacked_rnn_step")]
    source = "".join(cell["source"])
    cell["source"] = source.replace("    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n    if x_t.dim() == 1:\n"
                                    "        raise ValueError('only batches')\n", 1)
    assert cell["source"] != source
    return nb


@pytest.fixture
def rnn_step_parts(monkeypatch):
    check = CHECKS[f"{ASSIGNMENT}/stacked_rnn_step"]
    monkeypatch.setattr(type(check), "PARTS", {k: PARTS[k] for k in ("batched input", "unbatched input")})
    return check


def test_the_notebooks_check_announces_the_share_it_would_earn(rnn_step_parts):
    namespace: dict = {}
    exec(compile("import torch\nimport torch.nn.functional as F\n" + "".join(rnn_step_failing_unbatched()["cells"][
        cell_index(SOURCE, "stacked_rnn_step")]["source"]), "answer", "exec"), namespace)
    with pytest.raises(CheckFailure) as failure:
        rnn_step_parts(namespace["stacked_rnn_step"], quiet=True)
    message = str(failure.value)
    assert "raised ValueError: only batches" in message
    assert message.endswith("Partial credit: 1 of 2 parts pass (batched input); still to do: unbatched input.")


@pytest.mark.parametrize("workers", [1, 2])
def test_the_grade_gives_the_share_of_the_parts_that_pass(tmp_path, rnn_step_parts, workers):
    (tmp_path / "in" / "ada").mkdir(parents=True)
    (tmp_path / "in" / "ada" / "recurrence.ipynb").write_text(json.dumps(rnn_step_failing_unbatched()))
    [result] = grade_class(ASSIGNMENT, tmp_path / "in", tmp_path / "out", course=COURSE, workers=workers,
                           progress=False)
    cell = next(c for c in result.cells if c.grade_id == "test_stacked_rnn_step")
    assert result.final and cell.score == cell.points / 2, cell
    assert "raised ValueError: only batches" in cell.reason
    assert cell.reason.endswith("Partial credit: 1 of 2 parts pass (batched input); still to do: unbatched input.")


def test_the_summary_line_shows_the_parts_that_pass(rnn_step_parts, capsys):
    from rnn_by_hand.checks import check_all
    namespace: dict = {}
    exec(compile("import torch\nimport torch.nn.functional as F\n" + "".join(rnn_step_failing_unbatched()["cells"][
        cell_index(SOURCE, "stacked_rnn_step")]["source"]), "answer", "exec"), namespace)
    check_all(ASSIGNMENT, namespace)
    line = next(line for line in capsys.readouterr().out.splitlines() if " stacked_rnn_step " in f"{line} ")
    assert line.startswith("FAIL  stacked_rnn_step") and "[1 of 2 parts] raised ValueError: only batches" in line
