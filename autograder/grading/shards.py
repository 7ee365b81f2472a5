"""A class larger than one machine: a plan, shards run by any job engine, one merge.

    rnn-by-hand plan ASSIGNMENT --out plan.json          fixes the secret seed and the release
    rnn-by-hand grade ASSIGNMENT SUBMISSIONS --plan plan.json --shard K/N --out shard-K
                                                         on any host with the same release
    rnn-by-hand merge ASSIGNMENT shard-* --plan plan.json
                                                         the only writer of the gradebook

A shard grades the students whose id hashes to K (sha256 of the id, modulo N), so a
retried shard grades the same students, wherever it runs. Every shard collects the whole
class and records it, so the merge can say who is missing and who was graded twice. The
merge refuses a shard of another plan (another seed, release or checker), and writes
nothing when a shard or a student is missing: a partial gradebook would look final.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from rnn_by_hand._version import __version__
from rnn_by_hand.grading.errors import GradingError

MANIFEST = "shard.json"


@dataclass(frozen=True)
class Plan:
    assignment: str
    seed: int
    release: str   # sha256 of the assignment's source and release notebooks
    checker: str   # the rnn-by-hand version that grades

    @property
    def id(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def release_digest(course, assignment: str) -> str:
    """What every shard must grade against: the source and the release notebooks, byte for byte."""
    digest = hashlib.sha256()
    for folder in (course.solutions, course.exercises):
        for path in sorted((folder / assignment).glob("*.ipynb")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def make_plan(course, assignment: str, seed: int | None = None) -> Plan:
    if not (course.solutions / assignment).is_dir():
        raise GradingError(f"unknown assignment {assignment!r} in {course.solutions}")
    return Plan(assignment, secrets.randbelow(2**31) if seed is None else seed,
                release_digest(course, assignment), __version__)


def write_plan(plan: Plan, path: Path) -> None:
    path.write_text(json.dumps(asdict(plan) | {"id": plan.id}, indent=1) + "\n")


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
        plan = Plan(str(data["assignment"]), int(data["seed"]), str(data["release"]), str(data["checker"]))
    except OSError as error:
        raise GradingError(f"the plan {path} cannot be read ({error.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise GradingError(f"{path} is not a plan written by `rnn-by-hand plan`") from None
    if data.get("id") != plan.id:
        raise GradingError(f"the plan {path} was edited after `rnn-by-hand plan` wrote it")
    return plan


def check_plan(plan: Plan, course, assignment: str) -> None:
    """Refuse to grade a shard anywhere the plan's release or checker is not the one installed."""
    if plan.assignment != assignment:
        raise GradingError(f"the plan is for {plan.assignment}, not {assignment}")
    if plan.checker != __version__:
        raise GradingError(f"the plan was made with rnn-by-hand {plan.checker}; this host has {__version__}")
    if release_digest(course, assignment) != plan.release:
        raise GradingError(f"this host's {assignment} (solutions/ and exercises/) differs from the plan's: "
                           "install the same course release on every host")


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N), with 0 <= K < N (Slurm: --array=0-(N-1); Kubernetes: the completion index)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise GradingError(f"--shard {text!r}: write K/N, for example 0/4 (shards 0 to 3 of 4)") from None
    if count < 1 or not 0 <= index < count:
        raise GradingError(f"--shard {text!r}: K must be 0 to N - 1 and N at least 1")
    return index, count


def shard_of(student: str, count: int) -> int:
    """The shard a student belongs to: stable across hosts, runs and Python versions."""
    return int(hashlib.sha256(student.encode()).hexdigest()[:16], 16) % count


def write_manifest(out: Path, plan: Plan, shard: tuple[int, int], everyone: list[str], graded: list[str]) -> None:
    (out / MANIFEST).write_text(json.dumps({"plan": plan.id, "shard": shard[0], "of": shard[1],
                                            "class": sorted(everyone), "graded": sorted(graded)}, indent=1))


def merge_shards(plan: Plan, folders: list[Path]) -> dict[str, Path]:
    """student -> the shard folder that graded them, for a complete set of shards of `plan`;
    GradingError naming what is wrong otherwise."""
    manifests = {}
    for folder in folders:
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            raise GradingError(f"{folder} is not a shard's output (no readable {MANIFEST})") from None
        if manifest.get("plan") != plan.id:
            raise GradingError(f"{folder} was graded under another plan ({manifest.get('plan')}, not {plan.id})")
        key = manifest["shard"]
        if key in manifests:
            raise GradingError(f"shard {key} of {manifest['of']} appears twice ({manifests[key][0]} and {folder})")
        manifests[key] = (folder, manifest)
    counts = {m["of"] for _, m in manifests.values()}
    if len(counts) != 1:
        raise GradingError(f"the shards were cut in different numbers of parts ({sorted(counts)})")
    count = counts.pop()
    missing = sorted(set(range(count)) - set(manifests))
    if missing:
        raise GradingError(f"shard(s) {', '.join(map(str, missing))} of {count} missing: nothing written")
    classes = {tuple(m["class"]) for _, m in manifests.values()}
    if len(classes) != 1:
        raise GradingError("the shards saw different classes: give every shard the same submissions")
    everyone = set(classes.pop())
    seen: dict[str, Path] = {}
    duplicates = []
    for folder, manifest in manifests.values():
        for student in manifest["graded"]:
            if student in seen:
                duplicates.append(f"{student} ({seen[student].name} and {folder.name})")
            seen[student] = folder
    if duplicates:
        raise GradingError(f"graded twice: {', '.join(duplicates[:10])}: nothing written")
    absent = sorted(everyone - set(seen))
    if absent:
        raise GradingError(f"{len(absent)} student(s) graded by no shard ({', '.join(absent[:10])}): nothing written")
    return dict(sorted(seen.items()))
