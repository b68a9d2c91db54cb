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


# A RAM user in account A for CLI runs (made-up demo keys that exist only in this test scenario): it has the
# functions' policy, and FC reads for the pipeline check.
CHECKER_KEY_ID, CHECKER_SECRET = "LTAIDEMOACCOUNTACHECK01", "made-up-demo-secret-account-a-checker"
FC_READ = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["fc:GetFunction", "fc:ListTriggers"],
                                          "Resource": "acs:fc:cn-hangzhou:1111111111111111:functions/*"}]}
PUSH_PATTERN = {"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted", "cr:Artifact:SynchronizationCompleted"]}


def scenario(*, functions: bool = False, compliance_timer: bool = True) -> dict:
    """scenarios/demo.yaml plus the checker user; with ``functions``, the three functions with their triggers
    (as s.yaml deploys them) and FC reads for the role and the user."""
    from tests.integration.e2e import scenario as demo

    doc = demo()
    account = next(a for a in doc["accounts"] if a["id"] == "1111111111111111")
    role = next(r for r in account["roles"] if r["name"] == "acrsync-fc")
    fc_access = next(p for p in role["policies"] if isinstance(p, dict) and p["name"] == "acrsync-fc-access")
    account.setdefault("policies", []).append({"name": "acrsync-checker-access", "document": fc_access["document"]})
    user_policies = ["acrsync-checker-access", "AliyunOTSFullAccess"]
    if functions:
        role["policies"].append({"name": "acrsync-fc-read", "document": FC_READ})
        account["policies"].append({"name": "acrsync-checker-fc-read", "document": FC_READ})
        user_policies.append("acrsync-checker-fc-read")
        by_name = {f["name"]: f for f in doc["functions"]}
        by_name["acrsync-on-push"]["triggers"] = [{"type": "eventbridge", "name": "acr-events",
                                                   "pattern": PUSH_PATTERN}]
        by_name["acrsync-reconcile"]["triggers"] = [{"type": "timer", "name": "every-10-minutes",
                                                     "cron": "0 */10 * * * *", "payload": '{"mode":"reconcile"}'}]
        doc["functions"].append({**by_name["acrsync-reconcile"], "name": "acrsync-compliance",
                                 "code": "functions/compliance", "triggers": [
                                     {"type": "timer", "name": "hourly", "cron": "0 0 * * * *",
                                      "payload": '{"mode":"compliance"}', "enabled": compliance_timer}]})
    account.setdefault("users", []).append({"name": "acrsync-checker", "access_keys": [
        {"id": CHECKER_KEY_ID, "secret": CHECKER_SECRET}], "policies": user_policies})
    return doc


def cli_env(cloud, tmp: Path, monkeypatch, config: dict | None = None, **compliance) -> Path:
    """A config file and the environment for the CLI as the checker RAM user; returns the config path."""
    import json

    doc = config or config_doc(tmp / "ledger.db")
    if compliance:
        doc = {**doc, "compliance": {**doc.get("compliance", {}), **compliance}}
    path = tmp / "acrsync.yaml"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("ACRSYNC_ENDPOINT", cloud.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CHECKER_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CHECKER_SECRET)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    monkeypatch.setenv("ACRSYNC_CONFIG", str(path))
    return path
