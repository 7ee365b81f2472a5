"""The first and the last code cell of every exercise notebook, written by the release.

The first: find the checker, or say how to install it. A student often has only the
notebook they downloaded (a laptop, Colab, a hub). This locked cell, written by
`rnn-by-hand release` into every source notebook before the release is generated, imports
the checker and calls `require` with the version the notebook was released with.
Whatever is wrong (no checker, another release of it, an untested torch) ends in one
line that says what to run.

The last: a summary of every exercise of the assignment (check_all), one line each and
the next to do, so a student who ran the notebook top to bottom sees where they stand.
It is not graded, and the class grader does not run it.

Between them, every test cell and every "# Try it" cell is tagged raises-exception:
JupyterLab's Run All then goes on past a failing check or a broken try-it (both are
expected while a student works) instead of stopping before the cells below, the
summary among them. nbgrader ignores the tag; so does the class grader.
"""
from __future__ import annotations

import json

from ._version import DISTRIBUTION, __version__

GRADE_ID = "checker"
METADATA = {"nbgrader": {"grade": False, "grade_id": GRADE_ID, "locked": True, "schema_version": 3,
                         "solution": False, "task": False}}


def source(version: str = __version__) -> str:
    """The cell's code for a notebook released with checker `version`."""
    return ("# Run this cell first: it loads the checker of these exercises,\n"
            f"# the pip package {DISTRIBUTION}.\n"
            "try:\n"
            "    import rnn_by_hand\n"
            "except ModuleNotFoundError:\n"
            "    raise ModuleNotFoundError('the checker is missing: run  '\n"
            f"                              '%pip install \"{DISTRIBUTION}~={version}\"  '\n"
            "                              'in a new cell, then run this cell again') from None\n"
            f'rnn_by_hand.require("{version}")')


SUMMARY_ID = "check-all"
SUMMARY_METADATA = {"nbgrader": {**METADATA["nbgrader"], "grade_id": SUMMARY_ID}}


def summary_source(assignment: str) -> str:
    return ("# Run this cell last: every exercise above on its visible cases, and the next\n"
            "# one to work on. Not graded.\n"
            "from rnn_by_hand.checks import check_all\n"
            f'check_all("{assignment}", globals())')


def cell(version: str = __version__) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": GRADE_ID, "metadata": METADATA,
            "outputs": [], "source": source(version).splitlines(keepends=True)}


def summary_cell(assignment: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": SUMMARY_ID, "metadata": SUMMARY_METADATA,
            "outputs": [], "source": summary_source(assignment).splitlines(keepends=True)}


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


MAY_RAISE = "raises-exception"  # the cell tag JupyterLab's Run All continues past


def may_raise(cell: dict) -> bool:
    """A test cell, or a try-it cell: where an exception is part of the work."""
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else source
    return cell["cell_type"] == "code" and ((nbgrader.get("grade") and not nbgrader.get("solution"))
                                            or text.startswith("# Try it"))


def tagged(cell: dict) -> dict:
    if not may_raise(cell):
        return cell
    tags = cell.get("metadata", {}).get("tags", [])
    if MAY_RAISE in tags:
        return cell
    return dict(cell, metadata=dict(cell.get("metadata", {}), tags=[*tags, MAY_RAISE]))


def stamped(notebook: dict, assignment: str, version: str = __version__) -> dict:
    """`notebook` with the setup cell of `version` as its first code cell, the summary of
    `assignment` as its last cell (replacing older ones) and its test and try-it cells
    tagged raises-exception."""
    cells = [tagged(c) for c in notebook["cells"] if grade_id(c) not in (GRADE_ID, SUMMARY_ID)]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    cells = cells[:first_code] + [cell(version)] + cells[first_code:] + [summary_cell(assignment)]
    return dict(notebook, cells=cells)


def stamp_course(course, names: list[str]) -> list[str]:
    """Write the current setup and summary cells into the source notebooks of `names`;
    the notebooks changed."""
    if __version__ == "0+unknown":
        raise RuntimeError(f"{DISTRIBUTION} is not installed, so its version is unknown: "
                           "pip install the checkout (pip install -e .) before releasing")
    changed = []
    for name in names:
        for path in sorted((course.solutions / name).glob("*.ipynb")):
            notebook = json.loads(path.read_text())
            new = stamped(notebook, name)
            if new != notebook:
                path.write_text(json.dumps(new, indent=1, ensure_ascii=False) + "\n")
                changed.append(str(path))
    return changed
