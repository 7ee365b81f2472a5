"""The chapter 5 checks accept the reference solution and reject wrong answers.

Wrong answers are made by mutating the reference solution's own source (the
solution notebook), so every mutant is one plausible student mistake away from
a correct answer. A check that accepts any of them is a bug.
"""
from __future__ import annotations


import pytest
import torch
from torch import nn

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.chapters.lstm import (check_ifog_to_pytorch, check_lstm_forward, check_lstm_step,
                                       check_set_forget_bias, check_split_gates)
from rnn_by_hand.chapters.lstm.checks import blocks
from rnn_by_hand.chapters.lstm.models import GATES, ifog_lstm, lstm_layer
from conftest import REPO
from mutants import mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "05-lstm" / "lstm.ipynb"
ALL_CHECKS = (check_split_gates, check_lstm_step, check_lstm_forward, check_ifog_to_pytorch,
              check_set_forget_bias)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_cases_cover_what_the_exercises_promise():
    step = [c.config for c in check_lstm_step.make_cases()]
    assert {c["batched"] for c in step} == {True, False} and {c["bias"] for c in step} == {True, False}
    for hidden in (False, True):
        forward = [c.config for c in check_lstm_forward.make_cases(hidden=hidden)]
        assert any(c["proj_size"] for c in forward) and any(not c["proj_size"] for c in forward)
        assert any(c.get("batch_first") for c in forward) and any(not c.get("batched", True) for c in forward)
        assert {c["hx"] for c in forward} == {True, False}
    split = [c.config for c in check_split_gates.make_cases()]
    assert any(c.get("proj_size") for c in split)
    forget = [c.config for c in check_set_forget_bias.make_cases()]
    assert any(c["num_layers"] > 1 for c in forget) and any(c["bidirectional"] for c in forget)


# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
STEP_IFOG = ("i, f, g, o = gates.chunk", "i, f, o, g = gates.chunk")
STEP_GIFO = ("i, f, g, o = gates.chunk", "g, i, f, o = gates.chunk")
FORWARD_IFOG = ("i, f, g, o = (projected[t]", "i, f, o, g = (projected[t]")
FORWARD_GIFO = ("i, f, g, o = (projected[t]", "g, i, f, o = (projected[t]")
IN_ORDER = "PyTorch stacks them i, f, g, o"
MUTANTS = {
    # split_gates
    "split: order i, f, o, g": (check_split_gates, "split_gates", "W_i, W_f, W_g, W_o = stacked",
                                "W_i, W_f, W_o, W_g = stacked", "is PyTorch's o block"),
    "split: along the columns": (check_split_gates, "split_gates", "stacked.split(H)",
                                 "stacked.tensor_split(4, dim=-1)", "so split along dimension 0"),
    "split: every fourth row": (check_split_gates, "split_gates", "stacked.split(H)",
                                "stacked.reshape(H, 4, *stacked.shape[1:]).unbind(1)", "not every fourth row"),
    # lstm_step
    "step: gate order i, f, o, g": (check_lstm_step, "lstm_step", *STEP_IFOG, "CS231n's and fastbook's"),
    "step: gate order g, i, f, o": (check_lstm_step, "lstm_step", *STEP_GIFO, "as g, i, f, o; " + IN_ORDER),
    "step: only bias_ih": (check_lstm_step, "lstm_step", "gates + bias_ih + bias_hh", "gates + bias_ih",
                           "leaving out bias_hh"),
    "step: h and c swapped": (check_lstm_step, "lstm_step", "return h_t, c_t", "return c_t, h_t",
                              "h_t and c_t are swapped"),
    "step: tanh on the forget gate": (check_lstm_step, "lstm_step", "f = torch.sigmoid(f)", "f = torch.tanh(f)",
                                      "tanh on the forget gate f"),
    "step: tanh on the input gate": (check_lstm_step, "lstm_step", "i = torch.sigmoid(i)", "i = torch.tanh(i)",
                                     "tanh on the input gate i"),
    "step: sigmoid on g": (check_lstm_step, "lstm_step", "g = torch.tanh(g)", "g = torch.sigmoid(g)",
                           "sigmoid on the cell candidate g"),
    "step: output gate inside tanh": (check_lstm_step, "lstm_step", "h_t = o * torch.tanh(c_t)",
                                      "h_t = torch.tanh(o * c_t)", "h_t = tanh(o_t * c_t)"),
    "step: no tanh of c": (check_lstm_step, "lstm_step", "h_t = o * torch.tanh(c_t)", "h_t = o * c_t",
                           "h_t = o_t * c_t"),
    "step: float32 arithmetic": (check_lstm_step, "lstm_step", "return h_t, c_t",
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
    # ifog_to_pytorch
    "convert: blocks not reordered": (check_ifog_to_pytorch, "ifog_to_pytorch", "return torch.cat([i, f, g, o])",
                                      "return torch.cat([i, f, o, g])", "hold Wx's o block"),
    "convert: order g, i, f, o": (check_ifog_to_pytorch, "ifog_to_pytorch", "return torch.cat([i, f, g, o])",
                                  "return torch.cat([g, i, f, o])", "PyTorch's order is i, f, g, o"),
    "convert: Wx not transposed": (check_ifog_to_pytorch, "ifog_to_pytorch", "reorder(Wx.T)", "reorder(Wx.T).T",
                                   "so transpose them"),
    "convert: Wx split without transposing": (check_ifog_to_pytorch, "ifog_to_pytorch", "reorder(Wx.T)",
                                              "reorder(Wx)", "weight_ih_l0 looks untransposed"),
    "convert: b in both biases": (check_ifog_to_pytorch, "ifog_to_pytorch", "torch.zeros_like(b)}",
                                  "reorder(b)}", "b is counted twice"),
    "convert: b not reordered": (check_ifog_to_pytorch, "ifog_to_pytorch", '"bias_ih_l0": reorder(b),',
                                 '"bias_ih_l0": b,', "the bias b needs its blocks reordered"),
    # set_forget_bias
    "forget: both biases set": (check_set_forget_bias, "set_forget_bias", "parameter[H:2 * H] = 0.0",
                                "parameter[H:2 * H] = value", "both biases were set to 1"),
    "forget: input gate rows": (check_set_forget_bias, "set_forget_bias", "parameter[H:2 * H] = value",
                                "parameter[:H] = value", "not the forget gate"),
    "forget: added to the random bias": (check_set_forget_bias, "set_forget_bias",
                                         "parameter[H:2 * H] = value   # rows [H, 2H): the forget gate\n"
                                         '            elif name.startswith("bias_hh"):\n'
                                         "                parameter[H:2 * H] = 0.0",
                                         "parameter[H:2 * H] += value\n"
                                         "            elif False:\n                pass",
                                         "was added to the random initial biases"),
    "forget: first layer only": (check_set_forget_bias, "set_forget_bias", 'if name.startswith("bias_ih"):',
                                 'if name == "bias_ih_l0":', "bias_ih_l1"),
    "forget: forward direction only": (check_set_forget_bias, "set_forget_bias", 'if name.startswith("bias_ih"):',
                                       'if name.startswith("bias_ih") and "reverse" not in name:',
                                       "bias_ih_l0_reverse"),
    "forget: without no_grad": (check_set_forget_bias, "set_forget_bias", "with torch.no_grad():", "if True:",
                                "inside `with torch.no_grad():`"),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("lstm_step", "def lstm_step(x_t, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n"
                              "    cell = nn.LSTMCell(weight_ih.shape[1], weight_hh.shape[1], dtype=x_t.dtype)\n"
                              "    cell.load_state_dict(dict(weight_ih=weight_ih, weight_hh=weight_hh,\n"
                              "                              bias_ih=bias_ih, bias_hh=bias_hh))\n"
                              "    return cell(x_t, state)", ["lstm_step"])


def test_feedback_names_output_case_and_index(solution):
    def c_n_squeezed(*args, **kwargs):
        output, (h_n, c_n) = solution["lstm_forward"](*args, **kwargs)
        return output, (h_n, c_n[0])
    with pytest.raises(CheckFailure) as failure:
        check_lstm_forward(c_n_squeezed, quiet=True)
    message = str(failure.value)
    assert "lstm_forward does not match torch.nn.LSTM on case 1 of 4" in message
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
    (check_split_gates, lambda stacked: stacked.chunk(2), "should return a tuple of the four blocks"),
    (check_lstm_step, lambda *args: args[0], "should return a tuple (h_t, c_t), got a Tensor"),
    (check_ifog_to_pytorch, lambda Wx, Wh, b: [Wx, Wh, b], "should return a dict with the keys weight_ih_l0"),
    (check_ifog_to_pytorch, lambda Wx, Wh, b: {"weight_ih_l0": Wx.T}, "the dict has no key 'weight_hh_l0'"),
    (check_ifog_to_pytorch, lambda Wx, Wh, b: {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": b,
                                                "bias_hh_l0": b, "weight_hr_l0": b},
     "a key 'weight_hr_l0' that nn.LSTM(num_layers=1) does not have"),
    (check_set_forget_bias, lambda lstm, value: lstm.reset_parameters(), "weight_ih_l0 changed at row 0"),
    (check_set_forget_bias, lambda lstm, value: delattr(lstm, "bias_hh_l0"),
     "no longer those of the nn.LSTM it was given"),
])
def test_malformed_answers_get_clear_messages(check, student, words):
    with pytest.raises(CheckFailure) as failure:
        check(student, quiet=True)
    assert words in str(failure.value)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()

    def crashes(x_t, state, weight_ih, *rest):
        return x_t @ weight_ih, state[1]  # wrong orientation: a shape error inside torch
    for check in ALL_CHECKS:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)
    with pytest.raises(CheckFailure) as failure:
        check_lstm_step(crashes)
    message = str(failure.value)
    assert message.startswith("lstm_step raised RuntimeError: ")
    assert "return x_t @ weight_ih, state[1]" in message and failure.value.__cause__ is None


def test_in_place_edits_of_the_state_are_reported(solution):
    def edits_c_prev(x_t, state, *weights):
        h_t, c_t = solution["lstm_step"](x_t, state, *weights)
        state[1].zero_()
        return h_t, c_t

    def edits_h_0(input, hx, *weights, **kwargs):
        result = solution["lstm_forward"](input, hx, *weights, **kwargs)
        if hx is not None:
            hx[0].zero_()
        return result
    with pytest.raises(CheckFailure, match="changed h_prev or c_prev in place"):
        check_lstm_step(edits_c_prev)
    with pytest.raises(CheckFailure, match="changed h_0 or c_0 in place"):
        check_lstm_forward(edits_h_0)


def test_registry_lists_every_chapter_five_check():
    assert {f"05-lstm/{name}" for name in ("split_gates", "lstm_step", "lstm_forward", "ifog_to_pytorch",
                                           "set_forget_bias")} <= set(CHECKS)


def test_reference_really_is_torch_nn():
    """The references come from the modules: a changed weight changes the expected output."""
    case = check_lstm_forward.make_cases()[1]  # the case with a projection
    t = case.tensors
    lstm = nn.LSTM(3, 5, proj_size=2, batch_first=True, dtype=torch.float64)
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


def test_ifog_reference_is_an_lstm_in_another_layout():
    """The autograder's i, f, o, g network equals nn.LSTM once its blocks are moved, and not before."""
    H_in, H, L, N = 3, 4, 5, 2
    lstm = nn.LSTM(H_in, H, dtype=torch.float64)
    x = torch.randn(L, N, H_in, dtype=torch.float64)
    h_0, c_0 = torch.randn(1, N, H, dtype=torch.float64), torch.randn(1, N, H, dtype=torch.float64)

    def to_ifog(w):  # i, f, g, o -> i, f, o, g along dimension 0
        i, f, g, o = w.detach().split(H)
        return torch.cat([i, f, o, g])
    Wx, Wh = to_ifog(lstm.weight_ih_l0).T, to_ifog(lstm.weight_hh_l0).T
    b = to_ifog(lstm.bias_ih_l0 + lstm.bias_hh_l0)
    output, h_L, c_L = ifog_lstm(x, h_0[0], c_0[0], Wx, Wh, b)
    ref_output, (ref_h, ref_c) = lstm(x, (h_0, c_0))
    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(c_L, ref_c[0])
    unconverted, _, _ = ifog_lstm(x, h_0[0], c_0[0], lstm.weight_ih_l0.detach().T,
                                  lstm.weight_hh_l0.detach().T, (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach())
    assert (unconverted - ref_output).abs().max() > 1e-3


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
    (check_lstm_step, lambda x_t, state, w_ih, w_hh, b_ih=None, b_hh=None: _cell(x_t, state, w_ih, w_hh, b_ih, b_hh)),
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
