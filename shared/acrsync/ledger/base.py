"""The ledger: replication records, one per (source image, target), and versioned items beside them.

The ledger is the exactly-once gate of the push path (create-if-absent before CreateRepoSyncTask) and
the memory of reconcile (compare-and-set on a version). Behaviour lives here once, as in the
persistence layer of AWS Lambda Powertools' idempotency utility
(https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/): validation, the
known-version cache, serialisation, paging, and everything built on items (rejected events, reports,
checkpoints, global caps, shared values). A backend implements only the storage primitives, the
methods named ``_...`` below marked abstract. Backends: SQLite (embedded default) and Tablestore
(production); both pass the contract suite in ``tests/contract``. docs/ledger.md has the API.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from acrsync import codec
from acrsync.errors import AcrsyncError
from acrsync.records import Checkpoint, Record, RejectedEvent, Report, repo_prefix
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.cloud.retry import Budget

R = TypeVar("R")

KNOWN_MAX = 10_000            # records whose index state at a version is remembered (per process)
CAS_ATTEMPTS = 64             # compare-and-set rounds on one item before giving up (counters, buckets)

# Item kinds the base class uses; other code may add its own (a kind names one family of items).
REJECTED = "rejected"
CHECKPOINT = "checkpoint"
REPORT = "report/"            # + the report kind
PROGRESS = "progress/"        # + the checkpoint scope
SLOTS = "slots"
BUCKET = "bucket"
SHARED = "shared"


class VersionConflict(Exception):
    """Compare-and-set lost: somebody else wrote first. Re-read and decide again."""


class LedgerError(AcrsyncError):
    """The backend failed (I/O, service error) in a way the caller cannot fix by re-reading."""


@dataclass(frozen=True)
class Page(Frozen):
    records: list[Record]
    cursor: str | None                     # pass back to continue; None when done


@dataclass(frozen=True)
class Indexed(Frozen):
    """What a record's index entries derive from: its task ids, and its ``created_at`` while open."""

    task_ids: frozenset[str]
    open_since: float | None

    @classmethod
    def of(cls, record: Record) -> Indexed:
        return cls(record.task_ids, record.created_at if record.is_open else None)


@dataclass(frozen=True)
class StoredRecord(Frozen):
    """A record as a backend stores it: the key, the version, the columns it is queried on, the JSON."""

    key: str
    version: int
    status: str
    task_id: str | None                    # the current sync task (earlier ones are in indexed.task_ids)
    created_at: float
    indexed: Indexed
    doc: str


Raw = tuple[str, int]                      # (doc, version) as a backend reads a record back


@dataclass(frozen=True)
class Item(Frozen):
    """A versioned document under (kind, key). ``version`` 0 means "not stored yet"."""

    kind: str
    key: str
    doc: str
    version: int = 0
    expires_at: float | None = None


def encode_cursor(created_at: float, key: str) -> str:
    """An open_records cursor: the (created_at, key) the next page starts at."""
    return json.dumps([created_at, key], separators=(",", ":"))


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, key = json.loads(cursor)
        return float(created_at), str(key)
    except (ValueError, TypeError) as e:
        raise ValueError(f"not a cursor of this ledger: {cursor!r}; pass back the cursor a Page "
                         "returned, or None to start from the oldest record") from e


def prefix_end(prefix: str) -> str:
    """Exclusive end of the key range of every key starting with ``prefix`` (keys are ASCII)."""
    return prefix + "\uffff"


def rejected_key(event: RejectedEvent) -> str:
    """Sorts by receive time, then id: a backward range lists the newest first."""
    return f"{int(round(event.received_at * 1_000_000)):020d}|{event.id}"


class Ledger(abc.ABC):
    """Records and items. Every public method is safe to call from several processes at once."""

    def __init__(self) -> None:
        self._known: OrderedDict[str, tuple[int, Indexed]] = OrderedDict()
        self._known_lock = threading.Lock()

    # ==== storage primitives (what a backend implements) ===========================================
    @abc.abstractmethod
    def init(self) -> None:
        """Create tables/indexes if missing. Idempotent."""

    @abc.abstractmethod
    def _insert(self, row: StoredRecord) -> Raw | None:
        """Store ``row`` (version 1) with its index entries unless the key exists.

        None when stored; else the stored record's (doc, version), which the caller gets back.
        """

    @abc.abstractmethod
    def _replace(self, row: StoredRecord, expected: int, before: Indexed) -> bool:
        """Store ``row`` if the stored version is ``expected``; ``before`` is the stored index state.

        Index entries move from ``before`` to ``row.indexed``. False when the version differs or the
        key is missing (nothing is written then).
        """

    @abc.abstractmethod
    def _fetch(self, key: str) -> Raw | None: ...

    @abc.abstractmethod
    def _fetch_by_task(self, task_id: str) -> list[Raw]:
        """Records indexed under ``task_id``, in key order (the base re-checks each)."""

    @abc.abstractmethod
    def _iter_open(self, start: tuple[float, str] | None, batch: int) -> Iterator[Raw]:
        """Records indexed as open, by (created_at, key), from ``start`` inclusive; ``batch`` per read."""

    @abc.abstractmethod
    def _iter_range(self, start: str, end: str | None) -> Iterator[Raw]:
        """Records with ``start <= key < end`` (``end`` None: to the last), in key order, paged."""

    @abc.abstractmethod
    def _status_counts(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def _get_item(self, kind: str, key: str) -> Item | None: ...

    @abc.abstractmethod
    def _put_item(self, item: Item, expect: int | None) -> bool:
        """Store ``item`` as is. ``expect``: None writes whatever is there, 0 only if absent, n only if
        the stored version is n. False when that condition fails."""

    def _get_items(self, kind: str, keys: list[str]) -> list[Item | None]:
        """Several items at once, in the order of ``keys`` (a backend with a batch read overrides this)."""
        return [self._get_item(kind, k) for k in keys]

    @abc.abstractmethod
    def _delete_item(self, kind: str, key: str) -> None: ...

    @abc.abstractmethod
    def _list_items(self, kind: str, start: str | None, end: str | None, newest_first: bool,
                    limit: int | None) -> list[Item]:
        """Items of ``kind`` with ``start <= key < end`` (None: open end), by key, or reversed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def scoped(self, budget: Budget) -> Ledger:
        """This ledger with its cloud calls bounded by ``budget`` (an ``acrsync.cloud.Budget``).

        Shares caches and connections; embedded backends make no cloud calls and return themselves.
        """
        return self

    # ==== serialisation and the known-version cache ================================================
    def _row(self, record: Record) -> StoredRecord:
        return StoredRecord(record.key, record.version, record.status.value, record.task_id,
                            record.created_at, Indexed.of(record), record.stored())

    def _decode(self, raw: Raw) -> Record:
        doc, version = raw
        try:
            rec = Record.from_stored(doc)
        except codec.CodecError as e:
            raise LedgerError(f"a stored record does not parse ({e}); was it written by a newer "
                              "acrsync?") from e
        rec = rec if rec.version == version else rec.replace(version=version)
        self._remember(rec)
        return rec

    def _remember(self, record: Record) -> None:
        with self._known_lock:
            self._known[record.key] = (record.version, Indexed.of(record))
            self._known.move_to_end(record.key)
            while len(self._known) > KNOWN_MAX:
                self._known.popitem(last=False)

    def _known_index(self, key: str, version: int) -> Indexed | None:
        with self._known_lock:
            known = self._known.get(key)
        return known[1] if known is not None and known[0] == version else None

    # ==== records ==================================================================================
    def create_if_absent(self, record: Record) -> tuple[bool, Record]:
        """Insert ``record`` unless its key exists. Exactly one of concurrent callers gets True.

        Returns (created, stored record); the stored record has ``version`` 1 when created.
        """
        stored = record.replace(version=1)
        existing = self._insert(self._row(stored))
        if existing is None:
            self._remember(stored)
            return True, stored
        return False, self._decode(existing)

    def update(self, record: Record) -> Record:
        """Write ``record`` if the stored version equals ``record.version``; return it with version+1.

        Raises VersionConflict otherwise (also when the record does not exist).
        """
        expected = record.version
        new = record.replace(version=expected + 1)
        before = self._known_index(record.key, expected)
        if before is None:
            current = self.get(record.key)
            self._check_version(record.key, current, expected)
            assert current is not None
            before = Indexed.of(current)
        if not self._replace(self._row(new), expected, before):
            self._check_version(record.key, self.get(record.key), expected)
            raise VersionConflict(f"record {record.key!r} changed while being written; re-read it")
        self._remember(new)
        return new

    @staticmethod
    def _check_version(key: str, current: Record | None, expected: int) -> None:
        if current is None:
            raise VersionConflict(f"no record {key!r}; create it with create_if_absent first")
        if current.version != expected:
            raise VersionConflict(f"record {key!r} is at version {current.version}, not {expected}; "
                                  "re-read it and decide again")

    def get(self, key: str) -> Record | None:
        raw = self._fetch(key)
        return self._decode(raw) if raw is not None else None

    def get_by_task(self, task_id: str) -> Record | None:
        """The record whose current or earlier sync task is ``task_id``."""
        for raw in self._fetch_by_task(task_id):
            rec = self._decode(raw)
            if task_id in rec.task_ids:   # an index entry of a lost write points at a record without it
                return rec
        return None

    def open_records(self, limit: int = 100, cursor: str | None = None) -> Page:
        """Open records (``Record.is_open``), oldest ``created_at`` first, in pages."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        start = decode_cursor(cursor) if cursor is not None else None
        found: list[Record] = []
        for raw in self._iter_open(start, min(limit + 1, 1000)):
            rec = self._decode(raw)
            if rec.is_open:
                found.append(rec)
                if len(found) > limit:
                    break
        more = len(found) > limit
        return Page(found[:limit], encode_cursor(found[limit].created_at, found[limit].key) if more else None)

    def records_for(self, instance_id: str, namespace: str, repo: str,
                    tag: str | None = None) -> list[Record]:
        """Every record of a repository, or of one tag in it, all targets, all digests."""
        prefix = repo_prefix(instance_id, namespace, repo, tag)
        return [self._decode(raw) for raw in self._iter_range(prefix, prefix_end(prefix))]

    def counts_by_status(self) -> dict[str, int]:
        """Number of records per status value (all records, open or not)."""
        return dict(sorted(self._status_counts().items()))

    def all_records(self) -> Iterator[Record]:
        """Every record, in key order (for listing and reports), read in pages."""
        for raw in self._iter_range("", None):
            yield self._decode(raw)

    # ==== items ====================================================================================
    def get_item(self, kind: str, key: str) -> Item | None:
        return self._get_item(kind, key)

    def put_item(self, item: Item) -> Item:
        """Compare-and-set: store ``item`` if the stored version is ``item.version`` (0: absent).

        Returns the item as stored (version + 1); raises VersionConflict when somebody wrote first.
        """
        new = replace(item, version=item.version + 1)
        if not self._put_item(new, item.version):
            raise VersionConflict(f"item {item.kind}/{item.key} is not at version {item.version}; re-read it")
        return new

    def swap_item(self, kind: str, key: str, expected: str | None, doc: str) -> bool:
        """Store ``doc`` if the item still holds ``expected`` (None: absent); False if it changed.

        Compare-and-set on content, for callers that keep a whole state in one document (exact across
        processes: it is a ``put_item`` on the version read with ``expected``).
        """
        item = self.get_item(kind, key)
        if (item.doc if item is not None else None) != expected:
            return False
        try:
            self.put_item(replace(item, doc=doc) if item is not None else Item(kind, key, doc))
            return True
        except VersionConflict:
            return False

    def write_item(self, kind: str, key: str, doc: str, *, expires_at: float | None = None) -> None:
        """Store unconditionally (last writer wins). Use either this or ``put_item`` for a kind."""
        self._put_item(Item(kind, key, doc, 1, expires_at), None)

    def delete_item(self, kind: str, key: str) -> None:
        self._delete_item(kind, key)

    def list_items(self, kind: str, *, prefix: str = "", newest_first: bool = False,
                   limit: int | None = None) -> list[Item]:
        """Items of ``kind`` whose key starts with ``prefix``, in key order (or reversed)."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        return self._list_items(kind, prefix or None, prefix_end(prefix) if prefix else None, newest_first,
                                limit)

    # ---- rejected events ----------------------------------------------------------------------
    def put_rejected(self, event: RejectedEvent) -> None:
        self.write_item(REJECTED, rejected_key(event), codec.dumps(event))

    def list_rejected(self, limit: int = 100) -> list[RejectedEvent]:
        """Newest first."""
        return [codec.loads(RejectedEvent, i.doc)
                for i in self.list_items(REJECTED, newest_first=True, limit=limit)]

    # ---- reports ------------------------------------------------------------------------------
    def put_report(self, report: Report) -> None:
        """Store (or replace) a report under (kind, id)."""
        self.write_item(REPORT + report.kind, report.id, codec.dumps(report))

    def get_report(self, kind: str, report_id: str) -> Report | None:
        item = self.get_item(REPORT + kind, report_id)
        return codec.loads(Report, item.doc) if item is not None else None

    def list_reports(self, kind: str, limit: int = 20) -> list[Report]:
        """Newest (greatest id) first."""
        return [codec.loads(Report, i.doc)
                for i in self.list_items(REPORT + kind, newest_first=True, limit=limit)]

    def latest_report(self, kind: str) -> Report | None:
        reports = self.list_reports(kind, limit=1)
        return reports[0] if reports else None

    # ---- named cursors (reconcile) and resumable checkpoints (backfill) -----------------------
    def get_checkpoint(self, name: str) -> str | None:
        item = self.get_item(CHECKPOINT, name)
        return item.doc if item is not None else None

    def set_checkpoint(self, name: str, value: str | None) -> None:
        """Store (or with None, clear) a named cursor."""
        if value is None:
            self.delete_item(CHECKPOINT, name)
        else:
            self.write_item(CHECKPOINT, name, value)

    def get_progress(self, scope: str, name: str) -> Checkpoint | None:
        item = self.get_item(PROGRESS + scope, name)
        if item is None:
            return None
        return dataclasses.replace(codec.loads(Checkpoint, item.doc), version=item.version)

    def save_progress(self, checkpoint: Checkpoint) -> Checkpoint:
        """Compare-and-set on ``checkpoint.version`` (0: new); returns it with the stored version.

        Raises VersionConflict when another run moved it first: that run owns the walk.
        """
        cp = checkpoint
        doc = {k: v for k, v in codec.dump(cp).items() if k != "version"}   # the item's version is the truth
        stored = self.put_item(Item(PROGRESS + cp.scope, cp.name, codec.dumps(doc), cp.version))
        return dataclasses.replace(cp, version=stored.version)

    def list_progress(self, scope: str, prefix: str = "") -> list[Checkpoint]:
        """Checkpoints of ``scope`` whose name starts with ``prefix``, by name."""
        return [dataclasses.replace(codec.loads(Checkpoint, i.doc), version=i.version)
                for i in self.list_items(PROGRESS + scope, prefix=prefix)]

    # ---- global caps: in-flight slots and token buckets ----------------------------------------
    def _cas_loop(self, kind: str, key: str, step: Callable[[Item | None], tuple[str | None, R]]) -> R:
        """Read the item, let ``step(item or None)`` decide (new doc or None to stop), compare-and-set;
        again on a lost race. Returns what the last ``step`` returned beside its doc."""
        for _ in range(CAS_ATTEMPTS):
            item = self.get_item(kind, key)
            doc, result = step(item)
            if doc is None:
                return result
            base = item if item is not None else Item(kind, key, "", 0)
            try:
                self.put_item(replace(base, doc=doc))
                return result
            except VersionConflict:
                time.sleep(random.random() * 0.005)   # spread the racers a little
        raise LedgerError(f"{kind}/{key} changed {CAS_ATTEMPTS} times while being updated; too many "
                          "writers race on one counter")

    def acquire_slot(self, name: str, holder: str, *, cap: int, ttl: float, now: float) -> bool:
        """Take one of ``cap`` slots of ``name`` for ``holder`` until ``now + ttl``; False when all are
        held. Re-acquiring renews. Concurrent callers never hold more than ``cap`` slots together."""
        from acrsync.ledger.limits import Slots  # caps (backfill, compliance): not on the push path

        def step(item: Item | None) -> tuple[str | None, bool]:
            slots = codec.loads(Slots, item.doc) if item is not None else Slots()
            got = slots.acquire(holder, cap=cap, ttl=ttl, now=now)
            return (codec.dumps(got), True) if got is not None else (None, False)
        return self._cas_loop(SLOTS, name, step)

    def release_slot(self, name: str, holder: str, *, now: float) -> None:
        from acrsync.ledger.limits import Slots

        def step(item: Item | None) -> tuple[str | None, None]:
            if item is None:
                return None, None
            slots = codec.loads(Slots, item.doc)
            if holder not in slots.leases:
                return None, None
            return codec.dumps(slots.release(holder, now)), None
        self._cas_loop(SLOTS, name, step)

    def slots_in_use(self, name: str, *, now: float) -> int:
        from acrsync.ledger.limits import Slots

        item = self.get_item(SLOTS, name)
        return len(codec.loads(Slots, item.doc).live(now)) if item is not None else 0

    def take_tokens(self, name: str, *, rate: float, burst: float, now: float, n: float = 1.0) -> float:
        """Take ``n`` tokens from the bucket ``name`` (``rate`` a second, at most ``burst``).

        Returns 0.0 when taken, else the seconds to wait before asking again (nothing taken).
        """
        from acrsync.ledger.limits import Bucket

        def step(item: Item | None) -> tuple[str | None, float]:
            bucket = codec.loads(Bucket, item.doc) if item is not None else Bucket.full(burst, now)
            new, wait = bucket.take(n, rate=rate, burst=burst, now=now)
            return (codec.dumps(new), 0.0) if new is not None else (None, wait)
        return self._cas_loop(BUCKET, name, step)

    # ---- values shared between instances, with a time to live ----------------------------------
    def share(self, name: str, doc: str, *, ttl: float, now: float) -> None:
        """Publish ``doc`` (e.g. a grant verdict's JSON) to every instance until ``now + ttl``."""
        self.write_item(SHARED, name, doc, expires_at=now + ttl)

    def shared(self, name: str, *, now: float) -> str | None:
        """The value published under ``name`` if it has not expired."""
        return self.shared_many([name], now=now).get(name)

    def shared_many(self, names: list[str], *, now: float) -> dict[str, str]:
        """The values published under ``names`` that have not expired, read together (one request on
        Tablestore): what a cold function instance needs before its first push."""
        items = self._get_items(SHARED, names) if names else []
        return {name: item.doc for name, item in zip(names, items, strict=True)
                if item is not None and (item.expires_at is None or item.expires_at > now)}
