"""The worker: runs inside the sandbox, imports torch once, runs one submission at a time.

    grader ──stdin/stdout──> worker (bubblewrap sandbox: read-only Python, no course
       ^                       files, no network, clean environment, own namespaces)
       │ frames                  │ fork per submission
       │                         v
       │                       A: new user, PID, mount, IPC and UTS namespaces
       │                         │ fork
       │                         v
       │                       B: PID 1 there: private tmpfs for the folder, /tmp and
       │                          /dev/shm (one size limit), /proc hidden, every
       │                          capability dropped; reaps; dies with A
       │                         │ fork
       │                         v
       └── relayed unread ──── C: the submission: limits, cells one by one, each with
                                  its own time limit, then the student part of each check

The worker never unpickles anything a submission sends: it cuts C's pipe into
frames, enforces the size and count caps, and relays each frame to the grader,
which validates it (rnn_by_hand.grading.protocol). When B ends, the kernel ends
every process left in its PID namespace, and its tmpfs goes with it; the worker
is not dumpable, so nothing in a submission's namespace can read its memory.
"""
from __future__ import annotations

import ctypes
import io
import os
import random
import resource
import select
import signal
import struct
import sys
import time

from rnn_by_hand.grading import protocol

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_REC, MNT_DETACH = 0x1000, 0x4000, 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
ROOT = "/sandbox"  # the submission's private tmpfs; its folder is ROOT/work
STATUS = struct.Struct("<ci")  # b"P" + B's pid, or b"S" + C's wait status

libc = ctypes.CDLL(None, use_errno=True)


class TimeLimit(BaseException):
    """Raised in the submission when one cell or one check has used its time."""


def fail(message: str) -> None:
    """A worker that cannot work says why, once, and ends (the grader's failure, not a student's)."""
    out = sys.__stdout__.buffer
    out.write(protocol.frame(protocol.FAILED, protocol.json_payload({"error": message[:2000]})))
    out.flush()
    os._exit(70)


def ok_or_raise(result: int, what: str) -> None:
    if result != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


# -- start-up -----------------------------------------------------------------------

def read_frame(stream, kinds: bytes) -> tuple[bytes, bytes]:
    header = stream.read(protocol.HEADER.size)
    if len(header) < protocol.HEADER.size:
        return protocol.QUIT, b""
    kind, size = protocol.HEADER.unpack(header)
    if kind not in [kinds[i:i + 1] for i in range(len(kinds))]:
        fail(f"the grader sent a frame of unknown kind {kind!r}")
    return kind, stream.read(size)


def trusted_load(payload: bytes):
    """The grader's own bytes (cases made by the checks): full unpickling is safe here."""
    import torch
    return torch.load(io.BytesIO(payload), weights_only=False)


def prepare_runtime(preload: list[str]) -> object:
    """Import what every submission needs while the worker may still read it, once, and the
    modules `preload` names (the assignment's heavy first imports, such as torch._dynamo)."""
    import importlib

    import torch
    from rnn_by_hand.checking.registry import discover
    discover()  # every chapter's checks
    if "matplotlib.pyplot" in preload:
        import matplotlib
        matplotlib.use("Agg")  # before pyplot: no GUI backend is ever tried
    for module in preload:
        importlib.import_module(module)
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    torch.set_num_threads(1)
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "NoColor"
    config.InteractiveShell.xmode = "Plain"
    class GradingShell(InteractiveShell):
        def enable_gui(self, gui=None):
            """No event loop to hook into: `%matplotlib inline` only selects the backend."""

    shell = GradingShell.instance(config=config)
    if "matplotlib.pyplot" in preload:
        shell.run_line_magic("matplotlib", "inline")  # as a kernel would; elsewhere a student's own
    return shell


def main() -> None:
    stdin, stdout = sys.__stdin__.buffer, sys.__stdout__.buffer
    kind, payload = read_frame(stdin, protocol.SETUP)
    if kind != protocol.SETUP:
        return
    try:
        setup = trusted_load(payload)
        shell = prepare_runtime(setup["preload"])
    except BaseException as error:  # noqa: BLE001 -- a worker that cannot import says why
        fail(f"the sandbox's Python could not load the grader ({type(error).__name__}: {error})")
    # Nothing in a submission's namespaces may read this process's memory or descriptors.
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # library chatter must not corrupt the channel
    if setup["namespaces"]:
        problem = probe_namespaces()
        if problem:
            fail(f"the sandbox cannot give each submission its own namespaces ({problem})")
    # The cases come last: the grader computes them while this worker starts.
    kind, payload = read_frame(stdin, protocol.CASES)
    if kind != protocol.CASES:
        return
    setup["cases"] = trusted_load(payload)
    stdout.write(protocol.frame(protocol.READY, protocol.json_payload({"pid": os.getpid()})))
    stdout.flush()
    while True:
        kind, payload = read_frame(stdin, protocol.JOB + protocol.QUIT)
        if kind == protocol.QUIT:
            return
        job = trusted_load(payload)
        exit_text, violation, setup_error, seconds = run_job(job, setup, shell, stdout)
        stdout.write(protocol.frame(protocol.END, protocol.json_payload(
            {"key": job["key"], "exit": exit_text, "violation": violation, "setup_error": setup_error,
             "seconds": seconds})))
        stdout.flush()


def probe_namespaces() -> str:
    """'' when a child can get its own user, PID and mount namespaces here, else why not."""
    pid = os.fork()
    if pid == 0:
        try:
            enter_namespaces()
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return "" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else \
        "unshare of user, PID and mount namespaces was refused"


# -- one submission -------------------------------------------------------------------

def run_job(job: dict, setup: dict, shell, out) -> tuple[str, str, str, float]:
    """Fork the submission's processes, relay what it sends, end it at its deadline."""
    start = time.monotonic()
    deadline = start + job["seconds"]
    result_read, result_write = os.pipe()
    status_read, status_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(result_read)
        os.close(status_read)
        with harness_failures(status_write):  # never return into the worker's loop
            outer_child(job, setup, shell, result_write, status_write)
        os._exit(0)
    os.close(result_write)
    os.close(status_write)
    exit_text, violation, setup_error = relay(result_read, status_read, pid, deadline, out, job)
    os.close(result_read)
    os.close(status_read)
    return exit_text, violation, setup_error, round(time.monotonic() - start, 3)


def relay(result_read: int, status_read: int, pid: int, deadline: float, out,
          job: dict) -> tuple[str, str, str]:
    """Copy C's frames to the grader; stop a submission that floods or outlives its deadline.

    Returns how the submission ended, how it broke the channel's rules (if it did),
    and why its sandbox could not be prepared (if it could not: our failure).
    """
    reader = protocol.FrameReader(protocol.MESSAGE)
    open_fds, statuses, count, size, reason, violation = {result_read, status_read}, b"", 0, 0, "", ""
    inner_pid, group = None, False
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reason = reason or "stopped at the time limit for the whole notebook"
            kill(inner_pid or pid, group)
            deadline = float("inf")
            continue
        ready, _, _ = select.select(list(open_fds), [], [], None if remaining == float("inf") else remaining)
        for fd in ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                open_fds.discard(fd)
            elif fd == status_read:
                statuses += chunk
                for kind, value in unpack_statuses(statuses)[0]:
                    if kind in (b"P", b"G"):  # B, PID 1 of the namespaces; or C, without them
                        inner_pid, group = value, kind == b"G"
            elif not reason:
                try:
                    frames = reader.feed(chunk)
                except protocol.ProtocolError as error:
                    violation, frames = f"sent back {error}", []
                for kind, payload in frames:
                    count, size = count + 1, size + len(payload)
                    if count > job["max_messages"] or size > protocol.MAX_JOB_BYTES:
                        violation = "sent back more messages or data than a notebook's results need"
                        break
                    out.write(protocol.frame(kind, payload))
                out.flush()
                if violation:
                    reason = "stopped: it broke the rules of the result channel"
                    kill(inner_pid or pid, group)
    _, status = os.waitpid(pid, 0)  # A returns once B, and with it the whole namespace, is gone
    records, setup_error = unpack_statuses(statuses)
    inner = [s for k, s in records if k == b"S"]
    return reason or describe(inner[0] if inner else status), violation, setup_error


def unpack_statuses(data: bytes) -> tuple[list[tuple[bytes, int]], str]:
    """The fixed-size records of the status pipe, and the text after a b"X" (B could not start)."""
    records, offset = [], 0
    while offset + STATUS.size <= len(data):
        kind, value = STATUS.unpack_from(data, offset)
        offset += STATUS.size
        if kind == b"X":
            return records, data[offset:].decode(errors="replace") or "unknown error"
        records.append((kind, value))
    return records, ""


def kill(pid: int, group: bool) -> None:
    """End a submission: B takes its whole PID namespace along; without one, C's process group."""
    for target in ((os.killpg, os.kill) if group else (os.kill,)):
        try:
            target(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        if number == signal.SIGXCPU:
            return f"stopped at the CPU time limit ({name})"
        return f"killed by signal {number} ({name})"
    code = os.WEXITSTATUS(status)
    return "ok" if code == 0 else f"exit code {code}"


def enter_namespaces() -> None:
    """Give this process new user, PID, mount, IPC and UTS namespaces (its next child is PID 1)."""
    # The worker is not dumpable, and a fork inherits that; but a process that is not
    # dumpable cannot write its own uid_map when unprivileged. This one holds nothing.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    uid, gid = os.getuid(), os.getgid()
    ok_or_raise(libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS),
          "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def outer_child(job: dict, setup: dict, shell, result_write: int, status_write: int) -> None:
    """A: enter the namespaces, start B as their PID 1, wait for it (see the module docstring)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):  # the grader's pipes: nothing below the worker writes to them
        os.dup2(null, fd)
    if not setup["namespaces"]:
        inner_child(job, setup, shell, result_write, status_write)
        return
    enter_namespaces()
    pid = os.fork()
    if pid == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # A killed: B and all below it end
        with harness_failures(status_write):
            private_filesystem(setup["limits"]["disk_bytes"], setup["keep"], setup["hide"])
            drop_capabilities()
            inner_child(job, setup, shell, result_write, status_write)
        os._exit(0)
    os.write(status_write, STATUS.pack(b"P", pid))
    os.waitpid(pid, 0)


class harness_failures:
    """Around our own code in A, B and C: a failure is reported as the sandbox's, then the process ends.

    It goes to the status pipe, which student code never holds, as b"X" and a line of text;
    the grader marks the submission "not graded: grader error" instead of scoring it.
    """

    def __init__(self, status_write: int):
        self.status_write = status_write

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _):
        if error is not None:
            try:
                text = f"{kind.__name__}: {error}"[:200].encode(errors="replace")
                os.write(self.status_write, STATUS.pack(b"X", 0) + text)
            finally:
                os._exit(70)
        return False


def private_filesystem(disk_bytes: int, keep: list[str], hide: list[str]) -> None:
    """One size-limited tmpfs for the submission's folder, /tmp and /dev/shm; /proc hidden.

    `keep`: read-only folders below /tmp (a Python installed there) that the private /tmp
    shows again; `hide`: the worker's own writable folders, covered up.
    """
    ok_or_raise(libc.mount(b"none", b"/", None, MS_REC | (1 << 18), None), "make mounts private")
    options = f"size={disk_bytes},mode=0755".encode()
    ok_or_raise(libc.mount(b"tmpfs", ROOT.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options), "mount tmpfs")
    staged = []
    for index, path in enumerate(keep):  # a bind mount keeps the original's read-only flag
        stage = f"{ROOT}/keep-{index}"
        os.mkdir(stage)
        ok_or_raise(libc.mount(path.encode(), stage.encode(), None, MS_BIND | MS_REC, None), f"keep {path}")
        staged.append((stage, path))
    for path in hide:
        ok_or_raise(libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                               b"size=4k,mode=0555"), f"hide {path}")
    for name, target in (("tmp", "/tmp"), ("shm", "/dev/shm")):
        os.mkdir(f"{ROOT}/{name}", 0o1777)
        os.chmod(f"{ROOT}/{name}", 0o1777)
        if os.path.isdir(target):
            ok_or_raise(libc.mount(f"{ROOT}/{name}".encode(), target.encode(), None, MS_BIND, None), f"bind {target}")
    for stage, path in staged:
        os.makedirs(path, exist_ok=True)
        ok_or_raise(libc.mount(stage.encode(), path.encode(), None, MS_BIND | MS_REC, None), f"show {path}")
        ok_or_raise(libc.umount2(stage.encode(), MNT_DETACH), f"unstage {path}")
        os.rmdir(stage)
    os.mkdir(f"{ROOT}/work", 0o755)
    # The worker's /proc shows the worker: cover it (a new procfs is not always allowed inside bwrap).
    ok_or_raise(libc.mount(b"tmpfs", b"/proc", b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"size=4k,mode=0555"),
                "hide /proc")
    # The sandbox's own /dev is shared by the worker's submissions: read-only for each of them
    # (writing to /dev/null stays possible; creating files there does not).
    ok_or_raise(libc.mount(b"/dev", b"/dev", None, MS_BIND | MS_REC, None), "bind /dev")
    # (bwrap mounts it nosuid, nodev, noexec; a remount must keep those; its nodes are mounts of their own)
    ok_or_raise(libc.mount(b"none", b"/dev", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
                           | MS_NOEXEC, None), "read-only /dev")


def drop_capabilities() -> None:
    """No capability left, none to regain: the mounts above can no longer be undone."""
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    ok_or_raise(libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "drop capabilities")
    ok_or_raise(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")


def inner_child(job: dict, setup: dict, shell, result_write: int, status_write: int) -> None:
    """B: start C, reap everything, report C's wait status."""
    import shutil
    import tempfile
    folder = f"{ROOT}/work" if setup["namespaces"] else tempfile.mkdtemp(prefix="submission-")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            submission(job, setup, shell, result_write, folder, status_write)
        except BaseException:  # noqa: BLE001 -- what the student's code did: its own exit
            code = 73
        os._exit(code)
    os.close(result_write)
    if not setup["namespaces"]:
        os.write(status_write, STATUS.pack(b"G", pid))
    status = 0
    while True:
        try:
            done, wait_status = os.wait()
        except ChildProcessError:
            break
        if done == pid:
            status = wait_status
            os.write(status_write, STATUS.pack(b"S", status))
            break
    if not setup["namespaces"]:
        shutil.rmtree(folder, ignore_errors=True)


# -- inside the submission (C) --------------------------------------------------------

def submission(job: dict, setup: dict, shell, result_write: int, folder: str, status_write: int) -> None:
    """Run the notebook's cells and the student part of each check; send what they return."""
    limits = setup["limits"]
    with harness_failures(status_write):  # until student code runs, a failure is ours
        os.setsid()
        with open(os.path.join(folder, job["notebook_name"]), "wb") as handle:
            handle.write(job["notebook"])
        os.chdir(folder)
        os.environ.update(HOME=folder, TMPDIR="/tmp")
        channel = hide_channel(result_write)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, min(channel, status_write))
        os.closerange(min(channel, status_write) + 1, max(channel, status_write))
        os.closerange(max(channel, status_write) + 1, 65536)
        sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
        set_limits(limits, job["seconds"])
        send = sender(channel)  # bound now: student code that rebinds names cannot change it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the file limit, writes fail instead
    os.close(status_write)
    errors = run_cells(shell, job["code"], limits["cell_seconds"])
    send("cells", errors=errors)
    run_checks(shell.user_ns, job["checks"], setup["cases"], limits["cell_seconds"], send)
    send("done")


def hide_channel(fd: int) -> int:
    """Move the result pipe to a random descriptor number, so that it is not simply fd 3."""
    target = random.SystemRandom().randrange(100, 1000)
    os.dup2(fd, target)
    os.close(fd)
    return target


def set_limits(limits: dict, seconds: float) -> None:
    cpu = int(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["disk_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def sender(fd: int):
    write, frame, dumps = os.write, protocol.frame, protocol.child_message

    def send(kind: str, **fields) -> None:
        view = memoryview(frame(protocol.MESSAGE, dumps(kind, **fields)))
        while view:
            view = view[write(fd, view):]
    return send


class Timer:
    """Both a CPU-time and a wall-clock limit for one cell or one check.

    CPU time is what a slow answer uses whatever the machine's load; the wall
    clock (three times as long) catches code that sleeps or waits.
    """

    def __init__(self, cpu_seconds: float):
        self.cpu_seconds = cpu_seconds

    def _expired(self, *_):
        raise TimeLimit(f"ran past its time limit ({self.cpu_seconds:g} s of CPU time)")

    def __enter__(self):
        signal.signal(signal.SIGPROF, self._expired)
        signal.signal(signal.SIGALRM, self._expired)
        signal.setitimer(signal.ITIMER_PROF, self.cpu_seconds)
        signal.setitimer(signal.ITIMER_REAL, 3 * self.cpu_seconds)
        return self

    def __exit__(self, *_):
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return False


def error_line(label: str, error: BaseException) -> str:
    from rnn_by_hand.checking.student import first_line
    return f"{label}: {type(error).__name__}: {first_line(error)}"


def run_cells(shell, code: list[tuple[str, str]], cell_seconds: float) -> list[str]:
    """Each cell as Run All would run it, with its own time limit; keep going after errors."""
    errors = []
    for label, source in code:
        try:
            with Timer(cell_seconds):
                result = shell.run_cell(source, store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except BaseException as raised:  # noqa: BLE001 -- a limit that struck outside the cell
            error = raised
        if error is not None:
            errors.append(error_line(label, error))
    return errors


def run_case(check, student, case, encode):
    """One case's encoded outputs; if the answer raised on it, its message (credit.CASE_ERROR),
    so that the other cases still count (partial credit). A time limit or anything else
    that is not the answer's own error ends the whole check, as before."""
    from rnn_by_hand import CheckFailure
    from rnn_by_hand.checking.credit import CASE_ERROR
    try:
        return encode(check.run_student_guarded(student, case))
    except CheckFailure as failure:
        return encode({CASE_ERROR: str(failure)[:protocol.MAX_TEXT]})


def run_checks(namespace: dict, checks: list[tuple[str, str]], cases: dict, seconds: float, send) -> None:
    from rnn_by_hand import CHECKS, CheckFailure
    from rnn_by_hand.checking.student import student_error
    from rnn_by_hand.wire import encode
    for name, symbol in checks:
        check_ = CHECKS[name]
        student = namespace.get(symbol)
        if student is None:
            send("check", check=name, error=f"{symbol} is not defined: the cell that defines it "
                                             "is missing or raised an error")
            continue
        try:
            with Timer(seconds):
                check_.validate_student(student)
                outputs = [run_case(check_, student, case, encode) for case in cases[name]]
            send("check", check=name, outputs=outputs)
        except CheckFailure as failure:
            send("check", check=name, error=str(failure))
        except BaseException as error:  # noqa: BLE001 -- the student's code failed
            send("check", check=name, error=str(student_error(symbol, error)))
