"""The push path end to end: localcloud emits the CloudEvent, the handler runs with the real SDKs, and
localcloud (the independent judge) shows which tasks exist."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acrsync.records import Status
from tests.demo_world import DEMO_SCENARIO, SYNC_ROLE
from tests.integration.e2e import (
    cli_config,
    fc_context,
    make_app,
    push_event,
    scenario,
    tasks_for,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(cloud, tmp_path):
    return make_app(cloud, tmp_path / "ledger.db")


def counts(summary: dict, target: str = "beijing") -> dict:
    return {k: v for k, v in summary["targets"][target].items() if v}


def test_uncovered_push_creates_one_tag_filtered_task(app, cloud):
    # GIVEN an image pushed to team-a, which no sync rule covers
    event = push_event(cloud, "team-a", "web", "v1.2.0")
    # WHEN the handler gets the CloudEvent localcloud emitted
    summary = app.handle_on_push(event, fc_context())
    # THEN one manual task replicates exactly that tag to the target, and the ledger knows it
    assert counts(summary) == {"created": 1}
    (task,) = tasks_for(cloud, "web", "v1.2.0")
    assert (task.target_instance_id, task.target_namespace, task.target_repo, task.target_tag) == \
        ("cri-demotarget01", "team-a", "web", "v1.2.0")
    assert task.trigger == "INITIATIVE" and task.cross_user
    (rec,) = app.ledger.records_for("cri-demosource01", "team-a", "web", "v1.2.0")
    assert rec.task_id == task.task_id and rec.status is Status.PENDING and rec.attempts == 1


def test_duplicate_delivery_creates_nothing_more(app, cloud):
    event = push_event(cloud, "team-a", "web", "v1.2.0")
    app.handle_on_push(event, fc_context())
    again = app.handle_on_push(event, fc_context())
    assert counts(again) == {"duplicate": 1}
    assert len(tasks_for(cloud, "web", "v1.2.0")) == 1


def test_tag_moved_to_a_new_digest_is_a_new_image(app, cloud):
    app.handle_on_push(push_event(cloud, "team-a", "web", "v2.0.0", "sha256:" + "a" * 64), fc_context())
    app.handle_on_push(push_event(cloud, "team-a", "web", "v2.0.0", "sha256:" + "b" * 64), fc_context())
    assert len(tasks_for(cloud, "web", "v2.0.0")) == 2
    assert len(app.ledger.records_for("cri-demosource01", "team-a", "web", "v2.0.0")) == 2


def test_eight_concurrent_invocations_create_one_task(cloud, tmp_path):
    # Eight function instances (each its own App, sharing the ledger) get the same event at once.
    apps = [make_app(cloud, tmp_path / "ledger.db") for _ in range(8)]
    event = push_event(cloud, "team-a", "api", "v9.9.9")
    results, barrier = [], threading.Barrier(8)

    def run(a):
        barrier.wait()
        results.append(a.handle_on_push(event, fc_context()))

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = sum(r["targets"]["beijing"]["created"] for r in results)
    dup = sum(r["targets"]["beijing"]["duplicate"] for r in results)
    assert (created, dup) == (1, 7)
    assert len(tasks_for(cloud, "api", "v9.9.9")) == 1


def test_covered_repo_is_recorded_not_replicated_again(app, cloud):
    # team-b has a PASSIVE namespace rule: ACR replicates it, acrsync only records that.
    summary = app.handle_on_push(push_event(cloud, "team-b", "batch", "v4"), fc_context())
    assert counts(summary) == {"covered": 1}
    (task,) = tasks_for(cloud, "batch", "v4")
    assert task.trigger == "PASSIVE"                       # made by the rule, not by acrsync
    (rec,) = app.ledger.records_for("cri-demosource01", "team-b", "batch", "v4")
    assert rec.status is Status.COVERED and rec.rule_id == task.rule_id


def test_out_of_scope_is_counted_and_left_alone(app, cloud):
    summary = app.handle_on_push(push_event(cloud, "team-a", "web", "latest"), fc_context())
    assert counts(summary) == {"out_of_scope": 1}
    assert tasks_for(cloud, "web", "latest") == []


def test_missing_grant_blocks_with_the_finding_and_creates_no_task(cloud_factory, tmp_path):
    doc = scenario()
    b = next(a for a in doc["accounts"] if a["id"] == "2222222222222222")
    b["roles"] = [r for r in b["roles"] if r["name"] != SYNC_ROLE]
    cloud = cloud_factory(doc)
    app = make_app(cloud, tmp_path / "ledger.db")
    summary = app.handle_on_push(push_event(cloud, "team-a", "web", "v1.2.0"), fc_context())
    assert counts(summary) == {"blocked": 1}
    assert tasks_for(cloud, "web", "v1.2.0") == []
    assert cloud.stats().get("CreateRepoSyncTask", 0) == 0
    (rec,) = app.ledger.records_for("cri-demosource01", "team-a", "web", "v1.2.0")
    assert rec.status is Status.BLOCKED and rec.finding.code == "ROLE_MISSING"


def test_throttling_is_retried_within_the_invocation(app, cloud):
    cloud.set_faults("CreateRepoSyncTask", throttle_rate=1.0, count=2)
    summary = app.handle_on_push(push_event(cloud, "team-a", "web", "v1.3.0"), fc_context())
    assert counts(summary) == {"created": 1}
    assert cloud.stats()["CreateRepoSyncTask"] == 3
    assert len(tasks_for(cloud, "web", "v1.3.0")) == 1


def test_5xx_is_retried_within_the_invocation(app, cloud):
    cloud.set_faults("CreateRepoSyncTask", error_rate=1.0, count=1)
    summary = app.handle_on_push(push_event(cloud, "team-a", "web", "v1.4.0"), fc_context())
    assert counts(summary) == {"created": 1}


def test_budget_exhausted_leaves_the_record_queued_and_succeeds(app, cloud):
    cloud.set_faults("CreateRepoSyncTask", throttle_rate=1.0)
    summary = app.handle_on_push(push_event(cloud, "team-a", "web", "v1.5.0"), fc_context(timeout=3))
    assert counts(summary) == {"queued": 1}
    (rec,) = app.ledger.records_for("cri-demosource01", "team-a", "web", "v1.5.0")
    assert rec.status is Status.QUEUED and rec.task_id is None
    assert rec.last_error.code.startswith("Throttling")
    assert tasks_for(cloud, "web", "v1.5.0") == []


def test_batch_with_a_malformed_entry_handles_the_rest(app, cloud):
    good = json.loads(push_event(cloud, "team-a", "web", "v1.6.0"))
    batch = json.dumps([good, {"specversion": "1.0", "type": "cr:Artifact:PushCompleted", "source": "acs.cr",
                               "id": "broken-1", "data": {"RepoName": "web"}}, "not an event"]).encode()
    summary = app.handle_on_push(batch, fc_context())
    assert counts(summary) == {"created": 1}
    assert summary["rejected"] == 2
    reasons = [r.reason for r in app.ledger.list_rejected()]
    assert len(reasons) == 2 and all(reasons)


def test_sync_completed_event_updates_the_ledger_at_once(app, cloud):
    app.handle_on_push(push_event(cloud, "team-a", "web", "v1.7.0"), fc_context())
    cloud.advance(10)
    cloud.drain()
    done = [e for e in cloud.events() if e["type"] == "cr:Artifact:SynchronizationCompleted"]
    assert done
    summary = app.handle_on_push(json.dumps(done[-1]).encode(), fc_context())
    assert summary["sync_updates"] == 1
    (rec,) = app.ledger.records_for("cri-demosource01", "team-a", "web", "v1.7.0")
    assert rec.status is Status.SUCCESS


def test_sync_completed_for_a_task_in_an_unknown_status_is_acknowledged_and_changes_nothing(app, cloud):
    from tests.integration.e2e import acr_control

    acr_control(cloud, "task-faults", {"repo": "web", "tag": "v1.7.1", "status": "RUNNING"})
    app.handle_on_push(push_event(cloud, "team-a", "web", "v1.7.1"), fc_context())
    cloud.advance(10)
    (rec,) = app.ledger.records_for("cri-demosource01", "team-a", "web", "v1.7.1")
    event = json.loads((ROOT / "events" / "sync_completed.json").read_text())
    event["data"]["SyncTaskId"] = rec.task_id          # a delivery about a task ACR says is RUNNING
    summary = app.handle_on_push(json.dumps(event).encode(), fc_context())   # no DeliveryFailed: acknowledged
    assert summary["sync_updates"] == 0
    assert app.ledger.get(rec.key) == rec


def _webhook(token: str | None, tag: str = "v1.8.0") -> bytes:
    sample = json.loads((ROOT / "events" / "webhook_http.json").read_text())
    body = json.loads(sample["body"])
    body["push_data"]["tag"] = tag
    body["push_data"]["digest"] = "sha256:" + "c" * 64
    body["repository"].update({"namespace": "team-a", "name": "web", "repo_full_name": "team-a/web"})
    sample["body"] = json.dumps(body)
    sample["queryParameters"] = {"token": token} if token else {}
    return json.dumps(sample).encode()


def test_webhook_with_the_right_token_creates_the_task(app, cloud, monkeypatch):
    monkeypatch.setenv("ACRSYNC_WEBHOOK_TOKEN", "right-token-for-tests")
    cloud.push("cri-demosource01", "team-a", "web", "v1.8.0", "sha256:" + "c" * 64)
    reply = app.handle_on_push(_webhook("right-token-for-tests"), fc_context())
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"])["targets"]["beijing"]["created"] == 1
    assert len(tasks_for(cloud, "web", "v1.8.0")) == 1


def test_webhook_with_a_wrong_token_is_refused_and_recorded(app, cloud, monkeypatch):
    monkeypatch.setenv("ACRSYNC_WEBHOOK_TOKEN", "right-token-for-tests")
    reply = app.handle_on_push(_webhook("wrong-token"), fc_context())
    assert reply["statusCode"] == 401
    assert tasks_for(cloud, "web", "v1.8.0") == []
    (rej,) = app.ledger.list_rejected()
    assert "token" in rej.reason and "wrong-token" not in rej.payload and "right-token" not in rej.payload


def test_sample_event_through_the_cli(cloud, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from acrsync.cli import app as cli

    cfg = cli_config(cloud, tmp_path, monkeypatch)
    cloud.push("cri-demosource01", "team-a", "api", "v1.2.3")
    result = CliRunner().invoke(cli, ["invoke", "on_push", "--event",
                                      str(ROOT / "events" / "push_cloudevent.json"),
                                      "--config", str(cfg), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["targets"]["beijing"]["created"] == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_fuzz_malformed_events_are_recorded_never_raised(app, payload):
    before = len(app.ledger.list_rejected(limit=10_000))
    summary = app.handle_on_push(payload, fc_context())
    made = sum(sum(c.values()) for c in summary["targets"].values())
    after = len(app.ledger.list_rejected(limit=10_000))
    # Nothing usable in random input: every item is rejected and stored (identical payloads share a row).
    assert made == 0
    assert summary["rejected"] >= 1 or payload.strip() in (b"[]",)
    assert after >= before


def test_demo_scenario_file_is_what_the_tests_use():
    assert DEMO_SCENARIO.exists()


def test_cloud_failure_before_anything_is_recorded_fails_the_delivery_then_redelivery_works(app, cloud):
    from acrsync.push import DeliveryFailed

    # GIVEN the source's sync rules cannot be read (persistent 503): coverage cannot be decided
    app.rules.invalidate()
    cloud.set_faults("ListRepoSyncRule", error_rate=1.0)
    good = json.loads(push_event(cloud, "team-a", "web", "v8.0.0"))
    batch = json.dumps([good, {"specversion": "1.0", "source": "acs.cr", "type": "cr:Artifact:PushCompleted",
                               "id": "bad-1", "data": "nope"}]).encode()
    # WHEN the batch is handled, THEN the invocation fails so EventBridge delivers it again ...
    with pytest.raises(DeliveryFailed) as failed:
        app.handle_on_push(batch, fc_context(timeout=3))
    # ... after the rest of the batch was handled (the malformed one is recorded), and nothing was created
    assert failed.value.summary.rejected == 1
    assert tasks_for(cloud, "web", "v8.0.0") == []
    # AND the redelivery, once the cloud answers again, creates the one task
    cloud.clear_faults()
    summary = app.handle_on_push(batch, fc_context())
    assert counts(summary) == {"created": 1}
    assert len(tasks_for(cloud, "web", "v8.0.0")) == 1


def test_ledger_failure_fails_the_delivery(app, cloud, monkeypatch):
    from acrsync.ledger import LedgerError
    from acrsync.push import DeliveryFailed

    def broken(*a, **kw):
        raise LedgerError("disk full")

    monkeypatch.setattr(app.ledger, "create_if_absent", broken)
    with pytest.raises(DeliveryFailed, match="disk full"):
        app.handle_on_push(push_event(cloud, "team-a", "web", "v8.1.0"), fc_context())


@pytest.mark.parametrize(("field", "value"), [
    ("Digest", "sha256:" + "a" * 63 + "\\udfff"),          # JSON escapes: valid JSON, unencodable text
    ("InstanceId", "cri-demosource01\\udfff"),
])
def test_an_unencodable_identifier_ends_in_ledger_rejected_not_in_a_failed_delivery(
        app, cloud, tmp_path, monkeypatch, field, value):
    from typer.testing import CliRunner

    from acrsync.cli import app as cli

    event = json.loads(push_event(cloud, "team-a", "web", "v1.9.0"))
    text = json.dumps(event).replace(json.dumps(event["data"][field]), f'"{value}"')
    summary = app.handle_on_push(text.encode(), fc_context())          # no DeliveryFailed: acknowledged
    assert summary["rejected"] == 1
    [kept] = app.ledger.list_rejected()
    assert kept.reason.startswith("malformed cr:Artifact:PushCompleted event") and kept.id == event["id"]
    assert tasks_for(cloud, "web", "v1.9.0") == []
    cli_config(cloud, tmp_path, monkeypatch)
    monkeypatch.setenv("ACRSYNC_CONFIG", str(tmp_path / "acrsync.yaml"))
    listed = CliRunner().invoke(cli, ["ledger", "rejected"])
    assert listed.exit_code == 0, listed.output
    assert event["id"] in listed.output and "1 event(s)" in listed.output
