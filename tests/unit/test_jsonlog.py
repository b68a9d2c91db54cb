"""acrsync.jsonlog: one JSON line per decision, request id from the context, secrets never logged."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import BaseModel

from acrsync import jsonlog

SECRET = "s3cr3t-value-made-up-for-tests"


@pytest.fixture
def logger(caplog):
    caplog.set_level(logging.DEBUG, logger="acrsync.test.jsonlog")
    return logging.getLogger("acrsync.test.jsonlog")


def _lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "acrsync.test.jsonlog"]


def test_one_json_line_with_the_standard_keys(logger, caplog):
    line = jsonlog.log_decision(logger, "push decided", event_id="e1", target="beijing", outcome="TASK")
    [rec] = _lines(caplog)
    assert rec == json.loads(line)
    assert rec["msg"] == "push decided" and rec["level"] == "INFO"
    assert rec["event_id"] == "e1" and rec["target"] == "beijing" and rec["outcome"] == "TASK"
    assert rec["ts"].endswith("Z") and "T" in rec["ts"]
    assert "\n" not in line
    assert caplog.records[-1].levelno == logging.INFO


def test_level_can_be_named_or_numeric(logger, caplog):
    jsonlog.log_decision(logger, "a", level="warning")
    jsonlog.log_decision(logger, "b", level=logging.ERROR)
    assert [r["level"] for r in _lines(caplog)] == ["WARNING", "ERROR"]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.ERROR]


def test_request_id_comes_from_the_context_and_is_reset(logger, caplog):
    token = jsonlog.set_request_id("1-demo-request")
    try:
        jsonlog.log_decision(logger, "inside")
        assert jsonlog.get_request_id() == "1-demo-request"
    finally:
        jsonlog.reset_request_id(token)
    jsonlog.log_decision(logger, "outside")
    inside, outside = _lines(caplog)
    assert inside["request_id"] == "1-demo-request"
    assert "request_id" not in outside


def test_disabled_level_writes_nothing(caplog):
    log = logging.getLogger("acrsync.test.jsonlog.quiet")
    log.setLevel(logging.WARNING)
    assert jsonlog.log_decision(log, "debug only", level=logging.DEBUG, x=1) is None
    assert not [r for r in caplog.records if r.name == log.name]


@pytest.mark.parametrize("name", [
    "token", "webhook_token", "Token", "x-acrsync-token", "secret", "client_secret", "password",
    "access_key_id", "access_key_secret", "AccessKeySecret", "accessKeyId", "security_token",
    "SecurityToken", "authorization", "Authorization", "signature",
])
def test_secret_named_fields_are_masked(logger, caplog, name):
    line = jsonlog.log_decision(logger, "x", **{name: SECRET})
    assert SECRET not in line
    [rec] = _lines(caplog)
    assert rec[name] == jsonlog.MASK


@pytest.mark.parametrize("name", ["event_id", "target", "namespace", "repo", "tag", "digest", "reason"])
def test_ordinary_fields_are_kept(name):
    assert not jsonlog.is_secret_name(name)


def test_nested_secrets_and_secrets_in_strings_are_masked(logger, caplog):
    event = {"headers": {"X-Acrsync-Token": SECRET, "Content-Type": "application/json"},
             "queryParameters": {"token": SECRET},
             "rawPath": f"/hook?token={SECRET}&x=1",
             "list": [{"password": SECRET}],
             "body": json.dumps({"access_key_secret": SECRET, "tag": "v1"})}
    line = jsonlog.log_decision(logger, f"got /hook?token={SECRET}", event=event)
    assert SECRET not in line
    rec = _lines(caplog)[0]
    assert rec["event"]["headers"]["Content-Type"] == "application/json"
    assert rec["event"]["rawPath"] == "/hook?token=***&x=1"
    assert json.loads(rec["event"]["body"]) == {"access_key_secret": "***", "tag": "v1"}
    assert event["queryParameters"]["token"] == SECRET          # the caller's object is not changed


def test_scrub_text_masks_json_members_and_query_pairs_only():
    text = json.dumps({"token": SECRET, "name": "api", "nested": {"SecurityToken": SECRET}}) + f" a=1&secret={SECRET}"
    out = jsonlog.scrub_text(text)
    assert SECRET not in out
    assert '"name": "api"' in out and "a=1" in out


def test_values_that_are_not_json_are_rendered(logger, caplog):
    class Image(BaseModel):
        repo: str
        tag: str

    jsonlog.log_decision(logger, "x", image=Image(repo="team-a/api", tag="v1"), when=object(), raw=b"\xff\x00",
                         ids={"b"})
    rec = _lines(caplog)[0]
    assert rec["image"] == {"repo": "team-a/api", "tag": "v1"}
    assert rec["when"].startswith("<object object")
    assert rec["raw"] == "base64:/wA="
    assert rec["ids"] == ["b"]


def test_reserved_names_do_not_overwrite_the_line(logger, caplog):
    token = jsonlog.set_request_id("1-real")
    try:
        jsonlog.log_decision(logger, "real message", ts="fake", request_id="fake")
    finally:
        jsonlog.reset_request_id(token)
    rec = _lines(caplog)[0]
    assert rec["msg"] == "real message" and rec["request_id"] == "1-real"
    assert rec["field_ts"] == "fake" and rec["field_request_id"] == "fake"
