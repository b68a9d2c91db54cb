"""Reconcile's decisions, pure: given a record and what ACR says of its task, what changes and what to do.

Level-triggered: the decision depends only on the record and the task as read now, never on which
events did or did not arrive, so running it twice, late, or concurrently (compare-and-set) is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from acrsync.config import ReconcileConfig
from acrsync.failures import backoff_seconds, classify
from acrsync.model import SyncTask
from acrsync.records import Attempt, Record, Status, blocking_finding

ACTIVE = ("PENDING", "SYNCHRONIZING")
FAILED = ("ERROR", "CANCELED")


class Action(str, Enum):
    NONE = "none"
    CREATE_TASK = "create_task"      # (re)create the manual sync task now
    CANCEL_TASK = "cancel_task"      # cancel a stuck task (then it is retried)


@dataclass(frozen=True)
class Context:
    now: float
    policy: ReconcileConfig
    grants_clean: bool | None        # None: not known (no check was needed)
    rand: float                      # a draw in [0, 1) for the back-off jitter
    claim_after_seconds: float = 300.0   # a QUEUED record younger than this may still be in a push's hands


@dataclass
class Decision:
    changes: dict[str, Any] = field(default_factory=dict)
    action: Action = Action.NONE
    why: str = ""
    stuck_found: bool = False
    gave_up: bool = False

    @property
    def writes(self) -> bool:
        return bool(self.changes)


def due(record: Record, ctx: Context) -> bool:
    """Is a record without a live task ready for a (new) task?"""
    if record.next_retry_at is not None:
        return record.next_retry_at <= ctx.now
    return ctx.now - record.updated_at >= ctx.claim_after_seconds


def adopt(record: Record, task: SyncTask) -> dict[str, Any]:
    """Changes that link a record to a task found in ACR (an orphan after a crash, or a rule's task)."""
    history = record.history
    if all(a.task_id != task.task_id for a in history):
        history = [*history, Attempt(task_id=task.task_id, status=task.status, created_at=task.created_ms / 1000,
                                     issue=task.issue)]
    return {"task_id": task.task_id, "batch_id": task.batch_id or record.batch_id,
            "rule_id": task.rule_id or record.rule_id, "attempts": max(record.attempts, len(history)),
            "history": history}


def decide(record: Record, task: SyncTask | None, ctx: Context) -> Decision:
    """What reconcile does with one open record. ``task`` is the record's current task as ACR reports it
    (None when the record has no task, or ACR no longer knows the task)."""
    if record.gave_up or record.status is Status.SUCCESS:
        return Decision(why="closed")

    if record.task_id is None or task is None:
        return _without_task(record, task, ctx)

    status = task.status.upper()
    base: dict[str, Any] = {}
    if record.status.value != status:
        base["status"] = Status(status) if status in Status.__members__ else Status.ERROR
    if task.issue != record.task_issue:
        base["task_issue"] = task.issue
    history = [a if a.task_id != task.task_id else a.model_copy(update={"status": status, "issue": task.issue})
               for a in record.history]
    if history != record.history:
        base["history"] = history

    if status in ACTIVE:
        age = ctx.now - task.created_ms / 1000 if task.created_ms else 0.0
        if age > ctx.policy.stuck_after_seconds and not record.stuck:
            base["stuck"] = True
            action = Action.CANCEL_TASK if ctx.policy.cancel_stuck else Action.NONE
            return Decision(base, action, f"{status} for {int(age)} s", stuck_found=True)
        return Decision(base, why="in progress")

    if status == "SUCCESS":
        base.update(stuck=False, next_retry_at=None, last_error=None, finding=None)
        return Decision(base, why="replicated")

    # ERROR or CANCELED
    if record.status.value in FAILED and record.next_retry_at is not None and "status" not in base:
        # Already decided to retry this failure: wait for the back-off, then make a new task.
        if record.next_retry_at <= ctx.now:
            if ctx.grants_clean is False:
                return Decision({**base, "status": Status.BLOCKED, "next_retry_at": None},
                                why="grant check fails; waits for it to turn clean")
            return Decision(base, Action.CREATE_TASK, f"retry {record.attempts + 1}")
        return Decision(base, why="backing off")

    if status == "CANCELED" and not record.stuck:
        return Decision({**base, "gave_up": True, "next_retry_at": None}, why="canceled outside acrsync",
                        gave_up=True)
    c = classify(task.issue or status)
    if c.blocks:
        finding = blocking_finding(record.target, c.code, f"sync task {task.task_id} failed: "
                                   f"{task.issue or status}", c.hint.format(target=record.target))
        return Decision({**base, "status": Status.BLOCKED, "finding": finding, "next_retry_at": None},
                        why=f"{c.kind.value} failure: {c.code}")
    if record.attempts >= ctx.policy.max_attempts:
        return Decision({**base, "gave_up": True, "next_retry_at": None},
                        why=f"failed {record.attempts} times; giving up", gave_up=True)
    delay = backoff_seconds(record.attempts, ctx.policy.backoff_base_seconds, ctx.policy.backoff_max_seconds,
                            ctx.rand)
    return Decision({**base, "next_retry_at": ctx.now + delay, "stuck": False},
                    why=f"{status} ({task.issue or 'no issue given'}); retry in {int(delay)} s")


def _without_task(record: Record, task: SyncTask | None, ctx: Context) -> Decision:
    if record.status is Status.COVERED:
        return Decision(why="a rule replicates it; its task is attached when seen")
    if record.task_id is not None and task is None:
        # ACR no longer knows the task (deleted, or expired from history): make a new one when due.
        return Decision({"status": Status.QUEUED, "task_id": None, "next_retry_at": ctx.now,
                         "task_issue": "TASK_NOT_FOUND"}, why="task no longer found in ACR")
    if record.status is Status.BLOCKED:
        if ctx.grants_clean:
            return Decision({"status": Status.QUEUED, "finding": None}, Action.CREATE_TASK,
                            "grant check is clean now")
        return Decision(why="blocked")
    if not due(record, ctx):
        return Decision(why="not due")
    if ctx.grants_clean is False:
        return Decision({"status": Status.BLOCKED, "next_retry_at": None}, why="grant check fails")
    if record.attempts >= ctx.policy.max_attempts:
        return Decision({"gave_up": True}, why=f"{record.attempts} attempts made; giving up", gave_up=True)
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
