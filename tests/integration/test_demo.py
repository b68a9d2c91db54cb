"""`make demo` runs end to end: localcloud as its own process, the FC entry points, the CLI."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_to_the_end():
    done = subprocess.run([sys.executable, "-m", "acrsync.demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    # the story it tells: blocked by the missing grant, fixed by apply, retried after a failure
    assert "ROLE_MISSING" in out
    assert "CROSS_ACCOUNT_AUTH_FAILED" in out
    assert "target shanghai-dr: clean" in out
    assert "retried=1" in out
    assert "Native C++" not in out
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
