"""Replication records and what else acrsync keeps: domain types, with no storage in them.

A ``Record`` is one image on one target and what ACR said about it. The ledger (``acrsync.ledger``)
stores these types; the pure modules (``events``, ``lifecycle``) use them without importing storage.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import field
from enum import Enum
from typing import Any

from acrsync import codec
from acrsync.grants.findings import Finding, Fix
from acrsync.value import Frozen, Value, dataclass


class Status(str, Enum):
    # ACR's own task states
    PENDING = "PENDING"
    SYNCHRONIZING = "SYNCHRONIZING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELED = "CANCELED"
    # acrsync's states
    QUEUED = "QUEUED"          # record exists, no task yet (or the task id was lost in a crash)
    COVERED = "COVERED"        # a sync rule replicates this image; reconcile attaches the rule's task
    BLOCKED = "BLOCKED"        # a grant or prerequisite fails; waits for the check to turn clean

    @property
    def is_open(self) -> bool:
        """Open records are the ones reconcile still has work on."""
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset({Status.PENDING, Status.SYNCHRONIZING, Status.QUEUED, Status.ERROR,
                           Status.CANCELED, Status.BLOCKED})
# SUCCESS and COVERED are done; ERROR/CANCELED stay open until retried to success or given up
# (``gave_up`` set), BLOCKED until the grant check turns clean.


class Origin(str, Enum):
    """What made the record: a push event, a sync rule's task, a backfill of existing images, or a
    compliance run replicating what a target misses."""

    PUSH = "push"
    RULE = "rule"
    BACKFILL = "backfill"
    COMPLIANCE = "compliance"


@dataclass(frozen=True, kw_only=True)
class ErrorInfo(Frozen):
    code: str
    message: str = ""
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Attempt(Frozen):
    """One sync task made for this record (a retry makes a new one)."""

    task_id: str
    status: str
    created_at: float
    issue: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImageRef(Frozen):
    """One image in the source: a tag at a digest. A tag moved to a new digest is a new image."""

    instance_id: str
    namespace: str
    repo: str
    tag: str
    digest: str | None = None   # bare hex or "sha256:..."; None only while unknown

    @property
    def repo_path(self) -> str:
        return f"{self.namespace}/{self.repo}"


def record_key(image: ImageRef, target: str) -> str:
    """The ledger key: one image, one target. Readable, ordered so that a repo and a tag are prefixes.

    ``<instance>/<namespace>/<repo>:<tag>@<digest or ->#<target>``
    """
    digest = (image.digest or "-").removeprefix("sha256:")
    return f"{image.instance_id}/{image.namespace}/{image.repo}:{image.tag}@{digest}#{target}"


def repo_prefix(instance_id: str, namespace: str, repo: str, tag: str | None = None) -> str:
    """The key prefix shared by every record of a repo (or of one tag in it); see ``record_key``.

    The ':' after the repo and the '@' after the tag end the name, so "app" never matches "app2".
    """
    base = f"{instance_id}/{namespace}/{repo}:"
    return base if tag is None else f"{base}{tag}@"


def key_hash(key: str) -> str:
    """A short stable hash of a key, for backends that want a spread partition key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(kw_only=True)
class Record(Value):
    """A replication record: what should be on one target and what ACR said about it. Mutable for the
    ledger's own bookkeeping only: flows change a record through ``lifecycle.RecordChanges``."""


    image: ImageRef
    target: str
    origin: Origin
    status: Status = Status.QUEUED
    task_id: str | None = None
    batch_id: str | None = None            # ACR SyncBatchTaskId (= SyncRecordId in ListRepoSyncTask)
    rule_id: str | None = None             # the covering or task-making sync rule
    task_issue: str | None = None          # ACR TaskIssue of the latest task
    attempts: int = 0
    history: list[Attempt] = field(default_factory=list)
    last_error: ErrorInfo | None = None
    finding: Finding | None = None         # BLOCKED: the grant/prerequisite finding (code, message, fix)
    event_id: str | None = None
    stuck: bool = False
    gave_up: bool = False
    created_at: float
    updated_at: float
    next_retry_at: float | None = None
    version: int = 0                       # 0 before the first write; compare-and-set on it

    @classmethod
    def from_stored(cls, doc: str | bytes) -> Record:
        """A record as the ledger stores it (``stored``); raises ``codec.CodecError`` on a foreign shape."""
        data: dict[str, Any] = codec.loads(dict[str, Any], doc)
        value = data.get("finding")
        if isinstance(value, dict) and "severity" not in value:
            # records written before findings were typed hold {code, kind, message, fix: str}
            fix = value.get("fix")
            data["finding"] = {"code": value.get("code", "UNKNOWN"), "severity": "error",
                               "target": value.get("target") or data.get("target", ""),
                               "message": value.get("message", ""),
                               "fix": {"summary": fix} if isinstance(fix, str) else fix}
        return codec.load(cls, data)

    def stored(self) -> str:
        """The JSON document the ledger keeps."""
        return codec.dumps(self)

    def replace(self, **changes: Any) -> Record:
        """A copy with ``changes`` (the record itself is left as it is)."""
        return dataclasses.replace(self, **changes)

    @property
    def key(self) -> str:
        return record_key(self.image, self.target)

    @property
    def is_open(self) -> bool:
        return self.status.is_open and not self.gave_up

    @property
    def task_ids(self) -> frozenset[str]:
        """Every sync task id the record has had (current and earlier): what ``get_by_task`` finds."""
        ids = {a.task_id for a in self.history}
        if self.task_id:
            ids.add(self.task_id)
        return frozenset(ids)


def blocking_finding(target: str, code: str, message: str, fix: str) -> Finding:
    """The finding of a record BLOCKED by a failed call or task (``acrsync.failures`` gives code and fix)."""
    return Finding(code=code, severity="error", target=target, message=message, fix=Fix(summary=fix))


@dataclass(kw_only=True)
class RejectedEvent(Value):
    """An event acrsync could not use: kept with the reason, acknowledged, never retried."""

    id: str
    received_at: float
    source: str                            # "eventbridge" | "webhook" | "timer" | ...
    reason: str
    payload: str                           # the raw payload, as text (base64 if it was not UTF-8)
    request_id: str | None = None


@dataclass(kw_only=True)
class Report(Value):
    """A stored report (compliance, reconcile summary): a summary plus a JSON body."""

    kind: str                              # "compliance" | "reconcile" | ...
    id: str                                # sortable, e.g. an ISO time: listing is newest id first
    created_at: float
    summary: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Checkpoint(Value):
    """Where a long walk stopped (a backfill of one repository toward one target, say): resumable.

    ``version`` makes saving compare-and-set, so two runs never both move the same checkpoint.
    """

    scope: str                             # "backfill", ...
    name: str                              # e.g. "<target>/<namespace>/<repo>"
    cursor: str | None = None              # the page token or position to continue from; None: start
    done: bool = False
    updated_at: float
    data: dict[str, Any] = field(default_factory=dict)   # counts and the like, for status displays
    version: int = 0

