"""The service layer's shape (issue 9): every writing use case rolls back on any error,
and the transition core is the only place a case's state is written."""
from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "returnprog" / "services"


def _functions():
    for path in sorted(SERVICES.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                yield path.name, node


def _calls(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def test_every_public_use_case_that_commits_is_atomic():
    missing = [f"{file}:{fn.name}" for file, fn in _functions()
               if not fn.name.startswith("_") and file != "uow.py"
               and {"commit", "begin_write"} & _calls(fn)
               and "atomic" not in {ast.unparse(d) for d in fn.decorator_list}]
    assert not missing, f"writing use cases without @atomic: {missing}"


def _updates_case(fn: ast.FunctionDef) -> bool:
    return any(isinstance(sub, ast.Call) and getattr(sub.func, "id", "") == "update"
               and sub.args and getattr(sub.args[0], "id", "") == "Case" for sub in ast.walk(fn))


def _names_state(fn: ast.FunctionDef) -> bool:
    for sub in ast.walk(fn):
        if (isinstance(sub, ast.Call) and getattr(sub.func, "attr", "") == "values"
                and any(k.arg == "state" for k in sub.keywords)):
            return True
        if isinstance(sub, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "state" for k in sub.keys):
            return True
    return False


def test_only_the_transition_core_writes_a_cases_state():
    writers = [f"{file}:{fn.name}" for file, fn in _functions()
               if _updates_case(fn) and _names_state(fn)]
    assert writers == ["transitions.py:run"], writers
