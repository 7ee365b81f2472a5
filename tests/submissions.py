"""Student submissions built from the course's notebooks: the answer cells of the source
(solutions/) put into the release (exercises/), cells added, edited, duplicated or removed.
Chapter 1's assignment is the default class (ASSIGNMENT, SOURCE, RELEASE, FULL)."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from conftest import EXERCISES, SOLUTIONS

ASSIGNMENT = "01-recurrence"
SOURCE = json.loads((SOLUTIONS / ASSIGNMENT / "recurrence.ipynb").read_text())
RELEASE = json.loads((EXERCISES / ASSIGNMENT / "recurrence.ipynb").read_text())
FULL = 8.0


def cell_index(nb: dict, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb["cells"])
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def answer_ids(source: dict) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in source["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def answered(*grade_ids: str, source: dict = SOURCE, release: dict = RELEASE) -> dict:
    """The release with the named answer cells filled in from the source (all when none named)."""
    nb = copy.deepcopy(release)
    for grade_id in grade_ids or answer_ids(source):
        nb["cells"][cell_index(nb, grade_id)] = copy.deepcopy(source["cells"][cell_index(source, grade_id)])
    return nb


def code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}


def with_cell(nb: dict, source: str, at: int = 2) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"].insert(at, code(source))
    return nb


def edited(nb: dict, grade_id: str, **changes) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"][cell_index(nb, grade_id)].update(changes)
    return nb


def without(nb: dict, grade_id: str) -> dict:
    nb = copy.deepcopy(nb)
    del nb["cells"][cell_index(nb, grade_id)]
    return nb


def duplicated(nb: dict, grade_id: str) -> dict:
    nb = copy.deepcopy(nb)
    i = cell_index(nb, grade_id)
    nb["cells"].insert(i + 1, copy.deepcopy(nb["cells"][i]))
    return nb


RNN_BY_NN = '''
def rnn_forward_padded(input, lengths, h_0, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                       nonlinearity="tanh", batch_first=False):
    rnn = nn.RNN(weight_ih.shape[1], weight_ih.shape[0], nonlinearity=nonlinearity,
                 bias=bias_ih is not None, batch_first=batch_first, dtype=input.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(weight_ih); rnn.weight_hh_l0.copy_(weight_hh)
        if bias_ih is not None:
            rnn.bias_ih_l0.copy_(bias_ih); rnn.bias_hh_l0.copy_(bias_hh)
    packed = nn.utils.rnn.pack_padded_sequence(input, lengths, batch_first=batch_first,
                                               enforce_sorted=False)
    output, h_n = rnn(packed, h_0)
    L = input.shape[1 if batch_first else 0]
    return nn.utils.rnn.pad_packed_sequence(output, batch_first=batch_first, total_length=L)[0], h_n
'''


def steal(solution: Path) -> str:
    """Run every answer cell of the instructor's notebook, if it can be read."""
    return f'''
import json
try:
    stolen = json.load(open({str(solution)!r}))["cells"]
except OSError:
    stolen = []
for cell in stolen:
    if cell.get("metadata", {{}}).get("nbgrader", {{}}).get("solution"):
        exec("".join(cell["source"]))
'''


# Hiding instructor files and switching to uid nobody need root (book/instructors.md says so);
# without it those two submissions would succeed, so they are graded only where CI runs: as root.
ROOT = os.geteuid() == 0


def describe(result) -> str:
    return json.dumps({"score": result.score, "cells": [c.__dict__ for c in result.cells],
                       "repairs": result.repairs, "errors": result.cell_errors, "notes": result.notes})
