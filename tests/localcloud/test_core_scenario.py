"""Scenario loading, validation messages, the clock and authorization (pure: no HTTP)."""

from __future__ import annotations

import copy
import time

import pytest
import yaml

from localcloud import authz
from localcloud.clock import Clock, iso, parse_iso
from localcloud.scenario import ScenarioError, build_world, parse
from localcloud.service import Caller, RequestContext, ServiceError
from tests.demo_world import ACCOUNT_A, ACCOUNT_B, DEMO_SCENARIO, START_TIME, SYNC_ROLE

DEMO = yaml.safe_load(DEMO_SCENARIO.read_text())


def world_of(doc: dict):
    return build_world(parse(doc), Clock("manual", parse_iso(START_TIME)))


def problems_of(doc: dict) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        world_of(doc)
    return err.value.problems


def test_demo_world():
    world = world_of(DEMO)
    assert set(world.accounts) == {ACCOUNT_A, ACCOUNT_B, "3333333333333333"}
    assert SYNC_ROLE not in world.accounts["3333333333333333"].roles   # account C: grant not set up yet
    role = world.accounts[ACCOUNT_B].roles[SYNC_ROLE]
    assert role.attached == [("acr-cross-account-sync-from-a", "Custom")]
    fc = world.accounts[ACCOUNT_A].roles["acrsync-fc"]
    assert fc.attached == [("acrsync-access", "Custom")]
    # the CLI's RAM user: never a root key
    cli_user = world.accounts[ACCOUNT_A].users["acrsync-cli"]
    assert cli_user["policies"] == ["acrsync-access", "acrsync-cli-access"]
    web = world.instances["cri-demosource01"].namespaces["team-a"].repos["web"]
    assert web.repo_id.startswith("crr-") and web.tags["v1.0.0"].digest == "1a" * 32
    assert len(web.tags["latest"].digest) == 64
    target_web = world.instances["cri-demotarget01"].namespaces["team-a"].repos["web"]
    assert target_web.tags["v1.0.0"].digest == web.tags["v1.0.0"].digest
    assert world.settings["sync"] == {"pending_seconds": 2, "synchronizing_seconds": 5}


def test_declared_images_predate_the_declared_rules():
    # A rule copies only pushes made after it exists; images a scenario declares were never copied by one.
    world = world_of(DEMO)
    batch = world.instances["cri-demosource01"].namespaces["team-b"].repos["batch"].tags["v3"]
    (rule,) = [r for r in world.backends["acr"].rules.values() if r.namespace == "team-b"]
    assert batch.updated_ms < rule.created * 1000 < parse_iso(START_TIME) * 1000


def test_ids_and_generated_digests_are_stable():
    one, two = world_of(DEMO), world_of(DEMO)
    a = one.instances["cri-demosource01"].namespaces["team-a"]
    b = two.instances["cri-demosource01"].namespaces["team-a"]
    assert a.namespace_id == b.namespace_id
    assert a.repos["api"].repo_id == b.repos["api"].repo_id
    assert a.repos["api"].tags["1.0"].digest == b.repos["api"].tags["1.0"].digest
    assert a.repos["api"].tags["1.0"].digest != a.repos["api"].tags["1.1"].digest
    assert one.accounts[ACCOUNT_B].roles[SYNC_ROLE].role_id \
        == two.accounts[ACCOUNT_B].roles[SYNC_ROLE].role_id


def test_undeclared_account_is_named_with_its_path():
    doc = copy.deepcopy(DEMO)
    doc["instances"][1]["account"] = "3333"
    assert "instances[1].account: account 3333 is not declared under accounts" in problems_of(doc)


def test_structure_errors_carry_paths():
    doc = copy.deepcopy(DEMO)
    doc["instances"][0]["edition"] = "Enterprise_Platinum"
    doc["accounts"][0]["access_keys"][0].pop("secret")
    doc["instances"][0]["namespaces"][0]["repos"][0]["colour"] = "blue"
    problems = problems_of(doc)
    assert any(p.startswith("instances[0].edition:") for p in problems)
    assert any(p.startswith("accounts[0].access_keys[0].secret:") for p in problems)
    assert any(p.startswith("instances[0].namespaces[0].repos[0].colour:") for p in problems)


def test_cross_checks():
    doc = copy.deepcopy(DEMO)
    doc["accounts"][1]["access_keys"][0]["id"] = doc["accounts"][0]["access_keys"][0]["id"]
    doc["accounts"][0]["users"][0]["policies"].append("NoSuchPolicy")
    doc["instances"][0]["namespaces"][0]["repos"][0]["tags"][0]["digest"] = "sha256:xyz"
    doc["instances"][0]["namespaces"].append({"name": "team-a"})
    problems = "\n".join(problems_of(doc))
    assert "accounts[1].access_keys[0].id: access key LTAIDEMOACCOUNTAROOT0001 is already used" in problems
    assert "accounts[0].users[0].policies[2]: policy NoSuchPolicy" in problems
    assert "instances[0].namespaces[0].repos[0].tags[0].digest" in problems
    assert "instances[0].namespaces[2].name: namespace team-a is declared twice" in problems


def test_ram_rules_apply_to_scenarios():
    doc = {"accounts": [{"id": "1", "roles": [{"name": "bad role", "trust_policy": "{}"}]}]}
    [problem] = problems_of(doc)
    assert problem.startswith("accounts[0].roles[0]: InvalidParameter.RoleName")
    doc = {"accounts": [{"id": "1",
                         "policies": [{"name": "p", "document": {"Version": "2", "Statement": []}}]}]}
    [problem] = problems_of(doc)
    assert problem.startswith("accounts[0].policies[0]: MalformedPolicyDocument")


def test_unreadable_files(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        parse(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("accounts: [\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        parse(broken)


def test_clock_modes():
    manual = Clock("manual", 1000.0)
    assert manual.now() == 1000.0
    assert manual.advance(5) == 1005.0 and manual.now() == 1005.0
    with pytest.raises(ValueError):
        manual.advance(-1)
    wall = Clock("wall", 0.0)          # a wall clock ignores the start time
    before = wall.now()
    assert abs(before - time.time()) < 5
    assert wall.advance(3600) >= before + 3600
    assert iso(parse_iso("2026-11-28T01:02:03Z")) == "2026-11-28T01:02:03Z"
    with pytest.raises(ValueError):
        Clock("sundial")


def ctx_for(world, caller: Caller) -> RequestContext:
    return RequestContext(world, caller, "Test", authorizer=authz.check)


def test_authz_root_owns_its_account_only():
    world = world_of(DEMO)
    root_a = Caller(ACCOUNT_A, "k", "root")
    ctx_for(world, root_a).authorize("cr:GetInstance",
                                     f"acs:cr:cn-hangzhou:{ACCOUNT_A}:instance/cri-demosource01")
    ctx_for(world, root_a).authorize("sts:AssumeRole", f"acs:ram::{ACCOUNT_B}:role/acrsync-reader")
    with pytest.raises(ServiceError) as err:
        ctx_for(world, root_a).authorize("cr:GetInstance",
                                         f"acs:cr:cn-beijing:{ACCOUNT_B}:instance/cri-demotarget01")
    assert (err.value.status, err.value.code, err.value.message) == (403, "NoPrivilege", "Access denied for "
                                                                                         "this user.")


def test_authz_user_policies_and_codes_per_service():
    world = world_of(DEMO)
    operator = Caller(ACCOUNT_A, "k", "user", name="acrsync-operator")
    ctx_for(world, operator).authorize("cr:ListRepository", "acs:cr:cn-hangzhou:1:repository/cri-x/*")
    with pytest.raises(ServiceError) as err:
        ctx_for(world, operator).authorize("cr:CreateRepositorySync", "acs:cr:cn-hangzhou:1:repository/cri-x")
    assert err.value.code == "NoPrivilege"
    with pytest.raises(ServiceError) as err:
        ctx_for(world, operator).authorize("ram:CreateRole", f"acs:ram::{ACCOUNT_A}:role/x")
    assert err.value.code == "NoPermission"
    assert err.value.extra["AccessDeniedDetail"]["AuthPrincipalType"] == "SubUser"
