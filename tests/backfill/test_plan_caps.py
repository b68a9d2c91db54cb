"""Pure parts of the backfill: the per-tag decision, the estimate and the OSS route; the caps' rules."""

from __future__ import annotations

import threading

import pytest

from acrsync.backfill.caps import Caps, Finished, LedgerCapStore, guard_tripped
from acrsync.backfill.plan import OSS_STEPS, RepoPlan, Skip, estimate, oss_route, plan_page
from acrsync.config import BackfillConfig, parse_config
from acrsync.drift import SourceTag, TagDrift, TagState
from acrsync.ledger.sqlite import SqliteLedger
from acrsync.model import RepoInfo, SyncRule

CFG = parse_config({"source": {"account_id": "1", "region": "cn-hangzhou", "instance_id": "cri-src"},
                    "targets": [{"name": "bj", "account_id": "2", "region": "cn-beijing",
                                 "instance_id": "cri-dst"}]})
TARGET = CFG.targets[0]
REPO = RepoInfo(instance_id="cri-src", repo_id="r1", namespace="ns", name="app")


def drift(tag: str, state: TagState, *, pushed_ms: int = 1000, size: int = 10, overwrites: bool = False):
    return TagDrift(tag, state, SourceTag(tag, "d" * 64, size, pushed_ms), None, overwrites)


def plan(drifts, listed=None, **kw):
    rp = RepoPlan("ns", "app", "r1")
    ctx = {"rules": [], "since_ms": None, "blocked": False, **kw}
    todo = plan_page(rp, TARGET, REPO, len(drifts) if listed is None else listed, drifts, **ctx)
    return rp, todo


def test_only_missing_or_differing_tags_are_planned_with_bytes():
    rp, todo = plan([drift("a", TagState.MISSING, size=5), drift("b", TagState.OK),
                     drift("c", TagState.DIGEST_DIFFERS, overwrites=True, size=7),
                     drift("d", TagState.DIGEST_DIFFERS), drift("e", TagState.IN_FLIGHT)], listed=6)
    assert [t.tag for t in todo] == ["a", "c"] and rp.bytes == 12
    assert rp.on_target == 1 and rp.in_scope == 5
    assert rp.skipped == {Skip.EXCLUDED: 1, Skip.DIFFERS: 1, Skip.KNOWN: 1}


def test_since_blocked_and_rule_made_before_the_push():
    rule = SyncRule(rule_id="r", scope="NAMESPACE", local_instance_id="cri-src", local_namespace="ns",
                    target_instance_id="cri-dst", target_region="cn-beijing", create_time_ms=500)
    rp, todo = plan([drift("old", TagState.MISSING, pushed_ms=100), drift("new", TagState.MISSING,
                                                                          pushed_ms=2000)],
                    rules=[rule], since_ms=50)
    # the rule existed when "new" was pushed (its task copies it); "old" predates the rule: backfill it
    assert [t.tag for t in todo] == ["old"] and rp.skipped == {Skip.COVERED: 1}
    rp, todo = plan([drift("x", TagState.MISSING, pushed_ms=100)], since_ms=500)
    assert todo == [] and rp.skipped == {Skip.BEFORE_SINCE: 1}
    rp, todo = plan([drift("x", TagState.MISSING)], blocked=True)
    assert todo == [] and rp.skipped == {Skip.BLOCKED: 1}


def test_estimate_is_bound_by_the_slower_cap_and_oss_route_over_thresholds():
    cfg = BackfillConfig(qps=10, max_in_flight=20, task_seconds=60)
    est = estimate(tasks=1000, tags_listed=1000, repos=10, config=cfg)
    assert est.calls == 1000 + 20 and est.bound_by == "max_in_flight" and est.seconds == 1000 * 60 / 20
    assert oss_route(10 << 30, est, cfg) is None
    route = oss_route(2 << 40, est, cfg)
    assert route is not None and route.bytes == 2 << 40 and "TiB" in route.reasons[0]
    assert all(url is None or url.startswith("https://www.alibabacloud.com/help/") for _, url in OSS_STEPS)
    many = estimate(tasks=150_000, tags_listed=150_000, repos=1, config=cfg)
    assert "150000 sync tasks" in oss_route(0, many, cfg).reasons[0]


@pytest.mark.parametrize("done, failed, tripped", [(40, 59, False), (50, 50, True), (60, 40, False),
                                                   (0, 100, True)])
def test_guard_rail_half_of_at_least_100_finished(done, failed, tripped):
    assert (guard_tripped(Finished(done, failed), BackfillConfig()) is not None) is tripped


def test_guard_rail_max_failures_override():
    assert guard_tripped(Finished(80, 20), BackfillConfig(), max_failures=0.2) is not None


def test_in_flight_slots_never_exceed_the_cap_across_threads(tmp_path):
    ledger = SqliteLedger(tmp_path / "l.db")
    ledger.init()
    cfg = BackfillConfig(max_in_flight=3, poll_seconds=0.01, qps=1000)
    held, peak, lock = set(), [0], threading.Lock()

    def worker(i: int) -> None:
        caps = Caps(LedgerCapStore(ledger), ledger, "bj", cfg)
        for j in range(10):
            key = f"k{i}-{j}"
            assert caps.acquire(key)
            with lock:
                held.add(key)
                peak[0] = max(peak[0], len(held))
            with lock:
                held.discard(key)
            caps.release(key)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert peak[0] <= 3
    assert Caps(LedgerCapStore(ledger), ledger, "bj", cfg).in_flight() == 0


def test_qps_bucket_hands_out_no_more_than_the_rate(tmp_path):
    ledger = SqliteLedger(tmp_path / "l.db")
    ledger.init()
    now = [1000.0]
    caps = Caps(LedgerCapStore(ledger), ledger, "bj", BackfillConfig(qps=20), now=lambda: now[0],
                sleep=lambda s: now.__setitem__(0, now[0] + s))
    for _ in range(120):
        caps.take(1)
    # 20 of burst, then 20 per second: 120 calls need at least 5 seconds
    assert now[0] - 1000.0 >= 5.0 - 1e-6
