"""What the class grader's sandbox guarantees, each tested from inside a submission.

Each probe is a chapter 1 submission whose `stacked_rnn_step` reports what the probe
found by raising it as an exception, so the finding comes back as the reason of
test_stacked_rnn_step; the guarantee is then asserted on that reason. Bystanders with
correct answers are graded in the same batch, by the same worker, after the
probes, and must keep their full marks.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import COURSE, REPO, SOLUTIONS
from rnn_by_hand.grading.batch import grade_class
from rnn_by_hand.grading.sandbox import ENVIRONMENT, Limits
from submissions import ASSIGNMENT, FULL, RELEASE, answered, with_cell

SECRET = "hub-token-that-must-never-reach-a-student"
MARKER = "3599.25"  # a daemon's `sleep` argument, to find it on the host afterwards
LIMITS = Limits(cell_seconds=3, total_seconds=30)
# Variables every sandbox sets for itself, whatever the grader's values are.
GENERIC = set(ENVIRONMENT) | {"PWD", "TMPDIR"}


def reporting(body: str) -> str:
    """A cell that defines stacked_rnn_step to raise what `body` left in `found` (a list of str)."""
    return ("found = []\n" + textwrap.dedent(body)
            + "\ndef stacked_rnn_step(*args, **kwargs):\n    raise RuntimeError('FOUND ' + repr(found))\n")


def at_end(notebook: dict, source: str) -> dict:
    """After every stub, so that what the cell defines is what the checks see."""
    return with_cell(notebook, source, at=len(notebook["cells"]))


def probes(course: Path, out: Path, listening: int) -> dict[str, str]:
    private = [course / ".git" / "HEAD", course / "nbgrader_config.py", course / "gradebook.db",
               SOLUTIONS / ASSIGNMENT / "recurrence.ipynb", REPO / ".git" / "HEAD", out / "run.json",
               out / "grades.csv", out / "results", Path("/etc/shadow"), Path("/"), Path("/dev"),
               REPO / "autograder"]
    return {
        "descriptors": """
            import os, stat, socket, gc
            for fd in range(3, 4096):
                try:
                    mode = os.fstat(fd).st_mode
                except OSError:
                    continue
                found.append("socket" if stat.S_ISSOCK(mode) else "pipe" if stat.S_ISFIFO(mode) else "file")
            found += [type(o).__name__ for o in gc.get_objects() if type(o).__name__ == "Connection"]
        """,
        "processes": f"""
            import os, signal
            for pid in range(1, 40000):
                try:
                    os.kill(pid, 0)
                    found.append(pid)
                except (ProcessLookupError, PermissionError):
                    pass
            found.append("proc:" + ",".join(os.listdir("/proc")))
            for pid in range(3, 40000):  # everything but its namespace's PID 1 and itself
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if os.fork() == 0:  # a daemon that means to outlive its notebook
                os.setsid()
                if os.fork() == 0:
                    os.execv("/bin/sleep", ["sleep", "{MARKER}"])
                os._exit(0)
        """,
        "files": f"""
            import os, subprocess
            for path in {[str(p) for p in private]!r}:
                try:
                    if not os.path.isdir(path):
                        found.append(path + ":" + open(path, "rb").read(20).hex())
                    elif path != "/" and not path.endswith(("dev", "autograder")):  # those are there
                        found.append(path + ":" + ",".join(os.listdir(path)))
                except OSError:
                    pass
                try:
                    open(os.path.join(path if os.path.isdir(path) else os.path.dirname(path), "owned"), "w")
                    found.append("wrote next to " + path)
                except OSError:
                    pass
            try:
                shown = subprocess.run(["git", "-C", {str(REPO)!r}, "show", "HEAD:README.md"],
                                       capture_output=True, timeout=5)
                found += ["git show worked"] if shown.returncode == 0 else []
            except (OSError, subprocess.SubprocessError):
                pass
        """,
        "environment": f"""
            import os
            grader = {dict((k, v) for k, v in os.environ.items() if k not in GENERIC)!r}
            found += [key for key, value in os.environ.items()  # a grader variable, with its value
                      if grader.get(key) == value or {SECRET!r} in value]
        """,
        "network": f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {listening}), timeout=2)
                found.append("reached the grader's machine")
            except OSError:
                pass
            try:
                socket.create_connection(("1.1.1.1", 53), timeout=2)
                found.append("reached the internet")
            except OSError:
                pass
        """,
        "tmp-a-writes": """
            for path in ("/tmp/left-by-a-student", "/dev/shm/left-by-a-student", "left-by-a-student"):
                open(path, "w").write("x")
            found.append("wrote")
        """,
        "tmp-b-reads": """
            import os
            found += [p for p in ("/tmp/left-by-a-student", "/dev/shm/left-by-a-student",
                                  "left-by-a-student") if os.path.exists(p)]
        """,
        "disk": """
            try:
                with open("/tmp/big", "wb") as handle:
                    for _ in range(2048):
                        handle.write(bytes(1 << 20))
                found.append("wrote 2 GB")
            except OSError:
                pass
        """,
    }


# Messages a submission can forge on its own channel; each must cost it, and only it.
FORGED = {
    "forges-a-list": "[1, 2, 3]",
    "forges-unhashable-check": "{'type': 'check', 'check': ['01-recurrence/stacked_rnn_step'], 'outputs': []}",
    "forges-tensor-cell-errors": "{'type': 'cells', 'errors': [torch.zeros(3)]}",
    "forges-unknown-check": "{'type': 'check', 'check': 'someone/else', 'outputs': []}",
}


def forging(tree: str, repeat: int = 1, size: int | None = None) -> str:
    """A cell that finds its result channel and writes `tree` there (or a frame claiming `size`)."""
    return f"""
import os, stat, struct, torch, io
def frame(tree):
    buffer = io.BytesIO()
    torch.save(tree, buffer)
    return struct.pack("<cI", b"M", len(buffer.getvalue())) + buffer.getvalue()
for fd in range(3, 1024):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            data = struct.pack("<cI", b"M", {size}) if {size!r} else frame({tree})
            for _ in range({repeat}):
                os.write(fd, data)
    except OSError:
        pass
"""


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    course, out, submissions = tmp / "course", tmp / "graded", tmp / "in"
    (course / ".git").mkdir(parents=True)
    (course / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"seed": 1234}))  # an earlier batch's secret
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    students = {f"probe-{name}": at_end(RELEASE, reporting(body))
                for name, body in probes(course, out, listener.getsockname()[1]).items()}
    students |= {name: at_end(RELEASE, forging(tree)) for name, tree in FORGED.items()}
    students["floods-messages"] = at_end(RELEASE, forging("{'type': 'cells', 'errors': []}", repeat=5000))
    students["claims-a-huge-message"] = at_end(RELEASE, forging("", size=2**32 - 1))
    students["long-exception"] = at_end(RELEASE, "MESSAGE = 'x' * 5000 + chr(10) + 'the' + ' rest'\n"
                                                 "def stacked_rnn_step(*a, **k):\n    raise ValueError(MESSAGE)")
    # Chapter 1 never plots, so its workers do not load pyplot: a student who does pays the import.
    students["plots"] = at_end(answered(), "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                                           "plt.plot([0, 1], [1, 0])\nplt.show()")
    for index in range(3):  # sorted after the probes: graded later, by the same worker
        students[f"zz-bystander-{index}"] = answered()
    for student, notebook in students.items():
        (submissions / student).mkdir(parents=True)
        (submissions / student / "recurrence.ipynb").write_text(json.dumps(notebook))
    os.environ["JUPYTERHUB_API_TOKEN"] = SECRET
    try:
        results = {r.student: r for r in grade_class(ASSIGNMENT, submissions, out, course=COURSE, workers=1,
                                                     progress=False, limits=LIMITS)}
    finally:
        del os.environ["JUPYTERHUB_API_TOKEN"]
        listener.close()
    return results, tmp


def found(result) -> str:
    reason = result.cells[0].reason
    assert "FOUND" in reason, reason
    return reason.split("FOUND", 1)[1].split("\n")[0]


def test_bystanders_keep_full_marks(batch):
    results, _ = batch
    for index in range(3):
        assert results[f"zz-bystander-{index}"].score == FULL, results[f"zz-bystander-{index}"]


def test_a_student_may_plot_where_the_assignment_does_not(batch):
    results, _ = batch
    assert results["plots"].score == FULL and not results["plots"].cell_errors, results["plots"]


def test_only_its_own_channel_is_inherited(batch):
    results, _ = batch
    assert found(results["probe-descriptors"]) == " ['pipe']"  # the result pipe; no socket, no grader


def test_it_sees_and_signals_only_its_own_processes_and_leaves_none(batch):
    results, _ = batch
    seen = found(results["probe-processes"])
    assert seen.startswith(" [1, 2, 'proc:']"), seen  # PID 1 of its namespace and itself; /proc hidden
    left = subprocess.run(["pgrep", "-f", f"sleep {MARKER}"], capture_output=True, text=True)
    assert left.stdout == "", "a submission's daemon outlived the batch"


def test_no_course_file_result_or_home_is_reachable(batch):
    results, tmp = batch
    assert found(results["probe-files"]) == " []"
    assert not list(tmp.rglob("owned")) and not (SOLUTIONS / ASSIGNMENT / "owned").exists()


def test_environment_is_clean_and_no_secret_reaches_feedback(batch):
    results, tmp = batch
    assert found(results["probe-environment"]) == " []"
    for page in (tmp / "graded" / "results").glob("*.json"):
        assert SECRET not in page.read_text()


def test_no_network(batch):
    results, _ = batch
    assert found(results["probe-network"]) == " []"


def test_tmp_and_shm_are_private_and_vanish(batch):
    results, _ = batch
    assert found(results["probe-tmp-a-writes"]) == " ['wrote']"
    assert found(results["probe-tmp-b-reads"]) == " []"
    assert not Path("/tmp/left-by-a-student").exists() and not Path("/dev/shm/left-by-a-student").exists()


def test_disk_is_limited(batch):
    results, _ = batch
    assert found(results["probe-disk"]) == " []"


def test_forged_and_flooding_messages_cost_only_their_sender(batch):
    results, _ = batch
    for student in [*FORGED, "floods-messages", "claims-a-huge-message"]:
        result = results[student]
        assert result.score == 0 and not result.final, student
        assert "sent back" in result.cells[0].reason, (student, result.cells[0].reason)
        assert any("suspected tampering" in note for note in result.notes), student


def test_a_student_exception_is_quoted_by_its_first_line_only(batch):
    results, _ = batch
    reason = results["long-exception"].cells[0].reason
    quoted = reason.split("\nPartial credit:")[0]   # the share is the grader's own line, after the quote
    assert "ValueError" in quoted and "the rest" not in quoted and len(quoted) < 500, reason


# -- the grader's own failures and other machines ----------------------------------------

def small_class(folder: Path) -> Path:
    for student, notebook in (("reference", answered()), ("blank", RELEASE)):
        (folder / student).mkdir(parents=True)
        (folder / student / "recurrence.ipynb").write_text(json.dumps(notebook))
    return folder


def grade_command(submissions: Path, out: Path, *extra: str, env=None, user=()) -> subprocess.CompletedProcess:
    return subprocess.run([*user, sys.executable, "-m", "rnn_by_hand", "grade", ASSIGNMENT, str(submissions),
                           "--out", str(out), "--quiet", "--workers", "1", "--no-gradebook", *extra],
                          capture_output=True, text=True, cwd=REPO, env=env)


def test_without_a_sandbox_it_refuses_in_one_line_unless_told(tmp_path):
    submissions = small_class(tmp_path / "in")
    env = dict(os.environ, AUTOGRADER_BWRAP="/nonexistent/bwrap")
    refused = grade_command(submissions, tmp_path / "out", env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and "bubblewrap" in refused.stderr, refused.stderr
    told = grade_command(submissions, tmp_path / "out", "--unsandboxed-trusting-every-student", env=env)
    assert told.returncode == 0, told.stderr
    assert "isolation: none" in told.stdout
    assert "without a sandbox" in (tmp_path / "out" / "feedback" / "reference.html").read_text()


FAULTY_BWRAP = """#!{python}
# bubblewrap that hands the worker its setup and cases, then dies at the first job: the grader's failure.
import os, struct, subprocess, sys
if "--version" in sys.argv or os.isatty(0) or not sys.stdin.buffer.peek(1)[:1]:
    os.execvp("bwrap", ["bwrap", *sys.argv[1:]])
worker = subprocess.Popen(["bwrap", *sys.argv[1:]], stdin=subprocess.PIPE)
for _ in range(2):  # the setup frame, then the cases frame
    header = sys.stdin.buffer.read(5)
    worker.stdin.write(header + sys.stdin.buffer.read(struct.unpack("<cI", header)[1]))
    worker.stdin.flush()
sys.stdin.buffer.read(5)
worker.kill()
"""


def test_a_grader_failure_is_no_students_score_and_is_graded_again(tmp_path):
    submissions = small_class(tmp_path / "in")
    fake = tmp_path / "bwrap"
    fake.write_text(FAULTY_BWRAP.format(python=sys.executable))
    fake.chmod(0o755)
    failed = grade_command(submissions, tmp_path / "out", env=dict(os.environ, AUTOGRADER_BWRAP=str(fake)))
    assert failed.returncode == 1 and "grader failed" in failed.stderr, failed.stderr
    saved = json.loads((tmp_path / "out" / "results" / "reference.json").read_text())
    assert not saved["final"] and "grader error" in saved["cells"][0]["reason"]
    again = grade_command(submissions, tmp_path / "out")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "out" / "results" / "reference.json").read_text())["score"] == FULL


ROOT = os.geteuid() == 0


@pytest.mark.skipif(not ROOT or not shutil.which("unshare"), reason="hiding the checkout needs root")
def test_grades_from_a_checkout_under_a_private_folder_as_root():
    """The checkout and its .venv behind a 0700 folder, as under /root: the sandbox still imports."""
    parent = REPO.parent
    if parent == Path("/"):
        pytest.skip("the checkout sits at the root of the filesystem")
    base = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else "/var/tmp"))
    try:
        if base.is_relative_to(parent):
            pytest.skip("no scratch folder outside the checkout's parent")
        submissions, out, saved = small_class(base / "in"), base / "out", base / "saved-parent"
        saved.mkdir()
        # In a mount namespace of its own, the checkout's parent becomes a 0700 folder holding only it.
        script = (f"set -e; mount --bind {parent} {saved}; mount -t tmpfs -o mode=0700 tmpfs {parent}; "
                  f"mkdir {REPO}; mount --bind {saved}/{REPO.name} {REPO}; "
                  f"test \"$(stat -c %a {parent})\" = 700; "
                  f"{sys.executable} -m rnn_by_hand grade {ASSIGNMENT} {submissions} --course {REPO} --out {out} --quiet --no-gradebook "
                  "--workers 1")
        graded = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                capture_output=True, text=True, cwd="/")
        assert graded.returncode == 0, graded.stderr
        scores = {p.stem: json.loads(p.read_text())["score"] for p in (out / "results").glob("*.json")}
        assert scores == {"reference": FULL, "blank": 0.0}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def readable_by_nobody(path: Path) -> bool:
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r",
                            str(path)], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not ROOT or not shutil.which("setpriv"), reason="switching to another user needs root")
def test_an_unprivileged_grader_still_isolates():
    """The grader as an ordinary user (nobody): submissions still cannot read what that user can."""
    if not readable_by_nobody(Path(sys.executable)) or not readable_by_nobody(SOLUTIONS / ASSIGNMENT):
        pytest.skip("this checkout is not readable by another user, so it cannot be run as one")
    base = Path(tempfile.mkdtemp())
    try:
        submissions = small_class(base / "in")
        thief = at_end(RELEASE, reporting(f"""
            try:
                found.append(open({str(SOLUTIONS / ASSIGNMENT / "recurrence.ipynb")!r}).read(10))
            except OSError:
                pass
        """))
        (submissions / "thief").mkdir()
        (submissions / "thief" / "recurrence.ipynb").write_text(json.dumps(thief))
        subprocess.run(["chmod", "-R", "a+rwX", str(base)], check=True)
        graded = grade_command(submissions, base / "out",
                               user=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
                               env=dict(os.environ, HOME=str(base)))
        assert graded.returncode == 0, graded.stderr
        results = {p.stem: json.loads(p.read_text()) for p in (base / "out" / "results").glob("*.json")}
        assert results["reference"]["score"] == FULL and results["blank"]["score"] == 0
        assert "FOUND []" in results["thief"]["cells"][0]["reason"], results["thief"]
        assert results["reference"]["isolation"][0].startswith("bubblewrap")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def descendants(pid: int) -> dict[int, str]:
    """pid -> start time of every process below `pid` (start times tell a reused pid apart)."""
    parents, starts = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)], starts[int(entry.name)] = int(fields[1]), fields[19]
    found, frontier = {}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found[child] = starts[child]
                frontier.append(child)
    return found


def alive(processes: dict[int, str]) -> list[int]:
    left = []
    for pid, start in processes.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == start and fields[0] != "Z":
            left.append(pid)
    return left


def test_killing_the_grader_ends_its_sandboxes(tmp_path):
    import signal
    import time
    submissions = tmp_path / "in"
    (submissions / "endless").mkdir(parents=True)
    (submissions / "endless" / "recurrence.ipynb").write_text(
        json.dumps(at_end(answered(), "import time\nwhile True:\n    time.sleep(1)")))
    grader = subprocess.Popen([sys.executable, "-m", "rnn_by_hand", "grade", ASSIGNMENT, str(submissions),
                               "--out", str(tmp_path / "out"), "--quiet", "--workers", "1", "--no-gradebook"],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, below = time.monotonic() + 120, {}
        while time.monotonic() < deadline and len(below) < 5:  # bwrap, its init, worker, A, B, C
            time.sleep(1)
            below = descendants(grader.pid)
        assert len(below) >= 5, "the submission never started"
        grader.kill()
        grader.wait()
        deadline = time.monotonic() + 20
        while alive(below) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(below), "processes of the sandbox outlived the grader"
    finally:
        if grader.poll() is None:
            grader.send_signal(signal.SIGKILL)
