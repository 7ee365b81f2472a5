"""train_hello(cell, hidden_size, seed, max_steps): a HelloNet that maps "hello" to "ohlol".

Nothing the student reports is taken on trust: the check counts the optimizer steps
itself (StepCounter), replays the parameters, and loads the trained weights into a
trusted HelloNet of its own to read the prediction."""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from ...checking import (Case, Check, CheckFailure, OwnMessages, call_student, describe_config, seeded,
                         unpack_pair, untouched_rng)
from ...checking.compare import type_name
from ...common import RECURRENT_MODULES

# -- the toy task: "hello" -> "ohlol" --------------------------------------------

VOCAB = "ehlo"  # sorted characters of "hello": e=0, h=1, l=2, o=3
SOURCE, TARGET = "hello", "ohlol"


def encode(text: str) -> torch.Tensor:
    """Characters to a (L,) tensor of indices into VOCAB."""
    return torch.tensor([VOCAB.index(c) for c in text])


def decode(indices: torch.Tensor) -> str:
    """A (L,) tensor of indices back to characters."""
    return "".join(VOCAB[int(i)] for i in indices)


class HelloNet(nn.Module):
    """nn.Embedding(4, 10) -> nn.RNN, nn.LSTM or nn.GRU (one layer) -> nn.Linear(hidden_size, 4).

    forward(x) takes indices of shape (L,) (or (L, N)) and returns one row of 4
    logits per step, (L, 4) (or (L, N, 4)), for a cross-entropy over every step.
    """

    def __init__(self, cell: str = "rnn", hidden_size: int = 8, embedding_dim: int = 10):
        super().__init__()
        if cell not in RECURRENT_MODULES:
            raise ValueError(f"cell must be one of {sorted(RECURRENT_MODULES)}, got {cell!r}")
        self.embedding = nn.Embedding(len(VOCAB), embedding_dim)
        self.rnn = RECURRENT_MODULES[cell](embedding_dim, hidden_size)
        self.decoder = nn.Linear(hidden_size, len(VOCAB))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(self.embedding(x))  # (L, [N,] H): h_t for every step
        return self.decoder(output)               # (L, [N,] 4): logits for every step




class StepCounter:
    """Counts every optimizer.step() of any torch.optim optimizer while it is active, and keeps
    a copy of the parameters before and after each step (by tensor identity): to replay the
    training, and to see updates that went around the counted steps (a call of the step
    function's __wrapped__, a hand-written update), which nothing else would count."""

    def __enter__(self):
        self.count = 0
        self.before: list[dict[int, torch.Tensor]] = []
        self.snapshots: list[dict[int, torch.Tensor]] = []  # after each step
        self.handles = [register_optimizer_step_pre_hook(self.pre_hook),
                        register_optimizer_step_post_hook(self.hook)]
        return self

    @staticmethod
    def parameters(optimizer) -> dict[int, torch.Tensor]:
        return {id(p): p.detach().clone() for group in optimizer.param_groups for p in group["params"]}

    def pre_hook(self, optimizer, args, kwargs):
        self.before.append(self.parameters(optimizer))

    def hook(self, optimizer, args, kwargs):
        self.count += 1
        self.snapshots.append(self.parameters(optimizer))

    def first_success(self, model: nn.Module, cell: str, hidden_size: int) -> int | None:
        """The first step after which `model`'s parameters, as they were then, map SOURCE to TARGET."""
        named = dict(model.named_parameters())
        for step, snapshot in enumerate(self.snapshots, start=1):
            if not all(id(p) in snapshot for p in named.values()):
                return None  # trained through another model's parameters: nothing to replay
            state = {name: snapshot[id(p)] for name, p in named.items()}
            if predict(cell, hidden_size, state)[0] == TARGET:
                return step
        return None

    def initial_state(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """`model`'s parameters by name just before the first counted step, where it took one."""
        named = dict(model.named_parameters())
        if not self.before or not all(id(p) in self.before[0] for p in named.values()):
            return None
        return {name: self.before[0][id(p)] for name, p in named.items()}

    def uncounted_updates(self, model: nn.Module) -> int:
        """How many times the parameters changed between two counted steps or after the last."""
        final = {id(p): p.detach() for p in model.parameters()}
        changes = 0
        for after, next_seen in zip(self.snapshots, self.before[1:len(self.snapshots)] + [final]):
            common = after.keys() & next_seen.keys()
            changes += any(not torch.equal(after[k], next_seen[k]) for k in common)
        return changes

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return False


def predict(cell: str, hidden_size: int, state: dict) -> tuple[str, float]:
    """Load `state` into a trusted HelloNet; its argmax for "hello" and its loss on "ohlol"."""
    dtype = next(iter(state.values())).dtype
    with untouched_rng():
        model = HelloNet(cell, hidden_size).to(dtype)
    model.load_state_dict(state)
    with torch.no_grad():
        logits = model(encode(SOURCE))  # (5, 4)
        loss = F.cross_entropy(logits, encode(TARGET)).item()
    return decode(logits.argmax(-1)), loss


def is_fresh(state: dict, fresh: dict[str, torch.Tensor]) -> bool:
    """Whether `state` holds the weights of the fresh HelloNet `fresh`, as made from the seed.
    Close, not equal: the sandbox's process may draw the same seed's floats an ulp apart
    (measured: 3e-8, and 1e-6 from normal_), while one Adam step at lr=0.01 moves them ~1e-2."""
    return state.keys() == fresh.keys() and all(
        isinstance(state[k], torch.Tensor) and state[k].shape == fresh[k].shape
        and torch.allclose(state[k], fresh[k].to(state[k].dtype), rtol=1e-4, atol=1e-5) for k in fresh)


class TrainHelloCheck(OwnMessages, Check):
    name = "04-training/train_hello"
    student_name = "train_hello"
    builds_on = ("clip_grad_norm",)
    reference_name = "a trusted HelloNet loaded with the trained weights"
    ok_text = (f"reaches {TARGET!r} within the step budget (read from the check's own HelloNet "
               "loaded with your weights; optimizer steps counted by the check)")
    failure_text = f"did not train a HelloNet that maps {SOURCE!r} to {TARGET!r}"

    VISIBLE = [dict(cell="rnn", hidden_size=8, max_steps=200),
               dict(cell="lstm", hidden_size=8, max_steps=200),
               dict(cell="gru", hidden_size=8, max_steps=200)]
    HIDDEN = [dict(cell="gru", hidden_size=12, max_steps=200),
              dict(cell="rnn", hidden_size=16, max_steps=150),
              dict(cell="lstm", hidden_size=10, max_steps=200),
              dict(cell="rnn", hidden_size=10, max_steps=200)]

    def make_case(self, config, seed):
        config = dict(config, seed=seed)
        return Case(describe_config(config), config)

    def run_student(self, student, case):
        c = case.config
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a network this small trains fastest on one thread
        try:
            with StepCounter() as counter:
                result = call_student(self.student_name, student, c["cell"], c["hidden_size"],
                                      c["seed"], max_steps=c["max_steps"])
        finally:
            torch.set_num_threads(threads)
        model, steps = unpack_pair(self.student_name, result, ("model", "steps"))
        if not isinstance(model, nn.Module):
            raise CheckFailure(f"{self.student_name} should return (model, steps) with model an "
                               f"nn.Module (a HelloNet), got {type_name(model)}")
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        try:
            first = counter.first_success(model, c["cell"], c["hidden_size"])
        except Exception:  # noqa: BLE001 -- not a HelloNet's parameters: compare() says so
            first = None
        return {"state": state, "steps": steps, "counted_steps": counter.count, "first_success": first,
                "initial": counter.initial_state(model), "uncounted": counter.uncounted_updates(model)}

    def run_reference(self, case):
        c = case.config
        with seeded(c["seed"]):  # what the model was before training, to recognise "not trained"
            fresh = HelloNet(c["cell"], c["hidden_size"])
        return {"target": TARGET, "fresh": {k: v.detach().clone() for k, v in fresh.state_dict().items()}}

    def compare(self, case, expected, actual):
        c = case.config
        counted, steps = actual["counted_steps"], actual["steps"]
        if counted == 0:
            return ["no optimizer step was taken: train with a torch.optim optimizer (the check "
                    "counts the calls of optimizer.step())"]
        problems = []
        if isinstance(steps, torch.Tensor) and steps.numel() == 1 and not steps.is_floating_point():
            steps = int(steps)
        if type(steps) is not int:
            problems.append(f"steps should be an int, the number of optimizer steps taken; got "
                            f"{type_name(steps)}")
        elif steps != counted:
            problems.append(f"you reported steps={steps}, but optimizer.step() was called {counted} "
                            "times: report the number of steps actually taken")
        if counted > c["max_steps"]:
            problems.append(f"training took {counted} optimizer steps, more than the budget "
                            f"max_steps={c['max_steps']}")
        if actual.get("uncounted"):
            problems.append(f"the parameters changed {actual['uncounted']} time(s) between the counted "
                            "optimizer.step() calls or after the last: train with optimizer.step() only "
                            "(the check counts its calls; nothing else may update the weights)")
        initial = actual.get("initial")
        if isinstance(initial, dict) and not is_fresh(initial, expected["fresh"]):
            problems.append("before the first counted optimizer.step(), the model was not the HelloNet "
                            "built right after torch.manual_seed(seed): seed, build the model, then "
                            "train it with optimizer.step() alone")
        first = actual.get("first_success")
        # One step of slack: a loop may judge the logits it computed before its last step.
        if type(first) is int and counted > first + 1:
            problems.append(f"the model already mapped {SOURCE!r} to {TARGET!r} after step {first}, but "
                            f"training went on to step {counted}: stop as soon as it does (its argmax over "
                            "the last dimension, dim=-1, equals the targets)")
        with untouched_rng():
            reference = HelloNet(c["cell"], c["hidden_size"]).state_dict()
        state = actual["state"]
        shapes = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
        wanted = {k: tuple(v.shape) for k, v in reference.items()}
        if shapes != wanted:
            return problems + [f"the returned model's parameters are {shapes}, but "
                               f"HelloNet(cell={c['cell']!r}, hidden_size={c['hidden_size']}) has "
                               f"{wanted}: build the model with HelloNet(cell, hidden_size)"]
        predicted, loss = predict(c["cell"], c["hidden_size"], state)
        if predicted != expected["target"]:
            problems.append(f"the returned model maps {SOURCE!r} to {predicted!r}, not "
                            f"{expected['target']!r} (cross-entropy {loss:.3f})")
        return problems

    def hint(self, case, actual):
        state = actual.get("state")
        if isinstance(state, dict) and is_fresh(state, self.run_reference(case)["fresh"]):
            return ("the returned weights are those of a fresh HelloNet made right after "
                    "torch.manual_seed(seed): return the model you trained, not a new one")
        if isinstance(actual.get("steps"), int) and actual["steps"] in (actual["counted_steps"] - 1,
                                                                        actual["counted_steps"] + 1):
            return ("off by one: count the steps from 1, so that steps equals the number of "
                    "optimizer.step() calls")
        return ""


check_train_hello = TrainHelloCheck()
