"""Which ACR sync rule, if any, already replicates a pushed image to a target. Pure, no I/O.

API::

    covering_rule(rules, target, namespace, repo, tag, *, pushed_at_ms=None) -> SyncRule | None
    explain(rules, target, namespace, repo, tag, *, pushed_at_ms=None) -> list[RuleCheck]
    RuleCheck(rule, covers, reason)            # a NamedTuple: unpack as (rule, covers, reason)

A rule covers an image for a target when all hold (checked in this order; the first failure is the reason):
trigger PASSIVE (INITIATIVE rules run only by hand); direction FROM (the queried instance is the source);
TargetInstanceId and TargetRegionId are the target's (ListRepoSyncRule returns no TargetUserId: the
instance id identifies the account); the scope selects the image (REPO: the same namespace and repo;
NAMESPACE: the same namespace and RepoNameFilter; INSTANCE: NamespaceNameFilter and RepoNameFilter);
the rule keeps the names (it writes to the same namespace/repo: a renaming rule never counts, since ACR
rules keep names); TagFilter matches the tag; the rule writes to the namespace/repo the config wants
(``scope.target_names``: a target that renames is served only by acrsync's own tasks);
and, when ``pushed_at_ms`` is given, the rule existed before the push (rules replicate only images
pushed after they are created).

Filters are matched in full (``re.fullmatch``). ACR's own matching semantics are not documented, so when
``re.search`` would match where the full match does not, the reason says so: a rule that ACR applies
while acrsync does not count it shows up in the compliance report instead of passing silently.

A rule without a CreateTime (0) counts as older than any push. TargetRepoName is read only for REPO rules:
NAMESPACE and INSTANCE rules keep the source repository name.

Rules are evaluated oldest first (CreateTime, then SyncRuleId), so the answer does not depend on the
order ListRepoSyncRule returns them in.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from acrsync.config import Target
from acrsync.model import SyncRule
from acrsync.scope import target_names

# Sync rules replicate into the same namespace (and, by repository, the same repository name); only manual
# tasks may rename.
KEEP_NAMES = ("https://www.alibabacloud.com/help/en/acr/user-guide/"
              "replicate-images-between-instances-in-the-same-account")


class RuleCheck(NamedTuple):
    rule: SyncRule
    covers: bool
    reason: str


class _NoCover(Exception):
    """Internal: a check failed; ``args[0]`` is the reason."""


def _filter(label: str, pattern: str | None, value: str, what: str) -> None:
    """Check one regex filter (unset or empty: matches all); raise _NoCover when it does not match."""
    if not pattern:
        return
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise _NoCover(f"{label} {pattern!r} is not a valid regex ({e}); acrsync cannot tell what the rule "
                       "selects, so it does not count it") from None
    if rx.fullmatch(value):
        return
    if rx.search(value):
        raise _NoCover(f"{what} {value!r} does not match {label} {pattern!r} in full (re.search would match; "
                       "ACR's matching semantics are unverified; if ACR applies the rule to this "
                       f"{what}, anchor the filter as '^(?:{pattern})$' so both agree)")
    raise _NoCover(f"{what} {value!r} does not match {label} {pattern!r}")


def _check(rule: SyncRule, target: Target, namespace: str, repo: str, tag: str,
           pushed_at_ms: int | None) -> str:
    """The reason the rule covers the image; raises _NoCover with the reason it does not."""
    path = f"{namespace}/{repo}"
    if rule.trigger.upper() != "PASSIVE":
        raise _NoCover(f"trigger {rule.trigger}: the rule runs only when started by hand, not on push")
    if rule.direction.upper() != "FROM":
        raise _NoCover(f"direction {rule.direction}: this instance is the rule's target, not its source")
    if rule.target_instance_id != target.instance_id:
        raise _NoCover(f"replicates to instance {rule.target_instance_id}, not {target.instance_id} "
                       f"(target {target.name!r})")
    if rule.target_region != target.region:
        raise _NoCover(f"replicates to region {rule.target_region}, not {target.region} "
                       f"(target {target.name!r})")
    scope = rule.scope.upper()
    if scope == "REPO":
        rule_path = f"{rule.local_namespace}/{rule.local_repo}"
        if rule.local_namespace != namespace or rule.local_repo != repo:
            raise _NoCover(f"REPO rule for {rule_path!r}, not {path!r}")
    elif scope == "NAMESPACE":
        if rule.local_namespace != namespace:
            raise _NoCover(f"NAMESPACE rule for namespace {rule.local_namespace!r}, not {namespace!r}")
        _filter("RepoNameFilter", rule.repo_filter, repo, "repository")
    elif scope == "INSTANCE":
        _filter("NamespaceNameFilter", rule.namespace_filter, namespace, "namespace")
        _filter("RepoNameFilter", rule.repo_filter, repo, "repository")
    else:
        raise _NoCover(f"unknown scope {rule.scope!r}; expected REPO, NAMESPACE or INSTANCE")
    rule_ns = rule.target_namespace or namespace
    rule_repo = (rule.target_repo or repo) if scope == "REPO" else repo
    writes = f"{rule_ns}/{rule_repo}"
    if writes != path:
        raise _NoCover(f"the rule renames {path!r} to {writes!r}: ACR sync rules keep names ({KEEP_NAMES}), "
                       "so acrsync never counts a renaming rule")
    _filter("TagFilter", rule.tag_filter, tag, "tag")
    want = "/".join(target_names(target, namespace, repo))
    if writes != want:
        raise _NoCover(f"writes to {writes!r} but target {target.name!r} wants {want!r}")
    if pushed_at_ms is not None and rule.create_time_ms > pushed_at_ms:
        raise _NoCover(f"created at {rule.create_time_ms} ms, after the push at {pushed_at_ms} ms: a rule "
                       "replicates only images pushed after it exists")
    return f"{scope} rule replicates {path}:{tag} to {target.instance_id}/{writes} on push"


def _ordered(rules: list[SyncRule]) -> list[SyncRule]:
    return sorted(rules, key=lambda r: (r.create_time_ms, r.rule_id))


def explain(rules: list[SyncRule], target: Target, namespace: str, repo: str, tag: str, *,
            pushed_at_ms: int | None = None) -> list[RuleCheck]:
    """Every rule with whether it covers ``namespace/repo:tag`` for ``target`` and why (oldest first)."""
    out = []
    for rule in _ordered(rules):
        try:
            out.append(RuleCheck(rule, True, _check(rule, target, namespace, repo, tag, pushed_at_ms)))
        except _NoCover as e:
            out.append(RuleCheck(rule, False, str(e.args[0])))
    return out


def covering_rule(rules: list[SyncRule], target: Target, namespace: str, repo: str, tag: str, *,
                  pushed_at_ms: int | None = None) -> SyncRule | None:
    """The oldest rule that replicates the image to the target on push, or None (acrsync must do it)."""
    for rule in _ordered(rules):
        try:
            _check(rule, target, namespace, repo, tag, pushed_at_ms)
        except _NoCover:
            continue
        return rule
    return None
