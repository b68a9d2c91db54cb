"""`acrsync ledger ...` as a user runs it, on a SQLite ledger (no cloud needed): init that tells the truth,
browsing with totals, cursors, short keys, and tables as wide as the terminal."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from acrsync.ledger import ImageRef, Origin, Record, Status
from acrsync.ledger.sqlite import SqliteLedger
from tests.cli.cli_world import sqlite_config

INSTANCE = "cri-demosource01"
N = 230


def digest(i: int) -> str:
    return hashlib.sha256(f"image-{i}".encode()).hexdigest()


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> Path:
    """A ledger of N records (every 10th in ERROR) with long repository names, made once per module."""
    db = tmp_path_factory.mktemp("ledger") / "ledger.db"
    led = SqliteLedger(db)
    now = time.time()
    for i in range(N):
        img = ImageRef(instance_id=INSTANCE, namespace="team-a",
                       repo=f"a-rather-long-service-name-number-{i % 3}",
                       tag=f"v1.{i}", digest="sha256:" + digest(i))
        led.create_if_absent(Record(image=img, target="beijing-prod", origin=Origin.PUSH, created_at=now,
                                    updated_at=now, status=Status.ERROR if i % 10 == 0 else Status.SUCCESS))
    led.close()
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


@pytest.fixture
def cfg(tmp_path, filled) -> Path:
    db = tmp_path / "ledger.db"
    shutil.copy(filled, db)
    return sqlite_config(tmp_path, db)


def test_list_says_how_many_of_how_many_and_pages_with_a_cursor(acrsync, cfg):
    first = acrsync("ledger", "list", "--limit", "5", "--config", str(cfg))
    assert first.code == 0, first.both
    assert f"5 of {N} record(s)" in first.out and "--after " in first.out
    cursor = first.out.split("--after ", 1)[1].split()[0]
    page = json.loads(acrsync("ledger", "list", "-n", "5", "--after", cursor, "-o", "json",
                              "--config", str(cfg)).out)
    everything = json.loads(acrsync("ledger", "list", "--all", "-o", "json", "--config", str(cfg)).out)
    assert len(everything) == N and all(r["key"] and r["short_key"] for r in everything)
    keys = [r["key"] for r in everything]
    assert keys == sorted(keys)
    assert [r["key"] for r in page] == keys[5:10]          # the cursor continues where the page ended
    errors = acrsync("ledger", "list", "--status", "error", "-n", "3", "--config", str(cfg))
    assert f"3 of {N // 10} record(s)" in errors.out


def test_show_takes_the_key_list_shows_a_unique_short_digest_and_sha256(acrsync, cfg):
    listed = json.loads(acrsync("ledger", "list", "-n", "1", "-o", "json", "--config", str(cfg)).out)[0]
    full, short = listed["key"], listed["short_key"]
    bare = listed["image"]["digest"].removeprefix("sha256:")
    for key in (full, short, bare[:10], "sha256:" + bare, f"sha256:{bare[:8]}#beijing-prod"):
        r = acrsync("ledger", "show", key, "--config", str(cfg))
        assert r.code == 0, (key, r.both)
        assert json.loads(r.out)["key"] == full
    table = acrsync("ledger", "show", short, "-o", "table", "--config", str(cfg))
    assert table.code == 0 and "beijing-prod" in table.out
    missing = acrsync("ledger", "show", "ffff0000", "--config", str(cfg))
    assert missing.code == 1 and "no record" in missing.err
    ambiguous = acrsync("ledger", "show", "team-a/a-rather-long-service-name-number-0:v1.0@-",
                        "--config", str(cfg))
    assert ambiguous.code in (1, 2) and "Traceback" not in ambiguous.both


def test_tables_fit_the_terminal_and_cut_the_name_not_the_digest(acrsync, cfg):
    listed = json.loads(acrsync("ledger", "list", "-n", "3", "-o", "json", "--config", str(cfg)).out)
    for width in (60, 100, 200):
        r = acrsync("ledger", "list", "-n", "3", "--config", str(cfg), env={"COLUMNS": str(width)})
        table = [line for line in r.out.splitlines() if line.startswith(("key", "team-a", "tea"))]
        assert table and all(len(line.rstrip()) <= width for line in table), (width, r.out)
        for rec in listed:
            shown = rec["image"]["digest"].removeprefix("sha256:")[:12] + "#beijing-prod"
            assert shown in r.out, (width, r.out)
    narrow = acrsync("ledger", "list", "-n", "1", "--config", str(cfg), env={"COLUMNS": "60"}).out
    assert "…" in narrow                                    # the long repository name, cut in its middle
    wide = acrsync("ledger", "list", "-n", "1", "--config", str(cfg), env={"COLUMNS": "200"}).out
    assert "a-rather-long-service-name-number-0" in wide


def test_init_on_a_fresh_path_checks_a_write(acrsync, tmp_path):
    r = acrsync("ledger", "init", "--config", str(sqlite_config(tmp_path)))
    assert r.code == 0 and "ledger ready" in r.out and "write checked" in r.out


def _immutable(path: Path) -> bool:
    """chattr +i (root) or chmod 444 (a normal user): either way this process cannot write ``path``."""
    if os.geteuid() == 0:
        return shutil.which("chattr") is not None and subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True).returncode == 0
    path.chmod(0o444)
    path.parent.chmod(0o555)
    return True


def _mutable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        path.parent.chmod(0o755)
        path.chmod(0o644)


def test_init_on_a_ledger_it_cannot_write_names_the_permission(acrsync, cfg, tmp_path):
    db = tmp_path / "ledger.db"
    # as root only an immutable file (chattr +i, e2fsprogs) refuses writes: without it the test cannot run
    assert _immutable(db), "cannot make a file unwritable for this user here: install e2fsprogs (chattr)"
    try:
        before = db.read_bytes()
        r = acrsync("ledger", "init", "--config", str(cfg))
        assert r.code == 1, r.both
        assert "ledger ready" not in r.out and "cannot write" in r.err and "Fix:" in r.err
        assert "Traceback" not in r.both and db.read_bytes() == before
    finally:
        _mutable(db)


def test_init_on_a_corrupt_ledger_says_so_and_never_overwrites_it(acrsync, cfg, tmp_path):
    db = tmp_path / "ledger.db"
    raw = bytearray(db.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 16384] = b"\xff" * 16384            # pages in the middle of the file, not its header
    db.write_bytes(bytes(raw))
    before = db.read_bytes()
    r = acrsync("ledger", "init", "--config", str(cfg))
    assert r.code == 1, r.both
    assert "corrupt" in r.err and "left it untouched" in r.err and "Traceback" not in r.both
    assert db.read_bytes() == before
    garbage = tmp_path / "ledger.db"
    garbage.write_bytes(b"this is not a database" * 100)
    r = acrsync("ledger", "init", "--config", str(cfg))
    assert r.code == 1 and "corrupt" in r.err and garbage.read_bytes() == b"this is not a database" * 100
    listing = acrsync("ledger", "list", "--config", str(cfg))
    assert listing.code == 1 and "Traceback" not in listing.both
