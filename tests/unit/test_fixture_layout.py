"""Fixtures live in a conftest.py, which pytest loads by itself; shared values live in plain modules
(tests/demo_world.py, tests/ledger_world.py, ...). No test module imports a conftest: a fixture shared by
several folders belongs in tests/conftest.py, which every folder sees, not in one folder's conftest that
the others import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# The textual form (`from tests.x.conftest import ...`, also across a line break or in a string of code),
# then the syntax tree for every other spelling (`import tests.x.conftest`, `from tests.x import conftest`).
FROM_CONFTEST = re.compile(r"\bfrom\s+tests(\.\w+)*\.conftest\s+import\b")


def conftest_imports(source: str) -> list[str]:
    """Each import of a conftest module in ``source``, as written."""
    found = [m.group(0) for m in FROM_CONFTEST.finditer(source)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            named = any(a.name == "conftest" for a in node.names)
            if parts[0] == "tests" and (parts[-1] == "conftest" or named):
                found.append(f"from {node.module} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[-1] == "conftest"]
    return sorted(set(found))


@pytest.mark.parametrize("source", [
    "from tests.contract.conftest import ledger  # noqa: F401\n",
    "from tests.conftest import cloud\n",
    "from tests.localcloud.conftest import (\n    helper,\n)\n",
    "import tests.cli.conftest\n",
    "from tests.deploy import conftest\n",
])
def test_the_scan_finds_each_spelling_of_a_conftest_import(source):
    assert conftest_imports(source)


def test_the_scan_leaves_plain_modules_alone():
    assert conftest_imports("from tests.demo_world import ROOT\nfrom tests.ledger_world import OTS_INSTANCE\n"
                            "# fixtures come from tests/conftest.py\n") == []


def test_no_test_module_imports_a_conftest():
    offenders = {str(path.relative_to(TESTS.parent)): found
                 for path in sorted(TESTS.rglob("*.py"))
                 if path != Path(__file__).resolve()
                 and (found := conftest_imports(path.read_text(encoding="utf-8")))}
    assert offenders == {}


def test_the_scan_sees_the_whole_tests_folder():
    names = {p.name for p in TESTS.rglob("*.py")}
    assert {"conftest.py", "demo_world.py", "ledger_world.py", "test_ledger_contract.py"} <= names
