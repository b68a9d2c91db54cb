"""GrantCache TTLs on a manual clock, and the apply plan against in-memory fakes of the Ram and Acr
adapters."""

from __future__ import annotations

import dataclasses
import json

import pytest

from acrsync import policy as P
from acrsync.clock import ManualClock
from acrsync.config import GrantsConfig
from acrsync.grants import GrantCache, check_grants, check_prerequisites, execute, finding, fixes, plan
from acrsync.model import NamespaceInfo
from tests.unit.test_grants_fakes import (
    READER_ARN,
    SOURCE_ACCOUNT,
    TARGET_ACCOUNT,
    FakeAcr,
    FakeRam,
    good_policy,
    good_trust,
    make_config,
)

# ---- cache ---------------------------------------------------------------------------------------


class Switchable:
    """A checker whose answer the test flips, counting how often it runs."""

    def __init__(self):
        self.broken = False
        self.runs = 0
        self.sessions = []

    def __call__(self, target, session):
        self.runs += 1
        self.sessions.append(session)
        if self.broken:
            return [finding("ROLE_MISSING", target.name, "no role")]
        return [finding("TRUST_TOO_WIDE", target.name, "wide")]     # a warning: still clean


SESSION = object()      # the checker receives the caller's session as it is; the cache never keeps it


def test_the_check_runs_under_the_session_of_the_caller_that_missed():
    clock, checker = ManualClock(), Switchable()
    cache = GrantCache(checker, GrantsConfig(cache_ttl_seconds=900, blocked_ttl_seconds=60), clock)
    t = make_config().targets[0]
    first, second = object(), object()
    cache.verdict(t, first)
    cache.verdict(t, second)                 # cached: no check, so no session used
    clock.advance(900)
    cache.verdict(t, second)
    assert checker.sessions == [first, second]


def test_clean_verdict_is_cached_for_the_long_ttl():
    clock, checker = ManualClock(), Switchable()
    cache = GrantCache(checker, GrantsConfig(cache_ttl_seconds=900, blocked_ttl_seconds=60), clock)
    t = make_config().targets[0]
    v = cache.verdict(t, SESSION)
    assert v.clean and [f.code for f in v.findings] == ["TRUST_TOO_WIDE"]
    checker.broken = True
    clock.advance(899)
    assert cache.verdict(t, SESSION).clean and checker.runs == 1
    clock.advance(1)
    assert not cache.verdict(t, SESSION).clean and checker.runs == 2


def test_blocked_verdict_is_rechecked_soon_so_a_fix_unblocks_within_minutes():
    clock, checker = ManualClock(), Switchable()
    checker.broken = True
    cache = GrantCache(checker, GrantsConfig(cache_ttl_seconds=900, blocked_ttl_seconds=60), clock)
    t = make_config().targets[0]
    v = cache.verdict(t, SESSION)
    assert not v.clean and v.expires_at == v.checked_at + 60
    checker.broken = False
    clock.advance(59)
    assert not cache.verdict(t, SESSION).clean
    clock.advance(1)
    assert cache.verdict(t, SESSION).clean and checker.runs == 2


def test_cache_is_per_target_and_can_be_invalidated():
    clock, checker = ManualClock(), Switchable()
    cache = GrantCache(checker, GrantsConfig(), clock)
    a = make_config().targets[0]
    b = dataclasses.replace(a, name="other")
    cache.verdict(a, SESSION)
    cache.verdict(b, SESSION)
    cache.verdict(a, SESSION)
    assert checker.runs == 2
    cache.invalidate("beijing")
    cache.verdict(a, SESSION)
    assert checker.runs == 3 and cache.checks == 3


# ---- apply: fakes with the admin's writes ---------------------------------------------------------

READER_ROLE = "acrsync-reader"
INSTANCE = "cri-target0001"


class AdminRam(FakeRam):
    """FakeRam plus the one write it lacks (detach)."""

    def detach_policy_from_role(self, policy_name: str, policy_type: str, role_name: str) -> None:
        self.writes.append("DetachPolicyFromRole")
        self.attached[role_name.lower()].remove((policy_name, policy_type))


class AdminAcr(FakeAcr):
    """The target instance's ACR as its administrator sees it, recording writes."""

    def __init__(self, edition: str = "Enterprise_Basic"):
        super().__init__(TARGET_ACCOUNT)
        self.add_instance(INSTANCE, edition)
        self.writes: list[str] = []

    def add_namespace(self, instance_id: str, name: str, auto_create_repo: bool = True,
                      default_repo_type: str = "PRIVATE") -> AdminAcr:
        self.namespaces[(instance_id, name)] = NamespaceInfo(instance_id=instance_id, name=name,
                                                             auto_create_repo=auto_create_repo,
                                                             default_repo_type=default_repo_type)
        return self

    def create_namespace(self, instance_id, name, *, auto_create_repo, default_repo_type=None):
        self.writes.append("CreateNamespace")
        self.add_namespace(instance_id, name, auto_create_repo, default_repo_type or "PRIVATE")

    def update_namespace(self, instance_id, name, *, auto_create_repo=None, default_repo_type=None):
        self.writes.append("UpdateNamespace")
        ns = self.namespaces[(instance_id, name)]
        self.namespaces[(instance_id, name)] = dataclasses.replace(ns, **{
            "auto_create_repo": ns.auto_create_repo if auto_create_repo is None else auto_create_repo,
            "default_repo_type": default_repo_type or ns.default_repo_type})


def reader_trust(*principals: str) -> str:
    return json.dumps({"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                                      "Principal": {"RAM": list(principals)}}]})


def with_reader(ram: AdminRam, trust: str | None = None, policy: dict | None = None) -> AdminRam:
    """Add the reader role, trusting account A and holding the reader policy (or the ones given)."""
    ram.add_role(READER_ROLE, trust or reader_trust(f"acs:ram::{SOURCE_ACCOUNT}:root"))
    doc = policy if policy is not None else fixes.reader_policy(_cfg(), _cfg().targets[0])
    ram.add_policy("ReaderByHand", json.dumps(doc), attach_to=READER_ROLE)
    return ram


def healthy_admin() -> AdminRam:
    """The sync role set up by hand as the guide shows, and a working reader role."""
    ram = AdminRam().add_role()
    ram.add_policy("ACRCrossAccountSync", good_policy())
    return with_reader(ram)


def _cfg(**target):
    return make_config(**target)


def _apply_until_stable(ram: AdminRam, acr: AdminAcr | None = None, cfg=None, **kw):
    cfg = cfg or _cfg()
    t = cfg.targets[0]
    first = plan(cfg, t, ram, acr, **kw)
    execute(first, ram, acr)
    writes = list(ram.writes) + (list(acr.writes) if acr else [])
    second = plan(cfg, t, ram, acr, **kw)
    execute(second, ram, acr)
    return first, second, writes


def kinds(p) -> list[tuple[str, str | None]]:
    return [(s.kind, s.role_name or s.policy_name or s.namespace) for s in p.steps]


# ---- apply: the sync role -------------------------------------------------------------------------

def test_apply_from_scratch_creates_both_roles_their_policies_then_is_a_no_op():
    ram = AdminRam()
    first, second, writes = _apply_until_stable(ram)
    assert kinds(first) == [("CreateRole", P.SYNC_ROLE_NAME), ("CreatePolicy", f"acrsync-sync-{INSTANCE}"),
                            ("AttachPolicyToRole", P.SYNC_ROLE_NAME), ("CreateRole", READER_ROLE),
                            ("CreatePolicy", f"acrsync-reader-{INSTANCE}"),
                            ("AttachPolicyToRole", READER_ROLE)]
    assert [s.fixes for s in first.steps[:3]] == [["ROLE_MISSING"]] * 3
    assert [s.fixes for s in first.steps[3:]] == [["READER_ROLE_CANNOT_READ"]] * 3
    assert writes == [s.kind for s in first.steps]
    assert second.empty and ram.writes == writes
    cfg = _cfg()
    assert check_grants(cfg, cfg.targets[0], ram) == []
    assert json.loads(ram.roles[READER_ROLE].trust_policy) == fixes.reader_trust_policy(cfg.source)


def test_apply_on_a_healthy_account_plans_nothing():
    p = plan(_cfg(), _cfg().targets[0], healthy_admin(), AdminAcr())
    assert p.empty and len(p.notes) == 1 and "already allowed by policy ACRCrossAccountSync" in p.notes[0]


def test_apply_keeps_other_trusted_principals_and_adds_ours():
    ram = with_reader(AdminRam().add_role(trust=good_trust("1999999999999999")))
    first, second, writes = _apply_until_stable(ram)
    assert [s.kind for s in first.steps] == ["UpdateRole", "CreatePolicy", "AttachPolicyToRole"]
    assert first.steps[0].fixes == ["TRUST_MISSING_PRINCIPAL"]
    trust = json.loads(ram.roles[P.SYNC_ROLE_NAME].trust_policy)
    services = [s["Principal"]["Service"][0] for s in trust["Statement"]]
    assert services == ["1999999999999999@cr.aliyuncs.com", f"{SOURCE_ACCOUNT}@cr.aliyuncs.com"]
    assert second.empty


def test_apply_removes_a_deny_aimed_at_our_principal():
    trust = json.loads(good_trust())
    trust["Statement"].append({"Action": "sts:AssumeRole", "Effect": "Deny", "Principal": "*"})
    ram = with_reader(AdminRam().add_role(trust=json.dumps(trust)))
    first, second, _ = _apply_until_stable(ram)
    assert first.steps[0].kind == "UpdateRole" and "[1]" in first.steps[0].why
    assert first.steps[0].fixes == ["DENIED_BY_STATEMENT"]
    cfg = _cfg()
    assert check_grants(cfg, cfg.targets[0], ram) == [] and second.empty


def test_apply_replaces_a_malformed_trust_policy():
    ram = with_reader(AdminRam().add_role(trust="{oops"))
    first, _, _ = _apply_until_stable(ram)
    assert first.steps[0].kind == "UpdateRole" and first.steps[0].fixes == ["POLICY_MALFORMED"]
    assert json.loads(ram.roles[P.SYNC_ROLE_NAME].trust_policy) == fixes.trust_policy(_cfg().source)


def test_apply_versions_a_policy_whose_document_differs():
    ram = with_reader(AdminRam().add_role())
    ram.add_policy("acrsync-sync-cri-target0001", good_policy(region="cn-shanghai"))
    first, second, writes = _apply_until_stable(ram)
    assert [(s.kind, s.fixes) for s in first.steps] == [("CreatePolicyVersion", ["RESOURCE_MISMATCH"])]
    assert writes == ["CreatePolicyVersion"] and second.empty


def test_a_policy_for_another_region_is_a_resource_mismatch_the_new_policy_fixes():
    ram = with_reader(AdminRam().add_role())
    ram.add_policy("ByHand", good_policy(region="cn-shanghai"))
    first, second, _ = _apply_until_stable(ram)
    assert [(s.kind, s.fixes) for s in first.steps] == [("CreatePolicy", ["RESOURCE_MISMATCH"]),
                                                        ("AttachPolicyToRole", ["RESOURCE_MISMATCH"])]
    assert second.empty


def test_apply_does_not_rewrite_an_equal_document_with_other_whitespace():
    ram = with_reader(AdminRam().add_role())
    ram.add_policy("acrsync-sync-cri-target0001", fixes.pretty(fixes.sync_policy(_cfg().targets[0])))
    assert plan(_cfg(), _cfg().targets[0], ram).empty


def test_apply_next_to_a_misspelt_role_creates_the_right_one_and_notes_the_other():
    ram = with_reader(AdminRam().add_role("aliyuncontainerregistrycrossaccountsyncrole"))
    first, second, _ = _apply_until_stable(ram)
    assert first.steps[0].kind == "CreateRole" and first.steps[0].role_name == P.SYNC_ROLE_NAME
    assert first.steps[0].fixes == ["ROLE_NAME_MISSPELT"]
    assert "aliyuncontainerregistrycrossaccountsyncrole" in first.notes[0]
    assert second.empty


def test_apply_leaves_a_conditional_trust_alone_and_says_so():
    trust = json.loads(good_trust())
    trust["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalId": "x"}}
    ram = healthy_admin()
    ram.add_role(trust=json.dumps(trust))
    p = plan(_cfg(), _cfg().targets[0], ram)
    assert p.empty and "conditions" in p.notes[0]


def test_same_account_target_needs_no_role_but_still_gets_its_namespaces():
    cfg = make_config(account_id=SOURCE_ACCOUNT, reader_role_arn=None, namespaces=["team-a"])
    p = plan(cfg, cfg.targets[0], AdminRam(), AdminAcr())
    assert "same account" in p.notes[0] and kinds(p) == [("CreateNamespace", "team-a")]


# ---- apply: a Deny attached to the sync role ------------------------------------------------------

LOCKDOWN = json.dumps({"Version": "1", "Statement": [{"Effect": "Deny", "Action": "cr:CreateSyncRule",
                                                      "Resource": "*"}]})


def test_a_foreign_deny_is_left_alone_without_the_flag_and_the_note_says_how():
    ram = healthy_admin()
    ram.add_policy("Lockdown", LOCKDOWN)
    p = plan(_cfg(), _cfg().targets[0], ram)
    note = next(n for n in p.notes if "Lockdown" in n)
    assert p.empty and "by hand" in note and "run again with --detach-conflicting to detach Lockdown" in note


def test_detach_conflicting_detaches_the_deny_only_and_keeps_the_policy():
    ram = healthy_admin()
    ram.add_policy("Lockdown", LOCKDOWN)
    first, second, writes = _apply_until_stable(ram, detach_conflicting=True)
    assert [(s.kind, s.policy_name, s.policy_type, s.fixes) for s in first.steps] == [
        ("DetachPolicyFromRole", "Lockdown", "Custom", ["DENIED_BY_STATEMENT"])]
    assert "statement 0 denies cr:CreateSyncRule" in first.steps[0].why
    assert first.steps[0].command == ("aliyun ram DetachPolicyFromRole --PolicyType Custom --PolicyName "
                                      f"Lockdown --RoleName {P.SYNC_ROLE_NAME}")
    assert writes == ["DetachPolicyFromRole"] and second.empty
    assert ("Lockdown", "Custom") in ram.policies                         # never deleted or edited
    cfg = _cfg()
    assert check_grants(cfg, cfg.targets[0], ram) == []


def test_detaching_the_policy_that_also_granted_adds_the_acrsync_policy():
    doc = json.loads(good_policy())
    doc["Statement"].append({"Effect": "Deny", "Action": "cr:CreateRepositorySync", "Resource": "*"})
    ram = with_reader(AdminRam().add_role())
    ram.add_policy("Mixed", json.dumps(doc))
    first, second, _ = _apply_until_stable(ram, detach_conflicting=True)
    assert [s.kind for s in first.steps] == ["DetachPolicyFromRole", "CreatePolicy", "AttachPolicyToRole"]
    cfg = _cfg()
    assert check_grants(cfg, cfg.targets[0], ram) == [] and second.empty


def test_a_deny_elsewhere_is_no_conflict():
    ram = healthy_admin()
    ram.add_policy("OtherInstance", json.dumps({"Version": "1", "Statement": [
        {"Effect": "Deny", "Action": "cr:*", "Resource": "acs:cr:*:*:instance/cri-elsewhere"}]}))
    p = plan(_cfg(), _cfg().targets[0], ram, detach_conflicting=True)
    assert p.empty and not any("OtherInstance" in n for n in p.notes)


# ---- apply: the reader role -----------------------------------------------------------------------

def test_reader_trust_gets_account_a_added_and_keeps_the_others():
    ram = healthy_admin()
    ram.add_role(READER_ROLE, reader_trust("acs:ram::3333333333333333:root"))
    first, second, _ = _apply_until_stable(ram)
    assert [(s.kind, s.role_name, s.fixes) for s in first.steps] == [
        ("UpdateRole", READER_ROLE, ["READER_ROLE_CANNOT_READ"])]
    trust = json.loads(ram.roles[READER_ROLE].trust_policy)
    assert [st["Principal"]["RAM"] for st in trust["Statement"]] == [
        ["acs:ram::3333333333333333:root"], [f"acs:ram::{SOURCE_ACCOUNT}:root"]]
    assert second.empty


def test_reader_trust_deny_on_account_a_is_removed():
    trust = json.loads(reader_trust(f"acs:ram::{SOURCE_ACCOUNT}:root"))
    trust["Statement"].append({"Action": "sts:AssumeRole", "Effect": "Deny", "Principal": {"RAM": ["*"]}})
    ram = healthy_admin()
    ram.add_role(READER_ROLE, json.dumps(trust))
    first, second, _ = _apply_until_stable(ram)
    assert [s.kind for s in first.steps] == ["UpdateRole"] and "[1]" in first.steps[0].why
    assert json.loads(ram.roles[READER_ROLE].trust_policy)["Statement"] == trust["Statement"][:1]
    assert second.empty


def test_reader_trust_naming_a_role_of_account_a_or_a_condition_is_left_alone():
    narrow = reader_trust(f"acs:ram::{SOURCE_ACCOUNT}:role/acrsync-fc")
    conditional = json.loads(reader_trust(f"acs:ram::{SOURCE_ACCOUNT}:root"))
    conditional["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalId": "x"}}
    for trust, says in ((narrow, "trusts only acs:ram::"), (json.dumps(conditional), "conditions")):
        ram = healthy_admin()
        ram.add_role(READER_ROLE, trust)
        p = plan(_cfg(), _cfg().targets[0], ram)
        assert p.empty and any(says in n for n in p.notes), p.notes


def test_reader_lacking_an_action_gets_the_reader_policy_permissions_prints():
    doc = fixes.reader_policy(_cfg(), _cfg().targets[0])
    ram_stmt = next(st for st in doc["Statement"] if st["Action"][0].startswith("ram:"))
    ram_stmt["Action"] = [a for a in ram_stmt["Action"] if a != "ram:ListPoliciesForRole"]
    ram = AdminRam().add_role()
    ram.add_policy("ACRCrossAccountSync", good_policy())
    with_reader(ram, policy=doc)
    first, second, _ = _apply_until_stable(ram)
    name = f"acrsync-reader-{INSTANCE}"
    assert kinds(first) == [("CreatePolicy", name), ("AttachPolicyToRole", READER_ROLE)]
    assert "lacks ram:ListPoliciesForRole" in first.steps[0].why
    assert json.loads(first.steps[0].document) == fixes.reader_policy(_cfg(), _cfg().targets[0])
    assert second.empty


def test_an_outdated_acrsync_reader_policy_gets_a_new_version():
    ram = AdminRam().add_role()
    ram.add_policy("ACRCrossAccountSync", good_policy())
    ram.add_role(READER_ROLE, reader_trust(f"acs:ram::{SOURCE_ACCOUNT}:root"))
    ram.add_policy(f"acrsync-reader-{INSTANCE}", json.dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ram:GetRole", "Resource": "*"}]}), attach_to=READER_ROLE)
    first, second, _ = _apply_until_stable(ram)
    assert kinds(first) == [("CreatePolicyVersion", f"acrsync-reader-{INSTANCE}")]
    assert second.empty


def test_a_deny_on_the_reader_is_noted_not_detached():
    ram = healthy_admin()
    ram.add_policy("NoRam", json.dumps({"Version": "1", "Statement": [
        {"Effect": "Deny", "Action": "ram:GetPolicy", "Resource": "*"}]}), attach_to=READER_ROLE)
    p = plan(_cfg(), _cfg().targets[0], ram, detach_conflicting=True)
    assert p.empty and any("NoRam" in n and "ram:GetPolicy" in n for n in p.notes)


def test_no_reader_arn_is_only_noted():
    ram = AdminRam().add_role()
    ram.add_policy("ACRCrossAccountSync", good_policy())
    cfg = _cfg(reader_role_arn=None)
    p = plan(cfg, cfg.targets[0], ram)
    assert p.empty and "no reader_role_arn" in p.notes[-1] and ram.writes == []


def test_reader_fix_of_a_finding_is_automatic_when_a_reader_arn_is_set():
    assert fixes.reader_fix(_cfg(), _cfg().targets[0]).automatic
    cfg = _cfg(reader_role_arn=None)
    assert not fixes.reader_fix(cfg, cfg.targets[0]).automatic
    assert READER_ARN.endswith("/" + READER_ROLE)


# ---- apply: target namespaces ---------------------------------------------------------------------

def test_missing_namespace_is_created_and_one_without_auto_create_is_turned_on():
    cfg = _cfg(namespaces=["team-a", "team-b", "team-c"])
    acr = AdminAcr().add_namespace(INSTANCE, "team-a").add_namespace(INSTANCE, "team-b", False, "PUBLIC")
    first, second, writes = _apply_until_stable(healthy_admin(), acr, cfg)
    assert [(s.kind, s.namespace, s.fixes, s.default_repo_type) for s in first.steps] == [
        ("UpdateNamespace", "team-b", ["TARGET_NAMESPACE_NO_AUTOCREATE"], "PUBLIC"),
        ("CreateNamespace", "team-c", ["TARGET_NAMESPACE_MISSING"], "PRIVATE")]
    assert first.steps[0].changes == f"AutoCreateRepo of namespace {INSTANCE}/team-b"
    assert first.steps[1].command == (f"aliyun cr CreateNamespace --region cn-beijing --InstanceId "
                                      f"{INSTANCE} --NamespaceName team-c --AutoCreateRepo true "
                                      "--DefaultRepoType PRIVATE")
    assert writes == ["UpdateNamespace", "CreateNamespace"] and second.empty
    assert acr.namespaces[(INSTANCE, "team-b")].default_repo_type == "PUBLIC"     # kept as someone set it
    src = FakeAcr(SOURCE_ACCOUNT).add_instance("cri-source0001")
    assert check_prerequisites(cfg, cfg.targets[0], source_acr=src, target_acr=acr) == []


def test_renamed_target_namespace_is_the_one_created_even_for_globs():
    cfg = _cfg(namespaces=["team-*"], target_namespace="mirror")
    p = plan(cfg, cfg.targets[0], healthy_admin(), AdminAcr())
    assert kinds(p) == [("CreateNamespace", "mirror")] and not any("glob" in n for n in p.notes)


def test_namespace_globs_and_repository_targets_are_noted():
    cfg = _cfg(namespaces=["team-a", "team-*"])
    p = plan(cfg, cfg.targets[0], healthy_admin(), AdminAcr().add_namespace(INSTANCE, "team-a"))
    assert p.empty and any("team-*" in n and "cannot read" in n for n in p.notes)
    cfg = _cfg(namespaces=["team-a"], repositories=["team-a/api"])
    p = plan(cfg, cfg.targets[0], healthy_admin(), AdminAcr())
    assert p.empty and any("TARGET_REPO_MISSING" in n for n in p.notes)


def test_an_unknown_instance_or_edition_is_noted_and_nothing_is_written():
    cfg = _cfg(namespaces=["team-a"])
    acr = AdminAcr()
    acr.instances.clear()
    p = plan(cfg, cfg.targets[0], healthy_admin(), acr)
    assert p.empty and "was not found" in p.notes[-1]
    p = plan(cfg, cfg.targets[0], healthy_admin(),
             AdminAcr("Enterprise_Standard").add_namespace(INSTANCE, "team-a"))
    assert p.empty and "Enterprise_Standard (it may work" in p.notes[-1]
    assert "cannot change an edition" in p.notes[-1]


def test_execute_needs_the_acr_adapter_for_namespace_steps():
    cfg = _cfg(namespaces=["team-a"])
    p = plan(cfg, cfg.targets[0], healthy_admin(), AdminAcr())
    with pytest.raises(ValueError, match="Acr adapter"):
        execute(p, healthy_admin())
