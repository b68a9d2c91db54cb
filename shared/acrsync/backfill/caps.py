"""The two caps that keep a backfill polite, held in the ledger's store so that every thread, process
and FC invocation of a run shares them:

- a QPS token bucket on OpenAPI calls (``backfill.qps``);
- an in-flight cap on open backfill tasks per target (``backfill.max_in_flight``), as the set of the
  record keys holding a slot. A slot is freed when its record is seen finished in the ledger, so a crashed
  holder frees its slot too (its record finishes, or is found without a task after the claim period).

The in-flight row also counts finished tasks (done, failed) for the guard rail. Both rows are ledger
items changed only by compare-and-set (``Ledger.swap_item``), never by a blind write.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import field
from typing import Any, Protocol

from acrsync.config import BackfillConfig
from acrsync.ledger import Ledger, Record, Status
from acrsync.value import Value, dataclass

CLAIM_SECONDS = 120.0      # a record still without a task this long after its last write holds no slot
FINISHED_OK = frozenset({Status.SUCCESS, Status.COVERED})
FINISHED_FAILED = frozenset({Status.ERROR, Status.CANCELED})


CAPS_KIND = "backfill-caps"


class CapStore(Protocol):
    """Named JSON rows with compare-and-set: the only storage the caps need."""

    def read(self, name: str) -> str | None: ...

    def write_if(self, name: str, expected: str | None, value: str) -> bool:
        """Store ``value`` if the row still holds ``expected`` (None: absent); False if it changed."""


class LedgerCapStore:
    """The rows as ledger items, changed with ``Ledger.swap_item`` (compare-and-set on content, exact across
    processes on both backends)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def read(self, name: str) -> str | None:
        item = self.ledger.get_item(CAPS_KIND, name)
        return item.doc if item is not None else None

    def write_if(self, name: str, expected: str | None, value: str) -> bool:
        return self.ledger.swap_item(CAPS_KIND, name, expected, value)


def cap_store_for(ledger: Ledger) -> CapStore:
    return LedgerCapStore(ledger)


def update(store: CapStore, name: str,
           change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> tuple[dict[str, Any], bool]:
    """Read-modify-write with compare-and-set until it sticks. ``change`` returns the new row, or None
    to leave it alone. Returns (row as stored, changed)."""
    while True:
        raw = store.read(name)
        row = json.loads(raw) if raw else {}
        new = change(dict(row))
        if new is None:
            return row, False
        if store.write_if(name, raw, json.dumps(new, sort_keys=True)):
            return new, True


@dataclass
class Finished(Value):
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed


@dataclass
class Caps(Value):
    """The caps of one target. ``refresh`` asks ACR about in-flight records the ledger still shows open
    (the run's own status read, when reconcile has not reported them yet)."""

    store: CapStore
    ledger: Ledger
    target: str
    config: BackfillConfig
    refresh: Callable[[list[Record]], None] = lambda records: None
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    stop: threading.Event = field(default_factory=threading.Event)
    _local_tokens: int = 0
    _local_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def qps_row(self) -> str:
        return f"backfill/{self.target}/qps"

    @property
    def slots_row(self) -> str:
        return f"backfill/{self.target}/inflight"

    # ---- QPS -------------------------------------------------------------------------------------
    def take(self, n: int = 1) -> None:
        """Block until ``n`` calls may be made under the shared QPS cap (burst: one second's worth).

        Tokens are taken from the shared row in small batches (1/20 s worth) and spent locally, so a busy
        run writes the row a few times per second, not once per call; every token still comes out of the
        shared bucket, so the cap holds across processes."""
        with self._local_lock:
            if self._local_tokens >= n:
                self._local_tokens -= n
                return
        batch = max(n, int(self.config.qps / 20))
        self._take_shared(batch)
        with self._local_lock:
            self._local_tokens += batch - n

    def _take_shared(self, n: int) -> None:
        rate = self.config.qps
        burst = max(float(n), rate)
        while not self.stop.is_set():
            wait = 0.0

            def spend(row: dict[str, Any]) -> dict[str, Any] | None:
                nonlocal wait
                now = self.now()
                tokens = min(burst, row.get("tokens", burst) + max(0.0, now - row.get("at", now)) * rate)
                if tokens >= n - 1e-6:
                    return {"tokens": max(0.0, tokens - n), "at": now}
                wait = max((n - tokens) / rate, 0.001)
                return None

            _, took = update(self.store, self.qps_row, spend)
            if took:
                return
            self.sleep(min(wait, 1.0))

    # ---- in flight -------------------------------------------------------------------------------
    def acquire(self, key: str) -> bool:
        """Hold a slot for ``key``; waits (freeing finished slots) while the cap is reached.
        False when the run was asked to stop first."""
        cap = self.config.max_in_flight
        last_refresh = 0.0
        while not self.stop.is_set():
            def add(row: dict[str, Any]) -> dict[str, Any] | None:
                keys = row.setdefault("keys", {})
                if key in keys or len(keys) >= cap:
                    return None
                keys[key] = self.now()
                return row

            row, added = update(self.store, self.slots_row, add)
            if added or key in row.get("keys", {}):
                return True
            if self.reap():
                continue
            now = self.now()
            if now - last_refresh >= self.config.poll_seconds:
                last_refresh = now
                self._refresh(list(row.get("keys", {})))
                if self.reap():
                    continue
            self.sleep(min(self.config.poll_seconds, 0.2))
        return False

    def release(self, key: str) -> None:
        """Give a slot back without counting a finished task (nothing was created for it)."""
        def drop(row: dict[str, Any]) -> dict[str, Any] | None:
            if key not in row.get("keys", {}):
                return None
            del row["keys"][key]
            return row

        update(self.store, self.slots_row, drop)

    def reap(self) -> int:
        """Free the slots whose records are finished; count them. Returns how many were freed."""
        raw = self.store.read(self.slots_row)
        keys = dict((json.loads(raw) if raw else {}).get("keys", {}))
        verdicts: dict[str, str] = {}
        now = self.now()
        for key, since in keys.items():
            rec = self.ledger.get(key)
            verdicts[key] = _verdict(rec, now, since)
        gone = {k: v for k, v in verdicts.items() if v != "open"}
        if not gone:
            return 0

        def free(row: dict[str, Any]) -> dict[str, Any] | None:
            held = row.get("keys", {})
            freed = [k for k in gone if k in held]
            if not freed:
                return None
            for k in freed:
                del held[k]
                if gone[k] in ("done", "failed"):
                    row[gone[k]] = row.get(gone[k], 0) + 1
            return row

        _, changed = update(self.store, self.slots_row, free)
        return len(gone) if changed else 0

    def _refresh(self, keys: list[str]) -> None:
        records = [r for r in (self.ledger.get(k) for k in keys) if r is not None and r.task_id
                   and r.status in (Status.PENDING, Status.SYNCHRONIZING)]
        if records:
            self.refresh(records)

    def in_flight(self) -> int:
        raw = self.store.read(self.slots_row)
        return len((json.loads(raw) if raw else {}).get("keys", {}))

    def finished(self) -> Finished:
        raw = self.store.read(self.slots_row)
        row = json.loads(raw) if raw else {}
        return Finished(done=row.get("done", 0), failed=row.get("failed", 0))

    def reset_counts(self) -> None:
        """A new run starts its guard rail from zero (slots still held stay held)."""
        def zero(row: dict[str, Any]) -> dict[str, Any]:
            row["done"], row["failed"] = 0, 0
            return row

        update(self.store, self.slots_row, zero)


def guard_tripped(
    finished: Finished, config: BackfillConfig, max_failures: float | None = None
) -> str | None:
    """The guard rail: at least ``max_failures`` of at least ``max_failures_min_finished`` finished tasks
    failed (the rule AWS ECR's replication uses for its backfill). Returns why, or None."""
    ratio = config.max_failures if max_failures is None else max_failures
    if finished.total < config.max_failures_min_finished:
        return None
    if finished.failed / finished.total >= ratio:
        return (f"{finished.failed} of {finished.total} finished tasks failed (>= {ratio:.0%} of at least "
                f"{config.max_failures_min_finished}); fix the cause (acrsync ledger list --status ERROR), "
                "then run again with --resume, or change the limit with --max-failures")
    return None


def _verdict(rec: Record | None, now: float, since: float) -> str:
    if rec is None:
        return "gone" if now - since >= CLAIM_SECONDS else "open"
    if rec.status in FINISHED_OK:
        return "done"
    if rec.status in FINISHED_FAILED or rec.gave_up:
        return "failed"
    if rec.task_id is None and now - since >= CLAIM_SECONDS:
        return "gone"     # the holder crashed before creating a task; reconcile or a resume finishes it
    if rec.status is Status.BLOCKED:
        return "gone"
    return "open"
