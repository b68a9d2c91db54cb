"""Worlds and helpers for backfill and rule-advisor tests: the demo scenario plus a bulk namespace of existing
images, and a RAM user of account A for the CLI (localcloud refuses root keys for AssumeRole, as production
would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from localcloud.server import LocalCloud
from tests.demo_world import ACCOUNT_A, ROOT, SOURCE_INSTANCE, TARGET_INSTANCE  # noqa: F401 (for the tests)
from tests.integration.e2e import config_doc, scenario

# Made-up demo keys of a RAM user that exists only inside localcloud.
CLI_KEY_ID, CLI_SECRET = "LTAIDEMOACCOUNTABACKFILL1", "made-up-demo-secret-account-a-backfill-user"
CLI_POLICY = {
    "Version": "1",
    "Statement": [
        {"Effect": "Allow", "Action": ["cr:Get*", "cr:List*", "cr:CreateRepositorySync", "cr:CreateSyncRule"],
         "Resource": ["acs:cr:*:1111111111111111:instance/*", "acs:cr:*:1111111111111111:repository/*"]},
        # The API reference authorises these on "All Resources" only (ListNamespace, ListRepoTag,
        # CreateRepoSyncTaskByRule): a statement on "*" grants them, an instance or repository ARN does not.
        {"Effect": "Allow", "Action": ["cr:ListNamespace", "cr:ListRepositoryTag", "cr:PullRepository"],
         "Resource": "*"},
        {"Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": ["acs:ram::2222222222222222:role/acrsync-reader",
                      "acs:ram::3333333333333333:role/acrsync-reader"]},
        {"Effect": "Allow", "Action": "fc:InvokeFunction",
         "Resource": "acs:fc:*:1111111111111111:functions/*"},
    ],
}


def digest(*parts: object) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def bulk_world(repos: int, tags: int, *, namespace: str = "bulk", pending: float = 0.2,
               synchronizing: float = 0.3) -> dict:
    """The demo scenario, a CLI user, and ``repos`` x ``tags`` existing images in ``namespace``."""
    sc = scenario()
    acc = sc["accounts"][0]
    acc.setdefault("policies", []).append({"name": "acrsync-backfill-cli", "document": CLI_POLICY})
    acc["users"].append({"name": "acrsync-backfill",
                         "access_keys": [{"id": CLI_KEY_ID, "secret": CLI_SECRET}],
                         "policies": ["acrsync-backfill-cli"]})
    src = next(i for i in sc["instances"] if i["id"] == SOURCE_INSTANCE)
    src["namespaces"].append({"name": namespace, "auto_create_repo": True, "repos": [
        {"name": f"app{r:03d}", "tags": [{"tag": f"v{t}", "digest": digest(namespace, r, t), "size": 1000 + t}
                                         for t in range(tags)]} for r in range(repos)]})
    dst = next(i for i in sc["instances"] if i["id"] == TARGET_INSTANCE)
    dst["namespaces"].append({"name": namespace, "auto_create_repo": True})
    sc["settings"]["sync"] = {"pending_seconds": pending, "synchronizing_seconds": synchronizing}
    return sc


def write_config(tmp_path: Path, *, namespaces: list[str], tag_filter: str = ".*",
                 backfill: dict | None = None,
                 **target) -> Path:
    doc = config_doc(tmp_path / "ledger.db", namespaces=namespaces, tag_filter=tag_filter, **target)
    if backfill:
        doc["backfill"] = backfill
    path = tmp_path / "acrsync.yaml"
    path.write_text(json.dumps(doc))
    return path


def cli_env(cloud_url: str, config: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ACRSYNC_"))}
    env.update({"ACRSYNC_ENDPOINT": cloud_url, "ALIBABA_CLOUD_ACCESS_KEY_ID": CLI_KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CLI_SECRET, "ACRSYNC_CONFIG": str(config),
                "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "PYTHONPATH": str(ROOT / "shared")})
    return env


def run_cli(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acrsync", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT))


def manual_tasks(cloud: LocalCloud, target_instance: str = TARGET_INSTANCE) -> list:
    """localcloud's own record of the manual (acrsync-made) tasks toward a target: the independent judge."""
    backend = cloud.world.backends["acr"]
    with cloud.world.lock:
        return [t for t in backend.tasks.values() if not t.rule_id
                and t.target_instance_id == target_instance]
