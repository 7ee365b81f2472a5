"""The one channel between the grader and a sandbox: framed, capped, typed messages.

    grader --(S setup, C cases, J job, Q quit)--> worker in the sandbox      trusted direction
    grader <--(R ready, M message, E end, F failed)-- worker        untrusted direction
                                      ^ M: a submission's own message, relayed unread

Each frame is a kind byte, a 4-byte length and a payload. Everything that comes
from the sandbox is treated as hostile: the reader refuses frames over
`MAX_FRAME` bytes, a submission may send at most `max_messages` messages and
`MAX_JOB_BYTES` in all, and each payload is parsed into one of the typed messages
below or rejected with a reason. Payloads are `rnn_by_hand.wire` trees read with
`torch.load(weights_only=True)`, or small JSON objects: nothing that can run code.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from rnn_by_hand import wire

HEADER = struct.Struct("<cI")
MAX_FRAME = 64 << 20        # one message
MAX_JOB_BYTES = 256 << 20   # everything one submission sends
MAX_TEXT = 2000             # one error text from the sandbox, in characters
MAX_CELL_ERRORS = 500

# Frame kinds.
SETUP, CASES, JOB, QUIT = b"S", b"C", b"J", b"Q"  # grader -> worker
READY, MESSAGE, END, FAILED = b"R", b"M", b"E", b"F"  # worker -> grader


class ProtocolError(ValueError):
    """Something from the sandbox that is not a well-formed message."""


def frame(kind: bytes, payload: bytes) -> bytes:
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("payload too large for one frame")
    return HEADER.pack(kind, len(payload)) + payload


class FrameReader:
    """Cut a byte stream into (kind, payload) frames; refuse oversized or unknown ones."""

    def __init__(self, kinds: bytes, max_frame: int = MAX_FRAME):
        self.kinds, self.max_frame, self.buffer = kinds, max_frame, bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            kind, size = HEADER.unpack_from(self.buffer)
            if kind not in [self.kinds[i:i + 1] for i in range(len(self.kinds))]:
                raise ProtocolError(f"a frame of unknown kind {kind!r}")
            if size > self.max_frame:
                raise ProtocolError(f"a message of {size >> 20} MB (the limit is {self.max_frame >> 20} MB)")
            if len(self.buffer) < HEADER.size + size:
                break
            frames.append((kind, bytes(self.buffer[HEADER.size:HEADER.size + size])))
            del self.buffer[:HEADER.size + size]
        return frames


# -- what a submission sends (child -> grader, relayed by the worker) ----------------

@dataclass(frozen=True)
class CellsRan:
    errors: tuple[str, ...]  # "label: Type: first line" of each cell that raised


@dataclass(frozen=True)
class CheckRan:
    check: str
    outputs: list | None = None  # one dict of named values per case
    error: str | None = None     # the student's code failed before any comparison


@dataclass(frozen=True)
class Done:
    pass


def child_message(tree_kind: str, **fields) -> bytes:
    """The payload a submission's process sends (built from plain values, in the sandbox)."""
    return wire.dumps({"type": tree_kind, **fields})


def _text(value, what: str) -> str:
    if type(value) is not str:
        raise ProtocolError(f"{what} is not text")
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + " [...]"


def parse_child_message(payload: bytes, checks: set[str]) -> CellsRan | CheckRan | Done:
    """One message from a submission, validated, or ProtocolError saying what is wrong."""
    try:
        tree = wire.loads(payload)
    except wire.WireError as error:
        raise ProtocolError(f"an unreadable message ({error})") from None
    if type(tree) is not dict or type(tree.get("type")) is not str:
        raise ProtocolError("a message that is not a dict with a type")
    kind = tree["type"]
    if kind == "cells" and set(tree) == {"type", "errors"}:
        errors = tree["errors"]
        if type(errors) is not list or len(errors) > MAX_CELL_ERRORS:
            raise ProtocolError("a malformed list of cell errors")
        return CellsRan(tuple(_text(e, "a cell error") for e in errors))
    if kind == "check" and type(tree.get("check")) is str:
        name = tree["check"]
        if name not in checks:
            raise ProtocolError(f"results for a check this assignment does not use ({name[:80]!r})")
        if set(tree) == {"type", "check", "error"}:
            return CheckRan(name, error=_text(tree["error"], "an error"))
        if set(tree) == {"type", "check", "outputs"} and type(tree["outputs"]) is list:
            try:
                outputs = [wire.decode(o) for o in tree["outputs"]]
            except wire.WireError as error:
                raise ProtocolError(f"malformed outputs for {name} ({error})") from None
            if not all(type(o) is dict for o in outputs):
                raise ProtocolError(f"outputs for {name} that are not named values")
            return CheckRan(name, outputs=outputs)
        raise ProtocolError(f"a malformed result for {name}")
    if kind == "done" and set(tree) == {"type"}:
        return Done()
    raise ProtocolError(f"a message of unknown shape ({kind[:40]!r})")


# -- what the worker says about itself (small JSON) ----------------------------------

def json_payload(value: dict) -> bytes:
    return json.dumps(value).encode()


def parse_json(payload: bytes, fields: dict[str, type]) -> dict:
    """A small JSON object with exactly the typed fields named, or ProtocolError."""
    if len(payload) > 1 << 16:
        raise ProtocolError("an oversized status message")
    try:
        value = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError("an unreadable status message") from None
    if type(value) is not dict or set(value) != set(fields):
        raise ProtocolError("a status message of the wrong shape")
    for name, kind in fields.items():
        if not isinstance(value[name], kind) or isinstance(value[name], bool) and kind is not bool:
            raise ProtocolError(f"a status message whose {name} is not {kind.__name__}")
    return value


@dataclass
class Collected:
    """What one submission sent: counted and capped as it arrives (cheap, in the grading
    process), decoded later by a scoring process (the wire format's cost is theirs)."""
    checks: set[str]
    max_messages: int
    payloads: list[bytes] = field(default_factory=list)
    results: dict[str, CheckRan] = field(default_factory=dict)
    cell_errors: list[str] = field(default_factory=list)
    done: bool = False
    problem: str = ""  # the first way the submission broke the protocol
    size: int = 0

    def add(self, payload: bytes) -> None:
        """Keep one relayed message; past the limits, record the problem and keep no more."""
        if self.problem:
            return
        self.size += len(payload)
        if len(self.payloads) >= self.max_messages or self.size > MAX_JOB_BYTES:
            self.problem = "the notebook's process sent back more messages or data than a notebook's results need"
            return
        self.payloads.append(payload)

    def decode(self) -> None:
        """Parse the kept messages in order; the first broken one records the problem and
        ends the reading, as if the later ones had not been sent."""
        payloads, self.payloads = self.payloads, []
        for payload in payloads:
            try:
                message = parse_child_message(payload, self.checks)
                if self.done:
                    raise ProtocolError("messages after the end of the results")
                if isinstance(message, CellsRan):
                    self.cell_errors = list(message.errors)
                elif isinstance(message, CheckRan):
                    if message.check in self.results:
                        raise ProtocolError(f"results for {message.check} twice")
                    self.results[message.check] = message
                else:
                    self.done = True
            except ProtocolError as error:
                self.problem = self.problem or f"the notebook's process sent back {error}"
                return
