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

WRONG_SHAPE = '''
import torch
from rnn_by_hand.checks import check_rnn_forward

def rnn_forward(input, h_0, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                nonlinearity="tanh", batch_first=False):
    output = torch.zeros(input.shape[0], input.shape[1], weight_hh.shape[0],
                         dtype=input.dtype)
    return output, output[-1]  # h_n without its leading layer dimension

check_rnn_forward(rnn_forward)
'''

NOT_IMPLEMENTED = '''
from rnn_by_hand.checks import check_rnn_step

def rnn_step(x_t, h_prev, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
             nonlinearity="tanh"):
    raise NotImplementedError()

check_rnn_step(rnn_step)
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


NOTEBOOK_CODE = '''
import torch

def rnn_step(x_t, h_prev, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    pre = x_t @ weight_ih.T + h_prev @ weight_hh.T
    if bias_ih is not None:
        pre = pre + bias_ih + bias_hh
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)

def rnn_forward(input, h_0, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                nonlinearity="tanh", batch_first=False):
    x = input.transpose(0, 1) if batch_first else input
    unbatched = x.dim() == 2
    if unbatched:
        x, h_0 = x.unsqueeze(1), None if h_0 is None else h_0.unsqueeze(1)
    if h_0 is None:
        h_0 = x.new_zeros(1, x.shape[1], weight_hh.shape[0])
    h, states = h_0[0], []
    for x_t in x:
        h = rnn_step(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)
        states.append(h)
    output, h_n = torch.stack(states), h.unsqueeze(0)
    if unbatched:
        output, h_n = output.squeeze(1), h_n.squeeze(1)
    return (output.transpose(0, 1) if batch_first else output), h_n
'''


def notebook(**replaced: str) -> dict:
    """The namespace of a notebook whose answers are NOTEBOOK_CODE with some lines replaced."""
    code = NOTEBOOK_CODE
    for old, new in replaced.items():
        assert old in code
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, "<notebook>", "exec"), namespace)
    return namespace


def verdict(check, answer) -> str:
    try:
        check(answer, quiet=True)
    except CheckFailure as failure:
        return str(failure)
    return "OK"


def test_a_failure_from_an_earlier_exercise_is_traced_back_to_it():
    from rnn_by_hand.checks import check_rnn_forward, check_rnn_step
    right = notebook()
    assert verdict(check_rnn_step, right["rnn_step"]) == verdict(check_rnn_forward, right["rnn_forward"]) == "OK"
    wrong_step = notebook(**{"pre = pre + bias_ih + bias_hh": "pre = pre + bias_ih"})
    message = verdict(check_rnn_forward, wrong_step["rnn_forward"])
    assert "rnn_forward calls your rnn_step, which fails its own check: fix rnn_step first" in message
    # a mistake in rnn_forward itself, with a right rnn_step: no word about rnn_step
    wrong_forward = notebook(**{"h.unsqueeze(0)": "states[0].unsqueeze(0)"})
    message = verdict(check_rnn_forward, wrong_forward["rnn_forward"])
    assert message != "OK" and "rnn_step" not in message


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
    from rnn_by_hand.checks import check_sample_text, check_split_gates

    def sample_text(model, chars, prompt, length, temperature, generator):
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

    def split_gates(stacked):
        # right for a weight (4H, H_in), and dim=1 for a bias (4H,), which has no dimension 1
        return stacked.chunk(4, dim=0 if stacked.dim() == 2 else 1)

    message = verdict(check_split_gates, split_gates)
    assert "IndexError" in message and "Hint: a bias is 1-D, (4H,)" in message
