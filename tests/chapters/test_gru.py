"""The chapter 6 checks accept the reference solution and reject wrong answers.

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
from rnn_by_hand.chapters.gru import (check_bigru_forward, check_count_parameters, check_gru_forward,
                                      check_keras_gru_to_pytorch)
from rnn_by_hand.chapters.gru.models import BIGRU_MISTAKES, bigru_layer, count_formula, gru_stack, keras_gru_layer
from rnn_by_hand.checking import state_of
from conftest import REPO
from mutants import assert_partial_credit, mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "06-gru" / "gru.ipynb"
ALL_CHECKS = (check_gru_forward, check_bigru_forward, check_keras_gru_to_pytorch, check_count_parameters)
DTYPE = torch.float64


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_cases_cover_what_the_exercises_promise():
    for hidden in (False, True):
        bi = [c.config for c in check_bigru_forward.make_cases(hidden=hidden)]
        assert {c["batch_first"] for c in bi} == {c["h_0"] for c in bi} == {c["bias"] for c in bi} == {True, False}
        assert any(c["L"] > 1 for c in bi)
        forward = [c.config for c in check_gru_forward.make_cases(hidden=hidden)]
        assert any(c["num_layers"] == 2 for c in forward)
        assert any(c.get("batch_first") for c in forward) and any(not c.get("batch_first") for c in forward)
        assert {c["h_0"] for c in forward} == {True, False}
        assert any(c["num_layers"] > 1 and c["input_size"] == c["hidden_size"] for c in forward)
        counts = [c.config for c in check_count_parameters.make_cases(hidden=hidden)]
        assert len(counts) >= 20 and {c["mode"] for c in counts} == {"RNN", "GRU", "LSTM"}
        assert any(c["proj_size"] for c in counts) and any(not c["bias"] for c in counts)
        assert any(c["bidirectional"] and c["num_layers"] > 1 for c in counts)
        assert all(c["mode"] == "LSTM" for c in counts if c["proj_size"])
    assert {c["bias"] for c in (c.config for c in check_keras_gru_to_pytorch.make_cases())} == {True, False}


# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
PAPER = "as Cho et al. (2014) write it"
SWAPPED_Z = "h_t = z * n + (1 - z) * h_prev"
OUTSIDE = "r * (W_hn h) + b_hn"
FORWARD_CHUNKS = "gi_r, gi_z, gi_n = gi[t].chunk(3, dim=-1)     # (N, H) each, order r, z, n\n            gh_r, gh_z, gh_n"
MUTANTS = {
    # gru_forward: the step's mistakes, and the wiring of the layers
    "forward: paper's form": (check_gru_forward, "gru_forward", "n = torch.tanh(gi_n + r * gh_n)",
                              "n = torch.tanh(gi_n + (r * h) @ weight_hh[2 * H:].T"
                              " + (0 if bias_hh is None else bias_hh[2 * H:]))", PAPER),
    "forward: z and 1 - z swapped": (check_gru_forward, "gru_forward", "h = (1 - z) * n + z * h",
                                     "h = z * n + (1 - z) * h", SWAPPED_Z),
    "forward: gate order z, r, n": (check_gru_forward, "gru_forward", FORWARD_CHUNKS,
                                    FORWARD_CHUNKS.replace("gi_r, gi_z", "gi_z, gi_r").replace("gh_r, gh_z", "gh_z, gh_r"),
                                    "reading the three stacked blocks as z, r, n"),
    "forward: gate order r, n, z": (check_gru_forward, "gru_forward", FORWARD_CHUNKS,
                                    FORWARD_CHUNKS.replace("gi_z, gi_n", "gi_n, gi_z").replace("gh_z, gh_n", "gh_n, gh_z"),
                                    "reading the three stacked blocks as r, n, z"),
    "forward: only bias_ih": (check_gru_forward, "gru_forward", "gh = gh + bias_hh", "gh = gh",
                              "leaving out bias_hh"),
    "forward: r outside b_hn": (check_gru_forward, "gru_forward", "n = torch.tanh(gi_n + r * gh_n)",
                                "n = torch.tanh(gi_n + r * gh_n + (1 - r) * (0 if bias_hh is None "
                                "else bias_hh[2 * H:]))", OUTSIDE),
    "forward: tanh on z": (check_gru_forward, "gru_forward", "z = torch.sigmoid(gi_z + gh_z)",
                           "z = torch.tanh(gi_z + gh_z)", "tanh on the update gate z"),
    "forward: sigmoid on n": (check_gru_forward, "gru_forward", "n = torch.tanh(gi_n + r * gh_n)",
                              "n = torch.sigmoid(gi_n + r * gh_n)", "the sigmoid on the new gate n"),
    "forward: float32 arithmetic": (check_gru_forward, "gru_forward", "h = (1 - z) * n + z * h",
                                    "h = ((1 - z) * n + z * h).float().double()", "float32"),
    "forward: every layer reads the input": (check_gru_forward, "gru_forward", "gi = layer_input @ weight_ih.T",
                                             "gi = x @ weight_ih.T", "the outputs h_t of layer k - 1"),
    "forward: layers not chained": (check_gru_forward, "gru_forward",
                                    "layer_input = torch.stack(outputs)", "outputs = torch.stack(outputs)",
                                    "the outputs h_t of layer k - 1"),
    "forward: every layer starts from h_0[0]": (check_gru_forward, "gru_forward", "h = h_0[k]", "h = h_0[0]",
                                                "its own initial state h_0[k]"),
    "forward: h_n of the top layer only": (check_gru_forward, "gru_forward",
                                           "output, h_n = layer_input, torch.stack(finals)",
                                           "output, h_n = layer_input, finals[-1].unsqueeze(0)",
                                           "num_layers * num_directions = 2 final states"),
    "forward: h_n layers reversed": (check_gru_forward, "gru_forward",
                                     "output, h_n = layer_input, torch.stack(finals)",
                                     "output, h_n = layer_input, torch.stack(finals[::-1])",
                                     "in reverse order"),
    "forward: h_0 ignored": (check_gru_forward, "gru_forward", "if h_0 is None:", "if True:",
                             "starting from zeros"),
    "forward: batch_first output left time-major": (check_gru_forward, "gru_forward",
                                                    "output = output.transpose(0, 1)", "pass",
                                                    "because batch_first=True"),
    # bigru_forward
    "bi: halves swapped": (check_bigru_forward, "bigru_forward", "torch.cat([out_f, out_b.flip(0)], dim=-1)",
                           "torch.cat([out_b.flip(0), out_f], dim=-1)", "output[..., :H] is the forward direction"),
    "bi: backward reads forwards": (check_bigru_forward, "bigru_forward", "gru_forward(x.flip(0), h_0[1:]",
                                    "gru_forward(x, h_0[1:]", "reads it from first to last"),
    "bi: backward never flipped": (check_bigru_forward, "bigru_forward",
                                   "out_b, h_b = gru_forward(x.flip(0), h_0[1:], backward, num_layers=1)",
                                   "out_b, h_b = gru_forward(x, h_0[1:], backward, num_layers=1)\n"
                                   "    out_b = out_b.flip(0)", "reads it from first to last"),
    "bi: backward states not flipped back": (check_bigru_forward, "bigru_forward", "[out_f, out_b.flip(0)]",
                                             "[out_f, out_b]", "flip its states back into time order"),
    "bi: h_n of the backward direction at the last step": (check_bigru_forward, "bigru_forward",
                                                           "return output, torch.cat([h_f, h_b])",
                                                           "return output, torch.cat([h_f, out_b.flip(0)[-1:]])",
                                                           "sits at time step 0 of the output"),
    "bi: h_n rows swapped": (check_bigru_forward, "bigru_forward", "return output, torch.cat([h_f, h_b])",
                             "return output, torch.cat([h_b, h_f])", "the rows of your h_n are swapped"),
    "bi: forward weights twice": (check_bigru_forward, "bigru_forward", "h_0[1:], backward, num_layers=1",
                                  "h_0[1:], forward, num_layers=1", "ending in _l0_reverse"),
    "bi: both from h_0[0]": (check_bigru_forward, "bigru_forward", "h_0[1:], backward", "h_0[:1], backward",
                             "the backward direction starts from h_0[1]"),
    "bi: h_0 ignored": (check_bigru_forward, "bigru_forward", "if h_0 is None:", "if True:",
                        "starting both directions from zeros"),
    "bi: one direction's output": (check_bigru_forward, "bigru_forward", "torch.cat([out_f, out_b.flip(0)], dim=-1)",
                                   "out_f", "concatenates the forward and backward states along its last"),
    "bi: batch_first output left time-major": (check_bigru_forward, "bigru_forward",
                                               "output = output.transpose(0, 1)", "pass", "because batch_first=True"),
    # keras_gru_to_pytorch
    "keras: z and r not reordered": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch", "return torch.cat([r, z, h])",
                                     "return torch.cat([z, r, h])", "hold kernel's z block"),
    "keras: 1 - z": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch", "return torch.cat([r, z, h])",
                     "return torch.cat([r, -z, h])", "as if Keras's z were PyTorch's 1 - z"),
    "keras: kernel not transposed": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch", "reorder(kernel.T),",
                                     "reorder(kernel.T).T,", "so transpose them"),
    "keras: recurrent kernel split untransposed": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch",
                                                   "reorder(recurrent_kernel.T)}", "reorder(recurrent_kernel)}",
                                                   "transpose it to (3H, rows) before splitting"),
    "keras: biases merged": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch",
                             'state["bias_ih_l0"] = reorder(bias[0])              # (3H,): the input bias\n'
                             '        state["bias_hh_l0"] = reorder(bias[1])',
                             'state["bias_ih_l0"] = reorder(bias[0] + bias[1])\n'
                             '        state["bias_hh_l0"] = torch.zeros_like(bias[1])',
                             "in the new gate r multiplies the recurrent bias"),
    "keras: biases swapped": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch",
                              'state["bias_ih_l0"] = reorder(bias[0])              # (3H,): the input bias\n'
                              '        state["bias_hh_l0"] = reorder(bias[1])',
                              'state["bias_ih_l0"] = reorder(bias[1])\n'
                              '        state["bias_hh_l0"] = reorder(bias[0])',
                              "your two biases are swapped"),
    "keras: biases not reordered": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch",
                                    'state["bias_ih_l0"] = reorder(bias[0])', 'state["bias_ih_l0"] = bias[0]',
                                    "the biases need their blocks reordered"),
    "keras: bias as one tensor": (check_keras_gru_to_pytorch, "keras_gru_to_pytorch",
                                  'state["bias_ih_l0"] = reorder(bias[0])', 'state["bias_ih_l0"] = bias',
                                  "bias[0] is Keras's input bias (bias_ih_l0)"),
    # count_parameters
    "count: one bias": (check_count_parameters, "count_parameters", "per_direction += 2 * blocks * hidden_size",
                        "per_direction += blocks * hidden_size", "a single bias vector"),
    "count: no bidirectional doubling of layer k > 0": (check_count_parameters, "count_parameters",
                                                        "else D * H_out", "else H_out",
                                                        "reads both directions' outputs concatenated"),
    "count: layer k > 0 reads input_size": (check_count_parameters, "count_parameters",
                                            "else D * H_out", "else input_size", "reading input_size features"),
    "count: GRU with four blocks": (check_count_parameters, "count_parameters", '"GRU": 3', '"GRU": 4',
                                    "4 gate block(s) per weight for nn.GRU"),
    "count: LSTM with three blocks": (check_count_parameters, "count_parameters", '"LSTM": 4', '"LSTM": 3',
                                      "3 gate block(s) per weight for nn.LSTM"),
    "count: one direction": (check_count_parameters, "count_parameters", "total += D * per_direction",
                             "total += per_direction", "counting one direction"),
    "count: bias=False ignored": (check_count_parameters, "count_parameters", "if bias:", "if True:",
                                  "although bias=False"),
    "count: weight_hr left out": (check_count_parameters, "count_parameters",
                                  "per_direction += proj_size * hidden_size", "pass", "leaves out weight_hr"),
    "count: float division": (check_count_parameters, "count_parameters", "return total",
                              "return total / 1", "should return an int, got a float"),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("gru_forward",
                  "def gru_forward(input, h_0, params, num_layers, batch_first=False):\n"
                  "    gru = nn.GRU(params['weight_ih_l0'].shape[1], params['weight_hh_l0'].shape[1], num_layers,\n"
                  "                 bias='bias_ih_l0' in params, batch_first=batch_first, dtype=input.dtype)\n"
                  "    gru.load_state_dict(params)\n"
                  "    return gru(input, h_0)",
                  ["gru_forward", "bigru_forward"])  # the solution's bigru_forward calls gru_forward


@pytest.mark.parametrize("old, new, words", [
    ("gi = layer_input @ weight_ih.T", "gi = x @ weight_ih.T", "your layer k > 0 reads the input of the network"),
    ("h = h_0[k]", "h = h_0[0]", "every layer of yours starts from h_0[0]"),
    ("        finals.append(h)\n    output, h_n = layer_input,",
     "        finals.append(h)\n        first = layer_input if k == 0 else first\n    output, h_n = first,",
     "your output holds the states of the first layer"),
])
def test_wiring_mistakes_are_named_by_value_when_the_shapes_allow(old, new, words):
    """With input_size == hidden_size a miswired stack runs; the hint still names the mistake."""
    namespace = student_namespace(NOTEBOOK, mutation=("gru_forward", old, new))
    case = check_gru_forward.make_cases()[2]  # unbatched, two layers, input_size == hidden_size == 4
    assert case.config["input_size"] == case.config["hidden_size"] and case.config["num_layers"] == 2
    actual = check_gru_forward.run_student_guarded(namespace["gru_forward"], case)
    assert check_gru_forward.compare(case, check_gru_forward.run_reference(case), actual)
    assert words in check_gru_forward.hint(case, actual)


def test_feedback_names_output_case_and_index(solution):
    def h_n_squeezed(*args, **kwargs):
        output, h_n = solution["gru_forward"](*args, **kwargs)
        return output, h_n[-1]
    with pytest.raises(CheckFailure) as failure:
        check_gru_forward(h_n_squeezed, quiet=True)
    message = str(failure.value)
    assert "gru_forward does not match torch.nn.GRU on case 1 of 4" in message
    assert "h_n has shape (3, 6), expected (2, 3, 6), laid out as (num_layers, N, H)" in message


def test_first_differing_time_step_is_reported(solution):
    def late_error(*args, **kwargs):
        output, h_n = solution["gru_forward"](*args, **kwargs)
        output = output.clone()
        output[3] += 1.0  # time step 3 in the time-major case
        return output, h_n
    with pytest.raises(CheckFailure, match=r"output\[t=3, n=0, h=0\] is .* expected .*largest error 1"):
        check_gru_forward(late_error, quiet=True)


def test_count_feedback_names_the_module_and_the_difference(solution):
    def one_more(*args, **kwargs):
        return solution["count_parameters"](*args, **kwargs) + 1
    with pytest.raises(CheckFailure) as failure:
        check_count_parameters(one_more, quiet=True)
    message = str(failure.value)
    assert "on case 1 of 24 (mode='GRU', input_size=4, hidden_size=3" in message
    assert "the count is 82, expected 81, the number of parameters of this nn.GRU (+1)" in message


@pytest.mark.parametrize("result, words", [
    (lambda out, h_n: out, "should return a tuple (output, h_n), got a Tensor"),
    (lambda out, h_n: (out, h_n, h_n), "should return a tuple (output, h_n), got a tuple of 3"),
    (lambda out, h_n: (out, h_n.numpy()), "h_n should be a torch.Tensor, got a numpy.ndarray"),
    (lambda out, h_n: (out.float(), h_n), "output has dtype torch.float32, expected torch.float64"),
    (lambda out, h_n: (out * float("nan"), h_n), "not a finite number"),
])
def test_wrong_return_values_get_clear_messages(solution, result, words):
    def student(*args, **kwargs):
        return result(*solution["gru_forward"](*args, **kwargs))
    with pytest.raises(CheckFailure) as failure:
        check_gru_forward(student, quiet=True)
    assert words in str(failure.value)


@pytest.mark.parametrize("check, student, words", [
    (check_keras_gru_to_pytorch, lambda *args: [args[0]], "should return a dict with the keys weight_ih_l0"),
    (check_bigru_forward, lambda *args, **kwargs: args[0], "should return a tuple (output, h_n), got a Tensor"),
    (check_keras_gru_to_pytorch, lambda kernel, recurrent_kernel, bias: {"weight_ih_l0": kernel.T},
     "the dict has no key 'weight_hh_l0'"),
    (check_keras_gru_to_pytorch, lambda kernel, recurrent_kernel, bias: {
        "weight_ih_l0": kernel.T, "weight_hh_l0": recurrent_kernel.T, "bias_ih_l0": None, "bias_hh_l0": None},
     "bias_ih_l0 should be a torch.Tensor, got None"),
    (check_count_parameters, lambda *args, **kwargs: "72", "should return an int, got a str"),
    (check_count_parameters, lambda *args, **kwargs: torch.tensor(81), None),  # an integer tensor is an int
    (check_count_parameters, lambda *args, **kwargs: True, "should return an int, got a bool"),
])
def test_malformed_answers_get_clear_messages(check, student, words):
    with pytest.raises(CheckFailure) as failure:
        check(student, quiet=True)
    if words is not None:
        assert words in str(failure.value)
    else:  # the first case's count is 81: accepted, then a later case fails on its value
        assert "case 2 of 24" in str(failure.value) and "the count is 81" in str(failure.value)


def _batches_only(solution):
    def gru_forward(input, h_0, params, num_layers, batch_first=False):
        if input.dim() == 2:
            raise ValueError("only batches")
        return solution["gru_forward"](input, h_0, params, num_layers, batch_first)
    return gru_forward


def _time_major_only(solution):
    def bigru_forward(input, h_0, params, batch_first=False):
        return solution["bigru_forward"](input, h_0, params)  # batch_first ignored
    return bigru_forward


def _biases_merged(solution):
    def keras_gru_to_pytorch(kernel, recurrent_kernel, bias=None):
        merged = None if bias is None else torch.stack([bias[0] + bias[1], torch.zeros_like(bias[1])])
        return solution["keras_gru_to_pytorch"](kernel, recurrent_kernel, merged)
    return keras_gru_to_pytorch


@pytest.mark.parametrize("check, wrong, share, missing", [
    (check_gru_forward, _batches_only, "3 of 4", "unbatched input"),
    (check_bigru_forward, _time_major_only, "2 of 3", "batch_first"),
    (check_keras_gru_to_pytorch, _biases_merged, "1 of 2", "with bias"),
])
def test_an_answer_failing_one_part_earns_the_others(solution, check, wrong, share, missing):
    """Each part of the exercise is earned on its own: one missing feature costs its share only."""
    assert_partial_credit(check, wrong(solution), share, (missing,))


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()

    def crashes(kernel, recurrent_kernel, bias):
        return {"weight_ih_l0": kernel @ recurrent_kernel}  # a shape error inside torch
    for check in ALL_CHECKS:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)
    with pytest.raises(CheckFailure) as failure:
        check_keras_gru_to_pytorch(crashes)
    message = str(failure.value)
    assert message.startswith("keras_gru_to_pytorch raised RuntimeError: ")
    assert "kernel @ recurrent_kernel" in message and failure.value.__cause__ is None


def test_in_place_edits_are_reported(solution):
    def edits_kernel(kernel, recurrent_kernel, bias):
        state = solution["keras_gru_to_pytorch"](kernel, recurrent_kernel, bias)
        kernel.zero_()
        return state

    def edits_params(input, h_0, params, num_layers, batch_first=False):
        result = solution["gru_forward"](input, h_0, params, num_layers, batch_first)
        params["weight_hh_l0"].zero_()
        return result

    def pops_params(input, h_0, params, num_layers, batch_first=False):
        result = solution["gru_forward"](input, h_0, params, num_layers, batch_first)
        params.pop("weight_hh_l0")
        return result
    with pytest.raises(CheckFailure, match="changed one of its input tensors in place"):
        check_keras_gru_to_pytorch(edits_kernel)
    with pytest.raises(CheckFailure, match=r"changed the params dict it was given \(weight_hh_l0\)"):
        check_gru_forward(edits_params)
    with pytest.raises(CheckFailure, match=r"changed the params dict it was given \(its keys\)"):
        check_gru_forward(pops_params)

    def edits_reverse(input, h_0, params, batch_first=False):
        result = solution["bigru_forward"](input, h_0, params, batch_first)
        params["bias_hh_l0_reverse"].zero_()
        return result
    with pytest.raises(CheckFailure, match=r"changed the params dict it was given \(bias_hh_l0_reverse\)"):
        check_bigru_forward(edits_reverse)


def test_registry_lists_every_chapter_six_check():
    assert {f"06-gru/{name}" for name in ("gru_forward", "bigru_forward", "keras_gru_to_pytorch",
                                          "count_parameters")} <= set(CHECKS)
    # the page shows both (cho_gru_step is the 'paper' branch of its gru_form)
    assert not {"06-gru/gru_step", "06-gru/cho_gru_step"} & set(CHECKS)


def test_reference_really_is_torch_nn():
    """The references come from the modules: a changed weight changes the expected output."""
    case = check_gru_forward.make_cases()[1]  # two layers, batch_first, h_0 None
    t = case.tensors
    gru = nn.GRU(3, 5, num_layers=2, batch_first=True, dtype=DTYPE)
    gru.load_state_dict(state_of(t))
    output, h_n = gru(t["input"])
    expected = check_gru_forward.run_reference(case)
    assert torch.equal(expected["output"], output) and torch.equal(expected["h_n"], h_n)
    t["state.bias_hh_l1"] = t["state.bias_hh_l1"] * 2
    assert not torch.allclose(check_gru_forward.run_reference(case)["output"], output)
    count_case = check_count_parameters.make_cases()[3]  # the LSTM with a projection
    lstm = nn.LSTM(6, 8, num_layers=2, bidirectional=True, proj_size=3)
    assert check_count_parameters.run_reference(count_case)["count"] == sum(p.numel() for p in lstm.parameters())


def test_answers_that_call_torch_nn_are_rejected():
    def bidirectional(input, h_0, params, batch_first=False):
        gru = nn.GRU(params["weight_ih_l0"].shape[1], params["weight_hh_l0"].shape[1], bias="bias_ih_l0" in params,
                     batch_first=batch_first, bidirectional=True, dtype=input.dtype)
        gru.load_state_dict(params)
        return gru(input, h_0)

    def module(input, h_0, params, num_layers, batch_first=False):
        gru = nn.GRU(params["weight_ih_l0"].shape[1], params["weight_hh_l0"].shape[1], num_layers,
                     bias="bias_ih_l0" in params, batch_first=batch_first, dtype=input.dtype)
        gru.load_state_dict(params)
        return gru(input, h_0)
    for check, student in ((check_bigru_forward, bidirectional), (check_gru_forward, module)):
        with pytest.raises(CheckFailure, match="is not written by hand: it calls torch's built-in gru"):
            check(student, quiet=True)
    # the trap is removed afterwards: torch.nn works again for everyone else
    nn.GRU(2, 3)(torch.randn(4, 1, 2))
    nn.GRUCell(2, 3)(torch.randn(1, 2))


# -- the autograder's own GRUs ----------------------------------------------------------

def to_keras(gru: nn.GRU):
    """An nn.GRU's weights in Keras's layout, moved by hand the other way round: columns z, r, h
    (h is PyTorch's n), kernels used as x @ kernel, the two biases as the rows of one tensor."""
    H = gru.hidden_size

    def columns(stacked):  # PyTorch's r, z, n rows -> Keras's z, r, h
        r, z, n = stacked.detach().split(H)
        return torch.cat([z, r, n])
    kernel, recurrent_kernel = columns(gru.weight_ih_l0).T, columns(gru.weight_hh_l0).T  # (H_in, 3H), (H, 3H)
    bias = torch.stack([columns(gru.bias_ih_l0), columns(gru.bias_hh_l0)]) if gru.bias else None
    return kernel, recurrent_kernel, bias


@pytest.mark.parametrize("bias", [True, False])
def test_keras_reference_is_nn_gru_in_another_layout(bias):
    """The autograder's Keras GRU equals nn.GRU once the weights are moved, and not before; merging
    its two biases is another function, because r multiplies the recurrent one."""
    H_in, H, L, N = 3, 4, 5, 2
    gru = nn.GRU(H_in, H, bias=bias, batch_first=True, dtype=DTYPE)
    x, h_0 = torch.randn(N, L, H_in, dtype=DTYPE), torch.randn(1, N, H, dtype=DTYPE)
    kernel, recurrent_kernel, b = to_keras(gru)
    output, h_L = keras_gru_layer(x, h_0[0], kernel, recurrent_kernel, b)
    with torch.no_grad():
        ref_output, ref_h_n = gru(x, h_0)
    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_L, ref_h_n[0])
    as_is = torch.stack([gru.bias_ih_l0.detach(), gru.bias_hh_l0.detach()]) if bias else None  # r, z, n read as z, r, h
    unconverted, _ = keras_gru_layer(x, h_0[0], gru.weight_ih_l0.detach().T, gru.weight_hh_l0.detach().T, as_is)
    assert (unconverted - ref_output).abs().max() > 1e-3
    if bias:
        merged = torch.stack([b[0] + b[1], torch.zeros_like(b[1])])
        assert (keras_gru_layer(x, h_0[0], kernel, recurrent_kernel, merged)[0] - ref_output).abs().max() > 1e-3


def test_keras_reference_equals_a_hand_computation():
    """One unbatched step of the Keras GRU, unit by unit with Python sums and math."""
    H_in, H = 2, 3
    kernel, recurrent_kernel = torch.randn(H_in, 3 * H, dtype=DTYPE), torch.randn(H, 3 * H, dtype=DTYPE)
    bias = torch.randn(2, 3 * H, dtype=DTYPE)
    x, h = torch.randn(H_in, dtype=DTYPE), torch.randn(H, dtype=DTYPE)
    _, h_1 = keras_gru_layer(x[None, None], h[None], kernel, recurrent_kernel, bias)
    W, U, b, c = kernel.tolist(), recurrent_kernel.tolist(), bias[0].tolist(), bias[1].tolist()
    xs, hs = x.tolist(), h.tolist()

    def sig(a):
        return 1 / (1 + math.exp(-a))

    def side(weights, v, col):  # v @ weights[:, col]
        return sum(v[k] * weights[k][col] for k in range(len(v)))
    for u in range(H):  # columns: z at u, r at H + u, h at 2H + u
        z = sig(side(W, xs, u) + b[u] + side(U, hs, u) + c[u])
        r = sig(side(W, xs, H + u) + b[H + u] + side(U, hs, H + u) + c[H + u])
        candidate = math.tanh(side(W, xs, 2 * H + u) + b[2 * H + u] + r * (side(U, hs, 2 * H + u) + c[2 * H + u]))
        assert math.isclose(h_1[0, u].item(), z * hs[u] + (1 - z) * candidate, rel_tol=1e-12)


def test_hint_gru_agrees_with_nn_gru_when_read_correctly():
    """The hand-written stack used for hints is nn.GRU when no mistake is asked for."""
    gru = nn.GRU(3, 5, num_layers=3, dtype=DTYPE)
    x, h_0 = torch.randn(4, 2, 3, dtype=DTYPE), torch.randn(3, 2, 5, dtype=DTYPE)
    params = {k: v.detach() for k, v in gru.state_dict().items()}
    output, h_n = gru_stack(x, h_0, params, 3)
    ref_output, ref_h_n = gru(x, h_0)
    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_n, ref_h_n)


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
def test_count_formula_is_the_real_count(mode):
    """The formula the hints vary is exact, on real (CPU) modules, for every flag."""
    module = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}[mode]
    for num_layers in (1, 3):
        for bias in (True, False):
            for bidirectional in (True, False):
                for proj_size in ((0, 2) if mode == "LSTM" else (0,)):
                    args = dict(num_layers=num_layers, bias=bias, bidirectional=bidirectional)
                    args |= dict(proj_size=proj_size) if mode == "LSTM" else {}
                    real = sum(p.numel() for p in module(4, 5, **args).parameters())
                    assert count_formula(mode, 4, 5, **args) == real, args


def test_hint_bigru_agrees_with_nn_gru_when_read_correctly():
    """The hand-written bidirectional layer used for hints is nn.GRU(bidirectional=True) without a mistake,
    and each named mistake is another function."""
    gru = nn.GRU(3, 4, bidirectional=True, dtype=DTYPE)
    x, h_0 = torch.randn(5, 2, 3, dtype=DTYPE), torch.randn(2, 2, 4, dtype=DTYPE)
    params = {k: v.detach() for k, v in gru.state_dict().items()}
    ref_output, ref_h_n = gru(x, h_0)
    output, h_n = bigru_layer(x, h_0, params)
    torch.testing.assert_close(output, ref_output)
    torch.testing.assert_close(h_n, ref_h_n)
    for mistake, _, _ in BIGRU_MISTAKES:
        wrong = bigru_layer(x, h_0, params, mistake)
        assert not (torch.allclose(wrong[0], ref_output) and torch.allclose(wrong[1], ref_h_n)), mistake
