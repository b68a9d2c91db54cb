"""The embedded ledger: one SQLite file, safe for several processes writing at once.

WAL lets readers run beside the one writer; every write takes the write lock up front
(``BEGIN IMMEDIATE``) so two processes never both read-then-write the same row, and ``busy_timeout``
makes the loser wait instead of failing. Each record is stored as its JSON plus the columns the
questions are asked on, so every method is one indexed query.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acrsync.ledger.base import (
    Ledger,
    LedgerError,
    Page,
    Record,
    RejectedEvent,
    Report,
    VersionConflict,
    repo_prefix,
)

BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key           TEXT PRIMARY KEY,
    version       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    is_open       INTEGER NOT NULL,
    task_id       TEXT,
    created_at    REAL NOT NULL,
    next_retry_at REAL,
    doc           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_open ON records (created_at, key) WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS records_retry ON records (next_retry_at, key)
    WHERE is_open = 1 AND next_retry_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS record_tasks (
    task_id TEXT NOT NULL,
    key     TEXT NOT NULL,
    PRIMARY KEY (task_id, key)
) WITHOUT ROWID;
-- The current task id of a record is indexed by the database itself, in the same statement that writes
-- the record: the push path's writes stay single statements, and get_by_task never misses a task.
CREATE TRIGGER IF NOT EXISTS records_task_ai AFTER INSERT ON records WHEN NEW.task_id IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO record_tasks (task_id, key) VALUES (NEW.task_id, NEW.key);
END;
CREATE TRIGGER IF NOT EXISTS records_task_au AFTER UPDATE OF task_id ON records
    WHEN NEW.task_id IS NOT NULL AND NEW.task_id IS NOT OLD.task_id
BEGIN
    INSERT OR IGNORE INTO record_tasks (task_id, key) VALUES (NEW.task_id, NEW.key);
END;
CREATE TABLE IF NOT EXISTS rejected (
    id          TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_newest ON rejected (received_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS reports (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    created_at REAL NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

_RECORD_COLUMNS = "key, version, status, is_open, task_id, created_at, next_retry_at, doc"


def _task_ids(record: Record) -> set[str]:
    """Every sync task id the record has had: ``get_by_task`` must find earlier ones too."""
    ids = {a.task_id for a in record.history}
    if record.task_id:
        ids.add(record.task_id)
    return ids


def _row_values(record: Record) -> tuple:
    return (record.key, record.version, record.status.value, int(record.is_open), record.task_id,
            record.created_at, record.next_retry_at, record.model_dump_json())



def _record(doc: str, version: int) -> Record:
    rec = Record.model_validate_json(doc)
    return rec if rec.version == version else rec.model_copy(update={"version": version})


def encode_cursor(created_at: float, key: str) -> str:
    """An opaque page cursor: the last returned (created_at, key); the next page starts after it."""
    return json.dumps([created_at, key], separators=(",", ":"))


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, key = json.loads(cursor)
        return float(created_at), str(key)
    except (ValueError, TypeError) as e:
        raise ValueError(f"not a cursor of this ledger: {cursor!r}; pass back the cursor a Page "
                         "returned, or None to start from the oldest record") from e


class SqliteLedger(Ledger):
    """Ledger in one SQLite file (default backend; tests, the CLI and single-host deployments)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()   # one connection per ledger; FC may run requests in threads
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        except (OSError, sqlite3.Error) as e:
            raise LedgerError(f"cannot open the SQLite ledger at {self.path}: {e}; check that the "
                              "directory is writable or set ledger.path in the config") from e
        self._ready = False
        self._known: OrderedDict[str, tuple[int, frozenset[str]]] = OrderedDict()

    # --- plumbing ------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the database write lock from its first statement."""
        self._ensure_schema()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise LedgerError(f"SQLite ledger {self.path} is locked or unwritable: {e}") from e
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _autocommit(self, sql: str, args: tuple) -> int:
        """One write statement as its own transaction; returns the number of rows it changed."""
        self._ensure_schema()
        with self._lock:
            try:
                return self._db.execute(sql, args).rowcount
            except sqlite3.Error as e:
                raise LedgerError(f"SQLite ledger {self.path}: {e}") from e

    def _remember(self, key: str, version: int, tasks: set[str]) -> None:
        """Task ids known to be indexed at a version: an update adding none is then one statement."""
        with self._lock:
            self._known[key] = (version, frozenset(tasks))
            self._known.move_to_end(key)
            if len(self._known) > 10_000:
                self._known.popitem(last=False)

    def _known_tasks(self, key: str, version: int) -> frozenset[str] | None:
        with self._lock:
            known = self._known.get(key)
        return known[1] if known is not None and known[0] == version else None

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        self._ensure_schema()
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise LedgerError(f"SQLite ledger {self.path}: {e}") from e

    def _ensure_schema(self) -> None:
        if not self._ready:
            self.init()

    # --- Ledger --------------------------------------------------------------------------------
    def init(self) -> None:
        with self._lock:
            try:
                self._db.executescript(_SCHEMA)
            except sqlite3.Error as e:
                raise LedgerError(f"cannot create the ledger tables in {self.path}: {e}") from e
            self._ready = True

    def create_if_absent(self, record: Record) -> tuple[bool, Record]:
        stored = record.model_copy(update={"version": 1})
        tasks = _task_ids(stored)
        insert = (f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) "
                  "ON CONFLICT (key) DO NOTHING")
        if tasks - {stored.task_id}:     # earlier task ids too (the current one is indexed by a trigger)
            with self._write() as db:
                created = db.execute(insert, _row_values(stored)).rowcount == 1
                if created:
                    db.executemany("INSERT OR IGNORE INTO record_tasks (task_id, key) VALUES (?, ?)",
                                   [(t, stored.key) for t in tasks])
        else:   # one statement is its own transaction: no BEGIN/COMMIT round trips
            created = self._autocommit(insert, _row_values(stored)) == 1
        if created:
            self._remember(stored.key, 1, tasks)
            return True, stored
        existing = self.get(record.key)   # records are never deleted, so it is there
        if existing is None:
            raise LedgerError(f"record {record.key} both exists and does not; is something else deleting "
                              f"rows in {self.path}?")
        return False, existing

    def update(self, record: Record) -> Record:
        new = record.model_copy(update={"version": record.version + 1})
        values = _row_values(new)
        sql = ("UPDATE records SET version=?, status=?, is_open=?, task_id=?, created_at=?, next_retry_at=?, "
               "doc=? WHERE key=? AND version=?")
        args = (*values[1:], new.key, record.version)
        tasks = _task_ids(new)
        known = self._known_tasks(record.key, record.version)
        # The current task id is indexed by a trigger in the same statement; only earlier ids the index
        # may lack need the explicit transaction (task rows and the record commit together).
        new_tasks = (tasks if known is None else tasks - known) - {new.task_id}
        if new_tasks:
            with self._write() as db:
                changed = db.execute(sql, args).rowcount
                if changed == 1:
                    db.executemany("INSERT OR IGNORE INTO record_tasks (task_id, key) VALUES (?, ?)",
                                   [(t, new.key) for t in sorted(new_tasks)])
        else:
            changed = self._autocommit(sql, args)
        if changed != 1:
            row = self._read("SELECT version FROM records WHERE key = ?", (record.key,))
            if not row:
                raise VersionConflict(f"no record {record.key!r}; create it with create_if_absent first")
            raise VersionConflict(f"record {record.key!r} is at version {row[0][0]}, not {record.version}; "
                                  "re-read it and decide again")
        self._remember(new.key, new.version, tasks)
        return new

    def get(self, key: str) -> Record | None:
        rows = self._read("SELECT doc, version FROM records WHERE key = ?", (key,))
        if not rows:
            return None
        rec = _record(*rows[0])
        self._remember(rec.key, rec.version, _task_ids(rec))
        return rec

    def get_by_task(self, task_id: str) -> Record | None:
        rows = self._read("SELECT r.doc, r.version FROM record_tasks t JOIN records r ON r.key = t.key "
                          "WHERE t.task_id = ? ORDER BY r.key LIMIT 1", (task_id,))
        return _record(*rows[0]) if rows else None

    def open_records(self, limit: int = 100, cursor: str | None = None) -> Page:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if cursor is None:
            rows = self._read("SELECT doc, version, created_at, key FROM records WHERE is_open = 1 "
                              "ORDER BY created_at, key LIMIT ?", (limit + 1,))
        else:
            after = decode_cursor(cursor)
            rows = self._read("SELECT doc, version, created_at, key FROM records WHERE is_open = 1 "
                              "AND (created_at, key) > (?, ?) ORDER BY created_at, key LIMIT ?",
                              (*after, limit + 1))
        page = rows[:limit]
        more = len(rows) > limit
        return Page([_record(doc, v) for doc, v, _, _ in page],
                    encode_cursor(page[-1][2], page[-1][3]) if more else None)

    def records_for(self, instance_id: str, namespace: str, repo: str,
                    tag: str | None = None) -> list[Record]:
        prefix = repo_prefix(instance_id, namespace, repo, tag)
        rows = self._read("SELECT doc, version FROM records WHERE key >= ? AND key < ? ORDER BY key",
                          (prefix, prefix + "\uffff"))
        return [_record(*r) for r in rows]

    def due_for_retry(self, now: float, limit: int = 100) -> list[Record]:
        rows = self._read("SELECT doc, version FROM records WHERE is_open = 1 AND next_retry_at IS NOT NULL "
                          "AND next_retry_at <= ? ORDER BY next_retry_at, key LIMIT ?", (now, limit))
        return [_record(*r) for r in rows]

    def counts_by_status(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM records GROUP BY status ORDER BY status"))

    def all_records(self) -> Iterator[Record]:
        last = ""
        while True:   # in key-ordered pages, so a big ledger is never held in memory at once
            rows = self._read("SELECT doc, version, key FROM records WHERE key > ? ORDER BY key LIMIT 500",
                              (last,))
            for doc, version, _ in rows:
                yield _record(doc, version)
            if len(rows) < 500:
                return
            last = rows[-1][2]

    # --- rejected events -----------------------------------------------------------------------
    def put_rejected(self, event: RejectedEvent) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO rejected (id, received_at, doc) VALUES (?, ?, ?)",
                       (event.id, event.received_at, event.model_dump_json()))

    def list_rejected(self, limit: int = 100) -> list[RejectedEvent]:
        rows = self._read("SELECT doc FROM rejected ORDER BY received_at DESC, id DESC LIMIT ?", (limit,))
        return [RejectedEvent.model_validate_json(doc) for (doc,) in rows]

    # --- reports -------------------------------------------------------------------------------
    def put_report(self, report: Report) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO reports (kind, id, created_at, doc) VALUES (?, ?, ?, ?)",
                       (report.kind, report.id, report.created_at, report.model_dump_json()))

    def get_report(self, kind: str, report_id: str) -> Report | None:
        rows = self._read("SELECT doc FROM reports WHERE kind = ? AND id = ?", (kind, report_id))
        return Report.model_validate_json(rows[0][0]) if rows else None

    def list_reports(self, kind: str, limit: int = 20) -> list[Report]:
        rows = self._read("SELECT doc FROM reports WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit))
        return [Report.model_validate_json(doc) for (doc,) in rows]

    # --- checkpoints ---------------------------------------------------------------------------
    def get_checkpoint(self, name: str) -> str | None:
        rows = self._read("SELECT value FROM checkpoints WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def set_checkpoint(self, name: str, value: str | None) -> None:
        with self._write() as db:
            if value is None:
                db.execute("DELETE FROM checkpoints WHERE name = ?", (name,))
            else:
                db.execute("INSERT INTO checkpoints (name, value) VALUES (?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()

