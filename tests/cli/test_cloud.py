"""`acrsync invoke | reconcile | grants` against one localcloud process, as the RAM user acrsync-cli of
account A (made-up keys of scenarios/demo.yaml): reasons, exit codes, JSON Lines, progress, flags."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cli.cli_world import ACRSYNC, ROOT, base_env
from tests.demo_world import C_ADMIN_KEY_ID, C_ADMIN_SECRET, CLI_KEY_ID

PUSH = json.loads((ROOT / "events" / "push_cloudevent.json").read_text())


def event_file(tmp_path: Path, name: str, **data) -> Path:
    """The sample push CloudEvent with other ``data`` (None drops a key), e.g. an image never pushed."""
    doc = json.loads(json.dumps(PUSH))
    doc["id"] = f"cli-test-{name}"
    for k, v in data.items():
        if v is None:
            doc["data"].pop(k, None)
        else:
            doc["data"][k] = v
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def pushed(cloud, ns: str, repo: str, tag: str) -> dict:
    """Push an image into localcloud's source instance; the CloudEvent ACR would emit for it."""
    return cloud.control("push", {"instance_id": "cri-demosource01", "namespace": ns,
                                  "repo": repo, "tag": tag})


@pytest.fixture(scope="module")
def config(cloud, tmp_path_factory) -> Path:
    """examples/localcloud.acrsync.yaml, its Tablestore ledger created with `acrsync ledger init`."""
    path = tmp_path_factory.mktemp("cfg") / "acrsync.yaml"
    path.write_text((ROOT / "examples" / "localcloud.acrsync.yaml").read_text())
    return path


def test_ledger_init_against_tablestore(acrsync, cli_env, config):
    r = acrsync("ledger", "init", "--config", str(config), env=cli_env)
    assert r.code == 0 and "ledger ready: tablestore" in r.out, r.both


def test_invoke_gives_each_rejected_failed_or_blocked_item_its_reason_and_exits_1(acrsync, cloud, cli_env,
                                                                                  config, tmp_path):
    run = lambda *a: acrsync("invoke", "on_push", *a, "--config", str(config),  # noqa: E731
                             env=cli_env, cwd=ROOT)
    bad = run("--event", "events/malformed.json")
    assert bad.code == 1 and "rejected" in bad.out and "acrsync ledger rejected" in bad.out
    assert "'data' is missing" in bad.out and bad.err == ""
    webhook = run("--event", "events/webhook_http.json")
    assert webhook.code == 1 and "HTTP 401" in webhook.out
    gone = event_file(tmp_path, "gone", RepoName="web", Tag="v9.9.9", Digest=None, RepoId=None)
    missing = run("--event", str(gone))
    assert missing.code == 1 and "the tag no longer exists on the source" in missing.out, missing.both
    image = pushed(cloud, "team-a", "worker", "v1.0.0")["event"]
    blocked_file = tmp_path / "blocked.json"
    blocked_file.write_text(json.dumps(image))
    blocked = run("--event", str(blocked_file), "-o", "json")
    assert blocked.code == 1, blocked.both                 # shanghai-dr has no grant: blocked, with why
    out = json.loads(blocked.out)
    assert out["targets"]["shanghai-dr"]["blocked"] == 1
    assert any(i["outcome"] == "blocked" and "ROLE_MISSING" in i["why"] for i in out["items"])
    covered_file = tmp_path / "covered.json"
    covered_file.write_text(json.dumps(pushed(cloud, "team-b", "batch", "v7.0")["event"]))
    covered = run("--event", str(covered_file))
    assert covered.code == 0, covered.both                 # covered by a rule for B, out of scope for C
    assert "covered 1" in covered.out and "out of scope" in covered.out


def test_progress_bar_on_a_terminal_and_nothing_but_the_result_off_it(acrsync, cli_env, config):
    args = [str(ACRSYNC), "invoke", "on_push", "--event", "events/push_batch.json", "--config", str(config)]
    off = acrsync(*args[1:], env=cli_env, cwd=ROOT)
    assert off.err == "" and "target beijing-prod" in off.out, off.both
    master, slave = pty.openpty()
    env = {**base_env(Path(os.environ.get("HOME", "/tmp"))), **cli_env, "COLUMNS": "100"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    assert b"on_push" in seen and b"3/3" in seen, seen          # the bar: label, done/total
    assert "target beijing-prod" in out and "on_push" not in out   # the result alone on stdout


def test_reconcile_exits_1_when_records_end_in_error_and_dry_run_counts_first(acrsync, cloud, cli_env, config,
                                                                               tmp_path):
    cloud.control("acr/task-faults", {"repo": "api", "tag": "v3.0.0", "fail_next": 1,
                                      "issue": "NETWORK_ERROR"})
    event = tmp_path / "api.json"
    event.write_text(json.dumps(pushed(cloud, "team-a", "api", "v3.0.0")["event"]))
    acrsync("invoke", "on_push", "--event", str(event), "--config", str(config), env=cli_env)
    cloud.control("clock", {"advance_seconds": 10})
    dry = acrsync("reconcile", "--dry-run", "--config", str(config), env=cli_env)
    first = dry.out.splitlines()[0]
    assert first.startswith("dry run: nothing was changed. Would do:") and "update" in first, dry.out
    dry_json = json.loads(acrsync("reconcile", "--dry-run", "-o", "json", "--config",
                                  str(config), env=cli_env).out)
    assert dry_json["dry_run"] is True and list(dry_json)[:2] == ["dry_run", "would"] and dry_json["planned"]
    once = acrsync("reconcile", "--once", "--config", str(config), env=cli_env)
    assert once.code == 1, once.both
    assert "ERROR 1" in once.out and "acrsync ledger list --status error" in once.out
    errors = json.loads(acrsync("ledger", "list", "--status", "ERROR", "-o", "json", "--config", str(config),
                                env=cli_env).out)
    assert [r["image"]["tag"] for r in errors] == ["v3.0.0"]


def test_reconcile_clean_exits_0(acrsync, cli_env, config, tmp_path):
    clean = tmp_path / "clean.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["ledger"]["table_prefix"] = "acrsyncclean"     # the CLI user may create acrsync* tables only
    clean.write_text(yaml.safe_dump(doc))
    assert acrsync("ledger", "init", "--config", str(clean), env=cli_env).code == 0
    r = acrsync("reconcile", "--config", str(clean), env=cli_env)
    assert r.code == 0 and r.out.startswith("reconcile: "), r.both


def test_reconcile_watch_writes_one_json_object_per_run(acrsync, cli_env, config):
    assert acrsync("ledger", "init", "--config", str(config), env=cli_env).code == 0
    env = {**base_env(Path("/tmp")), **cli_env}
    proc = subprocess.Popen([str(ACRSYNC), "reconcile", "--watch", "--interval", "1",
                             "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    runs = [json.loads(line) for line in lines]
    assert all("records_seen" in r and "at" in r for r in runs) and "\n" not in lines[0].rstrip("\n")
    assert proc.returncode == 0 and "Traceback" not in err


def test_refused_keys_are_one_credentials_finding_naming_the_key(acrsync, cloud, config):
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": CLI_KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret",
           "ACRSYNC_ENDPOINT": cloud.url}
    r = acrsync("grants", "verify", "--config", str(config), env=env)
    assert r.code == 2, r.both
    assert r.out.count("CREDENTIALS_INVALID") == 1 and CLI_KEY_ID in r.out and "1111111111111111" in r.out
    assert "check source.instance_id" not in r.out and "Traceback" not in r.both
    unknown = {**env, "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIMADEUPNOSUCHKEY01"}
    r = acrsync("reconcile", "--config", str(config), env=unknown)
    assert r.code == 2 and "LTAIMADEUPNOSUCHKEY01" in r.err and "Traceback" not in r.both


def test_profile_region_and_endpoint_flags_stand_for_the_environment(acrsync, cloud, config):
    profiles = acrsync.home / ".aliyun" / "config.json"
    profiles.parent.mkdir(parents=True, exist_ok=True)
    from tests.demo_world import CLI_SECRET

    profiles.write_text(json.dumps({"current": "other", "profiles": [
        {"name": "demo", "mode": "AK", "access_key_id": CLI_KEY_ID, "access_key_secret": CLI_SECRET,
         "region_id": "cn-hangzhou"}]}))
    r = acrsync("grants", "verify", "--profile", "demo", "--endpoint", cloud.url, "--region", "cn-hangzhou",
                "--config", str(config))
    assert r.code == 1 and "== target beijing-prod: clean" in r.out and "ROLE_MISSING" in r.out, r.both
    init = acrsync("ledger", "init", "--profile", "demo", "--endpoint", cloud.url, "--config", str(config))
    assert init.code == 0 and "ledger ready" in init.out, init.both


def test_apply_with_yes_does_not_print_the_commands_again(acrsync, cloud, config):
    admin = {"ALIBABA_CLOUD_ACCESS_KEY_ID": C_ADMIN_KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": C_ADMIN_SECRET,
             "ACRSYNC_ENDPOINT": cloud.url}
    plan = acrsync("grants", "apply", "--target", "shanghai-dr", "--config", str(config), env=admin)
    assert plan.code == 0 and "$ aliyun ram CreateRole" in plan.out, plan.both
    done = acrsync("grants", "apply", "--target", "shanghai-dr", "--yes", "--config", str(config), env=admin)
    assert done.code == 0 and "change(s) done" in done.out and "$ aliyun" not in done.out, done.both
    again = acrsync("grants", "apply", "--target", "shanghai-dr", "--yes", "--config", str(config), env=admin)
    assert again.code == 0 and "nothing to change" in again.out
