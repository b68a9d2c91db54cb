"""Helpers for end-to-end tests: an acrsync App wired to a localcloud, on the emulator's clock."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import yaml

from acrsync.app import App
from acrsync.cloud import CloudSession, RetryPolicy
from acrsync.config import parse_config
from acrsync.ledger.factory import open_ledger
from tests.demo_world import (
    ACCOUNT_A,
    ACCOUNT_B,
    CLI_KEY_ID,
    CLI_SECRET,
    DEMO_SCENARIO,
    READER_ROLE_ARN,
    SOURCE_INSTANCE,
    SOURCE_REGION,
    TARGET_INSTANCE,
    TARGET_REGION,
    control,
)

FAST = RetryPolicy(max_attempts=6, base=0.01, cap=0.05, min_attempt=0.05)


def config_doc(ledger_path: Path, **target_overrides) -> dict:
    target = {"name": "beijing", "account_id": ACCOUNT_B, "region": TARGET_REGION,
              "instance_id": TARGET_INSTANCE, "namespaces": ["team-a", "team-b"], "tag_filter": r"v.*",
              "reader_role_arn": READER_ROLE_ARN}
    target.update(target_overrides)
    return {
        "source": {"account_id": ACCOUNT_A, "region": SOURCE_REGION, "instance_id": SOURCE_INSTANCE},
        "targets": [target],
        "ledger": {"backend": "sqlite", "path": str(ledger_path)},
        "reconcile": {"backoff_base_seconds": 30, "backoff_max_seconds": 120, "stuck_after_seconds": 600,
                      "max_attempts": 3},
    }


def scenario() -> dict:
    """The demo scenario as a dict, for tests that break one thing in it."""
    return copy.deepcopy(yaml.safe_load(Path(DEMO_SCENARIO).read_text()))


def make_app(cloud, ledger_path: Path, *, config: dict | None = None, policy: RetryPolicy = FAST) -> App:
    cfg = parse_config(config or config_doc(ledger_path))
    session = CloudSession.from_keys(CLI_KEY_ID, CLI_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                     policy=policy, clock=cloud.world.clock, region=SOURCE_REGION)
    return App(cfg, session, open_ledger(cfg.ledger, session), clock=cloud.world.clock)


def fc_context(timeout: float = 120, request_id: str = "req-test") -> SimpleNamespace:
    return SimpleNamespace(request_id=request_id, credentials=None, region=SOURCE_REGION,
                           function=SimpleNamespace(name="on_push", timeout=timeout))


def push_event(cloud, namespace: str, repo: str, tag: str, digest: str | None = None) -> bytes:
    """Push through localcloud's control API; return the CloudEvent it emitted, as FC would hand it over."""
    result = cloud.push(SOURCE_INSTANCE, namespace, repo, tag, digest)
    return json.dumps(result["event"]).encode()


def tasks_for(cloud, repo: str, tag: str) -> list:
    """localcloud's own view of the tasks for one tag (the independent judge), oldest first."""
    backend = cloud.world.backends["acr"]
    with cloud.world.lock:
        backend.settle()
        return sorted((t for t in backend.tasks.values() if t.repo == repo and t.tag == tag),
                      key=lambda t: t.seq)


def acr_control(cloud, op: str, body: dict) -> dict:
    """POST to localcloud's ACR control API over HTTP, as the demo and users do."""
    return control(cloud, f"acr/{op}", body)


def cli_config(cloud, tmp_path: Path, monkeypatch) -> Path:
    """A config file for the CLI, and the environment pointing it at ``cloud`` as the RAM user acrsync-cli."""
    cfg = tmp_path / "acrsync.yaml"
    cfg.write_text(json.dumps(config_doc(tmp_path / "ledger.db")))
    monkeypatch.setenv("ACRSYNC_ENDPOINT", cloud.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CLI_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CLI_SECRET)
    return cfg
