"""The webhook token as s.yaml deploys it: only ``sha256:<hex digest>`` of the token is in the function's
environment, and on_push accepts the token whose digest matches, and nothing else."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from acrsync.events import PushCompleted, Rejected, detect_and_parse

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "webhook_http.json"
TOKEN = "demo-webhook-token-not-secret"     # the made-up token in events/webhook_http.json
SOURCE = "cri-demosource01"                 # made-up demo instance


def _parse(configured: str):
    event = json.loads(SAMPLE.read_text(encoding="utf-8"))
    (item,) = detect_and_parse(event, webhook_token=configured, source_instance_id=SOURCE)
    return item


def test_the_digest_of_the_right_token_is_accepted():
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    assert isinstance(_parse("sha256:" + digest), PushCompleted)
    assert isinstance(_parse("sha256:" + digest.upper()), PushCompleted)


@pytest.mark.parametrize("configured", [
    "sha256:" + hashlib.sha256(b"another-token").hexdigest(),
    "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()[:-1],
    "sha256:",
    "sha256:" + TOKEN,                         # the token itself after the prefix is not its digest
])
def test_anything_else_is_unauthenticated(configured):
    item = _parse(configured)
    assert isinstance(item, Rejected) and item.unauthenticated


def test_the_plain_token_still_works():
    assert isinstance(_parse(TOKEN), PushCompleted)
