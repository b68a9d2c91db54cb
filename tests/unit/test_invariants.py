"""The invariants docs/ARCHITECTURE.md states that no other test pins: thin handlers, decisions without I/O,
and a localcloud that imports nothing from acrsync. Each reads the code itself (its AST), so a change that
breaks an invariant fails here, whatever the behaviour tests happen to exercise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "shared" / "acrsync"

# Pure decision modules: what is in scope, which rule covers it, what a policy allows, what an error means,
# what reconcile does with a record, which rules to propose, what a backfill plans.
DECISIONS = ["scope.py", "coverage.py", "policy.py", "failures.py", "lifecycle.py", "rule_advisor.py",
             "backfill/plan.py"]
# Importing any of these is I/O (or the means to it): the cloud layer, the ledger, the network, the clock.
IO_MODULES = ("acrsync.cloud", "acrsync.ledger", "acrsync.app", "time", "socket", "urllib", "http",
              "sqlite3", "subprocess", "tablestore", "alibabacloud", "darabonba", "requests")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


HANDLERS = sorted((ROOT / "functions").glob("*/index.py"))


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.parent.name)
def test_a_handler_only_hands_the_event_to_the_app(handler):
    tree = ast.parse(handler.read_text(encoding="utf-8"))
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert [type(n) for n in body] == [ast.ImportFrom, ast.FunctionDef], "one import, one handler"
    imp, fn = body
    assert imp.module == "acrsync.app" and [a.name for a in imp.names] == ["app_for"]
    assert fn.name == "handler" and [a.arg for a in fn.args.args] == ["event", "context"]
    (ret,) = fn.body
    call = ret.value
    assert isinstance(ret, ast.Return) and isinstance(call, ast.Call)
    assert isinstance(call.func, ast.Attribute) and call.func.attr.startswith("handle_")
    assert ast.unparse(call.func.value) == "app_for(context)"
    assert [ast.unparse(a) for a in call.args] == ["event", "context"]


@pytest.mark.parametrize("module", DECISIONS)
def test_a_decision_module_does_no_io_and_reads_no_clock(module):
    path = LIB / module
    bad = sorted(m for m in imports_of(path) if any(m == io or m.startswith(io + ".") for io in IO_MODULES))
    assert not bad, f"{module} imports {bad}: decisions take their inputs (and the time) as arguments"
    text = path.read_text(encoding="utf-8")
    for call in ("datetime.now(", "datetime.utcnow(", "date.today("):
        assert call not in text, f"{module} reads the clock ({call}); take `now` as an argument"


def test_localcloud_imports_nothing_from_acrsync():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "localcloud").rglob("*.py")
                 if any(m == "acrsync" or m.startswith("acrsync.") for m in imports_of(p))]
    assert offenders == [], "localcloud must stay an independent judge"
