"""The chapter 5 checks accept the reference solution and reject wrong answers.

Wrong answers are made by mutating the reference solution's own source (the
solution notebook), so every mutant is one plausible student mistake away from
a correct answer. A check that accepts any of them is a bug.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.checking import state_of
from rnn_by_hand.chapters.lstm import (check_lstm_forward, check_peephole_lstm_step, check_set_chrono_bias,
                                       check_gate_blocks, check_tf_lstm_to_pytorch)
from rnn_by_hand.chapters.lstm.checks import blocks
from rnn_by_hand.chapters.lstm.models import GATES, lstm_layer, peephole_cell, peephole_lstm_cell, tf_lstm_layer
from conftest import REPO
from mutants import assert_partial_credit, mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "05-lstm" / "lstm.ipynb"
ALL_CHECKS = (check_gate_blocks, check_lstm_forward, check_peephole_lstm_step, check_tf_lstm_to_pytorch,
              check_set_chrono_bias)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_cases_cover_what_the_exercises_promise():
    step = [c.config for c in check_peephole_lstm_step.make_cases()]
    assert {c["batched"] for c in step} == {True, False} and {c["bias"] for c in step} == {True, False}
    for hidden in (False, True):
        forward = [c.config for c in check_lstm_forward.make_cases(hidden=hidden)]
        assert any(c["proj_size"] for c in forward) and any(not c["proj_size"] for c in forward)
        assert any(c.get("batch_first") for c in forward) and any(not c.get("batched", True) for c in forward)
        assert {c["hx"] for c in forward} == {True, False}
    for hidden in (False, True):
        gates = [c.config for c in check_gate_blocks.make_cases(hidden=hidden)]
        assert {c["gate"] for c in gates} == set("ifgo") and any(c.get("proj_size") for c in gates)
        assert any(c.get("bidirectional") for c in gates) and any(c.get("bias") is False for c in gates)
        assert all(c.get("num_layers", 1) > 1 or c.get("bidirectional") for c in gates)
    chrono = [c.config for c in check_set_chrono_bias.make_cases()]
    assert any(c["num_layers"] > 1 for c in chrono) and any(c["bidirectional"] for c in chrono)
    for case in check_set_chrono_bias.make_cases() + check_set_chrono_bias.make_cases(hidden=True):
        T = case.tensors["timescales"]  # a time scale per unit, distinct, far enough from 2
        assert T.shape == (case.config["hidden_size"],) and bool((T > 3).all()) and len(set(T.tolist())) == len(T)


# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
STEP_IFOG = ("i, f, g, o = gates.chunk", "i, f, o, g = gates.chunk")
STEP_GIFO = ("i, f, g, o = gates.chunk", "g, i, f, o = gates.chunk")
FORWARD_IFOG = ("i, f, g, o = (projected[t]", "i, f, o, g = (projected[t]")
FORWARD_GIFO = ("i, f, g, o = (projected[t]", "g, i, f, o = (projected[t]")
IN_ORDER = "PyTorch stacks them i, f, g, o"
MUTANTS = {
    # gate_blocks
    "gate_blocks: order i, f, o, g": (check_gate_blocks, "gate_blocks", 'k = "ifgo".index(gate)',
                                      'k = "ifog".index(gate)', "is PyTorch's"),
    "gate_blocks: every fourth row": (check_gate_blocks, "gate_blocks", "p[k * H:(k + 1) * H]", "p[k::4]",
                                      "not every fourth row"),
    "gate_blocks: a quarter of the columns": (check_gate_blocks, "gate_blocks", "p[k * H:(k + 1) * H]",
                                              "p.tensor_split(4, dim=-1)[k]", "take H of them"),
    "gate_blocks: copies": (check_gate_blocks, "gate_blocks", "p[k * H:(k + 1) * H]",
                            "p[k * H:(k + 1) * H].clone()", "your blocks are copies"),
    "gate_blocks: index list": (check_gate_blocks, "gate_blocks", "p[k * H:(k + 1) * H]",
                                "p[list(range(k * H, (k + 1) * H))]", "your blocks are copies"),
    "gate_blocks: weight_hr kept": (check_gate_blocks, "gate_blocks", 'if not name.startswith("weight_hr")}', "}",
                                    "has no gates"),
    "gate_blocks: layer 0 only": (check_gate_blocks, "gate_blocks", 'if not name.startswith("weight_hr")}',
                                  'if name.endswith("_l0")}', "the dict has no key"),
    "gate_blocks: forward direction only": (check_gate_blocks, "gate_blocks", 'if not name.startswith("weight_hr")}',
                                            'if not name.startswith("weight_hr") and "reverse" not in name}',
                                            "each direction's"),
    # peephole_lstm_step
    "peephole: no peepholes": (check_peephole_lstm_step, "peephole_lstm_step", "i = torch.sigmoid(a_i + p_i * c_prev)",
                               "i = torch.sigmoid(a_i)", "leaving out the peephole of gate i"),
    "peephole: none at all": (check_peephole_lstm_step, "peephole_lstm_step", "p_i, p_f, p_o = peephole.split(H)",
                              "p_i = p_f = p_o = 0.0", "an LSTM without peepholes"),
    "peephole: output gate peeps at c_prev": (check_peephole_lstm_step, "peephole_lstm_step",
                                              "o = torch.sigmoid(a_o + p_o * c_t)",
                                              "o = torch.sigmoid(a_o + p_o * c_prev)",
                                              "the output gate peeping at c_prev"),
    "peephole: forget gate without its peephole": (check_peephole_lstm_step, "peephole_lstm_step",
                                                   "f = torch.sigmoid(a_f + p_f * c_prev)", "f = torch.sigmoid(a_f)",
                                                   "leaving out the peephole of gate f"),
    "peephole: blocks read as f, i, o": (check_peephole_lstm_step, "peephole_lstm_step",
                                         "p_i, p_f, p_o = peephole.split(H)", "p_f, p_i, p_o = peephole.split(H)",
                                         "reading the peephole blocks as f, i, o"),
    "peephole: split into four": (check_peephole_lstm_step, "peephole_lstm_step", "p_i, p_f, p_o = peephole.split(H)",
                                  "p_i, p_f, p_o = peephole.chunk(4)[:3]", None),
    "peephole: gate order i, f, o, g": (check_peephole_lstm_step, "peephole_lstm_step",
                                        "a_i, a_f, a_g, a_o = gates.chunk", "a_i, a_f, a_o, a_g = gates.chunk",
                                        "blocks as i, f, o, g; PyTorch stacks them i, f, g, o"),
    "peephole: only bias_ih": (check_peephole_lstm_step, "peephole_lstm_step", "gates + bias_ih + bias_hh",
                               "gates + bias_ih", "leaving out bias_hh"),
    "peephole: tanh on the forget gate": (check_peephole_lstm_step, "peephole_lstm_step",
                                          "f = torch.sigmoid(a_f + p_f * c_prev)", "f = torch.tanh(a_f + p_f * c_prev)",
                                          "tanh on the forget gate f"),
    "peephole: h and c swapped": (check_peephole_lstm_step, "peephole_lstm_step", "return h_t, c_t",
                                  "return c_t, h_t", "h_t and c_t are swapped"),
    "peephole: float32 arithmetic": (check_peephole_lstm_step, "peephole_lstm_step", "return h_t, c_t",
                                     "return h_t.float().double(), c_t", "float32"),
    # the step's mistakes also break a forward pass built on the same ideas
    "forward: gate order i, f, o, g": (check_lstm_forward, "lstm_forward", *FORWARD_IFOG, "CS231n's and fastbook's"),
    "forward: gate order g, i, f, o": (check_lstm_forward, "lstm_forward", *FORWARD_GIFO,
                                       "as g, i, f, o; " + IN_ORDER),
    "forward: only bias_ih": (check_lstm_forward, "lstm_forward", "recurrent = recurrent + bias_hh",
                              "recurrent = recurrent", "leaving out bias_hh"),
    "forward: h_n and c_n swapped": (check_lstm_forward, "lstm_forward", "return output, (h_n, c_n)",
                                     "return output, (c_n, h_n)", "h_n and c_n are swapped"),
    "forward: c_n projected": (check_lstm_forward, "lstm_forward",
                               "h_n, c_n = h.unsqueeze(0), c.unsqueeze(0)",
                               "h_n, c_n = h.unsqueeze(0), (c if weight_hr is None else c @ weight_hr.T).unsqueeze(0)",
                               "the cell keeps hidden_size"),
    "forward: c projected every step": (check_lstm_forward, "lstm_forward",
                                        "        outputs.append(h)\n",
                                        "        c = c if weight_hr is None else c @ weight_hr.T\n"
                                        "        outputs.append(h)\n", "c_t (and c_0) keeps 5"),
    "forward: output not projected": (check_lstm_forward, "lstm_forward", "outputs.append(h)",
                                      "outputs.append(h_full)", "output and h_n hold the projected h_t"),
    "forward: projection never applied": (check_lstm_forward, "lstm_forward",
                                          "h = h_full if weight_hr is None else h_full @ weight_hr.T",
                                          "h = h_full", "weight_hh is (4H, 2) because it reads the projected h"),
    "forward: tanh on the output gate": (check_lstm_forward, "lstm_forward", "h_full = torch.sigmoid(o)",
                                         "h_full = torch.tanh(o)", "tanh on the output gate o"),
    "forward: tanh on the input gate": (check_lstm_forward, "lstm_forward", "torch.sigmoid(i) * torch.tanh(g)",
                                        "torch.tanh(i) * torch.tanh(g)", "tanh on the input gate i"),
    "forward: output gate inside tanh": (check_lstm_forward, "lstm_forward",
                                         "h_full = torch.sigmoid(o) * torch.tanh(c)",
                                         "h_full = torch.tanh(torch.sigmoid(o) * c)", "h_t = tanh(o_t * c_t)"),
    "forward: hx unpacked as (c_0, h_0)": (check_lstm_forward, "lstm_forward",
                                           "h, c = hx[0].reshape(N, H_out), hx[1].reshape(N, H)",
                                           "c, h = hx[0].reshape(N, H_out), hx[1].reshape(N, H)",
                                           "unpacking hx as (c_0, h_0)"),
    "forward: hx ignored": (check_lstm_forward, "lstm_forward", "if hx is None:", "if True:", "starting from zeros"),
    "forward: batch_first output left time-major": (check_lstm_forward, "lstm_forward",
                                                    "output = output.transpose(0, 1)", "pass",
                                                    "because batch_first=True"),
    "forward: h_n without layer dim": (check_lstm_forward, "lstm_forward",
                                       "h_n, c_n = h.unsqueeze(0), c.unsqueeze(0)", "h_n, c_n = h, c",
                                       "leading (num_layers * num_directions) dimension is missing"),
    # tf_lstm_to_pytorch
    "tf: blocks not reordered": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "return torch.cat([i, f, j, o])",
                                 "return torch.cat([i, j, f, o])", "hold the kernel's j block"),
    "tf: CS231n's order": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "return torch.cat([i, f, j, o])",
                           "return torch.cat([i, j, o, f])", "CS231n's i, f, o, g"),
    "tf: kernel not transposed": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "reorder(kernel[:H_in].T)",
                                  "reorder(kernel[:H_in].T).T", "so transpose it"),
    "tf: x read by the first H rows": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch",
                                       '"weight_ih_l0": reorder(kernel[:H_in].T),',
                                       '"weight_ih_l0": reorder(kernel[:H].T),',
                                       "the kernel's first input_size = 3 rows read x_t"),
    "tf: the kernel's last rows read x": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch",
                                          '"weight_ih_l0": reorder(kernel[:H_in].T),  # (4H, H_in): nn.LSTM '
                                          'computes x @ W.T\n            "weight_hh_l0": reorder(kernel[H_in:].T),',
                                          '"weight_ih_l0": reorder(kernel[H:].T),\n'
                                          '            "weight_hh_l0": reorder(kernel[:H].T),',
                                          "comes from the other end of the kernel"),
    "tf: forget_bias left out": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "f + forget_bias, j, o",
                                 "f, j, o", "forget_bias is missing"),
    "tf: forget_bias in both biases": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch",
                                       '"bias_hh_l0": torch.zeros_like(bias)}',
                                       '"bias_hh_l0": torch.cat([0 * i, 0 * f + forget_bias, 0 * j, 0 * o])}',
                                       "forget_bias is in both biases"),
    "tf: forget_bias on the candidate's rows": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "f + forget_bias, j, o",
                                                "f, j + forget_bias, o", "went into rows [2H, 3H)"),
    "tf: forget_bias on every gate": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "torch.cat([i, f + forget_bias, j, o])",
                                      "torch.cat([i, f, j, o]) + forget_bias", "added to every gate"),
    "tf: forget_bias subtracted": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "f + forget_bias, j, o",
                                   "f - forget_bias, j, o", "the wrong sign"),
    "tf: bias in both slots": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", '"bias_hh_l0": torch.zeros_like(bias)}',
                               '"bias_hh_l0": torch.cat([i, f + forget_bias, j, o])}', "counted twice"),
    "tf: bias not reordered": (check_tf_lstm_to_pytorch, "tf_lstm_to_pytorch", "torch.cat([i, f + forget_bias, j, o])",
                               "torch.cat([i, j, f + forget_bias, o])", "the bias needs its blocks reordered"),
    # set_chrono_bias
    "chrono: both biases set": (check_set_chrono_bias, "set_chrono_bias", "parameter[:2 * H] = 0.0",
                                "parameter[:H], parameter[H:2 * H] = -b_f, b_f", "both biases were set"),
    "chrono: log(T)": (check_set_chrono_bias, "set_chrono_bias", "b_f = torch.log(timescales - 1)", "b_f = torch.log(timescales)",
                       "that is log(T), not log(T - 1)"),
    "chrono: input gate not negated": (check_set_chrono_bias, "set_chrono_bias", "parameter[:H] = -b_f", "parameter[:H] = b_f",
                                       "the sign is wrong"),
    "chrono: input gate left alone": (check_set_chrono_bias, "set_chrono_bias", "parameter[:H] = -b_f", "pass",
                                      "b_ii + b_hi (input gate, rows [0, H))"),
    "chrono: signs swapped": (check_set_chrono_bias, "set_chrono_bias", "b_f = torch.log(timescales - 1)",
                              "b_f = -torch.log(timescales - 1)", "the sign is wrong"),
    "chrono: candidate rows": (check_set_chrono_bias, "set_chrono_bias", "parameter[:H] = -b_f", "parameter[2 * H:3 * H] = -b_f",
                               "the gate g: only i and f change"),
    "chrono: added to the random bias": (check_set_chrono_bias, "set_chrono_bias",
                                         "parameter[:H] = -b_f         # rows [0, H): the input gate, i = 1 - f\n"
                                         "                parameter[H:2 * H] = b_f     # rows [H, 2H): the forget gate\n"
                                         '            elif name.startswith("bias_hh"):\n'
                                         "                parameter[:2 * H] = 0.0",
                                         "parameter[:H] -= b_f\n                parameter[H:2 * H] += b_f\n"
                                         "            elif False:\n                pass",
                                         "the value was added to the random initial biases"),
    "chrono: first layer only": (check_set_chrono_bias, "set_chrono_bias", 'if name.startswith("bias_ih"):',
                                 'if name == "bias_ih_l0":', "bias_ih_l1"),
    "chrono: forward direction only": (check_set_chrono_bias, "set_chrono_bias", 'if name.startswith("bias_ih"):',
                                       'if name.startswith("bias_ih") and "reverse" not in name:',
                                       "bias_ih_l0_reverse"),
    "chrono: without no_grad": (check_set_chrono_bias, "set_chrono_bias", "with torch.no_grad():", "if True:",
                                "inside `with torch.no_grad():`"),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("lstm_forward",
                  "def lstm_forward(input, hx, weight_ih, weight_hh, bias_ih=None, bias_hh=None, weight_hr=None,\n"
                  "                 batch_first=False):\n"
                  "    lstm = nn.LSTM(weight_ih.shape[1], weight_ih.shape[0] // 4, bias=bias_ih is not None,\n"
                  "                   batch_first=batch_first, dtype=input.dtype,\n"
                  "                   proj_size=0 if weight_hr is None else weight_hr.shape[0])\n"
                  "    weights = dict(weight_ih_l0=weight_ih, weight_hh_l0=weight_hh, bias_ih_l0=bias_ih,\n"
                  "                   bias_hh_l0=bias_hh, weight_hr_l0=weight_hr)\n"
                  "    lstm.load_state_dict({k: v for k, v in weights.items() if v is not None})\n"
                  "    return lstm(input, hx)", ["lstm_forward"])


def test_feedback_names_output_case_and_index(solution):
    def c_n_squeezed(*args, **kwargs):
        output, (h_n, c_n) = solution["lstm_forward"](*args, **kwargs)
        return output, (h_n, c_n[0])
    with pytest.raises(CheckFailure) as failure:
        check_lstm_forward(c_n_squeezed, quiet=True)
    message = str(failure.value)
    assert "lstm_forward does not match torch.nn.LSTM on case 1 of 5" in message
    assert "c_n has shape (3, 6), expected (1, 3, 6), laid out as (1, N, H)" in message


def test_first_differing_time_step_is_reported(solution):
    def late_error(*args, **kwargs):
        output, state = solution["lstm_forward"](*args, **kwargs)
        output = output.clone()
        output[3] += 1.0  # time step 3 in the time-major case
        return output, state
    with pytest.raises(CheckFailure, match=r"output\[t=3, n=0, h=0\] is .* expected .*largest error 1"):
        check_lstm_forward(late_error, quiet=True)


@pytest.mark.parametrize("result, words", [
    (lambda out, state: (out, state[0]), "its second item should be the pair (h_n, c_n), got a Tensor"),
    (lambda out, state: (out, *state), "should return a tuple (output, (h_n, c_n)), got a tuple of 3"),
    (lambda out, state: (out, [state[0].numpy(), state[1]]), "h_n should be a torch.Tensor, got a numpy.ndarray"),
    (lambda out, state: (out, (state[0], state[1].float())), "c_n has dtype torch.float32, expected torch.float64"),
    (lambda out, state: (out * float("nan"), state), "not a finite number"),
])
def test_wrong_return_values_get_clear_messages(solution, result, words):
    def student(*args, **kwargs):
        return result(*solution["lstm_forward"](*args, **kwargs))
    with pytest.raises(CheckFailure) as failure:
        check_lstm_forward(student, quiet=True)
    assert words in str(failure.value)


@pytest.mark.parametrize("check, student, words", [
    (check_gate_blocks, lambda lstm, gate: list(lstm.parameters()), "should return a dict"),
    (check_peephole_lstm_step, lambda *args: args[0], "should return a tuple (h_t, c_t), got a Tensor"),
    (check_tf_lstm_to_pytorch, lambda kernel, bias, forget_bias: [kernel, bias],
     "should return a dict with the keys weight_ih_l0"),
    (check_tf_lstm_to_pytorch, lambda kernel, bias, forget_bias: {"weight_ih_l0": kernel.T},
     "the dict has no key 'weight_hh_l0'"),
    (check_tf_lstm_to_pytorch, lambda kernel, bias, forget_bias: {"weight_ih_l0": kernel.T, "weight_hh_l0": kernel.T,
                                                                   "bias_ih_l0": bias, "bias_hh_l0": bias,
                                                                   "weight_hr_l0": bias},
     "a key 'weight_hr_l0' that nn.LSTM(num_layers=1) does not have"),
    (check_tf_lstm_to_pytorch, lambda kernel, bias, forget_bias: {"weight_ih_l0": kernel.T, "weight_hh_l0": kernel.T,
                                                                   "bias_ih_l0": bias, "bias_hh_l0": bias},
     "weight_ih_l0 has shape (16, 7), expected (16, 3): the kernel's first input_size = 3 rows"),
    (check_tf_lstm_to_pytorch, lambda kernel, bias: {}, "raised TypeError"),  # forget_bias is an argument
    (check_set_chrono_bias, lambda lstm, T: lstm.reset_parameters(), "weight_ih_l0 changed at row 0"),
    (check_set_chrono_bias, lambda lstm, T: delattr(lstm, "bias_hh_l0"),
     "no longer those of the nn.LSTM it was given"),
    (check_set_chrono_bias, lambda lstm, T: T.fill_(2.0), "changed one of its input tensors in place"),
])
def test_malformed_answers_get_clear_messages(check, student, words):
    with pytest.raises(CheckFailure) as failure:
        check(student, quiet=True)
    assert words in str(failure.value)


def _batches_only(solution):
    def lstm_forward(input, hx, *weights, **kwargs):
        if input.dim() == 2:
            raise ValueError("only batches")
        return solution["lstm_forward"](input, hx, *weights, **kwargs)
    return lstm_forward


def _bias_needed(solution):
    def peephole_lstm_step(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh, peephole):
        if bias_ih is None:
            return state  # as if the cell without bias were not done yet
        return solution["peephole_lstm_step"](x_t, state, weight_ih, weight_hh, bias_ih, bias_hh, peephole)
    return peephole_lstm_step


def _forget_bias_ignored(solution):
    def tf_lstm_to_pytorch(kernel, bias, forget_bias=1.0):
        return solution["tf_lstm_to_pytorch"](kernel, bias, 0.0)
    return tf_lstm_to_pytorch


def _forward_direction_only(solution):
    return student_namespace(NOTEBOOK, ("set_chrono_bias", 'if name.startswith("bias_ih"):',
                                        'if name.startswith("bias_ih") and "reverse" not in name:'))["set_chrono_bias"]


@pytest.mark.parametrize("check, wrong, share, missing", [
    (check_lstm_forward, _batches_only, "4 of 5", "unbatched input"),
    (check_peephole_lstm_step, _bias_needed, "2 of 3", "without bias"),
    (check_tf_lstm_to_pytorch, _forget_bias_ignored, "1 of 2", "forget_bias != 0"),
    (check_set_chrono_bias, _forward_direction_only, "2 of 3", "bidirectional"),
])
def test_an_answer_failing_one_part_earns_the_others(solution, check, wrong, share, missing):
    """Each part of the exercise is earned on its own: one missing feature costs its share only."""
    assert_partial_credit(check, wrong(solution), share, (missing,))


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()

    def crashes(x_t, state, weight_ih, *rest):
        return x_t @ weight_ih, state[1]  # wrong orientation: a shape error inside torch

    def four_peepholes(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh, peephole):
        p_i, p_f, p_g, p_o = peephole.chunk(4)  # as if every gate had a peephole
        return state[0] + p_i * state[1], state[1]

    def four_unpacked(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh, peephole):
        p_i, p_f, p_g, p_o = peephole.split(state[1].shape[-1])
        return state
    for check in ALL_CHECKS:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)
    with pytest.raises(CheckFailure) as failure:
        check_peephole_lstm_step(crashes)
    message = str(failure.value)
    assert message.startswith("peephole_lstm_step raised RuntimeError: ")
    assert "return x_t @ weight_ih, state[1]" in message and failure.value.__cause__ is None
    for four in (four_peepholes, four_unpacked):
        with pytest.raises(CheckFailure, match="split it into three blocks of H, not four"):
            check_peephole_lstm_step(four)

    def kernel_split_as_stored(kernel, bias, forget_bias=1.0):
        i, j, f, o = kernel.split(kernel.shape[1] // 4)  # rows, where the gates are columns
        return {}
    with pytest.raises(CheckFailure, match="transpose each half to \\(4H, rows\\) before splitting"):
        check_tf_lstm_to_pytorch(kernel_split_as_stored)


def test_in_place_edits_of_the_state_are_reported(solution):
    def edits_c_prev(x_t, state, *weights):
        h_t, c_t = solution["peephole_lstm_step"](x_t, state, *weights)
        state[1].zero_()
        return h_t, c_t

    def edits_h_0(input, hx, *weights, **kwargs):
        result = solution["lstm_forward"](input, hx, *weights, **kwargs)
        if hx is not None:
            hx[0].zero_()
        return result
    with pytest.raises(CheckFailure, match="changed h_prev or c_prev in place"):
        check_peephole_lstm_step(edits_c_prev)
    with pytest.raises(CheckFailure, match="changed h_0 or c_0 in place"):
        check_lstm_forward(edits_h_0)


def test_registry_lists_every_chapter_five_check():
    assert {f"05-lstm/{name}" for name in ("gate_blocks", "lstm_forward", "peephole_lstm_step", "tf_lstm_to_pytorch",
                                           "set_chrono_bias")} <= set(CHECKS)
    # the page shows these three (ifog_to_pytorch is its CS231n conversion)
    assert not {"05-lstm/lstm_step", "05-lstm/set_forget_bias", "05-lstm/ifog_to_pytorch"} & set(CHECKS)


def test_reference_really_is_torch_nn():
    """The references come from the modules: a changed weight changes the expected output."""
    case = check_lstm_forward.make_cases()[1]  # the case with a projection
    t = case.tensors
    lstm = nn.LSTM(3, 5, proj_size=2, dtype=torch.float64)
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
            getattr(lstm, k + "_l0").copy_(t[k])
    output, (h_n, c_n) = lstm(t["input"])
    expected = check_lstm_forward.run_reference(case)
    assert torch.equal(expected["output"], output) and torch.equal(expected["c_n"], c_n)
    t["weight_hr"] = t["weight_hr"] * 2
    assert not torch.allclose(check_lstm_forward.run_reference(case)["output"], output)


def test_split_reference_blocks_reproduce_lstm_cell():
    """The slices the split check expects are the gates nn.LSTMCell uses: rebuild the cell from them."""
    cell = nn.LSTMCell(3, 4, dtype=torch.float64)
    x, h, c = (torch.randn(2, n, dtype=torch.float64) for n in (3, 4, 4))
    g = {p: blocks(getattr(cell, p), 4) for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    pre = {k: x @ g["weight_ih"][k].T + g["bias_ih"][k] + h @ g["weight_hh"][k].T + g["bias_hh"][k]
           for k in GATES}
    c_t = torch.sigmoid(pre["f"]) * c + torch.sigmoid(pre["i"]) * torch.tanh(pre["g"])
    h_t = torch.sigmoid(pre["o"]) * torch.tanh(c_t)
    ref_h, ref_c = cell(x, (h, c))
    torch.testing.assert_close(h_t, ref_h)
    torch.testing.assert_close(c_t, ref_c)


def to_tensorflow(lstm: nn.LSTM, forget_bias: float):
    """An nn.LSTM's weights in BasicLSTMCell's layout, moved by hand the other way round:
    columns i, j, f, o (j is PyTorch's g), one kernel for concat([x, h]), one bias from
    which the cell's forget_bias is taken back out."""
    H = lstm.hidden_size

    def columns(stacked):  # PyTorch's i, f, g, o rows -> TensorFlow's i, j, f, o
        i, f, g, o = stacked.detach().split(H)
        return torch.cat([i, g, f, o])
    kernel = torch.cat([columns(lstm.weight_ih_l0), columns(lstm.weight_hh_l0)], dim=1).T  # (H_in + H, 4H)
    bias = columns(lstm.bias_ih_l0 + lstm.bias_hh_l0)
    bias[2 * H:3 * H] -= forget_bias  # TensorFlow adds it back inside the forget gate
    return kernel, bias


@pytest.mark.parametrize("forget_bias", [1.0, 0.0, -0.7])
def test_tensorflow_reference_is_nn_lstm_in_another_layout(forget_bias):
    """The autograder's BasicLSTMCell equals nn.LSTM once the weights are moved, and not before."""
    H_in, H, L, N = 3, 4, 5, 2
    lstm = nn.LSTM(H_in, H, dtype=torch.float64)
    x = torch.randn(L, N, H_in, dtype=torch.float64)
    h_0, c_0 = torch.randn(1, N, H, dtype=torch.float64), torch.randn(1, N, H, dtype=torch.float64)
    kernel, bias = to_tensorflow(lstm, forget_bias)
    assert kernel.shape == (H_in + H, 4 * H)
    output, h_L, c_L = tf_lstm_layer(x, h_0[0], c_0[0], kernel, bias, forget_bias)
    with torch.no_grad():
        ref_output, (ref_h, ref_c) = lstm(x, (h_0, c_0))
    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_L, ref_h[0])
    torch.testing.assert_close(c_L, ref_c[0])
    if forget_bias:  # the constant matters: leaving it out is another function
        without, _, _ = tf_lstm_layer(x, h_0[0], c_0[0], kernel, bias, 0.0)
        assert (without - ref_output).abs().max() > 1e-3
    unconverted = nn.LSTM(H_in, H, dtype=torch.float64)  # TensorFlow's blocks read as PyTorch's
    unconverted.load_state_dict({"weight_ih_l0": kernel[:H_in].T, "weight_hh_l0": kernel[H_in:].T,
                                 "bias_ih_l0": bias, "bias_hh_l0": torch.zeros_like(bias)})
    with torch.no_grad():
        assert (unconverted(x, (h_0, c_0))[0] - output).abs().max() > 1e-3


def test_tensorflow_reference_equals_a_hand_computation():
    """One unbatched step of the TensorFlow cell, unit by unit with Python sums and math."""
    H_in, H, forget_bias = 2, 3, 1.0
    kernel = torch.randn(H_in + H, 4 * H, dtype=torch.float64)
    bias = torch.randn(4 * H, dtype=torch.float64)
    x, h, c = torch.randn(H_in, dtype=torch.float64), torch.randn(H, dtype=torch.float64), \
        torch.randn(H, dtype=torch.float64)
    _, h_1, c_1 = tf_lstm_layer(x[None, None], h[None], c[None], kernel, bias, forget_bias)
    K, b, xh = kernel.tolist(), bias.tolist(), x.tolist() + h.tolist()

    def sig(a):
        return 1 / (1 + math.exp(-a))

    def pre(col):  # concat([x, h]) @ kernel[:, col] + bias[col]
        return sum(xh[k] * K[k][col] for k in range(H_in + H)) + b[col]
    for u in range(H):  # columns: i at u, j at H + u, f at 2H + u, o at 3H + u
        cell = c[u].item() * sig(pre(2 * H + u) + forget_bias) + sig(pre(u)) * math.tanh(pre(H + u))
        assert math.isclose(c_1[0, u].item(), cell, rel_tol=1e-12)
        assert math.isclose(h_1[0, u].item(), math.tanh(cell) * sig(pre(3 * H + u)), rel_tol=1e-12)


def test_hint_lstm_agrees_with_nn_lstm_when_read_correctly():
    """The hand-written layer used for hints is nn.LSTM when no mistake is asked for."""
    lstm = nn.LSTM(3, 5, proj_size=2, dtype=torch.float64)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    w = {k: getattr(lstm, k + "_l0").detach() for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    output, h_L, c_L = lstm_layer(x, torch.zeros(2, 2, dtype=torch.float64),
                                  torch.zeros(2, 5, dtype=torch.float64), w, lstm.weight_hr_l0.detach())
    ref_output, (ref_h, ref_c) = lstm(x)
    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(c_L, ref_c[0])


@pytest.mark.parametrize("check, student", [
    (check_peephole_lstm_step, lambda x_t, state, w_ih, w_hh, b_ih, b_hh, peephole: _cell(x_t, state, w_ih, w_hh, b_ih,
                                                                                         b_hh)),
    (check_lstm_forward, lambda input, hx, w_ih, w_hh, b_ih=None, b_hh=None, weight_hr=None, batch_first=False:
        _module(input, hx, w_ih, w_hh, b_ih, b_hh, weight_hr, batch_first)),
])
def test_answers_that_call_torch_nn_are_rejected(check, student):
    with pytest.raises(CheckFailure, match="is not written by hand: it calls torch's built-in lstm"):
        check(student, quiet=True)
    # the trap is removed afterwards: torch.nn works again for everyone else
    nn.LSTM(2, 3)(torch.randn(4, 1, 2))
    nn.LSTMCell(2, 3)(torch.randn(1, 2))


def _cell(x_t, state, w_ih, w_hh, b_ih, b_hh):
    cell = nn.LSTMCell(w_ih.shape[1], w_ih.shape[0] // 4, bias=b_ih is not None, dtype=x_t.dtype)
    cell.load_state_dict({k: v for k, v in dict(weight_ih=w_ih, weight_hh=w_hh, bias_ih=b_ih,
                                                bias_hh=b_hh).items() if v is not None})
    return cell(x_t, state)


def _module(input, hx, w_ih, w_hh, b_ih, b_hh, weight_hr, batch_first):
    lstm = nn.LSTM(w_ih.shape[1], w_ih.shape[0] // 4, bias=b_ih is not None, batch_first=batch_first,
                   proj_size=0 if weight_hr is None else weight_hr.shape[0], dtype=input.dtype)
    lstm.load_state_dict({k + "_l0": v for k, v in dict(weight_ih=w_ih, weight_hh=w_hh, bias_ih=b_ih,
                                                        bias_hh=b_hh, weight_hr=weight_hr).items()
                          if v is not None})
    return lstm(input, hx)


# -- the autograder's own peephole LSTM ---------------------------------------------------

def by_hand_peephole(x, h, c, weight_ih, weight_hh, bias, peephole):
    """The peephole step for one unbatched vector, unit by unit with Python sums and math."""
    H, H_in = h.shape[0], x.shape[0]
    W, U, b, p = weight_ih.tolist(), weight_hh.tolist(), bias.tolist(), peephole.tolist()
    x, h, c = x.tolist(), h.tolist(), c.tolist()

    def sig(a):
        return 1 / (1 + math.exp(-a))

    def pre(row):  # W x + U h + b for one row of the stacked weights
        return sum(W[row][k] * x[k] for k in range(H_in)) + sum(U[row][k] * h[k] for k in range(H)) + b[row]
    h_t, c_t = [], []
    for j in range(H):  # gate rows: i at j, f at H + j, g at 2H + j, o at 3H + j; peepholes i, f, o
        i = sig(pre(j) + p[j] * c[j])
        f = sig(pre(H + j) + p[H + j] * c[j])
        cell = f * c[j] + i * math.tanh(pre(2 * H + j))
        o = sig(pre(3 * H + j) + p[2 * H + j] * cell)  # the output gate reads the new cell
        h_t.append(o * math.tanh(cell))
        c_t.append(cell)
    return torch.tensor(h_t, dtype=torch.float64), torch.tensor(c_t, dtype=torch.float64)


def test_peephole_reference_equals_a_hand_computation():
    H_in, H = 3, 4
    cell = nn.LSTMCell(H_in, H, dtype=torch.float64)
    w = [t.detach() for t in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    peephole = torch.randn(3 * H, dtype=torch.float64)
    x, h, c = torch.randn(2, H_in, dtype=torch.float64), torch.randn(2, H, dtype=torch.float64), \
        2 * torch.randn(2, H, dtype=torch.float64)
    batched = peephole_lstm_cell(x, h, c, *w, peephole)
    for row in range(2):
        want = by_hand_peephole(x[row], h[row], c[row], w[0], w[1], w[2] + w[3], peephole)
        one = peephole_lstm_cell(x[row], h[row], c[row], *w, peephole)
        for got in (one, (batched[0][row], batched[1][row])):
            torch.testing.assert_close(got[0], want[0])
            torch.testing.assert_close(got[1], want[1])
    no_bias = peephole_lstm_cell(x[0], h[0], c[0], w[0], w[1], None, None, peephole)
    want = by_hand_peephole(x[0], h[0], c[0], w[0], w[1], torch.zeros(4 * H, dtype=torch.float64), peephole)
    torch.testing.assert_close(no_bias[0], want[0])


def test_peephole_reference_is_nn_lstm_cell_without_peepholes_and_differs_with_them():
    cell = nn.LSTMCell(3, 5, dtype=torch.float64)
    x, h, c = (torch.randn(4, n, dtype=torch.float64) for n in (3, 5, 5))
    w = [t.detach() for t in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    ref_h, ref_c = cell(x, (h, c))
    for peephole in (None, torch.zeros(15, dtype=torch.float64)):
        h_t, c_t = peephole_lstm_cell(x, h, c, *w, peephole)
        torch.testing.assert_close(h_t, ref_h)
        torch.testing.assert_close(c_t, ref_c)
    h_t, c_t = peephole_lstm_cell(x, h, c, *w, torch.randn(15, dtype=torch.float64))
    assert (h_t - ref_h).abs().max() > 1e-3 and (c_t - ref_c).abs().max() > 1e-3


def test_hint_peephole_cell_is_the_reference_when_read_correctly():
    cell = nn.LSTMCell(3, 4, dtype=torch.float64)
    x, h, c = (torch.randn(2, n, dtype=torch.float64) for n in (3, 4, 4))
    w = {k: getattr(cell, k).detach() for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    peephole = torch.randn(12, dtype=torch.float64)
    for got, want in zip(peephole_cell(x, h, c, w, peephole),
                         peephole_lstm_cell(x, h, c, *w.values(), peephole)):
        torch.testing.assert_close(got, want)


def test_chrono_reference_gives_each_unit_its_time_scale():
    """At zero input and state the reference's gates are f = 1 - 1/T and i = 1/T, unit by unit."""
    case = check_set_chrono_bias.make_cases()[2]  # bidirectional
    T = case.tensors["timescales"]
    state = check_set_chrono_bias.run_reference(case)["state"]
    H = case.config["hidden_size"]
    for suffix in ("_l0", "_l0_reverse"):
        total = state["bias_ih" + suffix] + state["bias_hh" + suffix]  # the gates at x = h = 0
        torch.testing.assert_close(torch.sigmoid(total[H:2 * H]), 1 - 1 / T)
        torch.testing.assert_close(torch.sigmoid(total[:H]), 1 / T)
        before = state_of(case.tensors)["bias_ih" + suffix] + state_of(case.tensors)["bias_hh" + suffix]
        torch.testing.assert_close(total[2 * H:], before[2 * H:])
