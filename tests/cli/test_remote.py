"""`acrsync emulator` then `acrsync invoke --remote`, as the README tells a newcomer on a fresh clone: no
leftovers of the demo needed, and the emulated functions use the user's config."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.cli.cli_world import ACRSYNC, EXAMPLE, ROOT, base_env
from tests.demo_world import CLI_KEY_ID, CLI_SECRET


@pytest.fixture
def emulator(tmp_path):
    """`acrsync emulator --scenario scenarios/demo.yaml --config MY.yaml`, with a table prefix only MY.yaml
    has."""
    config = tmp_path / "mine.yaml"
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["ledger"]["table_prefix"] = "acrsyncmine"      # the CLI user may create acrsync* tables only
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = base_env(tmp_path)
    proc = subprocess.Popen([str(ACRSYNC), "emulator", "--scenario", "scenarios/demo.yaml",
                             "--config", str(config)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("localcloud listening on "), line + proc.stderr.read()
    yield line.split()[-1], config
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)


def test_invoke_remote_runs_the_function_with_your_config(acrsync, emulator, tmp_path):
    url, config = emulator
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": CLI_KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CLI_SECRET,
           "ACRSYNC_ENDPOINT": url}
    assert acrsync("ledger", "init", "--config", str(config), env=env).code == 0
    body = json.dumps({"instance_id": "cri-demosource01", "namespace": "team-b", "repo": "batch",
                       "tag": "v8.0"}).encode()
    request = urllib.request.Request(f"{url}/_localcloud/push", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        event = json.loads(reply.read())["event"]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    r = acrsync("invoke", "on_push", "--event", str(path), "--remote", "--config", str(config), "-o", "json",
                env=env, timeout=300)
    assert r.code == 0, r.both
    assert json.loads(r.out)["targets"]["beijing-prod"]["covered"] == 1
    # the function wrote to the ledger MY config names (table prefix "acrsyncmine"), which the CLI reads back
    listed = json.loads(acrsync("ledger", "list", "-o", "json", "--config", str(config), env=env).out)
    assert [(x["image"]["repo"], x["status"]) for x in listed] == [("batch", "COVERED")]


def test_emulator_refuses_a_config_that_does_not_exist(acrsync, tmp_path):
    r = acrsync("emulator", "--scenario", str(ROOT / "scenarios" / "demo.yaml"),
                env={"ACRSYNC_CONFIG": str(tmp_path / "nope.yaml")})
    assert r.code == 2 and "does not exist" in r.err


def test_the_example_config_is_the_one_the_readme_names():
    readme = (ROOT / "README.md").read_text()
    assert str(Path(EXAMPLE).relative_to(ROOT)) in readme
    assert "LTAIDEMOACRSYNCCLI0001" in readme and "LTAIDEMOACCOUNTCADMIN01" in readme
