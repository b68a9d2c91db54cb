"""GrantCache TTLs on a manual clock, and the apply plan against the in-memory Ram fake."""

from __future__ import annotations

import json

from acrsync import policy as P
from acrsync.clock import ManualClock
from acrsync.config import GrantsConfig
from acrsync.grants import GrantCache, check_grants, execute, finding, fixes, plan
from tests.unit.test_grants_fakes import (
    SOURCE_ACCOUNT,
    FakeRam,
    good_policy,
    good_trust,
    healthy,
    make_config,
)

# ---- cache ---------------------------------------------------------------------------------------


class Switchable:
    """A checker whose answer the test flips, counting how often it runs."""

    def __init__(self):
        self.broken = False
        self.runs = 0

    def __call__(self, target):
        self.runs += 1
        if self.broken:
            return [finding("ROLE_MISSING", target.name, "no role")]
        return [finding("TRUST_TOO_WIDE", target.name, "wide")]     # a warning: still clean


def test_clean_verdict_is_cached_for_the_long_ttl():
    clock, checker = ManualClock(), Switchable()
    cache = GrantCache(checker, GrantsConfig(cache_ttl_seconds=900, blocked_ttl_seconds=60), clock)
    t = make_config().targets[0]
    v = cache.verdict(t)
    assert v.clean and [f.code for f in v.findings] == ["TRUST_TOO_WIDE"]
    checker.broken = True
    clock.advance(899)
    assert cache.verdict(t).clean and checker.runs == 1
    clock.advance(1)
    assert not cache.verdict(t).clean and checker.runs == 2


def test_blocked_verdict_is_rechecked_soon_so_a_fix_unblocks_within_minutes():
    clock, checker = ManualClock(), Switchable()
    checker.broken = True
    cache = GrantCache(checker, GrantsConfig(cache_ttl_seconds=900, blocked_ttl_seconds=60), clock)
    t = make_config().targets[0]
    v = cache.verdict(t)
    assert not v.clean and v.expires_at == v.checked_at + 60
    checker.broken = False
    clock.advance(59)
    assert not cache.verdict(t).clean
    clock.advance(1)
    assert cache.verdict(t).clean and checker.runs == 2


def test_cache_is_per_target_and_can_be_invalidated():
    clock, checker = ManualClock(), Switchable()
    cache = GrantCache(checker, GrantsConfig(), clock)
    a = make_config().targets[0]
    b = a.model_copy(update={"name": "other"})
    cache.verdict(a)
    cache.verdict(b)
    cache.verdict(a)
    assert checker.runs == 2
    cache.invalidate("beijing")
    cache.verdict(a)
    assert checker.runs == 3 and cache.checks == 3


# ---- apply ---------------------------------------------------------------------------------------

def _cfg():
    return make_config()


def _apply_until_stable(ram: FakeRam):
    cfg = _cfg()
    t = cfg.targets[0]
    first = plan(cfg, t, ram)
    execute(first, ram)
    writes = list(ram.writes)
    second = plan(cfg, t, ram)
    execute(second, ram)
    return first, second, writes


def test_apply_from_scratch_creates_role_policy_attachment_then_is_a_no_op():
    ram = FakeRam()
    first, second, writes = _apply_until_stable(ram)
    assert [s.kind for s in first.steps] == ["CreateRole", "CreatePolicy", "AttachPolicyToRole"]
    assert writes == ["CreateRole", "CreatePolicy", "AttachPolicyToRole"]
    assert second.empty and ram.writes == writes
    cfg = _cfg()
    assert check_grants(cfg, cfg.targets[0], ram) == []


def test_apply_on_a_healthy_account_plans_nothing():
    ram, _, _ = healthy()
    p = plan(_cfg(), _cfg().targets[0], ram)
    assert p.empty and len(p.notes) == 1 and "already allowed by policy ACRCrossAccountSync" in p.notes[0]


def test_apply_keeps_other_trusted_principals_and_adds_ours():
    ram = FakeRam().add_role(trust=good_trust("1999999999999999"))
    first, second, writes = _apply_until_stable(ram)
    assert [s.kind for s in first.steps] == ["UpdateRole", "CreatePolicy", "AttachPolicyToRole"]
    trust = json.loads(ram.roles[P.SYNC_ROLE_NAME].trust_policy)
    services = [s["Principal"]["Service"][0] for s in trust["Statement"]]
    assert services == ["1999999999999999@cr.aliyuncs.com", f"{SOURCE_ACCOUNT}@cr.aliyuncs.com"]
    assert second.empty


def test_apply_removes_a_deny_aimed_at_our_principal():
    trust = json.loads(good_trust())
    trust["Statement"].append({"Action": "sts:AssumeRole", "Effect": "Deny", "Principal": "*"})
    ram = FakeRam().add_role(trust=json.dumps(trust))
    first, second, _ = _apply_until_stable(ram)
    assert first.steps[0].kind == "UpdateRole" and "[1]" in first.steps[0].why
    cfg = _cfg()
    assert check_grants(cfg, cfg.targets[0], ram) == [] and second.empty


def test_apply_replaces_a_malformed_trust_policy():
    ram = FakeRam().add_role(trust="{oops")
    first, _, _ = _apply_until_stable(ram)
    assert first.steps[0].kind == "UpdateRole"
    assert json.loads(ram.roles[P.SYNC_ROLE_NAME].trust_policy) == fixes.trust_policy(_cfg().source)


def test_apply_versions_a_policy_whose_document_differs():
    ram = FakeRam().add_role()
    ram.add_policy("acrsync-sync-cri-target0001", good_policy(region="cn-shanghai"))
    first, second, writes = _apply_until_stable(ram)
    assert [s.kind for s in first.steps] == ["CreatePolicyVersion"]
    assert writes == ["CreatePolicyVersion"] and second.empty


def test_apply_does_not_rewrite_an_equal_document_with_other_whitespace():
    ram = FakeRam().add_role()
    ram.add_policy("acrsync-sync-cri-target0001", fixes.pretty(fixes.sync_policy(_cfg().targets[0])))
    assert plan(_cfg(), _cfg().targets[0], ram).empty


def test_apply_next_to_a_misspelt_role_creates_the_right_one_and_notes_the_other():
    ram = FakeRam().add_role("aliyuncontainerregistrycrossaccountsyncrole")
    first, second, _ = _apply_until_stable(ram)
    assert first.steps[0].kind == "CreateRole" and first.steps[0].role_name == P.SYNC_ROLE_NAME
    assert "aliyuncontainerregistrycrossaccountsyncrole" in first.notes[0]
    assert second.empty


def test_apply_leaves_foreign_denies_alone_and_says_so():
    ram, _, _ = healthy()
    ram.add_policy("Lockdown", json.dumps({"Version": "1", "Statement": [
        {"Effect": "Deny", "Action": "cr:CreateSyncRule", "Resource": "*"}]}))
    p = plan(_cfg(), _cfg().targets[0], ram)
    assert p.empty and "Lockdown" in p.notes[-1] and "by hand" in p.notes[-1]


def test_apply_leaves_a_conditional_trust_alone_and_says_so():
    trust = json.loads(good_trust())
    trust["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalId": "x"}}
    ram, _, _ = healthy()
    ram.add_role(trust=json.dumps(trust))
    p = plan(_cfg(), _cfg().targets[0], ram)
    assert p.empty and "conditions" in p.notes[0]


def test_same_account_target_needs_no_apply():
    cfg = make_config(account_id=SOURCE_ACCOUNT, reader_role_arn=None)
    p = plan(cfg, cfg.targets[0], FakeRam())
    assert p.empty and "same account" in p.notes[0]
