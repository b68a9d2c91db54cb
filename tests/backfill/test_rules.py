"""`acrsync rules plan | apply` against localcloud, and what on_push does before and after a rule."""

from __future__ import annotations

import json
import os
import time

import pytest
from typer.testing import CliRunner

from acrsync.app import App
from acrsync.cli import app
from acrsync.cloud import CloudSession
from acrsync.config import parse_config
from acrsync.ledger import Status
from acrsync.ledger.factory import open_ledger
from tests.backfill.world import CLI_KEY_ID, CLI_SECRET, SOURCE_INSTANCE, bulk_world, write_config
from tests.integration.e2e import FAST, fc_context, push_event, tasks_for

runner = CliRunner()


def _env(monkeypatch, cloud, cfg):
    for k in [k for k in os.environ if k.startswith(("ALIBABA_CLOUD_", "ACRSYNC_"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("ACRSYNC_ENDPOINT", cloud.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CLI_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CLI_SECRET)
    monkeypatch.setenv("ACRSYNC_CONFIG", str(cfg))


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def rules_of(cloud) -> list:
    return cloud.world.backends["acr"].rules_of(SOURCE_INSTANCE)


@pytest.fixture
def world(cloud_factory, tmp_path, monkeypatch):
    def make(scenario=None, **cfg_kw):
        cloud = cloud_factory(scenario or bulk_world(2, 3), clock="wall")
        cfg_kw.setdefault("namespaces", ["team-a", "team-b", "bulk"])
        cfg_kw.setdefault("tag_filter", "v.*")
        cfg = write_config(tmp_path, backfill={"qps": 200}, **cfg_kw)
        _env(monkeypatch, cloud, cfg)
        return cloud, cfg
    return make


def test_plan_proposes_namespace_rules_skips_covered_and_counts_the_backfill_left(world):
    cloud, _ = world()
    r = invoke("rules", "plan", "--target", "beijing", "-o", "json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    by_ns = {p["namespace"]: p for p in plan["proposals"]}
    assert set(by_ns) == {"team-a", "bulk"}
    assert by_ns["team-a"]["scope"] == "NAMESPACE" and by_ns["team-a"]["repo_filter"] is None
    assert by_ns["team-a"]["tag_filter"] == "v.*" and by_ns["team-a"]["target_user_id"] == "2222222222222222"
    assert plan["already_covered"] == ["team-b/batch"]         # the scenario's team-b rule
    # team-a/web:v1.1.0, the bulk images, and team-b/batch:v3: pushed before the team-b rule was created
    # (on this wall clock), so the rule never copied it
    assert plan["backfill_remaining"] == 1 + 2 * 3 + 1
    assert "never" in r.stdout or "only images pushed after" in plan["note"]
    assert len(rules_of(cloud)) == 1


def test_rule_limit_from_config_keeps_proposals_within_it(world, tmp_path):
    _, cfg = world()
    doc = json.loads(cfg.read_text())
    doc["rules"] = {"max_rules_per_instance": 2}               # one exists already: room for one more
    cfg.write_text(json.dumps(doc))
    plan = json.loads(invoke("rules", "plan", "--target", "beijing", "-o", "json").stdout)
    assert len(plan["proposals"]) == 1 and plan["rule_limit"] == 2
    assert any("limit is 2" in u["reason"] for u in plan["unmet"])


def test_blocked_grants_propose_nothing_and_name_the_finding(world, tmp_path):
    _, cfg = world()
    doc = json.loads(cfg.read_text())
    doc["targets"] = [{"name": "drsite", "account_id": "3333333333333333", "region": "cn-shanghai",
                       "instance_id": "cri-demodrsite01", "namespaces": ["team-a"],
                       "reader_role_arn": "acs:ram::3333333333333333:role/acrsync-reader"}]
    cfg.write_text(json.dumps(doc))
    r = invoke("rules", "plan", "--target", "drsite", "-o", "json")
    assert r.exit_code == 1
    plan = json.loads(r.stdout)
    assert plan["proposals"] == [] and plan["blocked_by"]["code"]


def test_apply_is_idempotent_and_never_deletes_a_rule_it_did_not_create(world):
    cloud, _ = world()
    foreign = [r.rule_id for r in rules_of(cloud)]
    assert invoke("rules", "apply", "--target", "beijing").exit_code == 0      # no --yes: nothing changes
    assert len(rules_of(cloud)) == 1
    r = invoke("rules", "apply", "--target", "beijing", "--yes", "-o", "json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["created"]) == 2
    again = json.loads(invoke("rules", "apply", "--target", "beijing", "--yes", "-o", "json").stdout)
    assert again["created"] == []
    ids = [r.rule_id for r in rules_of(cloud)]
    assert len(ids) == 3 and set(foreign) <= set(ids)


def test_push_before_the_rule_gets_an_acrsync_task_after_it_only_the_rule_task(world, tmp_path):
    cloud, cfg = world(namespaces=["team-a"])
    config = parse_config({**json.loads(cfg.read_text()), "rules_cache_ttl_seconds": 0})
    session = CloudSession.from_keys(CLI_KEY_ID, CLI_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url}, policy=FAST,
                                     region="cn-hangzhou")
    fn = App(config, session, open_ledger(config.ledger, session))

    fn.handle_on_push(push_event(cloud, "team-a", "web", "v7.0.0"), fc_context())
    before = tasks_for(cloud, "web", "v7.0.0")
    assert [t.rule_id for t in before] == [""]                 # one manual task: acrsync's

    assert invoke("rules", "apply", "--target", "beijing", "--yes").exit_code == 0
    # Event times have second precision (the documented sample): a push in the rule's own second cannot be
    # told from one just before it, and acrsync replicates that one itself. One second later it is clear.
    time.sleep(1.05)
    summary = fn.handle_on_push(push_event(cloud, "team-a", "web", "v8.0.0"), fc_context())
    after = tasks_for(cloud, "web", "v8.0.0")
    assert len(after) == 1 and after[0].rule_id and after[0].trigger == "PASSIVE"
    assert summary["targets"]["beijing"]["covered"] == 1 and summary["targets"]["beijing"]["created"] == 0
    rec = next(r for r in fn.ledger.all_records() if r.image.tag == "v8.0.0")
    assert rec.status is Status.COVERED and rec.rule_id == after[0].rule_id
