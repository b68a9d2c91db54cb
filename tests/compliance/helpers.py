"""Helpers for compliance tests against localcloud: the App as the functions' role, config documents."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from acrsync.app import App
from acrsync.cloud import CloudSession, RetryPolicy
from acrsync.config import parse_config
from acrsync.ledger.factory import open_ledger
from tests.integration.e2e import config_doc
from tests.localcloud.conftest import A_KEY_ID, A_SECRET, FC_ROLE_ARN, SOURCE_REGION

FAST = RetryPolicy(max_attempts=3, base=0.01, cap=0.05, min_attempt=0.05)


def role_keys(cloud) -> tuple[str, str, str]:
    """Temporary keys of the functions' role acrsync-fc (its trust lets account A assume it, for tests)."""
    root = CloudSession.from_keys(A_KEY_ID, A_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url}, region=SOURCE_REGION,
                                  clock=cloud.world.clock)
    c = root.sts().assume_role(FC_ROLE_ARN, "acrsync-compliance-test", 3600)
    return c.access_key_id, c.access_key_secret, c.security_token


def make_app(cloud, tmp: Path, config: dict | None = None, **compliance) -> App:
    doc = config or config_doc(tmp / "ledger.db")
    if compliance:
        doc = {**doc, "compliance": {**doc.get("compliance", {}), **compliance}}
    cfg = parse_config(doc)
    key, secret, token = role_keys(cloud)
    session = CloudSession.from_keys(key, secret, token, env={"ACRSYNC_ENDPOINT": cloud.url}, policy=FAST,
                                     clock=cloud.world.clock, region=SOURCE_REGION)
    return App(cfg, session, open_ledger(cfg.ledger, session), clock=cloud.world.clock)


def fc_context(timeout: float = 300) -> SimpleNamespace:
    return SimpleNamespace(request_id="req-compliance", credentials=None, region=SOURCE_REGION,
                           function=SimpleNamespace(name="acrsync-compliance", timeout=timeout))
