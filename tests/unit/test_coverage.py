"""acrsync.coverage: which sync rule replicates an image to a target, and why the others do not."""

from __future__ import annotations

import pytest

from acrsync.config import Target
from acrsync.coverage import RuleCheck, covering_rule, explain
from acrsync.model import SyncRule

PUSHED = 1_716_171_330_000


def target(**kw) -> Target:
    base = {"name": "beijing-prod", "account_id": "2222222222222222",   # made-up demo account
            "region": "cn-beijing", "instance_id": "cri-demotarget01"}
    return Target(**{**base, **kw})


def rule(**kw) -> SyncRule:
    base = {"rule_id": "crsr-1", "scope": "REPO", "local_instance_id": "cri-demosource01",
            "local_region": "cn-hangzhou", "local_namespace": "team-a", "local_repo": "api",
            "target_instance_id": "cri-demotarget01", "target_region": "cn-beijing",
            "target_namespace": "team-a", "target_repo": "api", "cross_user": True,
            "create_time_ms": PUSHED - 60_000}
    return SyncRule(**{**base, **kw})


NS_RULE = {"scope": "NAMESPACE", "local_repo": None, "target_repo": None}
INST_RULE = {"scope": "INSTANCE", "local_namespace": None, "local_repo": None,
             "target_namespace": None, "target_repo": None}

CASES = [
    # id, rule fields, target fields, (namespace, repo, tag), covers, reason contains
    ("repo rule", {}, {}, ("team-a", "api", "v1"), True, "REPO rule replicates team-a/api:v1"),
    ("repo rule other repo", {}, {}, ("team-a", "web", "v1"), False, "REPO rule for 'team-a/api', not "
                                                                     "'team-a/web'"),
    ("repo rule other ns", {}, {}, ("team-b", "api", "v1"), False, "REPO rule for 'team-a/api'"),
    ("namespace rule", NS_RULE, {}, ("team-a", "web", "v1"), True, "NAMESPACE rule"),
    ("namespace rule other ns", NS_RULE, {}, ("team-b", "web", "v1"), False,
     "NAMESPACE rule for namespace 'team-a', not 'team-b'"),
    ("namespace repo filter", {**NS_RULE, "repo_filter": "api|web"}, {}, ("team-a", "web", "v1"),
     True, "NAMESPACE"),
    ("namespace repo filter miss", {**NS_RULE, "repo_filter": "api|web"}, {}, ("team-a", "db", "v1"), False,
     "repository 'db' does not match RepoNameFilter 'api|web'"),
    ("namespace repo filter search only", {**NS_RULE, "repo_filter": "api"}, {}, ("team-a", "api-gw", "v1"),
     False,
     "re.search would match"),
    ("instance rule", INST_RULE, {}, ("team-z", "any", "v1"), True, "INSTANCE rule"),
    ("instance ns filter", {**INST_RULE, "namespace_filter": "team-.*"}, {}, ("team-z", "any", "v1"), True,
     "INSTANCE"),
    ("instance ns filter miss", {**INST_RULE, "namespace_filter": "team-.*"}, {}, ("infra", "any", "v1"),
     False,
     "namespace 'infra' does not match NamespaceNameFilter 'team-.*'"),
    ("instance repo filter miss", {**INST_RULE, "repo_filter": "svc-.*"}, {}, ("team-a", "api", "v1"), False,
     "RepoNameFilter"),
    ("tag filter", {"tag_filter": r"v\d+"}, {}, ("team-a", "api", "v1"), True, "REPO"),
    ("tag filter miss", {"tag_filter": r"v\d+"}, {}, ("team-a", "api", "latest"), False,
     "tag 'latest' does not match TagFilter 'v\\\\d+'"),
    ("tag filter search only", {"tag_filter": "v1"}, {}, ("team-a", "api", "v1.2.3"), False,
     "re.search would match"),
    ("tag filter anchored", {"tag_filter": "^v1.*$"}, {}, ("team-a", "api", "v1.2.3"), True, "REPO"),
    ("empty tag filter", {"tag_filter": ""}, {}, ("team-a", "api", "anything"), True, "REPO"),
    ("invalid tag regex", {"tag_filter": "v(1"}, {}, ("team-a", "api", "v1"), False,
     "TagFilter 'v(1' is not a valid regex"),
    ("invalid repo regex", {**NS_RULE, "repo_filter": "*api"}, {}, ("team-a", "api", "v1"), False,
     "RepoNameFilter '*api' is not a valid regex"),
    ("initiative", {"trigger": "INITIATIVE"}, {}, ("team-a", "api", "v1"), False, "trigger INITIATIVE"),
    ("direction to", {"direction": "TO"}, {}, ("team-a", "api", "v1"), False, "direction TO"),
    ("other instance", {"target_instance_id": "cri-elsewhere01"}, {}, ("team-a", "api", "v1"), False,
     "replicates to instance cri-elsewhere01, not cri-demotarget01"),
    ("other region", {"target_region": "cn-shanghai"}, {}, ("team-a", "api", "v1"), False,
     "replicates to region cn-shanghai, not cn-beijing"),
    # a rule that renames never counts (ACR rules keep names), even where the config wants that name
    ("renames the repo", {"target_repo": "api-copy"}, {}, ("team-a", "api", "v1"), False,
     "the rule renames 'team-a/api' to 'team-a/api-copy'"),
    ("renames the namespace", {**NS_RULE, "target_namespace": "other"}, {}, ("team-a", "api", "v1"), False,
     "renames 'team-a/api' to 'other/api'"),
    ("renames to what the target wants", {**NS_RULE, "target_namespace": "mirror"},
     {"target_namespace": "mirror"}, ("team-a", "api", "v1"), False, "never counts a renaming rule"),
    ("renames the repo of a REPO rule the target wants", {"target_namespace": "mirror", "target_repo": "api"},
     {"target_namespace": "mirror"}, ("team-a", "api", "v1"), False, "renames 'team-a/api' to 'mirror/api'"),
    ("target namespace override missing", NS_RULE, {"target_namespace": "mirror"}, ("team-a", "api", "v1"),
     False,
     "wants 'mirror/api'"),
    ("lower-case enums", {"scope": "repo", "trigger": "passive", "direction": "from"}, {},
     ("team-a", "api", "v1"),
     True, "REPO"),
    ("unknown scope", {"scope": "GLOBAL"}, {}, ("team-a", "api", "v1"), False, "unknown scope 'GLOBAL'"),
]


@pytest.mark.parametrize("rule_kw,target_kw,image,covers,reason", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_single_rule(rule_kw, target_kw, image, covers, reason):
    r, t = rule(**rule_kw), target(**target_kw)
    [check] = explain([r], t, *image, pushed_at_ms=PUSHED)
    assert isinstance(check, RuleCheck)
    assert check.rule == r and check.covers is covers
    assert reason in check.reason
    assert covering_rule([r], t, *image, pushed_at_ms=PUSHED) == (r if covers else None)


@pytest.mark.parametrize("created,pushed,covers", [
    (PUSHED + 1, PUSHED, False),        # made after the push: ACR will not replicate this image
    (PUSHED, PUSHED, True),
    (PUSHED - 1, PUSHED, True),
    (PUSHED + 1, None, True),           # push time unknown: not held against the rule
    (0, PUSHED, True),                  # no CreateTime: counts as old
])
def test_rule_must_exist_before_the_push(created, pushed, covers):
    r = rule(create_time_ms=created)
    [(_, got, reason)] = explain([r], target(), "team-a", "api", "v1", pushed_at_ms=pushed)
    assert got is covers
    if not covers:
        assert "after the push" in reason


def test_first_failing_check_is_the_reason():
    r = rule(trigger="INITIATIVE", target_region="cn-shanghai", tag_filter="x")
    [check] = explain([r], target(), "team-a", "api", "v1")
    assert check.reason.startswith("trigger INITIATIVE")


def test_oldest_covering_rule_wins_whatever_the_input_order():
    newer = rule(rule_id="crsr-b", create_time_ms=PUSHED - 10)
    older = rule(rule_id="crsr-z", create_time_ms=PUSHED - 1000)
    same_time = rule(rule_id="crsr-a", create_time_ms=PUSHED - 1000)
    for order in ([newer, older, same_time], [same_time, newer, older], [older, same_time, newer]):
        assert covering_rule(order, target(), "team-a", "api", "v1", pushed_at_ms=PUSHED).rule_id == "crsr-a"
        assert [c.rule.rule_id for c in explain(order, target(), "team-a", "api", "v1")] == [
            "crsr-a", "crsr-z", "crsr-b"]


def test_several_rules_only_one_covers():
    rules = [
        rule(rule_id="crsr-other-target", target_instance_id="cri-elsewhere01"),
        rule(rule_id="crsr-manual", trigger="INITIATIVE"),
        rule(rule_id="crsr-tags", tag_filter="release-.*"),
        rule(rule_id="crsr-late", create_time_ms=PUSHED + 5),
        rule(rule_id="crsr-ns", **NS_RULE, create_time_ms=PUSHED - 1),
    ]
    t = target()
    assert covering_rule(rules, t, "team-a", "api", "v1", pushed_at_ms=PUSHED).rule_id == "crsr-ns"
    checks = {c.rule.rule_id: c for c in explain(rules, t, "team-a", "api", "v1", pushed_at_ms=PUSHED)}
    assert [rid for rid, c in checks.items() if c.covers] == ["crsr-ns"]
    assert all(c.reason for c in checks.values())


def test_no_rules_no_cover():
    assert covering_rule([], target(), "team-a", "api", "v1") is None
    assert explain([], target(), "team-a", "api", "v1") == []


def test_rule_for_one_target_does_not_cover_another():
    r = rule()
    other = target(name="shanghai-dr", region="cn-shanghai", instance_id="cri-demotarget02")
    assert covering_rule([r], target(), "team-a", "api", "v1") == r
    assert covering_rule([r], other, "team-a", "api", "v1") is None
