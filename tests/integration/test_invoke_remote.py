"""`acrsync invoke --remote` and acrsync's Fc adapter against localcloud's Function Compute: the REAL
functions/on_push runs in localcloud's runtime (a subprocess with the acrsync-fc role's STS keys) and creates
the sync task in the same localcloud. All accounts and keys are the demo's made-up ones."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from acrsync.cli import app
from acrsync.cloud import CloudError
from localcloud.fc.models import backend_of
from tests.demo_world import (
    ACCOUNT_A,
    CLI_KEY_ID,
    CLI_SECRET,
    FC_ROLE_ARN,
    ROOT,
    SOURCE_INSTANCE,
    TARGET_INSTANCE,
)
from tests.integration.e2e import config_doc, scenario, tasks_for

EVENT = ROOT / "events" / "push_cloudevent.json"
FIXTURES = ROOT / "tests" / "localcloud" / "fc_fixtures" / "basic"
SAMPLE = json.loads(EVENT.read_text())["data"]          # team-a/api:v1.2.3 and its digest


@pytest.fixture
def remote(cloud_factory, tmp_path):
    """localcloud on the demo scenario, its functions reading a config written here (sqlite ledger)."""
    config = tmp_path / "acrsync.yaml"
    config.write_text(yaml.safe_dump(config_doc(tmp_path / "ledger.db")))
    doc = scenario()
    for function in doc["functions"]:
        function["environment"]["ACRSYNC_CONFIG"] = str(config)
    doc["functions"].append({"name": "fail", "account": ACCOUNT_A, "region": "cn-hangzhou",
                             "code": str(FIXTURES),
                             "handler": "index.fail", "timeout": 10, "role": FC_ROLE_ARN})
    cloud = cloud_factory(doc)
    cloud.push(SOURCE_INSTANCE, SAMPLE["RepoNamespaceName"], SAMPLE["RepoName"], SAMPLE["Tag"],
               SAMPLE["Digest"])
    return cloud, config


def run_cli(cloud, *args: str):
    env = {"ACRSYNC_ENDPOINT": cloud.url, "ALIBABA_CLOUD_ACCESS_KEY_ID": CLI_KEY_ID,
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CLI_SECRET, "ALIBABA_CLOUD_SECURITY_TOKEN": None,
           "ALIBABA_CLOUD_REGION_ID": None, "FC_REGION": None, "ACRSYNC_CONFIG": None}
    return CliRunner().invoke(app, ["invoke", *args], env=env)


def test_invoke_remote_runs_the_deployed_on_push_which_creates_the_sync_task(remote):
    cloud, config = remote
    result = run_cli(cloud, "on_push", "--event", str(EVENT), "--remote", "--config",
                     str(config), "-o", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["targets"]["beijing"]["created"] == 1
    [task] = tasks_for(cloud, SAMPLE["RepoName"], SAMPLE["Tag"])
    assert (task.target_instance_id, task.trigger) == (TARGET_INSTANCE, "INITIATIVE")
    [record] = backend_of(cloud.world).views("acrsync-on-push")
    assert (record["status"], record["trigger"]) == ("succeeded", "api")
    assert any(task.task_id in line for line in record["logs"])       # its decision log line


def test_invoke_remote_async_queues_and_the_function_finishes_later(remote):
    cloud, config = remote
    result = run_cli(cloud, "on_push", "--event", str(EVENT), "--remote", "--async", "--region",
                     "cn-hangzhou")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"function": "acrsync-on-push", "region": "cn-hangzhou",
                                         "invocation": "Async", "status": "queued"}
    [record] = backend_of(cloud.world).wait(60)
    assert record["status"] == "succeeded", record["error"]
    assert len(tasks_for(cloud, SAMPLE["RepoName"], SAMPLE["Tag"])) == 1


def test_invoke_remote_reports_a_function_error_and_exits_1(remote):
    cloud, _ = remote
    result = run_cli(cloud, "on_push", "--event", str(EVENT), "--remote", "--function-name", "fail",
                     "--region", "cn-hangzhou")
    assert result.exit_code == 1
    assert "UnhandledInvocationError" in result.output and "ValueError" in result.output
    result = run_cli(cloud, "reconcile", "--event", str(EVENT), "--remote", "--function-name", "missing",
                     "--region", "cn-hangzhou")
    assert result.exit_code == 1 and "FunctionNotFound" in result.output


def test_invoke_remote_needs_a_region_and_remote_only_options_need_remote(remote):
    cloud, _ = remote
    result = run_cli(cloud, "on_push", "--event", str(EVENT), "--remote")
    assert result.exit_code == 2 and "--region" in result.output
    result = run_cli(cloud, "on_push", "--event", str(EVENT), "--async")
    assert result.exit_code == 2 and "only apply with --remote" in result.output


def test_fc_adapter_against_localcloud(remote, make_session):
    cloud, _ = remote
    fc = make_session(cloud=cloud).fc("cn-hangzhou")
    found = fc.get_function("acrsync-reconcile")
    assert (found["functionName"], found["timeout"], found["role"]) == ("acrsync-reconcile", 600, FC_ROLE_ARN)
    with pytest.raises(CloudError) as err:
        fc.get_function("acrsync-nothing")
    assert (err.value.code, err.value.http_status) == ("FunctionNotFound", 404)
    with pytest.raises(CloudError) as err:
        fc.invoke_function("fail", b'{"why": "made-up"}')
    assert err.value.code == "FunctionError.UnhandledInvocationError"
    assert json.loads(err.value.message)["errorMessage"] == "the event was refused: made-up"
    assert fc.invoke_function("fail", b"{}", async_=True) == b""
    assert [r["status"] for r in backend_of(cloud.world).wait(30)] == ["failed", "failed"]


def test_the_demo_functions_config_path_is_the_documented_one():
    demo = yaml.safe_load((ROOT / "scenarios" / "demo.yaml").read_text())
    for function in demo["functions"]:
        code = ROOT / function["code"]
        assert (code / function["environment"]["ACRSYNC_CONFIG"]).resolve() == \
            (ROOT / ".acrsync" / "demo" / "acrsync.yaml").resolve()
