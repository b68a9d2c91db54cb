"""The cloud boundary (docs/ARCHITECTURE.md invariants): every SDK call is made inside ``acrsync.cloud``,
Tablestore included, and the Tablestore adapter calls exactly the operations it declares."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import acrsync
import acrsync.cloud
from acrsync.cloud import ots
from acrsync.cloud.permissions import DECLARATIONS

PACKAGE = Path(acrsync.__file__).parent
FUNCTIONS = PACKAGE.parent.parent / "functions"
CLOUD = Path(acrsync.cloud.__file__).parent
# Packages that make cloud calls: the OpenAPI clients, their runtime, and the Tablestore SDK.
SDK_ROOTS = ("alibabacloud_cr20181201", "alibabacloud_ram20150501", "alibabacloud_sts20150401",
             "alibabacloud_fc20230330", "alibabacloud_tea_openapi", "darabonba", "Tea", "tablestore")
# alibabacloud_credentials resolves keys (the CLI's --profile); it is not an API client.


def sdk_uses(source: str) -> list[str]:
    """SDK imports and SDK calls in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in SDK_ROOTS]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in SDK_ROOTS:
            found.append(node.module)
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if re.search(r"_with_options(_async)?$", name) or name == "OTSClient":
                found.append(f"{name}()")
    return found


def modules_outside_cloud() -> list[Path]:
    files = [p for p in PACKAGE.rglob("*.py") if CLOUD not in p.parents]
    return sorted(files + list(FUNCTIONS.rglob("*.py")))


def test_no_module_outside_cloud_imports_or_calls_an_sdk():
    files = modules_outside_cloud()
    assert PACKAGE / "ledger" / "tablestore.py" in files and len(files) > 30
    offenders = {str(p.relative_to(PACKAGE.parent.parent)): uses
                 for p in files if (uses := sdk_uses(p.read_text(encoding="utf-8")))}
    assert offenders == {}


def test_the_scan_catches_sdk_use():
    assert sdk_uses("from tablestore import OTSClient\nc = OTSClient('e', 'k', 's', 'i')") == [
        "tablestore", "OTSClient()"]
    assert sdk_uses("import alibabacloud_cr20181201.client") == ["alibabacloud_cr20181201.client"]
    assert sdk_uses("client.get_repo_tag_with_options(req, runtime)") == ["get_repo_tag_with_options()"]
    assert sdk_uses("from acrsync.cloud.ots import Row\nself.ots.put_row(t, r, c)") == []


def ots_operations() -> set[str]:
    """The Tablestore operations the adapter calls, as written in its calls through the session."""
    source = (CLOUD / "ots.py").read_text(encoding="utf-8")
    direct = re.findall(r'self\._call\(\s*"([A-Za-z]+)"', source)
    batched = re.findall(r'session\.call\(\s*"ots",\s*"([A-Za-z]+)"', source)
    return set(direct) | set(batched)


def test_the_tablestore_adapter_calls_exactly_what_it_declares():
    declared = {d.api_action for d in DECLARATIONS if d.service == "ots"}
    assert ots_operations() == declared
    assert "ListTable" not in declared


@pytest.mark.parametrize("operation", sorted({d.api_action for d in DECLARATIONS if d.service == "ots"}))
def test_every_declared_tablestore_operation_is_an_sdk_method(operation):
    method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
    assert callable(getattr(ots.OTSClient, method, None)), f"OTSClient has no {method}"


@pytest.mark.parametrize("module", ["records.py", "model.py", "roles.py", "events.py", "lifecycle.py",
                                    "scope.py", "coverage.py", "failures.py", "policy.py"])
def test_domain_modules_import_no_storage(module):
    """The ledger imports the domain types, never the reverse."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.startswith(("acrsync.ledger", "acrsync.cloud.clients", "sqlite3"))}
