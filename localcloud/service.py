"""What every emulated RPC service shares: the request context, the error type, the action table.

A service is a package ``localcloud/<svc>/`` with ``wire.py`` (parameter parsing and reply shapes,
moto's ``responses``) and ``models.py`` (state and documented rules, moto's ``models``).
``wire.ACTIONS`` maps an action name to ``handler(ctx, params) -> dict``: ``params`` is the flat query
map exactly as the SDK sent it (lists as ``Key.1``, ``Key.1.Sub``), the returned dict is the JSON body.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from localcloud.state import World


class ServiceError(Exception):
    """An error reply as the real service gives it: ``{"RequestId", "Code", "Message"}`` with a status."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 extra: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}


@dataclass(frozen=True)
class Caller:
    """Who signed the request."""

    account_id: str
    access_key_id: str
    kind: str                    # "root" | "user" | "role"
    name: str = ""               # user name or role name ("" for root)
    session_name: str = ""

    @property
    def arn(self) -> str:
        if self.kind == "root":
            return f"acs:ram::{self.account_id}:root"
        if self.kind == "user":
            return f"acs:ram::{self.account_id}:user/{self.name}"
        return f"acs:ram::{self.account_id}:assumed-role/{self.name}/{self.session_name}"


@dataclass
class RequestContext:
    world: World
    caller: Caller
    action: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    # Set by the server: raises ServiceError(403, <code>) unless the caller's RAM policies allow it.
    authorizer: Callable[[RequestContext, str, str], None] | None = None

    def authorize(self, ram_action: str, resource: str) -> None:
        """Check the caller may do ``ram_action`` (e.g. ``cr:GetInstance``) on ``resource`` (an ARN)."""
        if self.authorizer is not None:
            self.authorizer(self, ram_action, resource)

    @property
    def now(self) -> float:
        return self.world.clock.now()


Handler = Callable[[RequestContext, dict[str, str]], dict]


def list_param(params: dict[str, str], name: str) -> list[str]:
    """Read an RPC list flattened as ``Name.1``, ``Name.2``..."""
    out = []
    i = 1
    while f"{name}.{i}" in params:
        out.append(params[f"{name}.{i}"])
        i += 1
    return out


def bool_param(params: dict[str, str], name: str, default: bool | None = None) -> bool | None:
    """The SDK sends Python bools as ``True``/``False``; the console and CLI send ``true``/``false``."""
    v = params.get(name)
    if v is None or v == "":
        return default
    if v.lower() in ("true", "1"):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise ServiceError(400, "InvalidParameter", f"The parameter {name} must be true or false.")


def required_param(params: dict[str, str], name: str) -> str:
    """A mandatory parameter, or the MissingParameter error RPC services give."""
    value = params.get(name)
    if value is None or value == "":
        raise ServiceError(400, "MissingParameter",
                           f'The input parameter "{name}" that is mandatory for processing this request '
                           'is not '
                           f"supplied.")
    return value


def int_param(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    """An integer parameter; a non-number is the InvalidParameter error."""
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ServiceError(400, "InvalidParameter", f"The parameter {name} must be an integer, not "
                                                    f"{value!r}.") \
            from None
