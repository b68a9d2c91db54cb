"""`acrsync backfill` against localcloud through the real SDKs, as a RAM user of account A."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from acrsync.cli import app
from tests.backfill.world import CLI_KEY_ID, CLI_SECRET, manual_tasks, write_config

runner = CliRunner()


@pytest.fixture
def world(bulk_cloud, tmp_path, monkeypatch):
    cloud = bulk_cloud(3, 12)
    cfg = write_config(tmp_path, namespaces=["bulk", "team-a"], tag_filter="v.*",
                       backfill={"qps": 200, "max_in_flight": 10, "poll_seconds": 0.1})
    for k in [k for k in list(__import__("os").environ) if k.startswith(("ALIBABA_CLOUD_", "ACRSYNC_"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("ACRSYNC_ENDPOINT", cloud.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CLI_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CLI_SECRET)
    monkeypatch.setenv("ACRSYNC_CONFIG", str(cfg))
    return cloud, cfg, tmp_path


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_plan_counts_per_repository_and_changes_nothing(world):
    cloud, _, _ = world
    r = invoke("backfill", "--target", "beijing", "-o", "json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    repos = {p["repository"]: p for p in plan["repositories"]}
    # team-a/web: v1.0.0 already on the target with the same digest, v1.1.0 missing, latest excluded
    assert repos["team-a/web"] == {"repository": "team-a/web", "in_scope": 2, "on_target": 1, "to_create": 1,
                                   "skipped": {"excluded": 1}, "bytes": repos["team-a/web"]["bytes"]}
    assert repos["bulk/app000"]["to_create"] == 12
    assert plan["totals"]["to_create"] == 3 * 12 + 1
    assert plan["estimate"]["tasks"] == 37 and plan["oss_route"] is None
    assert manual_tasks(cloud) == []


def test_run_creates_each_missing_image_once_and_a_second_run_nothing(world):
    cloud, _, _ = world
    r = invoke("backfill", "--target", "beijing", "--yes", "-o", "json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["outcomes"] == {"created": 37}
    tasks = manual_tasks(cloud)
    images = [(t.namespace, t.repo, t.tag) for t in tasks]
    assert len(images) == len(set(images)) == 37
    assert ("team-a", "web", "v1.0.0") not in images          # already on the target
    again = invoke("backfill", "--target", "beijing", "--yes", "-o", "json")
    assert again.exit_code == 0, again.output
    assert len(manual_tasks(cloud)) == 37
    status = invoke("backfill", "status", "--target", "beijing", "-o", "json")
    doc = json.loads(status.stdout)
    assert doc["status"] == "done" and doc["repositories_done"] == doc["repositories"] == 6


def test_max_tasks_stops_resumable_and_resume_finishes(world):
    cloud, _, _ = world
    r = invoke("backfill", "--target", "beijing", "--repo", "bulk/*", "--max-tasks", "5", "--yes")
    assert r.exit_code == 1
    assert "resumable" in r.output
    assert len(manual_tasks(cloud)) == 5
    r = invoke("backfill", "--target", "beijing", "--resume")
    assert r.exit_code == 0, r.output
    images = [(t.repo, t.tag) for t in manual_tasks(cloud)]
    assert len(images) == len(set(images)) == 36


@pytest.mark.parametrize("args, words", [
    (["--target", "nowhere"], ["no target named 'nowhere'", "beijing"]),
    (["--target", "beijing", "--repo", "nope/*"], ["matches no repository", "bulk/app000"]),
    (["--target", "beijing", "--since", "2999-01-01"], ["in the future", "leave --since out"]),
    (["--target", "beijing", "--since", "yesterday"], ["not a date", "YYYY-MM-DD"]),
    (["--resume", "--target", "beijing"], ["no stored run", "--yes"]),
])
def test_bad_input_is_a_usage_error_that_names_the_fix(world, args, words):
    cloud, _, _ = world
    r = invoke("backfill", *args, "--yes")
    assert r.exit_code == 2, r.output
    for w in words:
        assert w in r.output
    assert manual_tasks(cloud) == []


def test_blocked_grants_plan_nothing_and_name_the_finding(world, monkeypatch):
    cloud, cfg, tmp = world
    # account C has a reader role but not the cross-account sync role
    doc = json.loads(cfg.read_text())
    doc["targets"] = [{"name": "drsite", "account_id": "3333333333333333", "region": "cn-shanghai",
                       "instance_id": "cri-demodrsite01", "namespaces": ["bulk"],
                       "reader_role_arn": "acs:ram::3333333333333333:role/acrsync-reader"}]
    cfg.write_text(json.dumps(doc))
    r = invoke("backfill", "--target", "drsite", "--yes", "-o", "json")
    assert r.exit_code == 1
    plan = json.loads(r.stdout)
    assert plan["totals"]["to_create"] == 0 and plan["repositories"] == []
    assert plan["blocked_by"]["code"]
    assert plan["blocked_by"]["code"] in r.output and "blocked" in r.output
    assert manual_tasks(cloud, "cri-demodrsite01") == []


def test_5xx_storm_backs_off_checkpoints_exits_resumable_and_resume_duplicates_nothing(world):
    cloud, _, _ = world
    cloud.set_faults("CreateRepoSyncTask", error_rate=1.0)
    r = invoke("backfill", "--target", "beijing", "--repo", "bulk/*", "--yes")
    assert r.exit_code == 1, r.output
    assert "resumable" in r.output and "--resume" in r.output
    assert manual_tasks(cloud) == []
    assert cloud.stats().get("CreateRepoSyncTask", 0) > 3          # it tried, and backed off
    cloud.clear_faults()
    r = invoke("backfill", "--target", "beijing", "--resume")
    assert r.exit_code == 0, r.output
    images = [(t.repo, t.tag) for t in manual_tasks(cloud)]
    assert len(images) == len(set(images)) == 36
