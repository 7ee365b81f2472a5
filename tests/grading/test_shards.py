"""A class graded in shards: a plan, four shards run by GNU parallel, one merge.

The shards run through GNU parallel's remote-execution path with the local machine as
its hosts (`--sshlogin 2/:`, two jobs at a time on ":"), as they would over ssh; the
merge must give exactly the grades of one unsharded run under the same plan, and be
the only writer of nbgrader's gradebook.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from conftest import EXERCISES, REPO, new_course
from rnn_by_hand.grading.shards import shard_of
from submissions import ASSIGNMENT, RELEASE, answered, with_cell

COMMAND = [sys.executable, "-m", "rnn_by_hand"]
def course_at(root: Path) -> Path:
    """An instructor's course folder with this course's source and release."""
    course = new_course(root)
    shutil.copytree(EXERCISES, course / "exercises")
    return course


STUDENTS = {  # id -> notebook: enough students that every one of four shards gets some
    **{f"full-{k}": answered() for k in range(4)},
    **{f"step-only-{k}": answered("stacked_rnn_step") for k in range(3)},
    **{f"blank-{k}": RELEASE for k in range(2)},
    "crashes": with_cell(answered(), "import os\nos._exit(3)", at=1),
}


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, cwd=REPO)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def grades(path: Path) -> dict[str, dict]:
    """student -> their row of grades.csv (score, every cell, reasons, ...)."""
    with path.open() as file:
        return {row["student_id"]: row for row in csv.DictReader(file)}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    course = course_at(tmp / "course")
    submissions = tmp / "submitted"
    for student, notebook in STUDENTS.items():
        (submissions / student).mkdir(parents=True)
        (submissions / student / "recurrence.ipynb").write_text(json.dumps(notebook))
    plan = tmp / "plan.json"
    common = ["--course", str(course), "--quiet", "--workers", "1"]
    run("plan", ASSIGNMENT, "--course", str(course), "--out", str(plan))
    assert not (course / "gradebook.db").exists()
    shell = " ".join([*COMMAND, "grade", ASSIGNMENT, str(submissions), "--plan", str(plan), *common,
                      "--shard", "{}/4", "--out", str(tmp / "shard-{}")])
    parallel = subprocess.run(["parallel", "--will-cite", "--sshlogin", "2/:", "--halt", "now,fail=1", shell,
                               ":::", "0", "1", "2", "3"], capture_output=True, text=True, cwd=REPO)
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert not (course / "gradebook.db").exists(), "a shard wrote the gradebook"
    whole = tmp / "whole"
    run("grade", ASSIGNMENT, str(submissions), "--plan", str(plan), *common, "--out", str(whole), "--no-gradebook")
    merged = tmp / "merged"
    shards = [tmp / f"shard-{k}" for k in range(4)]
    run("merge", ASSIGNMENT, *map(str, shards), "--plan", str(plan), "--course", str(course), "--out", str(merged))
    return tmp, course, plan, shards, whole, merged


def test_four_shards_give_exactly_the_grades_of_one_run(sharded):
    _, _, _, shards, whole, merged = sharded
    assert grades(merged / "grades.csv") == grades(whole / "grades.csv")
    assert set(grades(merged / "grades.csv")) == set(STUDENTS)
    scores = {student: row["score"] for student, row in grades(merged / "grades.csv").items()}
    assert scores["full-0"] != scores["blank-0"], "the class is not all one score: the test would prove little"
    seed = json.loads((sharded[2]).read_text())["seed"]
    for k, shard in enumerate(shards):  # each shard graded only its own students, and some, under the plan's seed
        assert json.loads((shard / "run.json").read_text())["seed"] == seed
        manifest = json.loads((shard / "shard.json").read_text())
        assert manifest["graded"] and all(shard_of(s, 4) == k for s in manifest["graded"])
        assert manifest["class"] == sorted(STUDENTS)


def test_the_merge_writes_the_gradebook_once(sharded):
    _, course, *_, merged = sharded
    expected = {student: float(row["score"]) for student, row in grades(merged / "grades.csv").items()}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assert {s.student.id: s.score for s in gradebook.assignment_submissions(ASSIGNMENT)} == expected


def test_a_retried_shard_grades_the_same_students(sharded):
    tmp, course, plan, shards, *_ = sharded
    again = tmp / "shard-2-again"
    run("grade", ASSIGNMENT, str(tmp / "submitted"), "--plan", str(plan), "--shard", "2/4", "--course", str(course),
        "--quiet", "--workers", "1", "--out", str(again))
    first, second = (json.loads((folder / "shard.json").read_text()) for folder in (shards[2], again))
    assert first == second


def test_the_merge_refuses_an_incomplete_or_mixed_set(sharded, tmp_path):
    tmp, course, plan, shards, *_ = sharded
    merge = ["merge", ASSIGNMENT, "--plan", str(plan), "--course", str(course), "--out", str(tmp_path / "out")]

    def refused(*folders: Path) -> str:
        result = run(*merge, *map(str, folders), ok=False)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "out" / "grades.csv").exists()
        return result.stderr

    assert "shard(s) 3 of 4 missing" in refused(*shards[:3])
    assert "appears twice" in refused(*shards, tmp / "shard-2-again")
    other = tmp_path / "other-plan"
    run("plan", ASSIGNMENT, "--course", str(course), "--out", str(other), "--seed", "7")
    result = run(*merge, *map(str, shards[:1]), "--plan", str(other), ok=False)
    assert result.returncode == 2 and "graded under another plan" in result.stderr
    lost = tmp_path / "lost-a-student"
    shutil.copytree(shards[0], lost)
    manifest = json.loads((lost / "shard.json").read_text())
    manifest["graded"] = manifest["graded"][1:]
    (lost / "shard.json").write_text(json.dumps(manifest))
    assert "graded by no shard" in refused(lost, *shards[1:])


def test_a_shard_refuses_another_release(sharded, tmp_path):
    _, course, plan, *_ = sharded
    changed = course_at(tmp_path / "changed")
    release = changed / "exercises" / ASSIGNMENT / "recurrence.ipynb"
    release.write_text(release.read_text().replace("stacked_rnn_step", "stacked_rnn_step ", 1))
    result = run("grade", ASSIGNMENT, str(tmp_path), "--plan", str(plan), "--shard", "0/4", "--course", str(changed),
                 ok=False)
    assert result.returncode == 2 and "differs from the plan's" in result.stderr, result.stderr
    for bad in ("4/4", "x/4", "1/0"):
        result = run("grade", ASSIGNMENT, str(tmp_path), "--plan", str(plan), "--shard", bad, "--course", str(course),
                     ok=False)
        assert result.returncode == 2 and "--shard" in result.stderr, result.stderr


def recipe(language: str, starts: str) -> str:
    """The instructor chapter's code block in `language` that starts with `starts`."""
    text = (REPO / "book" / "instructors.md").read_text()
    blocks = [block.split("\n```", 1)[0] for block in text.split(f"```{language}\n")[1:]]
    found = [block for block in blocks if block.startswith(starts)]
    assert len(found) == 1, f"expected one {language} block starting {starts!r} in book/instructors.md"
    return found[0]


def graded_by_engine(course: Path, commands: list[tuple[str, dict]]) -> None:
    """Run each shard's command as the engine would, two at a time, in the course folder."""
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    running = []
    for script, variables in commands:
        running.append(subprocess.Popen(["bash", "-c", script], cwd=course, env=environment | variables,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        if len(running) == 2:
            for process in running:
                assert process.wait() == 0, process.stdout.read()
            running = []
    for process in running:
        assert process.wait() == 0, process.stdout.read()


@pytest.mark.parametrize("engine", ["slurm", "kubernetes"])
def test_the_documented_recipes_shard_the_class(sharded, engine, tmp_path):
    tmp, _, plan, _, whole, _ = sharded
    course = course_at(tmp_path / "course")
    shutil.copytree(tmp / "submitted", course / "submitted")
    shutil.copy(plan, course / "plan.json")
    if engine == "slurm":  # the batch script as sbatch would run it: #SBATCH lines are comments to bash
        script, count = recipe("bash", "#!/bin/bash\n#SBATCH"), 4
        commands = [(script, {"SLURM_ARRAY_TASK_ID": str(k), "SLURM_ARRAY_TASK_COUNT": str(count),
                              "SLURM_CPUS_PER_TASK": "1"}) for k in range(count)]
    else:  # the container's command, with the index Kubernetes gives each pod
        import yaml
        job = yaml.safe_load(recipe("yaml", "apiVersion: batch/v1"))
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][:2] == ["sh", "-c"] and job["spec"]["completionMode"] == "Indexed"
        count = job["spec"]["completions"]
        commands = [(container["command"][2], {"JOB_COMPLETION_INDEX": str(k)}) for k in range(count)]
    graded_by_engine(course, commands)
    shards = sorted((course / "shards").iterdir())
    assert len(shards) == count
    run("merge", ASSIGNMENT, *map(str, shards), "--plan", str(course / "plan.json"), "--course", str(course),
        "--out", str(course / "merged"), "--no-gradebook")
    assert grades(course / "merged" / "grades.csv") == grades(whole / "grades.csv")
