"""Fixtures for the deployment tests: the repository root, s.yaml (raw and rendered) and the fc3 schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.s_render import load_raw, render

REPO_ROOT = Path(__file__).resolve().parents[2]
S_YAML = REPO_ROOT / "s.yaml"
# CI places a read-only copy of the shared research folder beside the clone.
FC3_SCHEMA = REPO_ROOT.parent / "shared" / "reference" / "fc3" / "props.schema.json"

# What a deployer exports before `s deploy`. Made-up values: no real project or token.
DEPLOY_ENV = {
    "ACRSYNC_WEBHOOK_TOKEN": "made-up-webhook-token-for-tests",
    "ACRSYNC_LOG_PROJECT": "acrsync-test-logs",
}
FUNCTIONS = ("compliance", "on_push", "reconcile")


@pytest.fixture(scope="session")
def raw() -> dict[str, Any]:
    return load_raw(S_YAML)


@pytest.fixture(scope="session")
def rendered(raw: dict[str, Any]) -> dict[str, Any]:
    return render(raw, DEPLOY_ENV)


@pytest.fixture(scope="session")
def fc3_schema() -> dict[str, Any]:
    if not FC3_SCHEMA.is_file():
        pytest.fail(f"the fc3 props schema is missing at {FC3_SCHEMA}; these tests expect the shared reference "
                    "folder beside the repository (../shared/reference/fc3/props.schema.json relative to "
                    f"{REPO_ROOT}). Copy or mount it there.")
    return json.loads(FC3_SCHEMA.read_text(encoding="utf-8"))
