"""The CLI's pure helpers: the progress display's modes, middle truncation, key parsing."""

from __future__ import annotations

import json

import pytest

from acrsync.cli.ledger import KeyQuery, middle
from acrsync.cli.progress import mode, progress


def test_progress_is_silent_off_a_terminal_and_json_lines_on_request(monkeypatch, capsys):
    monkeypatch.delenv("ACRSYNC_PROGRESS", raising=False)
    assert mode() == "off"                                  # pytest's stderr is not a terminal
    with progress("check", total=2) as bar:
        bar.advance()
        bar.advance()
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv("ACRSYNC_PROGRESS", "jsonl")
    with progress("backfill", total=3) as bar:
        bar.update(done=3)
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert lines[-1] == {"progress": "backfill", "done": 3, "total": 3}


def test_middle_keeps_both_ends():
    cut = middle("team-a/a-very-long-repository-name:v1", 20)
    assert len(cut) == 20 and cut.startswith("team-a/a") and cut.endswith("name:v1") and "…" in cut
    assert middle("short", 20) == "short"


@pytest.mark.parametrize("text, want", [
    ("cri-x/ns/repo:v1@abcdef12#bj", ("cri-x", "ns", "repo", "v1", "abcdef12", "bj")),
    ("ns/repo:v1@sha256:ABCDEF12", (None, "ns", "repo", "v1", "abcdef12", None)),
    ("sha256:abcd1234#bj", (None, None, None, None, "abcd1234", "bj")),
    ("abcd1234", (None, None, None, None, "abcd1234", None)),
])
def test_key_queries(text, want):
    q = KeyQuery.parse(text)
    assert (q.instance, q.namespace, q.repo, q.tag, q.digest, q.target) == want


@pytest.mark.parametrize("text", ["ab", "ns/repo", "zzzzzz", "a/b/c/d:v1"])
def test_key_queries_refuse_what_is_not_a_key(text):
    with pytest.raises(ValueError):
        KeyQuery.parse(text)
