"""Ledger figures: what the ledger costs over the bare storage call it wraps.

Each figure runs the ledger and the bare call on the same data (same JSON size, same condition) in the
same run, and reports throughput plus the ratio ledger/bare time (1.10 = 10% slower). Tablestore runs
against localcloud and also counts HTTP requests per operation from ``cloud.stats()``.

    python -m bench.ledger_bench            # prints every figure as JSON
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from acrsync import codec
from acrsync.records import ImageRef, Origin, Record, Status

# Made-up demo account and key for localcloud: not a real Alibaba Cloud credential.
DEMO_ACCOUNT = "1000000000000001"
DEMO_KEY_ID = "LTAIbenchdemo00001"
DEMO_KEY_SECRET = "bench-demo-secret-not-real"
OTS_INSTANCE = "acrsync-bench"


def _records(n: int, run: str) -> list[Record]:
    return [Record(image=ImageRef(instance_id="cri-bench01", namespace="team", repo=f"app{i % 50}",
                                  tag=f"v{i}", digest=f"{i:064x}"),
                   target="beijing", origin=Origin.PUSH, event_id=f"{run}-{i}", created_at=1_000.0 + i,
                   updated_at=1_000.0 + i) for i in range(n)]


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _figure(n: int, ledger_s: float, bare_s: float, **extra) -> dict:
    return {"ops": n, "ledger_ops_per_s": round(n / ledger_s, 1), "bare_ops_per_s": round(n / bare_s, 1),
            "ratio": round(ledger_s / bare_s, 3), "overhead_pct": round((ledger_s / bare_s - 1) * 100, 1),
            "target_met": ledger_s / bare_s <= 1.10, **extra}


def sqlite_figures(n: int = 2000, workdir: str | Path | None = None) -> dict:
    """create_if_absent and compare-and-set on SQLite vs bare INSERT OR IGNORE / UPDATE ... AND version=?"""
    from acrsync.ledger.sqlite import SqliteLedger

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        ledger = SqliteLedger(Path(tmp) / "ledger.db")
        ledger.init()
        records = _records(n, "sqlite")

        bare = sqlite3.connect(str(Path(tmp) / "bare.db"), isolation_level=None)
        bare.execute("PRAGMA journal_mode = WAL")
        bare.execute("PRAGMA synchronous = NORMAL")
        bare.execute("CREATE TABLE t (key TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL)")
        docs = [(r.key, codec.dumps(dataclasses.replace(r, version=1))) for r in records]

        def bare_create() -> None:
            for key, doc in docs:
                bare.execute("INSERT OR IGNORE INTO t (key, version, doc) VALUES (?, 1, ?)", (key, doc))

        stored: list[Record] = []

        def ledger_create() -> None:
            for r in records:
                stored.append(ledger.create_if_absent(r)[1])

        create = _figure(n, _timed(ledger_create), _timed(bare_create))

        def bare_cas(version: int) -> Callable[[], None]:
            def run() -> None:
                for key, doc in docs:
                    bare.execute("UPDATE t SET version = version + 1, doc = ? WHERE key = ? AND version = ?",
                                 (doc, key, version))
            return run

        def ledger_cas(update: Callable[[Record], dict]) -> Callable[[], None]:
            def run() -> None:
                for i, r in enumerate(stored):
                    stored[i] = ledger.update(dataclasses.replace(r, **update(r)))
            return run

        # reconcile's usual write: a status change, no new task id -> one UPDATE statement
        cas = _figure(n, _timed(ledger_cas(lambda r: {"status": Status.SYNCHRONIZING})), _timed(bare_cas(1)))
        # the push path's write: a new task id (the trigger indexes it in the same statement)
        new_task = ledger_cas(lambda r: {"status": Status.PENDING, "task_id": f"rst-{r.event_id}"})
        cas_task = _figure(n, _timed(new_task), _timed(bare_cas(2)))
        ledger.close()
        bare.close()
        same = _same_schema_floors(Path(tmp), records)
    return {"backend": "sqlite", "create_if_absent": create, "compare_and_set": cas,
            "compare_and_set_new_task": cas_task, "same_schema": same}


def _same_schema_floors(tmp: Path, records: list[Record]) -> dict:
    """The ledger against the bare statements it runs, on its own schema (indexes, trigger) with every
    value computed in advance: what the ledger's code adds, apart from what its schema costs."""
    from acrsync.ledger.sqlite import _INSERT, _UPDATE, SqliteLedger, row_values

    n = len(records)
    ledger = SqliteLedger(tmp / "same-ledger.db")
    ledger.init()
    SqliteLedger(tmp / "same-bare.db").init()                # the same tables, indexes and trigger
    bare = sqlite3.connect(str(tmp / "same-bare.db"), isolation_level=None)
    bare.execute("PRAGMA journal_mode = WAL")
    bare.execute("PRAGMA synchronous = NORMAL")
    insert, update = _INSERT, _UPDATE
    created = [dataclasses.replace(r, version=1) for r in records]
    inserts = [row_values(ledger._row(r)) for r in created]
    pending = [dataclasses.replace(r, version=2, status=Status.PENDING, task_id=f"rst-{r.event_id}")
               for r in created]
    updates = [(*row_values(ledger._row(p))[1:], p.key, 1) for p in pending]

    def bare_create() -> None:
        for row in inserts:
            bare.execute(insert, row)

    def bare_update() -> None:
        for row in updates:
            bare.execute(update, row)

    stored: list[Record] = []

    def ledger_create() -> None:
        for r in records:
            stored.append(ledger.create_if_absent(r)[1])

    def ledger_update() -> None:
        for r in stored:
            ledger.update(dataclasses.replace(r, status=Status.PENDING, task_id=f"rst-{r.event_id}"))

    out = {"create_if_absent": _figure(n, _timed(ledger_create), _timed(bare_create)),
           "compare_and_set_new_task": _figure(n, _timed(ledger_update), _timed(bare_update))}
    ledger.close()
    bare.close()
    return out


def tablestore_figures(n: int = 300, cloud=None) -> dict:
    """The same on Tablestore (real OTSClient, localcloud), with HTTP requests per operation."""
    # Through the adapter module: importing it first quiets the SDK's native-codec import warnings.
    from acrsync.cloud import ots
    from acrsync.ledger.tablestore import TablestoreLedger, micros

    owned = cloud is None
    if owned:
        from localcloud.server import LocalCloud

        cloud = LocalCloud({"accounts": [{"id": DEMO_ACCOUNT, "access_keys": [
            {"id": DEMO_KEY_ID, "secret": DEMO_KEY_SECRET}]}]}).start()
    try:
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        ledger = TablestoreLedger.from_keys(cloud.url, OTS_INSTANCE, DEMO_KEY_ID, DEMO_KEY_SECRET,
                                            table_prefix=prefix)
        ledger.init()
        # the bare calls: an OTSClient built as the adapter builds its own, same table layout and columns
        client = ots.build_client(ledger.ots.session, cloud.url, OTS_INSTANCE)
        bare_table = ledger.table("records")
        records = _records(n, "ots")
        bare_rows = [(f"bare/{r.key}", codec.dumps(dataclasses.replace(r, version=1)),
                      micros(r.created_at)) for r in records]

        def bare_create() -> None:
            for key, doc, us in bare_rows:
                columns = [("doc", doc), ("version", 1), ("status", "QUEUED"), ("writer", uuid.uuid4().hex),
                           ("created_us", us)]
                client.put_row(bare_table, ots.Row([("key", key)], columns),
                               ots.Condition(ots.RowExistenceExpectation.EXPECT_NOT_EXIST))

        stored: list[Record] = []

        def ledger_create() -> None:
            for r in records:
                stored.append(ledger.create_if_absent(r)[1])

        cloud.reset_stats()
        bare_create_s = _timed(bare_create)
        cloud.reset_stats()
        ledger_create_s = _timed(ledger_create)
        create_calls = sum(cloud.stats().values()) / n
        create = _figure(n, ledger_create_s, bare_create_s, calls_per_op=round(create_calls, 2),
                         bare_calls_per_op=1.0)

        def bare_cas() -> None:
            for key, doc, us in bare_rows:
                version_is_1 = ots.SingleColumnCondition("version", 1, ots.ComparatorType.EQUAL,
                                                         pass_if_missing=False)
                cond = ots.Condition(ots.RowExistenceExpectation.EXPECT_EXIST, version_is_1)
                columns = [("doc", doc), ("version", 2), ("status", "PENDING"), ("writer", uuid.uuid4().hex),
                           ("created_us", us)]
                client.update_row(bare_table, ots.Row([("key", key)], {"PUT": columns}), cond)

        def ledger_cas() -> None:
            for r in stored:
                ledger.update(dataclasses.replace(r, status=Status.PENDING, task_id=f"rst-{r.event_id}"))

        bare_cas_s = _timed(bare_cas)
        cloud.reset_stats()
        ledger_cas_s = _timed(ledger_cas)
        cas_calls = sum(cloud.stats().values()) / n
        cas = _figure(n, ledger_cas_s, bare_cas_s, calls_per_op=round(cas_calls, 2), bare_calls_per_op=1.0)

        cloud.reset_stats()
        closing = stored[: max(1, n // 10)]
        for r in closing:
            current = ledger.get(r.key)
            ledger.update(dataclasses.replace(current, status=Status.SUCCESS))
        close_calls = (sum(cloud.stats().values()) - len(closing)) / len(closing)   # minus the get()
        ledger.close()
    finally:
        if owned:
            cloud.stop()
    return {"backend": "tablestore", "create_if_absent": create, "compare_and_set": cas,
            "close_record_calls_per_op": round(close_calls, 2)}


def run_all(sqlite_ops: int = 2000, tablestore_ops: int = 300) -> dict:
    return {"sqlite": sqlite_figures(sqlite_ops), "tablestore": tablestore_figures(tablestore_ops)}


if __name__ == "__main__":
    print(json.dumps(run_all(), indent=2))
