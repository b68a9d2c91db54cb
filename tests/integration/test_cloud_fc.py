"""Fc adapter through the real fc20230330 SDK against a minimal FC 3.0 stand-in on 127.0.0.1.

localcloud has no FC service yet, so this file serves the two FC 3.0 routes acrsync uses with a few
lines of http.server, enough to check the wire: path, invocation-type header, qualifier, reply bytes and
FC's function-error header.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from acrsync.cloud import CloudError, CloudSession

REGION = "cn-hangzhou"


class _FcStandIn(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    seen: list[dict] = []

    def log_message(self, *args):
        pass

    def _reply(self, status, body: bytes, headers=None):
        self.send_response(status)
        for k, v in {"content-type": "application/octet-stream", "x-fc-request-id": "fc-req-1",
                     **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.seen.append({"path": self.path, "type": self.headers.get("x-fc-invocation-type"), "body": body})
        if self.path.startswith("/2023-03-30/functions/broken/invocations"):
            self._reply(200, b'{"errorMessage":"boom"}', {"x-fc-error-type": "UnhandledInvocationError"})
        elif "/invocations" in self.path:
            self._reply(202 if self.headers.get("x-fc-invocation-type") == "Async" else 200,
                        b"" if self.headers.get("x-fc-invocation-type") == "Async" else b"echo:" + body)
        else:
            self._reply(404, b'{"Code":"FunctionNotFound","Message":"no such route"}',
                        {"content-type": "application/json"})

    def do_GET(self):
        if self.path.startswith("/2023-03-30/functions/acrsync-reconcile"):
            self._reply(200, json.dumps({"functionName": "acrsync-reconcile",
                                         "runtime": "python3.10"}).encode(),
                        {"content-type": "application/json"})
        else:
            self._reply(404, b'{"Code":"FunctionNotFound","Message":"function not found"}',
                        {"content-type": "application/json"})


@pytest.fixture
def fc():
    _FcStandIn.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FcStandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    # made-up keys: the stand-in does not check signatures
    session = CloudSession.from_keys("LTAIdemoFcKey", "made-up-fc-secret", region=REGION,
                                     env={"ACRSYNC_ENDPOINT_FC": f"http://127.0.0.1:{httpd.server_port}"})
    yield session
    httpd.shutdown()
    httpd.server_close()


def test_sync_invoke_returns_the_reply_bytes(fc):
    assert fc.fc(REGION).invoke_function("echo", b'{"mode":"reconcile"}', qualifier="LATEST") == \
        b'echo:{"mode":"reconcile"}'
    [req] = _FcStandIn.seen
    assert req["path"] == "/2023-03-30/functions/echo/invocations?qualifier=LATEST"
    assert req["type"] == "Sync"
    assert fc.calls["fc:InvokeFunction"] == 1


def test_async_invoke_sends_the_invocation_type_header(fc):
    assert fc.fc(REGION).invoke_function("echo", b"{}", async_=True) == b""
    assert _FcStandIn.seen[0]["type"] == "Async"


def test_a_function_error_becomes_a_cloud_error_and_is_not_retried(fc):
    with pytest.raises(CloudError) as e:
        fc.fc(REGION).invoke_function("broken", b"{}")
    assert e.value.code == "FunctionError.UnhandledInvocationError" and "boom" in e.value.message
    assert fc.calls["fc:InvokeFunction"] == 1


def test_get_function(fc):
    assert fc.fc(REGION).get_function("acrsync-reconcile")["runtime"] == "python3.10"
    with pytest.raises(CloudError) as e:
        fc.fc(REGION).get_function("missing")
    assert e.value.code == "FunctionNotFound" and e.value.http_status == 404
