"""Reconcile decisions, table by table: no I/O, a fixed clock."""

import dataclasses

import pytest

from acrsync.config import ReconcileConfig
from acrsync.failures import Kind, backoff_seconds, classify
from acrsync.lifecycle import Action, Context, Flag, RecordChanges, adopt, decide, due, matches_orphan
from acrsync.model import ImageSide, SyncTask
from acrsync.records import Attempt, ImageRef, Origin, Record, Status

NOW = 1_800_000_000.0
POLICY = ReconcileConfig(max_attempts=3, backoff_base_seconds=60, backoff_max_seconds=600,
                         stuck_after_seconds=1800, cancel_stuck=False)
IMAGE = ImageRef(instance_id="cri-src", namespace="team-a", repo="api", tag="v1", digest="abc")


def rec(**kw) -> Record:
    base = dict(image=IMAGE, target="bj", origin=Origin.PUSH, status=Status.PENDING, task_id="rst-1",
                attempts=1, history=[Attempt(task_id="rst-1", status="PENDING", created_at=NOW - 100)],
                created_at=NOW - 100, updated_at=NOW - 100)
    base.update(kw)
    return Record(**base)


def task(status="PENDING", issue=None, created=NOW - 100, task_id="rst-1", rule_id=None, **kw) -> SyncTask:
    return SyncTask(task_id=task_id, status=status, issue=issue, created_ms=int(created * 1000),
                    rule_id=rule_id,
                    source=ImageSide(instance_id="cri-src", namespace="team-a", repo="api", tag="v1"),
                    target=ImageSide(instance_id="cri-tgt", namespace="team-a", repo="api", tag="v1"), **kw)


def ctx(grants=True, policy=POLICY, rand=0.5) -> Context:
    return Context(now=NOW, policy=policy, grants_clean=grants, rand=rand)


def test_in_progress_status_is_copied():
    d = decide(rec(status=Status.PENDING), task("SYNCHRONIZING"), ctx())
    assert d.changes.status is Status.SYNCHRONIZING
    assert d.action is Action.NONE


def test_unchanged_in_progress_writes_nothing():
    d = decide(rec(status=Status.PENDING), task("PENDING"), ctx())
    assert not d.writes


def test_success_closes_and_clears_retry_state():
    d = decide(rec(status=Status.SYNCHRONIZING, next_retry_at=NOW, stuck=True), task("SUCCESS"), ctx())
    assert d.changes.status is Status.SUCCESS
    assert d.changes.stuck is False and d.changes.next_retry_at is None


def test_transient_error_schedules_a_retry_with_backoff():
    d = decide(rec(), task("ERROR", issue="NETWORK_ERROR"), ctx(rand=0.0))
    assert d.changes.status is Status.ERROR
    assert d.changes.next_retry_at == pytest.approx(NOW + 6.0)   # 60 s window, 10% floor
    assert d.action is Action.NONE


def test_due_retry_creates_a_new_task():
    r = rec(status=Status.ERROR, next_retry_at=NOW - 1, task_issue="NETWORK_ERROR")
    d = decide(r, task("ERROR", issue="NETWORK_ERROR"), ctx())
    assert d.action is Action.CREATE_TASK


def test_retry_not_yet_due_waits():
    r = rec(status=Status.ERROR, next_retry_at=NOW + 10, task_issue="NETWORK_ERROR")
    assert decide(r, task("ERROR", issue="NETWORK_ERROR"), ctx()).action is Action.NONE


def test_due_retry_with_failing_grants_blocks_instead():
    r = rec(status=Status.ERROR, next_retry_at=NOW - 1, task_issue="NETWORK_ERROR")
    d = decide(r, task("ERROR", issue="NETWORK_ERROR"), ctx(grants=False))
    assert d.changes.status is Status.BLOCKED and d.action is Action.NONE


def test_attempts_exhausted_gives_up():
    d = decide(rec(attempts=3), task("ERROR", issue="NETWORK_ERROR"), ctx())
    assert d.gave_up and d.changes.gave_up is True


@pytest.mark.parametrize("issue", ["CROSS_ACCOUNT_AUTH_FAILED", "NAMESPACE_NOT_EXIST", "TAG_IMMUTABLE"])
def test_failures_a_retry_cannot_fix_block_with_a_finding(issue):
    d = decide(rec(), task("ERROR", issue=issue), ctx())
    assert d.changes.status is Status.BLOCKED
    assert d.changes.finding.code == issue
    assert d.action is Action.NONE


def test_cancel_outside_acrsync_is_final():
    d = decide(rec(), task("CANCELED"), ctx())
    assert d.gave_up


def test_cancelled_because_stuck_is_retried():
    d = decide(rec(stuck=True, status=Status.CANCELED), task("CANCELED"), ctx())
    assert not d.gave_up and d.changes.next_retry_at > NOW


def test_stuck_is_flagged_once():
    old = task("SYNCHRONIZING", created=NOW - 4000)
    d = decide(rec(status=Status.SYNCHRONIZING), old, ctx())
    assert d.stuck_found and d.changes.stuck is True and d.action is Action.NONE
    synced = [Attempt(task_id="rst-1", status="SYNCHRONIZING", created_at=NOW - 4000)]
    again = decide(rec(status=Status.SYNCHRONIZING, stuck=True, history=synced), old, ctx())
    assert not again.stuck_found and not again.writes


def test_stuck_is_cancelled_when_configured():
    policy = dataclasses.replace(POLICY, cancel_stuck=True)
    d = decide(rec(status=Status.SYNCHRONIZING), task("SYNCHRONIZING", created=NOW - 4000),
               ctx(policy=policy))
    assert d.action is Action.CANCEL_TASK


def test_blocked_record_unblocks_when_grants_turn_clean():
    r = rec(status=Status.BLOCKED, task_id=None, history=[], attempts=0, finding={"code": "ROLE_MISSING"})
    assert decide(r, None, ctx(grants=False)).action is Action.NONE
    d = decide(r, None, ctx(grants=True))
    assert d.action is Action.CREATE_TASK and d.changes.status is Status.QUEUED


def test_young_queued_record_is_left_to_its_push():
    r = rec(status=Status.QUEUED, task_id=None, history=[], attempts=0, updated_at=NOW - 10)
    assert decide(r, None, ctx()).action is Action.NONE
    old = dataclasses.replace(r, updated_at=NOW - 1000)
    assert decide(old, None, ctx()).action is Action.CREATE_TASK


def test_queued_with_retry_time_due_creates():
    r = rec(status=Status.QUEUED, task_id=None, history=[], attempts=0, updated_at=NOW, next_retry_at=NOW)
    assert due(r, ctx())
    assert decide(r, None, ctx()).action is Action.CREATE_TASK


def test_task_unknown_to_acr_requeues():
    d = decide(rec(), None, ctx())
    assert d.changes.status is Status.QUEUED and d.changes.task_id is None


def test_covered_waits_for_its_rule_task():
    r = rec(status=Status.COVERED, task_id=None, history=[], attempts=0)
    assert not decide(r, None, ctx()).writes


def test_adopt_links_task_and_counts_attempt():
    r = rec(status=Status.QUEUED, task_id=None, history=[], attempts=0)
    ch = adopt(r, task("PENDING", task_id="rst-9"))
    assert ch.task_id == "rst-9" and ch.attempts == 1 and ch.history[0].task_id == "rst-9"


def test_orphan_matching():
    r = rec(status=Status.QUEUED, task_id=None, created_at=NOW - 100)
    assert matches_orphan(r, task(created=NOW - 99), "cri-tgt")
    assert not matches_orphan(r, task(created=NOW - 99), "cri-other")           # another target
    assert not matches_orphan(r, task(created=NOW - 200), "cri-tgt")            # made before the record
    assert not matches_orphan(r, task(created=NOW - 99, rule_id="crsr-1"), "cri-tgt")   # a rule's task


@pytest.mark.parametrize("code,kind", [
    ("NoPrivilege", Kind.GRANT), ("CROSS_ACCOUNT_AUTH_FAILED", Kind.GRANT),
    ("NAMESPACE_NOT_EXIST", Kind.PREREQUISITE), ("INSTANCE_SPEC_NOT_SUPPORT", Kind.PREREQUISITE),
    ("TAG_IMMUTABLE", Kind.CONFLICT), ("NETWORK_ERROR", Kind.TRANSIENT), (None, Kind.TRANSIENT),
    ("Throttling.User", Kind.TRANSIENT),
])
def test_classify(code, kind):
    assert classify(code).kind is kind


def test_classify_by_http_status():
    assert classify("Whatever", http_status=403).kind is Kind.GRANT


def test_backoff_grows_and_is_capped():
    assert backoff_seconds(1, 60, 600, 0.999) < backoff_seconds(3, 60, 600, 0.999)
    assert backoff_seconds(20, 60, 600, 0.999) <= 600
    assert backoff_seconds(1, 60, 600, 0.0) == pytest.approx(6.0)


def test_claim_period_comes_from_the_config():
    r = rec(status=Status.QUEUED, task_id=None, history=[], attempts=0, updated_at=NOW - 40)
    assert ReconcileConfig().claim_after_seconds == 300
    assert not due(r, ctx())                                          # 40 s < the default 300 s
    short = dataclasses.replace(POLICY, claim_after_seconds=30)
    assert due(r, ctx(policy=short)) and decide(r, None, ctx(policy=short)).action is Action.CREATE_TASK


@pytest.mark.parametrize("status", ["RUNNING", "QUEUEING", "", "synchronizing?"])
def test_a_status_acrsync_does_not_know_is_in_progress_never_a_retry(status):
    d = decide(rec(status=Status.PENDING), task(status), ctx())
    assert d.action is Action.NONE and Flag.UNKNOWN_STATUS in d.flags
    assert d.changes.status is None and "status" not in d.changes.names    # the record keeps its status
    old = decide(rec(status=Status.PENDING), task(status, created=NOW - 4000), ctx())
    assert old.stuck_found and old.changes.stuck is True                   # left to the stuck rule


def test_changes_are_validated_when_applied():
    r = rec()
    assert RecordChanges(attempts=2).apply(r, now=NOW).attempts == 2
    with pytest.raises(ValueError):
        RecordChanges(status=None).apply(r, now=NOW)                      # a record always has a status
    with pytest.raises(TypeError, match="no_such_field"):
        RecordChanges(no_such_field=1)
    with pytest.raises(ValueError, match="attempts"):
        RecordChanges(attempts=-1)
    with pytest.raises(ValueError, match="status"):
        RecordChanges(status="DONE").apply(r, now=NOW)                    # not a Status


def test_adopting_a_task_in_an_unknown_status_keeps_the_record_open_as_in_progress():
    r = rec(status=Status.COVERED, task_id=None, history=[], attempts=0)
    ch = adopt(r, task("RUNNING", task_id="rst-7", rule_id="crsr-1"))
    assert ch.status is Status.PENDING and ch.task_id == "rst-7" and ch.history[0].status == "RUNNING"
    assert ch.apply(r, now=NOW).is_open
