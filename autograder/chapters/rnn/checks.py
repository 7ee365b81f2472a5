"""Checks for chapter 3, nn.RNN in depth.

    rnn_shapes(input_shape, input_size, hidden_size, ...)  vs the shapes a real nn.RNN returns
    classifier_init_bounds(input_size, hidden_size, ...)   vs a real nn.RNN + nn.Linear head's parameters
    birnn_forward(rnn, input, h_0)                         vs nn.RNN(num_layers=2, bidirectional=True) ...
    mean_valid_output(output, lengths, batch_first)        vs nn.RNN on each sequence alone

Every reference is computed from torch.nn when the check runs. The module handed
to birnn_forward refuses to run its own forward, and the fused kernels behind
nn.RNN are trapped while student code runs, so the answer has to be the loop.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import random
import warnings

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from ...checking import (Case, Check, CheckFailure, ForbiddenCall, call_student, describe_config, seeded,
                         state_of, unpack_pair, with_state)
from ...checking.compare import compare_tensor, first_matching_mistake, shape_str, type_name
from ...checking.credit import REST, one_feature_each, parts_of
from ...common import DTYPE, RNN_KERNELS, layouts, make_sequence
from .models import BIRNN_MISTAKES, bound_mistakes, by_hand, mean_mistakes, shape_mistakes

# nn.RNN's constructor arguments, in its own order.
RNN_ARGS = ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first",
            "dropout", "bidirectional")


def rnn_args(config: dict) -> dict:
    """The nn.RNN constructor arguments a case's config holds."""
    return {k: config[k] for k in RNN_ARGS if k in config}


def quiet_rnn(cls: type[nn.RNN] = nn.RNN, **kwargs) -> nn.RNN:
    """cls(**kwargs) without the warning that dropout > 0 gives for one layer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cls(**kwargs)


def loaded(module: nn.RNN, case: Case) -> nn.RNN:
    """Load the case's weights into a freshly built module and put it in eval mode."""
    module.load_state_dict(state_of(case.tensors))
    return module.eval()


# -- rnn_shapes ------------------------------------------------------------------------

def as_shape(value):
    """A tuple of Python ints when `value` is a shape (tuple, list, torch.Size); else `value`."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                                for v in value):
        return tuple(int(v) for v in value)
    return value


def is_shape(value) -> bool:
    return isinstance(value, tuple) and all(type(v) is int for v in value)


def shape_layouts(config: dict) -> dict[str, str]:
    """The layout of output and h_n in words, with this case's numbers filled in."""
    D = 2 if config["bidirectional"] else 1
    layers, H = config["num_layers"], config["hidden_size"]
    rows = f"D * num_layers = {D} * {layers}"
    if len(config["input_shape"]) == 2:
        return {"output": f"(L, D * H) for unbatched input, D * H = {D} * {H}",
                "h_n": f"(D * num_layers, H) for unbatched input, {rows}"}
    if config["batch_first"]:
        return {"output": f"(N, L, D * H) because batch_first=True, D * H = {D} * {H}",
                "h_n": f"(D * num_layers, N, H) whatever batch_first says, {rows}"}
    return {"output": f"(L, N, D * H), D * H = {D} * {H}",
            "h_n": f"(D * num_layers, N, H), {rows}"}


# The features that change the shapes; every other argument is a distractor.
SHAPE_FEATURES = {"batch_first": lambda config: len(config["input_shape"]) == 3 and config["batch_first"],
                  "unbatched input": lambda config: len(config["input_shape"]) == 2,
                  "bidirectional": lambda config: config["bidirectional"],
                  "stacked": lambda config: config["num_layers"] > 1}


class RnnShapesCheck(Check):
    name = "03-rnn/rnn_shapes"
    student_name = "rnn_shapes"
    reference_name = "torch.nn.RNN"
    forbidden = RNN_KERNELS  # predict the shapes; do not run the module to read them off
    forbidden_reason = "this exercise asks you to predict the shapes without running nn.RNN"

    # A few configurations chosen to teach, then many drawn at random.
    SHOWN = [dict(input_shape=(5, 3, 4), input_size=4, hidden_size=6, num_layers=1, nonlinearity="tanh",
                  bias=True, batch_first=False, dropout=0.0, bidirectional=False),
             dict(input_shape=(3, 5, 4), input_size=4, hidden_size=6, num_layers=2, nonlinearity="tanh",
                  bias=True, batch_first=True, dropout=0.0, bidirectional=True),
             dict(input_shape=(5, 4), input_size=4, hidden_size=6, num_layers=3, nonlinearity="relu",
                  bias=False, batch_first=False, dropout=0.0, bidirectional=True),
             dict(input_shape=(7, 2, 3), input_size=3, hidden_size=5, num_layers=2, nonlinearity="relu",
                  bias=True, batch_first=False, dropout=0.5, bidirectional=False)]
    RANDOM = {False: 20, True: 40}  # random configurations in the visible and the hidden set
    PARTS = one_feature_each(SHAPE_FEATURES)
    # The random configurations go round the parts in turn, so that each has several cases.
    FAMILIES = (*PARTS, REST)

    @staticmethod
    def random_config(rng: random.Random) -> dict:
        L, N, H_in, H = rng.randint(1, 8), rng.randint(1, 6), rng.randint(1, 9), rng.randint(1, 10)
        num_layers, batch_first = rng.randint(1, 4), rng.random() < 0.5
        layout = rng.choice(["batched", "batched", "batched", "unbatched"])
        input_shape = (L, H_in) if layout == "unbatched" else ((N, L, H_in) if batch_first else (L, N, H_in))
        return dict(input_shape=input_shape, input_size=H_in, hidden_size=H, num_layers=num_layers,
                    nonlinearity=rng.choice(["tanh", "relu"]), bias=rng.random() < 0.8,
                    batch_first=batch_first, dropout=rng.choice([0.0, 0.0, 0.3]),
                    bidirectional=rng.random() < 0.5)

    def configs(self, hidden, seed):
        # hidden cases are configurations the visible ones do not contain
        avoid = self.configs(False, None) if hidden else []
        configs = [] if hidden else list(self.SHOWN)
        wanted = len(configs) + self.RANDOM[hidden]
        rng = random.Random(self.seed_of(hidden, -1, seed))  # not torch's global RNG
        while len(configs) < wanted:
            config = self.random_config(rng)
            family = self.FAMILIES[len(configs) % len(self.FAMILIES)]
            if parts_of(self.PARTS, config) == [family] and config not in configs and config not in avoid:
                configs.append(config)
        return configs

    def run_student(self, student, case):
        config = case.config
        args = {k: v for k, v in config.items() if k != "input_shape"}
        result = call_student(self.student_name, student, config["input_shape"], **args)
        output, h_n = unpack_pair(self.student_name, result, ("output_shape", "h_n_shape"))
        return {"output": as_shape(output), "h_n": as_shape(h_n)}

    def run_reference(self, case):
        rnn = quiet_rnn(**rnn_args(case.config)).eval()
        with torch.no_grad():
            output, h_n = rnn(torch.zeros(case.config["input_shape"]))
        return {"output": tuple(output.shape), "h_n": tuple(h_n.shape)}

    def compare(self, case, expected, actual):
        layout = shape_layouts(case.config)
        problems = []
        for name in ("output", "h_n"):
            got = actual[name]
            if not is_shape(got):
                problems.append(f"the {name} shape should be a tuple of ints such as (5, 3, 6), "
                                f"got {type_name(got)}")
            elif got != expected[name]:
                problems.append(f"{name}: you predicted the shape {shape_str(got)}, nn.RNN returns "
                                f"{shape_str(expected[name])}, laid out as {layout[name]}")
        return problems

    def hint(self, case, actual):
        expected = self.run_reference(case)
        for text, predicted in shape_mistakes(case.config, expected):
            if all(actual.get(k) == v and v != expected[k] for k, v in predicted.items()):
                return text
        return ""

    def ok_message(self, count):
        return (f"OK: {self.student_name} predicts the shapes torch.nn.RNN returns in {count} "
                "configurations.")


# -- classifier_init_bounds -----------------------------------------------------------

CLASSIFIER_ARGS = ("input_size", "hidden_size", "num_layers", "bidirectional", "num_classes")


def classifier(config: dict) -> nn.Module:
    """The exercise's model, freshly drawn: an nn.RNN named rnn, then a head, an nn.Linear over
    every final state (h_n of every layer and direction, side by side for each sequence)."""
    D = 2 if config["bidirectional"] else 1
    model = nn.Module()
    model.rnn = nn.RNN(config["input_size"], config["hidden_size"], num_layers=config["num_layers"],
                       bidirectional=config["bidirectional"], dtype=DTYPE)
    model.head = nn.Linear(D * config["num_layers"] * config["hidden_size"], config["num_classes"],
                           dtype=DTYPE)
    return model


def reference_bounds(model: nn.Module) -> dict[str, float]:
    """b of U(-b, b) for each parameter: nn.RNN's 1/sqrt(H) whatever the fan-in, nn.Linear's
    1/sqrt(in_features) for its weight and its bias (tests/chapters/test_rnn.py measures both)."""
    rnn_bound, head_bound = 1 / math.sqrt(model.rnn.hidden_size), 1 / math.sqrt(model.head.in_features)
    return {name: head_bound if name.startswith("head.") else rnn_bound for name, _ in model.named_parameters()}


def as_number(value):
    """A float for a Python or numpy number or a one-element float tensor; else `value`."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype.is_floating_point:
        return value.item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def listed(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


class ClassifierInitBoundsCheck(Check):
    name = "03-rnn/classifier_init_bounds"
    student_name = "classifier_init_bounds"
    reference_name = "the parameters of a real classifier on torch.nn.RNN"
    forbidden_functions = ("rnn_by_hand.chapters.rnn.checks.reference_bounds",)

    # Never one layer and one direction at once: there the head's fan-in is H, and the
    # RNN's bound would be right for the head too.
    VISIBLE = [dict(input_size=10, hidden_size=20, num_layers=2, bidirectional=True, num_classes=3),
               dict(input_size=3, hidden_size=400, num_layers=1, bidirectional=True, num_classes=5),
               dict(input_size=50, hidden_size=7, num_layers=3, bidirectional=False, num_classes=2),
               dict(input_size=4, hidden_size=16, num_layers=3, bidirectional=True, num_classes=4)]
    HIDDEN = [dict(input_size=128, hidden_size=64, num_layers=2, bidirectional=True, num_classes=10),
              dict(input_size=1, hidden_size=1000, num_layers=1, bidirectional=True, num_classes=2),
              dict(input_size=30, hidden_size=2, num_layers=2, bidirectional=False, num_classes=3),
              dict(input_size=700, hidden_size=300, num_layers=3, bidirectional=False, num_classes=5),
              dict(input_size=5, hidden_size=9, num_layers=1, bidirectional=True, num_classes=3)]
    PARTS = one_feature_each({"one layer": lambda config: config["num_layers"] == 1,
                              "one direction": lambda config: not config["bidirectional"]}, combined=None)

    def make_case(self, config, seed):
        return Case(describe_config(config), dict(config, seed=seed))

    def run_student(self, student, case):
        value = call_student(self.student_name, student, *(case.config[k] for k in CLASSIFIER_ARGS))
        if isinstance(value, dict):
            value = {name: as_number(bound) for name, bound in value.items()}
        return {"bounds": value}

    def run_reference(self, case):
        with seeded(case.config["seed"]):  # the same model every time the case is checked
            model = classifier(case.config)
        largest = {name: p.detach().abs().max().item() for name, p in model.named_parameters()}
        return {"bounds": reference_bounds(model), "largest": largest}

    def compare(self, case, expected, actual):
        got, want = actual["bounds"], expected["bounds"]
        if not isinstance(got, dict):
            return [f"{self.student_name} should return a dict {{parameter name: bound}}, got {type_name(got)}"]
        problems = []
        missing, extra = [n for n in want if n not in got], [n for n in got if n not in want]
        if missing:
            problems.append(f"no bound for {listed(missing)}: give one for every name that "
                            "model.named_parameters() lists")
        if extra:
            problems.append(f"a bound for {listed([repr(n) for n in extra])}, which the model "
                            "has no parameter of")
        for name in (n for n in want if n in got):
            bound, exact, largest = got[name], want[name], expected["largest"][name]
            if type(bound) is not float:
                problems.append(f"the bound for {name} should be a number such as 0.25, got {type_name(bound)}")
            elif not math.isfinite(bound) or bound <= 0:
                problems.append(f"the bound for {name} should be a positive number, got {bound}")
            elif bound < largest:
                problems.append(f"a real model drew {name} entries up to {largest:.6g}, outside your "
                                f"bound +-{bound:.6g} (expected {exact:.6g})")
            elif not math.isclose(bound, exact, rel_tol=self.rtol, abs_tol=0.0):
                problems.append(f"your bound for {name} is {bound:.6g}, expected {exact:.6g}")
        return problems[:4] + ([f"and {len(problems) - 4} more"] if len(problems) > 4 else [])

    def hint(self, case, actual):
        got = actual.get("bounds")
        if not isinstance(got, dict):
            return ""
        exact = self.run_reference(case)["bounds"]

        def close(name, value):
            return type(got.get(name)) is float and math.isclose(got[name], value, rel_tol=1e-9)
        for text, bounds in bound_mistakes(case.config, exact):
            if all(close(n, v) for n, v in bounds.items()) and not all(close(n, exact[n]) for n in bounds):
                return text
        below = [n for n in exact if type(got.get(n)) is float and exact[n] * 0.9 < got[n] < exact[n]]
        if below and all(type(got.get(n)) is float and got[n] <= exact[n] * (1 + 1e-6) for n in exact):
            return ("your bounds lie just inside the right ones: the largest parameter of one model is "
                    "a sample, always a little inside the bound b of U(-b, b); give b itself")
        return ""

    def ok_message(self, count):
        return (f"OK: {self.student_name} gives the bound of every parameter for {count} models, and "
                "every parameter of a real one lies within it.")


# -- birnn_forward ---------------------------------------------------------------------

class NoForwardRNN(nn.RNN):
    """An nn.RNN whose forward refuses to run: the exercise asks for the computation by hand."""

    def forward(self, *args, **kwargs):
        raise ForbiddenCall("it calls the module itself (rnn(...) or rnn.forward); read its "
                            "parameters, such as rnn.weight_ih_l0, and write the loop yourself")


class BirnnForwardCheck(Check):
    name = "03-rnn/birnn_forward"
    forbidden_functions = ("rnn_by_hand.chapters.rnn.models.by_hand",)
    student_name = "birnn_forward"
    reference_name = "torch.nn.RNN"
    forbidden = RNN_KERNELS

    # The exercise's core is a stacked bidirectional network (time-major, h_0 given, biases,
    # evaluation mode); each other case changes one feature of it, and one combines several:
    # there h_0 = zeros must take the batch size from the right dimension of a batch_first input.
    VISIBLE = [dict(L=5, N=3, input_size=4, hidden_size=6, num_layers=2, nonlinearity="tanh", bias=True,
                    batch_first=False, dropout=0.0, bidirectional=True, h_0=True, training=False),
               dict(L=4, N=2, input_size=3, hidden_size=4, num_layers=3, nonlinearity="relu", bias=True,
                    batch_first=False, dropout=0.0, bidirectional=True, h_0=True, training=False),
               dict(L=4, N=2, input_size=3, hidden_size=5, num_layers=2, nonlinearity="tanh", bias=True,
                    batch_first=True, dropout=0.0, bidirectional=True, h_0=True, training=False),
               dict(L=3, N=4, input_size=2, hidden_size=3, num_layers=2, nonlinearity="tanh", bias=True,
                    batch_first=False, dropout=0.0, bidirectional=True, h_0=False, training=False),
               dict(L=3, N=2, input_size=2, hidden_size=4, num_layers=2, nonlinearity="tanh", bias=False,
                    batch_first=False, dropout=0.0, bidirectional=True, h_0=True, training=False),
               dict(L=3, N=2, input_size=2, hidden_size=4, num_layers=2, nonlinearity="tanh", bias=True,
                    batch_first=False, dropout=0.0, bidirectional=False, h_0=True, training=False),
               dict(L=6, N=4, input_size=5, hidden_size=3, num_layers=1, nonlinearity="tanh", bias=True,
                    batch_first=False, dropout=0.0, bidirectional=True, h_0=True, training=False),
               dict(L=4, N=3, input_size=3, hidden_size=5, num_layers=2, nonlinearity="tanh", bias=True,
                    batch_first=False, dropout=0.3, bidirectional=True, h_0=True, training=True),
               dict(L=3, N=2, input_size=2, hidden_size=4, num_layers=2, nonlinearity="tanh", bias=True,
                    batch_first=False, dropout=0.5, bidirectional=True, h_0=True, training=False),
               dict(L=4, N=2, input_size=3, hidden_size=5, num_layers=2, nonlinearity="relu", bias=True,
                    batch_first=True, dropout=0.3, bidirectional=True, h_0=False, training=True)]
    HIDDEN = [dict(L=6, N=2, input_size=3, hidden_size=4, num_layers=3, nonlinearity="tanh", bias=False,
                   batch_first=False, dropout=0.0, bidirectional=True, h_0=True, training=False),
              dict(L=7, N=1, input_size=2, hidden_size=5, num_layers=2, nonlinearity="tanh", bias=True,
                   batch_first=False, dropout=0.4, bidirectional=True, h_0=True, training=True),
              dict(L=5, N=3, input_size=4, hidden_size=4, num_layers=2, nonlinearity="tanh", bias=True,
                   batch_first=False, dropout=0.0, bidirectional=False, h_0=True, training=False),
              dict(L=2, N=5, input_size=6, hidden_size=3, num_layers=2, nonlinearity="tanh", bias=True,
                   batch_first=True, dropout=0.0, bidirectional=True, h_0=True, training=False),
              dict(L=4, N=3, input_size=2, hidden_size=3, num_layers=3, nonlinearity="tanh", bias=True,
                   batch_first=False, dropout=0.0, bidirectional=True, h_0=False, training=False),
              dict(L=7, N=1, input_size=3, hidden_size=2, num_layers=1, nonlinearity="tanh", bias=True,
                   batch_first=False, dropout=0.0, bidirectional=True, h_0=True, training=False),
              dict(L=3, N=4, input_size=3, hidden_size=3, num_layers=2, nonlinearity="tanh", bias=True,
                   batch_first=False, dropout=0.4, bidirectional=True, h_0=True, training=False),
              dict(L=5, N=3, input_size=4, hidden_size=4, num_layers=2, nonlinearity="relu", bias=True,
                   batch_first=False, dropout=0.0, bidirectional=True, h_0=True, training=False),
              dict(L=3, N=2, input_size=2, hidden_size=3, num_layers=3, nonlinearity="tanh", bias=True,
                   batch_first=True, dropout=0.3, bidirectional=True, h_0=False, training=True)]
    PARTS = one_feature_each({"one layer": lambda config: config["num_layers"] == 1,
                              "one direction": lambda config: not config["bidirectional"],
                              "batch_first": lambda config: config["batch_first"],
                              "h_0 omitted": lambda config: not config["h_0"],
                              "without bias": lambda config: not config["bias"],
                              "dropout": lambda config: config["dropout"] > 0})

    def make_tensors(self, config):
        rnn = quiet_rnn(**rnn_args(config), dtype=DTYPE)
        D = 2 if config["bidirectional"] else 1
        # h_0 has D * num_layers rows: make_sequence draws one per "layer" it is told of
        x, h_0 = make_sequence(dict(config, num_layers=D * config["num_layers"]))
        seed = {"dropout_seed": torch.randint(0, 2**31 - 1, ())} if config["training"] else {}
        return {"input": x} | ({"h_0": h_0} if h_0 is not None else {}) | seed | with_state(rnn)

    @staticmethod
    def dropout_draws(case: Case):
        """In training mode, the generator both sides draw dropout from, seeded alike."""
        return seeded(int(case.tensors["dropout_seed"])) if case.config["training"] else contextlib.nullcontext()

    def run_student(self, student, case):
        rnn = self.module(case)  # a fresh copy each time: the student's edits cannot reach ours
        args = (case.tensors["input"],) + ((case.tensors["h_0"],) if "h_0" in case.tensors else ())
        try:
            with torch.no_grad(), self.dropout_draws(case):  # plain arithmetic on the parameters
                result = call_student(self.student_name, student, rnn, *args)
        except CheckFailure as failure:
            raise CheckFailure(self.explain_crash(case, str(failure))) from None
        if any(not torch.equal(p, state_of(case.tensors)[name]) for name, p in rnn.state_dict().items()):
            raise CheckFailure(f"{self.student_name} changed the parameters of the module it was "
                               "given; read them, do not modify them")
        output, h_n = unpack_pair(self.student_name, result, ("output", "h_n"))
        return {"output": output, "h_n": h_n}

    @staticmethod
    def module(case: Case) -> NoForwardRNN:
        """The module the student receives: the case's weights and mode, no forward."""
        return loaded(quiet_rnn(NoForwardRNN, **rnn_args(case.config), dtype=DTYPE), case).train(
            case.config["training"])

    @staticmethod
    def explain_crash(case: Case, message: str) -> str:
        """Add the likely reason to a shape error in a stacked bidirectional network."""
        config = case.config
        if ("shapes cannot be multiplied" in message or "size of tensor" in message) \
                and config["bidirectional"] and config["num_layers"] > 1:
            message += ("\nHint: layer k > 0 reads both directions of layer k - 1, concatenated: "
                        "(L, N, 2H), which is why weight_ih_l1 has shape (H, 2H)")
        return message

    def run_reference(self, case, top_dropout: bool = False):
        """nn.RNN itself, in the case's mode; top_dropout: also dropout on the top layer (a mistake)."""
        rnn = loaded(quiet_rnn(**rnn_args(case.config), dtype=DTYPE), case).train(case.config["training"])
        with torch.no_grad(), self.dropout_draws(case):
            output, h_n = rnn(case.tensors["input"], case.tensors.get("h_0"))
            if top_dropout:  # the same generator, drawn once more, as a loop over every layer would
                output = nn.functional.dropout(output, rnn.dropout, rnn.training)
        return {"output": output, "h_n": h_n}

    def compare(self, case, expected, actual):
        dims = layouts(case.config)
        written = {"output": dims["output"][1].replace("H)", "D * H)"),
                   "h_n": "(D * num_layers, N, H), row layer * D + direction, whatever batch_first says"}
        problems = []
        for name in ("output", "h_n"):
            special = self.shape_problem(case, name, expected[name], actual[name])
            problems += [special] if special else compare_tensor(
                name, expected[name], actual[name], dims=dims[name][0], layout=written[name],
                rtol=self.rtol, atol=self.atol)
        return problems

    @staticmethod
    def shape_problem(case: Case, name: str, expected: torch.Tensor, actual) -> str:
        """A specific sentence for the classic shape mistakes; '' when compare_tensor says enough."""
        if not isinstance(actual, torch.Tensor) or actual.shape == expected.shape:
            return ""
        config = case.config
        D, layers, H = 2 if config["bidirectional"] else 1, config["num_layers"], config["hidden_size"]
        got, want = shape_str(actual.shape), shape_str(expected.shape)
        text = f"{name} has shape {got}, expected {want}"
        if name == "h_n":
            rows, N = expected.shape[0], expected.shape[1]
            if tuple(actual.shape) == (N, rows, H):
                return (text + ": h_n keeps the batch in its second dimension, (D * num_layers, N, H), "
                        "whatever batch_first says (not (N, num_layers, H) as some tutorials write)")
            if tuple(actual.shape) == (layers, D, N, H):
                return (text + ": nn.RNN returns h_n with layers and directions in one dimension; "
                        "h_n.view(num_layers, D, N, H) is only a view of it")
            if D == 2 and tuple(actual.shape) == (layers, N, H):
                return text + ": h_n holds one final state per layer and per direction, D * num_layers rows"
        if name == "output" and D == 2 and tuple(actual.shape) == tuple(expected.shape[:-1]) + (H,):
            return (text + ": output concatenates the forward and backward states along its last "
                    "dimension, D * hidden_size")
        return ""

    def hint(self, case, actual):
        found = [(text, {k: v for k, v in by_hand(case, mistake).items() if k in names})
                 for mistake, names, text in BIRNN_MISTAKES]
        expected = self.run_reference(case)
        if case.config["training"]:
            p = case.config["dropout"]
            found = [(f"in training mode (rnn.training is True) nn.RNN applies dropout={p} to every "
                      "layer's output but the top one's; yours applies none: "
                      "x = F.dropout(x, rnn.dropout, rnn.training) between layers",
                      self.run_reference(dataclasses.replace(case, config=dict(case.config, training=False)))),
                     ("dropout applies between layers only, not to the top layer's output (nn.RNN "
                      "returns that undropped): skip it after the last layer",
                      self.run_reference(case, top_dropout=True))]
        text = first_matching_mistake(case, expected, actual, found)
        if not text and case.config["dropout"] > 0 and not case.config["training"]:
            text = (f"if you apply dropout: this module has dropout={case.config['dropout']} but is in "
                    "evaluation mode (rnn.training is False), in which nn.RNN applies none")
        if not text and case.config["training"]:
            text = ("in training mode, dropout must draw from torch's generator as nn.RNN does: once per "
                    "layer but the top, on the layer's whole output (both directions concatenated), "
                    "with F.dropout(x, rnn.dropout, rnn.training)")
        return text


# -- mean_valid_output -----------------------------------------------------------------

def unsorted_lengths(L: int, N: int) -> torch.Tensor:
    """N lengths in 1..L, not sorted, with at least one of length L and (N > 1) one of length 1."""
    lengths = torch.randint(1, L + 1, (N,))
    lengths[0] = L
    if N > 1:
        lengths[1] = 1
    lengths = lengths[torch.randperm(N)]
    if N > 1 and bool((lengths[:-1] >= lengths[1:]).all()):
        lengths = lengths.flip(0)  # sorted longest first is the easy case: avoid it
    return lengths


def padded_batch(config: dict, lengths: torch.Tensor) -> torch.Tensor:
    """Random sequences of the given lengths, padded with zeros by pad_sequence."""
    sequences = [torch.randn(int(n), config["input_size"], dtype=DTYPE) for n in lengths]
    return pad_sequence(sequences, batch_first=config["batch_first"])  # (L, N, H_in) or (N, L, H_in)


class MeanValidOutputCheck(Check):
    name = "03-rnn/mean_valid_output"
    student_name = "mean_valid_output"
    reference_name = "the mean of torch.nn.RNN's output over each sequence run alone"

    # source "packed": output from pad_packed_sequence (padding_value after each end);
    # "padded": a one-direction RNN that ran over the padding too (its real steps are right).
    # Where the padding is zero, summing every step and dividing by the length is right, so
    # the non-zero padding is a part of its own.
    VISIBLE = [dict(L=6, N=4, input_size=3, hidden_size=5, num_layers=1, bidirectional=False,
                    batch_first=False, source="packed", padding_value=0.0),
               dict(L=4, N=3, input_size=2, hidden_size=2, num_layers=2, bidirectional=True,
                    batch_first=False, source="packed", padding_value=0.0),
               dict(L=5, N=3, input_size=2, hidden_size=4, num_layers=2, bidirectional=True,
                    batch_first=True, source="packed", padding_value=0.0),
               dict(L=7, N=5, input_size=4, hidden_size=3, num_layers=1, bidirectional=True,
                    batch_first=False, source="packed", padding_value=-1.0),
               dict(L=5, N=3, input_size=2, hidden_size=4, num_layers=2, bidirectional=False,
                    batch_first=False, source="padded", padding_value=0.0),
               dict(L=6, N=4, input_size=3, hidden_size=3, num_layers=1, bidirectional=False,
                    batch_first=True, source="padded", padding_value=0.0),
               dict(L=4, N=5, input_size=2, hidden_size=3, num_layers=1, bidirectional=True,
                    batch_first=True, source="packed", padding_value=-1.0)]
    HIDDEN = [dict(L=8, N=6, input_size=3, hidden_size=4, num_layers=2, bidirectional=False,
                   batch_first=False, source="padded", padding_value=0.0),
              dict(L=4, N=2, input_size=5, hidden_size=6, num_layers=1, bidirectional=True,
                   batch_first=True, source="packed", padding_value=0.0),
              dict(L=9, N=3, input_size=2, hidden_size=3, num_layers=3, bidirectional=False,
                   batch_first=False, source="packed", padding_value=0.5),
              dict(L=5, N=7, input_size=3, hidden_size=5, num_layers=2, bidirectional=True,
                   batch_first=False, source="packed", padding_value=0.0),
              dict(L=5, N=7, input_size=3, hidden_size=5, num_layers=2, bidirectional=True,
                   batch_first=True, source="packed", padding_value=2.0),
              dict(L=4, N=3, input_size=2, hidden_size=3, num_layers=1, bidirectional=False,
                   batch_first=True, source="padded", padding_value=0.0)]
    PARTS = one_feature_each({"batch_first": lambda config: config["batch_first"],
                              "non-zero padding": lambda config: config["source"] == "padded"
                              or config["padding_value"] != 0})

    @staticmethod
    def reference_module(config: dict) -> nn.RNN:
        return nn.RNN(config["input_size"], config["hidden_size"], num_layers=config["num_layers"],
                      batch_first=config["batch_first"], bidirectional=config["bidirectional"],
                      dtype=DTYPE)

    def make_case(self, config, seed):
        rnn = self.reference_module(config)
        lengths = unsorted_lengths(config["L"], config["N"])
        x = padded_batch(config, lengths)
        with torch.no_grad():
            if config["source"] == "packed":  # padding_value after each sequence
                packed = pack_padded_sequence(x, lengths, batch_first=config["batch_first"],
                                              enforce_sorted=False)
                output, _ = pad_packed_sequence(rnn(packed)[0], batch_first=config["batch_first"],
                                                padding_value=config["padding_value"])
            else:  # ran over the padding: right on the real steps, states on the padding
                output, _ = rnn(x)
        tensors = {"output": output, "lengths": lengths, "input": x} | with_state(rnn)
        label = describe_config(config) + f", lengths={lengths.tolist()}"
        return Case(label, config, tensors)

    def run_student(self, student, case):
        t = case.tensors
        try:
            mean = call_student(self.student_name, student, t["output"], t["lengths"],
                                batch_first=case.config["batch_first"])
        except CheckFailure as failure:
            raise CheckFailure(self.explain_crash(case, str(failure))) from None
        return {"mean": mean}

    @staticmethod
    def explain_crash(case: Case, message: str) -> str:
        """Add the likely reason to a broadcasting error."""
        if "must match the size" in message or "broadcast" in message:
            layout = ("with batch_first=True output is (N, L, F), the batch first"
                      if case.config["batch_first"] else "output is (L, N, F), time first")
            message += (f"\nHint: {layout}; a mask of the real steps needs a last dimension of "
                        "size 1 to multiply it")
        return message

    def run_reference(self, case):
        rnn = loaded(self.reference_module(case.config), case)
        x, lengths = case.tensors["input"], case.tensors["lengths"]
        x = x.transpose(0, 1) if case.config["batch_first"] else x           # (L, N, H_in)
        with torch.no_grad():  # each sequence alone, unbatched: (L_n, D * H), no padding at all
            means = [rnn(x[:int(n), i])[0].mean(dim=0) for i, n in enumerate(lengths)]
        return {"mean": torch.stack(means)}                                   # (N, D * H)

    def compare(self, case, expected, actual):
        got, want = actual["mean"], expected["mean"]
        if isinstance(got, torch.Tensor) and got.shape != want.shape:
            text = f"result has shape {shape_str(got.shape)}, expected {shape_str(want.shape)} (N, F)"
            L = case.config["L"]
            if case.config["batch_first"] and tuple(got.shape) == (L, want.shape[1]):
                text += ": with batch_first=True output is (N, L, F); you averaged over the batch"
            elif got.dim() == 3:
                text += ": average over the time dimension, one row per sequence"
            return [text]
        return compare_tensor("result", want, got, dims=("n", "h"),
                              layout="(N, F): row n is the mean of sequence n's output over its "
                                     "real steps", rtol=self.rtol, atol=self.atol)

    def hint(self, case, actual):
        found = mean_mistakes(case.config, case.tensors["output"], case.tensors["lengths"])
        return first_matching_mistake(case, self.run_reference(case), actual, found)

    def ok_message(self, count):
        return (f"OK: {self.student_name} matches nn.RNN's mean over each sequence run alone on "
                f"{count} cases (float64, rtol={self.rtol:g}, atol={self.atol:g}).")


check_rnn_shapes = RnnShapesCheck()
check_classifier_init_bounds = ClassifierInitBoundsCheck()
check_birnn_forward = BirnnForwardCheck()
check_mean_valid_output = MeanValidOutputCheck()
