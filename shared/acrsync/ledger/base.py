"""The ledger contract: replication records, one per (source image, target), and what else we keep.

The ledger is the exactly-once gate of the push path (create-if-absent before CreateRepoSyncTask) and
the memory of reconcile (compare-and-set on a version). Backends: SQLite (embedded default) and
Tablestore (production); both pass the same contract suite in ``tests/contract``.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from acrsync.errors import AcrsyncError


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
    PUSH = "push"
    RULE = "rule"
    BACKFILL = "backfill"
    COMPLIANCE = "compliance"
    RETRY = "retry"
    MANUAL = "manual"


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    message: str = ""
    request_id: str | None = None


class Attempt(BaseModel):
    """One sync task made for this record (a retry makes a new one)."""

    model_config = ConfigDict(frozen=True)
    task_id: str
    status: str
    created_at: float
    issue: str | None = None


class ImageRef(BaseModel):
    """One image in the source: a tag at a digest. A tag moved to a new digest is a new image."""

    model_config = ConfigDict(frozen=True)
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


class Record(BaseModel):
    """A replication record: what should be on one target and what ACR said about it."""

    model_config = ConfigDict(use_enum_values=False)

    image: ImageRef
    target: str
    origin: Origin
    status: Status = Status.QUEUED
    task_id: str | None = None
    batch_id: str | None = None            # ACR SyncBatchTaskId (= SyncRecordId in ListRepoSyncTask)
    rule_id: str | None = None             # the covering or task-making sync rule
    task_issue: str | None = None          # ACR TaskIssue of the latest task
    attempts: int = 0
    history: list[Attempt] = Field(default_factory=list)
    last_error: ErrorInfo | None = None
    finding: dict[str, Any] | None = None  # BLOCKED: the grant/prerequisite finding (code, message, fix)
    event_id: str | None = None
    stuck: bool = False
    gave_up: bool = False
    created_at: float
    updated_at: float
    next_retry_at: float | None = None
    version: int = 0                       # 0 before the first write; compare-and-set on it

    @property
    def key(self) -> str:
        return record_key(self.image, self.target)

    @property
    def is_open(self) -> bool:
        return self.status.is_open and not self.gave_up


class RejectedEvent(BaseModel):
    """An event acrsync could not use: kept with the reason, acknowledged, never retried."""

    id: str
    received_at: float
    source: str                            # "eventbridge" | "webhook" | "timer" | ...
    reason: str
    payload: str                           # the raw payload, as text (base64 if it was not UTF-8)
    request_id: str | None = None


class Report(BaseModel):
    """A stored report (compliance, reconcile summary): an index row plus a JSON body."""

    kind: str                              # "compliance" | "reconcile" | ...
    id: str                                # sortable, e.g. an ISO time
    created_at: float
    summary: dict[str, Any] = Field(default_factory=dict)
    body: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    records: list[Record]
    cursor: str | None                     # pass back to continue; None when done


class VersionConflict(Exception):
    """Compare-and-set lost: somebody else wrote the record first. Re-read and decide again."""


class LedgerError(AcrsyncError):
    """The backend failed (I/O, service error) in a way the caller cannot fix by re-reading."""


class Ledger(abc.ABC):
    """The interface both backends implement. Every method is safe to call from several processes."""

    @abc.abstractmethod
    def init(self) -> None:
        """Create tables/indexes if missing. Idempotent."""

    # --- records -------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_if_absent(self, record: Record) -> tuple[bool, Record]:
        """Insert ``record`` unless its key exists. Exactly one of concurrent callers gets True.

        Returns (created, stored record); the stored record has ``version`` 1 when created.
        """

    @abc.abstractmethod
    def update(self, record: Record) -> Record:
        """Write ``record`` if the stored version equals ``record.version``; return it with version+1.

        Raises VersionConflict otherwise (also when the record does not exist).
        """

    @abc.abstractmethod
    def get(self, key: str) -> Record | None: ...

    @abc.abstractmethod
    def get_by_task(self, task_id: str) -> Record | None:
        """The record whose current or earlier sync task is ``task_id``."""

    @abc.abstractmethod
    def open_records(self, limit: int = 100, cursor: str | None = None) -> Page:
        """Open records (``Record.is_open``), oldest ``created_at`` first, in pages."""

    @abc.abstractmethod
    def records_for(self, instance_id: str, namespace: str, repo: str, tag: str | None = None) -> list[Record]:
        """Every record of a repository, or of one tag in it, all targets, all digests."""

    @abc.abstractmethod
    def due_for_retry(self, now: float, limit: int = 100) -> list[Record]:
        """Open records with ``next_retry_at <= now``, earliest first."""

    @abc.abstractmethod
    def counts_by_status(self) -> dict[str, int]:
        """Number of records per status value (all records, open or not)."""

    @abc.abstractmethod
    def all_records(self) -> Iterator[Record]:
        """Every record, in key order (for listing and reports)."""

    # --- rejected events -----------------------------------------------------------------------
    @abc.abstractmethod
    def put_rejected(self, event: RejectedEvent) -> None: ...

    @abc.abstractmethod
    def list_rejected(self, limit: int = 100) -> list[RejectedEvent]:
        """Newest first."""

    # --- reports -------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_report(self, report: Report) -> None: ...

    @abc.abstractmethod
    def get_report(self, kind: str, report_id: str) -> Report | None: ...

    @abc.abstractmethod
    def list_reports(self, kind: str, limit: int = 20) -> list[Report]:
        """Newest first."""

    # --- checkpoints (backfill, reconcile cursors) ----------------------------------------------
    @abc.abstractmethod
    def get_checkpoint(self, name: str) -> str | None: ...

    @abc.abstractmethod
    def set_checkpoint(self, name: str, value: str | None) -> None:
        """Store (or with None, clear) a named cursor."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
