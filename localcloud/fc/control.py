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
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout <= MAX_WAIT_SECONDS:
        raise ServiceError(400, "InvalidParameter",
                           f"'timeout' must be a number of seconds between 0 and {MAX_WAIT_SECONDS:g}, not {timeout!r}")
    return {"invocations": backend_of(world).wait(float(timeout))}


OPS = {"invocations": _invocations, "wait": _wait}


def handle(world: World, op: str, body: dict[str, Any] | None) -> dict:
    """Serve ``/_localcloud/fc/<op>`` (never under the world lock: ``wait`` blocks)."""
    fn = OPS.get(op)
    if fn is None:
        raise ServiceError(404, "UnknownOperation", f"/_localcloud/fc/{op} does not exist; "
                                                    f"operations: {', '.join(sorted(OPS))}")
    if body is not None and not isinstance(body, dict):
        raise ServiceError(400, "InvalidParameter", "the body must be a JSON object")
    return fn(world, body or {})
