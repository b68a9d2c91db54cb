"""Emulator round trip: what one OpenAPI call costs against localcloud, over a bare HTTP round trip.

Three kinds of call, interleaved round by round so they share the machine's noise:
- floor: ``http.client`` (keep-alive) POSTing to a trivial ``http.server`` handler with TCP_NODELAY,
  served in this process, as localcloud is;
- the bare SDK: the cr 2018-12-01 client's ``get_instance_with_options`` against localcloud;
- acrsync: ``Acr.get_instance`` through a CloudSession (retries, error mapping, call counting);
- for the split, ``http.client`` to localcloud's own ``GET /_localcloud/health`` (its HTTP layer alone).
The per-call median of each is divided by the floor's.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench import CLI_KEY_ID, CLI_SECRET, SOURCE_INSTANCE, SOURCE_REGION, bare_cr_client, demo_cloud
from bench.harness import Row, median, per_call

AREA = "A emulator"
REPLY = b'{"RequestId":"bench","IsSuccess":true,"Code":"success"}'


class _Trivial(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True       # as localcloud's handler: no Nagle + delayed-ACK stalls

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TrivialServer:
    """The floor's server: threaded like localcloud, on 127.0.0.1, doing nothing but answer."""

    def __enter__(self) -> TrivialServer:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Trivial)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        return self

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def run(calls: int = 300, rounds: int = 5) -> tuple[list[Row], dict]:
    """``rounds`` rounds of ``calls // rounds`` calls of each kind; per-call medians and their ratios."""
    from alibabacloud_cr20181201 import models as m
    from darabonba.runtime import RuntimeOptions

    from acrsync.cloud import CloudSession

    per_round = max(1, calls // rounds)
    cloud = demo_cloud()
    try:
        with TrivialServer() as trivial:
            conn = http.client.HTTPConnection("127.0.0.1", trivial.port, timeout=10)
            body = b"Action=Ping"

            def bare_http() -> None:
                conn.request("POST", "/", body=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
                reply = conn.getresponse()
                reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"the trivial server answered {reply.status}")

            lc = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=10)

            def localcloud_http() -> None:
                lc.request("GET", "/_localcloud/health")
                reply = lc.getresponse()
                reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"localcloud's health check answered {reply.status}")

            client = bare_cr_client(cloud)
            request = m.GetInstanceRequest(instance_id=SOURCE_INSTANCE)

            def bare_sdk() -> None:
                client.get_instance_with_options(request, RuntimeOptions())

            session = CloudSession.from_keys(CLI_KEY_ID, CLI_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                             clock=cloud.world.clock, region=SOURCE_REGION)
            acr = session.acr(SOURCE_REGION)

            def adapter() -> None:
                acr.get_instance(SOURCE_INSTANCE)

            kinds = {"http": bare_http, "localcloud": localcloud_http, "sdk": bare_sdk, "acr": adapter}
            for fn in kinds.values():          # warm up: connections, imports, first-call caches
                per_call(fn, 5)
            samples: dict[str, list[float]] = {k: [] for k in kinds}
            client_cpu = dict.fromkeys(kinds, 0.0)     # this thread's CPU: the client side of each call
            for _ in range(rounds):
                for name, fn in kinds.items():
                    cpu0 = time.thread_time()
                    samples[name] += per_call(fn, per_round)
                    client_cpu[name] += time.thread_time() - cpu0
            conn.close()
            lc.close()
            served = cloud.stats().get("GetInstance", 0)
    finally:
        cloud.stop()

    med = {k: median(v) for k, v in samples.items()}
    expected = 2 * (5 + rounds * per_round)
    n = rounds * per_round
    raw = {"calls_per_kind": n, "median_ms": {k: round(v * 1000, 4) for k, v in med.items()},
           "client_cpu_ms_per_call": {k: round(v / n * 1000, 4) for k, v in client_cpu.items()},
           "localcloud_get_instance_served": served, "expected_served": expected}
    ms = 1000.0
    rows = [
        Row(AREA, "bare HTTP round trip (floor)", med["http"] * ms, "ms/call",
            note="http.client keep-alive -> trivial http.server, TCP_NODELAY"),
        Row(AREA, "localcloud HTTP layer / bare HTTP", med["localcloud"] * ms, "ms/call", floor=med["http"]
            * ms,
            note="http.client -> GET /_localcloud/health: server + routing, no SDK; no target set"),
        Row(AREA, "bare SDK GetInstance / bare HTTP", med["sdk"] * ms, "ms/call", floor=med["http"] * ms,
            note="cr20181201 client against localcloud; no target set"),
        Row(AREA, "Acr.get_instance / bare HTTP", med["acr"] * ms, "ms/call", floor=med["http"] * ms,
            note="acrsync CloudSession + adapter; no target set"),
        Row(AREA, "bare SDK client-side CPU / SDK call", client_cpu["sdk"] / n * ms, "ms/call",
            floor=med["sdk"] * ms, note="this thread's CPU per call (darabonba, requests, signing); no "
                                        "target set"),
        Row(AREA, "Acr.get_instance / bare SDK", med["acr"] * ms, "ms/call", floor=med["sdk"] * ms,
            note="acrsync's own overhead over the SDK; no target set"),
    ]
    return rows, raw
