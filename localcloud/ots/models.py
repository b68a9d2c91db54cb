"""Tablestore state and rules: instances, tables, rows, conditions, ranges (moto's ``models`` layer).

One backend per emulator holds every instance by name; each instance keeps its own tables. Rows keep one
version per cell (``max_versions`` is stored and reported, not enforced). One lock guards the backend;
with a ``state_file`` every successful write is followed by an atomic snapshot (``persist.py``).
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from localcloud.ots import filters as flt
from localcloud.ots.plainbuffer import (
    AUTO_INCREMENT,
    INF_MAX,
    INF_MIN,
    OP_DELETE_ALL,
    OP_DELETE_ONE,
    OP_INCREMENT,
    RowChange,
    Sentinel,
    Value,
)

PK_TYPES = ("INTEGER", "STRING", "BINARY", "BOOLEAN")
MAX_BATCH_WRITE_ROWS = 200
MAX_BATCH_GET_ROWS = 100
MAX_RANGE_ROWS = 5000
# General limits (https://www.alibabacloud.com/help/en/tablestore/product-overview/general-limits): one
# attribute column value at most 2 MB, one row (primary key plus attribute columns) at most 4 MB.
MAX_CELL_BYTES = 2 * 1024 * 1024
MAX_ROW_BYTES = 4 * 1024 * 1024
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")

# Row existence expectations, numbered as in table_store.proto.
IGNORE, EXPECT_EXIST, EXPECT_NOT_EXIST = 0, 1, 2
FORWARD, BACKWARD = 0, 1

PkValues = list[tuple[str, Value]]
SortKey = tuple


class OtsError(Exception):
    """A Tablestore error reply: HTTP status, ``Error.code`` and ``Error.message``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def table_missing() -> OtsError:
    return OtsError(404, "OTSObjectNotExist", "Requested table does not exist.")


def condition_failed() -> OtsError:
    return OtsError(403, "OTSConditionCheckFail", "Condition check failed.")


def invalid(message: str) -> OtsError:
    return OtsError(400, "OTSParameterInvalid", message)


def _value_bytes(value: Value | None) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return 1 if isinstance(value, bool) else 8


def _check_sizes(primary_key: PkValues, cells: list[tuple[str, Value | None]]) -> None:
    """The 2 MB cell and 4 MB row limits, refused with OTSParameterInvalid as the service does."""
    for name, value in cells:
        size = _value_bytes(value)
        if size > MAX_CELL_BYTES:
            raise invalid(f"The length of attribute column: '{name}' exceeds the MaxLength:{MAX_CELL_BYTES} "
                          f"with CurrentLength:{size}.")
    total = sum(len(n) + _value_bytes(v) for n, v in (*primary_key, *cells))
    if total > MAX_ROW_BYTES:
        raise invalid(f"The total size of the row exceeds the MaxLength:{MAX_ROW_BYTES} with "
                      f"CurrentLength:{total}.")


def _type_name(value: Value) -> str:
    if isinstance(value, Sentinel):
        return value.name
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, str):
        return "STRING"
    return "BINARY"


def _sort_value(value: Value):
    """Tablestore orders STRING and BINARY by bytes, INTEGER numerically."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


@dataclass(frozen=True)
class PkColumn:
    name: str
    type: str                       # one of PK_TYPES
    auto_increment: bool = False


@dataclass
class StoredRow:
    primary_key: PkValues
    columns: dict[str, tuple[Value, int]] = field(default_factory=dict)   # name -> (value, timestamp ms)

    def values(self) -> dict[str, Value]:
        return {name: value for name, (value, _ts) in self.columns.items()}


@dataclass
class Table:
    name: str
    primary_key: list[PkColumn]
    defined_columns: list[tuple[str, str]] = field(default_factory=list)
    time_to_live: int = -1
    max_versions: int = 1
    deviation: int = 86400
    reserved_read: int = 0
    reserved_write: int = 0
    created_at: float = 0.0
    auto_seq: int = 0
    rows: dict[SortKey, StoredRow] = field(default_factory=dict)
    order: list[SortKey] = field(default_factory=list)

    def store(self, key: SortKey, row: StoredRow) -> None:
        if key not in self.rows:
            bisect.insort(self.order, key)
        self.rows[key] = row

    def remove(self, key: SortKey) -> None:
        if self.rows.pop(key, None) is not None:
            del self.order[bisect.bisect_left(self.order, key)]


@dataclass(frozen=True)
class RowCondition:
    existence: int = IGNORE
    column: flt.Filter | None = None


@dataclass(frozen=True)
class ReadSpec:
    """What a read returns: the columns, a row filter, a cell time range and a column range."""

    columns_to_get: tuple[str, ...] = ()
    row_filter: flt.Filter | None = None
    time_range: tuple[int, int] | None = None         # [start, end) in ms
    start_column: str | None = None
    end_column: str | None = None


@dataclass(frozen=True)
class WriteItem:
    """One row of a BatchWriteRow: ``op`` is "PUT", "UPDATE" or "DELETE"."""

    table: str
    op: str
    change: RowChange
    condition: RowCondition


@dataclass
class WriteResult:
    ok: bool
    primary_key: PkValues | None = None
    error: OtsError | None = None


ReadRow = tuple[PkValues, list[tuple[str, Value, int]]]


class OtsBackend:
    """Every Tablestore instance of the emulator, keyed by instance name."""

    def __init__(self, state_file: str | None = None, now: Callable[[], float] | None = None):
        self.lock = threading.RLock()
        self.state_file = state_file
        self._now = now or time.time
        self.instances: dict[str, dict[str, Table]] = {}
        if state_file:
            from localcloud.ots import persist

            self.instances = persist.load(state_file)

    # --- helpers --------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self._now() * 1000)

    def _saved(self) -> None:
        if self.state_file:
            from localcloud.ots import persist

            persist.save(self.state_file, self.instances)

    def _table(self, instance: str, name: str) -> Table:
        table = self.instances.get(instance, {}).get(name)
        if table is None:
            raise table_missing()
        return table

    @staticmethod
    def _key(table: Table, pk: PkValues, *, bounds: bool = False, put: bool = False) -> SortKey:
        """Check a primary key against the schema and give its sort key.

        ``bounds``: INF_MIN/INF_MAX allowed (GetRange). ``put``: the auto-increment placeholder allowed.
        """
        if len(pk) != len(table.primary_key):
            raise invalid(f"Validate PK size fail. Input: {len(pk)}, Meta: {len(table.primary_key)}.")
        key = []
        for (name, value), col in zip(pk, table.primary_key, strict=True):
            if name != col.name:
                raise invalid(f"Validate PK name fail. Input: {name}, Meta: {col.name}.")
            if value is INF_MIN or value is INF_MAX:
                if not bounds:
                    raise invalid(f"INF_MIN and INF_MAX are only allowed in GetRange bounds (column {name}).")
                key.append((0,) if value is INF_MIN else (2,))
                continue
            if value is AUTO_INCREMENT:
                if not (put and col.auto_increment):
                    raise invalid(f"PK_AUTO_INCR is only allowed in PutRow for an auto-increment primary key "
                                  f"column; {name} is not one or this is not a PutRow.")
                key.append((1, None))
                continue
            if _type_name(value) != col.type:
                raise invalid(f"Validate PK type fail. Input: VT_{_type_name(value)}, Meta: VT_{col.type}.")
            key.append((1, _sort_value(value)))
        return tuple(key)

    def _fill_auto_increment(self, table: Table, pk: PkValues) -> tuple[PkValues, SortKey]:
        filled = []
        for name, value in pk:
            if value is AUTO_INCREMENT:
                table.auto_seq = max(table.auto_seq + 1, self.now_ms() * 1000)
                value = table.auto_seq
            filled.append((name, value))
        return filled, self._key(table, filled)

    @staticmethod
    def _check(condition: RowCondition, row: StoredRow | None) -> None:
        if condition.existence == EXPECT_EXIST and row is None:
            raise condition_failed()
        if condition.existence == EXPECT_NOT_EXIST and row is not None:
            raise condition_failed()
        if condition.column is not None and not flt.matches(condition.column, row.values() if row else {}):
            raise condition_failed()

    # --- tables ---------------------------------------------------------------------------------
    def create_table(self, instance: str, table: Table) -> None:
        if not TABLE_NAME.match(table.name):
            raise invalid(f"Invalid table name: '{table.name}'. Use letters, digits and underscores, "
                          "not starting with a digit, at most 255 characters.")
        if not 1 <= len(table.primary_key) <= 4:
            raise invalid("The number of primary key columns must be in range: [1, 4].")
        names = [c.name for c in table.primary_key]
        if len(set(names)) != len(names):
            raise invalid(f"Duplicated primary key name in {names}.")
        for i, col in enumerate(table.primary_key):
            if col.type not in PK_TYPES:
                raise invalid(f"Primary key column {col.name} has an unsupported type {col.type}.")
            if col.auto_increment and (i == 0 or col.type != "INTEGER"):
                raise invalid(f"Auto-increment primary key column {col.name} must be an INTEGER and not the "
                              "first (partition key) column.")
        if table.max_versions < 1:
            raise invalid("max_versions must be at least 1.")
        with self.lock:
            tables = self.instances.setdefault(instance, {})
            if table.name in tables:
                raise OtsError(409, "OTSObjectAlreadyExist", "Requested table already exists.")
            table.created_at = self._now()
            tables[table.name] = table
            self._saved()

    def describe_table(self, instance: str, name: str) -> Table:
        with self.lock:
            return self._table(instance, name)

    def list_tables(self, instance: str) -> list[str]:
        with self.lock:
            return sorted(self.instances.get(instance, {}))

    def delete_table(self, instance: str, name: str) -> None:
        with self.lock:
            self._table(instance, name)
            del self.instances[instance][name]
            self._saved()

    # --- single-row writes ----------------------------------------------------------------------
    def _put(self, table: Table, change: RowChange, condition: RowCondition) -> PkValues:
        _check_sizes(change.primary_key, [(c.name, c.value) for c in change.cells])
        key = self._key(table, change.primary_key, put=True)
        auto = any(v is AUTO_INCREMENT for _n, v in change.primary_key)
        current = None if auto else table.rows.get(key)
        if auto and condition.existence == EXPECT_EXIST:
            raise invalid("A row with an auto-increment primary key can only be put with IGNORE.")
        self._check(condition, current)
        pk, key = self._fill_auto_increment(table, change.primary_key) if auto else (change.primary_key, key)
        now = self.now_ms()
        row = StoredRow(primary_key=list(pk))
        for cell in change.cells:
            if cell.value is None or cell.op is not None:
                raise invalid(f"PutRow cell {cell.name!r} must carry a value and no update type.")
            row.columns[cell.name] = (cell.value, cell.timestamp if cell.timestamp is not None else now)
        table.store(key, row)
        return list(pk)

    def _update(self, table: Table, change: RowChange, condition: RowCondition) -> PkValues:
        key = self._key(table, change.primary_key)
        current = table.rows.get(key)
        self._check(condition, current)
        now = self.now_ms()
        columns = dict(current.columns) if current else {}
        writes = False
        for cell in change.cells:
            if cell.op is None:
                if cell.value is None:
                    raise invalid(f"UpdateRow PUT cell {cell.name!r} has no value.")
                columns[cell.name] = (cell.value, cell.timestamp if cell.timestamp is not None else now)
                writes = True
            elif cell.op == OP_DELETE_ALL:
                columns.pop(cell.name, None)
            elif cell.op == OP_DELETE_ONE:
                if cell.timestamp is None:
                    raise invalid(f"DELETE of column {cell.name!r} needs the version's timestamp; "
                                  "use DELETE_ALL to delete every version.")
                if cell.name in columns and columns[cell.name][1] == cell.timestamp:
                    del columns[cell.name]
            elif cell.op == OP_INCREMENT:
                if not isinstance(cell.value, int) or isinstance(cell.value, bool):
                    raise invalid(f"INCREMENT of column {cell.name!r} needs an integer value.")
                old = columns.get(cell.name, (0, now))[0]
                if not isinstance(old, int) or isinstance(old, bool):
                    raise invalid(f"Column {cell.name!r} holds a {_type_name(old)}; "
                                  "INCREMENT needs an INTEGER.")
                total = old + cell.value
                if not -(2**63) <= total < 2**63:
                    raise invalid(f"INCREMENT of column {cell.name!r} overflows int64.")
                columns[cell.name] = (total, now)
                writes = True
            else:
                raise invalid(f"Unknown update type {cell.op} on column {cell.name!r}.")
        _check_sizes(change.primary_key, [(name, value) for name, (value, _ts) in columns.items()])
        if current is not None:
            current.columns = columns
        elif writes:
            table.store(key, StoredRow(primary_key=list(change.primary_key), columns=columns))
        return list(change.primary_key)

    def _delete(self, table: Table, change: RowChange, condition: RowCondition) -> PkValues:
        key = self._key(table, change.primary_key)
        if condition.existence == EXPECT_NOT_EXIST:
            raise invalid("Invalid condition: EXPECT_NOT_EXIST while deleting row.")
        self._check(condition, table.rows.get(key))
        table.remove(key)
        return list(change.primary_key)

    def _write(self, instance: str, table_name: str, op: str, change: RowChange,
               condition: RowCondition) -> PkValues:
        table = self._table(instance, table_name)
        if op == "PUT":
            return self._put(table, change, condition)
        if op == "UPDATE":
            return self._update(table, change, condition)
        return self._delete(table, change, condition)

    def write_row(self, instance: str, table: str, op: str, change: RowChange,
                  condition: RowCondition) -> PkValues:
        """PutRow / UpdateRow / DeleteRow. Returns the written primary key (auto-increment filled)."""
        with self.lock:
            pk = self._write(instance, table, op, change, condition)
            self._saved()
            return pk

    def batch_write(self, instance: str, items: list[WriteItem]) -> list[WriteResult]:
        """BatchWriteRow: each row on its own, with its own condition and result (not atomic)."""
        if len(items) > MAX_BATCH_WRITE_ROWS:
            raise invalid(f"Rows count exceeds the upper limit: {MAX_BATCH_WRITE_ROWS}. "
                          f"Got {len(items)}; split the batch.")
        seen: set[tuple[str, tuple]] = set()
        for item in items:
            ident = (item.table, tuple((n, repr(v)) for n, v in item.change.primary_key))
            if ident in seen and not any(v is AUTO_INCREMENT for _n, v in item.change.primary_key):
                raise invalid(f"The input parameter is invalid: the same row of table {item.table} appears "
                              "twice in one BatchWriteRow.")
            seen.add(ident)
        results = []
        with self.lock:
            for item in items:
                try:
                    results.append(WriteResult(True, self._write(instance, item.table, item.op, item.change,
                                                                 item.condition)))
                except (OtsError, flt.FilterError) as exc:
                    err = exc if isinstance(exc, OtsError) else invalid(str(exc))
                    results.append(WriteResult(False, error=err))
            self._saved()
        return results

    # --- reads ----------------------------------------------------------------------------------
    @staticmethod
    def _project(row: StoredRow, spec: ReadSpec) -> ReadRow | None:
        """A stored row as a read returns it, or None when the filter or the column list leaves nothing."""
        cells = sorted(row.columns.items())
        if spec.time_range is not None:
            lo, hi = spec.time_range
            cells = [(n, vt) for n, vt in cells if lo <= vt[1] < hi]
        if spec.row_filter is not None and not flt.matches(spec.row_filter, {n: vt[0] for n, vt in cells}):
            return None
        wanted = set(spec.columns_to_get)
        pk_names = {n for n, _v in row.primary_key}
        if wanted:
            cells = [(n, vt) for n, vt in cells if n in wanted]
            if not cells and not (wanted & pk_names):
                return None
        if spec.start_column is not None:
            cells = [(n, vt) for n, vt in cells if n >= spec.start_column]
        if spec.end_column is not None:
            cells = [(n, vt) for n, vt in cells if n < spec.end_column]
        return list(row.primary_key), [(n, v, ts) for n, (v, ts) in cells]

    def get_row(self, instance: str, table_name: str, pk: PkValues, spec: ReadSpec) -> ReadRow | None:
        with self.lock:
            table = self._table(instance, table_name)
            row = table.rows.get(self._key(table, pk))
            return None if row is None else self._project(row, spec)

    def batch_get(self, instance: str, requests: list[tuple[str, list[PkValues], ReadSpec]]
                  ) -> list[list[tuple[ReadRow | None, OtsError | None]]]:
        """BatchGetRow: per table, per key, the row (or None) or the error of that key."""
        total = sum(len(keys) for _t, keys, _s in requests)
        if total > MAX_BATCH_GET_ROWS:
            raise invalid(f"Rows count exceeds the upper limit: {MAX_BATCH_GET_ROWS}. "
                          f"Got {total}; split the batch.")
        out = []
        with self.lock:
            for table_name, keys, spec in requests:
                rows: list[tuple[ReadRow | None, OtsError | None]] = []
                for pk in keys:
                    try:
                        rows.append((self.get_row(instance, table_name, pk, spec), None))
                    except OtsError as exc:
                        rows.append((None, exc))
                out.append(rows)
        return out

    def get_range(self, instance: str, table_name: str, direction: int, start: PkValues, end: PkValues,
                  limit: int | None, spec: ReadSpec) -> tuple[list[ReadRow], PkValues | None]:
        """Rows from ``start`` (inclusive) to ``end`` (exclusive); the next start key when cut short."""
        if limit is not None and limit <= 0:
            raise invalid(f"The limit must be greater than 0, got {limit}.")
        page = min(limit or MAX_RANGE_ROWS, MAX_RANGE_ROWS)
        with self.lock:
            table = self._table(instance, table_name)
            lo = self._key(table, start, bounds=True)
            hi = self._key(table, end, bounds=True)
            if direction == FORWARD:
                if lo > hi:
                    raise invalid("Begin key must less than end key in FORWARD.")
                keys = table.order[bisect.bisect_left(table.order, lo):bisect.bisect_left(table.order, hi)]
            else:
                if lo < hi:
                    raise invalid("Begin key must more than end key in BACKWARD.")
                keys = table.order[bisect.bisect_right(table.order, hi):bisect.bisect_right(table.order, lo)]
                keys.reverse()
            rows: list[ReadRow] = []
            for i, key in enumerate(keys):
                if len(rows) == page:
                    return rows, list(table.rows[keys[i]].primary_key)
                projected = self._project(table.rows[key], spec)
                if projected is not None:
                    rows.append(projected)
            return rows, None


def table_from_schema(name: str, primary_key: list[PkColumn], *, defined: Mapping[str, str] | None = None,
                      time_to_live: int = -1, max_versions: int = 1, deviation: int = 86400,
                      read: int = 0, write: int = 0) -> Table:
    """A new, empty table description (what CreateTable asks for)."""
    return Table(name=name, primary_key=list(primary_key), defined_columns=list((defined or {}).items()),
                 time_to_live=time_to_live, max_versions=max_versions, deviation=deviation,
                 reserved_read=read, reserved_write=write)
