"""Pipeline health (pure evaluation of FC replies, and the not-checked path) and the DingTalk notification
(signature, body, verdict changes) against a local HTTP server."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from acrsync.cloud.errors import AccessDenied, NotFound
from acrsync.compliance import notify, pipeline
from acrsync.compliance.pipeline import FunctionState
from acrsync.config import parse_config
from tests.compliance.factory import report

CFG = parse_config({"source": {"account_id": "1", "region": "cn-hangzhou", "instance_id": "cri-src"},
                    "targets": [{"name": "b", "account_id": "2", "region": "cn-beijing",
                                 "instance_id": "cri-t"}]})
PATTERN = json.dumps({"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted"]})


def eb(enabled=True, pattern=PATTERN, name="acr-events"):
    return {"triggerName": name, "triggerType": "eventbridge",
            "triggerConfig": json.dumps({"triggerEnable": enabled, "eventRuleFilterPattern": pattern})}


def timer(enabled=True):
    return {"triggerName": "tick", "triggerType": "timer",
            "triggerConfig": json.dumps({"cronExpression": "0 0 * * * *", "enable": enabled})}


def states(on_push=(eb(),), reconcile=(timer(),), compliance=(timer(),), missing=()):
    def st(name, trig):
        return FunctionState(name, None if name in missing else {"functionName": name}, list(trig))
    return (st("acrsync-on-push", on_push), st("acrsync-reconcile", reconcile),
            st("acrsync-compliance", compliance))


def codes(found):
    return sorted(f.code for f in found)


class TestEvaluate:
    def test_healthy(self):
        assert pipeline.evaluate(CFG, *states()) == []

    def test_function_missing(self):
        found = pipeline.evaluate(CFG, *states(missing=("acrsync-compliance",)))
        assert codes(found) == ["PIPELINE_FUNCTION_MISSING"] and "acrsync-compliance" in found[0].message

    def test_on_push_triggers(self):
        assert codes(pipeline.evaluate(CFG, *states(on_push=()))) == ["PIPELINE_TRIGGER_MISSING"]
        assert codes(pipeline.evaluate(CFG, *states(on_push=(eb(False),)))) == ["PIPELINE_TRIGGER_DISABLED"]
        other = json.dumps({"source": ["acs.oss"]})
        assert codes(pipeline.evaluate(CFG,
                                       *states(on_push=(eb(pattern=other),)))) == ["PIPELINE_TRIGGER_FILTER"]
        sync_only = json.dumps({"source": ["acs.cr"], "type": ["cr:Artifact:SynchronizationCompleted"]})
        assert codes(pipeline.evaluate(CFG, *states(on_push=(eb(pattern=sync_only),)))) \
            == ["PIPELINE_TRIGGER_FILTER"]
        # no filter: all events
        assert pipeline.evaluate(CFG, *states(on_push=(eb(pattern="{}"),))) == []
        http = {"triggerName": "acr-webhook", "triggerType": "http", "triggerConfig": "{}"}
        assert pipeline.evaluate(CFG, *states(on_push=(http,))) == []                     # the webhook path
        assert pipeline.evaluate(CFG, *states(on_push=(eb(False), http))) == []

    def test_timers(self):
        assert codes(pipeline.evaluate(CFG, *states(reconcile=()))) == ["PIPELINE_TIMER_MISSING"]
        assert codes(pipeline.evaluate(CFG,
                                       *states(compliance=(timer(False),)))) == ["PIPELINE_TIMER_DISABLED"]


class FakeFc:
    def __init__(self, error=None):
        self.error = error

    def get_function(self, name):
        if self.error:
            raise self.error
        if name == "acrsync-compliance":
            raise NotFound("no", service="fc", action="GetFunction", code="FunctionNotFound")
        return {"functionName": name}

    def list_triggers(self, name):
        return [eb()] if name == "acrsync-on-push" else [timer()]


def test_check_reads_and_notes_not_checked():
    found, note = pipeline.check(CFG, FakeFc())
    assert note == "checked" and codes(found) == ["PIPELINE_FUNCTION_MISSING"]
    found, note = pipeline.check(CFG, FakeFc(AccessDenied("denied", service="fc", action="GetFunction",
                                                          code="NoPermission")))
    assert note.startswith("not checked: NoPermission") and [f.severity for f in found] == ["info"]
    assert codes(found) == ["PIPELINE_NOT_CHECKED"]
    never = dataclasses.replace(CFG, **{"compliance": dataclasses.replace(CFG.compliance, **{
        "functions": dataclasses.replace(CFG.compliance.functions, check="never")})})
    assert pipeline.check(never, FakeFc()) == ([], "not checked: compliance.functions.check is never")


# ---- DingTalk ----------------------------------------------------------------------------------

class Robot(BaseHTTPRequestHandler):
    received: list = []
    reply = b'{"errcode":0,"errmsg":"ok"}'

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Robot.received.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(Robot.reply)

    def log_message(self, *a):
        pass


@pytest.fixture
def robot():
    Robot.received = []
    server = HTTPServer(("127.0.0.1", 0), Robot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/robot/send"
    server.shutdown()


def test_signed_post_as_dingtalk_describes(robot):
    secret = "SECmade-up-demo-robot-secret"
    ok = notify.send(f"{robot}?access_token=made-up-token&secret={secret}",
                     notify.message(report(12), "compliant"),
                     now_ms=lambda: 1700000000000)
    assert ok
    path, ctype, body = Robot.received[0]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    assert "secret" not in query and query["access_token"] == "made-up-token"
    assert query["timestamp"] == "1700000000000"
    expected = base64.b64encode(hmac.new(secret.encode(), f"1700000000000\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert query["sign"] == expected
    assert ctype == "application/json" and body["msgtype"] == "markdown"
    assert "findings" in body["markdown"]["title"] and "TAG_MISSING" in body["markdown"]["text"]


def test_unsigned_without_secret_and_failures_never_raise(robot):
    assert notify.send(f"{robot}?access_token=t", {"msgtype": "markdown"})
    assert "sign" not in Robot.received[0][0]
    Robot.reply = b'{"errcode":310000,"errmsg":"sign not match"}'
    try:
        assert notify.send(robot, {"msgtype": "markdown"}) is False
    finally:
        Robot.reply = b'{"errcode":0,"errmsg":"ok"}'
    assert notify.send("http://127.0.0.1:9/nothing-listens", {}, timeout=1) is False


def test_verdict_changes():
    bad, good = report(12), report(3)
    assert bad.verdict == "findings" and good.verdict == "compliant"
    assert notify.changed(None, bad) and not notify.changed(None, good)
    assert notify.changed("findings", good) and not notify.changed("findings", bad)
    partial = good.model_copy(update={"complete": False})
    assert not notify.changed("findings", partial)


def test_a_run_notifies_only_when_the_verdict_changes(cloud, tmp_path, robot):
    from acrsync.compliance import entry
    from acrsync.compliance.run import Options
    from tests.compliance.helpers import make_app

    app = make_app(cloud, tmp_path, notify_url=f"{robot}?access_token=made-up&secret=SECmade-up")
    assert entry.check(app, Options())[1] is True                   # none before -> findings
    assert entry.check(app, Options())[1] is False                  # still findings
    assert len(Robot.received) == 1 and "sign=" in Robot.received[0][0]
