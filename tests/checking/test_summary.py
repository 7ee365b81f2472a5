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


def stacked_rnn_step(x_t, h_prev, rnn):
    act = torch.tanh if rnn.nonlinearity == "tanh" else torch.relu
    below, states = x_t, []
    for k in range(rnn.num_layers):
        pre = below @ getattr(rnn, f"weight_ih_l{k}").T + h_prev[k] @ getattr(rnn, f"weight_hh_l{k}").T
        if rnn.bias:
            pre = pre + getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}")
        below = act(pre)
        states.append(below)
    return torch.stack(states)


def rnn_forward_padded(*args, **kwargs):
    raise NotImplementedError()


def test_the_summary_says_what_passes_and_what_is_next(capsys):
    namespace = {"rnn_forward_padded": rnn_forward_padded,
                 "stacked_rnn_step": stacked_rnn_step}  # defined in this order
    check_all("01-recurrence", namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["FAIL", "rnn_forward_padded"] and "not implemented yet" in lines[0]
    assert lines[1].split() == ["ok", "stacked_rnn_step"]
    assert lines[2].split()[:2] == ["FAIL", "JordanRNN"] and "not defined" in lines[2]
    assert lines[3] == "1 of 3 pass; next: rnn_forward_padded"
    assert all(len(line) <= SHORT_LINE for line in lines)


def test_a_wrong_answer_is_named_with_the_first_line_of_its_verdict(capsys):
    def wrong_step(*args, **kwargs):
        return stacked_rnn_step(*args, **kwargs) * 2
    check_all("01-recurrence", {"stacked_rnn_step": wrong_step})
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("FAIL  stacked_rnn_step") and "does not match" in first


def test_every_exercise_done():
    lines = summary_lines("01-recurrence", [("stacked_rnn_step", ""), ("rnn_forward_padded", ""), ("JordanRNN", "")])
    assert lines[-1] == "3 of 3 pass: every exercise of 01-recurrence is done"
    assert lines[0].split() == ["ok", "stacked_rnn_step"]


@pytest.mark.parametrize("folder, last_line", [
    (SOLUTIONS, "3 of 3 pass: every exercise of 01-recurrence is done"),
    (EXERCISES, "0 of 3 pass; next: stacked_rnn_step"),
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
