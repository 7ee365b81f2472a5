"""What a graded batch writes: CSV, feedback pages, a summary figure, nbgrader's gradebook."""
from __future__ import annotations

import csv
import html
import json
import shutil
import warnings
from pathlib import Path

from rnn_by_hand.grading.batch import Assignment, Result, safe_name
from rnn_by_hand.grading.errors import GradingError


def write_csv(results: list[Result], path: Path, assignment: Assignment) -> None:
    ids = [cell.grade_id for cell in assignment.graded]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "assignment", "score", "max_score", *ids, "reasons", "repairs",
                         "suspected_tampering"])
        for r in results:
            by_id = {c.grade_id: c for c in r.cells}
            reasons = "; ".join(f"{c.grade_id}: {c.reason.splitlines()[0]}" for c in r.cells if c.reason)
            writer.writerow([r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}",
                             *(f"{by_id[i].score:g}" for i in ids), reasons, "; ".join(r.repairs),
                             "; ".join(suspected(r))])


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


def write_gradebook(results: list[Result], assignment: Assignment, course: Path) -> None:
    """Record scores in the course's nbgrader gradebook, so export and formgrader see them."""
    from nbgrader.api import Gradebook, MissingEntry
    url = f"sqlite:///{(course / 'gradebook.db').resolve()}"
    notebook_id = Path(assignment.notebook).stem
    with Gradebook(url) as gradebook, warnings.catch_warnings():
        # nbgrader's add_submission triggers SQLAlchemy autoflush notices; the rows are right.
        warnings.simplefilter("ignore")
        try:
            gradebook.find_assignment(assignment.name)
        except MissingEntry:
            raise GradingError(f"{assignment.name} is not in {course}/gradebook.db: run "
                             f"`nbgrader generate_assignment {assignment.name}` there first") from None
        for result in results:
            try:
                gradebook.find_student(result.student)
            except MissingEntry:
                gradebook.add_student(result.student)
            try:
                gradebook.find_submission(assignment.name, result.student)
            except MissingEntry:
                gradebook.add_submission(assignment.name, result.student)
            for cell in result.cells:
                grade = gradebook.find_grade(cell.grade_id, notebook_id, assignment.name, result.student)
                grade.auto_score = cell.score
            gradebook.db.commit()
            write_autograded(result, assignment, course)


def write_autograded(result: Result, assignment: Assignment, course: Path) -> None:
    """The repaired notebook with each test cell showing the grade's reason, where nbgrader
    looks for it (autograded/<student>/<assignment>/), so generate_feedback and the
    formgrader work as after `nbgrader autograde`."""
    from rnn_by_hand.grading.notebook import is_test, meta, prepare
    data = Path(result.path).read_bytes() if result.path and Path(result.path).is_file() else b""
    prepared = prepare(data, assignment.release)
    cells = prepared.cells if not prepared.problem else [dict(c) for c in assignment.release["cells"]]
    by_id = {c.grade_id: c for c in result.cells}
    source_tests = {meta(c)["grade_id"]: c for c in assignment.source["cells"] if is_test(c)}
    notebook = dict(assignment.release, cells=[])
    for cell in cells:
        grade_id = meta(cell).get("grade_id")
        if grade_id in by_id and is_test(cell):
            cell = dict(source_tests.get(grade_id, cell), outputs=[test_output(by_id[grade_id])],
                        execution_count=None)
        elif cell.get("cell_type") == "code":
            cell = dict(cell, outputs=[], execution_count=None)
        notebook["cells"].append(cell)
    target = course / "autograded" / result.student / assignment.name / assignment.notebook
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1))
    for name in ("timestamp.txt", "submission_secret.txt"):  # nbgrader's submitted/ tree:
        kept = Path(result.path).parent / name if result.path else None  # feedback needs them
        if kept and kept.is_file():
            shutil.copy(kept, target.parent / name)


def test_output(cell) -> dict:
    if cell.score == cell.points:
        return {"output_type": "stream", "name": "stdout",
                "text": f"Passed: every case matched ({cell.points:g} points).\n"}
    return {"output_type": "error", "ename": "CheckFailure", "evalue": cell.reason.splitlines()[0],
            "traceback": cell.reason.splitlines()}


def write_all(results: list[Result], assignment: Assignment, out: Path, course: Path | None) -> None:
    write_csv(results, out / "grades.csv", assignment)
    write_feedback(results, out / "feedback")
    write_summary_figure(results, assignment, out / "summary.png")
    if course:
        write_gradebook(results, assignment, course)
