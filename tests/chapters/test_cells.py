"""The chapter 7 checks accept the reference solution and reject wrong answers.

Wrong answers are made by mutating the reference solution's own source (the
solution notebook), so every mutant is one plausible student mistake away from
a correct answer. A check that accepts any of them is a bug. The check's own
loops (run_pairs, decode_until_by_hand), which name mistakes in hints and are the
"cells" side of cells_to_bilstm, are tested here against torch.nn.
"""
from __future__ import annotations


import pytest
import torch
from torch import nn

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.chapters.cells import (build_lstm, check_bidirectional_lstm_forward, check_bilstm_to_cells,
                                        check_cells_to_bilstm, check_greedy_decode_until, decode_until_by_hand,
                                        pairs_from_lstm, run_pairs, state_of)
from conftest import REPO
from mutants import assert_partial_credit, failing_when, mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "07-cells" / "cells.ipynb"
ALL_CHECKS = (check_bilstm_to_cells, check_cells_to_bilstm, check_bidirectional_lstm_forward,
              check_greedy_decode_until)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_cases_cover_what_the_exercises_promise():
    for hidden in (False, True):
        forward = [c.config for c in check_bidirectional_lstm_forward.make_cases(hidden=hidden)]
        assert {c["hx"] for c in forward} == {True, False}
        assert any(not c.get("batched", True) for c in forward)
        assert any(c["num_layers"] >= 2 for c in forward), "the wiring between layers must show"
        for check in (check_bilstm_to_cells, check_cells_to_bilstm):
            configs = [c.config for c in check.make_cases(hidden=hidden)]
            assert {c["bias"] for c in configs} == {True, False}
            assert any(c["num_layers"] >= 2 for c in configs)
        decode = [c.config for c in check_greedy_decode_until.make_cases(hidden=hidden)]
        assert {c["state"] for c in decode} == {True, False}


def test_copy_cases_tell_the_layer_sizes_apart():
    """One case has input_size == 2 * hidden_size, so that sizing layer k > 0 like layer 0 can fail
    by value and not only by shape; another has input_size different from both H and 2H."""
    for check in (check_bilstm_to_cells, check_cells_to_bilstm):
        configs = [c.config for c in check.make_cases()]
        assert any(c["input_size"] == 2 * c["hidden_size"] and c["num_layers"] >= 2 for c in configs)
        assert any(c["input_size"] not in (c["hidden_size"], 2 * c["hidden_size"]) for c in configs)


def test_decoding_cases_stop_some_sequences_early_and_not_others():
    """Each case has a sequence that stops with at least two steps to go, one that never stops,
    and no start token equal to eos: every stopping mistake then changes the result."""
    for hidden in (False, True):
        for case in check_greedy_decode_until.make_cases(hidden=hidden):
            tokens, eos, steps = check_greedy_decode_until.run_reference(case)["tokens"], case.config["eos"], \
                case.config["steps"]
            stops = [int((row == eos).nonzero()[0]) if bool((row == eos).any()) else steps for row in tokens]
            assert min(stops) <= steps - 3 and max(stops) == steps, case.label
            assert not bool((case.tensors["start"] == eos).any()), case.label


# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
STATE_FREEZE = ("            h, c = torch.where(keep, state[0], h), torch.where(keep, state[1], c)\n")
MUTANTS = {
    # bilstm_to_cells
    "to cells: directions swapped": (check_bilstm_to_cells, "bilstm_to_cells", 'for suffix in ("", "_reverse"):',
                                     'for suffix in ("_reverse", ""):',
                                     "cells[0][0] (forward) should get the parameters whose names end in _l0"),
    "to cells: wrong layer": (check_bilstm_to_cells, "bilstm_to_cells", 'getattr(lstm, f"{name}_l{k}{suffix}")',
                              'getattr(lstm, f"{name}_l{lstm.num_layers - 1 - k}{suffix}")',
                              "the pair cells[k] takes layer k's parameters"),
    "to cells: forward direction only": (check_bilstm_to_cells, "bilstm_to_cells", 'for suffix in ("", "_reverse"):',
                                         'for suffix in ("",):', "one pair (forward cell, backward cell)"),
    "to cells: layer 1 sized H": (check_bilstm_to_cells, "bilstm_to_cells",
                                  "else 2 * lstm.hidden_size", "else lstm.hidden_size",
                                  "so their input_size is 2 * hidden_size"),
    "to cells: every layer sized for the input": (check_bilstm_to_cells, "bilstm_to_cells",
                                                  "input_size = lstm.input_size if k == 0 else 2 * lstm.hidden_size",
                                                  "input_size = lstm.input_size", "so their input_size is 2 * hidden_size"),
    "to cells: biases dropped": (check_bilstm_to_cells, "bilstm_to_cells", "bias=lstm.bias,", "bias=False,",
                                 "build the cells with bias=True"),
    "to cells: biases not copied": (check_bilstm_to_cells, "bilstm_to_cells",
                                    "for name, parameter in cell.named_parameters():",
                                    "for name, parameter in list(cell.named_parameters())[:2]:",
                                    "the biases were not copied"),
    "to cells: shared tensors": (check_bilstm_to_cells, "bilstm_to_cells",
                                 'parameter.copy_(getattr(lstm, f"{name}_l{k}{suffix}"))',
                                 'setattr(cell, name, getattr(lstm, f"{name}_l{k}{suffix}"))', "share tensors"),
    "to cells: float32 cells": (check_bilstm_to_cells, "bilstm_to_cells", "dtype = lstm.weight_ih_l0.dtype",
                                "dtype = torch.float32", "dtype=torch.float64"),
    # cells_to_bilstm
    "to lstm: directions swapped": (check_cells_to_bilstm, "cells_to_bilstm", 'zip(("", "_reverse"), pair)',
                                    'zip(("_reverse", ""), pair)',
                                    "weight_ih_l0 holds cells[0][1].weight_ih: the parameters ending in _l0 are "
                                    "layer 0's forward direction"),
    "to lstm: not bidirectional": (check_cells_to_bilstm, "cells_to_bilstm", "bidirectional=True, ", "",
                                   "only an nn.LSTM built with bidirectional=True"),
    "to lstm: biases dropped": (check_cells_to_bilstm, "cells_to_bilstm", "bias=first.bias,", "bias=False,",
                                "need an nn.LSTM with bias=True"),
    "to lstm: biases not copied": (check_cells_to_bilstm, "cells_to_bilstm",
                                   "for name, parameter in cell.named_parameters():",
                                   "for name, parameter in list(cell.named_parameters())[:2]:",
                                   "the biases were not copied"),
    "to lstm: one layer": (check_cells_to_bilstm, "cells_to_bilstm", "num_layers=len(pairs), bias",
                           "num_layers=1, bias",
                           "num_layers=len(pairs)"),
    "to lstm: input_size of the top layer": (check_cells_to_bilstm, "cells_to_bilstm", "first = pairs[0][0]",
                                             "first = pairs[-1][0]", "input_size is what layer 0's cells read"),
    "to lstm: float32 module": (check_cells_to_bilstm, "cells_to_bilstm", "dtype=first.weight_ih.dtype)", ")",
                                "dtype=torch.float64"),
    # bidirectional_lstm_forward
    "bidirectional: backward not reversed": (check_bidirectional_lstm_forward, "bidirectional_lstm_forward",
                                             "times = range(L) if d == 0 else range(L - 1, -1, -1)",
                                             "times = range(L)", "running the backward cell from the first step"),
    "bidirectional: backward h in computed order": (check_bidirectional_lstm_forward, "bidirectional_lstm_forward",
                                                    "hs[t] = state[0]", "hs[t if d == 0 else L - 1 - t] = state[0]",
                                                    "in the order they were computed"),
    "bidirectional: backward first": (check_bidirectional_lstm_forward, "bidirectional_lstm_forward",
                                      "torch.cat(directions, dim=-1)", "torch.cat(directions[::-1], dim=-1)",
                                      "the backward h first"),
    "bidirectional: next layer reads the forward h only": (check_bidirectional_lstm_forward,
                                                           "bidirectional_lstm_forward",
                                                           "layer_input = torch.cat(directions, dim=-1)",
                                                           "layer_input = directions[0]", "concatenated"),
    "bidirectional: h_n direction by direction": (
        check_bidirectional_lstm_forward, "bidirectional_lstm_forward",
        "return layer_input, (torch.stack(h_n), torch.stack(c_n))",
        "return layer_input, (torch.stack(h_n[0::2] + h_n[1::2]), torch.stack(c_n[0::2] + c_n[1::2]))",
        "interleaves them"),
    "bidirectional: state not carried": (check_bidirectional_lstm_forward, "bidirectional_lstm_forward",
                                         "state = cell(layer_input[t], state)",
                                         "state = cell(layer_input[t], None if hx is None else "
                                         "(hx[0][2 * k + d], hx[1][2 * k + d]))", "starting every time step"),
    "bidirectional: hx ignored": (check_bidirectional_lstm_forward, "bidirectional_lstm_forward",
                                  "state = None if hx is None else (hx[0][2 * k + d], hx[1][2 * k + d])",
                                  "state = None", "ignoring hx and starting from zeros"),
    "bidirectional: h_n and c_n swapped": (check_bidirectional_lstm_forward, "bidirectional_lstm_forward",
                                           "(torch.stack(h_n), torch.stack(c_n))", "(torch.stack(c_n), torch.stack(h_n))",
                                           "h_n and c_n are swapped"),
    # greedy_decode_until
    "until: never stops": (check_greedy_decode_until, "greedy_decode_until", "done = done | (token == eos)", "pass",
                           "the page's loop, which never stops"),
    "until: state of a stopped sequence not kept": (check_greedy_decode_until, "greedy_decode_until", STATE_FREEZE,
                                                    "", "a stopped sequence's state went on changing"),
    "until: stopped rows filled with 0": (check_greedy_decode_until, "greedy_decode_until",
                                          "torch.full_like(chosen, eos)", "torch.zeros_like(chosen)",
                                          "wrong after it: every later token of a stopped sequence is eos"),
    "until: the batch stops at the first eos": (check_greedy_decode_until, "greedy_decode_until",
                                                "done = done | (token == eos)",
                                                "done = done | (token == eos)\n        if done.any():\n"
                                                "            break", "return all the steps"),
    "until: state not carried": (check_greedy_decode_until, "greedy_decode_until",
                                 "h, c = cell(embedding(token), state)", "h, c = cell(embedding(token))",
                                 "starting every step from a zero state"),
    "until: start token fed back": (check_greedy_decode_until, "greedy_decode_until",
                                    "h, c = cell(embedding(token), state)",
                                    "h, c = cell(embedding(start_tokens), state)", None),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("bidirectional_lstm_forward",
                  "def bidirectional_lstm_forward(input, hx, pairs):\n"
                  "    first = pairs[0][0]\n"
                  "    lstm = nn.LSTM(first.input_size, first.hidden_size, num_layers=len(pairs),\n"
                  "                   bidirectional=True, dtype=first.weight_ih.dtype)\n"
                  "    lstm.load_state_dict({f'{name}_l{k}{suffix}': value for k, pair in enumerate(pairs)\n"
                  "                          for suffix, cell in zip(('', '_reverse'), pair)\n"
                  "                          for name, value in cell.state_dict().items()})\n"
                  "    return lstm(input, hx)", ["bidirectional_lstm_forward"])


def test_feedback_names_output_case_and_index(solution):
    def c_n_squeezed(*args, **kwargs):
        output, (h_n, c_n) = solution["bidirectional_lstm_forward"](*args, **kwargs)
        return output, (h_n, c_n[-1])
    with pytest.raises(CheckFailure) as failure:
        check_bidirectional_lstm_forward(c_n_squeezed, quiet=True)
    message = str(failure.value)
    assert ("bidirectional_lstm_forward does not match torch.nn.LSTM(num_layers=len(pairs), bidirectional=True) "
            "on case 1 of 4") in message
    assert "c_n has shape (3, 4), expected (4, 3, 4), laid out as (2 * num_layers, N, H)" in message


def test_first_differing_token_is_reported(solution):
    def late_error(*args, **kwargs):
        tokens, state = solution["greedy_decode_until"](*args, **kwargs)
        tokens = tokens.clone()
        tokens[1, 4] += 1
        return tokens, state
    with pytest.raises(CheckFailure, match=r"tokens\[n=1, t=4\] is \d+, expected \d+; 1 of the 32 tokens differ"):
        check_greedy_decode_until(late_error, quiet=True)


@pytest.mark.parametrize("check, student, words", [
    (check_bilstm_to_cells, lambda lstm: nn.LSTMCell(2, 3), "one pair (forward cell, backward cell) of "
                                                           "nn.LSTMCell per layer; got a torch.nn.modules"),
    (check_bilstm_to_cells, lambda lstm: [nn.LSTMCell(2, 3)], "got a list of LSTMCell"),
    (check_bilstm_to_cells, lambda lstm: [(nn.GRUCell(2, 3), nn.GRUCell(2, 3))], "got a list of tuple of 2"),
    (check_bilstm_to_cells, lambda lstm: lstm.reset_parameters(), "changed the nn.LSTM it was given"),
    (check_cells_to_bilstm, lambda pairs: pairs, "should return an nn.LSTM, got a list of 2"),
    (check_cells_to_bilstm, lambda pairs: pairs[0][1].reset_parameters(), "changed the cells"),
    (check_bidirectional_lstm_forward, lambda input, hx, pairs: input, "should return a tuple (output, (h_n, c_n))"),
    (check_bidirectional_lstm_forward, lambda input, hx, pairs: (input, input), "its second item should be the pair"),
    (check_greedy_decode_until, lambda cell, emb, head, start, steps, eos, state=None: (start.float(),
                                                                                        cell(emb(start))),
     "tokens has shape (4,), expected (4, 8)"),
    (check_greedy_decode_until, lambda cell, emb, head, start, steps, eos, state=None: start,
     "should return a tuple (tokens, (h, c))"),
])
def test_malformed_answers_get_clear_messages(check, student, words):
    with pytest.raises(CheckFailure) as failure:
        check(student, quiet=True)
    assert words in str(failure.value)


def test_float_tokens_are_rejected(solution):
    def float_tokens(*args, **kwargs):
        tokens, state = solution["greedy_decode_until"](*args, **kwargs)
        return tokens.double(), state
    with pytest.raises(CheckFailure, match="tokens has dtype torch.float64, expected torch.int64"):
        check_greedy_decode_until(float_tokens, quiet=True)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()
    for check in ALL_CHECKS:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)

    def crashes(input, hx, pairs):
        return pairs[1][0](input[0])  # layer 1 fed the input: a shape error inside torch
    with pytest.raises(CheckFailure) as failure:
        check_bidirectional_lstm_forward(crashes)
    message = str(failure.value)
    assert message.startswith("bidirectional_lstm_forward raised RuntimeError: ")
    assert "return pairs[1][0](input[0])" in message and "only the cells of layer 0 read the input" in message
    assert failure.value.__cause__ is None


def test_in_place_edits_of_the_state_are_reported(solution):
    def edits_h_0(input, hx, pairs):
        result = solution["bidirectional_lstm_forward"](input, hx, pairs)
        if hx is not None:
            hx[0].zero_()
        return result

    def edits_state(cell, embedding, head, start, steps, eos, state=None):
        result = solution["greedy_decode_until"](cell, embedding, head, start, steps, eos, state)
        if state is not None:
            state[1].zero_()
        return result
    with pytest.raises(CheckFailure, match="changed h_0 or c_0 in place"):
        check_bidirectional_lstm_forward(edits_h_0)
    with pytest.raises(CheckFailure, match="changed the initial state in place"):
        check_greedy_decode_until(edits_state)


def _fused(input, hx, pairs):
    """A 'solution' that rebuilds nn.LSTM from the cells and calls it: the fused kernel."""
    first = pairs[0][0]
    lstm = nn.LSTM(first.input_size, first.hidden_size, num_layers=len(pairs), bidirectional=True,
                   dtype=input.dtype)
    with torch.no_grad():
        for k, pair in enumerate(pairs):
            for suffix, cell in zip(("", "_reverse"), pair):
                for name, p in cell.named_parameters():
                    getattr(lstm, f"{name}_l{k}{suffix}").copy_(p)
    return lstm(input, hx)


def test_the_fused_module_is_refused_but_cells_are_allowed(solution):
    with pytest.raises(CheckFailure, match="is not written by hand: it calls torch's built-in lstm"):
        check_bidirectional_lstm_forward(_fused, quiet=True)
    check_bidirectional_lstm_forward(solution["bidirectional_lstm_forward"], quiet=True)  # LSTMCell is allowed
    nn.LSTM(2, 3)(torch.randn(4, 1, 2))  # and the trap is removed afterwards


def test_the_checks_own_loops_are_refused(solution):
    def borrowed(input, hx, pairs):
        output, h_n, c_n = run_pairs(pairs, input, hx)
        return output, (h_n, c_n)
    with pytest.raises(CheckFailure, match="is not written by hand"):
        check_bidirectional_lstm_forward(borrowed, quiet=True)
    with pytest.raises(CheckFailure, match="is not written by hand"):
        check_bilstm_to_cells(pairs_from_lstm, quiet=True)


def test_registry_lists_every_chapter_seven_check():
    assert {f"07-cells/{name}" for name in ("bilstm_to_cells", "cells_to_bilstm", "bidirectional_lstm_forward",
                                            "greedy_decode_until")} <= set(CHECKS)


def test_references_really_are_torch_nn():
    """The bidirectional reference is nn.LSTM: a changed weight changes the expected output."""
    case = check_bidirectional_lstm_forward.make_cases()[0]
    expected = check_bidirectional_lstm_forward.run_reference(case)
    lstm = build_lstm(case.config, state_of(case.tensors, "lstm."))
    output, (h_n, c_n) = lstm(case.tensors["input"], (case.tensors["h_0"], case.tensors["c_0"]))
    assert torch.equal(expected["output"], output.detach()) and torch.equal(expected["c_n"], c_n.detach())
    case.tensors["lstm.weight_hh_l1_reverse"] = case.tensors["lstm.weight_hh_l1_reverse"] * 2
    assert not torch.allclose(check_bidirectional_lstm_forward.run_reference(case)["output"], output)


def test_the_checks_own_loops_agree_with_torch_nn_when_read_correctly():
    """run_pairs (the cells side of cells_to_bilstm, and hints) equals nn.LSTM(bidirectional=True);
    decode_until_by_hand (hints) equals the per-sequence nn.LSTM reference."""
    for case in check_bidirectional_lstm_forward.make_cases() + check_bidirectional_lstm_forward.make_cases(
            hidden=True):
        t = case.tensors
        pairs = pairs_from_lstm(build_lstm(case.config, state_of(t, "lstm.")))
        output, h_n, c_n = run_pairs(pairs, t["input"], (t["h_0"], t["c_0"]) if "h_0" in t else None)
        expected = check_bidirectional_lstm_forward.run_reference(case)
        torch.testing.assert_close(output, expected["output"])
        torch.testing.assert_close(h_n, expected["h_n"])
        torch.testing.assert_close(c_n, expected["c_n"])
    for case in check_greedy_decode_until.make_cases() + check_greedy_decode_until.make_cases(hidden=True):
        embedding, cell, head = check_greedy_decode_until.modules(case)
        state = (case.tensors["h_0"], case.tensors["c_0"]) if "h_0" in case.tensors else None
        tokens, (h, c) = decode_until_by_hand(cell, embedding, head, case.tensors["start"], case.config["steps"],
                                              case.config["eos"], state)
        expected = check_greedy_decode_until.run_reference(case)
        assert torch.equal(tokens, expected["tokens"]), case.label
        torch.testing.assert_close(h, expected["h"])
        torch.testing.assert_close(c, expected["c"])


def test_each_mistaken_reading_really_differs():
    """Every hint's variant of run_pairs changes the result on a visible two-layer case."""
    case = check_bidirectional_lstm_forward.make_cases()[0]
    t = case.tensors
    pairs = pairs_from_lstm(build_lstm(case.config, state_of(t, "lstm.")))
    right = run_pairs(pairs, t["input"], (t["h_0"], t["c_0"]))
    for variant in (dict(reverse=False), dict(restore=False), dict(backward_first=True), dict(layer_major=False),
                    dict(carry=False)):
        wrong = run_pairs(pairs, t["input"], (t["h_0"], t["c_0"]), **variant)
        assert any(not torch.allclose(a, b) for a, b in zip(right, wrong)), variant


def test_round_trip_is_exact(solution):
    """module -> cells -> module gives back every state_dict entry bit for bit."""
    lstm = nn.LSTM(3, 5, num_layers=3, bidirectional=True, dtype=torch.float64)
    back = solution["cells_to_bilstm"](solution["bilstm_to_cells"](lstm))
    assert lstm.state_dict().keys() == back.state_dict().keys()
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in lstm.state_dict().items())


@pytest.mark.parametrize("check, answer, fails, share, missing", [
    (check_bilstm_to_cells, "bilstm_to_cells", lambda lstm: not lstm.bias, "1 of 2", ("without bias",)),
    (check_cells_to_bilstm, "cells_to_bilstm", lambda pairs: not pairs[0][0].bias, "1 of 2", ("without bias",)),
    (check_bidirectional_lstm_forward, "bidirectional_lstm_forward", lambda x, hx, pairs: hx is None,
     "2 of 4", ("hx omitted", "combined features")),
    (check_greedy_decode_until, "greedy_decode_until", lambda *args: args[-1] is None, "1 of 2",
     ("state omitted",))])
def test_an_answer_missing_one_part_earns_the_others(solution, check, answer, fails, share, missing):
    assert_partial_credit(check, failing_when(solution[answer], fails), share, missing)
