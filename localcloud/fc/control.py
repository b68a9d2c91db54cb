"""``/_localcloud/fc/<op>``: what no FC API shows a test or the demo: every invocation with its outcome and
the function's own log lines, and a way to wait until asynchronous ones (triggers) have finished."""

from __future__ import annotations

from typing import Any

from localcloud.fc.models import backend_of
from localcloud.service import ServiceError
from localcloud.state import World

MAX_WAIT_SECONDS = 600.0


def _invocations(world: World, body: dict) -> dict:
    """``{"function"?}``: every invocation, oldest first (status running|succeeded|failed|timeout)."""
    function = body.get("function")
    if function is not None and not isinstance(function, str):
        raise ServiceError(400, "InvalidParameter", f"'function' must be a function name, not {function!r}")
    return {"invocations": backend_of(world).views(function)}


def _wait(world: World, body: dict) -> dict:
    """``{"timeout": s}`` (default 30): returns once nothing runs; 504 WaitTimeout names what still runs."""
    timeout = body.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 <= timeout <= MAX_WAIT_SECONDS:
        raise ServiceError(400, "InvalidParameter",
                           f"'timeout' must be a number of seconds between 0 and {MAX_WAIT_SECONDS:g}, not "
                           f"{timeout!r}")
    return {"invocations": backend_of(world).wait(float(timeout))}


def _role_credentials(world: World, body: dict) -> dict:
    """``{"account", "function"}``: the temporary keys FC hands that function (its role's, as the runtime
    passes them in ``context.credentials``), for a test or benchmark that runs the handler outside
    localcloud's runtime. Refused as FC would refuse to run the function: no role, or a role that does not
    trust FC."""
    account, name = body.get("account"), body.get("function")
    if not isinstance(account, str) or not isinstance(name, str):
        raise ServiceError(400, "InvalidParameter", "'account' and 'function' must be strings")
    backend = backend_of(world)
    fn = backend.function(account, name)
    if fn is None:
        raise ServiceError(404, "FunctionNotFound", f"function {name} does not exist in account {account}")
    cred = backend.role_credentials(fn)
    if cred is None:
        raise ServiceError(400, "InvalidArgument", f"function {name} has no role")
    return {"access_key_id": cred.access_key_id, "access_key_secret": cred.secret,
            "security_token": cred.token}


OPS = {"invocations": _invocations, "wait": _wait, "role-credentials": _role_credentials}


def handle(world: World, op: str, body: dict[str, Any] | None) -> dict:
    """Serve ``/_localcloud/fc/<op>`` (never under the world lock: ``wait`` blocks)."""
    fn = OPS.get(op)
    if fn is None:
        raise ServiceError(404, "UnknownOperation", f"/_localcloud/fc/{op} does not exist; "
                                                    f"operations: {', '.join(sorted(OPS))}")
    if body is not None and not isinstance(body, dict):
        raise ServiceError(400, "InvalidParameter", "the body must be a JSON object")
    return fn(world, body or {})
