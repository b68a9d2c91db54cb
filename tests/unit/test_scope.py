"""acrsync.scope: namespace/repository globs, exclusions, tag filter, target names."""

from __future__ import annotations

import pytest

from acrsync.config import Target
from acrsync.scope import ScopeDecision, in_scope, target_names


def target(**kw) -> Target:
    base = {"name": "beijing-prod", "account_id": "2222222222222222",   # made-up demo account
            "region": "cn-beijing", "instance_id": "cri-demotarget01"}
    return Target(**{**base, **kw})


CASES = [
    # (target settings, namespace, repo, tag, in scope, reason contains)
    ({}, "team-a", "api", "v1", True, "in the scope of target 'beijing-prod'"),
    ({"namespaces": ["team-a"]}, "team-a", "api", "v1", True, "in the scope"),
    ({"namespaces": ["team-*"]}, "team-b", "web", "v1", True, "in the scope"),
    ({"namespaces": ["team-a"]}, "team-b", "api", "v1", False, "namespace 'team-b' is not in namespaces "
                                                               "['team-a']"),
    # case-sensitive
    ({"namespaces": ["Team-A"]}, "team-a", "api", "v1", False, "not in namespaces"),
    ({"namespaces": ["team-?"]}, "team-ab", "api", "v1", False, "not in namespaces"),
    ({"namespaces": ["team-a", "infra"]}, "infra", "x", "v1", True, "in the scope"),
    ({"repositories": ["team-a/api"]}, "team-a", "api", "v1", True, "in the scope"),
    ({"repositories": ["team-a/api"]}, "team-a", "web", "v1", False, "'team-a/web' is not in repositories"),
    ({"repositories": ["team-a/api-*"]}, "team-a", "api-gw", "v1", True, "in the scope"),
    ({"repositories": ["*/api"]}, "team-c", "api", "v1", True, "in the scope"),
    ({"namespaces": ["team-a"], "repositories": ["team-b/api"]}, "team-b", "api", "v1", False,
     "not in namespaces"),
    ({"exclude": ["team-a/tmp-*"]}, "team-a", "tmp-build", "v1", False, "excluded by 'team-a/tmp-*'"),
    ({"exclude": ["team-a/tmp-*"]}, "team-a", "api", "v1", True, "in the scope"),
    ({"repositories": ["team-a/*"], "exclude": ["team-a/api"]}, "team-a", "api", "v1", False,
     # exclude wins
     "excluded by 'team-a/api'"),
    ({"namespaces": ["team-a"], "exclude": ["*/secret-*"]}, "team-a", "secret-x", "v1", False, "excluded by"),
    ({"tag_filter": r"^v\d+\.\d+\.\d+$"}, "team-a", "api", "v1.2.3", True, "in the scope"),
    ({"tag_filter": r"^v\d+\.\d+\.\d+$"}, "team-a", "api", "latest", False,
     "tag 'latest' does not match '^v\\\\d+\\\\.\\\\d+\\\\.\\\\d+$'"),
    # full match, not search
    ({"tag_filter": "v1"}, "team-a", "api", "v1.2", False, "does not match"),
    ({"tag_filter": "v1.*"}, "team-a", "api", "v1.2", True, "in the scope"),
    ({"tag_filter": "release|v.*"}, "team-a", "api", "release", True, "in the scope"),
    ({"tag_filter": "release|v.*"}, "team-a", "api", "release-2", False, "does not match"),
    ({"enabled": False}, "team-a", "api", "v1", False, "target 'beijing-prod' is disabled"),
]


@pytest.mark.parametrize("settings,namespace,repo,tag,expected,reason", CASES)
def test_in_scope(settings, namespace, repo, tag, expected, reason):
    decision = in_scope(target(**settings), namespace, repo, tag)
    assert isinstance(decision, ScopeDecision)
    assert decision.in_scope is expected and bool(decision) is expected
    assert reason in decision.reason


def test_exclusion_is_reported_before_a_failing_tag():
    decision = in_scope(target(exclude=["team-a/*"], tag_filter="v.*"), "team-a", "api", "latest")
    assert decision.reason == "excluded by 'team-a/*'"


@pytest.mark.parametrize("override,namespace,repo,expected", [
    (None, "team-a", "api", ("team-a", "api")),
    ("mirror", "team-a", "api", ("mirror", "api")),
    ("mirror", "team-b", "web", ("mirror", "web")),
])
def test_target_names(override, namespace, repo, expected):
    assert target_names(target(target_namespace=override), namespace, repo) == expected
