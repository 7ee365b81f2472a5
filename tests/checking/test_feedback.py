"""How a failed check looks to a student in a notebook: the verdict alone, in short lines.

Run in a real kernel (as JupyterLab, Colab and nbgrader's Validate run a test cell), a
CheckFailure is shown without the checker's traceback frames, and no line is longer than
nbgrader's Validate box shows (about 90 characters).
"""
from __future__ import annotations

import nbformat
import torch
from nbclient import NotebookClient

from rnn_by_hand.checking.student import SHORT_LINE, CheckFailure, short_lines
from conftest import REPO
from mutants import student_namespace

WRONG_SHAPE = '''
import torch
from rnn_by_hand.checks import check_rnn_forward_padded

def rnn_forward_padded(input, lengths, h_0, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                       nonlinearity="tanh", batch_first=False):
    output = torch.zeros(input.shape[0], input.shape[1], weight_hh.shape[0],
                         dtype=input.dtype)
    return output, output[-1]  # h_n without its leading layer dimension

check_rnn_forward_padded(rnn_forward_padded)
'''

NOT_IMPLEMENTED = '''
from rnn_by_hand.checks import check_stacked_rnn_step

def stacked_rnn_step(x_t, h_prev, rnn):
    raise NotImplementedError()

check_stacked_rnn_step(stacked_rnn_step)
'''


def shown_error(code: str, tmp_path) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(notebook, timeout=300, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    error, = [output for output in notebook.cells[0].outputs if output.output_type == "error"]
    return error


def test_a_failed_check_shows_its_verdict_without_the_checkers_frames(tmp_path):
    for code, verdict in ((WRONG_SHAPE, "h_n has shape"), (NOT_IMPLEMENTED, "not implemented yet")):
        error = shown_error(code, tmp_path)
        assert error.ename == "CheckFailure"
        shown = "\n".join(error.traceback)
        assert error.traceback[0].startswith("CheckFailure: ")
        assert verdict in " ".join(shown.split()), shown
        assert "Traceback" not in shown and 'File "' not in shown and "rnn_by_hand" not in shown, shown
        assert all(len(line) <= SHORT_LINE for line in error.traceback), error.traceback
        # the same words as the message, only broken into lines
        assert " ".join(shown.split()) == " ".join(f"CheckFailure: {error.evalue}".split())


def test_short_lines_keep_a_list_a_list():
    text = ("f does not match on case 1 of 3 (L=5, N=3, input_size=4, hidden_size=6, "
            "num_layers=2, batch_first=True):\n"
            "  - h_n has shape (3, 6), expected (2, 3, 6), laid out as (num_layers, N, H): "
            "the leading dimension is the layer\n"
            "\n"
            "  - output differs")
    lines = short_lines(text, width=60)
    assert all(len(line) <= 60 for line in lines)
    assert lines[0].startswith("f does not match") and lines[1].startswith("  ")
    bullet = next(i for i, line in enumerate(lines) if line.startswith("  - h_n"))
    assert lines[bullet + 1].startswith("    ") and not lines[bullet + 1].startswith("    -")
    assert "" in lines and lines[-1] == "  - output differs"
    assert CheckFailure("short")._render_traceback_() == ["CheckFailure: short"]


GRU_NOTEBOOK = REPO / "solutions" / "06-gru" / "gru.ipynb"


def verdict(check, answer) -> str:
    try:
        check(answer, quiet=True)
    except CheckFailure as failure:
        return str(failure)
    return "OK"


def test_a_failure_from_an_earlier_exercise_is_traced_back_to_it():
    """Chapter 6's bigru_forward calls the student's own gru_forward: a wrong gru_forward is named
    as the cause, and a mistake in bigru_forward itself is not blamed on it."""
    from rnn_by_hand.checks import check_bigru_forward, check_gru_forward
    right = student_namespace(GRU_NOTEBOOK)
    assert verdict(check_gru_forward, right["gru_forward"]) == verdict(check_bigru_forward,
                                                                       right["bigru_forward"]) == "OK"
    wrong_gru = student_namespace(GRU_NOTEBOOK, ("gru_forward", "h = (1 - z) * n + z * h",
                                                 "h = z * n + (1 - z) * h"))
    message = verdict(check_bigru_forward, wrong_gru["bigru_forward"])
    assert "bigru_forward calls your gru_forward, which fails its own check: fix gru_forward first" in message
    wrong_bigru = student_namespace(GRU_NOTEBOOK, ("bigru_forward", "torch.cat([h_f, h_b])", "torch.cat([h_b, h_f])"))
    message = verdict(check_bigru_forward, wrong_bigru["bigru_forward"])
    assert message != "OK" and "gru_forward" not in message.replace("bigru_forward", "")


def test_an_extra_dimension_is_named_for_the_layout_it_breaks():
    from rnn_by_hand.checking.compare import shape_hint
    batched = shape_hint(torch.Size([5, 3, 4]), torch.Size([5, 1, 3, 4]), ("t", "n", "h"))
    assert "extra dimension of size 1 (dimension 1)" in batched and "unbatched" not in batched
    assert "torch.stack" in batched
    unbatched = shape_hint(torch.Size([5, 4]), torch.Size([5, 1, 4]), ("t", "h"))
    assert "unbatched input gives unbatched output" in unbatched
    # a size-1 dimension whose removal does not give the expected shape is not that mistake
    assert "extra dimension" not in shape_hint(torch.Size([5, 3, 4]), torch.Size([1, 5, 4, 3]), ("t", "n", "h"))


def test_an_error_the_answer_raises_gets_the_hint_of_its_classic_mistake():
    from rnn_by_hand.checks import check_gate_blocks, check_sample_text

    def sample_text(model, chars, prompt, length, temperature, generator):
        model.eval()
        logits, hidden = model(torch.tensor([[chars.index(c)] for c in prompt]), model.init_hidden(1))
        out = []
        for _ in range(length):
            probabilities = torch.softmax(logits[-1, 0] / temperature, dim=-1)  # temperature 0: nan
            token = int(torch.multinomial(probabilities, 1, generator=generator))
            out.append(chars[token])
            logits, hidden = model(torch.tensor([[token]]), hidden)
        return "".join(out)

    message = verdict(check_sample_text, sample_text)
    assert "raised RuntimeError" in message and "Hint: temperature=0.0 is the limit" in message

    def gate_blocks(lstm, gate):
        # right without proj_size; with it, weight_hr_l0 (proj_size rows) has no fourth block
        return {name: p.chunk(4)["ifgo".index(gate)] for name, p in lstm.named_parameters()}

    message = verdict(check_gate_blocks, gate_blocks)
    assert "IndexError" in message and "Hint: with proj_size > 0 each layer also has weight_hr_l{k}" in message
