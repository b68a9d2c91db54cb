"""The production ledger on Tablestore: key design and conditions only (docs/ledger.md has the tables).

Every call goes through the Tablestore adapter (``acrsync.cloud.ots``): declared, counted, retried once
inside the session's budget. Writes: a record insert is a PutRow expecting the row not to exist; an
update is compare-and-set on the ``version`` column. Index rows go in the same BatchWriteRow as the
record (a batch cannot be split by a client crash) and stale ones are deleted after the record changed,
so a crash leaves at most a stale index row, never a missing one; readers re-read the record behind
every index row. Every record and item write carries a fresh ``writer`` token, so a write retried after
a lost reply recognises itself when its condition then fails.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from acrsync.cloud.errors import CloudError
from acrsync.cloud.ots import (
    INF_MAX,
    INF_MIN,
    MAX_BATCH_WRITE,
    PK,
    ComparatorType,
    Condition,
    ConditionFailed,
    DeleteRowItem,
    Ots,
    PrimaryKey,
    PutRowItem,
    Row,
    RowExistenceExpectation,
    RowResult,
    SingleColumnCondition,
    UpdateRowItem,
)
from acrsync.ledger.base import Indexed, Item, Ledger, LedgerError, Raw, StoredRecord

if TYPE_CHECKING:
    from acrsync.cloud.clients import CloudSession
    from acrsync.cloud.retry import Budget
    from acrsync.config import LedgerConfig

log = logging.getLogger(__name__)

# Table suffix -> primary key schema. Names are "<table_prefix>_<suffix>".
SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "records": [("key", "STRING")],                                   # record_key order: repo/tag prefixes
    "tasks": [("task_id", "STRING"), ("key", "STRING")],              # every task id a record has had
    "open": [("created_us", "INTEGER"), ("key", "STRING")],           # open records, oldest first
    "items": [("kind", "STRING"), ("key", "STRING")],                 # versioned items (base.Item)
}
CONDITION_FAILED = "OTSConditionCheckFail"
_RECORD_COLUMNS = ["doc", "version", "writer", "created_us"]

IndexRow = tuple[str, PK]   # (table suffix, primary key values)


# --- keys (pure) -----------------------------------------------------------------------------------

def micros(t: float) -> int:
    """Seconds as integer microseconds: an INTEGER primary key that orders like the float."""
    return int(round(t * 1_000_000))


def index_rows(key: str, indexed: Indexed) -> frozenset[IndexRow]:
    """The index rows a record in this state must have. A pure function of the record, so the rows to
    add and to delete on an update are a set difference."""
    rows: set[IndexRow] = {("tasks", (t, key)) for t in indexed.task_ids}
    if indexed.open_since is not None:
        rows.add(("open", (micros(indexed.open_since), key)))
    return frozenset(rows)


def check_endpoint(endpoint: str, instance: str) -> str:
    """Accept the public (``.ots.aliyuncs.com``), VPC (``.vpc.tablestore.aliyuncs.com``) or any http(s)
    endpoint (localcloud); catch an endpoint that names another instance than ``ledger.instance``."""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"ledger.endpoint {endpoint!r} is not a URL; use https://{instance}.<region>"
                         ".ots.aliyuncs.com or, inside the VPC, "
                         f"https://{instance}.<region>.vpc.tablestore.aliyuncs.com")
    host = parsed.hostname
    if host.endswith(".aliyuncs.com") and host.split(".")[0] != instance:
        raise ValueError(f"ledger.endpoint {endpoint!r} names instance {host.split('.')[0]!r} but "
                         f"ledger.instance is {instance!r}; make them the same Tablestore instance")
    return endpoint.rstrip("/")


def _pk(suffix: str, values: PK) -> PrimaryKey:
    return [(name, v) for (name, _), v in zip(SCHEMAS[suffix], values, strict=True)]


def _hint(code: str | None) -> str:
    """How to fix the errors an operator can fix."""
    return {
        "OTSObjectNotExist": "; the ledger tables are missing: run `acrsync ledger init`",
        "OTSAuthFailed": "; the access key, secret or STS token is wrong or expired",
        "OTSNoPermissionAccess": "; the function's role needs the ots: actions `acrsync permissions` prints",
        "OTSParameterInvalid": "; check ledger.table_prefix (letters, digits, '_'; starts with a letter)",
        "NetworkError": "; check ledger.endpoint and the network path (a VPC endpoint needs the function "
                        "in that VPC)",
    }.get(code or "", "")


class TablestoreLedger(Ledger):
    """Ledger on a Tablestore instance (see docs/ledger.md for tables and consistency)."""

    def __init__(self, ots: Ots, *, table_prefix: str = "acrsync"):
        super().__init__()
        self.ots = ots
        self.prefix = table_prefix

    @property
    def endpoint(self) -> str:
        return self.ots.endpoint

    @property
    def instance(self) -> str:
        return self.ots.instance

    @classmethod
    def from_session(cls, cfg: LedgerConfig, session: CloudSession) -> TablestoreLedger:
        """From ``LedgerConfig`` and a ``CloudSession``: its credentials, budget and endpoint override."""
        endpoint = session.endpoint_for("ots", cfg.endpoint)
        # LedgerConfig requires both for backend tablestore
        assert endpoint is not None and cfg.instance is not None, "ledger.endpoint and ledger.instance"
        endpoint = check_endpoint(endpoint, cfg.instance)
        return cls(session.ots(endpoint, cfg.instance), table_prefix=cfg.table_prefix)

    @classmethod
    def from_keys(cls, endpoint: str, instance: str, access_key_id: str, access_key_secret: str, *,
                  security_token: str | None = None, table_prefix: str = "acrsync",
                  **session_kw: Any) -> TablestoreLedger:
        """With explicit keys (tests, tools): a session of its own, no endpoint overrides."""
        from acrsync.cloud.clients import CloudSession

        session = CloudSession.from_keys(access_key_id, access_key_secret, security_token, env={},
                                         **session_kw)
        return cls(session.ots(check_endpoint(endpoint, instance), instance), table_prefix=table_prefix)

    def scoped(self, budget: Budget) -> TablestoreLedger:
        """Same caches and client; calls bounded by ``budget`` (one invocation's deadline)."""
        other = TablestoreLedger(self.ots.scoped(self.ots.session.scoped(budget)), table_prefix=self.prefix)
        other._known, other._known_lock = self._known, self._known_lock
        return other

    def table(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Cloud failures as LedgerError naming the operation and, when an operator can, the fix."""
        try:
            yield
        except ConditionFailed:
            raise
        except CloudError as e:
            raise LedgerError(f"Tablestore {what} on instance {self.instance}: {e}{_hint(e.code)}") from e

    # --- plumbing ------------------------------------------------------------------------------
    def _index_put(self, row: IndexRow, version: int) -> tuple[str, Any]:
        """An index row, stamped with the record version that needs it (see ``_delete_stale``)."""
        suffix, values = row
        item = PutRowItem(Row(_pk(suffix, values), [("v", version)]),
                          Condition(RowExistenceExpectation.IGNORE))
        return self.table(suffix), item

    def _index_delete(self, row: IndexRow, upto: int) -> tuple[str, Any]:
        """Delete an index row unless a record version after ``upto`` (re)wrote it."""
        suffix, values = row
        cond = Condition(RowExistenceExpectation.IGNORE,
                         SingleColumnCondition("v", upto, ComparatorType.LESS_EQUAL, pass_if_missing=True))
        return self.table(suffix), DeleteRowItem(Row(_pk(suffix, values)), cond)

    def _delete_stale(self, rows: Iterable[IndexRow], upto: int) -> None:
        """Delete index rows that record version ``upto`` no longer needs, after the record was written.

        Conditional on the row's ``v`` stamp, so a late delete never removes a row that a newer version
        wrote again (a record closed and reopened quickly). Best effort: a stale row left behind costs
        readers a re-read, never correctness.
        """
        rows = sorted(rows)
        try:
            for i in range(0, len(rows), MAX_BATCH_WRITE):
                with self._errors("BatchWriteRow"):
                    self.ots.batch_write([self._index_delete(r, upto) for r in rows[i:i + MAX_BATCH_WRITE]])
        except LedgerError as e:
            log.warning("could not delete %d stale ledger index rows (readers skip them): %s", len(rows), e)

    def _ensure_indexed(self, rows: list[IndexRow], version: int, results: list[RowResult]) -> None:
        """Index rows that failed in a batch: write them now, one by one (raises if they keep failing)."""
        for row, result in zip(rows, results, strict=True):
            if not result.ok:
                table, item = self._index_put(row, version)
                with self._errors("PutRow"):
                    self.ots.put_row(table, item.row, item.condition)

    def _write_record(self, item: PutRowItem | UpdateRowItem, version: int, add: list[IndexRow]) -> RowResult:
        """Write a conditional record row and the index rows it gains.

        Index rows share the record's BatchWriteRow (one call; a client crash cannot split a batch). Rows
        beyond one batch are written first. Index rows that fail beside a successful record write are
        written again before returning, so the index never misses a record reported as written.
        """
        split = max(0, len(add) - (MAX_BATCH_WRITE - 1))
        for i in range(0, split, MAX_BATCH_WRITE):
            chunk = add[i:min(split, i + MAX_BATCH_WRITE)]
            with self._errors("BatchWriteRow"):
                results = self.ots.batch_write([self._index_put(r, version) for r in chunk])
            self._ensure_indexed(chunk, version, results)
        tail = add[split:]
        records = self.table("records")
        if not tail:    # the record alone: a plain PutRow/UpdateRow, as cheap as the bare call
            put = isinstance(item, PutRowItem)
            try:
                with self._errors("PutRow" if put else "UpdateRow"):
                    (self.ots.put_row if put else self.ots.update_row)(records, item.row, item.condition)
                return RowResult(True)
            except ConditionFailed as e:
                return RowResult(False, e.code, e.message)
        with self._errors("BatchWriteRow"):
            results = self.ots.batch_write([*(self._index_put(r, version) for r in tail), (records, item)])
        if results[-1].ok:
            self._ensure_indexed(tail, version, results[:-1])
        return results[-1]

    def _record_columns(self, row: StoredRecord, writer: str) -> list[tuple[str, Any]]:
        return [("doc", row.doc), ("version", row.version), ("status", row.status), ("writer", writer),
                ("created_us", micros(row.created_at))]

    def _read(self, key: str) -> tuple[Raw, str | None] | None:
        """The record's (doc, version) and the writer token of its last write."""
        with self._errors("GetRow"):
            cols = self.ots.get_row(self.table("records"), [("key", key)], _RECORD_COLUMNS)
        if cols is None:
            return None
        return (cols["doc"], int(cols["version"])), cols.get("writer")

    def _failed(self, what: str, key: str, result: RowResult) -> LedgerError:
        return LedgerError(f"Tablestore {what} of {key} failed: {result.code} {result.message}"
                           f"{_hint(result.code)}")

    # --- storage primitives ----------------------------------------------------------------------
    def init(self, wait_seconds: float = 90.0) -> None:
        """Create every table (an existing one is fine), then wait until each answers DescribeTable."""
        for suffix, schema in SCHEMAS.items():
            with self._errors(f"CreateTable {self.table(suffix)}"):
                self.ots.create_table(self.table(suffix), schema)
        deadline = time.monotonic() + min(wait_seconds, self.ots.session.budget.remaining())
        for suffix in SCHEMAS:
            while True:
                try:
                    self.ots.describe_table(self.table(suffix))
                    break
                except CloudError as e:
                    if time.monotonic() + 1.0 > deadline:
                        raise LedgerError(f"Tablestore table {self.table(suffix)} is not ready: {e}; run "
                                          "`acrsync ledger init` again") from e
                    time.sleep(1.0)

    def _insert(self, row: StoredRecord) -> Raw | None:
        writer = uuid.uuid4().hex
        rows = sorted(index_rows(row.key, row.indexed))
        item = PutRowItem(Row([("key", row.key)], self._record_columns(row, writer)),
                          Condition(RowExistenceExpectation.EXPECT_NOT_EXIST))
        result = self._write_record(item, row.version, rows)
        if result.ok:
            return None
        if result.code != CONDITION_FAILED:
            raise self._failed("PutRow", row.key, result)
        found = self._read(row.key)
        if found is None:   # the winner's row vanished: records are never deleted, so this is a bug
            raise LedgerError(f"record {row.key} both exists and does not; check that nothing else "
                              f"writes the table {self.table('records')}")
        raw, existing_writer = found
        if existing_writer == writer:      # our own write, answered by a retry that found it done
            return None
        self._delete_stale(set(rows) - index_rows(row.key, Indexed.of(self._decode(raw))), upto=1)
        return raw

    def _replace(self, row: StoredRecord, expected: int, before: Indexed) -> bool:
        old_rows, new_rows = index_rows(row.key, before), index_rows(row.key, row.indexed)
        add = sorted(new_rows - old_rows)
        writer = uuid.uuid4().hex
        version_matches = SingleColumnCondition("version", expected, ComparatorType.EQUAL,
                                                pass_if_missing=False)
        item = UpdateRowItem(Row([("key", row.key)], {"PUT": self._record_columns(row, writer)}),
                             Condition(RowExistenceExpectation.EXPECT_EXIST, version_matches))
        result = self._write_record(item, row.version, add)
        if not result.ok:
            if result.code != CONDITION_FAILED:
                raise self._failed("UpdateRow", row.key, result)
            found = self._read(row.key)
            if found is None or found[1] != writer or found[0][1] != row.version:
                keep = index_rows(row.key, Indexed.of(self._decode(found[0]))) if found else frozenset()
                self._delete_stale(set(add) - keep, upto=row.version)
                return False
            # else: our own write, answered by a retry that found it done
        self._delete_stale(old_rows - new_rows, upto=row.version)
        return True

    def _fetch(self, key: str) -> Raw | None:
        found = self._read(key)
        return found[0] if found is not None else None

    def _get_records(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        with self._errors("BatchGetRow"):
            got = self.ots.batch_get(self.table("records"), [[("key", k)] for k in keys], _RECORD_COLUMNS)
        return {k: cols for k, cols in zip(keys, got, strict=True) if cols}

    def _fetch_by_task(self, task_id: str) -> list[Raw]:
        with self._errors("GetRange"):
            keys = sorted(pk[1] for pk, _ in self.ots.get_range(
                self.table("tasks"), [("task_id", task_id), ("key", INF_MIN)],
                [("task_id", task_id), ("key", INF_MAX)], columns=["v"]))
        if not keys:
            return []
        found = self._get_records(keys)
        return [(found[k]["doc"], int(found[k]["version"])) for k in keys if k in found]

    def _iter_open(self, start: tuple[float, str] | None, batch: int) -> Iterator[Raw]:
        first = [("created_us", micros(start[0])), ("key", start[1])] if start else [
            ("created_us", INF_MIN), ("key", INF_MIN)]
        end = [("created_us", INF_MAX), ("key", INF_MAX)]
        with self._errors("GetRange"):
            positions = self.ots.get_range(self.table("open"), first, end, columns=["v"], batch=batch)
            chunk: list[PK] = []
            for pk, _ in positions:
                chunk.append(pk)
                if len(chunk) >= batch:
                    yield from self._behind(chunk)
                    chunk = []
            if chunk:
                yield from self._behind(chunk)

    def _behind(self, positions: list[PK]) -> Iterator[Raw]:
        """The records behind open-index positions, skipping stale rows (record moved or gone)."""
        found = self._get_records(sorted({p[1] for p in positions}))
        for created_us, key in positions:
            cols = found.get(key)
            if cols is None or cols.get("created_us", created_us) != created_us:
                continue
            yield cols["doc"], int(cols["version"])

    def _iter_range(self, start: str, end: str | None) -> Iterator[Raw]:
        with self._errors("GetRange"):
            for _, cols in self.ots.get_range(self.table("records"), [("key", start or INF_MIN)],
                                              [("key", end if end is not None else INF_MAX)],
                                              columns=["doc", "version"]):
                yield cols["doc"], int(cols["version"])

    def _status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._errors("GetRange"):
            for _, cols in self.ots.get_range(self.table("records"), [("key", INF_MIN)], [("key", INF_MAX)],
                                              columns=["status"]):
                status = cols.get("status")
                if status is not None:
                    counts[status] = counts.get(status, 0) + 1
        return counts

    # --- items -----------------------------------------------------------------------------------
    def _get_item(self, kind: str, key: str) -> Item | None:
        with self._errors("GetRow"):
            cols = self.ots.get_row(self.table("items"), [("kind", kind), ("key", key)])
        return self._item(kind, key, cols) if cols else None

    def _get_items(self, kind: str, keys: list[str]) -> list[Item | None]:
        if len(keys) == 1:
            return [self._get_item(kind, keys[0])]
        with self._errors("BatchGetRow"):
            rows = self.ots.batch_get(self.table("items"), [[("kind", kind), ("key", k)] for k in keys])
        return [self._item(kind, k, cols) if cols else None for k, cols in zip(keys, rows, strict=True)]

    @staticmethod
    def _item(kind: str, key: str, cols: dict[str, Any]) -> Item:
        return Item(kind, key, cols["doc"], int(cols["version"]), cols.get("expires_at"))

    def _put_item(self, item: Item, expect: int | None) -> bool:
        writer = uuid.uuid4().hex
        cols: list[tuple[str, Any]] = [("doc", item.doc), ("version", item.version), ("writer", writer)]
        if item.expires_at is not None:
            cols.append(("expires_at", float(item.expires_at)))
        if expect is None:
            cond = Condition(RowExistenceExpectation.IGNORE)
        elif expect == 0:
            cond = Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)
        else:
            cond = Condition(RowExistenceExpectation.EXPECT_EXIST,
                             SingleColumnCondition("version", expect, ComparatorType.EQUAL,
                                                   pass_if_missing=False))
        pk = [("kind", item.kind), ("key", item.key)]
        try:
            with self._errors("PutRow"):
                self.ots.put_row(self.table("items"), Row(pk, cols), cond)
            return True
        except ConditionFailed:
            with self._errors("GetRow"):
                stored = self.ots.get_row(self.table("items"), pk, ["writer"])
            return stored is not None and stored.get("writer") == writer   # ours, if a retry found it done

    def _delete_item(self, kind: str, key: str) -> None:
        with self._errors("DeleteRow"):
            self.ots.delete_row(self.table("items"), Row([("kind", kind), ("key", key)]),
                                Condition(RowExistenceExpectation.IGNORE))

    def _list_items(self, kind: str, start: str | None, end: str | None, newest_first: bool,
                    limit: int | None) -> list[Item]:
        low = [("kind", kind), ("key", start if start is not None else INF_MIN)]
        high = [("kind", kind), ("key", end if end is not None else INF_MAX)]
        out: list[Item] = []
        with self._errors("GetRange"):
            # a backward range starts at its first bound inclusive and stops before the second
            rows = self.ots.get_range(self.table("items"), high if newest_first else low,
                                      low if newest_first else high, limit=limit, backward=newest_first)
            for (_, key), cols in rows:
                if end is None or key < end:
                    out.append(self._item(kind, key, cols))
        if newest_first and start is not None and (limit is None or len(out) < limit):
            exact = self._get_item(kind, start)    # the backward range stopped just before ``start``
            if exact is not None:
                out.append(exact)
        return out
