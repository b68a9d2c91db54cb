"""The embedded ledger: one SQLite file, safe for several processes writing at once.

WAL lets readers run beside the one writer; every multi-statement write takes the write lock up front
(``BEGIN IMMEDIATE``) so two processes never both read-then-write the same row, and ``busy_timeout``
makes the loser wait instead of failing (https://www.sqlite.org/wal.html,
https://www.sqlite.org/lang_transaction.html). Only storage primitives live here; behaviour is in
``acrsync.ledger.base``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acrsync.ledger.base import Indexed, Item, Ledger, LedgerError, Raw, StoredRecord

BUSY_TIMEOUT_MS = 30_000
PAGE = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key           TEXT PRIMARY KEY,
    version       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    is_open       INTEGER NOT NULL,
    task_id       TEXT,
    created_at    REAL NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_open ON records (created_at, key) WHERE is_open = 1;
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
CREATE TABLE IF NOT EXISTS items (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    expires_at REAL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""

RECORD_COLUMNS = "key, version, status, is_open, task_id, created_at, doc"
_INSERT = f"INSERT INTO records ({RECORD_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT (key) DO NOTHING"
_UPDATE = ("UPDATE records SET version=?, status=?, is_open=?, task_id=?, created_at=?, doc=? "
           "WHERE key=? AND version=?")


def row_values(row: StoredRecord) -> tuple[Any, ...]:
    return (row.key, row.version, row.status, int(row.indexed.open_since is not None), row.task_id,
            row.created_at, row.doc)


class SqliteLedger(Ledger):
    """Ledger in one SQLite file (default backend; tests, the CLI and single-host deployments)."""

    def __init__(self, path: str | Path):
        super().__init__()
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
            except sqlite3.Error as e:
                self._db.execute("ROLLBACK")
                raise LedgerError(f"SQLite ledger {self.path}: {e}") from e
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _autocommit(self, sql: str, args: tuple[Any, ...]) -> int:
        """One write statement as its own transaction; returns the number of rows it changed."""
        self._ensure_schema()
        with self._lock:
            try:
                return self._db.execute(sql, args).rowcount
            except sqlite3.Error as e:
                raise LedgerError(f"SQLite ledger {self.path}: {e}") from e

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self._ensure_schema()
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise LedgerError(f"SQLite ledger {self.path}: {e}") from e

    def _ensure_schema(self) -> None:
        if not self._ready:
            self.init()

    # --- storage primitives ----------------------------------------------------------------------
    def init(self) -> None:
        with self._lock:
            try:
                self._db.executescript(_SCHEMA)
            except sqlite3.Error as e:
                raise LedgerError(f"cannot create the ledger tables in {self.path}: {e}") from e
            self._ready = True

    def _insert(self, row: StoredRecord) -> Raw | None:
        if self._write_record(_INSERT, row, None, frozenset()):
            return None
        existing = self._fetch(row.key)
        if existing is None:   # records are never deleted
            raise LedgerError(f"record {row.key} both exists and does not; is something else deleting rows "
                              f"in {self.path}?")
        return existing

    def _replace(self, row: StoredRecord, expected: int, before: Indexed) -> bool:
        return self._write_record(_UPDATE, row, expected, before.task_ids)

    def _write_record(self, sql: str, row: StoredRecord, expected: int | None,
                      indexed: frozenset[str]) -> bool:
        values = row_values(row)
        args = values if expected is None else (*values[1:], row.key, expected)
        # The current task id is indexed by a trigger in the same statement; only earlier ids the index
        # may lack need the explicit transaction (task rows and the record commit together).
        extra = row.indexed.task_ids - indexed - {row.task_id}
        if not extra:   # one statement is its own transaction: no BEGIN/COMMIT round trips
            return self._autocommit(sql, args) == 1
        with self._write() as db:
            changed = db.execute(sql, args).rowcount == 1
            if changed:
                db.executemany("INSERT OR IGNORE INTO record_tasks (task_id, key) VALUES (?, ?)",
                               [(t, row.key) for t in sorted(extra)])
        return changed

    def _fetch(self, key: str) -> Raw | None:
        rows = self._read("SELECT doc, version FROM records WHERE key = ?", (key,))
        return (rows[0][0], rows[0][1]) if rows else None

    def _fetch_by_task(self, task_id: str) -> list[Raw]:
        rows = self._read("SELECT r.doc, r.version FROM record_tasks t JOIN records r ON r.key = t.key "
                          "WHERE t.task_id = ? ORDER BY r.key", (task_id,))
        return [(doc, v) for doc, v in rows]

    def _iter_open(self, start: tuple[float, str] | None, batch: int) -> Iterator[Raw]:
        after: tuple[float, str] | None = None
        args: tuple[float, str] | tuple[()]
        while True:
            if after is not None:
                cond, args = "AND (created_at, key) > (?, ?)", after
            elif start is not None:
                cond, args = "AND (created_at, key) >= (?, ?)", start
            else:
                cond, args = "", ()
            rows = self._read(f"SELECT doc, version, created_at, key FROM records WHERE is_open = 1 {cond} "
                              "ORDER BY created_at, key LIMIT ?", (*args, batch))
            for doc, version, _, _ in rows:
                yield doc, version
            if len(rows) < batch:
                return
            after = (rows[-1][2], rows[-1][3])

    def _iter_range(self, start: str, end: str | None) -> Iterator[Raw]:
        first = True
        while True:   # in key-ordered pages, so a big ledger is never held in memory at once
            op = ">=" if first else ">"
            if end is None:
                rows = self._read(f"SELECT doc, version, key FROM records WHERE key {op} ? "
                                  "ORDER BY key LIMIT ?", (start, PAGE))
            else:
                rows = self._read(f"SELECT doc, version, key FROM records WHERE key {op} ? AND key < ? "
                                  "ORDER BY key LIMIT ?", (start, end, PAGE))
            for doc, version, _ in rows:
                yield doc, version
            if len(rows) < PAGE:
                return
            start, first = rows[-1][2], False

    def _status_counts(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM records GROUP BY status"))

    def _get_item(self, kind: str, key: str) -> Item | None:
        rows = self._read("SELECT doc, version, expires_at FROM items WHERE kind = ? AND key = ?",
                          (kind, key))
        return Item(kind, key, rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def _put_item(self, item: Item, expect: int | None) -> bool:
        values = (item.kind, item.key, item.version, item.expires_at, item.doc)
        if expect is None:
            sql = ("INSERT INTO items (kind, key, version, expires_at, doc) VALUES (?,?,?,?,?) "
                   "ON CONFLICT (kind, key) DO UPDATE SET version = excluded.version, "
                   "expires_at = excluded.expires_at, doc = excluded.doc")
            return self._autocommit(sql, values) == 1
        if expect == 0:
            sql = ("INSERT INTO items (kind, key, version, expires_at, doc) VALUES (?,?,?,?,?) "
                   "ON CONFLICT DO NOTHING")
            return self._autocommit(sql, values) == 1
        sql = ("UPDATE items SET version = ?, expires_at = ?, doc = ? "
               "WHERE kind = ? AND key = ? AND version = ?")
        args = (item.version, item.expires_at, item.doc, item.kind, item.key, expect)
        return self._autocommit(sql, args) == 1

    def _delete_item(self, kind: str, key: str) -> None:
        self._autocommit("DELETE FROM items WHERE kind = ? AND key = ?", (kind, key))

    def _list_items(self, kind: str, start: str | None, end: str | None, newest_first: bool,
                    limit: int | None) -> list[Item]:
        sql = "SELECT key, doc, version, expires_at FROM items WHERE kind = ?"
        args: list[Any] = [kind]
        if start is not None:
            sql += " AND key >= ?"
            args.append(start)
        if end is not None:
            sql += " AND key < ?"
            args.append(end)
        sql += " ORDER BY key DESC" if newest_first else " ORDER BY key"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [Item(kind, k, doc, v, exp) for k, doc, v, exp in self._read(sql, tuple(args))]

    def close(self) -> None:
        with self._lock:
            self._db.close()
