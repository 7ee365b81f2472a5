"""The chapter 4 checks accept the reference solution and reject wrong answers.

Wrong answers are mutants of the reference solution's own source (the solution
notebook), each one plausible student mistake away from a correct answer, plus a
few hand-written wrappers for what a mutation cannot express. A check that
accepts any of them is a bug. The references we wrote ourselves (the by-hand step
gradients behind the hints, the per-sequence loss of a padded batch) are tested
against autograd and F.cross_entropy here.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.chapters.training import (PAD, Tagger, check_carry_state, check_clip_grad_norm,
                                           check_rnn_step_backward, check_train_step_padded)
from rnn_by_hand.chapters.training.backward import MISTAKES, step_gradients
from rnn_by_hand.chapters.training.padded import masked_losses, reference_loss, step_variant, tagger
from conftest import REPO
from mutants import mutant_test, student_namespace, untrapped

NOTEBOOK = REPO / "solutions" / "04-training" / "training.ipynb"
ALL = (check_clip_grad_norm, check_rnn_step_backward, check_carry_state, check_train_step_padded)
DTYPE = torch.float64


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_cases_are_reproducible_and_leave_the_global_seed_alone(solution):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = check_rnn_step_backward.make_cases()
    check_rnn_step_backward(solution["rnn_step_backward"], quiet=True)
    check_carry_state(solution["carry_state"], quiet=True)
    check_clip_grad_norm(solution["clip_grad_norm"], quiet=True)
    check_train_step_padded(solution["train_step_padded"], quiet=True)
    assert torch.equal(torch.rand(3), expected_next), "making or checking cases consumed the student's RNG"
    again = check_rnn_step_backward.make_cases()
    for a, b in zip(first, again):
        assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    secret = check_rnn_step_backward.make_cases(seed=2024)
    assert not torch.equal(secret[0].tensors["x"], first[0].tensors["x"])
    padded = check_train_step_padded.make_cases(hidden=True)
    secret = check_train_step_padded.make_cases(hidden=True, seed=99)
    assert not torch.equal(padded[0].tensors["padded"], secret[0].tensors["padded"])


def test_clipping_cases_cover_what_the_exercise_promises():
    cases = check_clip_grad_norm.make_cases() + check_clip_grad_norm.make_cases(hidden=True)
    configs = [c.config for c in cases]
    assert {c["container"] for c in configs} == {"list", "generator", "tensor"}
    assert {c["norm_type"] for c in configs} == {2.0, math.inf}
    assert any(c["no_grad"] for c in configs)
    assert any(c["ratio"] == "equal" for c in configs) and any(c["ratio"] != "equal" and c["ratio"] > 1
                                                                for c in configs)
    # some case clips and some does not: torch really scales in one and not the other
    changed = []
    for case in cases:
        expected = check_clip_grad_norm.run_reference(case)["grads"]
        original = [case.tensors.get(f"grad{k}") for k in range(len(expected))]
        changed.append(any(g is not None and not torch.equal(g, o) for g, o in zip(expected, original)))
    assert any(changed) and not all(changed)


CLIP_SCALE = ("            for g in grads:\n"
              "                g.mul_(scale)  # in place: p.grad stays the same tensor")

PACKING = """    packed = pack_padded_sequence(embedded, lengths, enforce_sorted=False)  # real steps only
    output, _ = model.rnn(packed)
    output, _ = pad_packed_sequence(output, total_length=L)  # (L, N, 2H), zeros in the padding"""
CARRY_LEAF = """        keep = ~reset.unsqueeze(-1)  # (N, 1): broadcasts against (..., N, H)
        return torch.where(keep, state.detach(), 0.0)  # a new tensor: the original stays intact"""
BACKWARD_RETURN = "    return grad_x, grad_h_prev, grad_weight_ih, grad_weight_hh, grad_bias, grad_bias.clone()"

# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
MUTANTS = {
    "clip: each parameter by its own norm": (
        check_clip_grad_norm, "clip_grad_norm",
        "if scale < 1:  # shrink only; small gradients are left as they are\n" + CLIP_SCALE,
        "for g in grads:\n"
        "            own = max_norm / (torch.linalg.vector_norm(g, norm_type) + 1e-6)\n"
        "            if own < 1:\n"
        "                g.mul_(own)",
        "clipped each parameter by the norm of its own gradient"),
    "clip: not in place": (
        check_clip_grad_norm, "clip_grad_norm", "g.mul_(scale)  # in place: p.grad stays the same tensor",
        "pass\n            for p in parameters:\n                if p.grad is not None:\n"
        "                    p.grad = p.grad * scale",
        "has the right values but is a new tensor"),
    "clip: returns the clipped norm": (
        check_clip_grad_norm, "clip_grad_norm", "    return total_norm\n",
        "    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, norm_type) "
        "for g in grads]), norm_type)\n",
        "you returned the norm after clipping"),
    "clip: a total norm of 1 without gradients": (
        check_clip_grad_norm, "clip_grad_norm", "        return torch.tensor(0.0)\n",
        "        return torch.tensor(1.0)\n", "no parameter has a gradient"),
    "clip: no epsilon": (
        check_clip_grad_norm, "clip_grad_norm", "scale = max_norm / (total_norm + 1e-6)",
        "scale = max_norm / total_norm", "leaves out the 1e-6"),
    "clip: always scales": (
        check_clip_grad_norm, "clip_grad_norm", "if scale < 1:", "if True:",
        "although their total norm was below max_norm"),
    "clip: clamps the scale at 1 without the epsilon": (
        check_clip_grad_norm, "clip_grad_norm", "if scale < 1:", "if total_norm > max_norm:",
        "leaves out the 1e-6"),
    "clip: reads a generator twice": (
        check_clip_grad_norm, "clip_grad_norm", CLIP_SCALE,
        "            for p in parameters:\n                if p.grad is not None:\n"
        "                    p.grad.mul_(scale)",
        "can be read only once"),
    "clip: sum of per-parameter norms": (
        check_clip_grad_norm, "clip_grad_norm", "torch.linalg.vector_norm(norms, norm_type)",
        "norms.sum()", "plain sum of the per-parameter norms"),
    "clip: always the 2-norm": (
        check_clip_grad_norm, "clip_grad_norm", "def clip_grad_norm(parameters, max_norm, norm_type=2.0):",
        "def clip_grad_norm(parameters, max_norm, norm_type=2.0):\n    norm_type = 2.0",
        "your total matches the 2-norm"),
    "clip: forgets .grad is None": (
        check_clip_grad_norm, "clip_grad_norm", "grads = [p.grad for p in parameters if p.grad is not None]",
        "grads = [p.grad for p in parameters]", "raised TypeError"),
    "clip: no single tensor": (
        check_clip_grad_norm, "clip_grad_norm", "        parameters = [parameters]\n",
        "        pass\n", "wrap a single tensor in a list"),
    "clip: returns a float": (
        check_clip_grad_norm, "clip_grad_norm", "    return total_norm\n", "    return total_norm.item()\n",
        "return it as a 0-dimensional tensor"),
    "backward: tanh' from the pre-activation": (
        check_rnn_step_backward, "rnn_step_backward", "slope = 1 - torch.tanh(a) ** 2",
        "slope = 1 - a ** 2", "1 - a^2 with a the pre-activation"),
    "backward: no slope": (
        check_rnn_step_backward, "rnn_step_backward", "delta = grad_h * slope", "delta = grad_h",
        "leave out the derivative of the nonlinearity"),
    "backward: tanh's slope for a ReLU": (
        check_rnn_step_backward, "rnn_step_backward", 'if nonlinearity == "tanh":', "if True:",
        "yours is tanh's"),
    "backward: ReLU's slope 1 at a == 0": (
        check_rnn_step_backward, "rnn_step_backward", "slope = (a > 0)", "slope = (a >= 0)",
        "not a >= 0"),
    "backward: weights averaged over the batch": (
        check_rnn_step_backward, "rnn_step_backward", BACKWARD_RETURN,
        "    n = x.shape[0]\n    return grad_x, grad_h_prev, grad_weight_ih / n, grad_weight_hh / n, "
        "grad_bias / n, grad_bias / n", "averaged over the batch"),
    "backward: W_hh transposed for h_prev": (
        check_rnn_step_backward, "rnn_step_backward", "grad_h_prev = delta @ weight_hh ",
        "grad_h_prev = delta @ weight_hh.T ", "uses W_hh^T"),
    "backward: weight gradient transposed": (
        check_rnn_step_backward, "rnn_step_backward", "grad_weight_ih = delta.T @ x",
        "grad_weight_ih = x.T @ delta", "the shape of the transposed weight"),
    "backward: a bias gradient per row": (
        check_rnn_step_backward, "rnn_step_backward", "grad_bias = delta.sum(0)", "grad_bias = delta",
        "one row per sequence"),
    "carry: not detached": (
        check_carry_state, "carry_state", "torch.where(keep, state.detach(), 0.0)",
        "torch.where(keep, state, 0.0)", "still attached to the graph"),
    "carry: reset the wrong way round": (
        check_carry_state, "carry_state", "keep = ~reset.unsqueeze(-1)", "keep = reset.unsqueeze(-1)",
        "the wrong way round"),
    "carry: zeroes the detached tensor in place": (
        check_carry_state, "carry_state", CARRY_LEAF,
        "        carried = state.detach()\n        carried[..., reset, :] = 0\n        return carried",
        "shares memory with the original"),
    "carry: the batch as the first dimension": (
        check_carry_state, "carry_state", CARRY_LEAF,
        "        carried = state.detach().clone()\n        carried[reset] = 0\n        return carried",
        "the batch is the second-to-last dimension"),
    "carry: detaches without a reset": (
        check_carry_state, "carry_state", "return torch.where(keep, state.detach(), 0.0)",
        "return state.detach()", "nothing was reset"),
    "carry: lists become tuples": (
        check_carry_state, "carry_state", "return type(state)(carry_state(s, reset) for s in state)",
        "return tuple(carry_state(s, reset) for s in state)", "lists stay lists"),
    "carry: resets h but not c": (
        check_carry_state, "carry_state", "    return type(state)(carry_state(s, reset) for s in state)",
        "    if len(state) == 2 and all(isinstance(s, torch.Tensor) for s in state):  # (h, c)\n"
        "        return type(state)([carry_state(state[0], reset), state[1].detach()])\n"
        "    return type(state)(carry_state(s, reset) for s in state)",
        "reset the cell state c too"),
    "padded: no packing": (
        check_train_step_padded, "train_step_padded", PACKING, "    output, _ = model.rnn(embedded)",
        "without packing"),
    "padded: the padding in the loss": (
        check_train_step_padded, "train_step_padded", "F.cross_entropy(logits[real], targets[real])",
        "F.cross_entropy(logits.flatten(0, 1), targets.flatten())", "includes the padded steps"),
    "padded: divides by L * N": (
        check_train_step_padded, "train_step_padded", "F.cross_entropy(logits[real], targets[real])",
        "F.cross_entropy(logits[real], targets[real], reduction='sum') / real.numel()",
        "divide by the number of real steps"),
    "padded: the mean of each sequence's mean": (
        check_train_step_padded, "train_step_padded", "F.cross_entropy(logits[real], targets[real])",
        "torch.stack([F.cross_entropy(logits[:n, k], targets[:n, k])\n"
        "                        for k, n in enumerate(lengths.tolist())]).mean()",
        "the mean of each sequence's mean"),
    "padded: no zero_grad": (
        check_train_step_padded, "train_step_padded",
        "    optimizer.zero_grad()  # the gradients of an earlier step must not add to these\n", "",
        "call optimizer.zero_grad() before loss.backward()"),
    "padded: no optimizer step": (
        check_train_step_padded, "train_step_padded", "    optimizer.step()\n", "",
        "no parameter changed"),
    "padded: lengths assumed sorted": (
        check_train_step_padded, "train_step_padded", "enforce_sorted=False", "enforce_sorted=True",
        "enforce_sorted=False"),
}

test_mistake_is_rejected_with_specific_feedback = pytest.mark.filterwarnings(
    "ignore:The .grad attribute of a Tensor that is not a leaf")(mutant_test(NOTEBOOK, MUTANTS))

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("clip_grad_norm", "from torch.nn.utils import clip_grad_norm_ as clip_grad_norm",
                  ["clip_grad_norm"])


def test_clipping_that_calls_torch_is_rejected():
    def wrapped(parameters, max_norm, norm_type=2.0):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type)
    with pytest.raises(CheckFailure, match="not written by hand: it calls torch.nn.utils.clip_grad_norm_"):
        check_clip_grad_norm(wrapped, quiet=True)
    # the trap is removed afterwards
    p = nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    assert torch.nn.utils.clip_grad_norm_([p], 1.0) > 1


def test_feedback_names_the_parameter_case_and_index(solution):
    def shrinks_the_last_one_too_much(parameters, max_norm, norm_type=2.0):
        parameters = list(parameters) if not isinstance(parameters, torch.Tensor) else [parameters]
        total = solution["clip_grad_norm"](parameters, max_norm, norm_type)
        parameters[-1].grad.mul_(0.5)
        return total
    with pytest.raises(CheckFailure) as failure:
        check_clip_grad_norm(shrinks_the_last_one_too_much, quiet=True)
    message = str(failure.value)
    assert "clip_grad_norm does not match torch.nn.utils.clip_grad_norm_ on case 1 of 5" in message
    assert "parameters[2].grad[i=0, j=0] is" in message and "largest error" in message


# -- rnn_step_backward ------------------------------------------------------------------

def test_backward_cases_cover_what_the_exercise_promises():
    for hidden in (False, True):
        configs = [c.config for c in check_rnn_step_backward.make_cases(hidden=hidden)]
        assert {c["nonlinearity"] for c in configs} == {"tanh", "relu"}
        assert any(c["N"] == 1 for c in configs) and any(c["N"] > 1 for c in configs)
        assert any(c["input_size"] == c["hidden_size"] for c in configs)  # a transposed W keeps its shape
        assert any(c["input_size"] != c["hidden_size"] for c in configs)


def test_every_relu_case_of_a_batch_has_units_exactly_at_zero():
    """Where autograd's ReLU slope is 0, so that a >= 0 for a > 0 fails the visible check."""
    for hidden in (False, True):
        for case in check_rnn_step_backward.make_cases(hidden=hidden):
            if case.config["nonlinearity"] == "relu" and case.config["N"] > 1:
                t = case.tensors
                pre = t["x"] @ t["weight_ih"].T + t["bias_ih"] + t["h_prev"] @ t["weight_hh"].T + t["bias_hh"]
                assert (pre == 0).any() and (pre != 0).any()
    assert any(c.config["nonlinearity"] == "relu" and c.config["N"] > 1
               for c in check_rnn_step_backward.make_cases())


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_our_by_hand_step_gradients_are_autograd_and_their_mistakes_differ(nonlinearity):
    """step_gradients, behind the hints, is autograd's answer; each mistake it names changes it."""
    torch.manual_seed(5)
    cell = nn.RNNCell(4, 3, nonlinearity=nonlinearity, dtype=DTYPE)
    x, h_prev = torch.randn(5, 4, dtype=DTYPE), torch.randn(5, 3, dtype=DTYPE)
    with torch.no_grad():   # units exactly at a = 0, as the check's ReLU cases have
        x[-1], h_prev[-1] = 0, 0
        cell.bias_hh[::2] = -cell.bias_ih[::2]
    x, h_prev = x.requires_grad_(), h_prev.requires_grad_()
    grad_h = torch.randn(5, 3, dtype=DTYPE)
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    expected = torch.autograd.grad(cell(x, h_prev), [x, h_prev, *params], grad_outputs=grad_h)
    w = {k: p.detach() for k, p in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), params)}
    own = untrapped(step_gradients)
    mine = own(grad_h, x.detach(), h_prev.detach(), w, nonlinearity)
    for got, want in zip(mine.values(), expected):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-13)
    for mistake in MISTAKES:
        if nonlinearity == "tanh" and (mistake.startswith("tanh_slope") or mistake == "relu_at_zero"):
            continue  # tanh's slope is the right one for tanh, and it has no kink at 0
        wrong = own(grad_h, x.detach(), h_prev.detach(), w, nonlinearity, mistake)
        assert any(not torch.allclose(a, b) for a, b in zip(wrong.values(), expected)), mistake


def autograd_answer(grad_h, x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    inputs = [t.clone().requires_grad_() for t in (x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)]
    phi = torch.tanh if nonlinearity == "tanh" else torch.relu
    h = phi(inputs[0] @ inputs[2].T + inputs[4] + inputs[1] @ inputs[3].T + inputs[5])
    h.backward(grad_h)
    return tuple(t.grad for t in inputs)


def grad_answer(grad_h, x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    inputs = [t.clone().requires_grad_() for t in (x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)]
    cell = nn.RNNCell(x.shape[1], h_prev.shape[1], nonlinearity=nonlinearity, dtype=x.dtype)
    h = torch.tanh(inputs[0] @ inputs[2].T + inputs[4] + inputs[1] @ inputs[3].T + inputs[5])
    del cell
    return torch.autograd.grad(h, inputs, grad_outputs=grad_h)


def vjp_answer(grad_h, x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    phi = torch.tanh if nonlinearity == "tanh" else torch.relu
    _, vjp = torch.func.vjp(lambda a, b, c, d, e, f: phi(a @ c.T + e + b @ d.T + f),
                            x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)
    return vjp(grad_h)


@pytest.mark.parametrize("student, words", [
    (autograd_answer, "it calls torch."), (grad_answer, "it calls torch.autograd.grad"),
    (vjp_answer, "it calls torch.autograd.grad")], ids=["backward", "grad", "vjp"])
def test_backward_answers_that_use_autograd_are_rejected(student, words):
    with pytest.raises(CheckFailure, match="is not written by hand") as failure:
        check_rnn_step_backward(student, quiet=True)
    assert words in str(failure.value)
    # the traps are removed afterwards: autograd works again for everyone else
    w = torch.ones(2, requires_grad=True)
    (w * 3).sum().backward()
    assert torch.equal(w.grad, torch.full((2,), 3.0))


def backward_einsum(grad_h, x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
    a = F.linear(x, weight_ih, bias_ih) + F.linear(h_prev, weight_hh, bias_hh)
    h = torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)
    delta = grad_h * ((1 - h * h) if nonlinearity == "tanh" else (h > 0).double())
    return (torch.einsum("nh,hi->ni", delta, weight_ih), torch.einsum("nh,hj->nj", delta, weight_hh),
            torch.einsum("nh,ni->hi", delta, x), torch.einsum("nh,nj->hj", delta, h_prev),
            delta.sum(0), delta.sum(0))


@pytest.mark.parametrize("result, words", [
    (lambda grads: grads[:5], "should return a tuple of six gradients"),
    (lambda grads: dict(enumerate(grads)), "should return a tuple of six gradients"),
    (lambda grads: (grads[0].float(),) + tuple(grads[1:]), "grad_x has dtype torch.float32"),
    (lambda grads: grads[:2] + (grads[2].T,) + grads[3:], "the shape of the transposed weight"),
])
def test_wrong_backward_results_get_clear_messages(solution, result, words):
    def student(*args, **kwargs):
        return result(tuple(solution["rnn_step_backward"](*args, **kwargs)))
    with pytest.raises(CheckFailure) as failure:
        check_rnn_step_backward(student, quiet=True)
    assert words in str(failure.value)


def test_backward_feedback_names_the_gradient_case_and_index(solution):
    def late_error(*args, **kwargs):
        grads = list(solution["rnn_step_backward"](*args, **kwargs))
        grads[3] = grads[3].clone()
        grads[3][1, 2] += 1.0
        return tuple(grads)
    with pytest.raises(CheckFailure) as failure:
        check_rnn_step_backward(late_error, quiet=True)
    message = str(failure.value)
    assert message.startswith("rnn_step_backward does not match autograd through torch.nn.RNNCell "
                              "on case 1 of 4 (nonlinearity='tanh', N=3, input_size=4, hidden_size=5):")
    assert "grad_weight_hh[h=1, j=2] is" in message


# -- carry_state ------------------------------------------------------------------------

def test_carry_cases_cover_every_kind_of_state_and_both_resets():
    for hidden in (False, True):
        cases = check_carry_state.make_cases(hidden=hidden)
        assert {c.config["kind"] for c in cases} == {"gru", "lstm", "lstm_cells", "gru_and_lstm", "leaf"}
        for case in cases:
            reset = case.tensors["reset"]
            assert reset.any() and not reset.all()
        assert any(c.config["num_layers"] > 1 for c in cases if c.config["kind"] in ("gru", "lstm"))


def carry_by_mask(state, reset):
    if isinstance(state, (tuple, list)):
        return type(state)(carry_by_mask(s, reset) for s in state)
    keep = (~reset).to(state.dtype).unsqueeze(-1)  # (N, 1)
    return state.detach() * keep


def carry_by_clone(state, reset):
    if isinstance(state, (tuple, list)):
        return type(state)(carry_by_clone(s, reset) for s in state)
    fresh = state.detach().clone()
    fresh[..., reset, :] = 0
    return fresh


def test_carry_state_reference_agrees_with_nn_lstm_fresh_state():
    """A reset stream starts like a fresh sequence: nn.LSTM from its zero state gives the same."""
    torch.manual_seed(2)
    lstm = nn.LSTM(3, 4, num_layers=2, dtype=DTYPE)
    first, second = torch.randn(5, 3, 3, dtype=DTYPE), torch.randn(4, 3, 3, dtype=DTYPE)
    _, state = lstm(first)
    reset = torch.tensor([True, False, True])
    carried = carry_by_mask(state, reset)
    out, _ = lstm(second, carried)
    fresh, _ = lstm(second[:, reset])  # those streams alone, from zeros
    assert torch.allclose(out[:, reset], fresh)
    kept, _ = lstm(second[:, ~reset], tuple(s[:, ~reset] for s in state))
    assert torch.allclose(out[:, ~reset], kept)


# -- train_step_padded ------------------------------------------------------------------

def test_padded_cases_need_both_the_packing_and_the_mask():
    for hidden in (False, True):
        for case in check_train_step_padded.make_cases(hidden=hidden):
            lengths = case.tensors["lengths"]
            assert lengths.max() == case.tensors["padded"].shape[0] and lengths.min() < lengths.max()
            assert not torch.equal(lengths, lengths.sort(descending=True).values)  # enforce_sorted matters
            expected = untrapped(step_variant)(case)
            for variant in ("unpacked", "unmasked", "all_positions", "per_sequence", "stale"):
                wrong = untrapped(step_variant)(case, variant)
                assert any(not torch.allclose(wrong["grads"][k], g) for k, g in expected["grads"].items())
        assert {c.config["cell"] for c in check_train_step_padded.make_cases(hidden=hidden)} == \
            {"rnn", "lstm", "gru"}


def test_our_per_sequence_reference_is_cross_entropy_and_packing():
    """With equal lengths the reference is F.cross_entropy over the batch; with padding it is what
    packing gives, and what the padded batch gives without packing is something else."""
    torch.manual_seed(4)
    config = dict(vocab_size=7, num_classes=3, cell="lstm", embedding_dim=4, hidden_size=3)
    model = untrapped(tagger)(config)
    x, y = torch.randint(1, 7, (5, 3)), torch.randint(3, (5, 3))
    loss = untrapped(reference_loss)(model, x, torch.tensor([5, 5, 5]), y)
    assert torch.allclose(loss, F.cross_entropy(model(x).flatten(0, 1), y.flatten()))
    lengths = torch.tensor([2, 5, 3])
    real = torch.arange(5).unsqueeze(1) < lengths
    x = x.masked_fill(~real, PAD)
    loss = untrapped(reference_loss)(model, x, lengths, y)
    packed = untrapped(masked_losses)(model, x, lengths, y)[real].mean()
    unpacked = untrapped(masked_losses)(model, x, lengths, y, packed=False)[real].mean()
    assert torch.allclose(loss, packed) and not torch.allclose(loss, unpacked)


def step_via_packed_data(model, optimizer, padded, lengths, targets):
    """Cross-entropy straight on the packed data: the same real steps, in packing's order."""
    out, _ = model.rnn(pack_padded_sequence(model.embedding(padded), lengths, enforce_sorted=False))
    wanted = pack_padded_sequence(targets, lengths, enforce_sorted=False).data
    loss = F.cross_entropy(model.decoder(out.data), wanted)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_one_by_one(model, optimizer, padded, lengths, targets):
    """Every sequence alone through the model's own forward, summed, over the number of steps."""
    optimizer.zero_grad()
    total = sum(F.cross_entropy(model(padded[:n, k:k + 1])[:, 0], targets[:n, k], reduction="sum")
                for k, n in enumerate(lengths.tolist()))
    loss = total / lengths.sum()
    loss.backward()
    optimizer.step()
    return loss.detach()


def step_ignore_index(model, optimizer, padded, lengths, targets):
    from torch.nn.utils.rnn import pad_packed_sequence
    out, _ = model.rnn(pack_padded_sequence(model.embedding(padded), lengths, enforce_sorted=False))
    out, _ = pad_packed_sequence(out)
    marked = targets.masked_fill(torch.arange(len(targets)).unsqueeze(1) >= lengths, -100)
    loss = F.cross_entropy(model.decoder(out).permute(1, 2, 0), marked.T)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_padded_step_reads_the_weights_not_the_answers_word(solution):
    """An answer that reports the right loss but never trains is rejected."""
    own_loss = untrapped(reference_loss)  # made before the check traps the original

    def reports_only(model, optimizer, padded, lengths, targets):
        with torch.no_grad():
            return own_loss(model, padded, lengths, targets)
    with pytest.raises(CheckFailure, match="no parameter changed"):
        check_train_step_padded(reports_only, quiet=True)
    with pytest.raises(CheckFailure, match="should return the loss, a 0-dimensional tensor"):
        check_train_step_padded(lambda *args: str(solution["train_step_padded"](*args)), quiet=True)


def test_notebook_tagger_is_the_one_the_check_builds(solution):
    """The check passes its own Tagger: the notebook's must have the same parts and numbers."""
    assert solution["PAD"] == PAD
    for cell in ("rnn", "lstm", "gru"):
        torch.manual_seed(3)
        theirs = solution["Tagger"](6, 3, cell)
        torch.manual_seed(3)
        ours = Tagger(6, 3, cell)
        assert theirs.state_dict().keys() == ours.state_dict().keys()
        assert all(torch.equal(theirs.state_dict()[k], v) for k, v in ours.state_dict().items())
        x = torch.randint(1, 6, (4, 2))
        assert torch.equal(theirs(x), ours(x))


# -- every check ------------------------------------------------------------------------

@pytest.mark.parametrize("check, student", [
    (check_rnn_step_backward, backward_einsum),
    (check_carry_state, carry_by_mask),
    (check_carry_state, carry_by_clone),
    (check_train_step_padded, step_via_packed_data),
    (check_train_step_padded, step_one_by_one),
    (check_train_step_padded, step_ignore_index),
], ids=lambda x: getattr(x, "__name__", ""))
def test_other_correct_answers_pass(check, student):
    for hidden in (False, True):
        check(student, hidden=hidden, quiet=True)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()

    def crashes(grad_h, x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity="tanh"):
        return x @ weight_hh
    for check in ALL:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)
    with pytest.raises(CheckFailure) as failure:
        check_rnn_step_backward(crashes)
    message = str(failure.value)
    assert message.startswith("rnn_step_backward raised RuntimeError: ")
    assert "return x @ weight_hh" in message and failure.value.__cause__ is None


def test_registry_lists_every_chapter_four_check():
    assert {"04-training/clip_grad_norm", "04-training/rnn_step_backward", "04-training/carry_state",
            "04-training/train_step_padded"} <= set(CHECKS)


def test_reference_really_is_torch():
    """Changing a case's weights changes the expected gradients; the clipping reference is torch's."""
    case = check_rnn_step_backward.make_cases()[0]
    before = check_rnn_step_backward.run_reference(case)["grad_x"]
    case.tensors["weight_ih"] = case.tensors["weight_ih"] * 2
    assert not torch.allclose(check_rnn_step_backward.run_reference(case)["grad_x"], before)
    case = check_clip_grad_norm.make_cases()[0]
    params = check_clip_grad_norm.parameters(case)
    total = torch.nn.utils.clip_grad_norm_(params, case.config["max_norm"])
    expected = check_clip_grad_norm.run_reference(case)
    assert torch.equal(total, expected["total_norm"])
    assert all(torch.equal(p.grad, g) for p, g in zip(params, expected["grads"]))


# -- partial credit: a mistake in one part costs that part ---------------------------------

@pytest.mark.parametrize("name, share", [
    ("clip: forgets .grad is None", "Partial credit: 2 of 3 parts pass (2-norm, norm_type=inf); "
                                    "still to do: some .grad None."),
    ("backward: tanh's slope for a ReLU", "Partial credit: 1 of 2 parts pass (tanh); still to do: relu."),
    ("carry: lists become tuples", "Partial credit: 3 of 4 parts pass (a tensor, a tuple (h, c), "
                                   "a leaf h_0); still to do: nested states."),
])
@pytest.mark.parametrize("hidden", [False, True])
def test_a_mistake_in_one_part_earns_the_others(name, share, hidden):
    check, cell, old, new, _ = MUTANTS[name]
    student = student_namespace(NOTEBOOK, mutation=(cell, old, new))[check.student_name]
    with pytest.raises(CheckFailure) as failure:
        check(student, hidden=hidden, quiet=True)
    assert str(failure.value).endswith(share), str(failure.value)


def test_parts_are_given_where_the_work_separates():
    """The training step runs one code path for every cell: its cases are no parts of the work."""
    assert {c.student_name for c in (check_clip_grad_norm, check_rnn_step_backward, check_carry_state,
                                     check_train_step_padded) if c.PARTS} == \
        {"clip_grad_norm", "rnn_step_backward", "carry_state"}
