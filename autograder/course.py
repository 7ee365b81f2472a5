"""An nbgrader course folder: where its source and release notebooks are, and releasing them.

A course is a folder holding `nbgrader_config.py`, `solutions/<assignment>/` (the
source, with solution regions and hidden tests) and `exercises/<assignment>/` (the
generated release). This repository is one; so is any copy of it. Paths always come
from the course folder an instructor names (`--course`, default: the current folder),
never from where this package is installed, so a wheel grades any course.

Every nbgrader command here runs in a temporary copy of the course, so the course
folder never gains nbgrader's working folders as a side effect of releasing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .grading.errors import GradingError

CONFIG = "nbgrader_config.py"


@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def at(cls, folder: Path | str = ".") -> "Course":
        """The course in `folder`, or a one-line GradingError that says what is missing."""
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise GradingError(f"course folder {folder} does not exist")
        missing = [name for name in (CONFIG, "solutions") if not (root / name).exists()]
        if missing:
            raise GradingError(f"{root} is not a course folder: it has no {' and no '.join(missing)} "
                               "(run the command in the course folder, or pass --course DIR)")
        return cls(root)

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def exercises(self) -> Path:
        return self.root / "exercises"

    def assignments(self) -> list[str]:
        """Assignment names: one folder per chapter under solutions/."""
        return sorted(p.name for p in self.solutions.iterdir() if p.is_dir() and not p.name.startswith("."))

    def known(self, names: list[str] | None) -> list[str]:
        """`names` (default: every assignment), refused in one line when one is not in the course."""
        names = list(names or self.assignments())
        unknown = sorted(set(names) - set(self.assignments()))
        if unknown:
            raise GradingError(f"no such assignment in {self.solutions}: {', '.join(unknown)} "
                               f"(known: {', '.join(self.assignments())})")
        return names

    def copy_to(self, root: Path) -> Path:
        """A fresh nbgrader course at `root` with this course's config and source notebooks."""
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.root / CONFIG, root / CONFIG)
        shutil.copytree(self.solutions, root / "solutions", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        return root

    def generate_release(self, destination: Path, names: list[str] | None = None) -> Path:
        """Write the student release of the named assignments (default: all) to `destination`.

        Only the named assignments' folders under `destination` are replaced.
        """
        names = self.known(names)
        with tempfile.TemporaryDirectory() as tmp:
            course = self.copy_to(Path(tmp) / "course")
            for name in names:
                nbgrader("generate_assignment", name, "--force", cwd=course)
                target = destination / name
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(course / "exercises" / name, target)
        return destination

    def stale_releases(self, names: list[str] | None = None) -> list[str]:
        """Files of exercises/ that differ from what releasing the source would write now."""
        names = self.known(names)
        with tempfile.TemporaryDirectory() as tmp:
            fresh = self.generate_release(Path(tmp) / "release", names)
            stale = []
            for name in names:
                committed, generated = self.exercises / name, fresh / name
                files = {p.relative_to(generated) for p in generated.rglob("*") if p.is_file()}
                if committed.is_dir():
                    files |= {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
                for file in sorted(files):
                    if content(committed / file) != content(generated / file):
                        stale.append(f"exercises/{name}/{file}")
            return stale

    def nbgrader_config(self):
        """The course's nbgrader_config.py, as nbgrader reads it."""
        from traitlets.config.loader import PyFileConfigLoader
        return PyFileConfigLoader(CONFIG, path=str(self.root)).load_config()

    def gradebook_url(self) -> str:
        """The course's gradebook: its configured db_url (e.g. PostgreSQL for several graders),
        else nbgrader's default, gradebook.db in the course folder."""
        configured = self.nbgrader_config().CourseDirectory
        url = configured["db_url"] if "db_url" in configured else ""
        if not url:
            return f"sqlite:///{self.root / 'gradebook.db'}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return f"sqlite:///{self.root / url[len('sqlite:///'):]}"  # relative to the course
        return url

    def course_id(self) -> str:
        configured = self.nbgrader_config().CourseDirectory
        return configured["course_id"] if "course_id" in configured else ""

    def record_in_gradebook(self, name: str) -> None:
        """Record assignment `name` (its notebooks and cells) in the gradebook, as
        `nbgrader generate_assignment` does, without touching the course's exercises/."""
        with tempfile.TemporaryDirectory() as tmp:
            course = self.copy_to(Path(tmp) / "course")
            nbgrader("generate_assignment", name, "--force", f"--CourseDirectory.db_url={self.gradebook_url()}",
                     cwd=course)

    def release(self, names: list[str] | None = None) -> list[str]:
        """Regenerate exercises/ for the named assignments, with each setup cell naming this checker."""
        from .setup_cell import stamp_course
        names = self.known(names)
        stamp_course(self, names)
        self.generate_release(self.exercises, names)
        return names


def content(path: Path):
    """What a file says, for comparing releases: a notebook without its editor's language_info."""
    if not path.is_file():
        return None
    if path.suffix != ".ipynb":
        return path.read_bytes()
    notebook = json.loads(path.read_text())
    notebook.get("metadata", {}).pop("language_info", None)
    return notebook


def environment() -> dict[str, str]:
    """This interpreter's bin/ first on PATH: nbgrader runs `alembic` and kernels by name."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nbgrader(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run an nbgrader command with this Python (extra environment variables in `env`)."""
    try:
        import nbgrader as _  # noqa: F401
    except ImportError:
        raise GradingError('nbgrader is not installed: pip install "rnn-by-hand[grade]"') from None
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd,
                            capture_output=True, text=True, env=environment() | env)
    if result.returncode != 0:
        output = f"$ nbgrader {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        with tempfile.NamedTemporaryFile("w", prefix=f"nbgrader-{args[0]}-", suffix=".log", delete=False) as log:
            log.write(output)
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        cause = next((line for line in reversed(lines) if "Error:" in line), lines[-1])
        raise GradingError(f"nbgrader {args[0]} failed ({cause[:300]}); its whole output is in {log.name}")
    return result
