"""Reconcile's decisions, pure: given a record and what ACR says of its task, what changes and what to do.

Level-triggered: the decision depends only on the record and the task as read now, never on which
events did or did not arrive, so running it twice, late, or concurrently (compare-and-set) is harmless.

A decision's changes are a ``RecordChanges``: typed fields, only the ones set are changed, and the record
they make is validated when they are applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from enum import Enum
from typing import Any

from acrsync import codec
from acrsync.config import ReconcileConfig
from acrsync.failures import backoff_seconds, classify
from acrsync.grants.findings import Finding
from acrsync.model import SyncTask
from acrsync.records import Attempt, ErrorInfo, Record, Status, blocking_finding
from acrsync.value import Frozen, dataclass


class TaskPhase(str, Enum):
    """Where a sync task is, from its status. The API reference lists no status values; these are the
    ones ACR is seen to return. Any other is UNKNOWN and is treated as still running: retrying a task
    that is in fact running would make a duplicate, so only the stuck rule may act on it."""

    ACTIVE = "active"            # PENDING, SYNCHRONIZING
    SUCCEEDED = "succeeded"      # SUCCESS
    FAILED = "failed"            # ERROR, CANCELED
    UNKNOWN = "unknown"          # a status acrsync does not know

    @classmethod
    def of(cls, status: str | None) -> TaskPhase:
        s = (status or "").upper()
        if s in ("PENDING", "SYNCHRONIZING"):
            return cls.ACTIVE
        if s == "SUCCESS":
            return cls.SUCCEEDED
        if s in ("ERROR", "CANCELED"):
            return cls.FAILED
        return cls.UNKNOWN


class Flag(str, Enum):
    """Something reconcile reports about a record besides what it changed (its output and the reports)."""

    UNKNOWN_STATUS = "UNKNOWN_STATUS"    # the task has a status acrsync does not know (treated as running)


def record_status(task_status: str | None) -> Status | None:
    """The ledger status for a task status; None for a status acrsync does not know."""
    if TaskPhase.of(task_status) is TaskPhase.UNKNOWN:
        return None
    return Status((task_status or "").upper())


class Action(str, Enum):
    NONE = "none"
    CREATE_TASK = "create_task"      # (re)create the manual sync task now
    CANCEL_TASK = "cancel_task"      # cancel a stuck task (then it is retried)


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET   # "not given" (None given means "clear the field")


class RecordChanges:
    """Changes to a ``Record``: only the fields given are changed (``None`` given means "clear it").

    Keyword-only and typed, so a wrong name fails where the change is made; ``apply`` checks the whole
    record it makes (``acrsync.codec``), so a change that leaves a record of the wrong shape fails before it
    is written.
    """

    FIELDS: tuple[str, ...]            # the keyword parameters of __init__ (set below the class)
    __slots__ = ("_values",)

    def __init__(self, *, status: Status | None | _Unset = UNSET, task_id: str | None | _Unset = UNSET,
                 batch_id: str | None | _Unset = UNSET, rule_id: str | None | _Unset = UNSET,
                 task_issue: str | None | _Unset = UNSET, attempts: int | None | _Unset = UNSET,
                 history: list[Attempt] | None | _Unset = UNSET,
                 last_error: ErrorInfo | None | _Unset = UNSET,
                 finding: Finding | None | _Unset = UNSET, stuck: bool | None | _Unset = UNSET,
                 gave_up: bool | None | _Unset = UNSET, next_retry_at: float | None | _Unset = UNSET):
        values = {k: v for k, v in locals().items() if k != "self" and v is not UNSET}
        if isinstance(attempts, int) and attempts < 0:
            raise ValueError(f"attempts must be >= 0, not {attempts}")
        object.__setattr__(self, "_values", values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("RecordChanges is immutable")

    def __getattr__(self, name: str) -> Any:
        if name in RecordChanges.FIELDS:
            return self._values.get(name)
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordChanges) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values)))

    def __repr__(self) -> str:
        return "RecordChanges(" + ", ".join(f"{k}={v!r}" for k, v in sorted(self._values.items())) + ")"

    def __bool__(self) -> bool:
        return bool(self._values)

    @property
    def names(self) -> list[str]:
        """The fields this changes, sorted (for logs and dry runs)."""
        return sorted(self._values)

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def merged(self, later: RecordChanges) -> RecordChanges:
        """These changes, then ``later``'s (a field set in both takes ``later``'s value)."""
        return RecordChanges(**{**self._values, **later._values})

    def apply(self, record: Record, *, now: float) -> Record:
        """The record with these changes and ``updated_at=now``, checked as a whole (same version: the
        ledger's compare-and-set decides whether it is written)."""
        checked = {name: codec.check_field(Record, name, value) for name, value in self._values.items()}
        return dataclasses.replace(record, **checked, updated_at=now)


RecordChanges.FIELDS = tuple(RecordChanges.__init__.__kwdefaults__ or ())
NO_CHANGES = RecordChanges()


@dataclass(frozen=True)
class Context(Frozen):
    now: float
    policy: ReconcileConfig
    grants_clean: bool | None        # None: not known (no check was needed)
    rand: float                      # a draw in [0, 1) for the back-off jitter

    @property
    def claim_after_seconds(self) -> float:
        """A QUEUED record younger than this may still be in a push's hands
        (``reconcile.claim_after_seconds``)."""
        return self.policy.claim_after_seconds


@dataclass(frozen=True)
class Decision(Frozen):
    changes: RecordChanges = NO_CHANGES
    action: Action = Action.NONE
    why: str = ""
    stuck_found: bool = False
    gave_up: bool = False
    flags: frozenset[Flag] = field(default_factory=frozenset)

    @property
    def writes(self) -> bool:
        return bool(self.changes)


def due(record: Record, ctx: Context) -> bool:
    """Is a record without a live task ready for a (new) task?"""
    if record.next_retry_at is not None:
        return record.next_retry_at <= ctx.now
    return ctx.now - record.updated_at >= ctx.claim_after_seconds


def adopt(record: Record, task: SyncTask) -> RecordChanges:
    """Changes that link a record to a task found in ACR (an orphan after a crash, or a rule's task), with
    the task's status; a status acrsync does not know is recorded as PENDING (in progress), so the record
    stays open and reconcile keeps reading the task (and flags it) until its status is one it knows."""
    history = record.history
    if all(a.task_id != task.task_id for a in history):
        history = [*history, Attempt(task_id=task.task_id, status=task.status,
                                     created_at=task.created_ms / 1000, issue=task.issue)]
    changes = RecordChanges(task_id=task.task_id, batch_id=task.batch_id or record.batch_id,
                            rule_id=task.rule_id or record.rule_id,
                            attempts=max(record.attempts, len(history)),
                            history=history, task_issue=task.issue)
    return changes.merged(RecordChanges(status=record_status(task.status) or Status.PENDING))


def decide(record: Record, task: SyncTask | None, ctx: Context) -> Decision:
    """What reconcile does with one open record. ``task`` is the record's current task as ACR reports it
    (None when the record has no task, or ACR no longer knows the task)."""
    if record.gave_up or record.status is Status.SUCCESS:
        return Decision(why="closed")

    if record.task_id is None or task is None:
        return _without_task(record, task, ctx)

    status = task.status.upper()
    phase = TaskPhase.of(status)
    known = record_status(status)
    base: dict[str, Any] = {}
    if known is not None and record.status is not known:
        base["status"] = known
    if task.issue != record.task_issue:
        base["task_issue"] = task.issue
    history = [a if a.task_id != task.task_id
               else dataclasses.replace(a, status=status, issue=task.issue)
               for a in record.history]
    if history != record.history:
        base["history"] = history

    if phase in (TaskPhase.ACTIVE, TaskPhase.UNKNOWN):
        flags = frozenset({Flag.UNKNOWN_STATUS}) if phase is TaskPhase.UNKNOWN else frozenset()
        doing = (f"status {status!r}, which acrsync does not know: treated as in progress"
                 if phase is TaskPhase.UNKNOWN else "in progress")
        age = ctx.now - task.created_ms / 1000 if task.created_ms else 0.0
        if age > ctx.policy.stuck_after_seconds and not record.stuck:
            base["stuck"] = True
            action = Action.CANCEL_TASK if ctx.policy.cancel_stuck else Action.NONE
            return Decision(_changes(base), action, f"{status} for {int(age)} s; {doing}",
                            stuck_found=True, flags=flags)
        return Decision(_changes(base), why=doing, flags=flags)

    if phase is TaskPhase.SUCCEEDED:
        base.update(stuck=False, next_retry_at=None, last_error=None, finding=None)
        return Decision(_changes(base), why="replicated")

    # ERROR or CANCELED
    retrying = record.status in (Status.ERROR, Status.CANCELED) and record.next_retry_at is not None
    if retrying and "status" not in base:
        # Already decided to retry this failure: wait for the back-off, then make a new task.
        if record.next_retry_at is not None and record.next_retry_at <= ctx.now:
            if ctx.grants_clean is False:
                return Decision(_changes(base, status=Status.BLOCKED, next_retry_at=None),
                                why="grant check fails; waits for it to turn clean")
            return Decision(_changes(base), Action.CREATE_TASK, f"retry {record.attempts + 1}")
        return Decision(_changes(base), why="backing off")

    if status == "CANCELED" and not record.stuck:
        return Decision(_changes(base, gave_up=True, next_retry_at=None), why="canceled outside acrsync",
                        gave_up=True)
    c = classify(task.issue or status)
    if c.blocks:
        finding = blocking_finding(record.target, c.code, f"sync task {task.task_id} failed: "
                                   f"{task.issue or status}", c.hint.format(target=record.target))
        return Decision(_changes(base, status=Status.BLOCKED, finding=finding, next_retry_at=None),
                        why=f"{c.kind.value} failure: {c.code}")
    if record.attempts >= ctx.policy.max_attempts:
        return Decision(_changes(base, gave_up=True, next_retry_at=None),
                        why=f"failed {record.attempts} times; giving up", gave_up=True)
    delay = backoff_seconds(record.attempts, ctx.policy.backoff_base_seconds, ctx.policy.backoff_max_seconds,
                            ctx.rand)
    return Decision(_changes(base, next_retry_at=ctx.now + delay, stuck=False),
                    why=f"{status} ({task.issue or 'no issue given'}); retry in {int(delay)} s")


def _changes(base: dict[str, Any], **more: Any) -> RecordChanges:
    """``base`` with ``more`` over it, as a typed change set."""
    return RecordChanges(**{**base, **more})


def _without_task(record: Record, task: SyncTask | None, ctx: Context) -> Decision:
    if record.status is Status.COVERED:
        return Decision(why="a rule replicates it; its task is attached when seen")
    if record.task_id is not None and task is None:
        # ACR no longer knows the task (deleted, or expired from history): make a new one when due.
        return Decision(RecordChanges(status=Status.QUEUED, task_id=None, next_retry_at=ctx.now,
                                      task_issue="TASK_NOT_FOUND"), why="task no longer found in ACR")
    if record.status is Status.BLOCKED:
        if ctx.grants_clean:
            return Decision(RecordChanges(status=Status.QUEUED, finding=None), Action.CREATE_TASK,
                            "grant check is clean now")
        return Decision(why="blocked")
    if not due(record, ctx):
        return Decision(why="not due")
    if ctx.grants_clean is False:
        return Decision(RecordChanges(status=Status.BLOCKED, next_retry_at=None), why="grant check fails")
    if record.attempts >= ctx.policy.max_attempts:
        return Decision(RecordChanges(gave_up=True), why=f"{record.attempts} attempts made; giving up",
                        gave_up=True)
    return Decision(action=Action.CREATE_TASK, why="no task yet")


def matches_orphan(record: Record, task: SyncTask, target_instance_id: str, *, skew_ms: int = 5000) -> bool:
    """Could ``task`` be the one a crashed push created for ``record``? Same image tag and target, a
    manual task, created after the record."""
    return (not task.rule_id
            and task.source.namespace == record.image.namespace
            and task.source.repo == record.image.repo
            and task.source.tag == record.image.tag
            and task.target.instance_id == target_instance_id
            and task.created_ms >= int(record.created_at * 1000) - skew_ms)
