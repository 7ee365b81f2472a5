"""Run a submission's code and the student parts of the checks in a limited child.

    grader (references, comparison, scores)
       |  job: code cells + cases (bytes)            ^  results (bytes, tensors only)
       v                                             |
    fork server (imported torch once, runs no student code)
       |  os.fork() per submission
       v
    child: own session, temp dir holding only the submission, rlimits (CPU,
           memory, file size, processes), and when the grader is root: no
           network, the course's private paths hidden, uid nobody. Executes
           the notebook's code, then run_student for each case, and writes one
           framed message per check to a pipe.

The child never sees a reference output, and nothing it sends back is unpickled
beyond tensors and plain containers (torch.load with weights_only=True).
"""
from __future__ import annotations

import ctypes
import io
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import torch

NOBODY = 65534
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_REC, MS_PRIVATE, MS_BIND, MS_RDONLY = 0x4000, 1 << 18, 0x1000, 0x1
MAX_MESSAGE = 64 << 20


@dataclass
class Limits:
    wall_seconds: float = 120.0
    cpu_seconds: int = 120
    memory_bytes: int = 4 << 30
    file_bytes: int = 64 << 20
    processes: int = 64


@dataclass
class Job:
    key: str                      # the submission's id
    workdir: str                  # a fresh directory holding only the submission
    code: list[tuple[str, str]]   # (label, source) cells to execute, in order
    checks: list[tuple[str, str]]  # (check name, student symbol)
    cases: bytes                  # torch.save({check name: [Case, ...]})
    hide: list[str] = field(default_factory=list)  # paths to make unreadable in the child


@dataclass
class Outcome:
    key: str
    messages: list[dict]          # one per check that finished: {"check", "outputs"|"error"}
    cell_errors: list[str]
    exit: str                     # "ok", "timeout", "exit code 3", "killed by signal 9", ...
    seconds: float
    isolation: list[str]


# -- values that cross the process boundary ---------------------------------------

class Opaque:
    """Stands for a value that was not a tensor or plain data in the child."""

    def __init__(self, description: str):
        self.description = description

    def __repr__(self):
        return self.description


def to_safe(value, depth: int = 0):
    """Tensors, numbers, strings and containers of them; anything else described in words."""
    from autograder.compare import type_name
    if depth > 6:
        return {"__opaque__": "a deeply nested value"}
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        tensor = tensor.to_dense() if tensor.layout != torch.strided else tensor
        return tensor.clone().as_subclass(torch.Tensor)
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple):
        return type(value)(to_safe(v, depth + 1) for v in value)
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: to_safe(v, depth + 1) for k, v in value.items()}
    return {"__opaque__": type_name(value)}


def from_safe(value):
    if isinstance(value, dict):
        if set(value) == {"__opaque__"}:
            return Opaque(str(value["__opaque__"]))
        return {k: from_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(from_safe(v) for v in value)
    return value


def dumps(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def loads(data: bytes, trusted: bool = False):
    """Tensors and plain containers only, unless the bytes are the grader's own (the cases)."""
    return torch.load(io.BytesIO(data), weights_only=not trusted)


# -- the child --------------------------------------------------------------------

def isolate(job: Job, limits: Limits) -> list[str]:
    """Apply what this OS and our privileges allow; say what was applied."""
    applied = ["own process and session", "temporary directory", "CPU, memory, file and process limits"]
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) == 0:
            applied.append("no network")
        if libc.unshare(CLONE_NEWNS) == 0 and libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            hidden = 0
            for path in job.hide:
                target = path.encode()
                if os.path.isdir(path):
                    ok = libc.mount(b"tmpfs", target, b"tmpfs", MS_RDONLY, b"size=16k,mode=000") == 0
                elif os.path.exists(path):
                    ok = libc.mount(b"/dev/null", target, None, MS_BIND, None) == 0
                else:
                    ok = True
                hidden += ok
            applied.append(f"{hidden} private course paths hidden")
        os.chown(job.workdir, NOBODY, NOBODY)
        for name in os.listdir(job.workdir):
            os.chown(os.path.join(job.workdir, name), NOBODY, NOBODY)
    os.chdir(job.workdir)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # SIGXCPU at the soft limit names the reason; the hard limit, 2 s on, kills a child that ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 2))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        applied.append("unprivileged user nobody")
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    return applied


def send(fd: int, message: dict) -> None:
    data = dumps(message)
    os.write(fd, struct.pack("<Q", len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fake_ipython():
    """Enough of get_ipython() for magics such as %matplotlib inline to do nothing."""
    class Shell:
        def run_line_magic(self, *args, **kwargs):
            return None
        run_cell_magic = system = getoutput = run_line_magic
    return Shell()


def execute_cells(code: list[tuple[str, str]]) -> tuple[dict, list[str]]:
    """Run the notebook's code cells in one namespace, as Run All would; keep going on errors."""
    from IPython.core.inputtransformer2 import TransformerManager
    transform = TransformerManager().transform_cell
    shell = fake_ipython()
    namespace = {"__name__": "__main__", "get_ipython": lambda: shell}
    errors = []
    for label, source in code:
        try:
            exec(compile(transform(source), f"<{label}>", "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 -- SystemExit too: a notebook does not stop
            errors.append(f"{label}: {type(error).__name__}: {error}"[:500])
    return namespace, errors


def run_checks(job: Job, namespace: dict, fd: int) -> None:
    from autograder import CHECKS, CheckFailure
    from autograder.check import student_error
    cases = loads(job.cases, trusted=True)  # made by the grader, not by student code
    for check_name, symbol in job.checks:
        check = CHECKS[check_name]
        message = {"check": check_name}
        student = namespace.get(symbol)
        if student is None:
            message["error"] = (f"{symbol} is not defined: the cell that defines it is missing "
                                "or raised an error")
        else:
            try:
                check.validate_student(student)
                message["outputs"] = [to_safe(check.run_student_guarded(student, case))
                                      for case in cases[check_name]]
            except CheckFailure as failure:
                message["error"] = str(failure)
            except BaseException as error:  # noqa: BLE001
                message["error"] = str(student_error(symbol, error))
        send(fd, message)


def child(job: Job, limits: Limits, fd: int) -> None:
    os.setsid()
    log = os.open(os.path.join(job.workdir, "output.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    applied = isolate(job, limits)
    os.dup2(log, 1)
    os.dup2(log, 2)
    # Python's own stream objects may not write to fds 1 and 2 (a test runner's capture).
    sys.stdout = sys.stderr = open(log, "w", buffering=1, closefd=False)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the file limit, writes fail instead of killing
    os.environ.update(MPLBACKEND="Agg", HOME=job.workdir, OMP_NUM_THREADS="1")
    send(fd, {"isolation": applied})
    namespace, errors = execute_cells(job.code)
    send(fd, {"cell_errors": errors})
    run_checks(job, namespace, fd)
    send(fd, {"done": True})


# -- the fork server ----------------------------------------------------------------

def read_messages(fd: int, deadline: float) -> tuple[list[dict], bool]:
    """Framed messages from the child until it closes the pipe or the deadline passes."""
    buffer, messages = b"", []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return messages, True
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return messages, False
        buffer += chunk
        while len(buffer) >= 8:
            size = struct.unpack("<Q", buffer[:8])[0]
            if size > MAX_MESSAGE:
                return messages + [{"error_stream": "the notebook sent back too much data"}], False
            if len(buffer) < 8 + size:
                break
            try:
                messages.append(from_safe(loads(buffer[8:8 + size])))
            except Exception:  # noqa: BLE001 -- the child is untrusted: unreadable means nothing
                messages.append({"error_stream": "the notebook sent back something unreadable"})
            buffer = buffer[8 + size:]


def run_job(job: Job, limits: Limits) -> Outcome:
    start = time.monotonic()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        code = 0
        try:
            child(job, limits, write_end)
        except BaseException:  # noqa: BLE001 -- our own failure: say so, never blame the student
            code = 70
            try:
                send(write_end, {"grader_error": traceback.format_exc()[-3000:]})
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)
    os.close(write_end)
    messages, timed_out = read_messages(read_end, start + limits.wall_seconds)
    os.close(read_end)
    exit_text = stop(pid, timed_out, deadline=start + limits.wall_seconds + 5)
    isolation = next((m["isolation"] for m in messages if "isolation" in m), [])
    cell_errors = next((m["cell_errors"] for m in messages if "cell_errors" in m), [])
    checks = [m for m in messages if "check" in m]
    grader_error = next((m["grader_error"] for m in messages if "grader_error" in m), "")
    if grader_error:
        exit_text = "grader error: " + grader_error.strip().splitlines()[-1]
    if not any("done" in m for m in messages) and exit_text == "ok" and not grader_error:
        exit_text = "ended early"
    return Outcome(job.key, checks, cell_errors, "timeout" if timed_out else exit_text,
                   time.monotonic() - start, isolation)


def stop(pid: int, kill: bool, deadline: float) -> str:
    """Reap the child (and its process group); the reason it ended, in words."""
    if kill:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except ProcessLookupError:
                pass
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.01)
    try:
        os.killpg(pid, signal.SIGKILL)  # anything the student left running
    except (ProcessLookupError, PermissionError):
        pass
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        if number == signal.SIGXCPU:
            return f"stopped at the CPU time limit ({name})"
        return f"killed by signal {number} ({name})"
    code = os.WEXITSTATUS(status)
    return "ok" if code == 0 else f"exit code {code}"


# Standard-library modules not to preload: GUIs, side effects, tests, other platforms.
NOT_PRELOADED = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test",
                 "lib2to3", "pydoc_data", "ensurepip", "venv", "msilib", "winreg", "winsound",
                 "nt", "msvcrt", "curses", "readline", "dbm", "sqlite3", "ossaudiodev", "spwd",
                 "crypt", "nis", "tests", "__main__"}


def readable_by_everyone(path: str) -> bool:
    """Can uid nobody read files below `path` (every parent searchable, the folder readable)?"""
    current = os.path.abspath(path)
    while True:
        mode = os.stat(current).st_mode
        if not mode & 0o001:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return bool(os.stat(path).st_mode & 0o004)
        current = parent


def preload_standard_library() -> int:
    """Import the standard library now, while we may still read it.

    Where Python is installed in a folder uid nobody cannot read (pyenv under
    /root, say), a child could otherwise import nothing that is not loaded yet.
    """
    import importlib
    import pkgutil
    loaded = 0
    for name in sorted(sys.stdlib_module_names):
        if name in NOT_PRELOADED or name.startswith(("_test", "xx", "_xx")):
            continue
        try:
            module = importlib.import_module(name)
            loaded += 1
            for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
                if NOT_PRELOADED.isdisjoint(info.name.split(".")):  # others' platforms fail below
                    try:
                        importlib.import_module(info.name)
                        loaded += 1
                    except BaseException:  # noqa: BLE001 -- modules for other platforms
                        pass
        except BaseException:  # noqa: BLE001
            pass
    return loaded


def serve(connection, limits: Limits) -> None:
    """A fork server: import what the children need once, then fork one child per job."""
    import autograder.grading.registry  # noqa: F401 -- every check module, imported once
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 -- students plot; import it while readable
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: F401
    # The first torch.optim step imports torch._dynamo (about 2 s): pay it once here,
    # not in every child, and while the standard library is still readable.
    import torch._dynamo  # noqa: F401
    if os.geteuid() == 0 and not readable_by_everyone(os.path.dirname(os.__file__)):
        preload_standard_library()
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            connection.send(run_job(job, limits))
        except Exception as error:  # noqa: BLE001 -- the grader records it as our failure
            connection.send(Outcome(job.key, [], [], f"grader error: {error}", 0.0, []))


class Pool:
    """`workers` fork servers; submit jobs and collect outcomes as they finish."""

    def __init__(self, workers: int, limits: Limits):
        context = get_context("fork")
        self.servers = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(target=serve, args=(theirs, limits), daemon=True)
            process.start()
            theirs.close()
            self.servers.append([process, ours, None])  # process, connection, current job key
        self.limits = limits
        self.context = context

    def run(self, jobs):
        """Yield an Outcome for each job, as workers finish them."""
        from multiprocessing.connection import wait
        pending = list(jobs)[::-1]
        busy = {}
        while pending or busy:
            for server in self.servers:
                if server[2] is None and pending:
                    job = pending.pop()
                    server[1].send(job)
                    server[2] = job.key
                    busy[id(server[1])] = server
            ready = wait([s[1] for s in busy.values()], timeout=self.limits.wall_seconds + 30)
            for connection in ready:
                server = busy.pop(id(connection))
                key, server[2] = server[2], None
                try:
                    yield connection.recv()
                except (EOFError, OSError):
                    yield Outcome(key, [], [], "grader error: a worker process died", 0.0, [])
                    self.restart(server)

    def restart(self, server):
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=serve, args=(theirs, self.limits), daemon=True)
        process.start()
        theirs.close()
        server[0], server[1], server[2] = process, ours, None

    def close(self):
        for process, connection, _ in self.servers:
            try:
                connection.send(None)
            except OSError:
                pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
