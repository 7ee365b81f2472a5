"""The chapter 7 checks accept the reference solution and reject wrong answers.

Wrong answers are made by mutating the reference solution's own source (the
solution notebook), so every mutant is one plausible student mistake away from
a correct answer. A check that accepts any of them is a bug.
"""
from __future__ import annotations


import pytest
import torch
from torch import nn

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.chapters.cells import (build_lstm, check_cells_to_lstm, check_greedy_decode, check_lstm_to_cells,
                              check_stacked_lstm_forward, cells_from_lstm, decode_by_hand, run_cells, state_of)
from conftest import REPO
from mutants import mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "07-cells" / "cells.ipynb"
ALL_CHECKS = (check_lstm_to_cells, check_cells_to_lstm, check_stacked_lstm_forward, check_greedy_decode)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_cases_cover_what_the_exercises_promise():
    for hidden in (False, True):
        stacked = [c.config for c in check_stacked_lstm_forward.make_cases(hidden=hidden)]
        assert {c["hx"] for c in stacked} == {True, False}
        assert any(not c.get("batched", True) for c in stacked)
        assert any(c["input_size"] == c["hidden_size"] for c in stacked), "wrong wiring must keep its shape"
        assert all(c["num_layers"] >= 2 for c in stacked)
        for check in (check_lstm_to_cells, check_cells_to_lstm):
            configs = [c.config for c in check.make_cases(hidden=hidden)]
            assert {c["bias"] for c in configs} == {True, False}
            assert any(c["num_layers"] >= 2 and c["input_size"] == c["hidden_size"] for c in configs)
        decode = [c.config for c in check_greedy_decode.make_cases(hidden=hidden)]
        assert {c["state"] for c in decode} == {True, False}


def test_decoding_cases_are_lively():
    """A decoded sequence that repeats one token would hide the feedback mistakes."""
    for hidden in (False, True):
        for case in check_greedy_decode.make_cases(hidden=hidden):
            tokens = check_greedy_decode.run_reference(case)["tokens"]
            assert all(len(set(row.tolist())) >= 3 for row in tokens), case.label


# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
MUTANTS = {
    # lstm_to_cells
    "to cells: wrong layer": (check_lstm_to_cells, "lstm_to_cells", 'getattr(lstm, f"{name}_l{k}")',
                              'getattr(lstm, f"{name}_l{lstm.num_layers - 1 - k}")', "cells[0].weight_ih holds lstm.weight_ih_l1: cells[0] should get layer 0's"),
    "to cells: biases dropped": (check_lstm_to_cells, "lstm_to_cells", "bias=lstm.bias,", "bias=False,",
                                 "build the cells with bias=True"),
    "to cells: biases not copied": (check_lstm_to_cells, "lstm_to_cells",
                                    "for name, parameter in cell.named_parameters():",
                                    'for name, parameter in list(cell.named_parameters())[:2]:',
                                    "the biases were not copied"),
    "to cells: layer 1 sized for the input": (check_lstm_to_cells, "lstm_to_cells",
                                              "input_size = lstm.input_size if k == 0 else lstm.hidden_size",
                                              "input_size = lstm.input_size", "so its input_size is hidden_size"),
    "to cells: shared tensors": (check_lstm_to_cells, "lstm_to_cells",
                                 'parameter.copy_(getattr(lstm, f"{name}_l{k}"))',
                                 'setattr(cell, name, getattr(lstm, f"{name}_l{k}"))', "share tensors"),
    "to cells: float32 cells": (check_lstm_to_cells, "lstm_to_cells", "dtype = lstm.weight_ih_l0.dtype",
                                "dtype = torch.float32", "dtype=torch.float64"),
    "to cells: one cell only": (check_lstm_to_cells, "lstm_to_cells", "for k in range(lstm.num_layers):",
                                "for k in range(1):", "one nn.LSTMCell per layer"),
    # cells_to_lstm
    "to lstm: wrong layer": (check_cells_to_lstm, "cells_to_lstm", 'getattr(lstm, f"{name}_l{k}")',
                             'getattr(lstm, f"{name}_l{len(cells) - 1 - k}")', "weight_ih_l0 holds cells[1].weight_ih"),
    "to lstm: biases dropped": (check_cells_to_lstm, "cells_to_lstm", "bias=first.bias,", "bias=False,",
                                "need an nn.LSTM with bias=True"),
    "to lstm: biases not copied": (check_cells_to_lstm, "cells_to_lstm",
                                   "for name, parameter in cell.named_parameters():",
                                   "for name, parameter in list(cell.named_parameters())[:2]:",
                                   "the biases were not copied"),
    "to lstm: one layer": (check_cells_to_lstm, "cells_to_lstm", "num_layers=len(cells), bias", "num_layers=1, bias",
                           "num_layers=len(cells)"),
    "to lstm: float32 module": (check_cells_to_lstm, "cells_to_lstm", "dtype=first.weight_ih.dtype)", ")",
                                "dtype=torch.float64"),
    "to lstm: batch_first": (check_cells_to_lstm, "cells_to_lstm", "bias=first.bias,",
                             "bias=first.bias, batch_first=True,", "batch_first=True (expected False)"),
    # stacked_lstm_forward
    "stacked: layers in the wrong order": (check_stacked_lstm_forward, "stacked_lstm_forward",
                                           "for k, cell in enumerate(cells):",
                                           "for k, cell in reversed(list(enumerate(cells))):",
                                           "wired in the wrong order"),
    "stacked: layer 1 fed the input": (check_stacked_lstm_forward, "stacked_lstm_forward",
                                       "h, c = cell(layer_input, states[k])", "h, c = cell(x_t, states[k])",
                                       "every layer reading the input x_t"),
    "stacked: next layer reads c": (check_stacked_lstm_forward, "stacked_lstm_forward",
                                    "layer_input = h ", "layer_input = c ", "reading the cell state c"),
    "stacked: state not carried": (check_stacked_lstm_forward, "stacked_lstm_forward",
                                   "h, c = cell(layer_input, states[k])",
                                   "h, c = cell(layer_input, None if hx is None else (hx[0][k], hx[1][k]))",
                                   "starting every time step"),
    "stacked: hx ignored": (check_stacked_lstm_forward, "stacked_lstm_forward", "if hx is None:", "if True:",
                            "ignoring hx and starting from zeros"),
    "stacked: h_n and c_n swapped": (check_stacked_lstm_forward, "stacked_lstm_forward",
                                     "return output, (h_n, c_n)", "return output, (c_n, h_n)",
                                     "h_n and c_n are swapped"),
    "stacked: output from layer 0": (check_stacked_lstm_forward, "stacked_lstm_forward",
                                     "outputs.append(h) ", "outputs.append(states[0][0]) ", "yours matches the bottom layer's"),
    "stacked: h_n of the top layer only": (check_stacked_lstm_forward, "stacked_lstm_forward",
                                           "h_n = torch.stack([h for h, c in states])",
                                           "h_n = states[-1][0].unsqueeze(0)",
                                           "one from each layer"),
    # greedy_decode
    "decode: start token fed back": (check_greedy_decode, "greedy_decode", "x = embedding(token)",
                                     "x = embedding(start_tokens)", "feeding the start token back"),
    "decode: previous step's choice recorded": (
        check_greedy_decode, "greedy_decode",
        "        token = logits.argmax(dim=-1)         # (N,): the greedy choice ...\n"
        "        tokens.append(token)                  # ... recorded, and fed back at the next step\n",
        "        tokens.append(token)\n        token = logits.argmax(dim=-1)\n",
        "one step behind"),
    "decode: state not carried": (check_greedy_decode, "greedy_decode", "state = cell(x, state)",
                                  "state = cell(x)", "starting every step from a zero state"),
    "decode: argmax over the batch": (check_greedy_decode, "greedy_decode", "token = logits.argmax(dim=-1)",
                                      "token = logits.argmax(dim=0)", "argmax over the last dimension"),
    "decode: start token recorded": (check_greedy_decode, "greedy_decode",
                                     "torch.stack(tokens, dim=1), state",
                                     "torch.stack([start_tokens] + tokens, dim=1), state",
                                     "the start token is not included"),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("stacked_lstm_forward",
                  "def stacked_lstm_forward(input, hx, cells):\n"
                  "    lstm = nn.LSTM(cells[0].input_size, cells[0].hidden_size, num_layers=len(cells),\n"
                  "                   dtype=cells[0].weight_ih.dtype)\n"
                  "    lstm.load_state_dict({f'{name}_l{k}': value for k, cell in enumerate(cells)\n"
                  "                          for name, value in cell.state_dict().items()})\n"
                  "    return lstm(input, hx)", ["stacked_lstm_forward"])


def test_feedback_names_output_case_and_index(solution):
    def c_n_squeezed(*args, **kwargs):
        output, (h_n, c_n) = solution["stacked_lstm_forward"](*args, **kwargs)
        return output, (h_n, c_n[-1])
    with pytest.raises(CheckFailure) as failure:
        check_stacked_lstm_forward(c_n_squeezed, quiet=True)
    message = str(failure.value)
    assert "stacked_lstm_forward does not match torch.nn.LSTM(num_layers=len(cells)) on case 1 of 3" in message
    assert "c_n has shape (3, 6), expected (2, 3, 6), laid out as (num_layers, N, H)" in message


def test_first_differing_token_is_reported(solution):
    def late_error(*args, **kwargs):
        tokens, state = solution["greedy_decode"](*args, **kwargs)
        tokens = tokens.clone()
        tokens[1, 4] += 1
        return tokens, state
    with pytest.raises(CheckFailure, match=r"tokens\[n=1, t=4\] is \d+, expected \d+; 1 of the 24 tokens differ"):
        check_greedy_decode(late_error, quiet=True)


@pytest.mark.parametrize("check, student, words", [
    (check_lstm_to_cells, lambda lstm: nn.LSTMCell(2, 3), "should return a list of nn.LSTMCell, one per layer; "
                                                         "got a torch.nn.modules.rnn.LSTMCell"),
    (check_lstm_to_cells, lambda lstm: [nn.GRUCell(2, 3)], "got a list of GRUCell"),
    (check_lstm_to_cells, lambda lstm: lstm.reset_parameters(), "changed the nn.LSTM it was given"),
    (check_cells_to_lstm, lambda cells: cells, "should return an nn.LSTM, got a list of 2"),
    (check_cells_to_lstm, lambda cells: cells[0].reset_parameters(), "changed cells[0]"),
    (check_stacked_lstm_forward, lambda input, hx, cells: input, "should return a tuple (output, (h_n, c_n))"),
    (check_stacked_lstm_forward, lambda input, hx, cells: (input, input), "its second item should be the pair"),
    (check_greedy_decode, lambda cell, emb, head, start, steps, state=None: (start.float(), cell(emb(start))),
     "tokens has shape (3,), expected (3, 8)"),
    (check_greedy_decode, lambda cell, emb, head, start, steps, state=None: start,
     "should return a tuple (tokens, (h, c))"),
])
def test_malformed_answers_get_clear_messages(check, student, words):
    with pytest.raises(CheckFailure) as failure:
        check(student, quiet=True)
    assert words in str(failure.value)


def test_float_tokens_are_rejected(solution):
    def float_tokens(*args, **kwargs):
        tokens, state = solution["greedy_decode"](*args, **kwargs)
        return tokens.double(), state
    with pytest.raises(CheckFailure, match="tokens has dtype torch.float64, expected torch.int64"):
        check_greedy_decode(float_tokens, quiet=True)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()
    for check in ALL_CHECKS:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)

    def crashes(input, hx, cells):
        return cells[1](input[0])  # layer 1 fed the input: a shape error inside torch
    with pytest.raises(CheckFailure) as failure:
        check_stacked_lstm_forward(crashes)
    message = str(failure.value)
    assert message.startswith("stacked_lstm_forward raised RuntimeError: ")
    assert "return cells[1](input[0])" in message and "only cells[0] reads the input" in message
    assert failure.value.__cause__ is None


def test_in_place_edits_of_the_state_are_reported(solution):
    def edits_h_0(input, hx, cells):
        result = solution["stacked_lstm_forward"](input, hx, cells)
        if hx is not None:
            hx[0].zero_()
        return result

    def edits_state(cell, embedding, head, start, steps, state=None):
        result = solution["greedy_decode"](cell, embedding, head, start, steps, state)
        if state is not None:
            state[1].zero_()
        return result
    with pytest.raises(CheckFailure, match="changed h_0 or c_0 in place"):
        check_stacked_lstm_forward(edits_h_0)
    with pytest.raises(CheckFailure, match="changed the initial state in place"):
        check_greedy_decode(edits_state)


def _fused(input, hx, cells):
    """A 'solution' that rebuilds nn.LSTM from the cells and calls it: the fused kernel."""
    lstm = nn.LSTM(cells[0].input_size, cells[0].hidden_size, num_layers=len(cells), dtype=input.dtype)
    with torch.no_grad():
        for k, cell in enumerate(cells):
            for name, p in cell.named_parameters():
                getattr(lstm, f"{name}_l{k}").copy_(p)
    return lstm(input, hx)


def test_the_fused_module_is_refused_but_cells_are_allowed(solution):
    with pytest.raises(CheckFailure, match="is not written by hand: it calls torch's built-in lstm"):
        check_stacked_lstm_forward(_fused, quiet=True)
    check_stacked_lstm_forward(solution["stacked_lstm_forward"], quiet=True)  # LSTMCell is allowed
    nn.LSTM(2, 3)(torch.randn(4, 1, 2))  # and the trap is removed afterwards


def test_registry_lists_every_chapter_seven_check():
    assert {f"07-cells/{name}" for name in ("lstm_to_cells", "cells_to_lstm", "stacked_lstm_forward",
                                            "greedy_decode")} <= set(CHECKS)


def test_references_really_are_torch_nn():
    """The stacked reference is nn.LSTM: a changed weight changes the expected output."""
    case = check_stacked_lstm_forward.make_cases()[0]
    expected = check_stacked_lstm_forward.run_reference(case)
    lstm = build_lstm(case.config, state_of(case.tensors, "lstm."))
    output, (h_n, c_n) = lstm(case.tensors["input"], (case.tensors["h_0"], case.tensors["c_0"]))
    assert torch.equal(expected["output"], output.detach()) and torch.equal(expected["c_n"], c_n.detach())
    case.tensors["lstm.weight_hh_l1"] = case.tensors["lstm.weight_hh_l1"] * 2
    assert not torch.allclose(check_stacked_lstm_forward.run_reference(case)["output"], output)


def test_hint_helpers_agree_with_torch_nn_when_read_correctly():
    """run_cells and decode_by_hand, used for hints, equal the nn.LSTM references without a mistake."""
    for case in check_stacked_lstm_forward.make_cases(hidden=True):
        t = case.tensors
        cells = cells_from_lstm(build_lstm(case.config, state_of(t, "lstm.")))
        output, h_n, c_n = run_cells(cells, t["input"], (t["h_0"], t["c_0"]) if "h_0" in t else None)
        expected = check_stacked_lstm_forward.run_reference(case)
        torch.testing.assert_close(output, expected["output"])
        torch.testing.assert_close(c_n, expected["c_n"])
    for case in check_greedy_decode.make_cases():
        embedding, cell, head = check_greedy_decode.modules(case)
        state = (case.tensors["h_0"], case.tensors["c_0"]) if "h_0" in case.tensors else None
        tokens, (h, c) = decode_by_hand(cell, embedding, head, case.tensors["start"], case.config["steps"], state)
        expected = check_greedy_decode.run_reference(case)
        assert torch.equal(tokens, expected["tokens"])
        torch.testing.assert_close(c, expected["c"])


def test_round_trip_is_exact(solution):
    """module -> cells -> module gives back every state_dict entry bit for bit."""
    lstm = nn.LSTM(3, 5, num_layers=3, dtype=torch.float64)
    back = solution["cells_to_lstm"](solution["lstm_to_cells"](lstm))
    assert lstm.state_dict().keys() == back.state_dict().keys()
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in lstm.state_dict().items())
