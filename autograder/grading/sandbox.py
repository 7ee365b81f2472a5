"""Where student code runs: bubblewrap sandboxes, each holding one worker.

    grader (this process: cases, references, comparison, scores, every file it writes)
       │ stdin: setup, jobs          ^ stdout: framed messages, validated here
       v                             │
    bwrap ── worker (rnn_by_hand.grading.worker) ── one submission at a time,
             each in namespaces of its own inside this sandbox

Why bubblewrap: it is the sandbox Flatpak runs every desktop application in, it
is a small, audited setuid-free program packaged by every distribution, and it
works both for root and for an ordinary user (through user namespaces), which is
every place an instructor grades. Its command line is an allow-list, so the
sandbox holds what `bwrap_arguments` names and nothing else: the Python runtime
and its installed packages read-only, a tmpfs, a fresh /dev and /proc; no
course folder, no home, no network, no variable of the grader's environment.

Torch is imported once per worker, not once per submission: each submission is
a fork of the worker, in new user, PID and mount namespaces of its own (see
worker.py), so it can neither see nor signal the worker or another submission,
and everything it started ends with it.
"""
from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rnn_by_hand.grading import protocol
from rnn_by_hand.grading.errors import GradingError
from rnn_by_hand.wire import dumps

START_SECONDS = 180  # a worker imports torch, matplotlib and IPython: seconds on a busy machine
UNSANDBOXED_FLAG = "--unsandboxed-trusting-every-student"


@dataclass
class Limits:
    cell_seconds: float = 60.0     # CPU seconds for each cell and each check (wall clock: 3x)
    total_seconds: float = 900.0   # wall clock for the whole notebook, however many cells
    memory_bytes: int = 4 << 30    # address space of the submission's process
    disk_bytes: int = 512 << 20    # its folder, /tmp and /dev/shm together
    processes: int = 64

    def seconds_for(self, cells: int, checks: int) -> float:
        """The whole notebook's deadline: each cell's and check's wall limit, at most the total."""
        return min(self.total_seconds, 3 * self.cell_seconds * (cells + checks) + 10)


@dataclass
class Job:
    key: str                       # the submission's id
    notebook_name: str
    notebook: bytes                # the repaired notebook, outputs cleared
    code: list[tuple[str, str]]    # (label, source) cells to execute, in order
    checks: list[tuple[str, str]]  # (check name, student symbol)

    def payload(self, limits: Limits) -> bytes:
        return dumps({"key": self.key, "notebook_name": self.notebook_name, "notebook": self.notebook,
                      "code": self.code, "checks": self.checks,
                      "seconds": limits.seconds_for(len(self.code), len(self.checks)),
                      "max_messages": max_messages(self)})


def max_messages(job: Job) -> int:
    return 2 + len(job.checks)  # cells, one per check, done


@dataclass
class Outcome:
    """How one job ended. What the submission sent stays undecoded (`received`) until a
    scoring process calls decode(): the grading process only counts it."""
    key: str
    received: protocol.Collected | None
    exit: str            # "ok", "exit code 3", "stopped at the time limit ...", ...
    seconds: float
    problem: str = ""    # the submission broke the channel's rules: 0 with this reason, not final
    grader_error: str = ""  # our own failure: not a student's score; graded again on resume
    ended: bool = False  # the worker reported the job's end (its exit and limits are known)
    results: dict[str, protocol.CheckRan] = field(default_factory=dict)
    cell_errors: list[str] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return not (self.problem or self.grader_error)

    def decode(self) -> Outcome:
        """Parse what the submission sent into results and cell errors (once)."""
        received, self.received = self.received, None
        if received is None:
            return self
        received.decode()
        self.results, self.cell_errors = received.results, received.cell_errors
        if self.ended:
            if self.exit == "ok" and not received.done and not received.problem:
                self.exit = "ended early"
            self.problem = received.problem or self.problem
        return self


# -- which sandbox ----------------------------------------------------------------

@dataclass
class Isolation:
    name: str                 # "bubblewrap" or "none"
    description: str          # what applied, in words, for reports and feedback pages
    namespaces: bool          # each submission gets namespaces of its own
    prefix: list[str] = field(default_factory=list)  # the bwrap command line before python

    def command(self, python: list[str]) -> list[str]:
        return self.prefix + python


def python_paths() -> list[str]:
    """The folders the sandbox needs to run this Python with the grader's packages."""
    import rnn_by_hand
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    prefixes = tuple(os.path.realpath(p) for p in paths)
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if real and os.path.exists(real) and (real.startswith(prefixes) or real.endswith("-packages")):
            paths.add(real)
    # An editable install maps the package to the checkout's autograder/: bind that, never the checkout.
    paths.add(os.path.dirname(os.path.realpath(rnn_by_hand.__file__)))
    kept = []
    for path in sorted(paths, key=len):
        if not path.startswith("/usr/") and not any(path == k or path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
       "/etc/fonts")
WORKER_SCRATCH = "/worker"  # the worker's own writable folder; hidden from every submission
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/sandbox/work", "USER": "student",
               "LOGNAME": "student", "LANG": "C.UTF-8", "TERM": "dumb", "MPLBACKEND": "Agg",
               "MPLCONFIGDIR": f"{WORKER_SCRATCH}/matplotlib", "IPYTHONDIR": f"{WORKER_SCRATCH}/ipython",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def bwrap_arguments(bwrap: str) -> list[str]:
    """The allow-list: what a sandbox holds (see the module docstring)."""
    args = [bwrap, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for name, value in ENVIRONMENT.items():
        args += ["--setenv", name, value]
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC:
        args += ["--ro-bind-try", path, path]
    # /tmp first: a Python installed below /tmp (a checkout there) is bound on top of it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", WORKER_SCRATCH,
             "--dir", "/sandbox"]
    for path in python_paths():
        args += ["--ro-bind", path, path]
    # The sandbox's root is shared by its submissions: nobody writes there.
    return args + ["--chdir", "/", "--remount-ro", "/", "--"]


def kept_under_tmp() -> list[str]:
    """The Python folders below /tmp, which each submission's private /tmp must show again."""
    return [path for path in python_paths() if path.startswith("/tmp/")]


def find_isolation(unsandboxed: bool = False) -> Isolation:
    """Bubblewrap where it works here; else a refusal that says what to do, unless told otherwise."""
    bwrap = shutil.which(os.environ.get("AUTOGRADER_BWRAP", "bwrap"))
    why = "bubblewrap (bwrap) is not installed" if not bwrap else ""
    if bwrap:
        prefix = bwrap_arguments(bwrap)
        probe = subprocess.run(prefix + [sys.executable, "-I", "-c", "pass"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if probe.returncode == 0:
            version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
            return Isolation("bubblewrap", f"{version or 'bubblewrap'}: each submission in its own user, "
                             "PID, mount, IPC and network namespaces; no network; read-only Python; "
                             "no course files; clean environment; private /tmp; time, memory, disk "
                             "and process limits", True, prefix)
        last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        why = f"bubblewrap cannot start a sandbox here ({last[:200]})"
    if unsandboxed:
        return Isolation("none", "none: the instructor chose to run student code without a sandbox "
                         f"({UNSANDBOXED_FLAG}); only time, memory and process limits applied", False)
    raise GradingError(f"{why}: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and "
                       "allow user namespaces, or pass " + UNSANDBOXED_FLAG + " to run student code "
                       "with the grader's own rights")


# -- the workers ------------------------------------------------------------------

# -I: no user site, no PYTHON* variables; the package is found as the grader's Python finds
# it (site-packages, or an editable install's finder there), inside the read-only binds.
BOOT = "from rnn_by_hand.grading.worker import main\nmain()"


class Worker:
    """One sandbox with one worker process in it, and the state of its current job."""

    def __init__(self, isolation: Isolation, setup: bytes, log_dir: Path):
        self.log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", dir=log_dir, delete=False)
        command = isolation.command([sys.executable, "-I", "-B", "-c", BOOT])
        # bwrap clears the environment itself; without it, at least none of the grader's variables
        environment = None if isolation.prefix else dict(ENVIRONMENT, HOME=tempfile.gettempdir())
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, env=environment, close_fds=True,
                                        cwd=None if isolation.prefix else tempfile.gettempdir())
        self.reader = protocol.FrameReader(protocol.READY + protocol.MESSAGE + protocol.END + protocol.FAILED)
        os.set_blocking(self.process.stdout.fileno(), False)
        self.job: Job | None = None
        self.collected: protocol.Collected | None = None
        self.deadline = 0.0
        self.started = 0.0
        self.setup = setup
        self.ready = False  # it said READY: it takes jobs
        self.start_deadline = time.monotonic() + START_SECONDS

    def send_setup(self) -> None:
        """The limits and what to import: small enough for the pipe's buffer, so the write
        never waits for the worker, which reads it once its Python has started."""
        self.process.stdin.write(protocol.frame(protocol.SETUP, self.setup))
        self.process.stdin.flush()

    def send_cases(self, cases: bytes) -> None:
        """The cases, written by a thread of their own: the write waits until the worker, its
        imports done, reads them, and the other workers should not wait for this one. The
        worker reads all of them before it says READY, so no job frame can overtake them. A
        worker that ended is not an error here: its start-up reports why it ended."""
        def write() -> None:
            try:
                self.process.stdin.write(protocol.frame(protocol.CASES, cases))
                self.process.stdin.flush()
            except (OSError, ValueError):  # it ended, or was stopped (its pipe closed)
                pass
        threading.Thread(target=write, name="send-cases", daemon=True).start()

    def descriptors(self) -> list[int]:
        """The grader's ends of this worker's pipes (a process forked later must close them,
        or the worker would never see its input end)."""
        return [self.process.stdin.fileno(), self.process.stdout.fileno(), self.log.fileno()]

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def read(self) -> list[tuple[bytes, bytes]] | None:
        """The frames that arrived; None when the worker has closed its end."""
        try:
            chunk = os.read(self.fileno(), 1 << 20)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        return self.reader.feed(chunk)

    def start(self, job: Job, limits: Limits) -> None:
        self.job, self.started = job, time.monotonic()
        self.collected = protocol.Collected({name for name, _ in job.checks}, max_messages(job))
        self.deadline = self.started + limits.seconds_for(len(job.code), len(job.checks)) + 30
        self.process.stdin.write(protocol.frame(protocol.JOB, job.payload(limits)))
        self.process.stdin.flush()

    def failure(self) -> str:
        """The last line the worker wrote to its log, for an error message."""
        self.log.flush()
        lines = Path(self.log.name).read_text(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else "no message"

    def stop(self) -> None:
        """A worker keeps nothing worth a clean exit: end it, and bwrap takes the sandbox along."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.log.close()
        os.unlink(self.log.name)


class Pool:
    """`workers` sandboxes; submit jobs and collect an Outcome for each as they finish.

    The sandboxes start at once, when the pool is made, so that their Pythons import torch
    while the grader prepares the batch; start(cases) sends them the cases, and run() gives
    each worker jobs once it says it is ready. Call close() in every case.
    """

    def __init__(self, workers: int, limits: Limits, isolation: Isolation, preload: tuple[str, ...] = ()):
        self.limits, self.isolation = limits, isolation
        self.setup = dumps({"namespaces": isolation.namespaces, "limits": asdict(limits),
                            "preload": list(preload),
                            "keep": kept_under_tmp() if isolation.prefix else [],
                            "hide": [WORKER_SCRATCH] if isolation.prefix else []})
        self.cases = b""
        self.logs = Path(tempfile.mkdtemp(prefix="grader-logs-"))
        self.workers: list[Worker] = []
        try:
            for _ in range(workers):
                self.workers.append(Worker(isolation, self.setup, self.logs))
                self.workers[-1].send_setup()
        except BaseException:
            self.close()
            raise

    def start(self, cases: dict) -> None:
        """Send every worker the cases. Each starts taking jobs once it says it is ready, so
        the first to finish its imports is not kept waiting for the others."""
        self.cases = dumps(cases)
        for worker in self.workers:
            worker.send_cases(self.cases)
            worker.start_deadline = time.monotonic() + START_SECONDS

    def descriptors(self) -> list[int]:
        return [fd for worker in self.workers for fd in worker.descriptors()]

    def wait_ready(self, worker: Worker) -> None:
        """Block until `worker` is ready (GradingError if it cannot start)."""
        selector = selectors.DefaultSelector()
        selector.register(worker, selectors.EVENT_READ)
        try:
            while not worker.ready:
                selector.select(timeout=max(0.0, worker.start_deadline - time.monotonic()))
                self.advance_start(worker)
        finally:
            selector.close()

    @staticmethod
    def advance_start(worker: Worker) -> None:
        """Read what a starting worker sent: it becomes ready, or a GradingError says why not."""
        try:
            frames = worker.read()
        except protocol.ProtocolError as error:
            raise GradingError(f"the sandbox's worker broke the protocol at start-up ({error})") from None
        if frames is None:
            raise GradingError("the sandbox's worker ended at start-up: " + worker.failure())
        for kind, payload in frames:
            if kind == protocol.READY:
                worker.ready = True
                return
            if kind == protocol.FAILED:
                message = protocol.parse_json(payload, {"error": str})["error"]
                raise GradingError(f"{message}; the grader's Python must be readable inside "
                                   "the sandbox (see book/instructors.md)")
        if time.monotonic() > worker.start_deadline:
            raise GradingError(f"the sandbox's worker did not start within {START_SECONDS} s")

    def restart(self, worker: Worker) -> Worker:
        worker.stop()
        fresh = Worker(self.isolation, self.setup, self.logs)
        fresh.send_setup()
        fresh.send_cases(self.cases)
        fresh.start_deadline = time.monotonic() + START_SECONDS
        self.wait_ready(fresh)
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def run(self, jobs):
        """Yield an Outcome for each job, as workers finish them."""
        pending = list(jobs)[::-1]
        selector = selectors.DefaultSelector()
        for worker in self.workers:
            selector.register(worker, selectors.EVENT_READ)
        busy = 0
        try:
            while pending or busy:
                for worker in self.workers:
                    if worker.ready and worker.job is None and pending:
                        worker.start(pending.pop(), self.limits)
                        busy += 1
                now = time.monotonic()
                nearest = min([w.deadline for w in self.workers if w.job]
                              + [w.start_deadline for w in self.workers if not w.ready], default=now + 1)
                events = selector.select(timeout=max(0.0, nearest - now))
                ready = [key.fileobj for key, _ in events]
                for worker in [w for w in self.workers if (w.job or not w.ready)
                               and time.monotonic() > (w.deadline if w.job else w.start_deadline)]:
                    ready.append(worker)  # overdue: the worker did not enforce the deadline
                for worker in dict.fromkeys(ready):
                    if not worker.ready:
                        self.advance_start(worker)
                        continue
                    if worker.job is None:
                        continue
                    outcome = self.step(worker)
                    if outcome is None:
                        continue
                    busy -= 1
                    yield outcome
                    if outcome.problem or outcome.grader_error:  # the sandbox may be spoiled
                        selector.unregister(worker)
                        fresh = self.restart(worker)
                        selector.register(fresh, selectors.EVENT_READ)
        finally:
            selector.close()

    def step(self, worker: Worker) -> Outcome | None:
        """Read what `worker` sent; an Outcome once its job is over (or broken)."""
        job, collected = worker.job, worker.collected
        seconds = round(time.monotonic() - worker.started, 3)
        if time.monotonic() > worker.deadline:
            worker.job = None
            return Outcome(job.key, collected, "time limit", seconds,
                           problem="the sandbox did not end the notebook at its time limit")
        try:
            frames = worker.read()
        except protocol.ProtocolError as error:
            worker.job = None
            return Outcome(job.key, collected, "broken channel", seconds,
                           problem=f"the notebook's process sent back {error}")
        if frames is None:
            worker.job = None
            return Outcome(job.key, None, "worker ended", seconds,
                           grader_error="not graded: grader error (the sandbox's worker ended: "
                                        f"{worker.failure()})")
        for kind, payload in frames:
            if kind == protocol.MESSAGE:
                collected.add(payload)
                continue
            worker.job = None
            if kind != protocol.END:
                return Outcome(job.key, None, "worker failed", seconds,
                               grader_error="not graded: grader error (the sandbox's worker "
                                            "sent an unexpected message)")
            try:
                end = protocol.parse_json(payload, {"key": str, "exit": str, "violation": str,
                                                    "setup_error": str, "seconds": float})
            except protocol.ProtocolError as error:
                return Outcome(job.key, None, "worker failed", seconds,
                               problem=f"the sandbox's worker sent back {error}")
            if end["key"] != job.key:
                return Outcome(job.key, None, "worker failed", seconds,
                               problem="the sandbox's worker answered for another submission")
            if end["setup_error"]:
                return Outcome(job.key, None, "not started", seconds,
                               grader_error="not graded: grader error (the sandbox could not prepare "
                                            f"the submission: {end['setup_error'][:300]})")
            violation = end["violation"][:300] and f"the notebook's process {end['violation'][:300]}"
            return Outcome(job.key, collected, end["exit"][:300], round(end["seconds"], 3),
                           problem=collected.problem or violation, ended=True)
        return None

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        shutil.rmtree(self.logs, ignore_errors=True)
