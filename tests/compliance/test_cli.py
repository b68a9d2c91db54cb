"""`acrsync check`, `acrsync report`, `acrsync invoke compliance` against localcloud, as a RAM user."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from acrsync.cli import app
from tests.compliance.helpers import ROOT, cli_env, scenario

runner = CliRunner()


@pytest.fixture
def world(cloud_factory):
    return cloud_factory(scenario(functions=True))


def test_check_exit_codes_outputs_and_stored_report(world, tmp_path, monkeypatch):
    cli_env(world, tmp_path, monkeypatch)
    done = runner.invoke(app, ["check"])
    assert done.exit_code == 1, done.output
    assert "FINDINGS" in done.output and "TAG_MISSING" in done.output
    out = tmp_path / "r.html"
    done = runner.invoke(app, ["check", "--output", "html", "--out", str(out)])
    assert done.exit_code == 1 and out.read_text().startswith("<!DOCTYPE html>")
    assert "v1.1.0" in out.read_text()
    listed = runner.invoke(app, ["report", "list", "--output", "json"])
    ids = [r["id"] for r in json.loads(listed.output)]
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)
    shown = runner.invoke(app, ["report", "show", ids[1], "--output", "json"])
    body = json.loads(shown.output)
    assert shown.exit_code == 0 and body["id"] == ids[1] and body["scope"]["pipeline"] == "checked"
    md = runner.invoke(app, ["report", "show", "--output", "md"])
    assert md.exit_code == 0 and f"report {ids[0]}" in md.output
    assert runner.invoke(app, ["report", "show", "nope"]).exit_code == 1


def test_check_usage_errors(world, tmp_path, monkeypatch):
    cli_env(world, tmp_path, monkeypatch)
    assert runner.invoke(app, ["check", "--target", "nowhere"]).exit_code == 2
    assert runner.invoke(app, ["check", "--output", "pdf"]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {}\n")
    assert runner.invoke(app, ["check", "--config", str(bad)]).exit_code == 2


def test_check_remediate_then_compliant(world, tmp_path, monkeypatch):
    cfg = cli_env(world, tmp_path, monkeypatch)
    doc = json.loads(cfg.read_text())
    doc["targets"][0]["namespaces"] = ["team-a"]                    # team-b is the sync rule's
    cfg.write_text(json.dumps(doc))
    done = runner.invoke(app, ["check", "--remediate", "--output", "json"])
    assert done.exit_code == 1 and json.loads(done.output)["tasks_created"] == 1
    world.advance(30)
    done = runner.invoke(app, ["check", "--output", "json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["verdict"] == "compliant"


def test_invoke_compliance_with_the_sample_event(world, tmp_path, monkeypatch):
    cli_env(world, tmp_path, monkeypatch)
    event = str(ROOT / "events" / "timer_compliance.json")
    done = runner.invoke(app, ["invoke", "compliance", "--event", event, "-o", "json"])
    result = json.loads(done.output)
    assert result["verdict"] == "findings" and result["report_id"] and result["rejected"] == 0
    assert done.exit_code == 1                          # findings
    shown = runner.invoke(app, ["invoke", "compliance", "--event", event])
    assert shown.exit_code == 1
    assert "verdict: findings" in shown.output and "acrsync report show" in shown.output


def test_pipeline_health_finds_a_disabled_timer(cloud_factory, tmp_path, monkeypatch):
    world = cloud_factory(scenario(functions=True, compliance_timer=False))
    cli_env(world, tmp_path, monkeypatch)
    body = json.loads(runner.invoke(app, ["check", "--output", "json"]).output)
    codes = [(f["code"], f["target"]) for f in body["findings"] if f["code"].startswith("PIPELINE")]
    assert codes == [("PIPELINE_TIMER_DISABLED", "*")]
    assert "acrsync-compliance" in next(f["message"] for f in body["findings"]
                                        if f["code"].startswith("PIPELINE"))
