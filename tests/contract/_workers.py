"""Process bodies for the multi-process contract tests (importable by name: spawn needs that)."""

from __future__ import annotations

import dataclasses
import time

from acrsync.ledger import VersionConflict
from acrsync.records import Record
from tests.ledger_world import open_from_spec


def wait_ready(results, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while list(results).count("ready") < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {list(results).count('ready')} of {n} workers started")
        time.sleep(0.02)


def race_create(spec: dict, start, results, record_json: str, event_id: str) -> None:
    ledger = open_from_spec(spec)
    record = dataclasses.replace(Record.from_stored(record_json), event_id=event_id)
    results.append("ready")
    start.wait()
    try:
        ok, stored = ledger.create_if_absent(record)
        results.append((ok, stored.event_id))
    except Exception as e:  # reported to the parent, which fails the test with it
        results.append(("error", repr(e)))


def increment_attempts(spec: dict, start, results, key: str, times: int) -> None:
    ledger = open_from_spec(spec)
    results.append("ready")
    start.wait()
    done = conflicts = 0
    try:
        while done < times:
            current = ledger.get(key)
            try:
                ledger.update(dataclasses.replace(current, attempts=current.attempts + 1))
                done += 1
            except VersionConflict:
                conflicts += 1
        results.append(("ok", done, conflicts))
    except Exception as e:
        results.append(("error", repr(e)))



def race_caps(spec: dict, start, results, me: str, slot_cap: int, burst: int, churn_cap: int,
              rounds: int) -> None:
    """Race the other processes on three caps, one after the other (each on its own item):
    take slots without releasing; take tokens from a bucket that never refills; take, check, release."""
    ledger = open_from_spec(spec)
    results.append("ready")
    start.wait()
    try:
        slots = sum(ledger.acquire_slot("race", f"{me}-{i}", cap=slot_cap, ttl=3600.0, now=1000.0)
                    for i in range(3))
        tokens = sum(ledger.take_tokens("bucket", rate=0.0, burst=burst, now=1000.0) == 0.0 for _ in range(3))
        held = over = 0
        for _ in range(rounds):
            if ledger.acquire_slot("churn", me, cap=churn_cap, ttl=3600.0, now=1000.0):
                held += 1
                over += ledger.slots_in_use("churn", now=1000.0) > churn_cap
                ledger.release_slot("churn", me, now=1000.0)
        results.append(("ok", slots, tokens, held, over))
    except Exception as e:
        results.append(("error", repr(e)))
