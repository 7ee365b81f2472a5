"""The chapter 1 checks accept the reference solution and reject wrong answers.

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
from rnn_by_hand.checks import check_jordan_rnn, check_rnn_forward_padded, check_stacked_rnn_step
from rnn_by_hand.chapters.recurrence import JordanNet, padded_run, stack_step
from rnn_by_hand.checking import state_of
from conftest import REPO
from submissions import RNN_BY_NN
from mutants import mutant_test, partial_credit_test, student_namespace

NOTEBOOK = REPO / "solutions" / "01-recurrence" / "recurrence.ipynb"


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


# Each mutant: (exercise check, cell, source text, replacement, words the feedback must contain)
STEP = ("h = act(F.linear(below, weight_ih, bias_ih)\n"
        "                + F.linear(h_prev[k], weight_hh, bias_hh))")
RUNNING = "running = (t < lengths).unsqueeze(1)"
MUTANTS = {
    "stacked: reads the previous step's state below": (check_stacked_rnn_step, "stacked_rnn_step", "below = h  ",
                                                       "below = h_prev[k]  ", "reading h_prev[k - 1]"),
    "stacked: every layer from h_prev[0]": (check_stacked_rnn_step, "stacked_rnn_step", "h_prev[k], weight_hh",
                                            "h_prev[0], weight_hh", "starting every layer from h_prev[0]"),
    "stacked: top layer only": (check_stacked_rnn_step, "stacked_rnn_step", "return torch.stack(states)",
                                "return states[-1]", "you return one layer's state"),
    "stacked: layer 0's weights everywhere": (check_stacked_rnn_step, "stacked_rnn_step",
                                              'getattr(rnn, f"weight_ih_l{k}")', 'getattr(rnn, "weight_ih_l0")',
                                              "weight_ih_l{k} for k > 0 is (H, H)"),
    "stacked: missing bias_hh": (check_stacked_rnn_step, "stacked_rnn_step", "F.linear(h_prev[k], weight_hh, bias_hh)",
                                 "F.linear(h_prev[k], weight_hh)", "leaving out bias_hh"),
    "stacked: tanh always": (check_stacked_rnn_step, "stacked_rnn_step",
                             'torch.tanh if rnn.nonlinearity == "tanh" else torch.relu', "torch.tanh",
                             "nonlinearity='tanh'"),
    "stacked: weight not transposed": (check_stacked_rnn_step, "stacked_rnn_step", STEP,
                                       "h = act(F.linear(below, weight_ih, bias_ih)\n"
                                       "                + h_prev[k] @ weight_hh + bias_hh)", "h_t["),
    "stacked: float32 arithmetic": (check_stacked_rnn_step, "stacked_rnn_step", "states.append(h)",
                                    "states.append(h.float().double())", "float32"),
    "padded: output not masked": (check_rnn_forward_padded, "rnn_forward_padded",
                                  "outputs.append(torch.where(running, new, 0.0))", "outputs.append(new)",
                                  "your output goes on with the padding"),
    "padded: output carries the last state": (check_rnn_forward_padded, "rnn_forward_padded",
                                              "outputs.append(torch.where(running, new, 0.0))", "outputs.append(h)",
                                              "your output repeats its last state"),
    "padded: h_n after L steps": (check_rnn_forward_padded, "rnn_forward_padded",
                                  "h = torch.where(running, new, h)", "h = new", "after all L steps"),
    "padded: one step too many": (check_rnn_forward_padded, "rnn_forward_padded", RUNNING,
                                  "running = (t <= lengths).unsqueeze(1)", None),
    "padded: missing bias_hh": (check_rnn_forward_padded, "rnn_forward_padded",
                                "F.linear(h, weight_hh, bias_hh)", "F.linear(h, weight_hh)", "leaving out bias_hh"),
    "padded: missing bias_ih": (check_rnn_forward_padded, "rnn_forward_padded",
                                "F.linear(x, weight_ih, bias_ih)", "F.linear(x, weight_ih)", "leaving out bias_ih"),
    "padded: relu always": (check_rnn_forward_padded, "rnn_forward_padded",
                            'torch.tanh if nonlinearity == "tanh" else torch.relu', "torch.relu",
                            "nonlinearity='relu'"),
    "padded: h_n without layer dim": (check_rnn_forward_padded, "rnn_forward_padded",
                                      "return output, h.unsqueeze(0)", "return output, h",
                                      "leading (num_layers * num_directions) dimension is missing"),
    "padded: batch_first read as time-major": (check_rnn_forward_padded, "rnn_forward_padded",
                                               "x = input.transpose(0, 1) if batch_first else input",
                                               "x = input", "transpose it to (L, N, H_in)"),
    "padded: batch_first output left time-major": (check_rnn_forward_padded, "rnn_forward_padded",
                                                   "output = output.transpose(0, 1)", "pass",
                                                   "(N, L, H) because batch_first=True"),
    "jordan: feeds back the hidden state": (check_jordan_rnn, "JordanRNN",
                                            "outputs.append(y)",
                                            "outputs.append(y)\n            y = h",
                                            "feeds back its previous output"),
    "jordan: nonlinear readout": (check_jordan_rnn, "JordanRNN", "y = self.readout(h)  ",
                                  "y = torch.tanh(self.readout(h))  ", "y_t = readout(h_t) is linear"),
    "jordan: ignores y_0": (check_jordan_rnn, "JordanRNN",
                            "if y_0 is None else y_0.reshape(N, self.output_size)",
                            "if True else None", "starting from y_0 = 0"),
    "jordan: outputs the hidden states": (check_jordan_rnn, "JordanRNN", "outputs.append(y)",
                                          "outputs.append(h)", "not the hidden states"),
    "jordan: one bias": (check_jordan_rnn, "JordanRNN", 'for name in ("bias_ih", "bias_yh"):',
                         'for name in ("bias_ih",):', "no parameter named 'bias_yh'"),
    "jordan: an Elman weight_hh": (check_jordan_rnn, "JordanRNN",
                                   "self.weight_yh = nn.Parameter(torch.empty(hidden_size, output_size))",
                                   "self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))",
                                   "has no hidden-to-hidden matrix"),
    "jordan: init U(-1/H, 1/H)": (check_jordan_rnn, "JordanRNN", "bound = 1 / math.sqrt(self.hidden_size)",
                                  "bound = 1 / self.hidden_size", "not U(-1/H, 1/H)"),
    "jordan: init standard normal": (check_jordan_rnn, "JordanRNN", "nn.init.uniform_(parameter, -bound, bound)",
                                     "nn.init.normal_(parameter)", "U(-1/sqrt(H), 1/sqrt(H))"),
    "jordan: batch_first output left time-major": (check_jordan_rnn, "JordanRNN",
                                                   "output = output.transpose(0, 1)                    # (N, L, O)",
                                                   "pass", "(N, L, O) because batch_first=True"),
    "jordan: unbatched y_n without its leading dimension": (check_jordan_rnn, "JordanRNN",
                                                            "return output.squeeze(1), y_n.squeeze(1)",
                                                            "return output.squeeze(1), y_n[0, 0]", "y_n has shape"),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("rnn_forward_padded", RNN_BY_NN, ["rnn_forward_padded"])


# Partial credit: (check, mutation of the solution, share in each of the visible and hidden
# sets, the parts it misses). A missing feature costs its own part (and the combined cases'), only.
PARTIAL = {
    "stacked: bias=False not handled": (check_stacked_rnn_step,
                                        ("stacked_rnn_step", 'getattr(rnn, f"bias_ih_l{k}", None)',
                                         'getattr(rnn, f"bias_ih_l{k}")'), "3 of 4", ("without bias",)),
    "stacked: batches only": (check_stacked_rnn_step, ("stacked_rnn_step", "    below, states = x_t, []",
                                                       "    if x_t.dim() == 1:\n        raise ValueError('only batches')\n"
                                                       "    below, states = x_t, []"), "3 of 4", ("unbatched input",)),
    "padded: relu not handled": (check_rnn_forward_padded, ("rnn_forward_padded",
                                                            'torch.tanh if nonlinearity == "tanh" else torch.relu',
                                                            "torch.tanh"), "5 of 6", ("relu",)),
    "padded: h_0 required": (check_rnn_forward_padded, ("rnn_forward_padded", "x.new_zeros(N, H) if h_0 is None else ",
                                                        ""), "4 of 6", ("h_0 omitted", "combined features")),
    "jordan: biases whatever bias says": (check_jordan_rnn, ("JordanRNN", "nn.Parameter(torch.empty(hidden_size)) "
                                                             "if bias else None",
                                                             "nn.Parameter(torch.empty(hidden_size))"),
                                          "5 of 6", ("without bias",)),
    "jordan: batch_first ignored": (check_jordan_rnn, ("JordanRNN", "if batched and self.batch_first:",
                                                       "if False:"), "4 of 6", ("batch_first", "combined features")),
}


test_an_answer_failing_one_part_earns_the_others = partial_credit_test(NOTEBOOK, PARTIAL)


def test_feedback_names_output_case_and_index(solution):
    def h_n_squeezed(*args, **kwargs):
        output, h_n = solution["rnn_forward_padded"](*args, **kwargs)
        return output, h_n[0]
    with pytest.raises(CheckFailure) as failure:
        check_rnn_forward_padded(h_n_squeezed, quiet=True)
    message = str(failure.value)
    assert "rnn_forward_padded does not match torch.nn.RNN with packing on case 1 of 6" in message
    assert "h_n has shape (3, 6), expected (1, 3, 6)" in message


def test_first_differing_time_step_is_reported(solution):
    def late_error(*args, **kwargs):
        output, h_n = solution["rnn_forward_padded"](*args, **kwargs)
        output = output.clone()
        output[2] += 1.0  # time step 2 in the time-major case
        return output, h_n
    with pytest.raises(CheckFailure, match=r"output\[t=2, n=0, h=0\] is .* expected .*largest error 1"):
        check_rnn_forward_padded(late_error, quiet=True)


@pytest.mark.parametrize("result, words", [
    (lambda out, h: [out, h, out], "should return a tuple (output, h_n), got a list of 3"),
    (lambda out, h: out, "should return a tuple (output, h_n), got a Tensor"),
    (lambda out, h: (out.numpy(), h), "output should be a torch.Tensor, got a numpy.ndarray"),
    (lambda out, h: (out.float(), h), "output has dtype torch.float32, expected torch.float64"),
    (lambda out, h: (out * float("nan"), h), "not a finite number"),
])
def test_wrong_return_values_get_clear_messages(solution, result, words):
    def student(*args, **kwargs):
        return result(*solution["rnn_forward_padded"](*args, **kwargs))
    with pytest.raises(CheckFailure) as failure:
        check_rnn_forward_padded(student, quiet=True)
    assert words in str(failure.value)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()

    def crashes(x_t, h_prev, rnn):
        return x_t @ rnn.weight_ih_l0  # wrong orientation: a shape error inside torch
    with pytest.raises(CheckFailure, match="not implemented yet"):
        check_stacked_rnn_step(not_done)
    with pytest.raises(CheckFailure) as failure:
        check_stacked_rnn_step(crashes)
    message = str(failure.value)
    assert message.startswith("stacked_rnn_step raised RuntimeError: ")
    assert "return x_t @ rnn.weight_ih_l0" in message and failure.value.__cause__ is None


def test_in_place_edits_of_inputs_are_reported(solution):
    def edits_h_prev(x_t, h_prev, rnn):
        h_t = solution["stacked_rnn_step"](x_t, h_prev, rnn)
        h_prev.zero_()
        return h_t
    with pytest.raises(CheckFailure, match="changed one of its input tensors in place"):
        check_stacked_rnn_step(edits_h_prev)


def test_module_must_be_a_module_and_load_state_dicts(solution):
    class NotAModule:
        def __init__(self, *args, **kwargs):
            pass
    with pytest.raises(CheckFailure, match="should be an nn.Module"):
        check_jordan_rnn(NotAModule)
    with pytest.raises(CheckFailure, match="expects a class"):
        check_jordan_rnn(solution["rnn_forward_padded"])


def test_registry_lists_every_chapter_one_check():
    assert {"01-recurrence/stacked_rnn_step", "01-recurrence/rnn_forward_padded", "01-recurrence/JordanRNN"} \
        <= set(CHECKS)


def jordan_with_elman_weights(rnn: nn.RNN, batch_first: bool) -> JordanNet:
    """A JordanNet that is `rnn`: output_size = hidden_size, the identity readout, weight_yh = weight_hh."""
    H = rnn.hidden_size
    net = JordanNet(rnn.input_size, H, H, nonlinearity=rnn.nonlinearity, batch_first=batch_first)
    with torch.no_grad():
        for mine, theirs in (("weight_ih", "weight_ih_l0"), ("weight_yh", "weight_hh_l0"),
                             ("bias_ih", "bias_ih_l0"), ("bias_yh", "bias_hh_l0")):
            getattr(net, mine).copy_(getattr(rnn, theirs))
        net.readout.weight.copy_(torch.eye(H, dtype=torch.float64))
        net.readout.bias.zero_()
    return net


@pytest.mark.parametrize("nonlinearity, batch_first, input_shape, h_0_shape", [
    ("tanh", False, (6, 3, 4), (1, 3, 5)), ("relu", True, (3, 6, 4), (1, 3, 5)),
    ("tanh", True, (6, 4), (1, 5))])
def test_jordan_reference_with_an_identity_readout_is_nn_rnn(nonlinearity, batch_first, input_shape,
                                                              h_0_shape):
    """Where the two networks coincide (y_t = h_t), our Jordan network computes nn.RNN."""
    rnn = nn.RNN(4, 5, nonlinearity=nonlinearity, batch_first=batch_first, dtype=torch.float64)
    net = jordan_with_elman_weights(rnn, batch_first)
    x = torch.randn(*input_shape, dtype=torch.float64)
    h_0 = torch.randn(*h_0_shape, dtype=torch.float64)
    with torch.no_grad():
        expected, got = rnn(x, h_0), net(x, h_0)
    for want, have in zip(expected, got):
        torch.testing.assert_close(have, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_jordan_reference_is_an_rnn_cell_over_the_input_and_the_last_output(bias):
    """In general (O != H) each step is nn.RNNCell on [x_t, y_(t-1)] with no recurrent weight,
    then the nn.Linear readout: torch.nn step by step against our recurrence."""
    H_in, H, out_size, L, N = 3, 5, 2, 6, 4
    net = JordanNet(H_in, H, out_size, nonlinearity="tanh", bias=bias)
    cell = nn.RNNCell(H_in + out_size, H, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.cat([net.weight_ih, net.weight_yh], dim=1))  # (H, H_in + O)
        cell.weight_hh.zero_()                                                 # no h_(t-1) -> h_t
        if bias:
            cell.bias_ih.copy_(net.bias_ih)
            cell.bias_hh.copy_(net.bias_yh)
        x, y = torch.randn(L, N, H_in, dtype=torch.float64), torch.randn(N, out_size, dtype=torch.float64)
        output, y_n = net(x, y.unsqueeze(0))
        expected = []
        for x_t in x:
            y = net.readout(cell(torch.cat([x_t, y], dim=1), torch.zeros(N, H, dtype=torch.float64)))
            expected.append(y)
    torch.testing.assert_close(output, torch.stack(expected), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y_n[0], expected[-1], rtol=1e-12, atol=1e-12)


def test_jordan_reference_draws_nn_rnns_initialisation():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = JordanNet(3, 400, 200)  # every parameter has >= 200 entries: its max nears the bound
    bound = 1 / math.sqrt(400)
    largest = {name: p.abs().max().item() for name, p in net.named_parameters()}
    assert set(largest) == {"weight_ih", "weight_yh", "bias_ih", "bias_yh", "readout.weight", "readout.bias"}
    assert all(0.95 * bound < v <= bound for v in largest.values()), largest


def test_jordan_feedback_is_checked_where_it_differs_from_elman():
    """Feeding back h is named only where it can run (O == H), and there it is wrong."""
    case = check_jordan_rnn.make_cases()[0]
    assert case.config["output_size"] == case.config["hidden_size"]
    assert not torch.allclose(check_jordan_rnn.run_reference(case, "elman")["output"],
                              check_jordan_rnn.run_reference(case)["output"])


def test_reference_really_is_torch_nn():
    """The references come from the modules: changing a weight changes the expected output."""
    case = check_rnn_forward_padded.make_cases()[0]
    expected = check_rnn_forward_padded.run_reference(case)["output"]
    case.tensors["weight_hh"] = case.tensors["weight_hh"] * 0
    assert not torch.allclose(check_rnn_forward_padded.run_reference(case)["output"], expected)
    case = check_stacked_rnn_step.make_cases()[0]
    expected = check_stacked_rnn_step.run_reference(case)["h_t"]
    case.tensors["state.weight_hh_l1"] = case.tensors["state.weight_hh_l1"] * 0
    changed = check_stacked_rnn_step.run_reference(case)["h_t"]
    assert torch.allclose(changed[0], expected[0]) and not torch.allclose(changed[1], expected[1])


@pytest.mark.parametrize("hidden", [False, True])
def test_padded_run_is_nn_rnn_on_the_packed_batch(hidden):
    """padded_run (the hints' own formulation: the whole run, masked afterwards) is what nn.RNN
    computes on the packed batch, on every case; and every case pads some sequence."""
    for case in check_rnn_forward_padded.make_cases(hidden=hidden):
        t, c = case.tensors, case.config
        x = t["input"].transpose(0, 1) if c.get("batch_first") else t["input"]          # (L, N, H_in)
        h = t["h_0"][0] if "h_0" in t else torch.zeros(x.shape[1], c["hidden_size"], dtype=torch.float64)
        output, h_n = padded_run(x, t["lengths"], h, {k: t.get(k) for k in ("weight_ih", "weight_hh", "bias_ih",
                                                                            "bias_hh")}, c["nonlinearity"])
        expected = check_rnn_forward_padded.run_reference(case)
        want = expected["output"].transpose(0, 1) if c.get("batch_first") else expected["output"]
        assert torch.allclose(output, want) and torch.allclose(h_n, expected["h_n"][0]), case.label
        assert bool((t["lengths"] < c["L"]).any()), case.label


@pytest.mark.parametrize("hidden", [False, True])
def test_stack_step_run_over_a_sequence_is_nn_rnn(hidden):
    """stack_step, the hints' own stacked step, fed a sequence step by step gives nn.RNN's output
    and h_n for the whole sequence."""
    for case in check_stacked_rnn_step.make_cases(hidden=hidden):
        c = case.config
        rnn = check_stacked_rnn_step.module(case)
        x = torch.randn(5, 2, c["input_size"], dtype=torch.float64)                      # (L, N, H_in)
        h_0 = torch.randn(c["num_layers"], 2, c["hidden_size"], dtype=torch.float64)
        h, tops = h_0, []
        for x_t in x:
            h = stack_step(x_t, h, state_of(case.tensors), c["num_layers"], c["nonlinearity"])
            tops.append(h[-1])
        with torch.no_grad():
            output, h_n = rnn(x, h_0)
        assert torch.allclose(torch.stack(tops), output) and torch.allclose(h, h_n), case.label


@pytest.mark.parametrize("check, wrapper", [
    (check_stacked_rnn_step, lambda x_t, h_prev, rnn: rnn(x_t.unsqueeze(0), h_prev)[1]),
    (check_stacked_rnn_step, lambda x_t, h_prev, rnn: _cells(x_t, h_prev, rnn)),
    (check_rnn_forward_padded, lambda input, lengths, h_0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh",
        batch_first=False: _module(input, lengths, h_0, w_ih, w_hh, b_ih, b_hh, nonlinearity, batch_first)),
])
def test_answers_that_call_torch_nn_are_rejected(check, wrapper):
    with pytest.raises(CheckFailure, match="is not written by hand: it calls torch's built-in rnn_"):
        check(wrapper, quiet=True)
    # the trap is removed afterwards: torch.nn works again for everyone else
    nn.RNN(2, 3)(torch.randn(4, 1, 2))


def test_jordan_built_on_nn_rnn_cell_is_rejected():
    class CellJordan(nn.Module):
        def __init__(self, input_size, hidden_size, output_size, nonlinearity="tanh", bias=True,
                     batch_first=False):
            super().__init__()
            self.cell = nn.RNNCell(input_size + output_size, hidden_size, bias=bias,
                                   nonlinearity=nonlinearity)
            self.readout = nn.Linear(hidden_size, output_size, bias=bias)

        def forward(self, input, y_0=None):
            y = input.new_zeros(input.shape[1], self.readout.out_features)
            return self.readout(self.cell(torch.cat([input[0], y], dim=1))), y
    with pytest.raises(CheckFailure, match="not written by hand|no parameter named"):
        check_jordan_rnn(CellJordan, quiet=True)


def _cells(x_t, h_prev, rnn):
    states, below = [], x_t
    for k in range(rnn.num_layers):
        cell = nn.RNNCell(below.shape[-1], rnn.hidden_size, bias=rnn.bias, nonlinearity=rnn.nonlinearity,
                          dtype=x_t.dtype)
        cell.load_state_dict({name: getattr(rnn, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih",
                                                                             "bias_hh") if rnn.bias or "weight" in name})
        below = cell(below, h_prev[k])
        states.append(below)
    return torch.stack(states)


def _module(input, lengths, h_0, w_ih, w_hh, b_ih, b_hh, nonlinearity, batch_first):
    rnn = nn.RNN(w_ih.shape[1], w_ih.shape[0], bias=b_ih is not None, nonlinearity=nonlinearity,
                 batch_first=batch_first, dtype=input.dtype)
    rnn.load_state_dict({k + "_l0": v for k, v in dict(weight_ih=w_ih, weight_hh=w_hh, bias_ih=b_ih,
                                                       bias_hh=b_hh).items() if v is not None})
    packed = nn.utils.rnn.pack_padded_sequence(input, lengths, batch_first=batch_first, enforce_sorted=False)
    output, h_n = rnn(packed, h_0)
    return nn.utils.rnn.pad_packed_sequence(output, batch_first=batch_first, total_length=input.shape[1 if batch_first else 0])[0], h_n
