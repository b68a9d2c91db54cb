"""The localcloud HTTP server: one port on 127.0.0.1 that routes each request by protocol.

- ``/_localcloud/...``                 control API (``localcloud.control``), unsigned, local only
- ``POST /`` + ``x-acs-action``/``x-acs-version`` (or ``Action``/``Version`` in the query)
                                      RPC: ACR 2018-12-01, RAM 2015-05-01, STS 2015-04-01
- ``POST /<Api>`` + ``x-ots-*``        Tablestore (``localcloud.ots.wire.handle``)
- ``/2023-03-30/...``                  Function Compute 3.0: GetFunction, InvokeFunction
                                      (``localcloud.fc.wire``; functions run in ``localcloud.fc.runtime``)

The wire layer here only parses and routes; signatures are ``signing``/``identity``, permissions ``authz``,
behaviour the services' own ``wire``/``models``. Service modules are imported on first use, so the server
starts even while one of them is absent (its actions then answer 501).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import queue
import signal
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from localcloud import authz, control, identity
from localcloud import scenario as scenario_mod
from localcloud.clock import Clock
from localcloud.faults import ERROR, THROTTLE, TIMEOUT, Fault, FaultRule, Faults
from localcloud.service import RequestContext, ServiceError

log = logging.getLogger("localcloud")


class _Server(ThreadingHTTPServer):
    """Threaded, with a listen backlog that survives bursts of concurrent clients (the default is 5)."""

    request_queue_size = 256
    daemon_threads = True

# x-acs-version -> (service package, HostId used in error replies)
RPC_SERVICES = {
    "2018-12-01": ("acr", "cr.aliyuncs.com"),
    "2015-05-01": ("ram", "ram.aliyuncs.com"),
    "2015-04-01": ("sts", "sts.aliyuncs.com"),
}
FC_PREFIX = "/2023-03-30/"
THROTTLE_MESSAGE = "Request was denied due to user flow control."
UNAVAILABLE_MESSAGE = "The request has failed due to a temporary failure of the server."


def _load(module: str) -> ModuleType | None:
    """Import a service module on first use; None when that service is not part of this build."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise


class LocalCloud:
    """A running emulator: ``with LocalCloud("scenarios/demo.yaml").start() as cloud: ... cloud.url``."""

    def __init__(self, scenario: str | Path | dict, *, port: int = 0, host: str = "127.0.0.1",
                 clock: str = "manual", ots_state_file: str | None = None):
        spec = scenario_mod.parse(scenario)
        self.world = scenario_mod.build_world(spec, Clock(clock, scenario_mod.start_time(spec)))
        if ots_state_file:
            self.world.settings["ots_state_file"] = str(ots_state_file)
        self.world.emit = self._emit
        self.faults = Faults()
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._events: list[dict] = []
        self._events_lock = threading.Lock()
        self._callbacks: list[Callable[[dict], None]] = []
        self._urls: list[str] = []
        self._outbox: queue.Queue[dict | None] = queue.Queue()

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        if self._httpd is not None:
            return self
        httpd = _Server((self._host, self._port), _Handler)
        httpd.daemon_threads = True
        httpd.cloud = self  # type: ignore[attr-defined]
        self._httpd = httpd
        fc = _load("localcloud.fc.models")
        if fc is not None:       # functions learn this URL; eventbridge triggers follow the event stream
            fc.attach(self.world, url=self.url, subscribe=self.subscribe, drain=self.drain)
        self._threads = [
            threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="localcloud-http", daemon=True),
            threading.Thread(target=self._deliver_events, name="localcloud-events", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        fc = _load("localcloud.fc.models")
        if fc is not None:
            fc.detach(self.world)
        self._httpd.shutdown()
        self._httpd.server_close()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("LocalCloud is not started: call .start() first")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def services(self) -> list[str]:
        names = [svc for svc, _ in RPC_SERVICES.values()] + ["ots", "fc"]
        return [n for n in names if importlib.util.find_spec(f"localcloud.{n}.wire") is not None]

    # ---- driving the world --------------------------------------------------------------------------

    def push(self, instance_id: str, namespace: str, repo: str, tag: str, digest: str | None = None) -> dict:
        """An image push into an instance (as ``docker push`` would): tag stored, rules fired, event
        emitted."""
        backend = self.world.backends.get("acr")
        if backend is None:
            raise ServiceError(501, "NotImplemented", "the ACR service is not available in this "
                                                      "localcloud build")
        return backend.push(instance_id, namespace, repo, tag, digest)

    def advance(self, seconds: float) -> float:
        """Move the emulator clock and let every service catch up (tasks progress, events fire)."""
        now = self.world.clock.advance(seconds)
        for backend in list(self.world.backends.values()):
            settle = getattr(backend, "settle", None)
            if callable(settle):
                settle(now)
        return now

    def set_faults(self, action: str = "*", *, throttle_rate: float = 0.0, error_rate: float = 0.0,
                   latency_ms: int = 0, timeout_rate: float = 0.0, count: int | None = None,
                   seed: int | None = None, retry_after_ms: int | None = None,
                   timeout_seconds: float = 3.0) -> None:
        self.faults.set(FaultRule(action=action, throttle_rate=throttle_rate, error_rate=error_rate,
                                  latency_ms=int(latency_ms), timeout_rate=timeout_rate, count=count,
                                  seed=seed,
                                  retry_after_ms=retry_after_ms, timeout_seconds=float(timeout_seconds)))

    def clear_faults(self) -> None:
        self.faults.clear()

    def stats(self) -> dict[str, int]:
        return self.faults.stats()

    def reset_stats(self) -> None:
        self.faults.reset_stats()

    # ---- events -------------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(event)`` for every CloudEvent from now on, in order, on the delivery thread
        (never while the world is locked, so a callback may call the emulator back over HTTP)."""
        self._callbacks.append(callback)

    def subscribe_url(self, url: str) -> None:
        if not url.startswith(("http://127.0.0.1", "http://localhost")):
            raise ValueError(f"subscription URL {url!r} must be http://127.0.0.1:PORT/...: events stay local")
        if url not in self._urls:
            self._urls.append(url)

    def unsubscribe_url(self, url: str) -> None:
        if url in self._urls:
            self._urls.remove(url)

    def subscription_urls(self) -> list[str]:
        return list(self._urls)

    def events(self) -> list[dict]:
        with self._events_lock:
            return list(self._events)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every emitted event has been delivered to subscribers; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._outbox.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _emit(self, event: dict) -> None:
        with self._events_lock:
            self._events.append(event)
        self._outbox.put(event)

    def _deliver_events(self) -> None:
        while True:
            event = self._outbox.get()
            try:
                if event is None:
                    return
                for callback in list(self._callbacks):
                    try:
                        callback(event)
                    except Exception:
                        log.exception("event subscriber %r failed on %s", callback, event.get("type"))
                for url in list(self._urls):
                    self._post_event(url, event)
            finally:
                self._outbox.task_done()

    @staticmethod
    def _post_event(url: str, event: dict) -> None:
        data = json.dumps(event).encode()
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"content-type": "application/cloudevents+json"})
        try:
            with urllib.request.urlopen(request, timeout=2) as reply:
                reply.read()
        except OSError as exc:
            log.warning("could not deliver %s to %s: %s", event.get("type"), url, exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True       # TCP_NODELAY: ~44 ms -> ~1 ms per call (Nagle + delayed ACK)
    server_version = "localcloud"
    sys_version = ""

    @property
    def cloud(self) -> LocalCloud:
        return self.server.cloud  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    # ---- replies ------------------------------------------------------------------------------------

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        self._reply(status, body, {"Content-Type": "application/json;charset=utf-8", **(headers or {})})

    def _error(self, exc: ServiceError, request_id: str, host_id: str) -> None:
        payload = {"RequestId": request_id, "HostId": host_id, "Code": exc.code, "Message": exc.message,
                   "Recommend": "See docs/localcloud.md for what localcloud enforces.", **exc.extra}
        self._json(exc.status, payload, {"x-acs-request-id": request_id, **exc.headers})

    # ---- routing ------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if url.path.startswith("/_localcloud/"):
                status, payload = control.handle(self.cloud, self.command, url.path,
                                                 dict(parse_qsl(url.query)), body)
                self._json(status, payload)
            elif url.path.startswith(FC_PREFIX):
                self._function_compute(url.path, url.query, headers, body)
            elif any(h.startswith("x-ots-") for h in headers):
                self._tablestore(url.path.strip("/"), headers, body)
            else:
                self._rpc(url.path or "/", url.query, headers, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _apply_fault(self, fault: Fault | None) -> str | None:
        """Sleep for latency/timeouts; returns the fault kind still to answer (throttle/error) or None."""
        if fault is None:
            return None
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.kind == TIMEOUT:
            time.sleep(fault.timeout_seconds)
            self.close_connection = True
            return TIMEOUT
        return fault.kind

    def _rpc(self, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        request_id = str(uuid.uuid4()).upper()
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            params.update(form)
        action = headers.get("x-acs-action") or params.get("Action", "")
        version = headers.get("x-acs-version") or params.get("Version", "")
        service, host_id = RPC_SERVICES.get(version, ("", "aliyuncs.com"))
        try:
            if not action:
                raise ServiceError(404, "NotFound", f"{self.command} {path} is not an API localcloud "
                                                    "serves: RPC calls need x-acs-action and x-acs-version "
                                                    "headers")
            if not service:
                raise ServiceError(400, "InvalidVersion",
                                   f"Specified parameter Version {version!r} is not valid; localcloud serves "
                                   f"{', '.join(f'{v} ({s})' for v, (s, _) in RPC_SERVICES.items())}.")
            wire = _load(f"localcloud.{service}.wire")
            if wire is None:
                raise ServiceError(501, "NotImplemented",
                                   f"The {service} service is not part of this localcloud build; {action} "
                                   "cannot be served.")
            handler = wire.ACTIONS.get(action)
            if handler is None:
                raise ServiceError(404, "InvalidAction.NotFound",
                                   f"Specified api {action} is not found for version {version} in "
                                   "localcloud.")
            fault = self.cloud.faults.on_request(action)
            kind = self._apply_fault(fault)
            if kind == TIMEOUT:
                return
            if kind == THROTTLE:
                retry = ({"x-acs-retry-after": str(fault.retry_after_ms)}
                         if fault and fault.retry_after_ms else {})
                raise ServiceError(400, "Throttling.User", THROTTLE_MESSAGE, headers=retry)
            if kind == ERROR:
                raise ServiceError(503, "ServiceUnavailable", UNAVAILABLE_MESSAGE)
            who = identity.authenticate(self.cloud.world, self.command, path, pairs, params, headers, body)
            ctx = RequestContext(self.cloud.world, who.caller, action, request_id=request_id,
                                 authorizer=authz.check)
            result = handler(ctx, params)
        except ServiceError as exc:
            self._error(exc, request_id, host_id)
            return
        except Exception as exc:
            log.exception("localcloud failed on %s %s", version, action)
            self._error(ServiceError(500, "InternalError", f"localcloud failed on {action}: {exc!r}"),
                        request_id, host_id)
            return
        reply = dict(result or {})
        reply.setdefault("RequestId", ctx.request_id)
        self._json(200, reply, {"x-acs-request-id": str(reply["RequestId"])})

    def _function_compute(self, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        """FC 3.0 ROA calls: routed and served by ``localcloud.fc.wire`` (V3-signed like RPC; faults
        apply)."""
        request_id = str(uuid.uuid4()).upper()
        wire = _load("localcloud.fc.wire")
        if wire is None:
            self._json(501, {"RequestId": request_id, "Code": "NotImplemented",
                             "Message": "Function Compute is not part of this localcloud build."})
            return
        try:
            action, name = wire.route(self.command, path, headers)
            kind = self._apply_fault(self.cloud.faults.on_request(action))
            if kind == TIMEOUT:
                return
            if kind == THROTTLE:      # UNVERIFIED: FC's throttling code
                raise ServiceError(429, "ResourceThrottled", THROTTLE_MESSAGE)
            if kind == ERROR:
                raise ServiceError(503, "ServiceUnavailable", UNAVAILABLE_MESSAGE)
            status, reply_headers, reply = wire.handle(self.cloud.world, action, name, self.command, path,
                                                       parse_qsl(query, keep_blank_values=True),
                                                       headers, body)
        except ServiceError as exc:
            status, reply_headers, reply = wire.error_reply(exc, request_id)
        except Exception as exc:
            log.exception("localcloud failed on FC %s %s", self.command, path)
            status, reply_headers, reply = wire.error_reply(
                ServiceError(500, "InternalError", f"localcloud failed on {path}: {exc!r}"), request_id)
        self._reply(status, reply, reply_headers)

    def _tablestore(self, api: str, headers: dict[str, str], body: bytes) -> None:
        try:
            wire = _load("localcloud.ots.wire")
        except Exception as exc:
            log.exception("localcloud cannot load its Tablestore service")
            self._json(500, {"Code": "OTSInternalServerError", "Message": f"localcloud Tablestore failed: "
                                                                          f"{exc!r}"})
            return
        if wire is None:
            self._json(501, {"Code": "NotImplemented",
                             "Message": "Tablestore is not part of this localcloud build."})
            return
        fault = self._apply_fault(self.cloud.faults.on_request(api))
        if fault == TIMEOUT:
            return
        if fault == THROTTLE:
            status, reply_headers, reply = wire.error_response(api, 503, "OTSServerBusy", "Server is busy.")
        elif fault == ERROR:
            status, reply_headers, reply = wire.error_response(api, 500, "OTSInternalServerError",
                                                               "Internal server error.")
        else:
            try:
                status, reply_headers, reply = wire.handle(self.cloud.world, api, headers, body,
                                                           identity.secret_for(self.cloud.world))
            except Exception as exc:
                log.exception("localcloud failed on Tablestore %s", api)
                status, reply_headers, reply = wire.error_response(api, 500, "OTSInternalServerError",
                                                                   f"localcloud failed on {api}: {exc!r}")
        self._reply(status, reply, reply_headers)


def serve_forever(scenario: str | Path, *, port: int = 0, clock: str = "wall", ots_state_file: str
                  | None = None,
                  out: Any = None) -> int:
    """Run until SIGTERM/SIGINT; prints ``localcloud listening on http://127.0.0.1:N`` once it accepts
    calls."""
    out = out or sys.stdout
    cloud = LocalCloud(scenario, port=port, clock=clock, ots_state_file=ots_state_file).start()
    stopping = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(f"localcloud listening on {cloud.url}", file=out, flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        cloud.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
