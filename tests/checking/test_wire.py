"""Values cross from the sandbox as they were: the notebook's check and the grader agree."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from rnn_by_hand import CHECKS
from rnn_by_hand.grading import protocol
from rnn_by_hand.wire import Opaque, WireError, decode, dumps, encode, loads, round_trip
from mutants import answer


def test_round_trip_keeps_the_types_a_comparison_can_see():
    value = {"count": np.int64(7), "ratio": np.float32(0.5), "array": np.arange(3),
             "stoi": collections.OrderedDict(a=0, b=1), "itos": {0: "a", 1: "b"}, "seen": {1, 2},
             "pair": (torch.ones(2), [None, True, "x"]), "dtype": torch.float64}
    back = round_trip(value)
    assert type(back["count"]) is np.int64 and back["count"] == 7
    assert type(back["ratio"]) is np.float32 and type(back["stoi"]) is collections.OrderedDict
    assert back["itos"] == {0: "a", 1: "b"} and back["seen"] == {1, 2} and back["dtype"] is torch.float64
    assert np.array_equal(back["array"], np.arange(3)) and torch.equal(back["pair"][0], torch.ones(2))
    described = round_trip({"g": (i for i in range(3))})["g"]
    assert isinstance(described, Opaque) and "generator" in repr(described)


@pytest.mark.parametrize("tree", [{"__wire__": "dict", "items": [([1], 2)]}, {1: 2}, {"__wire__": "nope"},
                                  {"__wire__": "numpy-scalar", "dtype": "<i8", "value": "7"}])
def test_malformed_trees_are_refused(tree):
    with pytest.raises(WireError):
        decode(loads(dumps(tree)))


def test_unreadable_bytes_are_refused():
    with pytest.raises(WireError):
        loads(b"not a torch file")


def grader_sees(name: str, student) -> list[str]:
    """What the class grader concludes: student part here, bytes across, comparison after."""
    check = CHECKS[name]
    payload = protocol.child_message("check", check=name, outputs=[
        encode(check.run_student_guarded(student, case)) for case in check.make_cases()])
    message = protocol.parse_child_message(payload, {name})
    return [p for case, out in zip(check.make_cases(), message.outputs)
            for p in check.compare(case, check.run_reference(case), out)]


def test_numpy_counts_and_ordered_vocabularies_pass_in_both_places():
    count = answer("06-gru/count_parameters")
    vocab = answer("02-embedding/extend_vocab")

    def numpy_count(*args, **kwargs):
        return np.int64(count(*args, **kwargs))

    def ordered_vocab(*args, **kwargs):
        itos, stoi = vocab(*args, **kwargs)
        return itos, collections.OrderedDict(stoi)
    for name, student in (("06-gru/count_parameters", numpy_count), ("02-embedding/extend_vocab", ordered_vocab)):
        CHECKS[name](student, quiet=True)  # the notebook's test cell says OK ...
        assert grader_sees(name, student) == []  # ... and so does the grader
