"""Mutation kill rate of the checks: how many one-token edits of the solutions they reject.

    .venv/bin/python benchmarks/mutation_kill_rate.py [ASSIGNMENT ...] [--limit N] [--show-survivors]

For every answer cell of a solution notebook, every mutant of the code between its
`### BEGIN SOLUTION` and `### END SOLUTION` lines is made by one of the classic
operators (below), put in place of the cell, and judged by the check of that answer
on its visible and its hidden cases: killed if either rejects it (or the notebook no
longer runs), survived otherwise. Prints, per assignment and answer, mutants, killed,
the kill rate, and each survivor as a line number and the edit, to be read by hand:
a survivor is either an equivalent mutant (the same function, such as `x * 1.0` for
`x`, or a change on a path no input reaches) or a gap in the check.

Operators (one edit each, on the solution's own syntax tree):
    binary operator   + - * / @ **, each replaced by its neighbours (+ <-> -, * <-> /, ...)
    comparison        < <= > >= == != flipped to the nearest other
    constant          an int k -> k + 1 and k - 1; a float x -> 0 and 2x; True <-> False
    unary             -x -> +x, not x -> bool(x)
    keyword           dim=, keepdim=, dtype=... removed from a call
    statement         an assignment, expression or return replaced by `pass`

Why not mutmut or cosmic-ray: both mutate importable modules on disk and rerun a test
command; the solutions are notebook cells, executed by the checks from the notebook's
JSON, so their mutants are made here, from the cell's syntax tree, and judged in-process.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINARY = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div, ast.Add], ast.Div: [ast.Mult],
          ast.MatMult: [ast.Mult], ast.Pow: [ast.Mult], ast.FloorDiv: [ast.Div], ast.Mod: [ast.FloorDiv]}
COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
           ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def solution_lines(source: str) -> range:
    lines = source.splitlines()
    begins = [i for i, line in enumerate(lines, 1) if "### BEGIN SOLUTION" in line]
    ends = [i for i, line in enumerate(lines, 1) if "### END SOLUTION" in line]
    return range(begins[0] + 1, ends[0]) if begins and ends else range(0)


def mutants(source: str):
    """(line, description, mutated source) for every one-edit mutant inside the solution markers."""
    inside = solution_lines(source)
    tree = ast.parse(source)
    original = ast.unparse(tree)
    for index, node in enumerate(ast.walk(tree)):
        for line, description, change in edits(node):
            if line not in inside:
                continue
            mutated = ast.parse(source)
            change(list(ast.walk(mutated))[index])
            try:
                text = ast.unparse(mutated)
            except (ValueError, TypeError):  # an edit that makes no valid source
                continue
            if text != original:         # 0.0 -> 2 * 0.0 changes nothing: not a mutant
                yield line, description, text


def edits(node):
    """(line, description, function that edits the same node of a fresh tree) for one node."""
    line = getattr(node, "lineno", None)
    for description, change in expression_edits(node):
        yield line, description, change
    for field in ("body", "orelse"):
        statements = getattr(node, field, None)
        if not isinstance(statements, list):
            continue
        for k, statement in enumerate(statements):
            if isinstance(statement, (ast.Assign, ast.AugAssign, ast.Expr, ast.Return)) and \
                    not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
                text = ast.unparse(statement).splitlines()[0][:60]
                yield statement.lineno, f"statement removed: {text}", \
                    lambda n, k=k, field=field: getattr(n, field).__setitem__(k, ast.Pass())


def expression_edits(node):
    """(description, edit) for the operators and constants of one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        for new in BINARY[type(node.op)]:
            yield f"{type(node.op).__name__} -> {new.__name__}", lambda n, new=new: setattr(n, "op", new())
    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            if type(op) in COMPARE:
                new = COMPARE[type(op)]
                yield f"{type(op).__name__} -> {new.__name__}", lambda n, k=k, new=new: n.ops.__setitem__(k, new())
    if isinstance(node, ast.Constant) and type(node.value) is bool:
        yield f"{node.value} -> {not node.value}", lambda n: setattr(n, "value", not n.value)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield f"{node.value} -> {node.value + 1}", lambda n: setattr(n, "value", n.value + 1)
        yield f"{node.value} -> {node.value - 1}", lambda n: setattr(n, "value", n.value - 1)
    elif isinstance(node, ast.Constant) and type(node.value) is float:
        yield f"{node.value} -> 0.0", lambda n: setattr(n, "value", 0.0)
        yield f"{node.value} -> {2 * node.value}", lambda n: setattr(n, "value", 2 * n.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "unary minus removed", lambda n: setattr(n, "op", ast.UAdd())
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        # `not x` -> `not not x`, which is bool(x): the negation undone
        yield "not removed", lambda n: setattr(n, "operand", ast.UnaryOp(ast.Not(), n.operand))
    if isinstance(node, ast.Call):
        for k, keyword in enumerate(node.keywords):
            if keyword.arg:
                yield f"{keyword.arg}= removed", lambda n, k=k: n.keywords.pop(k)


def namespace(sources: list[str]) -> dict:
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for source in sources:
            if not source.lstrip().startswith("# Try it"):
                exec(compile(source, "<notebook>", "exec"), scope)
    return scope


def killed(check, student) -> bool:
    from rnn_by_hand import CheckFailure
    for hidden in (False, True):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                check(student, hidden=hidden, quiet=True)
        except CheckFailure:
            return True
        except Exception:  # noqa: BLE001 -- the check itself failing on a mutant also rejects it
            return True
    return False


def measure(assignment: str, limit: int | None, show: bool) -> tuple[int, int]:
    from rnn_by_hand import CHECKS
    [notebook] = sorted((REPO / "solutions" / assignment).glob("*.ipynb"))
    code = [c for c in cells(notebook) if c["cell_type"] == "code" and not meta(c).get("grade")]
    sources = ["".join(c["source"]) for c in code]
    checks = {check.student_name: check for name, check in CHECKS.items() if name.startswith(f"{assignment}/")}
    total = total_killed = 0
    for position, cell in enumerate(code):
        if not meta(cell).get("solution"):
            continue
        found = [check for symbol, check in checks.items() if f"def {symbol}(" in sources[position]
                 or f"class {symbol}(" in sources[position] or f"class {symbol}:" in sources[position]]
        if not found:
            continue
        check = found[0]
        survivors, count = [], 0
        for line, description, mutated in list(mutants(sources[position]))[:limit]:
            count += 1
            try:
                scope = namespace(sources[:position] + [mutated] + sources[position + 1:])
            except BaseException:  # noqa: BLE001 -- a mutant that breaks the notebook is caught by running it
                continue
            if not killed(check, scope.get(check.student_name)):
                code_line = sources[position].splitlines()[line - 1].strip()[:70]
                survivors.append(f"      line {line}: {description}   in: {code_line}")
        total, total_killed = total + count, total_killed + count - len(survivors)
        rate = (count - len(survivors)) / count if count else 1.0
        print(f"  {check.student_name:24s} {count:4d} mutants, {count - len(survivors):4d} killed ({rate:.0%})",
              flush=True)
        if show and survivors:
            print("\n".join(survivors), flush=True)
    return total, total_killed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*", help="default: every assignment in solutions/")
    p.add_argument("--limit", type=int, help="at most this many mutants per answer (a quick look)")
    p.add_argument("--show-survivors", action="store_true", help="print each surviving mutant")
    args = p.parse_args()
    import torch
    torch.set_num_threads(1)
    assignments = args.assignments or sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    grand = grand_killed = 0
    for assignment in assignments:
        print(assignment, flush=True)
        total, total_killed = measure(assignment, args.limit, args.show_survivors)
        grand, grand_killed = grand + total, grand_killed + total_killed
        print(f"  {assignment}: {total_killed} of {total} killed ({total_killed / max(total, 1):.1%})", flush=True)
    print(f"all: {grand_killed} of {grand} mutants killed ({grand_killed / max(grand, 1):.1%})")


if __name__ == "__main__":
    sys.exit(main())
