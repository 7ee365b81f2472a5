"""The chapter 3 checks accept the reference solution and reject wrong answers.

Wrong answers are mutants of the reference solution's own source (the solution
notebook), each one plausible mistake away from a correct answer; every check
must reject at least three of them with feedback that names the mistake.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.checking import ForbiddenCall
from rnn_by_hand.chapters.rnn import (check_birnn_forward, check_mean_valid_output, check_rnn_init_bound,
                                      check_rnn_shapes)
from rnn_by_hand.chapters.rnn.checks import NoForwardRNN
from rnn_by_hand.chapters.rnn.models import by_hand
from rnn_by_hand.checking import state_of
from conftest import REPO
from mutants import mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "03-rnn" / "rnn.ipynb"
ALL = (check_rnn_shapes, check_rnn_init_bound, check_birnn_forward, check_mean_valid_output)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_shape_cases_cover_every_layout():
    for hidden in (False, True):
        configs = [c.config for c in check_rnn_shapes.make_cases(hidden=hidden)]
        assert len(configs) >= 20
        assert any(len(c["input_shape"]) == 2 for c in configs), "no unbatched input"
        assert any(len(c["input_shape"]) == 3 and c["batch_first"] for c in configs), "no batch_first"
        assert any(len(c["input_shape"]) == 3 and not c["batch_first"] for c in configs)
        assert any(c["bidirectional"] and c["num_layers"] > 1 for c in configs)
        assert any(c["dropout"] > 0 for c in configs)


# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
MUTANTS = {
    # rnn_shapes
    "shapes: h_n batch-first": (check_rnn_shapes, "rnn_shapes", "h_n_shape = (D * num_layers, N, hidden_size)",
                                "h_n_shape = (N, D * num_layers, hidden_size) if batch_first "
                                "else (D * num_layers, N, hidden_size)",
                                "not (N, num_layers, H) as some tutorials write"),
    "shapes: directions left out": (check_rnn_shapes, "rnn_shapes", "D = 2 if bidirectional else 1", "D = 1",
                                    "both directions side by side"),
    "shapes: h_n one row per layer": (check_rnn_shapes, "rnn_shapes",
                                      "h_n_shape = (D * num_layers, N, hidden_size)",
                                      "h_n_shape = (num_layers, N, hidden_size)", "AND per direction"),
    "shapes: unbatched keeps a batch of 1": (check_rnn_shapes, "rnn_shapes", "(D * num_layers, hidden_size)",
                                             "(D * num_layers, 1, hidden_size)",
                                             "no batch dimension of size 1"),
    "shapes: output ignores batch_first": (check_rnn_shapes, "rnn_shapes",
                                           "output_shape = (N, L, D * hidden_size) if batch_first else ",
                                           "output_shape = ", "output follows the input's layout"),
    "shapes: output grows with layers": (check_rnn_shapes, "rnn_shapes", "else (L, N, D * hidden_size)",
                                         "else (L, N, D * hidden_size * num_layers)",
                                         "does not depend on num_layers"),
    "shapes: runs nn.RNN to read them off": (check_rnn_shapes, "rnn_shapes", "    D = 2 if bidirectional else 1\n",
                                             "    rnn = nn.RNN(input_size, hidden_size, num_layers, "
                                             "bidirectional=bidirectional, batch_first=batch_first)\n"
                                             "    output, h_n = rnn(torch.zeros(input_shape))\n"
                                             "    return tuple(output.shape), tuple(h_n.shape)\n",
                                             "without running nn.RNN"),
    # rnn_init_bound
    "bound: 1/H": (check_rnn_init_bound, "rnn_init_bound", "return 1 / math.sqrt(hidden_size)",
                   "return 1 / hidden_size", "the square root is lost"),
    "bound: fan-in": (check_rnn_init_bound, "rnn_init_bound", "return 1 / math.sqrt(hidden_size)",
                      "return 1 / math.sqrt(input_size)", "not on input_size"),
    "bound: Xavier": (check_rnn_init_bound, "rnn_init_bound", "return 1 / math.sqrt(hidden_size)",
                      "return math.sqrt(6 / (input_size + hidden_size))", "Xavier"),
    "bound: measured on one module": (check_rnn_init_bound, "rnn_init_bound", "return 1 / math.sqrt(hidden_size)",
                                      "return max(p.abs().max().item() for p in "
                                      "nn.RNN(input_size, hidden_size).parameters())",
                                      "a little inside the bound"),
    # birnn_forward
    "birnn: halves swapped": (check_birnn_forward, "birnn_forward", "x = torch.cat(halves, dim=-1)",
                              "x = torch.cat(halves[::-1], dim=-1)", "halves are swapped"),
    "birnn: backward run forwards": (check_birnn_forward, "birnn_forward", "reverse=direction == 1)",
                                     "reverse=False)", "reads it from first to last"),
    "birnn: backward states not flipped back": (check_birnn_forward, "birnn_forward",
                                                "return (states.flip(0) if reverse else states), h",
                                                "return states, h", "flip its states back into time order"),
    "birnn: h_n of the backward direction at the last step": (check_birnn_forward, "birnn_forward",
                                                              "finals.append(final)",
                                                              "finals.append(states[-1])",
                                                              "sits at time step 0"),
    "birnn: h_n direction-major": (check_birnn_forward, "birnn_forward", "return output, torch.stack(finals)",
                                   "return output, torch.stack(finals[0::2] + finals[1::2] if D == 2 else finals)",
                                   "ordered direction by direction"),
    "birnn: h_n as (N, layers, H)": (check_birnn_forward, "birnn_forward", "return output, torch.stack(finals)",
                                     "return output, torch.stack(finals, dim=1)",
                                     "keeps the batch in its second dimension"),
    "birnn: h_n split into (layers, D, N, H)": (check_birnn_forward, "birnn_forward",
                                                "return output, torch.stack(finals)",
                                                "return output, torch.stack(finals).view("
                                                "rnn.num_layers, D, *finals[0].shape)",
                                                "h_n.view(num_layers, D, N, H) is only a view"),
    "birnn: layer 2 reads only the forward half": (check_birnn_forward, "birnn_forward",
                                                   "x = torch.cat(halves, dim=-1)", "x = halves[0]",
                                                   "weight_ih_l1 has shape (H, 2H)"),
    "birnn: ignores h_0": (check_birnn_forward, "birnn_forward", "h = h_0[k * D + direction]",
                           "h = torch.zeros_like(h_0[0])", "from zeros"),
    "birnn: h_0 direction-major": (check_birnn_forward, "birnn_forward", "h = h_0[k * D + direction]",
                                   "h = h_0[direction * rnn.num_layers + k]", "h_0 is indexed like h_n"),
    "birnn: dropout in eval mode": (check_birnn_forward, "birnn_forward", "F.dropout(x, rnn.dropout, rnn.training)",
                                    "F.dropout(x, rnn.dropout)", "in evaluation mode"),
    "birnn: no dropout in training mode": (check_birnn_forward, "birnn_forward",
                                           "x = F.dropout(x, rnn.dropout, rnn.training)", "pass",
                                           "yours applies none"),
    "birnn: dropout after the top layer too": (check_birnn_forward, "birnn_forward",
                                               "if k < rnn.num_layers - 1:", "if True:",
                                               "not to the top layer's output"),
    "birnn: dropout on each direction apart": (check_birnn_forward, "birnn_forward",
                                               "halves.append(states)",
                                               "halves.append(F.dropout(states, rnn.dropout, rnn.training)"
                                               " if k < rnn.num_layers - 1 else states)",
                                               "on the layer's whole output"),
    "birnn: calls the module": (check_birnn_forward, "birnn_forward", "    D = 2 if rnn.bidirectional else 1\n",
                                "    return rnn(input, h_0)\n", "calls the module itself"),
    "birnn: copies the weights into a fresh nn.RNN": (check_birnn_forward, "birnn_forward",
                                                      "    D = 2 if rnn.bidirectional else 1\n",
                                                      "    copy = nn.RNN(rnn.input_size, rnn.hidden_size, "
                                                      "rnn.num_layers, nonlinearity=rnn.nonlinearity, "
                                                      "bias=rnn.bias, batch_first=rnn.batch_first, "
                                                      "bidirectional=rnn.bidirectional, dtype=input.dtype)\n"
                                                      "    copy.load_state_dict(rnn.state_dict())\n"
                                                      "    return copy(input, h_0)\n",
                                                      "calls torch's built-in rnn_"),
    # mean_valid_output
    "mean: over every step, padding included": (check_mean_valid_output, "mean_valid_output",
                                                "return total / lengths[:, None].to(output.dtype)",
                                                "return output.mean(dim=1)", "padding included"),
    "mean: sum, not mean": (check_mean_valid_output, "mean_valid_output",
                            "return total / lengths[:, None].to(output.dtype)", "return total",
                            "the mean divides it by lengths[n]"),
    "mean: divided by L_max": (check_mean_valid_output, "mean_valid_output",
                               "return total / lengths[:, None].to(output.dtype)",
                               "return total / output.shape[1]", "divided by the padded length L_max"),
    "mean: one padding step included": (check_mean_valid_output, "mean_valid_output",
                                        "valid = steps < lengths[:, None]", "valid = steps <= lengths[:, None]",
                                        "the first padding step"),
    "mean: last valid step instead": (check_mean_valid_output, "mean_valid_output",
                                      "return total / lengths[:, None].to(output.dtype)",
                                      "return output[torch.arange(output.shape[0]), lengths - 1]",
                                      "asks for the mean over all its valid steps"),
    "mean: rows in sorted order": (check_mean_valid_output, "mean_valid_output",
                                   "return total / lengths[:, None].to(output.dtype)",
                                   "return (total / lengths[:, None].to(output.dtype))"
                                   "[torch.sort(lengths, descending=True).indices]", "sorted by length"),
    "mean: batch_first ignored": (check_mean_valid_output, "mean_valid_output",
                                  "    if not batch_first:\n        output = output.transpose(0, 1)",
                                  "    if True:\n        output = output.transpose(0, 1)",
                                  "with batch_first=True output is (N, L, F)"),
    "mean: mask without a feature dimension": (check_mean_valid_output, "mean_valid_output",
                                               "valid.unsqueeze(-1).to(output.dtype)", "valid.to(output.dtype)",
                                               "needs a last dimension of size 1"),
}


def test_every_check_rejects_at_least_three_mistakes():
    for check in ALL:
        assert sum(m[0] is check for m in MUTANTS.values()) >= 3, check.name


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("birnn_forward", '''
def run_direction(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh",
                  reverse=False):
    rnn = nn.RNN(weight_ih.shape[1], weight_ih.shape[0], nonlinearity=nonlinearity,
                 bias=bias_ih is not None, dtype=x.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(weight_ih); rnn.weight_hh_l0.copy_(weight_hh)
        if bias_ih is not None:
            rnn.bias_ih_l0.copy_(bias_ih); rnn.bias_hh_l0.copy_(bias_hh)
    states, final = rnn(x.flip(0) if reverse else x, h.unsqueeze(0))
    return (states.flip(0) if reverse else states), final[0]
''', ["birnn_forward"])


def test_shape_feedback_names_case_and_layout(solution):
    def transposed_h_n(input_shape, *args, **kwargs):
        output, (rows, N, H) = solution["rnn_shapes"](input_shape, *args, **kwargs)
        return output, (N, rows, H)
    with pytest.raises(CheckFailure) as failure:
        check_rnn_shapes(transposed_h_n, quiet=True)
    message = str(failure.value)
    assert message.startswith("rnn_shapes does not match torch.nn.RNN on case 1 of 24 (input_shape=(5, 3, 4)")
    assert "h_n: you predicted the shape (3, 1, 6), nn.RNN returns (1, 3, 6), laid out as " \
           "(D * num_layers, N, H)" in message


@pytest.mark.parametrize("result, words", [
    (lambda out, h: out, "should return a tuple (output_shape, h_n_shape), got a tuple of 3"),
    (lambda out, h: (str(out), h), "the output shape should be a tuple of ints such as (5, 3, 6), got a str"),
    (lambda out, h: (out, torch.zeros(h)), "the h_n shape should be a tuple of ints"),
    (lambda out, h: (out, (1.0 * h[0],) + h[1:]), "the h_n shape should be a tuple of ints"),
])
def test_wrong_shape_answers_get_clear_messages(solution, result, words):
    def student(*args, **kwargs):
        return result(*solution["rnn_shapes"](*args, **kwargs))
    with pytest.raises(CheckFailure) as failure:
        check_rnn_shapes(student, quiet=True)
    assert words in str(failure.value)


def test_shapes_as_torch_size_or_list_are_accepted(solution):
    def as_size(*args, **kwargs):
        output, h_n = solution["rnn_shapes"](*args, **kwargs)
        return torch.Size(output), list(h_n)
    assert check_rnn_shapes(as_size, quiet=True) is None


@pytest.mark.parametrize("value, words", [
    ("0.25", "should return a number such as 0.25, got a str"),
    (None, "got None"),
    (-0.5, "should be a positive number"),
    (float("nan"), "should be a positive number"),
    (10.0, "is not the one nn.RNN uses"),
    (1e-3, "drew parameters outside your bound"),
])
def test_wrong_bounds_get_clear_messages(value, words):
    with pytest.raises(CheckFailure) as failure:
        check_rnn_init_bound(lambda input_size, hidden_size: value, quiet=True)
    assert words in str(failure.value)


def test_bound_as_a_zero_dimensional_tensor_is_accepted():
    assert check_rnn_init_bound(lambda i, h: torch.tensor(h, dtype=torch.float64).rsqrt(), quiet=True) is None


def test_bound_reference_is_measured_on_a_real_module():
    """The reference's module really is nn.RNN: every parameter lies within 1/sqrt(H), and close to it."""
    for case in check_rnn_init_bound.make_cases(hidden=True):
        expected = check_rnn_init_bound.run_reference(case)
        bound = 1 / math.sqrt(case.config["hidden_size"])
        assert expected["bound"] == bound
        assert 0.95 * bound < expected["empirical_max"] <= bound
        assert expected["count"] == sum(p.numel() for p in nn.RNN(
            case.config["input_size"], case.config["hidden_size"], num_layers=case.config["num_layers"],
            bidirectional=case.config["bidirectional"]).parameters())


def test_module_given_to_birnn_refuses_to_run():
    case = check_birnn_forward.make_cases()[0]
    module = check_birnn_forward.module(case)
    assert isinstance(module, NoForwardRNN) and isinstance(module, nn.RNN)
    with pytest.raises(ForbiddenCall):
        module(case.tensors["input"])


def test_hint_simulation_without_a_mistake_is_nn_rnn():
    """The code that recognises mistakes in hints computes nn.RNN itself when it makes none."""
    for hidden in (False, True):
        for case in check_birnn_forward.make_cases(hidden=hidden):
            if case.config["training"]:
                continue  # by_hand is evaluation mode; dropout mistakes are made with nn.RNN itself
            expected = check_birnn_forward.run_reference(case)
            simulated = by_hand(case)
            for name in ("output", "h_n"):
                torch.testing.assert_close(simulated[name], expected[name], rtol=1e-12, atol=1e-12)


def test_birnn_must_not_edit_the_module(solution):
    def edits(rnn, input, h_0=None):
        result = solution["birnn_forward"](rnn, input, h_0)
        rnn.weight_hh_l0.zero_()
        return result
    with pytest.raises(CheckFailure, match="changed the parameters of the module"):
        check_birnn_forward(edits, quiet=True)


def test_birnn_feedback_names_output_case_and_index(solution):
    def late_error(rnn, input, h_0=None):
        output, h_n = solution["birnn_forward"](rnn, input, h_0)
        output = output.clone()
        output[3, 1, 7] += 1.0  # time step 3, sequence 1, a unit of the backward half
        return output, h_n
    with pytest.raises(CheckFailure) as failure:
        check_birnn_forward(late_error, quiet=True)
    message = str(failure.value)
    assert "birnn_forward does not match torch.nn.RNN on case 1 of 4 (L=5, N=3" in message
    assert "output[t=3, n=1, h=7] is" in message and "largest error 1" in message


@pytest.mark.parametrize("result, words", [
    (lambda out, h: out, "should return a tuple (output, h_n), got a Tensor"),
    (lambda out, h: (out.float(), h), "output has dtype torch.float32, expected torch.float64"),
    (lambda out, h: (out, h * float("nan")), "not a finite number"),
    (lambda out, h: (out[..., :out.shape[-1] // 2], h), "output concatenates the forward and backward"),
])
def test_wrong_birnn_results_get_clear_messages(solution, result, words):
    def student(*args, **kwargs):
        return result(*solution["birnn_forward"](*args, **kwargs))
    with pytest.raises(CheckFailure) as failure:
        check_birnn_forward(student, quiet=True)
    assert words in str(failure.value)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()
    for check in ALL:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)

    def crashes(rnn, input, h_0=None):
        return input @ rnn.weight_ih_l0  # wrong orientation: a shape error inside torch
    with pytest.raises(CheckFailure) as failure:
        check_birnn_forward(crashes)
    message = str(failure.value)
    assert message.startswith("birnn_forward raised RuntimeError: ")
    assert "return input @ rnn.weight_ih_l0" in message and failure.value.__cause__ is None


def test_mean_valid_output_premise_padding_never_counts():
    """Each case's output agrees with each sequence run alone on its real steps, and its padding
    is not: so an answer must leave the padding out, and the reference is that mean."""
    for hidden in (False, True):
        for case in check_mean_valid_output.make_cases(hidden=hidden):
            config, t = case.config, case.tensors
            assert config["source"] == "packed" or not config["bidirectional"], "padded runs: one direction"
            rnn = nn.RNN(config["input_size"], config["hidden_size"], num_layers=config["num_layers"],
                         bidirectional=config["bidirectional"], dtype=torch.float64)
            rnn.load_state_dict(state_of(t))
            x = t["input"].transpose(0, 1) if config["batch_first"] else t["input"]
            output = t["output"].transpose(0, 1) if config["batch_first"] else t["output"]
            lengths = t["lengths"]
            assert sorted(lengths.tolist(), reverse=True) != lengths.tolist() or len(lengths) == 1
            expected = check_mean_valid_output.run_reference(case)["mean"]
            for n, length in enumerate(lengths.tolist()):
                with torch.no_grad():
                    alone, _ = rnn(x[:length, n])                    # (length, D * H)
                torch.testing.assert_close(output[:length, n], alone)
                torch.testing.assert_close(expected[n], alone.mean(dim=0))
            assert not torch.allclose(output.mean(dim=0), expected), "padding must change a plain mean"


def test_registry_lists_every_chapter_three_check():
    assert {"03-rnn/rnn_shapes", "03-rnn/rnn_init_bound", "03-rnn/birnn_forward",
            "03-rnn/mean_valid_output"} <= set(CHECKS)


def test_reference_really_is_torch_nn():
    """The birnn reference comes from nn.RNN with the case's weights: a changed weight changes it."""
    case = check_birnn_forward.make_cases()[0]
    expected = check_birnn_forward.run_reference(case)
    rnn = nn.RNN(4, 6, num_layers=2, bidirectional=True, dtype=torch.float64)
    rnn.load_state_dict(state_of(case.tensors))
    output, h_n = rnn(case.tensors["input"], case.tensors["h_0"])
    assert torch.equal(expected["output"], output) and torch.equal(expected["h_n"], h_n)
    case.tensors["state.weight_hh_l0_reverse"] = case.tensors["state.weight_hh_l0_reverse"] * 0
    changed = check_birnn_forward.run_reference(case)
    assert not torch.allclose(changed["output"], expected["output"])
