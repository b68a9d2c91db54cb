"""Conventions a user of well-kept CLIs expects, and errors that never reach them as a trace: no cloud
needed (a closed port stands for an unreachable one)."""

from __future__ import annotations

import re
import socket

import pytest

from tests.cli.cli_world import sqlite_config

COMMANDS = [[], ["ledger"], ["ledger", "init"], ["ledger", "list"], ["ledger", "show"],
            ["ledger", "rejected"],
            ["grants"], ["grants", "print"], ["grants", "verify"], ["grants", "apply"], ["invoke"],
            ["reconcile"], ["emulator"], ["permissions"]]
CLOUD_COMMANDS = [["ledger", "init"], ["ledger", "list"], ["ledger", "show"], ["ledger", "rejected"],
                  ["grants", "verify"], ["grants", "apply"], ["invoke"], ["reconcile"]]
HELP: dict[tuple, str] = {}        # help texts read once, shared by the tests of this module
RESULT_COMMANDS = [["ledger", "list"], ["ledger", "show"], ["ledger", "rejected"], ["grants", "print"],
                   ["grants", "verify"], ["grants", "apply"], ["invoke"], ["reconcile"]]


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"          # nothing listens there once the socket is closed


def test_version_and_short_help(acrsync):
    v = acrsync("--version")
    assert v.code == 0 and re.fullmatch(r"acrsync \d+\.\d+\.\d+\S*\n", v.out)
    assert acrsync("ledger", "list", "-h").out == acrsync("ledger", "list", "--help").out
    for args in COMMANDS:
        short = acrsync(*args, "-h")
        assert short.code == 0, args
        assert "<bool>" not in short.out and "<str>" not in short.out, (args, short.out)
        assert not re.search(r"\{[a-z_]+\}", short.out), (args, short.out)
        HELP[tuple(args)] = short.out


def test_output_table_json_and_cloud_flags_on_every_command_that_needs_them(acrsync):
    def text_of(args):
        return HELP.get(tuple(args)) or acrsync(*args, "-h").out

    for args in RESULT_COMMANDS:
        text = text_of(args)
        assert "--output table|json" in text, args
    for args in CLOUD_COMMANDS:
        text = text_of(args)
        for flag in ("--profile", "--region", "--endpoint"):
            assert flag in text, (args, flag)


def test_usage_error_exits_2_without_a_trace(acrsync):
    r = acrsync("ledger", "list", "--output", "yaml")
    assert r.code == 2 and "Traceback" not in r.both
    r = acrsync("invoke", "nope", "--event", "/dev/null")
    assert r.code == 2


def test_output_spelling_and_case_are_the_same_everywhere(acrsync, tmp_path):
    cfg = sqlite_config(tmp_path)
    for spelling in ("json", "JSON", "Json"):
        r = acrsync("ledger", "list", "-o", spelling, "--config", str(cfg))
        assert r.code == 0 and r.out.strip().startswith("["), (spelling, r.both)
    r = acrsync("grants", "print", "--target", "beijing-prod", "--output", "JSON", "--config", str(cfg))
    assert r.code == 0 and '"role_name"' in r.out


def test_missing_credentials_are_a_config_error_in_one_line(acrsync, tmp_path):
    cfg = sqlite_config(tmp_path)
    for args in (["grants", "verify"], ["reconcile", "--once"],
                 ["invoke", "on_push", "--event", "events/push_cloudevent.json"]):
        r = acrsync(*args, "--config", str(cfg), "--endpoint", closed_port(), cwd=_root())
        assert r.code == 2, (args, r.both)
        assert "Traceback" not in r.both and "CredentialException" not in r.both, r.both
        assert "no Alibaba Cloud credentials" in r.err and "ALIBABA_CLOUD_ACCESS_KEY_ID" in r.err
        assert len(r.err.strip().splitlines()) == 1, r.err


def test_unknown_profile_is_a_config_error(acrsync, tmp_path):
    cfg = sqlite_config(tmp_path)
    r = acrsync("grants", "verify", "--profile", "nope", "--config", str(cfg), "--endpoint", closed_port())
    assert r.code == 2 and "profile 'nope'" in r.err and "Traceback" not in r.both


def test_unreachable_endpoint_is_one_finding_in_seconds(acrsync, tmp_path):
    cfg = sqlite_config(tmp_path)
    url = closed_port()
    keys = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIMADEUPKEY0000000001",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "made-up"}
    r = acrsync("grants", "verify", "--config", str(cfg), "--endpoint", url, env=keys)
    assert r.code == 1, r.both
    assert r.out.count("CLOUD_UNREACHABLE") == 1 and url.removeprefix("http://") in r.out
    assert "check source.instance_id" not in r.out and "Traceback" not in r.both
    assert r.seconds < 20, r.seconds            # a short bounded retry, not a minute of back-off
    j = acrsync("grants", "verify", "-o", "json", "--config", str(cfg), "--endpoint", url, env=keys)
    assert j.code == 1 and '"CLOUD_UNREACHABLE"' in j.out


def test_unreachable_endpoint_in_reconcile_and_invoke_is_one_line(acrsync, tmp_path):
    cfg = sqlite_config(tmp_path)
    keys = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIMADEUPKEY0000000001",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "made-up"}
    url = closed_port()
    for args in (["reconcile", "--once"], ["invoke", "reconcile", "--event", "events/timer_reconcile.json"]):
        r = acrsync(*args, "--config", str(cfg), "--endpoint", url, env=keys, cwd=_root())
        assert r.code == 1, (args, r.both)
        assert "Traceback" not in r.both and r.err.startswith("acrsync: cannot reach 127.0.0.1:"), r.err
        assert len(r.err.strip().splitlines()) == 1
        debug = acrsync("--debug", *args, "--config", str(cfg), "--endpoint", url, env=keys, cwd=_root())
        assert debug.code == 1 and "Traceback" in debug.err
        env_debug = acrsync(*args, "--config", str(cfg), "--endpoint", url,
                            env={**keys, "ACRSYNC_DEBUG": "1"},
                            cwd=_root())
        assert "Traceback" in env_debug.err


@pytest.mark.parametrize("bad", ["http://", "ftp://x"])
def test_a_bad_endpoint_flag_is_a_usage_error(acrsync, tmp_path, bad):
    r = acrsync("grants", "verify", "--endpoint", bad, "--config", str(sqlite_config(tmp_path)))
    assert r.code == 2 and "--endpoint" in r.err


def _root():
    from tests.cli.cli_world import ROOT

    return ROOT


def test_ctrl_c_in_a_command_exits_130_without_a_trace(monkeypatch, capsys):
    # 128 + SIGINT, as shells and scripts expect; backfill has its own resumable stop (tests/backfill).
    from pathlib import Path

    import acrsync.cli as cli
    import acrsync.cli.permissions as permissions_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(permissions_cli, "_text", interrupted)
    config = Path(__file__).resolve().parents[2] / "examples" / "localcloud.acrsync.yaml"
    monkeypatch.setenv("ACRSYNC_CONFIG", str(config))
    assert cli.run(["permissions", "--principal", "function"]) == 130
    assert "Traceback" not in capsys.readouterr().err
