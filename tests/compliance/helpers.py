"""Helpers for compliance tests against localcloud: the demo world plus a RAM user in account A that runs
acrsync (CLI and App alike; never an account's root key), its config, and an App wired to it.

Every account, key and id here is made up; the checker user and its key exist only in these test worlds.
"""

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

ROOT = Path(__file__).resolve().parents[2]
DEMO_SCENARIO = ROOT / "scenarios" / "demo.yaml"
EVENTS = ROOT / "events"
ACCOUNT_A, ACCOUNT_B = "1111111111111111", "2222222222222222"
SOURCE_INSTANCE, SOURCE_REGION = "cri-demosource01", "cn-hangzhou"
TARGET_INSTANCE, TARGET_REGION = "cri-demotarget01", "cn-beijing"
READER_ROLE_ARN = f"acs:ram::{ACCOUNT_B}:role/acrsync-reader"
FC_ROLE = "acrsync-fc"
FAST = RetryPolicy(max_attempts=3, base=0.01, cap=0.05, min_attempt=0.05)

# A RAM user in account A (made-up demo key, test worlds only) with what the functions' role needs for a
# compliance run, and FC reads for the pipeline check.
CHECKER_KEY_ID, CHECKER_SECRET = "LTAIDEMOACCOUNTACHECK01", "made-up-demo-secret-account-a-checker"
CHECKER_ACCESS = {"Version": "1", "Statement": [
    {"Effect": "Allow", "Action": ["cr:Get*", "cr:List*", "cr:CreateRepositorySync", "cr:PullRepository"],
     "Resource": "*"},
    {"Effect": "Allow", "Action": "sts:AssumeRole",
     "Resource": [READER_ROLE_ARN, "acs:ram::3333333333333333:role/*"]},
]}
FC_READ = {"Version": "1", "Statement": [{"Effect": "Allow",
                                          "Action": ["fc:GetFunction", "fc:ListTriggers",
                                                     "fc:InvokeFunction"],
                                          "Resource": f"acs:fc:{SOURCE_REGION}:{ACCOUNT_A}:functions/*"}]}
PUSH_PATTERN = {"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted",
                                               "cr:Artifact:SynchronizationCompleted"]}


def scenario(*, functions: bool = False, compliance_timer: bool = True) -> dict:
    """scenarios/demo.yaml plus the checker user; with ``functions``, the three functions with their triggers
    (as s.yaml deploys them) and FC reads for the functions' role and the user."""
    doc = copy.deepcopy(yaml.safe_load(DEMO_SCENARIO.read_text()))
    account = next(a for a in doc["accounts"] if a["id"] == ACCOUNT_A)
    account.setdefault("policies", []).append({"name": "acrsync-checker-access", "document": CHECKER_ACCESS})
    user_policies = ["acrsync-checker-access"]
    if functions:
        role = next(r for r in account["roles"] if r["name"] == FC_ROLE)
        role["policies"].append({"name": "acrsync-fc-read", "document": FC_READ})
        account["policies"].append({"name": "acrsync-checker-fc-read", "document": FC_READ})
        user_policies.append("acrsync-checker-fc-read")
        by_name = {f["name"]: f for f in doc["functions"]}
        by_name["acrsync-on-push"]["triggers"] = [{"type": "eventbridge", "name": "acr-events",
                                                   "pattern": PUSH_PATTERN}]
        by_name["acrsync-reconcile"]["triggers"] = [{"type": "timer", "name": "every-10-minutes",
                                                     "cron": "0 */10 * * * *",
                                                     "payload": '{"mode":"reconcile"}'}]
        doc["functions"].append({**by_name["acrsync-reconcile"], "name": "acrsync-compliance",
                                 "code": "functions/compliance", "triggers": [
                                     {"type": "timer", "name": "hourly", "cron": "0 0 * * * *",
                                      "payload": '{"mode":"compliance"}', "enabled": compliance_timer}]})
    account.setdefault("users", []).append({"name": "acrsync-checker", "access_keys": [
        {"id": CHECKER_KEY_ID, "secret": CHECKER_SECRET}], "policies": user_policies})
    return doc


def config_doc(ledger_path: Path, **target_overrides) -> dict:
    target = {"name": "beijing", "account_id": ACCOUNT_B, "region": TARGET_REGION,
              "instance_id": TARGET_INSTANCE, "namespaces": ["team-a", "team-b"], "tag_filter": r"v.*",
              "reader_role_arn": READER_ROLE_ARN}
    target.update(target_overrides)
    return {"source": {"account_id": ACCOUNT_A, "region": SOURCE_REGION, "instance_id": SOURCE_INSTANCE},
            "targets": [target], "ledger": {"backend": "sqlite", "path": str(ledger_path)}}


def session(cloud, **kw) -> CloudSession:
    """A session as the checker user (``kw``: e.g. ``timeouts``)."""
    return CloudSession.from_keys(CHECKER_KEY_ID, CHECKER_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                  policy=FAST,
                                  clock=cloud.world.clock, region=SOURCE_REGION, **kw)


def make_app(cloud, tmp: Path, config: dict | None = None, **compliance) -> App:
    """An App as the checker user, on the emulator's clock."""
    doc = config or config_doc(tmp / "ledger.db")
    if compliance:
        doc = {**doc, "compliance": {**doc.get("compliance", {}), **compliance}}
    cfg = parse_config(doc)
    s = session(cloud)
    return App(cfg, s, open_ledger(cfg.ledger, s), clock=cloud.world.clock)


def fc_context(timeout: float = 300) -> SimpleNamespace:
    return SimpleNamespace(request_id="req-compliance", credentials=None, region=SOURCE_REGION,
                           function=SimpleNamespace(name="acrsync-compliance", timeout=timeout))


def cli_env(cloud, tmp: Path, monkeypatch, config: dict | None = None, **compliance) -> Path:
    """A config file and the environment for the CLI as the checker RAM user; returns the config path."""
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
