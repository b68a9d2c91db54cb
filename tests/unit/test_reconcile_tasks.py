"""Reconcile's task cache: bounded whatever the number of tasks read, and it keeps what decisions need."""

from acrsync.model import ImageSide, SyncTask
from acrsync.reconcile import TaskCache


def task(i: int, tag: str = "v1", rule_id: str | None = None) -> SyncTask:
    return SyncTask(task_id=f"rst-{i}", status="ERROR", issue="NETWORK_ERROR", rule_id=rule_id,
                    batch_id=f"b-{i}",
                    created_ms=1_000 + i, trigger="INITIATIVE", progress=1,
                    source=ImageSide(instance_id="cri-src", region="cn-hangzhou", namespace="ns",
                                     repo="app", tag=tag),
                    target=ImageSide(instance_id="cri-tgt", region="cn-beijing", namespace="ns",
                                     repo="app", tag=tag))


def test_the_cache_is_bounded_and_drops_the_oldest_read():
    cache = TaskCache(limit=3)
    for i in range(10):
        cache.add(task(i))
    assert [i for i in range(10) if f"rst-{i}" in cache] == [7, 8, 9]


def test_a_cached_task_keeps_what_decisions_and_orphan_matching_read():
    cache = TaskCache()
    cache.add(task(1))
    got = cache.get("rst-1")
    assert (got.status, got.issue, got.created_ms, got.batch_id, got.rule_id) == ("ERROR", "NETWORK_ERROR",
                                                                                  1001,
                                                                                  "b-1", None)
    assert (got.source.namespace, got.source.repo, got.source.tag, got.target.instance_id) == ("ns", "app",
                                                                                               "v1",
                                                                                               "cri-tgt")
    assert cache.get("rst-2") is None


def test_orphan_candidates_are_manual_tasks_of_the_tag_oldest_first():
    cache = TaskCache()
    for t in (task(3), task(1), task(2, rule_id="crsr-1"), task(4, tag="v2")):
        cache.add(t)
    assert [t.task_id for t in cache.manual_for("ns", "app", "v1")] == ["rst-1", "rst-3"]
