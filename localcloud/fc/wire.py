"""Function Compute 3.0 (2023-03-30) over HTTP: ROA routes, V3-signed like the RPC services.

  GET  /2023-03-30/functions/{name}               GetFunction     (fc:GetFunction)
  POST /2023-03-30/functions/{name}/invocations   InvokeFunction  (fc:InvokeFunction)
  GET  /2023-03-30/functions/{name}/triggers      ListTriggers    (fc:ListTriggers; ?limit, ?nextToken,
  ?prefix) GET  /2023-03-30/functions/{name}/triggers/{t}  GetTrigger      (fc:GetTrigger)
       x-fc-invocation-type: Sync (default) | Async; ?qualifier=LATEST; body = the event bytes

Sync replies carry the handler's return value as is; a handler that raised or timed out is still HTTP 200,
with ``x-fc-error-type: UnhandledInvocationError`` and ``{"errorMessage","errorType","stackTrace"}``.
Async replies are 202 with no body. API errors are ``{"Code","Message","RequestId"}`` with
``x-fc-request-id``.
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import unquote

from localcloud import authz, identity
from localcloud.fc import runtime
from localcloud.fc.models import backend_of
from localcloud.service import RequestContext, ServiceError
from localcloud.state import World

PREFIX = "/2023-03-30/"
ERROR_TYPE_HEADER = "x-fc-error-type"
UNHANDLED = "UnhandledInvocationError"
_FUNCTION = re.compile(r"/2023-03-30/functions/([^/]+)")
_INVOKE = re.compile(r"/2023-03-30/functions/([^/]+)/invocations")
_TRIGGERS = re.compile(r"/2023-03-30/functions/([^/]+)/triggers")
_TRIGGER = re.compile(r"/2023-03-30/functions/([^/]+)/triggers/([^/]+)")

Reply = tuple[int, dict[str, str], bytes]


def route(method: str, path: str, headers: dict[str, str]) -> tuple[str, str]:
    """(action, function name) for a served route; a ServiceError names what is not emulated."""
    m = _INVOKE.fullmatch(path)
    if m and method == "POST":
        return "InvokeFunction", unquote(m.group(1))
    m = _FUNCTION.fullmatch(path)
    if m and method == "GET":
        return "GetFunction", unquote(m.group(1))
    m = _TRIGGERS.fullmatch(path)
    if m and method == "GET":
        return "ListTriggers", unquote(m.group(1))
    m = _TRIGGER.fullmatch(path)
    if m and method == "GET":
        return "GetTrigger", unquote(m.group(1)) + "/" + unquote(m.group(2))
    api = headers.get("x-acs-action") or f"{method} {path}"
    raise ServiceError(501, "NotImplemented", f"Function Compute API {api} is not emulated by localcloud; it "
                                              "serves GetFunction, InvokeFunction, ListTriggers and "
                                              "GetTrigger (docs/localcloud.md).")


def error_reply(exc: ServiceError, request_id: str) -> Reply:
    body = json.dumps({"Code": exc.code, "Message": exc.message, "RequestId": request_id, **exc.extra})
    return exc.status, {"Content-Type": "application/json", "x-fc-request-id": request_id, **exc.headers}, \
        body.encode("utf-8")


def handle(world: World, action: str, name: str, method: str, path: str, query: list[tuple[str, str]],
           headers: dict[str, str], body: bytes) -> Reply:
    """Authenticate (V3 signature), authorize, and serve one FC call; never raises a ServiceError."""
    request_id = str(uuid.uuid4()).upper()
    try:
        who = identity.authenticate(world, method, path, query, dict(query), headers, body)
        ctx = RequestContext(world, who.caller, action, request_id=request_id, authorizer=authz.check)
        name, _, trigger_name = name.partition("/")
        fn = backend_of(world).function(ctx.caller.account_id, name)
        if fn is None:
            raise ServiceError(404, "FunctionNotFound", f"function '{name}' does not exist")
        qualifier = dict(query).get("qualifier")
        if qualifier not in (None, "", "LATEST"):
            # UNVERIFIED
            raise ServiceError(404, "VersionNotFound" if qualifier.isdigit() else "AliasNotFound",
                               f"qualifier {qualifier!r} of function {name} does not exist: localcloud "
                               "functions have only the LATEST version")
        if action in ("ListTriggers", "GetTrigger"):
            return _triggers(ctx, fn, action, trigger_name, dict(query), request_id)
        ctx.authorize(f"fc:{action}", fn.arn)
        if action == "GetFunction":
            return 200, {"Content-Type": "application/json", "x-fc-request-id": request_id}, \
                json.dumps(fn.view()).encode("utf-8")
        return _invoke(world, fn, headers, body)
    except ServiceError as exc:
        return error_reply(exc, request_id)


def _invoke(world: World, fn, headers: dict[str, str], body: bytes) -> Reply:
    kind = headers.get("x-fc-invocation-type") or "Sync"
    if kind not in ("Sync", "Async"):
        raise ServiceError(400, "InvalidArgument", f"x-fc-invocation-type must be Sync or Async, not "
                                                   f"{kind!r}")
    record = backend_of(world).invoke(fn, body, invocation_type=kind)
    reply_headers = {"x-fc-request-id": record.request_id}
    if kind == "Async":
        return 202, reply_headers, b""
    if record.status == runtime.SUCCEEDED:
        return 200, {"Content-Type": "application/octet-stream", **reply_headers}, record.body
    error = json.dumps(record.error or {}).encode("utf-8")
    return 200, {"Content-Type": "application/json", ERROR_TYPE_HEADER: UNHANDLED, **reply_headers}, error


def _triggers(ctx: RequestContext, fn, action: str, trigger_name: str, query: dict[str, str],
              request_id: str) -> Reply:
    """ListTriggers pages by name (``limit`` 1-100, default 20; ``nextToken`` is the next name), GetTrigger
    one; resources ``functions/<name>/triggers/<trigger>`` as in FC 3.0's RAM resource list."""
    headers = {"Content-Type": "application/json", "x-fc-request-id": request_id}
    if action == "GetTrigger":
        ctx.authorize("fc:GetTrigger", f"{fn.arn}/triggers/{trigger_name}")
        found = next((t for t in fn.triggers if t.name == trigger_name), None)
        if found is None:
            raise ServiceError(404, "TriggerNotFound", f"trigger '{trigger_name}' of function {fn.name} does "
                                                       "not exist")
        return 200, headers, json.dumps(found.view(fn)).encode("utf-8")
    ctx.authorize("fc:ListTriggers", f"{fn.arn}/triggers/*")
    raw_limit = query.get("limit") or "20"
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise ServiceError(400, "InvalidArgument", f"limit must be an integer from 1 to 100, not "
                                                   f"{raw_limit!r}")
    prefix, start = query.get("prefix") or "", query.get("nextToken") or ""
    names = sorted((t for t in fn.triggers if t.name.startswith(prefix) and t.name >= start),
                   key=lambda t: t.name)
    page = names[:int(raw_limit)]
    body: dict = {"triggers": [t.view(fn) for t in page]}
    if len(names) > len(page):
        body["nextToken"] = names[len(page)].name
    return 200, headers, json.dumps(body).encode("utf-8")
