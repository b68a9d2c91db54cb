"""What a cold on_push instance imports (docs/BENCHMARKS.md, "Cold start"): ``index`` loads the push path
only. The grant check, its fixes and apply, the policy analyser, reconcile, the CLI and the other
functions' modules load when something uses them, and the pydantic models a push never validates are
built on first use (``defer_build``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import acrsync
import acrsync.grants

ROOT = Path(acrsync.__file__).resolve().parents[2]

# Modules a later cold instance (it reads the shared grant verdict) never needs, and that cost it imports.
NOT_ON_THE_PUSH_PATH = [
    "acrsync.grants.apply", "acrsync.grants.fixes", "acrsync.grants.check", "acrsync.policy",
    "acrsync.reconcile", "acrsync.cli", "acrsync.compliance", "acrsync.backfill", "acrsync.demo",
    "acrsync.packaging", "acrsync.rule_advisor", "acrsync.drift",
    "typer", "rich", "pygments", "jinja2", "click",
]
DEFERRED = [
    "acrsync.model.InstanceInfo", "acrsync.model.NamespaceInfo", "acrsync.model.TagInfo",
    "acrsync.model.SyncTask", "acrsync.model.ImageSide", "acrsync.model.RoleInfo", "acrsync.model.PolicyRef",
    "acrsync.model.PolicyInfo",
    "acrsync.model.CallerIdentity", "acrsync.records.ErrorInfo", "acrsync.records.RejectedEvent",
    "acrsync.records.Report", "acrsync.records.Checkpoint", "acrsync.events.SyncCompleted",
    "acrsync.events.TimerTick", "acrsync.events.Rejected", "acrsync.grants.findings.Finding",
    "acrsync.grants.findings.Fix", "acrsync.grants.findings.Evidence", "acrsync.grants.findings.PolicyName",
    "acrsync.ledger.limits.Slots", "acrsync.ledger.limits.Bucket",
]

PROBE = r"""
import importlib, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import index
complete = {}
for name in json.loads(sys.argv[3]):
    module, cls = name.rsplit(".", 1)
    complete[name] = getattr(importlib.import_module(module), cls).__pydantic_complete__
print(json.dumps({"modules": sorted(sys.modules), "complete": complete,
                  "acrsync": importlib.import_module("acrsync").__file__}))
"""


@pytest.fixture(scope="module")
def cold() -> dict:
    """A fresh isolated interpreter (no PYTHON* variables, no script directory) importing on_push's index."""
    proc = subprocess.run([sys.executable, "-I", "-c", PROBE, str(ROOT / "functions" / "on_push"),
                           str(ROOT / "shared"), json.dumps(DEFERRED)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_probe_imports_this_checkout(cold):
    assert Path(cold["acrsync"]).resolve() == Path(acrsync.__file__).resolve()
    assert {"acrsync.app", "acrsync.push", "acrsync.events", "acrsync.grants.cache"} <= set(cold["modules"])


@pytest.mark.parametrize("name", NOT_ON_THE_PUSH_PATH)
def test_importing_on_push_leaves_out(cold, name):
    loaded = [m for m in cold["modules"] if m == name or m.startswith(name + ".")]
    assert loaded == [], f"importing functions/on_push/index.py loads {loaded}"


def test_models_a_push_never_validates_are_built_on_first_use(cold):
    assert [name for name, complete in cold["complete"].items() if complete] == []


def test_a_deferred_model_validates_as_before():
    from acrsync.model import SyncTask

    task = SyncTask.model_validate({"task_id": "t-1", "status": "SUCCESS", "source": {"tag": "v1"}})
    assert task.source.tag == "v1" and task.target.tag == ""
    with pytest.raises(ValueError, match="status"):
        SyncTask.model_validate({"task_id": "t-1"})


def test_the_grants_package_surface_resolves_lazily_to_its_modules():
    from acrsync.grants import apply, cache, check, findings, fixes

    homes = {"apply": apply, "cache": cache, "check": check, "findings": findings}
    for name in acrsync.grants.__all__:
        value = getattr(acrsync.grants, name)
        if name == "fixes":
            assert value is fixes
        else:
            assert any(getattr(m, name, None) is value for m in homes.values()), name
    assert set(acrsync.grants.__all__) <= set(dir(acrsync.grants))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = acrsync.grants.no_such_name
