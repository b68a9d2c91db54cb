"""acrsync.jsonlog: one formatter builds a JSON line from a LogRecord and its ``extra`` fields; request id
from the context; secrets never logged."""

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
    fmt = jsonlog.JsonFormatter()
    return [json.loads(fmt.format(r)) for r in caplog.records if r.name == "acrsync.test.jsonlog"]


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
    text = json.dumps({"token": SECRET, "name": "api",
                       "nested": {"SecurityToken": SECRET}}) + f" a=1&secret={SECRET}"
    out = jsonlog.scrub_text(text)
    assert SECRET not in out
    assert '"name": "api"' in out and "a=1" in out


def test_values_that_are_not_json_are_rendered(logger, caplog):
    class Image(BaseModel):
        repo: str
        tag: str

    jsonlog.log_decision(logger, "x", image=Image(repo="team-a/api", tag="v1"), when=object(),
                         raw=b"\xff\x00",
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


def test_the_message_stays_text_and_fields_stay_fields(logger, caplog):
    jsonlog.log_decision(logger, "push decided", target="beijing")
    [record] = [r for r in caplog.records if r.name == "acrsync.test.jsonlog"]
    assert record.getMessage() == "push decided"
    assert record.target == "beijing"


def test_plain_log_calls_with_extra_become_the_same_lines(logger, caplog):
    token = jsonlog.set_request_id("1-extra")
    try:
        logger.warning("retrying %s after %s", "cr:GetRepoTag", "Throttling",
                       extra={"action": "cr:GetRepoTag", "attempt": 2, "security_token": SECRET})
        [rec] = _lines(caplog)     # a stream handler formats at once, inside the invocation
    finally:
        jsonlog.reset_request_id(token)
    assert rec["msg"] == "retrying cr:GetRepoTag after Throttling" and rec["level"] == "WARNING"
    assert rec["action"] == "cr:GetRepoTag" and rec["attempt"] == 2 and rec["request_id"] == "1-extra"
    assert rec["security_token"] == jsonlog.MASK


def test_fields_named_like_record_attributes_are_kept(logger, caplog):
    line = jsonlog.log_decision(logger, "x", name="api", module="m", message="m2")
    rec = json.loads(line)
    assert rec["field_name"] == "api" and rec["field_module"] == "m" and rec["field_message"] == "m2"
    assert rec["msg"] == "x"


def test_an_exception_is_formatted_with_its_secrets_masked(logger, caplog):
    try:
        raise RuntimeError(f"failed calling /hook?token={SECRET}")
    except RuntimeError:
        logger.exception("boom")
    [rec] = _lines(caplog)
    assert "RuntimeError" in rec["exception"] and SECRET not in rec["exception"]


def test_install_sends_json_lines_to_stderr_once(capsys):
    name = "acrsync.test.jsonlog.installed"
    jsonlog.install(name)
    log = jsonlog.install(name)
    assert len(log.handlers) == 1 and log.propagate is False
    log.info("hello", extra={"target": "beijing", "password": SECRET})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    rec = json.loads(err[0])
    assert rec["msg"] == "hello" and rec["target"] == "beijing" and rec["password"] == jsonlog.MASK
