"""The server: routing by protocol, the control API over HTTP, events, the CLI process, and latency."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.exceptions import ClientException

from localcloud.clock import parse_iso
from tests.demo_world import (
    A_KEY_ID,
    A_SECRET,
    B_KEY_ID,
    B_SECRET,
    DEMO_SCENARIO,
    ROOT,
    SOURCE_INSTANCE,
    START_TIME,
    http_json,
    make_sdk_config,
)

call = http_json


def test_health_and_services(cloud):
    status, body = call(cloud, "GET", "/_localcloud/health")
    assert status == 200 and body["status"] == "ok"
    assert {"ram", "sts"} <= set(body["services"])


def test_clock_over_http(cloud):
    assert call(cloud, "GET", "/_localcloud/clock")[1] == {"now": parse_iso(START_TIME), "mode": "manual"}
    status, body = call(cloud, "POST", "/_localcloud/clock", {"advance_seconds": 90})
    assert status == 200 and body["now"] == parse_iso(START_TIME) + 90
    assert call(cloud, "POST", "/_localcloud/clock", {"advance_seconds": -1})[0] == 400
    assert call(cloud, "POST", "/_localcloud/clock", {})[0] == 400


def test_faults_and_stats_over_http(cloud):
    status, body = call(cloud, "POST", "/_localcloud/faults", {"action": "GetCallerIdentity",
                                                               "throttle_rate": 1,
                                                               "count": 1})
    assert status == 200 and body["faults"][0]["action"] == "GetCallerIdentity"
    sts = StsClient(make_sdk_config(cloud, A_KEY_ID, A_SECRET))
    with pytest.raises(ClientException):
        sts.get_caller_identity()
    sts.get_caller_identity()
    assert call(cloud, "GET", "/_localcloud/stats")[1] == {"stats": {"GetCallerIdentity": 2}}
    assert call(cloud, "DELETE", "/_localcloud/stats")[1] == {"stats": {}}
    call(cloud, "POST", "/_localcloud/faults", {"error_rate": 1})
    assert call(cloud, "DELETE", "/_localcloud/faults")[1] == {"faults": []}
    status, body = call(cloud, "POST", "/_localcloud/faults", {"throttle_rate": 2})
    assert status == 400 and "throttle_rate" in body["Message"]
    status, body = call(cloud, "POST", "/_localcloud/faults", {"rate": 1})
    assert status == 400 and "unknown fault field" in body["Message"]


def test_unknown_control_paths_and_bad_bodies(cloud):
    assert call(cloud, "GET", "/_localcloud/nothing")[0] == 404
    assert call(cloud, "GET", "/_localcloud/nosuchsvc/op")[0] == 404
    request = urllib.request.Request(cloud.url + "/_localcloud/push", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 400
    status, body = call(cloud, "POST", "/_localcloud/push", {"instance_id": SOURCE_INSTANCE})
    assert status == 400 and "namespace" in body["Message"]


def test_rpc_routing_errors(cloud):
    sts_headers = {"x-acs-action": "GetCallerIdentity", "x-acs-version": "1999-01-01"}
    status, body = call(cloud, "POST", "/", {}, sts_headers)
    assert (status, body["Code"]) == (400, "InvalidVersion")
    status, body = call(cloud, "POST", "/", {}, {"x-acs-action": "DeleteEverything",
                                                 "x-acs-version": "2015-04-01"})
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")
    assert body["HostId"] == "sts.aliyuncs.com" and body["RequestId"]
    status, body = call(cloud, "GET", "/2023-03-30/layers")          # an FC API localcloud does not emulate
    assert (status, body["Code"]) == (501, "NotImplemented")
    assert "Function Compute" in body["Message"]


def test_push_events_and_subscriptions(cloud):
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    sink = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    callbacks: list[dict] = []
    cloud.subscribe(callbacks.append)
    try:
        status, body = call(cloud, "POST", "/_localcloud/subscriptions",
                            {"url": f"http://127.0.0.1:{sink.server_address[1]}/events"})
        assert status == 200 and len(body["subscriptions"]) == 1
        assert call(cloud, "POST", "/_localcloud/subscriptions", {"url": "http://example.com/x"})[0] == 400
        status, pushed = call(cloud, "POST", "/_localcloud/push", {"instance_id": SOURCE_INSTANCE,
                                                                   "namespace": "team-a", "repo": "web",
                                                                   "tag": "v2.0.0"})
        assert status == 200 and pushed["event"]["type"] == "cr:Artifact:PushCompleted"
        assert cloud.drain()
        assert callbacks == [pushed["event"]] and received == [pushed["event"]]
        status, listed = call(cloud, "GET", "/_localcloud/events?since=0")
        assert listed == {"events": [pushed["event"]], "next": 1}
        assert call(cloud, "GET", "/_localcloud/events?since=1")[1] == {"events": [], "next": 1}
        assert call(cloud, "GET", "/_localcloud/events?since=x")[0] == 400
    finally:
        sink.shutdown()
        sink.server_close()


def test_callback_may_call_the_emulator_back(cloud):
    """Subscribers run off the world lock: a callback that calls RAM does not deadlock a push."""
    answers: list[str] = []
    ram = RamClient(make_sdk_config(cloud, B_KEY_ID, B_SECRET))
    cloud.subscribe(lambda event: answers.append(
        ram.get_role(ram_models.GetRoleRequest(role_name="acrsync-reader")).body.role.role_name))
    cloud.push(SOURCE_INSTANCE, "team-a", "api", "1.2")
    assert cloud.drain()
    assert answers == ["acrsync-reader"]


def test_keep_alive_round_trips_are_fast(cloud):
    """TCP_NODELAY: without it each call takes ~44 ms (Nagle + delayed ACK)."""
    sts = StsClient(make_sdk_config(cloud, A_KEY_ID, A_SECRET))
    sts.get_caller_identity()
    timings = []
    for _ in range(15):
        started = time.perf_counter()
        sts.get_caller_identity()
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.040, timings


def test_python_m_localcloud_prints_the_url_and_exits_on_sigterm():
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen([sys.executable, "-m", "localcloud", "--scenario", str(DEMO_SCENARIO), "--clock",
                             "manual"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("localcloud listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        with urllib.request.urlopen(url + "/_localcloud/health", timeout=5) as reply:
            assert json.loads(reply.read())["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_acrsync_emulator_command_serves_until_sigterm():
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen([sys.executable, "-c", "from acrsync.cli import main; main()", "emulator",
                             "--scenario",
                             str(DEMO_SCENARIO)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("localcloud listening on http://127.0.0.1:")
        with urllib.request.urlopen(line.rsplit(" ", 1)[1] + "/_localcloud/clock", timeout=5) as reply:
            assert json.loads(reply.read())["mode"] == "wall"       # the CLI runs on wall time
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_python_m_localcloud_reports_a_bad_scenario(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts: []\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}"}
    done = subprocess.run([sys.executable, "-m", "localcloud", "--scenario", str(bad)], capture_output=True,
                          text=True, env=env, timeout=30)
    assert done.returncode == 2
    assert "accounts" in done.stderr
