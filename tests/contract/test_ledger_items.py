"""The ledger's items and what the base class builds on them, on every backend: compare-and-set items,
listings, reports, checkpoints, global caps (racing processes never exceed a cap), shared values."""

from __future__ import annotations

import dataclasses
import math

import pytest

from acrsync.ledger import Item, VersionConflict
from acrsync.records import Checkpoint, Report
from tests.contract import _workers
from tests.contract.test_ledger_contract import _run


def test_put_item_is_compare_and_set_from_absent(ledger):
    assert ledger.get_item("k", "a") is None
    first = ledger.put_item(Item("k", "a", '{"n": 1}'))
    assert first.version == 1
    assert ledger.get_item("k", "a") == first
    with pytest.raises(VersionConflict):
        ledger.put_item(Item("k", "a", '{"n": 2}'))            # version 0: only if absent
    second = ledger.put_item(Item("k", "a", '{"n": 2}', version=1))
    assert second.version == 2
    with pytest.raises(VersionConflict):
        ledger.put_item(Item("k", "a", '{"n": 3}', version=1))  # stale
    assert ledger.get_item("k", "a").doc == '{"n": 2}'


def test_swap_item_is_compare_and_set_on_content(ledger):
    assert ledger.swap_item("cap", "qps", None, '{"tokens": 5}') is True
    assert ledger.swap_item("cap", "qps", None, '{"tokens": 9}') is False          # not absent any more
    assert ledger.swap_item("cap", "qps", '{"tokens": 4}', '{"tokens": 3}') is False
    assert ledger.swap_item("cap", "qps", '{"tokens": 5}', '{"tokens": 4}') is True
    assert ledger.get_item("cap", "qps").doc == '{"tokens": 4}'


def test_write_item_overwrites_and_delete_removes(ledger):
    ledger.write_item("w", "x", "one", expires_at=5.0)
    ledger.write_item("w", "x", "two")
    got = ledger.get_item("w", "x")
    assert got.doc == "two" and got.expires_at is None
    ledger.delete_item("w", "x")
    ledger.delete_item("w", "never")
    assert ledger.get_item("w", "x") is None


def test_list_items_by_prefix_in_key_order_or_reversed(ledger):
    for key in ["b/2", "a/1", "b/1", "b", "c", "b/3"]:
        ledger.write_item("l", key, key)
    ledger.write_item("other", "b/9", "x")
    assert [i.key for i in ledger.list_items("l")] == ["a/1", "b", "b/1", "b/2", "b/3", "c"]
    assert [i.key for i in ledger.list_items("l", prefix="b")] == ["b", "b/1", "b/2", "b/3"]
    newest = ledger.list_items("l", prefix="b", newest_first=True)
    assert [i.key for i in newest] == ["b/3", "b/2", "b/1", "b"]
    assert [i.key for i in ledger.list_items("l", prefix="b/", newest_first=True, limit=2)] == ["b/3", "b/2"]
    assert [i.key for i in ledger.list_items("l", newest_first=True, limit=1)] == ["c"]
    assert ledger.list_items("l", prefix="zz") == []


def test_latest_report_is_the_greatest_id_of_its_kind(ledger):
    assert ledger.latest_report("compliance") is None
    for rid in ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z"]:
        ledger.put_report(Report(kind="compliance", id=rid, created_at=1.0))
    ledger.put_report(Report(kind="compliance-x", id="2027-01-01T00:00:00Z", created_at=1.0))
    assert ledger.latest_report("compliance").id == "2026-01-03T00:00:00Z"


def test_progress_checkpoints_are_compare_and_set_and_listed_by_name(ledger):
    assert ledger.get_progress("backfill", "bj/team/app") is None
    cp = ledger.save_progress(Checkpoint(scope="backfill", name="bj/team/app", cursor="page-2",
                                         updated_at=1.0, data={"created": 3}))
    assert cp.version == 1
    assert ledger.get_progress("backfill", "bj/team/app") == cp
    moved = ledger.save_progress(dataclasses.replace(cp, cursor=None, done=True, updated_at=2.0))
    assert moved.version == 2 and ledger.get_progress("backfill", "bj/team/app").done is True
    with pytest.raises(VersionConflict):
        ledger.save_progress(dataclasses.replace(cp, cursor="page-3"))    # another run moved it first
    with pytest.raises(VersionConflict):
        ledger.save_progress(Checkpoint(scope="backfill", name="bj/team/app", updated_at=3.0))
    ledger.save_progress(Checkpoint(scope="backfill", name="bj/team/web", updated_at=1.0))
    ledger.save_progress(Checkpoint(scope="backfill", name="sh/team/app", updated_at=1.0))
    ledger.save_progress(Checkpoint(scope="other", name="bj/team/zzz", updated_at=1.0))
    assert [c.name for c in ledger.list_progress("backfill", "bj/")] == ["bj/team/app", "bj/team/web"]
    assert len(ledger.list_progress("backfill")) == 3


def test_slots_cap_holders_renew_release_and_expire(ledger):
    assert ledger.acquire_slot("t", "a", cap=2, ttl=10.0, now=100.0)
    assert ledger.acquire_slot("t", "b", cap=2, ttl=10.0, now=100.0)
    assert not ledger.acquire_slot("t", "c", cap=2, ttl=10.0, now=100.0)
    assert ledger.acquire_slot("t", "a", cap=2, ttl=10.0, now=105.0)        # renews a's lease to 115
    assert ledger.slots_in_use("t", now=105.0) == 2
    ledger.release_slot("t", "b", now=106.0)
    ledger.release_slot("t", "nobody", now=106.0)
    assert ledger.acquire_slot("t", "c", cap=2, ttl=10.0, now=106.0)
    assert ledger.slots_in_use("t", now=112.0) == 2                        # a until 115, c until 116
    assert ledger.slots_in_use("t", now=115.5) == 1                        # a's lease ended: a crash frees it
    assert ledger.acquire_slot("t", "d", cap=2, ttl=10.0, now=115.5)
    assert ledger.slots_in_use("other", now=0.0) == 0


def test_token_bucket_refills_at_its_rate_up_to_its_burst(ledger):
    kw = {"rate": 2.0, "burst": 3.0}
    assert [ledger.take_tokens("qps", now=10.0, **kw) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = ledger.take_tokens("qps", now=10.0, **kw)
    assert wait == pytest.approx(0.5)
    assert ledger.take_tokens("qps", now=10.5, **kw) == 0.0
    assert ledger.take_tokens("qps", now=100.0, n=3, **kw) == 0.0           # refilled to the burst, not more
    assert ledger.take_tokens("qps", now=100.0, **kw) > 0
    assert math.isinf(ledger.take_tokens("empty", rate=0.0, burst=1.0, now=1.0, n=1)
                      + ledger.take_tokens("empty", rate=0.0, burst=1.0, now=1.0, n=1))
    with pytest.raises(ValueError, match="at most"):
        ledger.take_tokens("qps", now=100.0, n=4, **kw)


def test_shared_values_expire(ledger):
    assert ledger.shared("verdict/bj", now=0.0) is None
    ledger.share("verdict/bj", '{"clean": true}', ttl=60.0, now=1000.0)
    assert ledger.shared("verdict/bj", now=1059.0) == '{"clean": true}'
    assert ledger.shared("verdict/bj", now=1060.0) is None
    ledger.share("verdict/bj", '{"clean": false}', ttl=60.0, now=1070.0)
    assert ledger.shared("verdict/bj", now=1071.0) == '{"clean": false}'


# --- several processes ----------------------------------------------------------------------------

@pytest.mark.slow
def test_racing_processes_never_exceed_a_cap(ledger, ledger_spec):
    """8 processes race on slots (cap 5, 3 tries each), a bucket of 7 tokens (3 tries each), and slots they
    take and release (cap 3): never more winners than the cap, on every backend."""
    rounds = 15 if ledger_spec["backend"] == "sqlite" else 6
    results = _run(_workers.race_caps, ledger_spec, lambda i: (f"p{i}", 5, 7, 3, rounds))
    assert not [r for r in results if r[0] == "error"], results
    assert sum(r[1] for r in results) == 5
    assert ledger.slots_in_use("race", now=1000.0) == 5
    assert sum(r[2] for r in results) == 7
    assert sum(r[4] for r in results) == 0, "a holder saw more than cap slots held"
    assert sum(r[3] for r in results) > 0
    assert ledger.slots_in_use("churn", now=1000.0) == 0


def test_shared_values_are_read_together_in_the_order_asked(ledger):
    ledger.share("rules/cri-s", "[]", ttl=60.0, now=1000.0)
    ledger.share("grants/bj/1", '{"clean": true}', ttl=10.0, now=1000.0)
    ledger.share("grants/sh/2", '{"clean": false}', ttl=60.0, now=1000.0)
    got = ledger.shared_many(["grants/sh/2", "missing/one", "grants/bj/1", "rules/cri-s"], now=1020.0)
    assert got == {"grants/sh/2": '{"clean": false}', "rules/cri-s": "[]"}    # bj expired, one missing
    assert ledger.shared_many([], now=1020.0) == {}
    many = [f"grants/t{i}/x" for i in range(150)]                             # more than one batch read
    for i, name in enumerate(many):
        ledger.share(name, str(i), ttl=60.0, now=1000.0)
    assert ledger.shared_many(many, now=1001.0) == {n: str(i) for i, n in enumerate(many)}
