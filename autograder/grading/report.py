"""What a graded batch writes: CSV, feedback pages, a summary figure, nbgrader's gradebook."""
from __future__ import annotations

import csv
import html
import json
import os
import shutil
import warnings
from pathlib import Path

from rnn_by_hand.course import Course, environment
from rnn_by_hand.grading.batch import Assignment, Result, safe_name
from rnn_by_hand.grading.collect import safe_as_folder


def write_csv(results: list[Result], path: Path, assignment: Assignment) -> None:
    ids = [cell.grade_id for cell in assignment.graded]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "name", "assignment", "score", "max_score", *ids, "reasons", "repairs",
                         "suspected_tampering", "submitted_at", "late"])
        for r in results:
            by_id = {c.grade_id: c for c in r.cells}
            reasons = "; ".join(f"{c.grade_id}: {one_line(c.reason)}" for c in r.cells if c.reason)
            writer.writerow([r.student, r.name, r.assignment, f"{r.score:g}", f"{r.max_score:g}",
                             *(f"{by_id[i].score:g}" for i in ids), reasons, "; ".join(r.repairs),
                             "; ".join(suspected(r)), r.submitted_at, "late" if r.late else ""])


def suspected(result: Result) -> list[str]:
    return [note for note in result.notes if "suspected tampering" in note]


def feedback_page(result: Result) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(c.grade_id)}</td><td>{c.score:g} / {c.points:g}</td>"
        f"<td><pre>{esc(c.reason) or 'passed'}</pre></td></tr>" for c in result.cells)
    extra = ""
    for title, items in (("Repairs made before grading", result.repairs),
                         ("Cells that raised an error", result.cell_errors),
                         ("Notes", result.notes),
                         ("Isolation", result.isolation)):
        if items:
            extra += f"<h2>{title}</h2><ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(result.assignment)}: "
            f"{esc(result.student)}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
            f"td{{vertical-align:top;border-bottom:1px solid #ddd;padding:.4em}}pre{{white-space:pre-wrap;margin:0}}"
            f"</style></head><body><h1>{esc(result.assignment)}: {result.score:g} / {result.max_score:g}</h1>"
            f"<p>Student: {esc(result.student)}</p><table><tr><th>exercise</th><th>score</th>"
            f"<th>feedback</th></tr>{rows}</table>{extra}</body></html>")


def write_feedback(results: list[Result], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        (folder / f"{safe_name(result.student)}.html").write_text(feedback_page(result))


def write_summary_figure(results: list[Result], assignment: Assignment, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    scores = [r.score for r in results]
    left.hist(scores, bins=max(5, int(assignment.max_score) + 1), range=(0, assignment.max_score),
              color="C0", edgecolor="white")
    left.set(xlabel=f"score (out of {assignment.max_score:g})", ylabel="students",
             title=f"{assignment.name}: scores of {len(results)} submissions"
                   + (f" ({sum(1 for r in results if suspected(r))} suspected tampering)"
                      if any(suspected(r) for r in results) else ""))
    ids = [c.grade_id for c in assignment.graded]
    rates = [100 * sum(1 for r in results for c in r.cells if c.grade_id == i and c.score == c.points)
             / max(1, len(results)) for i in ids]
    right.barh(ids, rates, color="C2")
    right.set(xlabel="students passing (%)", xlim=(0, 100), title="Pass rate per exercise")
    right.invert_yaxis()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def one_line(reason: str) -> str:
    """A reason in full on one line (a CSV cell, an LMS comment): its lines joined."""
    return " / ".join(line.strip() for line in reason.splitlines() if line.strip())


def write_gradebook(results: list[Result], assignment: Assignment, course: Course) -> None:
    """Leave nbgrader's gradebook as `nbgrader autograde` would for the same submissions.

    nbgrader's own code records the grades: its SaveAutoGrades reads each test cell's
    output in the autograded notebook (autograded cells never wait for manual grading;
    a manual grade already given is kept and flagged for review, as after a regrade
    there), and its AssignLatePenalties applies the course's late-submission plugin to
    the timestamp collect recorded. Results that are not final (the grader failed) are
    left out, to be written when they are graded again.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
    import nbformat
    os.environ["PATH"] = environment()["PATH"]  # nbgrader's Gradebook runs `alembic` by name
    config, url, course_id = course.nbgrader_config(), course.gradebook_url(), course.course_id()
    notebook_id = Path(assignment.notebook).stem
    with Gradebook(url, course_id) as gradebook:
        try:
            gradebook.find_notebook(notebook_id, assignment.name)
        except MissingEntry:  # not generated there yet (perhaps only added, with its due date)
            course.record_in_gradebook(assignment.name)
    recorders = [SaveAutoGrades(config=config), AssignLatePenalties(config=config)]
    for result in results:
        if not result.final:
            continue
        with Gradebook(url, course_id) as gradebook, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy autoflush notices from add_submission
            try:
                gradebook.find_student(result.student)
            except MissingEntry:
                gradebook.add_student(result.student, **dict(zip(("last_name", "first_name"),
                                                                  display_name(result.name))))
            stamp = {"timestamp": result.submitted_at} if result.submitted_at else {}
            gradebook.update_or_create_submission(assignment.name, result.student, **stamp)
        notebook = autograded_notebook(result, assignment)
        resources = {"nbgrader": {"notebook": notebook_id, "assignment": assignment.name,
                                  "student": result.student, "db_url": url}}
        for recorder in recorders:
            recorder.preprocess(nbformat.reads(json.dumps(notebook), as_version=4), resources)
        write_autograded(result, assignment, course, notebook)


def display_name(name: str) -> list[str]:
    """(last, first) for nbgrader's student table from an LMS's display name, where it has one."""
    if not name:
        return []
    if " " in name.strip():
        first, _, last = name.strip().rpartition(" ")
        return [last, first]
    return [name]


def autograded_notebook(result: Result, assignment: Assignment) -> dict:
    """The repaired notebook with each test cell showing the grade's reason. Test cells are
    the release's, so the hidden tests never reach nbgrader's feedback."""
    from rnn_by_hand.grading.notebook import is_test, meta, prepare
    data = Path(result.path).read_bytes() if result.path and Path(result.path).is_file() else b""
    prepared = prepare(data, assignment.release)
    cells = prepared.cells if not prepared.problem else [dict(c) for c in assignment.release["cells"]]
    by_id = {c.grade_id: c for c in result.cells}
    released = {meta(c)["grade_id"]: c for c in assignment.release["cells"] if is_test(c)}
    notebook = dict(assignment.release, cells=[])
    for cell in cells:
        grade_id = meta(cell).get("grade_id")
        if grade_id in by_id and is_test(cell):
            cell = dict(released.get(grade_id, cell), outputs=[test_output(by_id[grade_id])],
                        execution_count=None)
        elif cell.get("cell_type") == "code":
            cell = dict(cell, outputs=[], execution_count=None)
        notebook["cells"].append(cell)
    return notebook


def write_autograded(result: Result, assignment: Assignment, course: Course, notebook: dict) -> None:
    """The autograded notebook where nbgrader looks for it (autograded/<student>/<assignment>/),
    so generate_feedback and the formgrader work as after `nbgrader autograde`. nbgrader names
    that folder by the student id itself, so an id that is not a safe folder name gets none."""
    if not safe_as_folder(result.student):
        return
    target = course.root / "autograded" / result.student / assignment.name / assignment.notebook
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1))
    for name in ("timestamp.txt", "submission_secret.txt"):  # nbgrader's submitted/ tree:
        kept = Path(result.path).parent / name if result.path else None  # feedback needs them
        if kept and kept.is_file():
            shutil.copy(kept, target.parent / name)


def write_canvas_csv(results: list[Result], path: Path, assignment: Assignment) -> None:
    """A file Canvas's gradebook imports (Grades > Import): its own columns, a Points Possible
    row, and one column for the assignment. Canvas matches a row by its user ID (what a
    Canvas download names the files by) or by SIS Login ID (any other student id here).
    A submission the grader failed on has an empty score, so Canvas keeps what it had."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment.name])
        writer.writerow(["    Points Possible", "", "", "", "", f"{assignment.max_score:g}"])
        for r in results:
            canvas_id = r.student if r.student.isdigit() else ""
            writer.writerow([r.name or r.student, canvas_id, "", "" if canvas_id else r.student, "",
                             f"{r.score:g}" if r.final else ""])


def test_output(cell) -> dict:
    """What the test cell shows, in the form nbgrader's determine_grade reads: nothing wrong
    (full points), a number (partial credit) or an error (none)."""
    if 0 < cell.score < cell.points:
        return {"output_type": "execute_result", "execution_count": None, "metadata": {},
                "data": {"text/plain": f"{cell.score:g}"}}
    if cell.score == cell.points:
        return {"output_type": "stream", "name": "stdout",
                "text": f"Passed: every case matched ({cell.points:g} points).\n"}
    return {"output_type": "error", "ename": "CheckFailure", "evalue": cell.reason.splitlines()[0],
            "traceback": cell.reason.splitlines()}


def write_all(results: list[Result], assignment: Assignment, out: Path, course: Course | Path | None) -> None:
    """Everything a batch writes: into `out`, and into the course's gradebook when given one."""
    course = Course.at(course) if isinstance(course, (str, Path)) else course
    write_csv(results, out / "grades.csv", assignment)
    write_canvas_csv(results, out / "canvas.csv", assignment)
    write_feedback(results, out / "feedback")
    write_summary_figure(results, assignment, out / "summary.png")
    if course:
        write_gradebook(results, assignment, course)
