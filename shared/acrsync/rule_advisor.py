"""The rule advisor: the smallest set of native sync rules that would take future pushes of a target's
repositories over from acrsync, each checked against the documented prerequisites. Pure, no I/O.

A native rule replicates server-side on push, so acrsync then spends no OpenAPI call on those images
(coverage.py counts them as covered). Rules never copy images pushed before they exist: what is already in
the source still needs ``acrsync backfill``.

Prerequisites (cross-account replication document,
https://www.alibabacloud.com/help/en/acr/user-guide/synchronize-instances-across-accounts, and the
CreateRepoSyncRule reference, https://www.alibabacloud.com/help/en/acr/developer-reference/api-cr-2018-12-01-createreposyncrule):
- a namespace-level rule needs a namespace of the same name on the target, with automatic repository
  creation turned on;
- a repository-level rule needs the same repository on the target, configured the same way (type and tag
  immutability);
- the cross-account grant must be clean;
- the instance's rule limit. No public document states the number: it is ``rules.max_rules_per_instance``.
"""

from __future__ import annotations

import re
from dataclasses import field
from typing import Any

from acrsync import scope
from acrsync.config import Config, Target
from acrsync.model import NamespaceInfo, RepoInfo, SyncRule
from acrsync.value import Frozen, Value, dataclass

NAME_MAX = 64


@dataclass(frozen=True)
class Proposal(Frozen):
    """One CreateRepoSyncRule call."""

    name: str
    scope: str                          # NAMESPACE | REPO
    namespace: str
    repo: str | None
    repo_filter: str | None             # NAMESPACE rules: which repositories (None: all)
    tag_filter: str
    target_namespace: str
    target_repo: str | None
    target_region: str
    target_instance_id: str
    target_user_id: str | None
    repositories: tuple[str, ...]       # 'ns/repo' it takes over

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scope": self.scope, "namespace": self.namespace, "repo": self.repo,
                "repo_filter": self.repo_filter, "tag_filter": self.tag_filter,
                "target_namespace": self.target_namespace, "target_repo": self.target_repo,
                "target_instance_id": self.target_instance_id, "target_region": self.target_region,
                "target_user_id": self.target_user_id, "repositories": list(self.repositories)}


@dataclass(frozen=True)
class Unmet(Frozen):
    """A repository (or namespace) no rule can be proposed for, and what to do about it."""

    what: str
    reason: str
    fix: str


@dataclass
class RulePlan(Value):
    target: str
    proposals: list[Proposal] = field(default_factory=list)
    unmet: list[Unmet] = field(default_factory=list)
    already_covered: list[str] = field(default_factory=list)
    blocked_by: dict[str, Any] | None = None
    rules_now: int = 0
    rule_limit: int = 0
    backfill_remaining: int | None = None       # tags a backfill still has to copy (rules never do)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "proposals": [p.to_dict() for p in self.proposals],
                "unmet": [u.__dict__ for u in self.unmet], "already_covered": self.already_covered,
                "blocked_by": self.blocked_by, "rules_now": self.rules_now, "rule_limit": self.rule_limit,
                "backfill_remaining": self.backfill_remaining,
                "note": "sync rules replicate only images pushed after they exist; existing images need "
                        "acrsync backfill"}


def rule_name(prefix: str, *parts: str) -> str:
    """A stable rule name from its parts (letters, digits, '-'), at most 64 characters."""
    raw = "-".join(parts)
    clean = re.sub(r"[^A-Za-z0-9-]+", "-", raw).strip("-").lower()
    return (prefix + clean)[:NAME_MAX]


def selects(rule: SyncRule, target: Target, namespace: str, repo: str) -> bool:
    """Whether an existing PASSIVE rule already takes ``namespace/repo`` to ``target`` on push, for every
    tag the target wants (its TagFilter is the target's or matches everything)."""
    if rule.trigger.upper() != "PASSIVE" or rule.direction.upper() != "FROM":
        return False
    if rule.target_instance_id != target.instance_id or rule.target_region != target.region:
        return False
    if (rule.tag_filter or ".*") not in (target.tag_filter, ".*"):
        return False
    s = rule.scope.upper()
    tns, trepo = scope.target_names(target, namespace, repo)
    if s == "REPO":
        return (rule.local_namespace, rule.local_repo) == (namespace, repo) and \
            (rule.target_namespace or namespace, rule.target_repo or repo) == (tns, trepo)
    if s == "NAMESPACE":
        return rule.local_namespace == namespace and (rule.target_namespace or namespace) == tns and \
            _full(rule.repo_filter, repo)
    if s == "INSTANCE":
        return _full(rule.namespace_filter, namespace) and _full(rule.repo_filter, repo) and tns == namespace
    return False


def _full(pattern: str | None, value: str) -> bool:
    if not pattern:
        return True
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def advise(config: Config, target: Target, *, source_repos: list[RepoInfo], rules: list[SyncRule],
           target_namespaces: dict[str, NamespaceInfo], target_repos: dict[str, RepoInfo],
           grant_finding: dict[str, Any] | None) -> RulePlan:
    """Propose rules for ``target``'s in-scope repositories (``source_repos``: every source repository).

    Per namespace: one NAMESPACE rule when the target namespace exists with automatic repository creation
    (RepoNameFilter: none when every repository of the namespace is in scope, else the names); otherwise
    one REPO rule per repository that exists on the target configured the same way.
    """
    limit = config.rules.max_rules_per_instance
    plan = RulePlan(target=target.name, rules_now=len(rules), rule_limit=limit)
    if grant_finding is not None:
        plan.blocked_by = grant_finding
        return plan
    cross = target.account_id != config.source.account_id
    by_ns: dict[str, list[RepoInfo]] = {}
    for r in source_repos:
        by_ns.setdefault(r.namespace, []).append(r)
    candidates: list[Proposal] = []
    for ns in sorted(by_ns):
        all_repos = sorted(by_ns[ns], key=lambda r: r.name)
        wanted = [r for r in all_repos if _in_scope(target, r)]
        todo = []
        for r in wanted:
            if any(selects(rule, target, ns, r.name) for rule in rules):
                plan.already_covered.append(r.path)
            else:
                todo.append(r)
        if not todo:
            continue
        tns, _ = scope.target_names(target, ns, todo[0].name)
        target_ns = target_namespaces.get(tns)
        if target_ns is not None and target_ns.auto_create_repo:
            whole = len(wanted) == len(all_repos) and not target.repositories and not target.exclude
            names = tuple(r.name for r in todo)
            repo_filter = None if whole and len(todo) == len(wanted) else \
                "^(?:" + "|".join(re.escape(n) for n in names) + ")$"
            candidates.append(Proposal(
                name=rule_name(config.rules.name_prefix, target.name, ns), scope="NAMESPACE", namespace=ns,
                repo=None, repo_filter=repo_filter, tag_filter=target.tag_filter, target_namespace=tns,
                target_repo=None, target_region=target.region, target_instance_id=target.instance_id,
                target_user_id=target.account_id if cross else None,
                repositories=tuple(r.path for r in todo)))
            continue
        ns_reason = (f"namespace {tns!r} does not exist on the target" if target_ns is None else
                     f"namespace {tns!r} on the target has automatic repository creation turned off")
        for r in todo:
            trepo = target_repos.get(f"{tns}/{r.name}")
            if trepo is None:
                plan.unmet.append(Unmet(r.path, f"{ns_reason}, and repository {tns}/{r.name} does not exist "
                                                "there either",
                                        f"acrsync grants apply --target {target.name} (creates the namespace "
                                        "with automatic repository creation), then plan again"))
                continue
            if (trepo.type, trepo.tag_immutability) != (r.type, r.tag_immutability):
                plan.unmet.append(
                    Unmet(
                        r.path,
                        f"{tns}/{r.name} on the target is {trepo.type}, tag immutability "
                        f"{trepo.tag_immutability}; the source is {r.type}, "
                        f"{r.tag_immutability}",
                        "configure the target repository like the source one",
                    )
                )
                continue
            candidates.append(Proposal(
                name=rule_name(config.rules.name_prefix, target.name, ns, r.name), scope="REPO", namespace=ns,
                repo=r.name, repo_filter=None, tag_filter=target.tag_filter, target_namespace=tns,
                target_repo=r.name, target_region=target.region, target_instance_id=target.instance_id,
                target_user_id=target.account_id if cross else None, repositories=(r.path,)))
    room = max(0, limit - len(rules))
    plan.proposals = candidates[:room]
    for p in candidates[room:]:
        plan.unmet.append(Unmet(p.name, f"the instance holds {len(rules)} rule(s) and its limit is {limit} "
                                        "(rules.max_rules_per_instance)",
                                "raise rules.max_rules_per_instance if your instance allows more, or keep "
                                "these repositories on acrsync"))
    return plan


def _in_scope(target: Target, repo: RepoInfo) -> bool:
    return scope.repo_in_scope(target, repo.namespace, repo.name).in_scope


def pending(plan: RulePlan, existing: list[SyncRule]) -> list[Proposal]:
    """Proposals not created yet (a rule of the same name exists): apply is idempotent."""
    names = {r.name for r in existing}
    return [p for p in plan.proposals if p.name not in names]
