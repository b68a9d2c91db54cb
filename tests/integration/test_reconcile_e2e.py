"""Reconcile end to end on localcloud's controlled clock: after every scenario the ledger matches
localcloud's truth, and nothing is created twice."""

from __future__ import annotations

import threading

import pytest

from acrsync.records import ImageRef, Origin, Record, Status
from tests.integration.e2e import (
    acr_control,
    cli_config,
    config_doc,
    fc_context,
    make_app,
    push_event,
    tasks_for,
)


@pytest.fixture
def app(cloud, tmp_path):
    return make_app(cloud, tmp_path / "ledger.db")


def reconcile(app, **kw):
    return app.handle_reconcile(None, fc_context(timeout=600), **kw)


def record(app, repo, tag, ns="team-a"):
    (rec,) = app.ledger.records_for("cri-demosource01", ns, repo, tag)
    return rec


def assert_ledger_matches_localcloud(app, cloud):
    """Every record with a task shows the task's status as localcloud has it."""
    truth = {t.task_id: t for t in cloud.world.backends["acr"].tasks.values()}
    for rec in app.ledger.all_records():
        if rec.task_id:
            assert rec.task_id in truth, rec.key
            assert rec.status.value == truth[rec.task_id].status, (rec.key, rec.status,
                                                                   truth[rec.task_id].status)


def test_whole_lifecycle_pending_to_success(app, cloud):
    app.handle_on_push(push_event(cloud, "team-a", "web", "v1.2.0"), fc_context())
    cloud.advance(3)
    summary = reconcile(app)
    assert record(app, "web", "v1.2.0").status is Status.SYNCHRONIZING
    cloud.advance(10)
    summary = reconcile(app)
    rec = record(app, "web", "v1.2.0")
    assert rec.status is Status.SUCCESS and not rec.is_open
    assert summary["counts"]["SUCCESS"] == 1 and summary["oldest_open_age_s"] is None
    assert_ledger_matches_localcloud(app, cloud)
    # the image really is on the target now (localcloud's view)
    target = cloud.world.instances["cri-demotarget01"].namespaces["team-a"].repos["web"]
    assert "v1.2.0" in target.tags


def test_failed_task_is_retried_with_backoff_then_succeeds(app, cloud):
    acr_control(cloud, "task-faults", {"repo": "web", "tag": "v2.0.0", "fail_next": 1,
                                                     "issue": "NETWORK_ERROR"})
    app.handle_on_push(push_event(cloud, "team-a", "web", "v2.0.0"), fc_context())
    cloud.advance(10)
    reconcile(app)
    rec = record(app, "web", "v2.0.0")
    assert rec.status is Status.ERROR and rec.task_issue == "NETWORK_ERROR" and rec.next_retry_at is not None
    first = rec.task_id
    # not due yet: nothing new
    reconcile(app)
    assert len(tasks_for(cloud, "web", "v2.0.0")) == 1
    cloud.advance(130)                          # past the back-off (base 30 s, cap 120 s)
    summary = reconcile(app)
    assert summary["retried"] == 1
    rec = record(app, "web", "v2.0.0")
    assert rec.task_id != first and rec.attempts == 2 and [a.task_id for a in rec.history][0] == first
    cloud.advance(10)
    reconcile(app)
    rec = record(app, "web", "v2.0.0")
    assert rec.status is Status.SUCCESS
    assert [t.status for t in tasks_for(cloud, "web", "v2.0.0")] == ["ERROR", "SUCCESS"]
    assert app.ledger.get_by_task(first).key == rec.key          # the failed attempt stays linked
    assert_ledger_matches_localcloud(app, cloud)


def test_attempts_are_bounded(app, cloud):
    acr_control(cloud, "task-faults", {"repo": "web", "tag": "v2.1.0", "fail_next": 10})
    app.handle_on_push(push_event(cloud, "team-a", "web", "v2.1.0"), fc_context())
    for _ in range(8):
        cloud.advance(200)
        reconcile(app)
    rec = record(app, "web", "v2.1.0")
    assert rec.gave_up and rec.attempts == 3
    assert len(tasks_for(cloud, "web", "v2.1.0")) == 3


def test_stuck_task_is_flagged(app, cloud):
    acr_control(cloud, "task-faults", {"repo": "web", "tag": "v3.0.0", "stuck": True})
    app.handle_on_push(push_event(cloud, "team-a", "web", "v3.0.0"), fc_context())
    cloud.advance(60)
    assert reconcile(app)["stuck_found"] == 0
    cloud.advance(700)                          # stuck_after_seconds is 600 in the test config
    summary = reconcile(app)
    assert summary["stuck_found"] == 1
    rec = record(app, "web", "v3.0.0")
    assert rec.stuck and rec.status is Status.SYNCHRONIZING
    assert reconcile(app)["stuck_found"] == 0     # flagged once


def test_stuck_task_is_cancelled_and_retried_when_configured(cloud, tmp_path):
    doc = config_doc(tmp_path / "ledger.db")
    doc["reconcile"]["cancel_stuck"] = True
    app = make_app(cloud, tmp_path / "ledger.db", config=doc)
    acr_control(cloud, "task-faults", {"repo": "web", "tag": "v3.1.0", "stuck": True})
    app.handle_on_push(push_event(cloud, "team-a", "web", "v3.1.0"), fc_context())
    cloud.advance(700)
    assert reconcile(app)["cancelled"] == 1
    acr_control(cloud, "task-faults", {"clear": True})
    cloud.advance(1)
    reconcile(app)                              # sees CANCELED (by acrsync): schedules a retry
    cloud.advance(200)
    assert reconcile(app)["retried"] == 1
    cloud.advance(10)
    reconcile(app)
    assert record(app, "web", "v3.1.0").status is Status.SUCCESS
    assert [t.status for t in tasks_for(cloud, "web", "v3.1.0")] == ["CANCELED", "SUCCESS"]


def test_crash_between_create_and_record_is_adopted_not_duplicated(app, cloud):
    # GIVEN a push whose invocation died right after CreateRepoSyncTask: the task exists, the record is QUEUED
    cloud.push("cri-demosource01", "team-a", "web", "v4.0.0")
    now = cloud.world.clock.now()
    repo = app.session.acr("cn-hangzhou").get_repository("cri-demosource01", "team-a", "web")
    tag = app.session.acr("cn-hangzhou").get_repo_tag("cri-demosource01", repo.repo_id, "v4.0.0")
    image = ImageRef(instance_id="cri-demosource01", namespace="team-a", repo="web", tag="v4.0.0",
                     digest=tag.digest)
    app.ledger.create_if_absent(Record(image=image, target="beijing", origin=Origin.PUSH,
                                       status=Status.QUEUED,
                                       created_at=now, updated_at=now))
    cloud.advance(1)
    orphan = app.session.acr("cn-hangzhou").create_repo_sync_task(
        "cri-demosource01", repo.repo_id, "v4.0.0", target_region="cn-beijing",
        target_instance_id="cri-demotarget01", target_namespace="team-a", target_repo="web",
        target_tag="v4.0.0",
        target_user_id="2222222222222222")
    # WHEN reconcile runs: not while the push might still be running...
    assert reconcile(app)["adopted"] == 0
    assert record(app, "web", "v4.0.0").task_id is None
    cloud.advance(400)                          # ... but after the claim period
    summary = reconcile(app)
    # THEN the existing task is adopted, and no second task is made
    assert summary["adopted"] == 1 and summary["created"] == 0
    assert record(app, "web", "v4.0.0").task_id == orphan
    assert len(tasks_for(cloud, "web", "v4.0.0")) == 1
    assert_ledger_matches_localcloud(app, cloud)


def test_queued_record_without_a_task_gets_one(app, cloud):
    # A push whose budget ran out before CreateRepoSyncTask succeeded.
    cloud.set_faults("CreateRepoSyncTask", throttle_rate=1.0)
    app.handle_on_push(push_event(cloud, "team-a", "web", "v4.1.0"), fc_context(timeout=3))
    cloud.clear_faults()
    rec = record(app, "web", "v4.1.0")
    assert rec.status is Status.QUEUED and rec.next_retry_at is not None
    cloud.advance(rec.next_retry_at - cloud.world.clock.now() + 1)    # when its back-off is over
    summary = reconcile(app)
    assert summary["created"] == 1
    assert len(tasks_for(cloud, "web", "v4.1.0")) == 1


def test_two_reconcile_runs_at_once_do_no_harm(cloud, tmp_path):
    apps = [make_app(cloud, tmp_path / "ledger.db") for _ in range(2)]
    acr_control(cloud, "task-faults", {"repo": "api", "fail_next": 3})
    for tag in ("v5.0.0", "v5.1.0", "v5.2.0"):
        apps[0].handle_on_push(push_event(cloud, "team-a", "api", tag), fc_context())
    cloud.advance(10)
    reconcile(apps[0])
    cloud.advance(200)                          # all three are due for a retry
    barrier = threading.Barrier(2)

    def run(a):
        barrier.wait()
        reconcile(a)

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tag in ("v5.0.0", "v5.1.0", "v5.2.0"):
        assert len(tasks_for(cloud, "api", tag)) == 2, tag     # the failed one and exactly one retry
    cloud.advance(10)
    reconcile(apps[1])
    assert_ledger_matches_localcloud(apps[1], cloud)


def test_rule_made_tasks_enter_the_ledger(app, cloud):
    # A push acrsync never heard of (no event), replicated by the team-b rule.
    cloud.push("cri-demosource01", "team-b", "batch", "v7")
    cloud.advance(10)
    summary = reconcile(app)
    assert summary["rule_tasks_imported"] == 1
    (rec,) = app.ledger.records_for("cri-demosource01", "team-b", "batch", "v7")
    assert rec.origin is Origin.RULE and rec.status is Status.SUCCESS and rec.rule_id
    assert reconcile(app)["rule_tasks_imported"] == 0        # once


def test_covered_record_gets_its_rule_task_attached(app, cloud):
    app.handle_on_push(push_event(cloud, "team-b", "batch", "v8"), fc_context())
    assert record(app, "batch", "v8", ns="team-b").status is Status.COVERED
    cloud.advance(10)
    reconcile(app)
    rec = record(app, "batch", "v8", ns="team-b")
    assert rec.status is Status.SUCCESS and rec.task_id == tasks_for(cloud, "batch", "v8")[0].task_id


def test_grant_failure_blocks_then_unblocks_after_the_fix(cloud_factory, tmp_path):
    from tests.demo_world import SYNC_ROLE
    from tests.integration.e2e import scenario

    doc = scenario()
    b = next(a for a in doc["accounts"] if a["id"] == "2222222222222222")
    sync_role = next(r for r in b["roles"] if r["name"] == SYNC_ROLE)
    b["roles"] = [r for r in b["roles"] if r["name"] != SYNC_ROLE]
    cloud = cloud_factory(doc)
    app = make_app(cloud, tmp_path / "ledger.db")
    app.handle_on_push(push_event(cloud, "team-a", "web", "v6.0.0"), fc_context())
    assert record(app, "web", "v6.0.0").status is Status.BLOCKED
    assert reconcile(app)["created"] == 0
    # the administrator of account B creates the role (as `acrsync grants apply` would)
    from acrsync.cloud import CloudSession
    from acrsync.grants import execute, plan
    from tests.demo_world import B_KEY_ID, B_SECRET

    admin = CloudSession.from_keys(B_KEY_ID, B_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                   clock=cloud.world.clock).ram()
    execute(plan(app.config, app.config.targets[0], admin), admin)
    assert sync_role["name"] == SYNC_ROLE
    cloud.advance(120)                          # past grants.blocked_ttl_seconds
    summary = reconcile(app)
    assert summary["created"] == 1
    cloud.advance(10)
    reconcile(app)
    assert record(app, "web", "v6.0.0").status is Status.SUCCESS


def test_dry_run_changes_nothing(app, cloud):
    app.handle_on_push(push_event(cloud, "team-a", "web", "v9.0.0"), fc_context())
    cloud.advance(10)
    before = record(app, "web", "v9.0.0")
    summary = reconcile(app, dry_run=True)
    assert summary["planned"] and record(app, "web", "v9.0.0") == before


def test_a_run_stops_before_the_deadline_and_the_next_continues(app, cloud, monkeypatch):
    from acrsync import reconcile as rec_mod
    from acrsync.cloud.retry import Budget

    monkeypatch.setattr(rec_mod, "OPEN_BATCH", 4)
    tags = [f"v10.{i}.0" for i in range(12)]
    for tag in tags:
        app.handle_on_push(push_event(cloud, "team-a", "web", tag), fc_context())
    cloud.advance(10)

    class SlowClock:                     # every look at the budget's clock costs a "second"
        def __init__(self):
            self.t = 0.0

        def now(self):
            self.t += 1.0
            return self.t

    budget = Budget(rec_mod.WRAP_UP_SECONDS + 20, SlowClock())     # the invocation's one deadline
    first = rec_mod.run(app.deps(budget))
    assert not first.complete
    assert app.ledger.get_checkpoint(rec_mod.CURSOR) is not None     # past the first batch of 4
    done_first = sum(1 for t in tags if record(app, "web", t).status is Status.SUCCESS)
    assert 0 < done_first < len(tags)
    second = rec_mod.run(app.deps())     # no deadline: finishes, from the cursor on
    assert second.complete and app.ledger.get_checkpoint(rec_mod.CURSOR) is None
    assert all(record(app, "web", t).status is Status.SUCCESS for t in tags)


def test_reconcile_cli_once_and_dry_run(cloud, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from acrsync.cli import app as cli

    cfg = cli_config(cloud, tmp_path, monkeypatch)
    app = make_app(cloud, tmp_path / "ledger.db")
    app.handle_on_push(push_event(cloud, "team-a", "web", "v11.0.0"), fc_context())
    cloud.advance(10)
    dry = CliRunner().invoke(cli, ["reconcile", "--dry-run", "-o", "json", "--config", str(cfg)])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["planned"]
    assert record(app, "web", "v11.0.0").status is Status.PENDING
    once = CliRunner().invoke(cli, ["reconcile", "--once", "--config", str(cfg)])
    assert once.exit_code == 0, once.output
    assert record(app, "web", "v11.0.0").status is Status.SUCCESS


def test_an_unknown_task_status_is_never_retried_and_is_left_to_the_stuck_rule(app, cloud):
    # localcloud reports a status no document lists (RUNNING) for this tag's tasks
    acr_control(cloud, "task-faults", {"repo": "web", "tag": "v12.0.0", "status": "RUNNING"})
    app.handle_on_push(push_event(cloud, "team-a", "web", "v12.0.0"), fc_context())
    cloud.advance(10)
    summary = reconcile(app)
    assert summary["unknown_status"] == 1
    (flagged,) = summary["flagged"]
    assert flagged["flag"] == "UNKNOWN_STATUS" and "RUNNING" in flagged["why"]
    rec = record(app, "web", "v12.0.0")
    assert rec.status is Status.PENDING and rec.history[-1].status == "RUNNING"   # treated as in progress
    for _ in range(3):                          # well past every back-off: still no retry
        cloud.advance(150)
        assert reconcile(app)["created"] == 0
    assert len(tasks_for(cloud, "web", "v12.0.0")) == 1
    cloud.advance(200)                          # past stuck_after_seconds (600 in the test config)
    summary = reconcile(app)
    assert summary["stuck_found"] == 1 and summary["unknown_status"] == 1
    assert record(app, "web", "v12.0.0").stuck
    assert len(tasks_for(cloud, "web", "v12.0.0")) == 1
