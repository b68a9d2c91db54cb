"""The rule advisor's decisions, pure: prerequisites, the smallest set, the limit, idempotence."""

from __future__ import annotations

import dataclasses

from acrsync.config import parse_config
from acrsync.model import NamespaceInfo, RepoInfo, SyncRule
from acrsync.rule_advisor import advise, pending, rule_name

A, B = "1111111111111111", "2222222222222222"


def config(**target):
    t = {"name": "bj", "account_id": B, "region": "cn-beijing", "instance_id": "cri-target", **target}
    return parse_config({"source": {"account_id": A, "region": "cn-hangzhou", "instance_id": "cri-source"},
                         "targets": [t]})


def repo(ns, name, **kw):
    return RepoInfo(instance_id="cri-source", repo_id=f"id-{ns}-{name}", namespace=ns, name=name, **kw)


def ns(name, auto=True):
    return NamespaceInfo(instance_id="cri-target", name=name, auto_create_repo=auto)


REPOS = [repo("a", "web"), repo("a", "api"), repo("b", "job"), repo("b", "tmp-1")]


def test_whole_namespace_in_scope_gets_one_rule_without_repo_filter():
    cfg = config()
    plan = advise(cfg, cfg.targets[0], source_repos=REPOS, rules=[],
                  target_namespaces={"a": ns("a"), "b": ns("b")},
                  target_repos={}, grant_finding=None)
    assert [(p.scope, p.namespace, p.repo_filter) for p in plan.proposals] == [("NAMESPACE", "a", None),
                                                                              ("NAMESPACE", "b", None)]
    assert plan.proposals[0].target_user_id == B and plan.proposals[0].repositories == ("a/api", "a/web")


def test_excluded_repositories_make_a_name_filter():
    cfg = config(exclude=["b/tmp-*"])
    plan = advise(cfg, cfg.targets[0], source_repos=REPOS, rules=[],
                  target_namespaces={"a": ns("a"), "b": ns("b")},
                  target_repos={}, grant_finding=None)
    b = next(p for p in plan.proposals if p.namespace == "b")
    assert b.repo_filter == "^(?:job)$"


def test_without_auto_create_repo_rules_need_the_same_repository_configured_the_same_way():
    cfg = config(namespaces=["a"])
    target_repos = {"a/web": RepoInfo(instance_id="cri-target", repo_id="t1", namespace="a", name="web"),
                    "a/api": RepoInfo(instance_id="cri-target", repo_id="t2", namespace="a", name="api",
                                      tag_immutability=True)}
    plan = advise(cfg, cfg.targets[0], source_repos=REPOS, rules=[],
                  target_namespaces={"a": ns("a", auto=False)},
                  target_repos=target_repos, grant_finding=None)
    assert [(p.scope, p.repo) for p in plan.proposals] == [("REPO", "web")]
    assert [u.what for u in plan.unmet] == ["a/api"] and "tag immutability" in plan.unmet[0].reason


def test_missing_namespace_and_repository_is_unmet_with_the_fix():
    cfg = config(namespaces=["a"])
    plan = advise(cfg, cfg.targets[0], source_repos=REPOS, rules=[], target_namespaces={}, target_repos={},
                  grant_finding=None)
    assert plan.proposals == [] and {u.what for u in plan.unmet} == {"a/web", "a/api"}
    assert all("grants apply" in u.fix for u in plan.unmet)


def test_existing_rule_covers_and_limit_counts_existing_rules():
    cfg = config()
    existing = SyncRule(rule_id="r1", name="theirs", scope="NAMESPACE", local_instance_id="cri-source",
                        local_namespace="a", target_instance_id="cri-target", target_region="cn-beijing")
    cfg2 = dataclasses.replace(cfg, rules=dataclasses.replace(cfg.rules, max_rules_per_instance=1))
    plan = advise(cfg2, cfg2.targets[0], source_repos=REPOS, rules=[existing],
                  target_namespaces={"a": ns("a"), "b": ns("b")}, target_repos={}, grant_finding=None)
    assert plan.already_covered == ["a/api", "a/web"]
    assert plan.proposals == [] and "limit is 1" in plan.unmet[0].reason


def test_blocked_grants_propose_nothing():
    cfg = config()
    plan = advise(cfg, cfg.targets[0], source_repos=REPOS, rules=[], target_namespaces={"a": ns("a")},
                  target_repos={}, grant_finding={"code": "SYNC_ROLE_MISSING"})
    assert plan.proposals == [] and plan.blocked_by == {"code": "SYNC_ROLE_MISSING"}


def test_pending_skips_rules_already_created_by_name():
    cfg = config()
    plan = advise(cfg, cfg.targets[0], source_repos=REPOS, rules=[],
                  target_namespaces={"a": ns("a"), "b": ns("b")},
                  target_repos={}, grant_finding=None)
    made = SyncRule(rule_id="r2", name=rule_name("acrsync-", "bj", "a"), scope="NAMESPACE",
                    local_instance_id="cri-source", local_namespace="a", target_instance_id="cri-target",
                    target_region="cn-beijing")
    assert [p.namespace for p in pending(plan, [made])] == ["b"]
