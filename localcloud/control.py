"""The control API under ``/_localcloud/``: what tests and the demo use to drive the emulator.

It is not an Alibaba Cloud API and needs no signature, so it must never be reachable from beyond
127.0.0.1 (localcloud only binds there). Replies are JSON; a bad request is a 400 naming the problem.

  POST   /_localcloud/push            {"instance_id","namespace","repo","tag","digest"?}  an image push
  GET    /_localcloud/clock           {"now": seconds}
  POST   /_localcloud/clock           {"advance_seconds": N}
  GET    /_localcloud/faults          active rules
  POST   /_localcloud/faults          {"action","throttle_rate","error_rate","latency_ms","timeout_rate",
                                       "count","seed","retry_after_ms","timeout_seconds"}
  DELETE /_localcloud/faults
  GET    /_localcloud/stats           {"<Action>": requests}     DELETE resets
  GET    /_localcloud/events?since=N  {"events": [...], "next": M}
  POST   /_localcloud/subscriptions   {"url": "http://127.0.0.1:..."}   events are POSTed there
  DELETE /_localcloud/subscriptions   {"url": ...}
  GET    /_localcloud/health
  *      /_localcloud/<svc>/<op>      localcloud.<svc>.control.handle(world, op, body)
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from typing import TYPE_CHECKING, Any

from localcloud.service import ServiceError

if TYPE_CHECKING:
    from localcloud.server import LocalCloud

FAULT_FIELDS = ("action", "throttle_rate", "error_rate", "latency_ms", "timeout_rate", "count", "seed",
                "retry_after_ms", "timeout_seconds")
_SERVICE = re.compile(r"[a-z][a-z0-9_]*")


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "InvalidParameter", message)


def _body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _bad(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    return body


def _need(body: dict, *names: str) -> None:
    missing = [n for n in names if not body.get(n)]
    if missing:
        raise _bad(f"missing field(s): {', '.join(missing)}")


def handle(cloud: LocalCloud, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, dict]:
    """Serve one control request; returns (status, JSON body)."""
    try:
        return 200, _route(cloud, method, path.removeprefix("/_localcloud/").strip("/"), query, _body(raw))
    except ServiceError as exc:
        return exc.status, {"Code": exc.code, "Message": exc.message, **exc.extra}
    except (ValueError, TypeError) as exc:
        return 400, {"Code": "InvalidParameter", "Message": str(exc)}


def _route(cloud: LocalCloud, method: str, op: str, query: dict[str, str], body: dict) -> dict:
    if op == "health" and method == "GET":
        return {"status": "ok", "now": cloud.world.clock.now(), "services": cloud.services()}
    if op == "push" and method == "POST":
        _need(body, "instance_id", "namespace", "repo", "tag")
        return cloud.push(str(body["instance_id"]), str(body["namespace"]), str(body["repo"]),
                          str(body["tag"]),
                          body.get("digest"))
    if op == "clock":
        if method == "POST":
            if "advance_seconds" not in body:
                raise _bad('POST /_localcloud/clock needs {"advance_seconds": N}')
            cloud.advance(float(body["advance_seconds"]))
        if method in ("GET", "POST"):
            return {"now": cloud.world.clock.now(), "mode": cloud.world.clock.mode}
    if op == "faults":
        if method == "POST":
            unknown = sorted(set(body) - set(FAULT_FIELDS))
            if unknown:
                raise _bad(f"unknown fault field(s) {', '.join(unknown)}; known: {', '.join(FAULT_FIELDS)}")
            cloud.set_faults(**body)
        elif method == "DELETE":
            cloud.clear_faults()
        if method in ("GET", "POST", "DELETE"):
            return {"faults": cloud.faults.rules()}
    if op == "stats":
        if method == "DELETE":
            cloud.reset_stats()
        if method in ("GET", "DELETE"):
            return {"stats": cloud.stats()}
    if op == "events" and method == "GET":
        since = query.get("since", "0")
        if not since.isdigit():
            raise _bad(f"since must be a non-negative integer, not {since!r}")
        events = cloud.events()
        return {"events": events[int(since):], "next": len(events)}
    if op == "subscriptions":
        if method == "POST":
            _need(body, "url")
            cloud.subscribe_url(str(body["url"]))
        elif method == "DELETE":
            _need(body, "url")
            cloud.unsubscribe_url(str(body["url"]))
        if method in ("GET", "POST", "DELETE"):
            return {"subscriptions": cloud.subscription_urls()}
    service, _, service_op = op.partition("/")
    if service_op and _SERVICE.fullmatch(service):
        return _service_control(cloud, service, service_op, body)
    raise ServiceError(404, "NotFound", f"{method} /_localcloud/{op} is not a control operation; see "
                                        "docs/localcloud.md (Control API)")


def _service_control(cloud: LocalCloud, service: str, op: str, body: dict) -> dict:
    name = f"localcloud.{service}.control"
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ServiceError(404, "NotFound", f"the service {service!r} has no control operations")
    result = importlib.import_module(name).handle(cloud.world, op, body)
    return result if isinstance(result, dict) else {"result": result}
