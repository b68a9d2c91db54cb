"""Where the deployment lives and what a deployer exports: the constants the deployment tests share (their
fixtures are in tests/deploy/conftest.py). Every value here is made up: no real project, account or token."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
S_YAML = REPO_ROOT / "s.yaml"
HERE = Path(__file__).resolve().parent
# Vendored from devsapp/fc3 (provenance in tests/deploy/fc3/README.md).
FC3_SCHEMA = HERE / "fc3" / "props.schema.json"
# The pinned Serverless Devs CLI (package.json + package-lock.json with its integrity hash) and where it is
# installed: inside the clone, ignored by git, reused while the lock file is unchanged.
S_CLI_SPEC = HERE / "s_cli"
S_CLI_PREFIX = REPO_ROOT / ".tools" / "serverless-devs"
S_VERSION = "3.1.10"

# What a deployer exports before `s deploy`. Made-up values: no real project or token.
DEPLOY_ENV = {
    "ACRSYNC_WEBHOOK_TOKEN_SHA256": "0" * 16 + "made-up-digest",
    "ACRSYNC_LOG_PROJECT": "acrsync-test-logs",
}
# A made-up credential alias for the throwaway s home: `${config('AccountID')}` renders from it.
ACCESS = {"AccountID": "1111111111111111"}
FUNCTIONS = ("compliance", "on_push", "reconcile")
