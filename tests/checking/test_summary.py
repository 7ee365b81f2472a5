"""check_all, the summary cell at the end of every notebook: one line per exercise, in the
notebook's order, the count that pass and the next to work on; never a grade."""
from __future__ import annotations

import json

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from conftest import EXERCISES, SOLUTIONS, assignments
from rnn_by_hand import setup_cell
from rnn_by_hand.checking.student import SHORT_LINE
from rnn_by_hand.checking.summary import check_all, summary_lines


def rnn_step(x_t, h_prev, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    pre = x_t @ weight_ih.T + h_prev @ weight_hh.T
    if bias_ih is not None:
        pre = pre + bias_ih + bias_hh
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def rnn_forward(*args, **kwargs):
    raise NotImplementedError()


def test_the_summary_says_what_passes_and_what_is_next(capsys):
    namespace = {"rnn_forward": rnn_forward, "rnn_step": rnn_step}  # defined in this order
    check_all("01-recurrence", namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["FAIL", "rnn_forward"] and "not implemented yet" in lines[0]
    assert lines[1].split() == ["ok", "rnn_step"]
    assert lines[2].split()[:2] == ["FAIL", "JordanRNN"] and "not defined" in lines[2]
    assert lines[3] == "1 of 3 pass; next: rnn_forward"
    assert all(len(line) <= SHORT_LINE for line in lines)


def test_a_wrong_answer_is_named_with_the_first_line_of_its_verdict(capsys):
    def wrong_step(*args, **kwargs):
        return rnn_step(*args, **kwargs) * 2
    check_all("01-recurrence", {"rnn_step": wrong_step})
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("FAIL  rnn_step") and "does not match" in first


def test_every_exercise_done():
    lines = summary_lines("01-recurrence", [("rnn_step", ""), ("rnn_forward", ""), ("JordanRNN", "")])
    assert lines[-1] == "3 of 3 pass: every exercise of 01-recurrence is done"
    assert lines[0].split() == ["ok", "rnn_step"]


@pytest.mark.parametrize("folder, last_line", [
    (SOLUTIONS, "3 of 3 pass: every exercise of 01-recurrence is done"),
    (EXERCISES, "0 of 3 pass; next: rnn_step"),
], ids=["solution", "release"])
def test_the_notebooks_summary_cell_run_top_to_bottom(folder, last_line, tmp_path):
    """Run All on chapter 1's notebook: the release's stubs raise in the test cells, and the
    summary at the end still reports, as a student sees it."""
    path = folder / "01-recurrence" / "recurrence.ipynb"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[-1].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream").splitlines()
    assert printed[-1] == last_line, printed


def test_an_unknown_assignment_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"no exercises are called '01-recurence'; the assignments are 01-"):
        check_all("01-recurence", {})


@pytest.mark.parametrize("folder", [SOLUTIONS, EXERCISES], ids=["solutions", "exercises"])
def test_every_notebook_ends_with_the_summary_of_its_assignment(folder):
    for name in assignments():
        for path in sorted((folder / name).glob("*.ipynb")):
            last = json.loads(path.read_text())["cells"][-1]
            assert last["metadata"]["nbgrader"]["grade_id"] == setup_cell.SUMMARY_ID, path
            assert last["metadata"]["nbgrader"]["locked"] and not last["metadata"]["nbgrader"]["grade"]
            assert "".join(last["source"]) == setup_cell.summary_source(name), f"{path}: run `rnn-by-hand release`"
