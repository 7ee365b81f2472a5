"""Find each student's notebook in a folder, an LMS download, or nbgrader's submitted/ tree.

    submissions/alice/recurrence.ipynb                  one folder per student (any id)
    submitted/alice/01-recurrence/recurrence.ipynb      nbgrader's submitted/ tree (with
                                                        collect's timestamp.txt)
    class.zip                                           any of these, zipped, or flat files
                                                        named as an LMS names them:

    Canvas      doejane_12345_678901_recurrence.ipynb             id 12345 (Canvas user id)
                doejane_LATE_12345_678901_recurrence-1.ipynb      the same, marked late
    Moodle      Jane Doe_4242_assignsubmission_file_/recurrence.ipynb   id 4242 (a folder,
                or the same prefix on a flat file)
    Blackboard  Assignment 1_jdoe_attempt_2026-11-20-14-05-09_recurrence.ipynb
                                                        id jdoe, submitted at that time
    generic     <student>_<anything>.ipynb (nbgrader's zip_collect), else the file's stem

The LMS's own id is the student's key, so grades go back to the right row; the display
name is kept beside it. Any id is accepted: file names come from `file_name`, which
never collides and never leaves its folder.
"""
from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rnn_by_hand.grading.errors import GradingError

MAX_UNZIPPED = 2 << 30
MAX_FILE_NAME = 80  # characters of an id kept in a file name, before its digest

CANVAS = re.compile(r"^(?P<name>[^_]+)_(?P<late>LATE_)?(?P<student>\d+)_(?P<submission>\d+)_.*\.ipynb$")
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<student>\d+)_assign(?:submission|feedback)_\w*?_(?P<rest>.*)$")
BLACKBOARD = re.compile(r"^.+?_(?P<student>[^_]+)_attempt_(?P<when>\d{4}(?:-\d\d){5})(?:_.*)?\.ipynb$")
GENERIC = re.compile(r"^(?P<student>[A-Za-z0-9][A-Za-z0-9.\-]*?)_.*\.ipynb$")


@dataclass
class Submission:
    student: str              # the key: the LMS's id, nbgrader's student id or the folder name
    path: Path | None         # None: the student has no notebook
    note: str = ""
    name: str = ""            # display name, where the LMS gives one
    late: bool = False        # the LMS marked it late
    submitted_at: str = ""    # ISO 8601 in UTC, where known (nbgrader's collect, Blackboard)


def file_name(student: str) -> str:
    """A file name for `student`: the id itself where that is safe, else a readable part and a
    digest of the whole id. Two ids never share a name, not even on a disk blind to case, and
    none reaches outside its folder or reads as a command-line option."""
    readable = re.sub(r"[^a-z0-9_.-]", "_", student.lower())[:MAX_FILE_NAME].lstrip(".-")
    if readable and readable == student:
        return readable
    return f"{readable or 'student'}-{hashlib.sha256(student.encode()).hexdigest()[:10]}"


def safe_as_folder(student: str) -> bool:
    """Whether nbgrader may name a folder by this id as it is (it does, in autograded/)."""
    return (0 < len(student.encode()) <= 200 and "/" not in student and "\\" not in student
            and not student.startswith((".", "-")) and student.isprintable())


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


def collected_at(folder: Path) -> str:
    """The time nbgrader's collect recorded in timestamp.txt, as ISO 8601 UTC ('' when none)."""
    stamp = folder / "timestamp.txt"
    if not stamp.is_file():
        return ""
    try:
        from nbgrader.utils import parse_utc
        return parse_utc(stamp.read_text().strip()).replace(tzinfo=timezone.utc).isoformat()
    except Exception:  # noqa: BLE001 -- a malformed timestamp is the student's, not a grader bug
        return ""


def from_folder(folder: Path, assignment: str, notebook: str) -> Submission:
    inside = folder / assignment if (folder / assignment).is_dir() else folder
    path, note = pick([p for p in inside.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts], notebook)
    moodle = MOODLE.match(folder.name + "_")
    if moodle:
        return Submission(moodle["student"], path, note, name=moodle["name"])
    return Submission(folder.name, path, note, submitted_at=collected_at(inside))


def from_flat_file(path: Path) -> Submission:
    if (match := CANVAS.match(path.name)):
        return Submission(match["student"], path, name=match["name"], late=bool(match["late"]))
    if (match := MOODLE.match(path.name)):
        return Submission(match["student"], path, name=match["name"])
    if (match := BLACKBOARD.match(path.name)):
        when = datetime.strptime(match["when"], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=timezone.utc)
        return Submission(match["student"], path, submitted_at=when.isoformat())
    if (match := GENERIC.match(path.name)):
        return Submission(match["student"], path)
    return Submission(path.name[:-len(".ipynb")] or path.name, path)


def collect(root: Path, assignment: str, notebook: str, scratch: Path) -> list[Submission]:
    """One Submission per student found under `root` (a folder or a zip file)."""
    if root.is_file() and zipfile.is_zipfile(root):
        root = unzip(root, scratch / "unzipped")
        inner = [p for p in root.iterdir() if p.is_dir()]
        if len(inner) == 1 and not list(root.glob("*.ipynb")) and inner[0].name in (assignment, "submitted"):
            root = inner[0]
    if not root.is_dir():
        raise GradingError(f"{root} is neither a folder nor a zip file of submissions")
    submissions = [from_folder(folder, assignment, notebook)
                   for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))]
    flat: dict[str, list[Submission]] = {}
    for path in sorted(root.glob("*.ipynb")):
        found = from_flat_file(path)
        flat.setdefault(found.student, []).append(found)
    for found in flat.values():  # several files of one student: the expected notebook
        path, note = pick([s.path for s in found], notebook) if len(found) > 1 else (found[0].path, "")
        chosen = next(s for s in found if s.path == path)
        chosen.note = note
        submissions.append(chosen)
    seen: dict[str, int] = {}
    for submission in submissions:  # two sources for one id would overwrite each other
        seen[submission.student] = seen.get(submission.student, 0) + 1
        if seen[submission.student] > 1:
            submission.note = "; ".join(filter(None, [submission.note, f"a second submission of {submission.student}"]))
            submission.student = f"{submission.student}-{seen[submission.student]}"
    return submissions
