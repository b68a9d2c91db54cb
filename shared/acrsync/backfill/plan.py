"""What a backfill would do, decided without I/O: per repository, the tags in scope, those already on the
target with the same digest, those to create, those skipped and why; the bytes to move; the duration under
the configured caps; and, over the threshold, the OSS route the ACR documentation recommends instead.

Sync rules never copy images pushed before the rule existed, so existing images need a manual sync task
each (CreateRepoSyncTask) or, for very large volumes, a copy of the instance's OSS bucket and an import:
https://www.alibabacloud.com/help/en/acr/user-guide/synchronize-instances-across-accounts
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from acrsync import coverage
from acrsync.config import BackfillConfig, Target
from acrsync.drift import SourceTag, TagDrift, TagState
from acrsync.model import RepoInfo, SyncRule
from acrsync.records import ImageRef, Record, record_key

PAGE_SIZE = 100


class Skip(str, Enum):
    EXCLUDED = "excluded"
    BEFORE_SINCE = "before --since"
    COVERED = "covered by a rule"
    BLOCKED = "blocked by grants"
    KNOWN = "task already made"
    DIFFERS = "differs, override off"


@dataclass
class RepoPlan:
    namespace: str
    repo: str
    repo_id: str
    in_scope: int = 0
    on_target: int = 0
    to_create: list[SourceTag] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)     # Skip (a str) or a reason
    bytes: int = 0

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.repo}"

    def to_dict(self) -> dict[str, Any]:
        return {"repository": self.path, "in_scope": self.in_scope, "on_target": self.on_target,
                "to_create": len(self.to_create), "skipped": {k.value if isinstance(k, Skip) else k: v
                                                              for k, v in sorted(self.skipped.items())},
                "bytes": self.bytes}


def decide(target: Target, repo: RepoInfo, drift: TagDrift, *, rules: list[SyncRule], since_ms: int | None,
           blocked: bool) -> Skip | str:
    """``"on_target"``, ``"create"`` or the reason to skip one classified source tag (drift.py)."""
    src = drift.source
    if drift.state is TagState.OK:
        return "on_target"
    assert src is not None, "only source tags are decided (plan_page skips the others)"
    if since_ms is not None and src.pushed_ms and src.pushed_ms < since_ms:
        return Skip.BEFORE_SINCE
    if drift.state is TagState.IN_FLIGHT:
        return Skip.KNOWN
    if drift.state is TagState.DIGEST_DIFFERS and not drift.overwrites:
        return Skip.DIFFERS          # a sync task would not replace the target's tag
    # A rule that existed when the image was pushed made its own task; a newer rule never copies it.
    if coverage.covering_rule(rules, target, repo.namespace, repo.name, src.tag,
                              pushed_at_ms=src.pushed_ms or None) is not None:
        return Skip.COVERED
    if blocked:
        return Skip.BLOCKED
    return "create"


def plan_page(plan: RepoPlan, target: Target, repo: RepoInfo, listed: int, drifts: list[TagDrift], *,
              rules: list[SyncRule], since_ms: int | None, blocked: bool) -> list[SourceTag]:
    """Add one classified page (``listed`` source tags, ``drifts`` those in the tag filter) to ``plan``;
    return the tags of this page to create."""
    plan.skipped[Skip.EXCLUDED] += listed - len(drifts)
    if not plan.skipped[Skip.EXCLUDED]:
        del plan.skipped[Skip.EXCLUDED]
    out = []
    for drift in drifts:
        if drift.state is TagState.EXTRA or drift.source is None:
            continue
        verdict = decide(target, repo, drift, rules=rules, since_ms=since_ms, blocked=blocked)
        if verdict is Skip.BEFORE_SINCE:
            plan.skipped[verdict] += 1
            continue
        plan.in_scope += 1
        if verdict == "on_target":
            plan.on_target += 1
        elif verdict == "create":
            plan.to_create.append(drift.source)
            plan.bytes += drift.source.size
            out.append(drift.source)
        else:
            plan.skipped[verdict] += 1
    return out


def in_flight_of(known: dict[str, Record], target: str, instance_id: str, namespace: str,
                 repo: str) -> Callable[[str, str], str | None]:
    """drift's ``in_flight(tag, digest)``: the ledger record that already made a task for the image."""
    def check(tag: str, digest: str) -> str | None:
        image = ImageRef(instance_id=instance_id, namespace=namespace, repo=repo, tag=tag, digest=digest)
        rec = known.get(record_key(image, target))
        return rec.key if rec is not None and rec.task_id is not None else None
    return check


@dataclass(frozen=True)
class Estimate:
    tasks: int
    calls: int
    seconds: float
    bound_by: str                  # "qps" | "max_in_flight"


def estimate(tasks: int, tags_listed: int, repos: int, config: BackfillConfig) -> Estimate:
    """Calls = one CreateRepoSyncTask per task + the paging floor (source and target tag pages per
    repository); time = the slower of the QPS cap and the in-flight cap (tasks open ``task_seconds`` each)."""
    pages = 2 * max(repos, math.ceil(tags_listed / PAGE_SIZE)) if tags_listed else 2 * repos
    calls = tasks + pages
    by_qps = calls / config.qps
    by_flight = tasks * config.task_seconds / config.max_in_flight
    return Estimate(tasks=tasks, calls=calls, seconds=max(by_qps, by_flight),
                    bound_by="qps" if by_qps >= by_flight else "max_in_flight")


OSS_STEPS = (
    ("Sync rules and tasks replicate only what they are given; for many existing images the ACR "
     "documentation recommends copying the source instance's OSS bucket and importing it instead",
     "https://www.alibabacloud.com/help/en/acr/user-guide/synchronize-instances-across-accounts"),
    ("Copy every object of the source instance's OSS bucket to the OSS bucket of the target instance in "
     "account B with OSS data replication",
     "https://www.alibabacloud.com/help/en/object-storage-service/latest/cross-region-replication-1"),
    ("On the target instance, create an import rule with the OSS bucket as the migration source and start "
     "the image import task (ACR console: the instance's image import)",
     "https://www.alibabacloud.com/help/en/acr/user-guide/synchronize-instances-across-accounts"),
    ("Afterwards, run `acrsync backfill --target NAME` again: it plans only what the import left out",
     None),
)


@dataclass(frozen=True)
class OssRoute:
    """The plan is over the threshold: the numbers behind the advice and the documented steps."""

    bytes: int
    tasks: int
    seconds: float
    reasons: tuple[str, ...]
    steps: tuple[tuple[str, str | None], ...] = OSS_STEPS

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "tasks": self.tasks, "seconds": round(self.seconds, 1),
                "reasons": list(self.reasons),
                "steps": [{"step": s, "doc": url} for s, url in self.steps]}


def oss_route(total_bytes: int, est: Estimate, config: BackfillConfig) -> OssRoute | None:
    reasons: list[str] = []
    if total_bytes >= config.oss_threshold_bytes:
        reasons.append(
            f"{human_bytes(total_bytes)} to move (threshold {human_bytes(config.oss_threshold_bytes)})"
        )
    if est.tasks >= config.oss_threshold_tags:
        reasons.append(f"{est.tasks} sync tasks (threshold {config.oss_threshold_tags})")
    if not reasons:
        return None
    return OssRoute(bytes=total_bytes, tasks=est.tasks, seconds=est.seconds, reasons=tuple(reasons))


@dataclass
class BackfillPlan:
    target: str
    repos: list[RepoPlan]
    estimate: Estimate
    oss: OssRoute | None = None
    blocked_by: dict[str, Any] | None = None     # the grant finding that blocks the target

    @property
    def to_create(self) -> int:
        return sum(len(r.to_create) for r in self.repos)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.repos)

    def totals(self) -> dict[str, Any]:
        skipped: Counter[str] = Counter()
        for r in self.repos:
            skipped.update({k.value if isinstance(k, Skip) else k: v for k, v in r.skipped.items()})
        return {"repositories": len(self.repos), "in_scope": sum(r.in_scope for r in self.repos),
                "on_target": sum(r.on_target for r in self.repos), "to_create": self.to_create,
                "skipped": dict(sorted(skipped.items())), "bytes": self.bytes}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "totals": self.totals(),
                "estimate": {"tasks": self.estimate.tasks, "calls": self.estimate.calls,
                             "seconds": round(self.estimate.seconds, 1), "bound_by": self.estimate.bound_by},
                "blocked_by": self.blocked_by, "oss_route": self.oss.to_dict() if self.oss else None,
                "repositories": [r.to_dict() for r in self.repos],
                "note": "sync rules never copy images pushed before they existed; these need the backfill"}


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_seconds(s: float) -> str:
    s = int(round(s))
    if s < 90:
        return f"{s}s"
    if s < 5400:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
