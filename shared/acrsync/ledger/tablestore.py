"""The production ledger on Tablestore: one table of records plus small index tables, every question one
GetRange (docs/ledger.md has the key design).

Writes: create-if-absent is a PutRow expecting the row not to exist; update is compare-and-set on the
``version`` column. Index rows go in the same BatchWriteRow as the record (a batch cannot be split by a
client crash) and stale ones are deleted after the record changed, so a crash leaves at most a stale
index row, never a missing one; readers re-read the record behind every index row. Every record write
carries a fresh ``writer`` token, so a write retried after a lost reply recognises itself when its
condition then fails.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

# tablestore logs "Native C++ encoder/decoder not available" at import on Python != 3.12: one warning per
# cold start in every FC log. Silence exactly those loggers before the import.
for _name in ("tablestore.encoder", "tablestore.decoder"):
    logging.getLogger(_name).setLevel(logging.ERROR)
# The SDK client logs every error reply at ERROR, including the failed conditions that are this ledger's
# normal answer to a duplicate or a lost race; failures reach callers as LedgerError with the details.
_SDK_LOGGER = "acrsync.ledger.ots"
logging.getLogger(_SDK_LOGGER).setLevel(logging.CRITICAL)

import urllib3  # noqa: E402
from tablestore import (  # noqa: E402
    INF_MAX,
    INF_MIN,
    BatchGetRowRequest,
    BatchWriteRowRequest,
    CapacityUnit,
    ComparatorType,
    Condition,
    DeleteRowItem,
    Direction,
    OTSClient,
    OTSClientError,
    OTSServiceError,
    PutRowItem,
    ReservedThroughput,
    Row,
    RowExistenceExpectation,
    SingleColumnCondition,
    TableInBatchGetRowItem,
    TableInBatchWriteRowItem,
    TableMeta,
    TableOptions,
    UpdateRowItem,
)
from tablestore.credentials import Credentials, CredentialsProvider  # noqa: E402
from tablestore.retry import DefaultRetryPolicy, RetryUtil  # noqa: E402

from acrsync.ledger.base import (  # noqa: E402
    Ledger,
    LedgerError,
    Page,
    Record,
    RejectedEvent,
    Report,
    VersionConflict,
    repo_prefix,
)

log = logging.getLogger(__name__)

# Table suffix -> primary key schema. Names are "<table_prefix>_<suffix>".
SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "records": [("key", "STRING")],                                   # record_key order: repo/tag prefixes
    "tasks": [("task_id", "STRING"), ("key", "STRING")],              # every task id a record has had
    "open": [("created_us", "INTEGER"), ("key", "STRING")],           # open records, oldest first
    "retry": [("due_us", "INTEGER"), ("key", "STRING")],              # open records with next_retry_at
    "rejected": [("rtime", "INTEGER"), ("id", "STRING")],             # reversed receive time: newest first
    "reports": [("kind", "STRING"), ("id", "STRING")],
    "checkpoints": [("name", "STRING")],
}
INDEX_TABLES = ("tasks", "open", "retry")
CONDITION_FAILED = "OTSConditionCheckFail"
MAX_BATCH_ROWS = 200          # BatchWriteRow limit per request [UNVERIFIED: well-known value]
MAX_BATCH_GET = 100           # BatchGetRow limit per request
_TIME_MAX = (1 << 63) - 1
_RETRIABLE_ROW_ERRORS = frozenset({
    "OTSServerBusy", "OTSTimeout", "OTSInternalServerError", "OTSServerUnavailable",
    "OTSRowOperationConflict",
    "OTSNotEnoughCapacityUnit", "OTSPartitionUnavailable", "OTSOperationThrottled", "OTSTableNotReady"})
WRITE_APIS = frozenset({"PutRow", "UpdateRow", "DeleteRow", "BatchWriteRow"})

IndexRow = tuple[str, tuple]   # (table suffix, primary key values)


# --- keys (pure) -----------------------------------------------------------------------------------

def micros(t: float) -> int:
    """Seconds as integer microseconds: an INTEGER primary key that orders like the float."""
    return int(round(t * 1_000_000))


def reversed_micros(t: float) -> int:
    """A primary key that sorts newest first in a forward GetRange."""
    return _TIME_MAX - micros(t)



def prefix_end(prefix: str) -> str:
    """Exclusive GetRange end for every key starting with ``prefix`` (keys are ASCII)."""
    return prefix + "\uffff"


def index_rows(record: Record) -> frozenset[IndexRow]:
    """The index rows a record at this state must have. A pure function of the record, so the rows to
    add and to delete on an update are a set difference."""
    key = record.key
    rows: set[IndexRow] = {("tasks", (a.task_id, key)) for a in record.history}
    if record.task_id:
        rows.add(("tasks", (record.task_id, key)))
    if record.is_open:
        rows.add(("open", (micros(record.created_at), key)))
        if record.next_retry_at is not None:
            rows.add(("retry", (micros(record.next_retry_at), key)))
    return frozenset(rows)


def encode_cursor(created_us: int, key: str) -> str:
    """An open_records cursor: the index position the next page starts at (inclusive)."""
    return f"{created_us}|{key}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    us, sep, key = cursor.partition("|")
    try:
        if not sep or not key:
            raise ValueError(cursor)
        return int(us), key
    except ValueError:
        raise ValueError(f"not a cursor of this ledger: {cursor!r}; pass back the cursor a Page returned, "
                         "or None to start from the oldest record") from None


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


# --- SDK plumbing --------------------------------------------------------------------------------

class LedgerRetryPolicy(DefaultRetryPolicy):
    """The SDK's default policy, but also retrying 5xx/timeouts on writes, and with a short budget.

    The SDK's own WriteRetryPolicy lists 'UpdatRow' (sic) and so never retries UpdateRow. Retrying our
    writes is safe: record writes are conditional and carry a writer token (a retry that finds its own
    write recognises it), index/rejected/report/checkpoint writes are idempotent puts and deletes.
    """

    max_retry_times = 4
    max_retry_delay = 1.0

    def is_repeatable_api(self, api_name: str) -> bool:
        return RetryUtil.is_repeatable_api(api_name) or api_name in WRITE_APIS


class RefreshingCredentials(CredentialsProvider):
    """Asks ``fetch`` for (access_key_id, secret, security_token) on every request, so a long-lived FC
    instance follows its role's refreshed STS keys instead of signing with an expired token."""

    def __init__(self, fetch: Callable[[], tuple[str, str, str | None]]):
        self._fetch = fetch

    def get_credentials(self) -> Credentials:
        key_id, secret, token = self._fetch()
        return Credentials(key_id, secret, token or None)


def _cols(row: Any) -> dict[str, Any]:
    return {c[0]: c[1] for c in (row.attribute_columns or [])} if row is not None else {}


def _pk(schema: list[tuple[str, str]], values: tuple) -> list[tuple[str, Any]]:
    return [(name, v) for (name, _), v in zip(schema, values, strict=True)]


@dataclass
class _Known:
    version: int
    rows: frozenset[IndexRow]


class TablestoreLedger(Ledger):
    """Ledger on a Tablestore instance (see docs/ledger.md for tables and consistency)."""

    def __init__(self, endpoint: str, instance: str, *, table_prefix: str = "acrsync",
                 credentials: Callable[[], tuple[str, str, str | None]] | None = None,
                 access_key_id: str | None = None, access_key_secret: str | None = None,
                 security_token: str | None = None, socket_timeout: float = 10.0):
        if credentials is None:
            if not access_key_id or not access_key_secret:
                raise ValueError("TablestoreLedger needs credentials: a session (open_ledger(cfg, session)) "
                                 "or access_key_id and access_key_secret")
            static = (access_key_id, access_key_secret, security_token)
            credentials = lambda: static  # noqa: E731
        self.endpoint = check_endpoint(endpoint, instance)
        self.instance = instance
        self.prefix = table_prefix
        # No region=: that switches the SDK to SignV4, which localcloud (and SignV2 users) do not speak.
        self.client = OTSClient(self.endpoint, instance_name=instance,
                                credentials_provider=RefreshingCredentials(credentials),
                                retry_policy=LedgerRetryPolicy(), socket_timeout=socket_timeout,
                                logger_name=_SDK_LOGGER)
        self._known: OrderedDict[str, _Known] = OrderedDict()   # key -> index rows at a known version
        self._known_lock = threading.Lock()

    @classmethod
    def from_session(cls, cfg: Any, session: Any) -> TablestoreLedger:
        """From ``LedgerConfig`` and a ``CloudSession``: its refreshing credentials and endpoint override."""
        def fetch() -> tuple[str, str, str | None]:
            creds = session.credentials()    # cached by the session, refreshed before expiry
            return creds.access_key_id, creds.access_key_secret, creds.security_token

        return cls(session.endpoint_for("ots", cfg.endpoint), cfg.instance, table_prefix=cfg.table_prefix,
                   credentials=fetch)

    def table(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    # --- calls ---------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, *args: Any, attempts: int = 3) -> Any:
        """One SDK call. Network errors (which the SDK does not retry) are retried here; every failure
        but a failed condition becomes a LedgerError naming the operation."""
        for attempt in range(attempts):
            try:
                return fn(*args)
            except OTSServiceError as e:
                if e.get_error_code() == CONDITION_FAILED:
                    raise
                raise LedgerError(f"Tablestore {what} on instance {self.instance} failed: "
                                  f"{e.get_error_code()} {e.get_error_message()} "
                                  f"(request {e.get_request_id()}){_hint(e.get_error_code())}") from e
            except OTSClientError as e:
                raise LedgerError(f"Tablestore {what}: {e}") from e
            except (urllib3.exceptions.HTTPError, OSError) as e:
                if attempt + 1 == attempts:
                    raise LedgerError(f"Tablestore {what}: cannot reach {self.endpoint} ({e}); check "
                                      "ledger.endpoint and the network path (VPC endpoint needs the "
                                      "function in that VPC)") from e
                time.sleep(min(1.0, 0.1 * 2 ** attempt) * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")

    def _get_rows(self, suffix: str, keys: list[tuple]) -> dict[tuple, dict[str, Any]]:
        """BatchGetRow: primary key values -> columns, for the rows that exist."""
        out: dict[tuple, dict[str, Any]] = {}
        schema = SCHEMAS[suffix]
        for i in range(0, len(keys), MAX_BATCH_GET):
            chunk = keys[i:i + MAX_BATCH_GET]
            request = BatchGetRowRequest()
            request.add(TableInBatchGetRowItem(self.table(suffix), [_pk(schema, k) for k in chunk],
                                               max_version=1))
            pending = chunk
            for attempt in range(4):
                response = self._call("BatchGetRow", self.client.batch_get_row, request)
                items = response.get_result_by_table(self.table(suffix)) or []
                retry = []
                for k, item in zip(pending, items, strict=True):
                    if item.is_ok:
                        if item.row is not None and item.row.attribute_columns:
                            out[k] = _cols(item.row)
                    elif item.error_code in _RETRIABLE_ROW_ERRORS and attempt < 3:
                        retry.append(k)
                    else:
                        raise LedgerError(f"Tablestore BatchGetRow on {self.table(suffix)}: "
                                          f"{item.error_code} {item.error_message}")
                if not retry:
                    break
                pending = retry
                request = BatchGetRowRequest()
                request.add(TableInBatchGetRowItem(self.table(suffix), [_pk(schema, k) for k in retry],
                                                  max_version=1))
                time.sleep(0.05 * 2 ** attempt)
        return out

    def _write_batch(self, items: list[tuple[str, Any]]) -> list[tuple[bool, str | None, str | None]]:
        """BatchWriteRow over several tables; per item (ok, error code, message), in ``items`` order.

        A failed condition in a batch does not fail the other rows, so results are read per row; rows
        that failed for a passing reason (throttling, a partition busy) are sent again.
        """
        results: list[tuple[bool, str | None, str | None]] = [(False, "NotSent", "")] * len(items)
        pending = list(range(len(items)))
        for attempt in range(5):
            request = BatchWriteRowRequest()
            by_table: dict[str, list[int]] = {}
            for i in pending:
                by_table.setdefault(items[i][0], []).append(i)
            for table, idxs in by_table.items():
                request.add(TableInBatchWriteRowItem(table, [items[i][1] for i in idxs]))
            response = self._call("BatchWriteRow", self.client.batch_write_row, request)
            retry = []
            for table, idxs in by_table.items():
                got = sorted(response.get_put_by_table(table) + response.get_update_by_table(table)
                             + response.get_delete_by_table(table), key=lambda r: r.index)
                for i, item in zip(idxs, got, strict=True):
                    results[i] = (item.is_ok, item.error_code, item.error_message)
                    if not item.is_ok and item.error_code in _RETRIABLE_ROW_ERRORS:
                        retry.append(i)
            if not retry or attempt == 4:
                break
            pending = retry
            time.sleep(min(1.0, 0.05 * 2 ** attempt) * (0.5 + random.random() / 2))
        return results

    def _index_put(self, row: IndexRow, version: int) -> tuple[str, Any]:
        """An index row, stamped with the record version that needs it (see ``_delete_stale``)."""
        suffix, values = row
        item = PutRowItem(Row(_pk(SCHEMAS[suffix], values), [("v", version)]),
                          Condition(RowExistenceExpectation.IGNORE))
        return self.table(suffix), item

    def _index_delete(self, row: IndexRow, upto: int) -> tuple[str, Any]:
        """Delete an index row unless a record version after ``upto`` (re)wrote it."""
        suffix, values = row
        cond = Condition(RowExistenceExpectation.IGNORE,
                         SingleColumnCondition("v", upto, ComparatorType.LESS_EQUAL, pass_if_missing=True))
        return self.table(suffix), DeleteRowItem(Row(_pk(SCHEMAS[suffix], values)), cond)

    def _range(self, suffix: str, start: list, end: list, *, limit: int | None = None,
               columns: list[str] | None = None, backward: bool = False) -> Iterator[Any]:
        """Rows of one GetRange, following next_start_primary_key across responses."""
        direction = Direction.BACKWARD if backward else Direction.FORWARD
        got = 0
        while True:
            want = None if limit is None else limit - got
            _, next_pk, rows, _ = self._call("GetRange", self.client.get_range, self.table(suffix), direction,
                                             start, end, columns, want)
            for row in rows:
                got += 1
                yield row
            if next_pk is None or (limit is not None and got >= limit):
                return
            start = next_pk

    def _delete_stale(self, rows: Iterable[IndexRow], upto: int) -> None:
        """Delete index rows that record version ``upto`` no longer needs, after the record was written.

        Conditional on the row's ``v`` stamp, so a late delete never removes a row that a newer version
        wrote again (a record closed and reopened quickly). Best effort: a stale row left behind costs
        readers a re-read, never correctness.
        """
        rows = sorted(rows)
        if not rows:
            return
        try:
            for i in range(0, len(rows), MAX_BATCH_ROWS):
                self._write_batch([self._index_delete(r, upto) for r in rows[i:i + MAX_BATCH_ROWS]])
        except LedgerError as e:
            log.warning("could not delete %d stale ledger index rows (readers skip them): %s", len(rows), e)

    def _ensure_indexed(self, rows: list[IndexRow], version: int,
                        results: list[tuple[bool, str | None, str | None]]) -> None:
        """Index rows that failed in a batch: write them now, one by one (raises if they keep failing)."""
        for row, (ok, _, _) in zip(rows, results, strict=True):
            if not ok:
                table, item = self._index_put(row, version)
                self._call("PutRow", self.client.put_row, table, item.row, item.condition)

    def _write_record(self, item: PutRowItem | UpdateRowItem, version: int,
                      add: list[IndexRow]) -> tuple[bool, str | None, str | None]:
        """Write a conditional record row and the index rows it gains; (ok, error code, message).

        Index rows share the record's BatchWriteRow (one call; a client crash cannot split a batch). Rows
        beyond one batch are written first. Index rows that fail beside a successful record write are
        written again before returning, so the index never misses a record we report as written.
        """
        split = max(0, len(add) - (MAX_BATCH_ROWS - 1))
        for i in range(0, split, MAX_BATCH_ROWS):
            chunk = add[i:min(split, i + MAX_BATCH_ROWS)]
            results = self._write_batch([self._index_put(r, version) for r in chunk])
            self._ensure_indexed(chunk, version, results)
        tail = add[split:]
        records = self.table("records")
        if not tail:    # the record alone: a plain PutRow/UpdateRow, as cheap as the bare call
            call = self.client.put_row if isinstance(item, PutRowItem) else self.client.update_row
            try:
                self._call(type(item).__name__.removesuffix("Item"), call, records, item.row, item.condition)
                return True, None, None
            except OTSServiceError as e:
                return False, e.get_error_code(), e.get_error_message()
        results = self._write_batch([*(self._index_put(r, version) for r in tail), (records, item)])
        if results[-1][0]:
            self._ensure_indexed(tail, version, results[:-1])
        return results[-1]

    def _remember(self, record: Record) -> None:
        with self._known_lock:
            self._known[record.key] = _Known(record.version, index_rows(record))
            self._known.move_to_end(record.key)
            while len(self._known) > 10_000:
                self._known.popitem(last=False)

    def _known_rows(self, key: str, version: int) -> frozenset[IndexRow] | None:
        with self._known_lock:
            k = self._known.get(key)
            return k.rows if k is not None and k.version == version else None

    def _read(self, key: str) -> tuple[Record, str | None] | None:
        _, row, _ = self._call("GetRow", self.client.get_row, self.table("records"), [("key", key)], None,
                               None, 1)
        if row is None:
            return None
        cols = _cols(row)
        return self._parse(cols), cols.get("writer")

    def _parse(self, cols: dict[str, Any]) -> Record:
        rec = Record.model_validate_json(cols["doc"])
        version = int(cols["version"])
        rec = rec if rec.version == version else rec.model_copy(update={"version": version})
        self._remember(rec)
        return rec

    def _record_columns(self, record: Record, writer: str) -> list[tuple[str, Any]]:
        return [("doc", record.model_dump_json()), ("version", record.version),
                ("status", record.status.value), ("writer", writer)]

    # --- Ledger --------------------------------------------------------------------------------
    def init(self, wait_seconds: float = 90.0) -> None:
        """Create every table (an existing one is fine), then wait until each answers DescribeTable."""
        for suffix, schema in SCHEMAS.items():
            try:
                self.client.create_table(TableMeta(self.table(suffix), schema), TableOptions(time_to_live=-1,
                                         max_version=1), ReservedThroughput(CapacityUnit(0, 0)))
            except OTSServiceError as e:
                if e.get_error_code() != "OTSObjectAlreadyExist":
                    raise LedgerError(f"cannot create Tablestore table {self.table(suffix)}: "
                                      f"{e.get_error_code()} {e.get_error_message()}"
                                      f"{_hint(e.get_error_code())}") from e
            except (OTSClientError, urllib3.exceptions.HTTPError, OSError) as e:
                raise LedgerError(f"cannot create Tablestore table {self.table(suffix)} at {self.endpoint}: "
                                  f"{e}") from e
        deadline = time.monotonic() + wait_seconds
        for suffix in SCHEMAS:
            while True:
                try:
                    self.client.describe_table(self.table(suffix))
                    break
                except (OTSServiceError, OTSClientError, urllib3.exceptions.HTTPError, OSError) as e:
                    if time.monotonic() > deadline:
                        raise LedgerError(f"Tablestore table {self.table(suffix)} is not ready after "
                                          f"{wait_seconds:.0f}s: {e}; run `acrsync ledger init` again") from e
                    time.sleep(1.0)

    def create_if_absent(self, record: Record) -> tuple[bool, Record]:
        stored = record.model_copy(update={"version": 1})
        writer = uuid.uuid4().hex
        rows = sorted(index_rows(stored))
        row = Row([("key", stored.key)], self._record_columns(stored, writer))
        cond = Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)
        ok, code, message = self._write_record(PutRowItem(row, cond), 1, rows)
        if ok:
            self._remember(stored)
            return True, stored
        if code != CONDITION_FAILED:
            raise LedgerError(f"Tablestore PutRow of {stored.key} failed: {code} {message}{_hint(code)}")
        found = self._read(stored.key)
        if found is None:   # the winner's row vanished: there is no delete in this API, so this is a bug
            raise LedgerError(f"record {stored.key} both exists and does not; check that nothing else "
                              f"writes the table {self.table('records')}")
        existing, existing_writer = found
        if existing_writer == writer:      # our own write, answered by a retry that found it done
            return True, existing
        self._delete_stale(set(rows) - index_rows(existing), upto=1)
        return False, existing

    def update(self, record: Record) -> Record:
        expected = record.version
        new = record.model_copy(update={"version": expected + 1})
        old_rows = self._known_rows(record.key, expected)
        if old_rows is None:
            found = self._read(record.key)
            if found is None:
                raise VersionConflict(f"no record {record.key!r}; create it with create_if_absent first")
            current = found[0]
            if current.version != expected:
                raise VersionConflict(f"record {record.key!r} is at version {current.version}, not "
                                      f"{expected}; re-read it and decide again")
            old_rows = index_rows(current)
        new_rows = index_rows(new)
        add = sorted(new_rows - old_rows)
        writer = uuid.uuid4().hex
        row = Row([("key", new.key)], {"PUT": self._record_columns(new, writer)})
        version_matches = SingleColumnCondition("version", expected, ComparatorType.EQUAL,
                                                pass_if_missing=False)
        cond = Condition(RowExistenceExpectation.EXPECT_EXIST, version_matches)
        ok, code, message = self._write_record(UpdateRowItem(row, cond), new.version, add)
        if not ok:
            if code != CONDITION_FAILED:
                raise LedgerError(f"Tablestore UpdateRow of {new.key} failed: {code} {message}{_hint(code)}")
            found = self._read(new.key)
            if found is None or found[1] != writer or found[0].version != new.version:
                keep = index_rows(found[0]) if found is not None else frozenset()
                self._delete_stale(set(add) - keep, upto=new.version)
                if found is None:
                    raise VersionConflict(f"no record {record.key!r}; create it with create_if_absent first")
                raise VersionConflict(f"record {record.key!r} is at version {found[0].version}, not "
                                      f"{expected}; re-read it and decide again")
            # else: our own write, answered by a retry that found it done
        self._remember(new)
        self._delete_stale(old_rows - new_rows, upto=new.version)
        return new

    def get(self, key: str) -> Record | None:
        found = self._read(key)
        return found[0] if found is not None else None

    def get_by_task(self, task_id: str) -> Record | None:
        keys = [r.primary_key[1][1] for r in self._range("tasks", [("task_id", task_id), ("key", INF_MIN)],
                                                         [("task_id", task_id), ("key", INF_MAX)])]
        for key in sorted(keys):
            rec = self.get(key)    # index rows of a lost update point at a record without this task
            if rec is not None and (rec.task_id == task_id or any(a.task_id == task_id for a in rec.history)):
                return rec
        return None

    def _scan_index(self, suffix: str, start: list, end: list, accept: Callable[[tuple, Record], bool],
                    batch: int) -> Iterator[tuple[tuple, Record]]:
        """Walk an index in order, re-reading the records behind it and skipping stale rows."""
        while True:
            _, next_pk, rows, _ = self._call("GetRange", self.client.get_range, self.table(suffix),
                                             Direction.FORWARD, start, end, None, batch)
            positions = [tuple(v for _, v in r.primary_key) for r in rows]
            records = self._get_rows("records", sorted({(p[1],) for p in positions}))
            for pos in positions:
                cols = records.get((pos[1],))
                if cols is None:
                    continue
                rec = self._parse(cols)
                if accept(pos, rec):
                    yield pos, rec
            if next_pk is None:
                return
            start = next_pk

    def open_records(self, limit: int = 100, cursor: str | None = None) -> Page:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if cursor is None:
            start = [("created_us", INF_MIN), ("key", INF_MIN)]
        else:
            us, key = decode_cursor(cursor)
            start = [("created_us", us), ("key", key)]
        end = [("created_us", INF_MAX), ("key", INF_MAX)]

        def accept(pos: tuple, rec: Record) -> bool:
            return rec.is_open and micros(rec.created_at) == pos[0]

        found: list[tuple[tuple, Record]] = []
        for item in self._scan_index("open", start, end, accept, batch=min(limit + 1, 1000)):
            found.append(item)
            if len(found) > limit:
                break
        page = [rec for _, rec in found[:limit]]
        nxt = encode_cursor(*found[limit][0]) if len(found) > limit else None
        return Page(page, nxt)

    def records_for(self, instance_id: str, namespace: str, repo: str,
                    tag: str | None = None) -> list[Record]:
        prefix = repo_prefix(instance_id, namespace, repo, tag)
        return [self._parse(_cols(r)) for r in self._range("records", [("key", prefix)],
                                                             [("key", prefix_end(prefix))])]

    def due_for_retry(self, now: float, limit: int = 100) -> list[Record]:
        start = [("due_us", INF_MIN), ("key", INF_MIN)]
        end = [("due_us", micros(now) + 1), ("key", INF_MIN)]

        def accept(pos: tuple, rec: Record) -> bool:
            return (rec.is_open and rec.next_retry_at is not None and micros(rec.next_retry_at) == pos[0]
                    and rec.next_retry_at <= now)

        out: list[Record] = []
        for _, rec in self._scan_index("retry", start, end, accept, batch=min(limit, 1000)):
            out.append(rec)
            if len(out) >= limit:
                break
        return out

    def counts_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self._range("records", [("key", INF_MIN)], [("key", INF_MAX)], columns=["status"]):
            status = _cols(row).get("status")
            if status is not None:
                counts[status] = counts.get(status, 0) + 1
        return counts

    def all_records(self) -> Iterator[Record]:
        for row in self._range("records", [("key", INF_MIN)], [("key", INF_MAX)]):
            yield self._parse(_cols(row))

    # --- rejected events -----------------------------------------------------------------------
    def put_rejected(self, event: RejectedEvent) -> None:
        pk = [("rtime", reversed_micros(event.received_at)), ("id", event.id)]
        self._call("PutRow", self.client.put_row, self.table("rejected"),
                   Row(pk, [("doc", event.model_dump_json())]), Condition(RowExistenceExpectation.IGNORE))

    def list_rejected(self, limit: int = 100) -> list[RejectedEvent]:
        rows = self._range("rejected", [("rtime", INF_MIN), ("id", INF_MIN)],
                           [("rtime", INF_MAX), ("id", INF_MAX)], limit=limit)
        return [RejectedEvent.model_validate_json(_cols(r)["doc"]) for r in rows]

    # --- reports -------------------------------------------------------------------------------
    def put_report(self, report: Report) -> None:
        pk = [("kind", report.kind), ("id", report.id)]
        self._call("PutRow", self.client.put_row, self.table("reports"),
                   Row(pk, [("doc", report.model_dump_json()), ("created_at", report.created_at)]),
                   Condition(RowExistenceExpectation.IGNORE))

    def get_report(self, kind: str, report_id: str) -> Report | None:
        _, row, _ = self._call("GetRow", self.client.get_row, self.table("reports"),
                               [("kind", kind), ("id", report_id)], ["doc"], None, 1)
        return Report.model_validate_json(_cols(row)["doc"]) if row is not None else None

    def list_reports(self, kind: str, limit: int = 20) -> list[Report]:
        rows = self._range("reports", [("kind", kind), ("id", INF_MAX)], [("kind", kind), ("id", INF_MIN)],
                           limit=limit, columns=["doc"], backward=True)
        return [Report.model_validate_json(_cols(r)["doc"]) for r in rows]

    # --- checkpoints ---------------------------------------------------------------------------
    def get_checkpoint(self, name: str) -> str | None:
        _, row, _ = self._call("GetRow", self.client.get_row, self.table("checkpoints"), [("name", name)],
                               ["value"], None, 1)
        return _cols(row).get("value") if row is not None else None

    def set_checkpoint(self, name: str, value: str | None) -> None:
        pk = [("name", name)]
        cond = Condition(RowExistenceExpectation.IGNORE)
        if value is None:
            self._call("DeleteRow", self.client.delete_row, self.table("checkpoints"), Row(pk), cond)
        else:
            self._call("PutRow", self.client.put_row, self.table("checkpoints"), Row(pk, [("value", value)]),
                       cond)


def _hint(code: str | None) -> str:
    """How to fix the errors an operator can fix."""
    return {
        "OTSObjectNotExist": "; the ledger tables are missing: run `acrsync ledger init`",
        "OTSAuthFailed": "; the access key, secret or STS token is wrong or expired",
        "OTSNoPermissionAccess": "; the function's role needs ots:* on the instance "
                                 "(see `acrsync permissions`)",
        "OTSParameterInvalid": "; check ledger.table_prefix (letters, digits, '_'; starts with a letter)",
    }.get(code or "", "")
