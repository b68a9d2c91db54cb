"""Typed cloud errors, so callers decide on a class, not on SDK internals.

The SDKs report failures in several shapes (the exception classes of darabonba-core 1.0 and
alibabacloud-tea-openapi 0.4): ``ClientException`` /
``ServerException`` / ``ThrottlingException`` for 4xx/5xx, throttling that arrives as a plain
``ClientException`` with a ``Throttling*`` code, darabonba's ``UnretryableException`` wrapping a network
error or an unparsable (HTML) 5xx body, and ACR's HTTP-200 ``IsSuccess: false`` that raises nothing.
``from_exception`` and ``from_body`` turn every one of them into a ``CloudError`` subclass that carries
service, API action, code, message, request id and HTTP status.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from acrsync.errors import AcrsyncError

_THROTTLING_CODES = frozenset({"THROTTLED", "TOOMANYREQUESTS", "REQUESTTHROTTLED", "FLOW_CONTROL"})
_ACCESS_DENIED_CODES = frozenset({
    "NOPRIVILEGE", "NOPERMISSION", "ACCESSDENIED", "FORBIDDEN", "NOTAUTHORIZED", "UNAUTHORIZED",
    "UNAUTHORIZEDOPERATION", "FORBIDDEN.RAM", "FORBIDDEN.ACCESSDENIED", "NOPERMISSION.ROLE",
})
# Codes about the caller's own keys: a NotFound in them is not "the resource does not exist".
_CREDENTIAL_CODE_PREFIXES = ("INVALIDACCESSKEYID", "INVALIDSECURITYTOKEN", "SIGNATURE", "INVALIDAPIKEY")
# Patterns as text: ``re`` compiles and caches each on its first use, so a cold start that meets no error
# compiles none of them.
_NOT_FOUND = r"(?i)NOT_?EXISTS?|NOT_?FOUND|NOSUCH"
_READ_TIMEOUT = r"(?i)read ?timed? ?out|readtimeout|timed out"
# No connection was ever made (refused, no such host, no route, connect timeout): the request cannot have
# reached the service, and repeating it soon rarely helps.
_UNREACHABLE = (
    r"(?i)connection refused|errno 111|errno 61|name or service not known|nodename nor servname|"
    r"temporary failure in name resolution|getaddrinfo failed|no address associated|name resolution|"
    r"no route to host|network is unreachable|connecttimeout|connect timeout|"
    r"failed to establish a new connection")
_READ_ONLY_TIMEOUT = r"(?i)read ?timed ?out|readtimeout"
_HOST_PORT = r"host='([^']+)', port=(\d+)"


class CloudError(AcrsyncError):
    """A cloud call failed. ``retryable`` says whether the same call may succeed when repeated."""

    retryable = False

    def __init__(self, message: str = "", *, service: str = "", action: str = "", code: str = "",
                 request_id: str | None = None, http_status: int | None = None):
        self.service = service
        self.action = action
        self.code = code or "Unknown"
        self.message = message
        self.request_id = request_id or None
        self.http_status = http_status
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.service}:{self.action}" if self.service or self.action else "cloud call"
        bits = [f"{where} failed: {self.code}"]
        if self.http_status is not None:
            bits.append(f"(HTTP {self.http_status})")
        if self.message:
            bits.append(f"- {self.message}")
        if self.request_id:
            bits.append(f"[request id {self.request_id}]")
        return " ".join(bits)

    def to_dict(self) -> dict[str, Any]:
        """For structured logs and the ledger's ErrorInfo."""
        return {"error": type(self).__name__, "service": self.service, "action": self.action,
                "code": self.code, "message": self.message, "request_id": self.request_id,
                "http_status": self.http_status}


class Throttled(CloudError):
    """Flow control; ``retry_after`` (seconds) is the service's own hint when it sent one."""

    retryable = True

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kw: Any):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(CloudError):
    """A 5xx, or a reply the SDK could not parse (e.g. a 502 HTML page from a gateway)."""

    retryable = True


class NetworkError(CloudError):
    """No reply: connection refused, reset, DNS failure, or a read timeout.

    ``maybe_applied`` is True when the request may have reached the service (a read timeout): repeating a
    call that creates something could then create it twice, so the retry loop does not repeat
    non-idempotent actions in that case.
    """

    retryable = True

    def __init__(self, message: str = "", *, maybe_applied: bool = False, **kw: Any):
        self.maybe_applied = maybe_applied
        super().__init__(message, **kw)


class Unreachable(NetworkError):
    """No connection could be made to ``endpoint`` (refused, DNS failure, no route): retried briefly only."""

    def __init__(self, message: str = "", *, endpoint: str | None = None, **kw: Any):
        self.endpoint = endpoint
        super().__init__(message, maybe_applied=False, **kw)


class NoCredentials(CloudError):
    """No keys were found (nothing in the environment, no such CLI profile): a configuration error."""

    def __init__(self, message: str = "", **kw: Any):
        kw.setdefault("service", "credentials")
        kw.setdefault("action", "Resolve")
        kw.setdefault("code", "NoCredentials")
        super().__init__(message, **kw)


class CredentialsInvalid(CloudError):
    """The service refused the caller's keys themselves (unknown AccessKeyId, bad signature, expired token).

    ``access_key_id`` names the key when the caller knows it; the fix is in the config, not the cloud.
    """

    access_key_id: str | None = None


def is_credentials_problem(err: BaseException) -> bool:
    """Missing or refused keys: a configuration error for a user, not a finding about the cloud."""
    return isinstance(err, (NoCredentials, CredentialsInvalid)) or (
        isinstance(err, CloudError) and err.code == "NoCredentials")


class AccessDenied(CloudError):
    """The caller lacks a RAM permission; `acrsync permissions` prints the policy it needs."""


class NotFound(CloudError):
    """The named resource does not exist (adapters' ``get_*`` methods return None instead)."""


class BudgetExhausted(CloudError):
    """The caller's time budget cannot fit another attempt; ``last`` is the error of the last attempt."""

    def __init__(self, last: CloudError, *, attempts: int, remaining: float):
        self.last = last
        self.attempts = attempts
        self.remaining = remaining
        super().__init__(
            f"gave up after {attempts} attempt(s) with {max(remaining, 0):.2f}s of the time budget left; "
            f"last error: {last}. Retry later or give the function a longer timeout",
            service=last.service, action=last.action, code=last.code, request_id=last.request_id,
            http_status=last.http_status)


class UndeclaredOperation(RuntimeError):
    """Code tried an SDK operation that acrsync.cloud.permissions does not declare
    (a bug, not a cloud error)."""


def is_throttling_code(code: str | None) -> bool:
    c = (code or "").upper()
    return c.startswith("THROTTLING") or c in _THROTTLING_CODES


def _is_credential_code(code: str) -> bool:
    return code.upper().startswith(_CREDENTIAL_CODE_PREFIXES)


def _is_access_denied_code(code: str) -> bool:
    c = code.upper()
    return c in _ACCESS_DENIED_CODES or c.startswith(("FORBIDDEN", "NOPERMISSION", "ACCESSDENIED"))


def _is_not_found_code(code: str) -> bool:
    return bool(code) and not _is_credential_code(code) and bool(re.search(_NOT_FOUND, code))


class _ReplyFields(TypedDict):
    """The keyword arguments every CloudError takes, as ``classify`` passes them on."""

    service: str
    action: str
    code: str
    request_id: str | None
    http_status: int | None


def classify(code: str | None, http_status: int | None, message: str = "", *, service: str, action: str,
             request_id: str | None = None, retry_after: float | None = None) -> CloudError:
    """Pick the CloudError subclass for a reply with this code and status."""
    code = code if code and code != "None" else ""
    kw = _ReplyFields(service=service, action=action,
                      code=code or (f"HTTP{http_status}" if http_status else ""),
                      request_id=request_id, http_status=http_status)
    if retry_after is not None or is_throttling_code(code) or http_status == 429:
        return Throttled(message, retry_after=retry_after, **kw)
    if http_status is not None and http_status >= 500 and http_status != 501:
        return ServerError(message, **kw)       # 501: the API is not implemented there; retrying cannot help
    if code and _is_credential_code(code):
        return CredentialsInvalid(message, **kw)
    if _is_access_denied_code(code) or http_status == 403:
        return AccessDenied(message, **kw)
    if _is_not_found_code(code) or (http_status == 404 and not code):
        return NotFound(message, **kw)
    return CloudError(message, **kw)


def _sdk_message(exc: Any) -> str:
    """The service's own message: the SDK prefixes it with ``code: <status>, ``
    and suffixes the request id."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        msg = data.get("Message") or data.get("message")
        if msg:
            return str(msg)
    msg = str(getattr(exc, "message", "") or "")
    msg = re.sub(r"^code: \d+, ", "", msg)
    return re.sub(r" request id: \S*$", "", msg)


def _request_id(exc: Any) -> str | None:
    rid = getattr(exc, "request_id", None)
    if rid and rid != "None":
        return str(rid)
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        return data.get("RequestId") or data.get("requestId")
    return None


def _network(inner: BaseException, *, service: str, action: str) -> NetworkError:
    text = f"{type(inner).__name__}: {getattr(inner, 'message', None) or inner}"
    if re.search(_UNREACHABLE, text) and not re.search(_READ_ONLY_TIMEOUT, text):
        hp = re.search(_HOST_PORT, text)
        return Unreachable(text, endpoint=f"{hp.group(1)}:{hp.group(2)}" if hp else None, service=service,
                           action=action, code="Unreachable")
    return NetworkError(text, maybe_applied=bool(re.search(_READ_TIMEOUT, text)), service=service,
                        action=action, code="NetworkError")


def from_exception(exc: BaseException, *, service: str, action: str) -> CloudError | None:
    """Translate an exception raised by an SDK call; None when it is not a cloud failure (a bug: re-raise)."""
    from darabonba.exceptions import RetryError
    from Tea.exceptions import TeaException, UnretryableException

    if isinstance(exc, CloudError):
        return exc
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        if isinstance(inner, CloudError):
            return inner
        if isinstance(inner, (RetryError, OSError)):
            return _network(inner, service=service, action=action)
        if isinstance(inner, RuntimeError) and "parse" in str(inner).lower():
            return ServerError(f"the reply was not JSON (a gateway error page?): {str(inner)[:200]}",
                               service=service, action=action, code="InvalidResponse")
        if inner is not None and not isinstance(inner, TeaException):
            return CloudError(f"{type(inner).__name__}: {inner}", service=service, action=action,
                              code="ClientError")
        exc = inner if inner is not None else exc
    if isinstance(exc, (RetryError, OSError)):
        return _network(exc, service=service, action=action)
    if isinstance(exc, TeaException):
        status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
        retry_after_ms = getattr(exc, "retry_after", None)
        return classify(getattr(exc, "code", None), int(status) if status else None, _sdk_message(exc),
                        service=service, action=action, request_id=_request_id(exc),
                        retry_after=retry_after_ms / 1000.0 if retry_after_ms else None)
    return None


def from_body(body: dict[str, Any] | None, *, service: str, action: str,
              http_status: int | None = None) -> CloudError | None:
    """An HTTP-200 reply that still reports failure (ACR's ``IsSuccess: false``); None when it succeeded."""
    if not isinstance(body, dict):
        return None
    code = body.get("Code") or body.get("code")
    failed = body.get("IsSuccess") is False or body.get("isSuccess") is False
    if not failed and not (code and is_throttling_code(str(code))):
        return None
    err = classify(str(code or "IsSuccessFalse"), None, str(body.get("Message") or body.get("message") or ""),
                   service=service, action=action, request_id=body.get("RequestId") or body.get("requestId"))
    err.http_status = http_status
    err.args = (err._describe(),)
    return err
