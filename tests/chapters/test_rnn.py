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
from rnn_by_hand.chapters.rnn import (check_birnn_forward, check_classifier_init_bounds, check_mean_valid_output,
                                      check_rnn_shapes)
from rnn_by_hand.chapters.rnn.checks import NoForwardRNN, classifier, reference_bounds
from rnn_by_hand.chapters.rnn.models import by_hand
from rnn_by_hand.checking import state_of
from conftest import REPO
from mutants import mutant_test, partial_credit_test, student_namespace

NOTEBOOK = REPO / "solutions" / "03-rnn" / "rnn.ipynb"
ALL = (check_rnn_shapes, check_classifier_init_bounds, check_birnn_forward, check_mean_valid_output)


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
    # classifier_init_bounds
    "bounds: head fan-in H": (check_classifier_init_bounds, "classifier_init_bounds",
                              "fan_in = D * num_layers * hidden_size", "fan_in = hidden_size",
                              "its fan-in is D * num_layers * H, not H"),
    "bounds: head reads the top layer only": (check_classifier_init_bounds, "classifier_init_bounds",
                                              "fan_in = D * num_layers * hidden_size", "fan_in = D * hidden_size",
                                              "not only the top one's"),
    "bounds: head forgets the directions": (check_classifier_init_bounds, "classifier_init_bounds",
                                            "fan_in = D * num_layers * hidden_size",
                                            "fan_in = num_layers * hidden_size", "with D = 2"),
    "bounds: head by fan-out": (check_classifier_init_bounds, "classifier_init_bounds",
                                "head_bound = 1 / math.sqrt(fan_in)", "head_bound = 1 / math.sqrt(num_classes)",
                                "not 1/sqrt(out_features)"),
    "bounds: nn.RNN by fan-in": (check_classifier_init_bounds, "classifier_init_bounds",
                                 'bounds[f"rnn.{name}_l{k}{suffix}"] = rnn_bound',
                                 'bounds[f"rnn.{name}_l{k}{suffix}"] = rnn_bound if name != "weight_ih" '
                                 "else 1 / math.sqrt(input_size if k == 0 else D * hidden_size)",
                                 "whatever its fan-in"),
    "bounds: 1/H": (check_classifier_init_bounds, "classifier_init_bounds",
                    "rnn_bound = 1 / math.sqrt(hidden_size)", "rnn_bound = 1 / hidden_size",
                    "the square root is lost"),
    "bounds: no backward direction": (check_classifier_init_bounds, "classifier_init_bounds",
                                      'for suffix in ("", "_reverse")[:D]:', 'for suffix in ("",):',
                                      "no bound for rnn.weight_ih_l0_reverse"),
    "bounds: measured on one model": (check_classifier_init_bounds, "classifier_init_bounds",
                                      "    D = 2 if bidirectional else 1\n",
                                      "    model = HnClassifier(input_size, hidden_size, num_layers, "
                                      "bidirectional, num_classes)\n"
                                      "    model(torch.zeros(1, 1, input_size))\n"
                                      "    return {n: p.abs().max().item() for n, p in model.named_parameters()}\n",
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


# Partial credit: (check, mutation of the solution, share in each of the visible and hidden
# sets, the parts it misses). A missing feature costs its own part, and the combined cases'
# where they have it, only.
PARTIAL = {
    "shapes: unbatched keeps a batch of 1": (check_rnn_shapes, ("rnn_shapes", "(D * num_layers, hidden_size)",
                                                                "(D * num_layers, 1, hidden_size)"),
                                             "4 of 6", ("unbatched input", "combined features")),
    "shapes: output grows with layers": (check_rnn_shapes, ("rnn_shapes", "else (L, N, D * hidden_size)",
                                                            "else (L, N, D * hidden_size * num_layers)"),
                                         "4 of 6", ("stacked", "combined features")),
    "birnn: bias=False not handled": (check_birnn_forward, ("birnn_forward", "getattr(rnn, name + suffix, None)",
                                                            "getattr(rnn, name + suffix)"),
                                      "7 of 8", ("without bias",)),
    "birnn: no dropout in training mode": (check_birnn_forward, ("birnn_forward",
                                                                 "x = F.dropout(x, rnn.dropout, rnn.training)",
                                                                 "pass"),
                                           "6 of 8", ("dropout", "combined features")),
    "bounds: head reads the top layer only": (check_classifier_init_bounds, ("classifier_init_bounds",
                                                                             "fan_in = D * num_layers",
                                                                             "fan_in = D"),
                                              "1 of 3", ("one direction", "the rest")),
    "bounds: head forgets the directions": (check_classifier_init_bounds, ("classifier_init_bounds",
                                                                           "fan_in = D * num_layers",
                                                                           "fan_in = num_layers"),
                                            "1 of 3", ("one layer", "the rest")),
    "mean: zero padding only": (check_mean_valid_output, ("mean_valid_output",
                                                          "total = (output * valid.unsqueeze(-1).to(output.dtype))",
                                                          "total = output"),
                                "2 of 4", ("non-zero padding", "combined features")),
}


test_an_answer_failing_one_part_earns_the_others = partial_credit_test(NOTEBOOK, PARTIAL)


def test_shape_cases_go_round_the_parts():
    """The random configurations fill every part, in the visible and in the hidden set."""
    from rnn_by_hand.checking.credit import parts_of
    for hidden in (False, True):
        found = [part for case in check_rnn_shapes.make_cases(hidden=hidden)
                 for part in parts_of(check_rnn_shapes.PARTS, case.config)]
        assert set(found) == set(check_rnn_shapes.FAMILIES)
        assert min(found.count(part) for part in set(found)) >= 3


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


def _bounds_changed(solution, **changes):
    """The solution's bounds with some names changed (None: left out)."""
    def classifier_init_bounds(*args):
        bounds = solution["classifier_init_bounds"](*args)
        bounds.update(changes)
        return {name: bound for name, bound in bounds.items() if bound is not None}
    return classifier_init_bounds


@pytest.mark.parametrize("answer, words", [
    (lambda solution: lambda *args: 0.25, "should return a dict {parameter name: bound}, got a float"),
    (lambda solution: lambda *args: None, "got None"),
    (lambda solution: _bounds_changed(solution, **{"head.bias": None}), "no bound for head.bias"),
    (lambda solution: _bounds_changed(solution, **{"head.scale": 0.1}), "a bound for 'head.scale'"),
    (lambda solution: _bounds_changed(solution, **{"head.weight": "0.1"}),
     "the bound for head.weight should be a number such as 0.25, got a str"),
    (lambda solution: _bounds_changed(solution, **{"rnn.bias_hh_l0": -0.5}), "should be a positive number"),
    (lambda solution: _bounds_changed(solution, **{"rnn.weight_hh_l0": float("nan")}), "a positive number"),
    (lambda solution: _bounds_changed(solution, **{"head.weight": 10.0}), "your bound for head.weight is 10"),
    (lambda solution: _bounds_changed(solution, **{"rnn.weight_ih_l0": 1e-3}), "outside your bound"),
])
def test_wrong_bounds_get_clear_messages(solution, answer, words):
    with pytest.raises(CheckFailure) as failure:
        check_classifier_init_bounds(answer(solution), quiet=True)
    assert words in str(failure.value)


def test_bounds_as_zero_dimensional_tensors_are_accepted(solution):
    def as_tensors(*args):
        return {name: torch.tensor(b, dtype=torch.float64)
                for name, b in solution["classifier_init_bounds"](*args).items()}
    assert check_classifier_init_bounds(as_tensors, quiet=True) is None


def test_bound_reference_is_measured_on_real_modules():
    """Our rule, nn.RNN's 1/sqrt(H) and nn.Linear's 1/sqrt(in_features), against big real models:
    every parameter lies within its bound, and the large ones come close to it."""
    for config in (dict(input_size=3, hidden_size=400, num_layers=2, bidirectional=True, num_classes=300),
                   dict(input_size=700, hidden_size=64, num_layers=3, bidirectional=False, num_classes=500)):
        model = classifier(config)
        bounds = reference_bounds(model)
        assert list(bounds) == [name for name, _ in model.named_parameters()]
        assert bounds["rnn.weight_hh_l0"] == 1 / math.sqrt(config["hidden_size"]) != bounds["head.weight"]
        for name, p in model.named_parameters():
            largest = p.abs().max().item()
            assert largest <= bounds[name], name
            if p.numel() >= 300:
                assert largest > 0.95 * bounds[name], name


def test_reference_model_is_the_notebooks_classifier(solution):
    """The check's model has the parameters, shapes and initialisation of the notebook's
    HnClassifier once its LazyLinear head has seen an input."""
    for case in check_classifier_init_bounds.make_cases() + check_classifier_init_bounds.make_cases(hidden=True):
        config = case.config
        mine = solution["HnClassifier"](*(config[k] for k in ("input_size", "hidden_size", "num_layers",
                                                              "bidirectional", "num_classes")))
        mine(torch.zeros(2, 1, config["input_size"]))
        ours = classifier(config)
        assert [(n, p.shape) for n, p in mine.named_parameters()] == [(n, p.shape) for n, p in ours.named_parameters()]
        assert mine.head.in_features == ours.head.in_features
        assert reference_bounds(mine) == reference_bounds(ours)
        assert all(p.abs().max().item() <= reference_bounds(ours)[n] for n, p in mine.named_parameters())


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
    assert "birnn_forward does not match torch.nn.RNN on case 1 of 10 (L=5, N=3" in message
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
    assert {"03-rnn/rnn_shapes", "03-rnn/classifier_init_bounds", "03-rnn/birnn_forward",
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
