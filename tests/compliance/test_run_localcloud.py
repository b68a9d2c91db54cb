"""A compliance run against localcloud through the real SDK clients (scenarios/demo.yaml)."""

from __future__ import annotations

from acrsync.compliance import entry
from acrsync.compliance.run import Options
from tests.compliance.helpers import ROOT, config_doc, make_app

TIMER = ROOT / "events" / "timer_compliance.json"


def by_code(report, code, target="beijing"):
    return [f for f in report.findings if f.code == code and f.target == target]


def test_demo_world_finds_the_missing_image(cloud, tmp_path):
    app = make_app(cloud, tmp_path)
    report, _ = entry.check(app, Options())
    assert report.verdict == "findings" and report.complete
    missing = by_code(report, "TAG_MISSING")
    assert [(f.repo, f.count) for f in missing] == [("team-a/web", 1), ("team-b/batch", 1)]
    assert "v1.1.0" in missing[0].evidence[0].detail
    rows = {r.path: r for r in report.rows}
    assert rows["team-a/web"].cells["beijing"].ok == 1 and rows["team-a/web"].cells["beijing"].missing == 1
    assert rows["team-b/batch"].cells["beijing"].mode.value == "rule"
    assert not by_code(report, "RULE_NOT_REPLICATING")  # team-b/batch:v3 predates the rule: never its to copy


def test_a_rule_that_failed_to_copy_a_later_push_is_named(cloud, tmp_path):
    from tests.integration.e2e import acr_control

    acr_control(cloud, "task-faults", {"repo": "batch", "fail_next": 1, "issue": "NETWORK_ERROR"})
    cloud.advance(2)
    cloud.push("cri-demosource01", "team-b", "batch", "v4")     # after the rule: the rule's task fails
    cloud.advance(30)
    report, _ = entry.check(make_app(cloud, tmp_path), Options())
    (rule,) = by_code(report, "RULE_NOT_REPLICATING")
    assert rule.repo == "team-b/batch" and rule.count == 1 and "v4" in rule.evidence[0].detail
    print(report.model_dump_json(indent=1)[:3000])


def remediate_app(cloud, tmp_path, **kw):
    return make_app(cloud, tmp_path, remediate=True, **kw)


def test_remediation_creates_each_task_once_and_the_image_arrives(cloud, tmp_path):
    app = remediate_app(cloud, tmp_path)
    first, _ = entry.check(app, Options(remediate=True))
    # team-a/web:v1.1.0, and team-b/batch:v3 (older than its rule)
    assert first.tasks_created == 2
    rec = [r for r in app.ledger.all_records() if r.image.tag == "v1.1.0"]
    assert [(r.origin.value, r.status.value) for r in rec] == [("compliance", "PENDING")]
    second, _ = entry.check(app, Options(remediate=True))
    assert second.tasks_created == 0
    assert [f.count for f in by_code(second, "IN_FLIGHT")] == [1, 1]
    assert not [f for f in by_code(second, "TAG_MISSING") if f.repo == "team-a/web"]
    cloud.advance(30)                                  # localcloud finishes the sync task
    third, _ = entry.check(app, Options())
    cell = {r.path: r for r in third.rows}["team-a/web"].cells["beijing"]
    assert (cell.ok, cell.missing, cell.in_flight) == (2, 0, 0)


def test_remediation_is_bounded_per_run(cloud, tmp_path):
    for i in range(3):
        cloud.push("cri-demosource01", "team-a", "web", f"v5.{i}")
    app = remediate_app(cloud, tmp_path, max_tasks_per_run=2)
    report, _ = entry.check(app, Options(remediate=True))
    assert report.tasks_created == 2
    assert [f.code for f in report.findings if f.code == "REMEDIATION_LIMIT"] == ["REMEDIATION_LIMIT"]
    again, _ = entry.check(app, Options(remediate=True))
    # five missing (three pushes, v1.1.0, batch:v3): 2, 2, 1
    assert again.tasks_created == 2
    assert entry.check(app, Options(remediate=True))[0].tasks_created == 1
    assert entry.check(app, Options(remediate=True))[0].tasks_created == 0


def test_blocked_target_is_not_remediated(cloud, tmp_path):
    doc = config_doc(tmp_path / "ledger.db")
    doc["targets"].append({"name": "shanghai", "account_id": "3333333333333333", "region": "cn-shanghai",
                           "instance_id": "cri-demodrsite01", "namespaces": ["team-a"], "tag_filter": "v.*",
                           "reader_role_arn": "acs:ram::3333333333333333:role/acrsync-reader"})
    app = make_app(cloud, tmp_path, doc, remediate=True)
    report, _ = entry.check(app, Options(remediate=True))
    results = {t.name: t for t in report.targets}
    assert results["shanghai"].remediation == "skipped_blocked" and results["beijing"].remediation == "done"
    assert by_code(report, "REMEDIATION_SKIPPED", "shanghai")
    assert by_code(report, "ROLE_MISSING", "shanghai")             # the grant finding itself is in the report
    assert all(r.target != "shanghai" for r in app.ledger.all_records())
    assert report.tasks_created == 2                   # beijing: team-a/web:v1.1.0 and team-b/batch:v3


def test_an_unreadable_target_is_a_finding_and_the_others_are_checked(cloud, tmp_path):
    doc = config_doc(tmp_path / "ledger.db")
    doc["targets"].append({"name": "shanghai", "account_id": "3333333333333333", "region": "cn-shanghai",
                           "instance_id": "cri-demodrsite01", "namespaces": ["team-a"],
                           "reader_role_arn": "acs:ram::3333333333333333:role/no-such-reader"})
    app = make_app(cloud, tmp_path, doc)
    report = entry.handle(app, None, entry.Budget.unbounded())
    stored = entry.reports.load(app.ledger, report["report_id"])
    unread = by_code(stored, "TARGET_UNREADABLE", "shanghai")
    assert unread and "no-such-reader" in unread[0].message
    assert {t.name: t.status for t in stored.targets} == {"beijing": "checked", "shanghai": "unreadable"}
    assert by_code(stored, "TAG_MISSING")                           # beijing still compared
    assert {r.path: r for r in stored.rows}["team-a/web"].cells["shanghai"].mode.value == "unreadable"


def test_a_throttled_target_after_retries_is_a_finding_not_a_crash(cloud, tmp_path):
    app = make_app(cloud, tmp_path)
    cloud.set_faults("ListRepoTag", throttle_rate=1.0)
    result = app.handle_compliance(TIMER.read_bytes(), None)
    cloud.clear_faults()
    stored = entry.reports.load(app.ledger, result["report_id"])
    assert result["verdict"] == "findings"
    codes = {f.code for f in stored.findings}
    assert "SOURCE_UNREADABLE" in codes or "TARGET_UNREADABLE" in codes


def test_deadline_stops_with_a_cursor_and_the_next_run_resumes(cloud, tmp_path):
    app = make_app(cloud, tmp_path, workers=1)
    ticks = iter([0.0, 0.0] + [1000.0] * 100)
    first, _ = entry.check(app, Options(deadline=100.0), now=lambda: next(ticks))
    assert not first.complete and first.scope.stopped_at == "team-a/worker"
    assert first.scope.repos_checked == 2 and by_code(first, "RUN_INCOMPLETE", "*")
    assert app.ledger.get_checkpoint("compliance.cursor") == "team-a/worker"
    second, _ = entry.check(app, Options())
    assert second.complete and second.scope.resumed_from == "team-a/worker"
    assert [r.path for r in second.rows] == ["team-a/worker", "team-b/batch"]
    assert {c.mode.value for r in first.rows[2:] for c in r.cells.values()} == {"not_checked"}
    assert app.ledger.get_checkpoint("compliance.cursor") is None


def test_events_not_arriving(cloud, tmp_path):
    app = make_app(cloud, tmp_path)
    first, _ = entry.check(app, Options())                # stamps when acrsync started watching
    assert not by_code(first, "EVENTS_NOT_ARRIVING", "*")
    cloud.advance(60)
    cloud.push("cri-demosource01", "team-a", "web", "v7.0.0")    # no trigger: the ledger never hears of it
    cloud.advance(10 * 60)
    assert not by_code(entry.check(app, Options())[0], "EVENTS_NOT_ARRIVING", "*")   # within the grace
    cloud.advance(25 * 60)
    late = by_code(entry.check(app, Options())[0], "EVENTS_NOT_ARRIVING", "*")
    assert [f.count for f in late] == [1] and "v7.0.0" in late[0].evidence[0].detail


def test_pipeline_not_checked_without_fc_access(cloud, tmp_path):
    report, _ = entry.check(make_app(cloud, tmp_path), Options())
    assert report.scope.pipeline.startswith("not checked")
    assert [f.severity for f in report.findings if f.code == "PIPELINE_NOT_CHECKED"] == ["info"]


def test_an_event_not_for_compliance_is_kept_and_acknowledged(cloud, tmp_path):
    app = make_app(cloud, tmp_path)
    result = app.handle_compliance((ROOT / "events" / "push_cloudevent.json").read_bytes(), None)
    assert result == {"rejected": 1, "report_id": None}
    assert "compliance function runs on its timer" in app.ledger.list_rejected()[0].reason
    result = app.handle_compliance(b"{not json", None)
    assert result["rejected"] == 1 and result["report_id"] is None
    assert app.ledger.list_reports("compliance") == []


def test_digest_differs_and_extra_tags(cloud, tmp_path):
    # another image, same tag
    cloud.push("cri-demotarget01", "team-a", "web", "v1.1.0", "sha256:" + "e" * 64)
    cloud.push("cri-demotarget01", "team-a", "web", "v0.9-target-only", "sha256:" + "f" * 64)
    app = make_app(cloud, tmp_path, remediate=True)
    report, _ = entry.check(app, Options(remediate=True))
    differs = by_code(report, "DIGEST_DIFFERS")
    assert [f.repo for f in differs] == ["team-a/web"] and "override: false" in differs[0].message
    assert "would not overwrite" in differs[0].message
    assert "target sha256:eeeeeeeeeeee" in differs[0].evidence[0].detail
    assert [f.count for f in by_code(report, "EXTRA_TAGS")] == [1]
    assert not [r for r in app.ledger.all_records() if r.image.tag == "v1.1.0"]   # not overwritten
    over = make_app(cloud, tmp_path, config_doc(tmp_path / "o.db", override=True), remediate=True)
    healed, _ = entry.check(over, Options(remediate=True))
    assert "a sync task replaces them" in by_code(healed, "DIGEST_DIFFERS")[0].message
    assert [r.status.value for r in over.ledger.all_records() if r.image.tag == "v1.1.0"] == ["PENDING"]


def test_a_task_status_acrsync_does_not_know_is_reported_and_never_remediated_again(cloud, tmp_path):
    from acrsync import reconcile as reconcile_mod
    from acrsync.cloud.retry import Budget
    from tests.integration.e2e import acr_control

    # localcloud reports a status no document lists (RUNNING) for this tag's tasks
    acr_control(cloud, "task-faults", {"repo": "web", "tag": "v1.1.0", "status": "RUNNING"})
    app = remediate_app(cloud, tmp_path)
    assert entry.check(app, Options(remediate=True))[0].tasks_created == 2     # v1.1.0 and team-b/batch:v3
    cloud.advance(10)
    reconcile_mod.run(app.deps(Budget.after(60)), calls=app.session.calls)   # reads the task's status
    report, _ = entry.check(app, Options(remediate=True))
    assert report.tasks_created == 0                   # treated as in progress: no second task
    (unknown,) = by_code(report, "UNKNOWN_STATUS")
    assert unknown.repo == "team-a/web" and "RUNNING" in unknown.evidence[0].detail
    assert unknown.severity == "warning"
