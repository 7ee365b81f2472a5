"""The repository as an nbgrader course: releasing, validating and grading notebooks.

Every nbgrader command here runs in a temporary course directory, so the
repository never gains a gradebook.db or nbgrader's working folders.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"


def assignments() -> list[str]:
    """Assignment names: one folder per chapter under solutions/."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("."))


def environment() -> dict[str, str]:
    """This interpreter's bin/ first on PATH: nbgrader runs `alembic` and kernels by name."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nbgrader(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run an nbgrader command with this Python (extra environment variables in `env`)."""
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd,
                            capture_output=True, text=True, env=environment() | env)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def new_course(root: Path) -> Path:
    """A course directory at `root` with this repository's config and source notebooks."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(SOLUTIONS, root / "solutions", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return root


def generate_release(destination: Path, names: list[str] | None = None) -> Path:
    """Write the student release of the named assignments (default: all) to `destination`.

    Only the named assignments' folders under `destination` are replaced.
    """
    names = names or assignments()
    unknown = sorted(set(names) - set(assignments()))
    if unknown:
        raise SystemExit(f"no such assignment in solutions/: {', '.join(unknown)}")
    with tempfile.TemporaryDirectory() as tmp:
        course = new_course(Path(tmp) / "course")
        for name in names:
            nbgrader("generate_assignment", name, "--force", cwd=course)
            target = destination / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(course / "exercises" / name, target)
    return destination


def main(argv: list[str]) -> int:
    if argv[:1] == ["release"]:
        names = argv[1:] or assignments()
        generate_release(EXERCISES, names)
        print(f"wrote exercises/ for {', '.join(names)}")
        return 0
    print("usage: python -m autograder.course release [ASSIGNMENT ...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
