"""The ledger's key design, without I/O: prefixes, time keys, index rows, cursors, endpoints."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acrsync.ledger.base import Indexed, decode_cursor, encode_cursor, prefix_end, rejected_key
from acrsync.ledger.tablestore import check_endpoint, index_rows, micros
from acrsync.records import Attempt, ImageRef, Origin, Record, RejectedEvent, Status, record_key, repo_prefix

# ACR names: lower-case letters, digits and separators; tags as Docker allows them.
names = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?", fullmatch=True)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)
digests = st.one_of(st.none(), st.from_regex(r"(sha256:)?[0-9a-f]{64}", fullmatch=True))
targets = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)


def image(ns: str, repo: str, tag: str, digest: str | None = None, instance: str = "cri-src1") -> ImageRef:
    return ImageRef(instance_id=instance, namespace=ns, repo=repo, tag=tag, digest=digest)


def _in_range(key: str, prefix: str) -> bool:
    return prefix <= key < prefix_end(prefix)


@given(ns=names, repo=names, other=names, tag=tags, other_tag=tags, digest=digests, target=targets)
def test_a_repo_or_tag_prefix_selects_exactly_its_records(ns, repo, other, tag, other_tag, digest, target):
    key = record_key(image(ns, repo, tag, digest), target)
    assert _in_range(key, repo_prefix("cri-src1", ns, repo))
    assert _in_range(key, repo_prefix("cri-src1", ns, repo, tag))
    assert _in_range(key, repo_prefix("cri-src1", ns, other)) == (other == repo)
    assert _in_range(key, repo_prefix("cri-src1", ns, repo, other_tag)) == (other_tag == tag)


def test_a_repo_that_prefixes_another_name_does_not_match_it():
    app2 = record_key(image("team", "app2", "v1"), "bj")
    v10 = record_key(image("team", "app", "v10"), "bj")
    assert not _in_range(app2, repo_prefix("cri-src1", "team", "app"))
    assert not _in_range(v10, repo_prefix("cri-src1", "team", "app", "v1"))


@given(st.floats(min_value=0, max_value=4e9), st.floats(min_value=0, max_value=4e9))
def test_time_keys_keep_order(a, b):
    if a <= b:
        assert micros(a) <= micros(b)
        ka = rejected_key(RejectedEvent(id="x", received_at=a, source="s", reason="r", payload=""))
        kb = rejected_key(RejectedEvent(id="x", received_at=b, source="s", reason="r", payload=""))
        assert ka <= kb


def record(**fields) -> Record:
    return Record(image=image("team", "app", "v1", "ab" * 32), target="bj", origin=Origin.PUSH,
                  created_at=fields.pop("created_at", 10.0), updated_at=10.0, **fields)


def test_index_rows_follow_the_record_state():
    r = record(status=Status.ERROR, task_id="rst-2", next_retry_at=20.5,
               history=[Attempt(task_id="rst-1", status="ERROR", created_at=1.0),
                        Attempt(task_id="rst-2", status="ERROR", created_at=2.0)])
    def rows(rec: Record):
        return index_rows(rec.key, Indexed.of(rec))

    assert rows(r) == {("tasks", ("rst-1", r.key)), ("tasks", ("rst-2", r.key)),
                       ("open", (10_000_000, r.key))}
    done = dataclasses.replace(r, status=Status.SUCCESS)
    assert rows(done) == {("tasks", ("rst-1", r.key)), ("tasks", ("rst-2", r.key))}
    gave_up = dataclasses.replace(r, gave_up=True)
    assert {s for s, _ in rows(gave_up)} == {"tasks"}
    assert rows(record()) == {("open", (10_000_000, record().key))}


def test_cursors_round_trip_and_reject_garbage():
    key = record_key(image("team", "app", "v1"), "bj|x")
    assert decode_cursor(encode_cursor(123, key)) == (123, key)
    assert decode_cursor(encode_cursor(1.5, key)) == (1.5, key)
    for bad in ("", "abc", "12|", "x|key", "{}", "[1]"):
        with pytest.raises(ValueError, match="not a cursor"):
            decode_cursor(bad)


@pytest.mark.parametrize("endpoint", [
    "https://acrsync.cn-hangzhou.ots.aliyuncs.com",
    "https://acrsync.cn-hangzhou.vpc.tablestore.aliyuncs.com/",
    "http://127.0.0.1:8123",
])
def test_public_vpc_and_local_endpoints_are_accepted(endpoint):
    assert check_endpoint(endpoint, "acrsync") == endpoint.rstrip("/")


def test_an_endpoint_of_another_instance_or_without_scheme_is_refused():
    with pytest.raises(ValueError, match="names instance 'other'"):
        check_endpoint("https://other.cn-hangzhou.ots.aliyuncs.com", "acrsync")
    with pytest.raises(ValueError, match="is not a URL"):
        check_endpoint("acrsync.cn-hangzhou.ots.aliyuncs.com", "acrsync")


def test_a_backend_implements_storage_primitives_only():
    """Behaviour lives in the base class; reports, checkpoints and caps added no abstract method."""
    from acrsync.ledger import Ledger

    assert Ledger.__abstractmethods__ == {
        "init", "_insert", "_replace", "_fetch", "_fetch_by_task", "_iter_open", "_iter_range",
        "_status_counts", "_get_item", "_put_item", "_delete_item", "_list_items"}


def test_slots_are_leases_that_expire():
    from acrsync.ledger.limits import Slots

    s = Slots().acquire("a", cap=1, ttl=10, now=0)
    assert s is not None and s.acquire("b", cap=1, ttl=10, now=5) is None
    assert s.acquire("b", cap=1, ttl=10, now=10) is not None        # a's lease ended at 10
    assert s.release("a", now=1).live(1) == {}


@given(st.lists(st.tuples(st.floats(min_value=0, max_value=5), st.integers(min_value=1, max_value=3)),
                max_size=30))
def test_a_bucket_never_gives_more_than_its_burst_plus_what_it_refilled(steps):
    from acrsync.ledger.limits import Bucket

    rate, burst, now = 2.0, 5.0, 0.0
    bucket, taken = Bucket.full(burst, now), 0
    for dt, n in steps:
        now += dt
        new, wait = bucket.take(n, rate=rate, burst=burst, now=now)
        if new is not None:
            bucket, taken = new, taken + n
            assert wait == 0.0
        else:
            assert wait > 0
        assert 0 <= bucket.tokens <= burst + 1e-9
    assert taken <= burst + rate * now + 1e-6
