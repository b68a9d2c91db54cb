"""`make demo` as a newcomer meets it: it runs to the end with reasons and consistent counters, its "Try:"
lines work as typed, and SIGTERM (or Ctrl-C) stops it and its localcloud with no trace left behind."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.cli_world import ROOT, base_env


def demo(**kw) -> subprocess.Popen:
    env = {**base_env(ROOT / ".acrsync"), "COLUMNS": "140", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "acrsync.demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def test_demo_runs_to_the_end_and_its_try_lines_work_as_typed(acrsync):
    proc = demo()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    # the story: blocked by the missing grant, fixed by apply, retried after a failure, with reasons
    assert "ROLE_MISSING" in out and "CROSS_ACCOUNT_AUTH_FAILED" in out
    assert "target shanghai-dr: clean" in out and "retried 1" in out
    assert "covered by sync rule" in out and "out of scope: tag 'latest'" in out
    assert "Native C++" not in out and "Traceback" not in out
    ledger = out[out.index("9. The ledger"):out.index("10. Compliance")]
    assert ledger.count("SUCCESS") == 5 and "BLOCKED" not in ledger
    # it ends with a compliance run: the HTML report's path, and the image pushed before acrsync was deployed
    compliance = out[out.index("10. Compliance"):out.index("11. Backfill")]
    assert "TAG_MISSING" in compliance and "compliance report (HTML): " in compliance
    html = Path(compliance.split("compliance report (HTML): ")[1].split()[0])
    assert html.is_file() and "team-a/web" in html.read_text() and "v1.1.0" in html.read_text()
    backfill = out[out.index("11. Backfill"):]
    assert "backfill plan for target beijing-prod" in backfill and "team-a/web" in backfill
    assert ": done (" in backfill
    applied = out[out.index("--target shanghai-dr --yes"):out.index("$ acrsync grants verify --target")]
    assert "$ aliyun" not in applied                       # nothing printed as if still to run
    for line in out.splitlines():                           # no run says more records changed than it saw
        m = re.search(r"open records checked (\d+)", line)
        if m and "updated" in line:
            raise AssertionError(line)
    tries = out[out.index("Try, from this directory:"):].splitlines()[1:]
    first = shlex.split(tries[0])
    assert (first[0] == "acrsync" or first[0].endswith("/acrsync")) and "--config" in first
    typed = subprocess.run([str(ROOT / first[0]) if "/" in first[0] else first[0], *first[1:]], cwd=ROOT,
                           env=base_env(ROOT / ".acrsync"), capture_output=True, text=True, timeout=120)
    assert typed.returncode == 0, typed.stderr
    assert "aliyuncontainerregistrycrossaccoutsyncrole" in typed.stdout, typed.stderr


def _listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_or_ctrl_c_stops_the_demo_and_its_localcloud_without_a_trace(sig):
    proc = demo()
    url, lines = None, []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"localcloud listening on (http://127\.0\.0\.1:\d+)", line)
        url = url or (m.group(1) if m else None)
        if "Pushes reach" in line:
            break
    assert url and _listening(url), "".join(lines)
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(lines) + rest
    assert proc.returncode == 130, out[-2000:]
    assert "Traceback" not in out and "demo interrupted; localcloud stopped" in out
    assert not _listening(url)
    assert _processes_mentioning(str(ROOT / ".acrsync" / "demo" / "scenario.yaml")) == []
