"""The push path: for each configured target that no sync rule covers, one tag-filtered manual sync
task per image, exactly once.

Order per target (docs/ARCHITECTURE.md): scope -> coverage -> grants -> ledger create-if-absent ->
CreateRepoSyncTask -> ledger compare-and-set. The ledger's create-if-absent is the exactly-once gate:
EventBridge delivers at least once and FC may run the same event twice at the same time; only the
caller that creates the record creates the task. Anything that fails after the record exists leaves
it QUEUED (or ERROR) for reconcile, so nothing is lost and nothing is created twice.

No SDK imports here: the adapters are injected (``acrsync.deps.Deps``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import field
from enum import Enum
from typing import Any, TypedDict

from acrsync import coverage, scope
from acrsync.cloud.errors import BudgetExhausted, CloudError, NotFound
from acrsync.config import Target
from acrsync.deps import Deps
from acrsync.errors import AcrsyncError
from acrsync.events import Parsed, PushCompleted, Rejected, SyncCompleted, TimerTick
from acrsync.failures import backoff_seconds, classify
from acrsync.grants.findings import Finding
from acrsync.jsonlog import log_decision
from acrsync.ledger import VersionConflict
from acrsync.lifecycle import RecordChanges, TaskPhase, record_status
from acrsync.records import Attempt, ErrorInfo, ImageRef, Origin, Record, Status, blocking_finding
from acrsync.value import Value, dataclass

log = logging.getLogger("acrsync.push")


class Outcome(str, Enum):
    """What happened to one image for one target."""

    CREATED = "created"              # a manual sync task was made
    COVERED = "covered"              # a sync rule replicates it
    OUT_OF_SCOPE = "out_of_scope"    # the target does not want it
    BLOCKED = "blocked"              # a grant or prerequisite fails; recorded BLOCKED
    QUEUED = "queued"                # recorded; reconcile makes the task
    DUPLICATE = "duplicate"          # another delivery of the same image already has a record
    FAILED = "failed"                # nothing to replicate (gone from the source) or the event failed


@dataclass
class Summary(Value):
    """What one invocation did: per target, how many images went each way; plus rejected events."""

    per_target: dict[str, Counter[Outcome]] = field(default_factory=dict)
    rejected: int = 0
    sync_updates: int = 0
    timers: int = 0

    def count(self, target: str, outcome: Outcome) -> None:
        self.per_target.setdefault(target, Counter())[Outcome(outcome)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": {t: {o.value: c.get(o, 0) for o in Outcome}
                        for t, c in sorted(self.per_target.items())},
            "rejected": self.rejected,
            "sync_updates": self.sync_updates,
            "timers": self.timers,
        }


class DeliveryFailed(AcrsyncError):
    """The ledger or the cloud failed before some event's outcome was recorded: fail the invocation so
    the platform delivers the batch again (EventBridge retries, then its dead-letter queue). Redelivery
    is safe: items already handled are duplicates for the ledger's create-if-absent."""

    def __init__(self, summary: Summary, errors: list[str]):
        self.summary = summary
        self.errors = errors
        super().__init__(f"{len(errors)} event(s) not recorded, the batch must be delivered again: "
                         + "; ".join(errors[:3]))


def handle(items: list[Parsed], deps: Deps) -> Summary:
    """Handle parsed events (``acrsync.events.detect_and_parse`` output).

    Bad input never raises: it is stored as rejected and acknowledged. One item failing never stops the
    others. When the ledger or the cloud failed before an item's outcome was recorded, the rest of the
    batch is still handled and then ``DeliveryFailed`` is raised, so nothing is lost.
    """
    summary = Summary()
    failures: list[str] = []
    for item in items:
        try:
            if isinstance(item, Rejected):
                reject(item, deps, summary)
            elif isinstance(item, PushCompleted):
                handle_push(item, deps, summary)
            elif isinstance(item, SyncCompleted):
                handle_sync_completed(item, deps, summary)
            elif isinstance(item, TimerTick):
                summary.timers += 1
        except Exception as e:
            log.exception("event handling failed")
            log_decision(log, decision="error", event_id=getattr(item, "event_id", None),
                         error=f"{type(e).__name__}: {e}")
            summary.count("*", Outcome.FAILED)
            what = getattr(item, "event_id", None) or type(item).__name__
            failures.append(f"{what}: {type(e).__name__}: {e}")
    if failures:
        raise DeliveryFailed(summary, failures)
    return summary


def reject(item: Rejected, deps: Deps, summary: Summary, request_id: str | None = None) -> None:
    """Store a malformed or unauthenticated event with its reason; it is acknowledged, never retried.

    The id is stable (the event id, or a hash of the payload), so a redelivered or replayed bad event
    is stored once.
    """
    stored = item.to_rejected_event(deps.clock.now(), request_id)
    deps.ledger.put_rejected(stored)
    summary.rejected += 1
    log_decision(log, decision="rejected", event_id=stored.id, reason=item.reason, source=item.source)


def handle_push(event: PushCompleted, deps: Deps, summary: Summary) -> None:
    cfg = deps.config
    if event.instance_id and event.instance_id != cfg.source.instance_id:
        reject(Rejected(reason=f"push from instance {event.instance_id}, but the configured source is "
                               f"{cfg.source.instance_id}; check the trigger's event pattern",
                        payload=_raw_text(event), source=event.via, event_id=event.event_id), deps, summary)
        return
    targets = [t for t in cfg.targets if t.enabled]
    wanted = []
    for target in targets:
        decision = scope.in_scope(target, event.namespace, event.repo, event.tag)
        if decision.in_scope:
            wanted.append(target)
        else:
            summary.count(target.name, Outcome.OUT_OF_SCOPE)
            log_decision(log, decision="out_of_scope", target=target.name, image=_image_str(event),
                         reason=decision.reason, event_id=event.event_id)
    if not wanted:
        return

    def gone(decision: str, reason: str) -> None:
        """The image is no longer on the source: nothing to replicate (counted, logged, acknowledged)."""
        for target in wanted:
            summary.count(target.name, Outcome.FAILED)
        log_decision(log, decision=decision, image=_image_str(event), event_id=event.event_id, reason=reason)

    repo = deps.resolver.repository(deps.acr, event.namespace, event.repo, event.repo_id)
    if repo is None:
        gone("repo_missing", "the repository does not exist on the source (deleted since the push?)")
        return
    digest = event.digest
    if not digest:
        tag = deps.resolver.tag(deps.acr, repo, event.tag)
        if tag is None:
            gone("tag_missing", "the tag no longer exists on the source")
            return
        digest = tag.digest
    image = ImageRef(instance_id=cfg.source.instance_id, namespace=event.namespace, repo=event.repo,
                     tag=event.tag, digest=_bare(digest))
    pushed_at_ms = event.pushed_at_ms
    for target in wanted:
        outcome = replicate(image, repo.repo_id, target, deps, origin=Origin.PUSH, event_id=event.event_id,
                            pushed_at_ms=pushed_at_ms)
        summary.count(target.name, outcome)


class _RecordBase(TypedDict):
    """The fields every record ``replicate`` creates shares."""

    image: ImageRef
    target: str
    event_id: str | None
    created_at: float
    updated_at: float


def replicate(image: ImageRef, repo_id: str, target: Target, deps: Deps, *, origin: Origin,
              event_id: str | None = None, pushed_at_ms: int | None = None) -> Outcome:
    """Make sure ``image`` reaches ``target``: covered by a rule, blocked, or one manual task.

    Shared by the push path and the backfill.
    """
    now = deps.clock.now()
    rule = coverage.covering_rule(deps.rules.rules(deps.acr), target, image.namespace, image.repo, image.tag,
                                  pushed_at_ms=pushed_at_ms)
    base = _RecordBase(image=image, target=target.name, event_id=event_id, created_at=now, updated_at=now)
    if rule is not None:
        created, rec = deps.ledger.create_if_absent(
            Record(origin=Origin.RULE, status=Status.COVERED, rule_id=rule.rule_id, **base))
        outcome = Outcome.COVERED if created else Outcome.DUPLICATE
        _log(rec, outcome, rule_id=rule.rule_id)
        return outcome

    verdict = deps.grants.verdict(target, deps.session)
    if not verdict.clean:
        finding = _first_error(verdict.findings)
        created, rec = deps.ledger.create_if_absent(
            Record(origin=origin, status=Status.BLOCKED, finding=finding, **base))
        outcome = Outcome.BLOCKED if created else Outcome.DUPLICATE
        _log(rec, outcome, finding=finding.code if finding else None)
        return outcome

    created, rec = deps.ledger.create_if_absent(Record(origin=origin, status=Status.QUEUED, **base))
    if not created:
        if rec.status is Status.BLOCKED and rec.task_id is None:
            # Grants turned clean since: claim the record with compare-and-set; one claimant wins.
            try:
                claim = RecordChanges(status=Status.QUEUED, finding=None)
                rec = deps.ledger.update(claim.apply(rec, now=now))
            except VersionConflict:
                _log(rec, Outcome.DUPLICATE)
                return Outcome.DUPLICATE
        else:
            _log(rec, Outcome.DUPLICATE)
            return Outcome.DUPLICATE
    return create_task(rec, repo_id, target, deps)


def create_task(rec: Record, repo_id: str, target: Target, deps: Deps) -> Outcome:
    """CreateRepoSyncTask for a record this caller owns (it created or claimed it), then record the id."""
    cfg = deps.config
    tns, trepo = scope.target_names(target, rec.image.namespace, rec.image.repo)
    cross = target.account_id != cfg.source.account_id
    def create(rid: str) -> str:
        return deps.acr.create_repo_sync_task(
            cfg.source.instance_id, rid, rec.image.tag,
            target_region=target.region, target_instance_id=target.instance_id,
            target_namespace=tns, target_repo=trepo, target_tag=rec.image.tag,
            target_user_id=target.account_id if cross else None,
            override=target.override, priority=target.priority)

    try:
        try:
            task_id = create(repo_id)
        except NotFound as e:
            # A RepoId from the event (or the cache) may be stale: re-resolve by name once.
            if e.service != "cr" or "REPO" not in (e.code or "").upper():
                raise
            fresh = deps.resolver.refresh(deps.acr, rec.image.namespace, rec.image.repo)
            if fresh is None or fresh.repo_id == repo_id:
                raise
            task_id = create(fresh.repo_id)
    except BudgetExhausted as e:
        _save(deps, rec, RecordChanges(status=Status.QUEUED, last_error=_err(e.last),
                                       next_retry_at=deps.clock.now()))
        _log(rec, Outcome.QUEUED, reason="time budget ran out; reconcile creates the task")
        return Outcome.QUEUED
    except CloudError as e:
        c = classify(e.code, http_status=e.http_status)
        now = deps.clock.now()
        if c.blocks:
            finding = blocking_finding(target.name, c.code, e.message, c.hint.format(target=target.name))
            _save(deps, rec, RecordChanges(status=Status.BLOCKED, last_error=_err(e), finding=finding))
            _log(rec, Outcome.BLOCKED, code=e.code)
            return Outcome.BLOCKED
        delay = backoff_seconds(1, cfg.reconcile.backoff_base_seconds, cfg.reconcile.backoff_max_seconds,
                                deps.rand.random())
        _save(deps, rec, RecordChanges(status=Status.QUEUED, last_error=_err(e), next_retry_at=now + delay))
        _log(rec, Outcome.QUEUED, code=e.code, reason="CreateRepoSyncTask failed; reconcile retries it")
        return Outcome.QUEUED
    now = deps.clock.now()
    saved = _save(deps, rec, RecordChanges(
        status=Status.PENDING, task_id=task_id, attempts=rec.attempts + 1,
        history=[*rec.history, Attempt(task_id=task_id, status="PENDING", created_at=now)],
        last_error=None, next_retry_at=None))
    _log(saved or rec, Outcome.CREATED, task_id=task_id)
    return Outcome.CREATED


def handle_sync_completed(event: SyncCompleted, deps: Deps, summary: Summary) -> None:
    """A task finished: read its status from ACR (the event's schema is unconfirmed) and record it.

    A status acrsync does not know is not recorded: the record stays as it is and reconcile, which
    treats such a task as still running, reports it (UNKNOWN_STATUS)."""
    if not event.task_id:
        return
    rec = deps.ledger.get_by_task(event.task_id)
    if rec is None or rec.task_id != event.task_id:
        return  # not ours, or an older attempt: reconcile owns rule-made and stale tasks
    task = deps.acr.get_repo_sync_task(deps.config.source.instance_id, event.task_id)
    status = record_status(task.status)
    if status is None:
        log_decision(log, decision="unknown_status", flag="UNKNOWN_STATUS", key=rec.key, task_id=task.task_id,
                     status=task.status, phase=TaskPhase.UNKNOWN.value)
        return
    try:
        changes = RecordChanges(status=status, task_issue=task.issue)
        deps.ledger.update(changes.apply(rec, now=deps.clock.now()))
        summary.sync_updates += 1
    except VersionConflict:
        pass  # reconcile wrote it first; it read the same truth


# ---- helpers ----------------------------------------------------------------------------------------

def _save(deps: Deps, rec: Record, changes: RecordChanges) -> Record | None:
    """Compare-and-set; on a conflict re-read once and re-apply (the task id must never be lost)."""
    for _ in range(3):
        try:
            return deps.ledger.update(changes.apply(rec, now=deps.clock.now()))
        except VersionConflict:
            fresh = deps.ledger.get(rec.key)
            if fresh is None:
                return None
            if fresh.task_id and "task_id" in changes.names and fresh.task_id != changes.task_id:
                log.error("record %s already has task %s; task %s is extra", rec.key, fresh.task_id,
                          changes.task_id)
                return fresh
            rec = fresh
    log.error("could not record %s after 3 conflicts; reconcile adopts the task", rec.key)
    return None


def _err(e: CloudError | None) -> ErrorInfo | None:
    if e is None:
        return None
    return ErrorInfo(code=e.code or "UNKNOWN", message=(e.message or "")[:500], request_id=e.request_id)


def _first_error(findings: list[Finding]) -> Finding | None:
    """The first finding that keeps the target from clean (an error, or an unproven grant), for the record."""
    for f in findings:
        if f.blocks:
            return f
    return None


def _bare(digest: str) -> str:
    return digest.removeprefix("sha256:")


def _image_str(event: PushCompleted) -> str:
    return f"{event.namespace}/{event.repo}:{event.tag}"


def _raw_text(event: PushCompleted) -> str:
    raw = getattr(event, "raw", None)
    return raw if isinstance(raw, str) else json.dumps(raw, default=str)


def _log(rec: Record, decision: Outcome | str, **fields: Any) -> None:
    name = decision.value if isinstance(decision, Outcome) else decision
    log_decision(log, decision=name, key=rec.key, target=rec.target, event_id=rec.event_id, **fields)
