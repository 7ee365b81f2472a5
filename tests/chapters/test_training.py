"""The chapter 4 checks accept the reference solution and reject wrong answers.

Wrong answers are mutants of the reference solution's own source (the solution
notebook), each one plausible student mistake away from a correct answer, plus a
few hand-written wrappers for what a mutation cannot express. A check that
accepts any of them is a bug.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.chapters.training import (HelloNet, check_clip_grad_norm, check_detach_state,
                                 check_hidden_grad_norms, check_train_hello, decode, encode)
from conftest import REPO
from mutants import mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "04-training" / "training.ipynb"
ALL = (check_clip_grad_norm, check_hidden_grad_norms, check_detach_state, check_train_hello)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def test_cases_are_reproducible_and_leave_the_global_seed_alone(solution):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = check_hidden_grad_norms.make_cases()
    check_hidden_grad_norms(solution["hidden_grad_norms"], quiet=True)
    check_detach_state(solution["detach_state"], quiet=True)
    check_clip_grad_norm(solution["clip_grad_norm"], quiet=True)
    assert torch.equal(torch.rand(3), expected_next), "making or checking cases consumed the student's RNG"
    again = check_hidden_grad_norms.make_cases()
    for a, b in zip(first, again):
        assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    secret = check_hidden_grad_norms.make_cases(seed=2024)
    assert not torch.equal(secret[0].tensors["input"], first[0].tensors["input"])
    seeds = {c.config["seed"] for c in check_train_hello.make_cases(hidden=True, seed=99)}
    assert seeds.isdisjoint({c.config["seed"] for c in check_train_hello.make_cases(hidden=True)})


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
TRAIN_LOOP = """    for step in range(1, max_steps + 1):
        logits = model(x)  # (5, 4): one row of logits per step
        loss = F.cross_entropy(logits, y)  # averaged over all five steps
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # judge the model as it is after this step
            if torch.equal(model(x).argmax(dim=-1), y):
                break"""
GRAD_NORMS_BODY = """    state, states = None, []
    for t in range(input.shape[0]):
        out, state = module(input[t:t + 1], state)  # one step; state is h, or (h, c) for an LSTM
        h_t = state[0] if isinstance(state, tuple) else state  # (1, N, H): what step t + 1 reads
        states.append(h_t)
    loss = loss_fn(torch.cat(states))  # (L, N, H) -> scalar
    grads = torch.autograd.grad(loss, states)  # total dL/dh_t, through every later step"""

# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
MUTANTS = {
    "train: an early stop that never fires": (
        check_train_hello, "train_hello", "model(x).argmax(dim=-1)", "model(x).argmax(dim=0)",
        "but training went on"),
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
    "grad norms: reverse order": (
        check_hidden_grad_norms, "hidden_grad_norms", "return torch.stack([g.norm() for g in grads])",
        "return torch.stack([g.norm() for g in grads]).flip(0)", "reverse order"),
    "grad norms: output.grad of one whole-sequence call": (
        check_hidden_grad_norms, "hidden_grad_norms", "grads = torch.autograd.grad(loss, states)",
        "output, _ = module(input)\n    grads = torch.autograd.grad(loss_fn(output), output)[0]",
        "holds only the gradient that reaches output[t] directly"),
    "grad norms: keeps each step's output, not the state": (
        check_hidden_grad_norms, "hidden_grad_norms", "        states.append(h_t)",
        "        states.append(out)", "holds only the gradient that reaches output[t] directly"),
    "grad norms: squared norms": (
        check_hidden_grad_norms, "hidden_grad_norms", "[g.norm() for g in grads]",
        "[g.pow(2).sum() for g in grads]", "squared norms"),
    "grad norms: first sequence of the batch only": (
        check_hidden_grad_norms, "hidden_grad_norms", "[g.norm() for g in grads]",
        "[g[0, 0].norm() for g in grads]", "only the first sequence of the batch"),
    "grad norms: the cell state of an LSTM": (
        check_hidden_grad_norms, "hidden_grad_norms", GRAD_NORMS_BODY,
        GRAD_NORMS_BODY.replace("states.append(h_t)", "states.append(h_t)\n"
                                "        cells.append(state[1] if isinstance(state, tuple) else h_t)")
        .replace("state, states = None, []", "state, states, cells = None, [], []")
        .replace("torch.autograd.grad(loss, states)",
                 "torch.autograd.grad(loss, cells, allow_unused=True, materialize_grads=True)"),
        "the cell state c_t"),
    "grad norms: the state before each step": (
        check_hidden_grad_norms, "hidden_grad_norms", GRAD_NORMS_BODY,
        GRAD_NORMS_BODY.replace(
            "state, states = None, []",
            "h_0 = torch.zeros(1, input.shape[1], module.hidden_size, dtype=input.dtype,\n"
            "                  requires_grad=True)\n"
            "    state, states = (h_0, torch.zeros_like(h_0)) if isinstance(module, nn.LSTM) else h_0, []")
        .replace("torch.autograd.grad(loss, states)",
                 "torch.autograd.grad(loss, [h_0] + states[:-1], allow_unused=True, materialize_grads=True)"),
        "the state before it"),
    "detach: returns the same tensor": (
        check_detach_state, "detach_state", "return state.detach()", "return state",
        "still attached to the graph"),
    "detach: clones": (
        check_detach_state, "detach_state", "return state.detach()", "return state.detach().clone()",
        "is a copy stored elsewhere in memory"),
    "detach: in place": (
        check_detach_state, "detach_state", "return state.detach()", "return state.detach_()",
        "changed the state it was given"),
    "detach: drops c": (
        check_detach_state, "detach_state", "return type(state)(detach_state(s) for s in state)",
        "return detach_state(state[0])", "dropping c loses the cell state"),
    "detach: lists become tuples": (
        check_detach_state, "detach_state", "return type(state)(detach_state(s) for s in state)",
        "return tuple(detach_state(s) for s in state)", "rebuild a tuple as a tuple and a list as a list"),
    "detach: only the top level": (
        check_detach_state, "detach_state", "return type(state)(detach_state(s) for s in state)",
        "return type(state)(s.detach() for s in state)", "raised AttributeError"),
    "detach: clone instead of detach": (
        check_detach_state, "detach_state", "return state.detach()", "return state.clone()",
        "still attached to the graph"),
    "train: optimizer of another model (not trained)": (
        check_train_hello, "train_hello", "torch.optim.Adam(model.parameters(), lr=0.01)",
        "torch.optim.Adam(HelloNet(cell, hidden_size).parameters(), lr=0.01)",
        "those of a fresh HelloNet"),
    "train: no optimizer step": (
        check_train_hello, "train_hello", "        optimizer.step()\n",
        "        with torch.no_grad():\n            for p in model.parameters():\n"
        "                p -= 0.01 * p.grad\n",
        "no optimizer step was taken"),
    "train: loss on the last step only": (
        check_train_hello, "train_hello", "loss = F.cross_entropy(logits, y)",
        "loss = F.cross_entropy(logits[-1:], y[-1:])", "the returned model maps 'hello' to"),
    "train: reports one step too few": (
        check_train_hello, "train_hello", "return model, step", "return model, step - 1",
        "you reported steps="),
    "train: reports the budget": (
        check_train_hello, "train_hello", "return model, step", "return model, 1",
        "but optimizer.step() was called"),
    "train: plain SGD is too slow": (
        check_train_hello, "train_hello", "torch.optim.Adam(model.parameters(), lr=0.01)",
        "torch.optim.SGD(model.parameters(), lr=0.01)", "the returned model maps 'hello' to"),
    "train: ignores the budget, stops on a small loss": (
        check_train_hello, "train_hello", TRAIN_LOOP,
        """    step = 0
    while True:  # until the loss is small, however long that takes
        step += 1
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.001:
            break""", "more than the budget"),
    "train: steps around the counter, then one counted step": (
        check_train_hello, "train_hello", TRAIN_LOOP,
        """    for _ in range(max_steps * 5):  # uncounted: the step function under the hook
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step.__wrapped__(optimizer)
    step = 1
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()""", "was not the HelloNet built right after torch.manual_seed(seed)"),
    "train: counted steps, then more around the counter": (
        check_train_hello, "train_hello", "        optimizer.step()\n",
        "        optimizer.step()\n        for _ in range(3):\n"
        "            optimizer.step.__wrapped__(optimizer)\n",
        "the parameters changed"),
    "train: ignores cell": (
        check_train_hello, "train_hello", "model = HelloNet(cell, hidden_size)",
        "model = HelloNet('rnn', hidden_size)", "build the model with HelloNet(cell, hidden_size)"),
    "train: steps as a tensor of floats": (
        check_train_hello, "train_hello", "return model, step", "return model, torch.tensor(float(step))",
        "steps should be an int"),
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


def test_grad_norm_feedback_names_the_first_wrong_step(solution):
    def late_error(module, input, loss_fn):
        norms = solution["hidden_grad_norms"](module, input, loss_fn).clone()
        norms[7] *= 2
        return norms
    with pytest.raises(CheckFailure, match=r"norms\[t=7\] is .* expected"):
        check_hidden_grad_norms(late_error, quiet=True)


@pytest.mark.parametrize("result, words", [
    (lambda norms: norms.tolist(), "norms should be a torch.Tensor, got a list of 12"),
    (lambda norms: norms.float(), "norms has dtype torch.float32, expected torch.float64"),
    (lambda norms: norms[:-1], "norms has shape (11,), expected (12,)"),
    (lambda norms: norms.unsqueeze(1), "norms has shape (12, 1), expected (12,)"),
])
def test_wrong_return_values_get_clear_messages(solution, result, words):
    def student(*args):
        return result(solution["hidden_grad_norms"](*args))
    with pytest.raises(CheckFailure) as failure:
        check_hidden_grad_norms(student, quiet=True)
    assert words in str(failure.value)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()

    def crashes(module, input, loss_fn):
        return module(input[0])[0].norm(dim=5)
    for check in ALL:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)
    with pytest.raises(CheckFailure) as failure:
        check_hidden_grad_norms(crashes)
    message = str(failure.value)
    assert message.startswith("hidden_grad_norms raised IndexError: ")
    assert "return module(input[0])[0].norm(dim=5)" in message and failure.value.__cause__ is None


def test_train_hello_must_return_a_model_and_steps(solution):
    wanted = r"should return a tuple \(model, steps\), got an? ([\w.]*\.)?HelloNet"
    with pytest.raises(CheckFailure, match=wanted):
        check_train_hello(lambda *args, **kwargs: solution["train_hello"](*args, **kwargs)[0], quiet=True)
    with pytest.raises(CheckFailure, match="model an nn.Module"):
        check_train_hello(lambda *args, **kwargs: ("model", 3), quiet=True)


def test_train_hello_trusts_weights_not_the_students_forward(solution):
    """A model whose own forward cheats is read through the check's HelloNet, not its forward."""
    class Cheat(HelloNet):
        def forward(self, x):
            return nn.functional.one_hot(encode("ohlol"), 4).float() * 10
    def cheat(cell, hidden_size, seed, max_steps=200):
        torch.manual_seed(seed)
        model = Cheat(cell, hidden_size)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        model(encode("hello"))  # "perfect" already
        optimizer.step()  # a step with no gradients changes nothing
        return model, 1
    assert decode(cheat("rnn", 8, 0)[0](encode("hello")).argmax(-1)) == "ohlol"
    with pytest.raises(CheckFailure, match="the returned model maps 'hello' to"):
        check_train_hello(cheat, quiet=True)


def test_train_hello_stays_within_budget_for_many_seeds(solution):
    """The reference reaches "ohlol" well within budget for any seed a grader might draw."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the check does: tiny networks train fastest on one thread
    try:
        for config in check_train_hello.VISIBLE + check_train_hello.HIDDEN:
            for seed in range(6):
                _, steps = solution["train_hello"](config["cell"], config["hidden_size"],
                                                  1000 + seed, max_steps=config["max_steps"])
                assert steps <= config["max_steps"] // 2, (config, seed, steps)
    finally:
        torch.set_num_threads(threads)


def test_detach_state_checks_identity_not_only_values(solution):
    """A detached copy made with .data sharing storage is accepted; a detached copy is not."""
    def via_data(state):
        if isinstance(state, torch.Tensor):
            return state.data
        return type(state)(via_data(s) for s in state)
    assert check_detach_state(via_data, hidden=True, quiet=True) is None

    def copies(state):
        if isinstance(state, torch.Tensor):
            return torch.tensor(state.detach().numpy())
        return type(state)(copies(s) for s in state)
    with pytest.raises(CheckFailure, match="is a copy stored elsewhere"):
        check_detach_state(copies, quiet=True)


def test_notebook_hellonet_is_the_one_the_check_loads(solution):
    """The check reads the student's weights through its own HelloNet: the two must agree."""
    from rnn_by_hand.chapters.training import VOCAB
    assert solution["VOCAB"] == VOCAB
    assert torch.equal(solution["encode"]("ohlol"), encode("ohlol"))
    for cell in ("rnn", "lstm", "gru"):
        torch.manual_seed(3)
        theirs = solution["HelloNet"](cell, 5)
        torch.manual_seed(3)
        ours = HelloNet(cell, 5)
        assert theirs.state_dict().keys() == ours.state_dict().keys()
        assert all(torch.equal(theirs.state_dict()[k], v) for k, v in ours.state_dict().items())
        assert torch.equal(theirs(encode("hello")), ours(encode("hello")))


def test_registry_lists_every_chapter_four_check():
    assert {"04-training/clip_grad_norm", "04-training/hidden_grad_norms", "04-training/detach_state",
            "04-training/train_hello"} <= set(CHECKS)


def test_reference_really_is_torch():
    """Changing a case's weights changes the expected norms; the clipping reference is torch's."""
    case = check_hidden_grad_norms.make_cases()[0]
    before = check_hidden_grad_norms.run_reference(case)["norms"]
    case.tensors["state.weight_hh_l0"] = case.tensors["state.weight_hh_l0"] * 2
    assert not torch.allclose(check_hidden_grad_norms.run_reference(case)["norms"], before)
    case = check_clip_grad_norm.make_cases()[0]
    params = check_clip_grad_norm.parameters(case)
    total = torch.nn.utils.clip_grad_norm_(params, case.config["max_norm"])
    expected = check_clip_grad_norm.run_reference(case)
    assert torch.equal(total, expected["total_norm"])
    assert all(torch.equal(p.grad, g) for p, g in zip(params, expected["grads"]))
