"""`acrsync ledger ...` on a SQLite ledger, through Typer's runner."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from typer.testing import CliRunner

from acrsync.cli import app
from acrsync.ledger.sqlite import SqliteLedger
from acrsync.records import Attempt, RejectedEvent, Status
from tests.contract.test_ledger_contract import INSTANCE, created, rec

runner = CliRunner()


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A config whose ledger is a SQLite file in tmp_path (made-up demo accounts)."""
    db = tmp_path / "state" / "ledger.db"
    cfg = {
        "source": {"account_id": "1000000000000001", "region": "cn-hangzhou", "instance_id": INSTANCE},
        "targets": [{"name": "beijing", "account_id": "1000000000000002", "region": "cn-beijing",
                     "instance_id": "cri-dst0001"}],
        "ledger": {"backend": "sqlite", "path": str(db)},
    }
    path = tmp_path / "acrsync.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("ACRSYNC_CONFIG", str(path))
    return {"path": path, "db": db}


@pytest.fixture
def filled(config):
    led = SqliteLedger(config["db"])
    stored = created(led, rec("app", "v1"))
    led.update(dataclasses.replace(stored, **{
        "status": Status.ERROR, "task_id": "rst-1", "attempts": 1,
        "history": [Attempt(task_id="rst-1", status="ERROR", created_at=1001.0, issue="NETWORK")]}))
    created(led, rec("app", "v2", status=Status.SUCCESS))
    created(led, rec("app2", "v1"))
    led.put_rejected(RejectedEvent(id="ev-1", received_at=5.0, source="webhook",
                                   reason="no digest in payload", payload="{}"))
    led.close()
    return config


def test_init_creates_the_sqlite_file(config):
    result = runner.invoke(app, ["ledger", "init"])
    assert result.exit_code == 0, result.output
    assert config["db"].exists()
    assert "ledger ready: sqlite" in result.output
    assert runner.invoke(app, ["ledger", "init"]).exit_code == 0


def test_list_filters_by_repo_tag_and_status(filled):
    def keys(*args):
        result = runner.invoke(app, ["ledger", "list", "--output", "json", *args])
        assert result.exit_code == 0, result.output
        return [r["image"]["repo"] + ":" + r["image"]["tag"] for r in json.loads(result.output)]

    assert keys() == ["app2:v1", "app:v1", "app:v2"]   # key order: "app2:" sorts before "app:"
    assert keys("--repo", "team/app") == ["app:v1", "app:v2"]
    assert keys("--repo", "team/app", "--tag", "v2") == ["app:v2"]
    assert keys("--status", "error") == ["app:v1"]
    assert keys("--limit", "1") == ["app2:v1"]


def test_list_as_a_table(filled):
    result = runner.invoke(app, ["ledger", "list", "--repo", "team/app", "--config", str(filled["path"])])
    assert result.exit_code == 0, result.output
    assert "rst-1" in result.output and "ERROR" in result.output and "2 record(s)" in result.output


def test_list_rejects_a_tag_without_a_repo(filled):
    result = runner.invoke(app, ["ledger", "list", "--tag", "v1"])
    assert result.exit_code == 2
    assert "--tag needs --repo" in result.output


def test_show_prints_one_record_and_fails_on_an_unknown_key(filled):
    key = rec("app", "v1").key
    result = runner.invoke(app, ["ledger", "show", key])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["task_id"] == "rst-1" and shown["version"] == 2
    table = runner.invoke(app, ["ledger", "show", key, "--output", "table"])
    assert table.exit_code == 0 and "NETWORK" in table.output
    missing = runner.invoke(app, ["ledger", "show", "cri-x/ns/r:t@-#beijing"])
    assert missing.exit_code == 1
    assert "no record" in missing.output


def test_rejected_lists_events_with_their_reason(filled):
    result = runner.invoke(app, ["ledger", "rejected"])
    assert result.exit_code == 0, result.output
    assert "no digest in payload" in result.output and "1 event(s)" in result.output


def test_a_broken_config_exits_2_with_its_problems(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {}\ntargets: []\n")
    monkeypatch.setenv("ACRSYNC_CONFIG", str(bad))
    result = runner.invoke(app, ["ledger", "list"])
    assert result.exit_code == 2
    assert "source.account_id" in result.output
