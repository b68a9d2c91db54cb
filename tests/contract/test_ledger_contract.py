"""The ledger contract (acrsync.ledger.base.Ledger), run unchanged on every backend.

The backend comes from the ``ledger`` fixture (tests/conftest.py): SQLite in a temp dir, Tablestore through
the real OTSClient against localcloud. Multi-process tests open their own ledgers from ``ledger_spec``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing

import pytest

from acrsync import codec
from acrsync.grants.findings import Finding, Fix
from acrsync.ledger import VersionConflict
from acrsync.records import Attempt, ErrorInfo, ImageRef, Origin, Record, RejectedEvent, Report, Status
from tests.contract import _workers

INSTANCE = "cri-src0001"


def rec(repo: str = "app", tag: str = "v1", *, ns: str = "team", digest: str = "sha256:" + "a" * 64,
        target: str = "beijing", created_at: float = 1000.0, instance: str = INSTANCE, **fields) -> Record:
    image = ImageRef(instance_id=instance, namespace=ns, repo=repo, tag=tag, digest=digest)
    return Record(image=image, target=target, origin=fields.pop("origin", Origin.PUSH),
                  created_at=created_at, updated_at=created_at, **fields)


def created(ledger, record: Record) -> Record:
    ok, stored = ledger.create_if_absent(record)
    assert ok, f"{record.key} already existed"
    return stored


# --- create-if-absent / compare-and-set -------------------------------------------------------------

def test_create_if_absent_creates_once_and_returns_the_stored_record(ledger):
    first = rec(event_id="ev-1")
    ok, stored = ledger.create_if_absent(first)
    assert ok is True
    assert stored.version == 1
    assert dataclasses.replace(stored, version=0) == first

    again = rec(event_id="ev-2", origin=Origin.BACKFILL, created_at=2000.0)
    ok2, existing = ledger.create_if_absent(again)
    assert ok2 is False
    assert existing == stored
    assert ledger.get(first.key) == stored


def test_update_bumps_the_version_and_keeps_every_field(ledger):
    stored = created(ledger, rec())
    changed = dataclasses.replace(stored, **{
        "status": Status.ERROR, "task_id": "rst-1", "attempts": 1, "task_issue": "NETWORK_ERROR",
        "history": [Attempt(task_id="rst-1", status="ERROR", created_at=1001.0, issue="NETWORK_ERROR")],
        "last_error": ErrorInfo(code="SYNC_FAILED", message="network", request_id="req-1"),
        "finding": Finding(code="ROLE_MISSING", severity="error", target="beijing", message="no role",
                           fix=Fix(summary="create the role")), "updated_at": 1002.5})
    written = ledger.update(changed)
    assert written.version == 2
    assert written == dataclasses.replace(changed, version=2)
    assert ledger.get(stored.key) == written


def test_update_with_a_stale_version_conflicts_and_changes_nothing(ledger):
    stored = created(ledger, rec())
    v2 = ledger.update(dataclasses.replace(stored, status=Status.PENDING, task_id="rst-1"))
    with pytest.raises(VersionConflict):
        ledger.update(dataclasses.replace(stored, status=Status.SUCCESS))
    assert ledger.get(stored.key) == v2


def test_update_of_a_missing_record_conflicts(ledger):
    with pytest.raises(VersionConflict):
        ledger.update(dataclasses.replace(rec(), version=1))
    assert ledger.get(rec().key) is None


def test_get_of_an_unknown_key_is_none(ledger):
    assert ledger.get("cri-nope/ns/repo:tag@-#target") is None


# --- get_by_task ----------------------------------------------------------------------------------

def test_get_by_task_finds_the_current_and_an_earlier_task(ledger):
    stored = created(ledger, rec())
    first = ledger.update(dataclasses.replace(stored, **{
        "status": Status.ERROR, "task_id": "rst-first", "attempts": 1,
        "history": [Attempt(task_id="rst-first", status="ERROR", created_at=1001.0)]}))
    retried = ledger.update(dataclasses.replace(first, **{
        "status": Status.PENDING, "task_id": "rst-second", "attempts": 2,
        "history": [*first.history, Attempt(task_id="rst-second", status="PENDING", created_at=1100.0)]}))
    assert ledger.get_by_task("rst-second") == retried
    assert ledger.get_by_task("rst-first") == retried
    assert ledger.get_by_task("rst-unknown") is None
    other = created(ledger, rec(tag="v2"))
    assert ledger.get_by_task("rst-first").key != other.key


def test_get_by_task_ignores_a_task_id_whose_update_lost(ledger):
    stored = created(ledger, rec())
    ledger.update(dataclasses.replace(stored, task_id="rst-winner", status=Status.PENDING))
    with pytest.raises(VersionConflict):
        ledger.update(dataclasses.replace(stored, task_id="rst-loser", status=Status.PENDING))
    assert ledger.get_by_task("rst-loser") is None
    assert ledger.get_by_task("rst-winner").task_id == "rst-winner"


# --- open_records ---------------------------------------------------------------------------------

def test_open_records_pages_oldest_first_and_skips_closed_records(ledger):
    times = [1005.0, 1001.0, 1007.0, 1003.0, 1002.0, 1006.0, 1004.0, 1000.5]
    for i, t in enumerate(times):
        created(ledger, rec(tag=f"v{i}", created_at=t))
    done = created(ledger, rec(tag="done", created_at=999.0, status=Status.SUCCESS))
    given_up = created(ledger, rec(tag="gaveup", created_at=999.5, status=Status.ERROR, gave_up=True))
    covered = created(ledger, rec(tag="covered", created_at=1004.5, status=Status.COVERED))
    closing = created(ledger, rec(tag="closing", created_at=1000.0))
    ledger.update(dataclasses.replace(closing, status=Status.SUCCESS))

    seen: list[Record] = []
    cursor = None
    pages = 0
    while True:
        page = ledger.open_records(limit=3, cursor=cursor)
        pages += 1
        assert len(page.records) <= 3
        seen.extend(page.records)
        if page.cursor is None:
            break
        cursor = page.cursor
        assert pages < 10, "open_records never returned a final page"
    assert pages == 3   # 8 open records in pages of 3
    assert [r.created_at for r in seen] == sorted(times)
    keys = {r.key for r in seen}
    assert not keys & {done.key, given_up.key, closing.key, covered.key}
    assert all(r.is_open for r in seen)


def test_open_records_of_an_empty_ledger_is_one_empty_page(ledger):
    page = ledger.open_records()
    assert page.records == [] and page.cursor is None


def test_a_reopened_record_is_open_again(ledger):
    stored = created(ledger, rec())
    closed = ledger.update(dataclasses.replace(stored, status=Status.SUCCESS))
    assert ledger.open_records().records == []
    reopened = ledger.update(dataclasses.replace(closed, status=Status.QUEUED))
    assert ledger.open_records().records == [reopened]


# --- records_for ----------------------------------------------------------------------------------

def test_records_for_a_repo_and_a_tag_match_whole_names_only(ledger):
    wanted = [
        created(ledger, rec("app", "v1", target="beijing")),
        created(ledger, rec("app", "v1", target="shanghai")),
        created(ledger, rec("app", "v1", digest="sha256:" + "b" * 64)),
        created(ledger, rec("app", "v10")),
        created(ledger, rec("app", "latest", digest=None)),
    ]
    created(ledger, rec("app2", "v1"))
    created(ledger, rec("ap", "v1"))
    created(ledger, rec("app", "v1", ns="team2"))
    created(ledger, rec("app", "v1", instance="cri-other01"))

    repo = ledger.records_for(INSTANCE, "team", "app")
    assert sorted(r.key for r in repo) == sorted(r.key for r in wanted)
    tag = ledger.records_for(INSTANCE, "team", "app", "v1")
    assert sorted(r.key for r in tag) == sorted(r.key for r in wanted[:3])
    assert ledger.records_for(INSTANCE, "team", "app", "v2") == []
    assert ledger.records_for(INSTANCE, "team", "nothing") == []


# --- counts, all_records --------------------------------------------------------------------------

def test_counts_by_status_counts_every_record(ledger):
    assert ledger.counts_by_status() == {}
    statuses = [Status.QUEUED, Status.QUEUED, Status.SUCCESS, Status.ERROR, Status.BLOCKED]
    for i, s in enumerate(statuses):
        created(ledger, rec(tag=f"v{i}", status=s))
    stored = ledger.get(rec(tag="v0").key)
    ledger.update(dataclasses.replace(stored, status=Status.SUCCESS))
    assert ledger.counts_by_status() == {"QUEUED": 1, "SUCCESS": 2, "ERROR": 1, "BLOCKED": 1}


def test_all_records_is_in_key_order(ledger):
    made = [created(ledger, rec(repo, tag)) for repo, tag in [("b", "1"), ("a", "2"), ("a", "1"), ("c", "0")]]
    assert [r.key for r in ledger.all_records()] == sorted(r.key for r in made)


# --- rejected events, reports, checkpoints --------------------------------------------------------

def test_rejected_events_are_listed_newest_first(ledger):
    for i, t in enumerate([30.0, 10.0, 20.0]):
        ledger.put_rejected(RejectedEvent(id=f"ev-{i}", received_at=t, source="webhook",
                                          reason="no digest", payload='{"x": 1}', request_id=f"r{i}"))
    got = ledger.list_rejected()
    assert [e.received_at for e in got] == [30.0, 20.0, 10.0]
    assert got[0] == RejectedEvent(id="ev-0", received_at=30.0, source="webhook", reason="no digest",
                                   payload='{"x": 1}', request_id="r0")
    assert [e.id for e in ledger.list_rejected(limit=2)] == ["ev-0", "ev-2"]


def test_reports_are_stored_by_kind_and_listed_newest_first(ledger):
    for rid in ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z"]:
        ledger.put_report(Report(kind="compliance", id=rid, created_at=1.0,
                                 summary={"findings": 2}, body={"items": [rid]}))
    ledger.put_report(Report(kind="reconcile", id="2026-01-09T00:00:00Z", created_at=2.0))
    got = ledger.get_report("compliance", "2026-01-02T00:00:00Z")
    assert got == Report(kind="compliance", id="2026-01-02T00:00:00Z", created_at=1.0,
                         summary={"findings": 2}, body={"items": ["2026-01-02T00:00:00Z"]})
    assert ledger.get_report("compliance", "2026-01-09T00:00:00Z") is None
    assert [r.id for r in ledger.list_reports("compliance")] == [
        "2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"]
    assert [r.id for r in ledger.list_reports("compliance", limit=1)] == ["2026-01-03T00:00:00Z"]
    assert [r.kind for r in ledger.list_reports("reconcile")] == ["reconcile"]
    ledger.put_report(Report(kind="reconcile", id="2026-01-09T00:00:00Z", created_at=3.0, summary={"n": 1}))
    assert ledger.get_report("reconcile", "2026-01-09T00:00:00Z").summary == {"n": 1}


def test_checkpoints_set_overwrite_and_clear(ledger):
    assert ledger.get_checkpoint("backfill") is None
    ledger.set_checkpoint("backfill", "team/app")
    ledger.set_checkpoint("backfill", "team/zzz")
    ledger.set_checkpoint("reconcile", "page-3")
    assert ledger.get_checkpoint("backfill") == "team/zzz"
    ledger.set_checkpoint("backfill", None)
    ledger.set_checkpoint("never-set", None)
    assert ledger.get_checkpoint("backfill") is None
    assert ledger.get_checkpoint("reconcile") == "page-3"


def test_init_is_idempotent_and_keeps_data(ledger):
    stored = created(ledger, rec())
    ledger.init()
    ledger.init()
    assert ledger.get(stored.key) == stored


# --- several processes ----------------------------------------------------------------------------

PROCESSES = 8


def _run(target, spec, args_of) -> list:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    with ctx.Manager() as manager:
        results = manager.list()
        procs = [ctx.Process(target=target, args=(spec, start, results, *args_of(i)))
                 for i in range(PROCESSES)]
        for p in procs:
            p.start()
        _workers.wait_ready(results, PROCESSES)
        start.set()
        for p in procs:
            p.join(timeout=120)
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
        return [r for r in results if r != "ready"]


@pytest.mark.slow
def test_concurrent_create_if_absent_has_exactly_one_winner(ledger, ledger_spec):
    record = rec(tag="race")
    results = _run(_workers.race_create, ledger_spec, lambda i: (codec.dumps(record), f"ev-{i}"))
    assert len(results) == PROCESSES
    assert not [r for r in results if r[0] == "error"], results
    winners = [r for r in results if r[0] is True]
    assert len(winners) == 1
    stored = ledger.get(record.key)
    assert stored.version == 1 and stored.event_id == winners[0][1]
    assert all(r[1] == stored.event_id for r in results)


@pytest.mark.slow
def test_concurrent_compare_and_set_loses_no_update(ledger, ledger_spec):
    stored = created(ledger, rec(tag="counter"))
    # enough that the processes overlap: SQLite finishes an update in ~0.1 ms, Tablestore in ~2 ms
    per_process = 40 if ledger_spec["backend"] == "sqlite" else 12
    results = _run(_workers.increment_attempts, ledger_spec, lambda i: (stored.key, per_process))
    assert not [r for r in results if r[0] == "error"], results
    successes = sum(r[1] for r in results)
    conflicts = sum(r[2] for r in results)
    final = ledger.get(stored.key)
    assert successes == PROCESSES * per_process
    assert final.attempts == successes
    assert final.version == 1 + successes
    assert conflicts > 0, "the processes never raced; the test proves nothing"
