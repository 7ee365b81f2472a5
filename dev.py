#!/usr/bin/env python3
"""Set up, build and test the course with nothing but Python 3.11 and pip.

    python3 dev.py book      # .venv + requirements, then the HTML book in _build/html
                             # and, where chromium is installed, its PDF beside it
    python3 dev.py test      # .venv + requirements, then every test (pytest, in parallel)
    python3 dev.py release [ASSIGNMENT ...]   # regenerate exercises/ from solutions/

Each command creates the virtual environment in .venv when it is missing and
reinstalls only when requirements.txt or pyproject.toml changed, so a second
run starts at once. Extra arguments after `test` go to pytest.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent
VENV = REPO / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"
# The machine's pip configuration may list local indexes that warn on every missing page.
PIP_NOISE = "is ignored: it is neither a file nor a directory"


def run(*command: str | Path, **kwargs) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], cwd=REPO, check=True, **kwargs)


def requirements_hash() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        digest.update((REPO / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv and install the pinned requirements and this course's package (rnn-by-hand, editable)."""
    if not PYTHON.exists():
        print(f"creating {VENV.relative_to(REPO)}", flush=True)
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text() == requirements_hash():
        return
    command = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check",
               "-r", "requirements.txt", "-e", "."]
    print("+", " ".join(command[2:]), flush=True)
    process = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    output = "\n".join(line for line in (process.stdout + process.stderr).splitlines()
                       if PIP_NOISE not in line and not line.startswith("Requirement already"))
    if process.returncode != 0:
        print(output)
        sys.exit(f"pip install failed (exit {process.returncode})")
    STAMP.write_text(requirements_hash())


def venv_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(VENV)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet debugpy note in kernels
    # OpenMP threads that spin while they wait collapse torch's speed as soon as another job
    # shares the cores: chapter 8's training ran at 338 tokens/s with two spinning threads on
    # a 2-core machine busy with the test suite, 740 with one thread, 912 with two passive ones.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


SYSTEM_PACKAGES = (("chromium", "chromium"), ("poppler-utils", "pdftotext"), ("bubblewrap", "bwrap"),
                   ("postgresql", "pg_ctl"), ("parallel", "parallel"))


def ensure_system_packages(wanted=SYSTEM_PACKAGES) -> None:
    """Debian's chromium (the browser tests and the book's PDF), poppler-utils (reading the
    PDF back in its test), bubblewrap (the class grader's sandbox), postgresql (a shared
    gradebook, started by its test) and GNU parallel (sharded grading's recipe, run by its
    test), installed where apt-get is ours."""
    missing = [package for package, command in wanted
               if not shutil.which(command) and not (package == "postgresql" and postgres_bin())]
    if not missing or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("apt-get", "update", "-qq", env=env, stdout=subprocess.DEVNULL)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
        env=env, stdout=subprocess.DEVNULL)


def postgres_bin() -> Path | None:
    """Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<version>/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def pages_with_errors(build: Path) -> list[str]:
    """Executed pages that hold an error output or a traceback (never to be published)."""
    import json
    found = []
    for notebook in sorted((build / "jupyter_execute").rglob("*.ipynb")):
        cells = json.loads(notebook.read_text()).get("cells", [])
        for cell in cells:
            for output in cell.get("outputs", []):
                text = "".join(output.get("text", "")) if output.get("output_type") == "stream" else ""
                if output.get("output_type") == "error" or "Traceback (most recent call last)" in text:
                    found.append(str(notebook.relative_to(build / "jupyter_execute")))
                    break
    return sorted(set(found))


def forget_stale_diagrams(root: Path, build: Path) -> None:
    """The execution cache keys a page on its own code cells, not on book/_diagrams.py, which
    draws the figures: when that file changes, every page is executed and read again."""
    drawing = root / "book" / "_diagrams.py"
    if not drawing.exists():
        return
    digest = hashlib.sha256(drawing.read_bytes()).hexdigest()
    stamp = build / ".diagrams.sha256"
    if stamp.exists() and stamp.read_text() != digest:
        print("book/_diagrams.py changed: executing every page again", flush=True)
        for stale in (build / ".jupyter_cache", build / ".doctrees", build / "html", build / "jupyter_execute"):
            shutil.rmtree(stale, ignore_errors=True)
    build.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def build_book(root: Path, output: Path, env: dict[str, str] | None = None) -> int:
    """Build the book in `root` into `output`/_build; 0 only when every page executed cleanly.

    Execution is cached (only pages whose code changed run again), but Sphinx also
    skips pages it read before: after a failed build, the next one would say it
    succeeded and publish the failed page. So a failed build forgets what Sphinx read
    (the execution cache of the pages that did run is kept, so the retry is cheap).
    """
    build = output / "_build"
    forget_stale_diagrams(root, build)
    command = [str(VENV / "bin" / "jupyter-book"), "build", str(root), "--path-output", str(output),
               "-W", "-n", "--keep-going"]
    print("+", " ".join(command[1:]), flush=True)
    code = subprocess.run(command, cwd=root, env=env).returncode
    failed = pages_with_errors(build)
    if code or failed:
        for stale in (build / ".doctrees", build / "html", build / "jupyter_execute"):
            shutil.rmtree(stale, ignore_errors=True)
        print("the book did not build cleanly" + (f": errors in {', '.join(failed)}" if failed else "")
              + "; the next build executes and reads those pages again", file=sys.stderr)
        return code or 1
    return 0


PDF_NAME = "rnn-by-hand.pdf"  # in the HTML folder, linked from the introduction


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def build_pdf(root: Path, output: Path, env: dict[str, str] | None = None) -> int:
    """The whole book as one PDF, `output`/_build/html/rnn-by-hand.pdf: Jupyter Book's
    singlehtml builder (it reuses the HTML build's execution cache), printed by chromium.

    Why this and not LaTeX: it needs no TeX installation, prints the pages exactly as the
    HTML shows them (MathJax, SVG diagrams, styled outputs), and chromium is already what
    the browser tests use. The builder writes the root page into its source folder
    (book/intro.html) with links relative to the top folder, so a copy at the top is printed.
    """
    browser = chromium()
    if browser is None:
        print("no PDF: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    command = [str(VENV / "bin" / "jupyter-book"), "build", str(root), "--path-output", str(output),
               "--builder", "singlehtml", "-W", "-n", "--keep-going"]
    print("+", " ".join(command[1:]), flush=True)
    if subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL).returncode:
        print("no PDF: the single-page build failed", file=sys.stderr)
        return 1
    single = output / "_build" / "singlehtml"
    top = root_document(root)
    whole = single / "whole-book.html"
    shutil.copyfile(single / f"{top}.html", whole)
    pdf = output / "_build" / "html" / PDF_NAME
    pdf.unlink(missing_ok=True)
    # virtual time: the page is printed once MathJax has run out of work, however busy the CPU
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--no-pdf-header-footer",
                    "--virtual-time-budget=120000", f"--print-to-pdf={pdf}", whole.as_uri()],
                   capture_output=True, timeout=900)
    if not pdf.is_file() or pdf.stat().st_size < 100_000:
        print("no PDF: chromium did not print the book", file=sys.stderr)
        return 1
    print(f"+ printed {pdf.relative_to(output)}", flush=True)
    return 0


def root_document(root: Path) -> str:
    """The `root:` document of _toc.yml, e.g. book/intro."""
    for line in (root / "_toc.yml").read_text().splitlines():
        if line.startswith("root:"):
            return line.split(":", 1)[1].strip()
    raise ValueError("_toc.yml has no root document")


def book() -> int:
    ensure_venv()
    ensure_system_packages((("chromium", "chromium"),))
    code = build_book(REPO, REPO, venv_environment())
    if code == 0:
        pdf = build_pdf(REPO, REPO, venv_environment())
        print(f"\nThe book is in {REPO / '_build' / 'html' / 'index.html'}"
              + (f", its PDF in {REPO / '_build' / 'html' / PDF_NAME}" if pdf == 0 else " (no PDF)"))
    return code


def test(pytest_args: list[str]) -> int:
    ensure_venv()
    ensure_system_packages()
    workers = str(max(2, min(4, os.cpu_count() or 2)))
    command = [PYTHON, "-m", "pytest", "-n", workers, "--dist", "loadscope",
               "tests", *pytest_args]
    print("+", " ".join(str(c) for c in command), flush=True)
    return subprocess.run([str(c) for c in command], cwd=REPO, env=venv_environment()).returncode


def release(names: list[str]) -> None:
    ensure_venv()
    run(PYTHON, "-m", "rnn_by_hand", "release", *names, env=venv_environment())


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("book", "test", "release"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    command, rest = argv[0], argv[1:]
    if command == "test":
        return test(rest)
    if command == "book":
        return book()
    release(rest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
