"""Find each student's notebook in a folder, an LMS zip, or nbgrader's submitted/ tree.

    submissions/alice/recurrence.ipynb                  one folder per student
    submitted/alice/01-recurrence/recurrence.ipynb      nbgrader's submitted/ tree
    class.zip                                           either of the above, zipped, or flat
                                                        files named <student>_<anything>.ipynb
                                                        (as LMS downloads and nbgrader's
                                                        zip_collect name them)
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rnn_by_hand.grading.errors import GradingError

MAX_UNZIPPED = 2 << 30
FLAT_NAME = re.compile(r"^(?P<student>[A-Za-z0-9][A-Za-z0-9.\-]*?)_.*\.ipynb$")


@dataclass
class Submission:
    student: str
    path: Path | None  # None: the student has no notebook
    note: str = ""


def unzip(archive: Path, destination: Path) -> Path:
    """Extract safely: no absolute paths, no '..', bounded total size."""
    with zipfile.ZipFile(archive) as zipped:
        total = 0
        for member in zipped.infolist():
            name = Path(member.filename)
            if member.is_dir() or name.is_absolute() or ".." in name.parts or "__MACOSX" in name.parts:
                continue
            total += member.file_size
            if total > MAX_UNZIPPED:
                raise GradingError(f"{archive} unpacks to more than {MAX_UNZIPPED >> 30} GB")
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zipped.read(member))
    return destination


def pick(notebooks: list[Path], expected: str) -> tuple[Path | None, str]:
    if not notebooks:
        return None, "no notebook found"
    named = [p for p in notebooks if p.name == expected]
    if named:
        return named[0], ""
    choice = sorted(notebooks)[0]
    return choice, f"no {expected}; graded {choice.name}"


def collect(root: Path, assignment: str, notebook: str, scratch: Path) -> list[Submission]:
    """One Submission per student found under `root` (a folder or a zip file)."""
    if root.is_file() and zipfile.is_zipfile(root):
        root = unzip(root, scratch / "unzipped")
        inner = [p for p in root.iterdir() if p.is_dir()]
        if len(inner) == 1 and not list(root.glob("*.ipynb")) and inner[0].name in (assignment, "submitted"):
            root = inner[0]
    if not root.is_dir():
        raise GradingError(f"{root} is neither a folder nor a zip file of submissions")
    submissions = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        inside = folder / assignment if (folder / assignment).is_dir() else folder
        path, note = pick([p for p in inside.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts],
                          notebook)
        submissions.append(Submission(folder.name, path, note))
    flat: dict[str, list[Path]] = {}
    for path in sorted(root.glob("*.ipynb")):
        match = FLAT_NAME.match(path.name)
        flat.setdefault(match["student"] if match else path.stem, []).append(path)
    for student, paths in flat.items():
        path, note = pick(paths, notebook) if len(paths) > 1 else (paths[0], "")
        submissions.append(Submission(student, path, note))
    seen: dict[str, int] = {}
    for submission in submissions:  # two sources for one id would overwrite each other
        seen[submission.student] = seen.get(submission.student, 0) + 1
        if seen[submission.student] > 1:
            submission.student = f"{submission.student}-{seen[submission.student]}"
    return submissions
