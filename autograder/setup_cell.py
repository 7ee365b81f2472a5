"""The first code cell of every exercise notebook: find the checker, or say how to install it.

A student often has only the notebook they downloaded (a laptop, Colab, a hub). This
locked cell, written by `rnn-by-hand release` into every source notebook before the
release is generated, imports the checker and calls `require` with the version the
notebook was released with. Whatever is wrong (no checker, another release of it, an
untested torch) ends in one line that says what to run.
"""
from __future__ import annotations

import json

from ._version import DISTRIBUTION, __version__

GRADE_ID = "checker"
METADATA = {"nbgrader": {"grade": False, "grade_id": GRADE_ID, "locked": True, "schema_version": 3,
                         "solution": False, "task": False}}


def source(version: str = __version__) -> str:
    """The cell's code for a notebook released with checker `version`."""
    return ("# Run this cell first: it loads the checker of these exercises, "
            f"the pip package {DISTRIBUTION}.\n"
            "try:\n"
            "    import rnn_by_hand\n"
            "except ModuleNotFoundError:\n"
            "    raise ModuleNotFoundError('the checker is missing: run  "
            f"%pip install \"{DISTRIBUTION}~={version}\"  '\n"
            "                              'in a new cell, then run this cell again') from None\n"
            f'rnn_by_hand.require("{version}")')


def cell(version: str = __version__) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": GRADE_ID, "metadata": METADATA,
            "outputs": [], "source": source(version).splitlines(keepends=True)}


def stamped(notebook: dict, version: str = __version__) -> dict:
    """`notebook` with the setup cell of `version` as its first code cell (replacing an older one)."""
    cells = [c for c in notebook["cells"]
             if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != GRADE_ID]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    return dict(notebook, cells=cells[:first_code] + [cell(version)] + cells[first_code:])


def stamp_course(course, names: list[str]) -> list[str]:
    """Write the current setup cell into the source notebooks of `names`; the notebooks changed."""
    if __version__ == "0+unknown":
        raise RuntimeError(f"{DISTRIBUTION} is not installed, so its version is unknown: "
                           "pip install the checkout (pip install -e .) before releasing")
    changed = []
    for name in names:
        for path in sorted((course.solutions / name).glob("*.ipynb")):
            notebook = json.loads(path.read_text())
            new = stamped(notebook)
            if new != notebook:
                path.write_text(json.dumps(new, indent=1, ensure_ascii=False) + "\n")
                changed.append(str(path))
    return changed
