"""Pre-flight: read a submitted notebook and repair it against the released one.

Graded and read-only cells are matched by nbgrader's grade_id. Whatever a
student did to them (deleted, edited, duplicated, changed the cell type) is put
back from the release, and every repair is recorded. Cells the student added
stay where they were. The result is the code that will run, in order, without
the test cells: the grade comes from the checks, not from the notebook's tests.
"""
from __future__ import annotations

import ast
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..setup_cell import SUMMARY_ID

MAX_FILE_BYTES = 512 << 20  # the file as submitted, stored outputs included
MAX_NOTEBOOK_BYTES = 20 << 20  # its cells once outputs are cleared: what is graded


@dataclass
class GradedCell:
    """A test cell of the source notebook: its points and the checks it calls."""
    grade_id: str
    points: float
    checks: list[tuple[str, str]]  # (check name in rnn_by_hand.CHECKS, student symbol)


@dataclass
class Prepared:
    cells: list[dict] = field(default_factory=list)  # the repaired notebook's cells
    code: list[tuple[str, str]] = field(default_factory=list)  # (label, source) to execute
    repairs: list[str] = field(default_factory=list)
    suspicions: list[str] = field(default_factory=list)  # for the instructor; no effect on scores
    problem: str = ""  # set when the file cannot be graded at all


def meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}


def is_test(cell: dict) -> bool:
    return bool(meta(cell).get("grade")) and not meta(cell).get("solution")


def is_answer(cell: dict) -> bool:
    return bool(meta(cell).get("solution")) and not meta(cell).get("locked")


def unmarked(cell: dict) -> dict:
    """A cell without nbgrader's marks, so that nbgrader treats it as the student's own."""
    metadata = {k: v for k, v in cell.get("metadata", {}).items() if k != "nbgrader"}
    return dict(cell, metadata=metadata, id=None)


def source_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def read_notebook(data: bytes) -> tuple[dict | None, str]:
    """(notebook, "") or (None, reason) for bytes a student submitted."""
    if not data.strip():
        return None, "the submitted file is empty"
    if len(data) > MAX_FILE_BYTES:
        return None, f"the submitted file is larger than {MAX_FILE_BYTES >> 20} MB"
    try:
        nb = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "the submitted file is not text (not a notebook)"
    except json.JSONDecodeError as error:
        return None, f"the submitted file is not valid notebook JSON ({error.msg} at line {error.lineno})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, "the submitted file is JSON but not a Jupyter notebook (no list of cells)"
    if not all(isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw")
               for c in nb["cells"]):
        return None, "the submitted notebook has malformed cells"
    for cell in nb["cells"]:  # outputs are never graded: they do not count towards the limit
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.pop("attachments", None)
    if len(json.dumps(nb["cells"])) > MAX_NOTEBOOK_BYTES:
        return None, (f"the submitted notebook's cells hold more than {MAX_NOTEBOOK_BYTES >> 20} MB "
                      "even without their outputs")
    return nb, ""


def kernel_repairs(nb: dict) -> list[str]:
    """Grading never starts the student's kernel; a foreign kernel name is only noted."""
    spec = nb.get("metadata", {}).get("kernelspec", {})
    name = spec.get("name", "python3") if isinstance(spec, dict) else "?"
    if name not in ("python3", "python"):
        return [f"kernel {name!r} replaced by python3"]
    return []


def prepare(data: bytes, release: dict) -> Prepared:
    """Repair a submission against the release notebook; see the module docstring."""
    nb, problem = read_notebook(data)
    if nb is None:
        return Prepared(problem=problem)
    repairs = kernel_repairs(nb)
    anchors: dict[str, list[dict]] = {}  # grade_id -> the student's cells after it (its own first)
    preamble: list[dict] = []  # student cells before the first known cell
    known = {meta(c)["grade_id"]: c for c in release["cells"] if meta(c).get("grade_id")}
    current = preamble
    for cell in nb["cells"]:
        grade_id = meta(cell).get("grade_id")
        if grade_id in known:
            if grade_id in anchors:
                if is_answer(known[grade_id]):
                    # A copy of an answer cell is the student's own code: it runs where it
                    # stands, as Run All would run it, so a later copy's answer counts.
                    repairs.append(f"kept a copy of answer cell {grade_id!r} as an ordinary cell")
                    current.append(unmarked(cell))
                else:
                    repairs.append(f"removed a duplicate of cell {grade_id!r}")
                continue
            anchors[grade_id] = current = [cell]
        else:
            current.append(cell)
    cells = list(preamble)
    for cell in release["cells"]:
        grade_id = meta(cell).get("grade_id")
        if not grade_id:
            continue  # unmarked release cells: the student's copies are kept where they are
        if grade_id not in anchors:
            repairs.append(f"restored deleted cell {grade_id!r}")
            cells.append(cell)
            continue
        theirs, *extras = anchors[grade_id]
        cells.append(restore(cell, theirs, repairs))
        cells.extend(extras)
    cells = normalise_ids(cells, repairs)
    # The summary cell only prints what the checks will decide: it is not run here.
    code = [(meta(c).get("grade_id") or f"cell {i + 1}", source_text(c))
            for i, c in enumerate(cells) if c.get("cell_type") == "code" and not is_test(c)
            and meta(c).get("grade_id") != SUMMARY_ID]
    students_code = [(meta(c).get("grade_id") or f"cell {i + 1}", source_text(c))
                     for i, c in enumerate(cells) if c.get("cell_type") == "code"
                     and not is_test(c) and not meta(c).get("locked")]  # locked cells are ours
    return Prepared(cells=cells, code=code, repairs=repairs, suspicions=suspicions(students_code))


def normalise_ids(cells: list[dict], repairs: list[str]) -> list[dict]:
    """Every cell gets a unique nbformat 4.5 id (duplicated cells share theirs)."""
    seen, fixed, result = set(), 0, []
    for index, cell in enumerate(cells):
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not cell_id or cell_id in seen:
            cell_id, fixed = f"cell-{index}", fixed + 1
            while cell_id in seen:
                cell_id += "x"
            cell = dict(cell, id=cell_id)
        seen.add(cell_id)
        result.append(cell)
    if fixed:
        repairs.append(f"gave {fixed} cell(s) a missing or duplicate id")
    return result


GUARDED = ("torch", "nn", "F", "rnn_by_hand", "np", "numpy", "builtins")
# Modules and attributes that reach into the harness, the interpreter's frames, saved
# kernels or raw descriptors: an honest answer to these exercises needs none of them.
REACHING_MODULES = ("rnn_by_hand", "ctypes", "gc", "inspect", "_ctypes", "cffi", "multiprocessing.reduction")
REACHING_NAMES = ("_getframe", "f_back", "f_globals", "f_locals", "tb_frame", "gi_frame", "__code__",
                  "__globals__", "__closure__", "_VF", "_C", "_VariableFunctions", "__subclasses__",
                  "get_referrers", "get_objects", "dup2", "fdopen", "/proc/")


def suspicions(code: list[tuple[str, str]]) -> list[str]:
    """Name code that reassigns library functions or reaches into the harness.

    It changes no score (the comparisons run elsewhere); it tells the instructor
    where to look, in grades.csv and the summary.
    """
    found = []
    for label, source in code:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                root = target
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(target, ast.Attribute) and isinstance(root, ast.Name) and root.id in GUARDED:
                    found.append(f"suspected tampering in {label}: assigns {ast.unparse(target)}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                for module in REACHING_MODULES:
                    if any(n == module or n.startswith(module + ".") for n in names):
                        found.append(f"suspected tampering in {label}: imports {module}")
            name = node.attr if isinstance(node, ast.Attribute) else \
                node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
            for reach in REACHING_NAMES:
                if name is not None and (name == reach or (reach.startswith("/") and reach in name)):
                    found.append(f"suspected tampering in {label}: uses {reach}")
    return sorted(set(found))


def restore(release_cell: dict, student_cell: dict, repairs: list[str]) -> dict:
    """The student's version of a known cell, with what they may not change put back."""
    grade_id = meta(release_cell)["grade_id"]
    if meta(release_cell).get("locked") or is_test(release_cell):
        if student_cell.get("cell_type") != release_cell["cell_type"]:
            repairs.append(f"restored the type of read-only cell {grade_id!r}")
        elif source_text(student_cell).strip() != source_text(release_cell).strip():
            repairs.append(f"restored edited read-only cell {grade_id!r}")
        return release_cell
    cell = dict(student_cell, metadata=release_cell.get("metadata", {}))
    if student_cell.get("cell_type") != release_cell["cell_type"]:
        repairs.append(f"changed answer cell {grade_id!r} back from {student_cell.get('cell_type')} "
                       f"to {release_cell['cell_type']}")
        cell = dict(cell, cell_type=release_cell["cell_type"], outputs=[], execution_count=None)
    return cell


def graded_cells(source: dict) -> list[GradedCell]:
    """Each test cell of the source notebook, with the autograder checks its code calls."""
    result = []
    for cell in source["cells"]:
        if not is_test(cell):
            continue
        tree = ast.parse(source_text(cell))
        imported = {alias.asname or alias.name: (node.module, alias.name)
                    for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("rnn_by_hand") for alias in node.names}
        checks = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in imported and node.args and isinstance(node.args[0], ast.Name):
                module, name = imported[node.func.id]
                check = getattr(importlib.import_module(module), name)
                entry = (check.name, node.args[0].id)
                if entry not in checks:
                    checks.append(entry)
        if not checks:
            raise ValueError(f"test cell {meta(cell)['grade_id']!r} calls no autograder check")
        result.append(GradedCell(meta(cell)["grade_id"], float(meta(cell).get("points", 0)), checks))
    return result


def load(path: Path) -> dict:
    return json.loads(path.read_text())
