"""Typed events from what Function Compute hands a handler; parsing only, no decisions.

API::

    detect_and_parse(event, *, webhook_token, source_instance_id)
        -> list[PushCompleted | SyncCompleted | TimerTick | Rejected]
    parse = detect_and_parse
    http_response(status, body) -> dict                   # FC 3.0 HTTP trigger response object

    PushCompleted: event_id, time (aware datetime | None), pushed_at_ms, account_id, region, instance_id,
        instance_name, namespace, repo, repo_id?, tag, digest?, digest_hex, via, raw
    SyncCompleted: event_id, time, instance_id, task_id?, batch_id?, status?, image_from?, image_to?, raw
    TimerTick:     trigger_name, trigger_time, payload (dict | str), mode
    Rejected:      reason, payload, source, event_id?, unauthenticated, http_status,
                   to_rejected_event(received_at, request_id=None) -> ledger RejectedEvent

``event`` is the bytes FC passes (str or an already decoded dict/list in tests). Parsing never raises
for bad input: every item that cannot be used becomes a ``Rejected`` that keeps the raw payload, and
one bad item in an ``event-streaming`` batch does not stop the others.

Recognised shapes:

* EventBridge CloudEvent (one object, or a JSON list of them): ``cr:Artifact:PushCompleted`` ->
  ``PushCompleted``; ``cr:Artifact:SynchronizationCompleted`` -> ``SyncCompleted``.
* EventBridge ``RawData`` schema (only the ``data`` object): detected by its keys.
* ACR webhook through an FC 3.0 HTTP trigger, authenticated by a shared token in the
  ``x-acrsync-token`` header or the ``token`` query parameter -> ``PushCompleted(via="webhook")``.
* Timer trigger -> ``TimerTick``.

The ``data`` schemas of both ACR event types are not publicly documented, so keys are matched ignoring
case and ``_``/``-`` (``InstanceId``, ``instanceId``, ``instance_id`` are one key), digest and RepoId are
optional (the pipeline looks them up), and the raw event is logged once at DEBUG (secrets masked).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import functools
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from acrsync import jsonlog
from acrsync.model import ImageSide
from acrsync.records import RejectedEvent
from acrsync.value import Frozen, dataclass

log = logging.getLogger("acrsync.events")

PUSH_TYPE = "cr:Artifact:PushCompleted"
SYNC_TYPE = "cr:Artifact:SynchronizationCompleted"
ACR_SOURCE = "acs.cr"
TOKEN_HEADER = "x-acrsync-token"
TOKEN_QUERY = "token"

_FILTER_HINT = (f"the trigger's filter should only pass {PUSH_TYPE} and {SYNC_TYPE} "
                f"(eventRuleFilterPattern {{\"source\":[\"{ACR_SOURCE}\"],"
                f"\"type\":[\"{PUSH_TYPE}\",\"{SYNC_TYPE}\"]}})")
_NAME_OK = re.compile(r"[^\s\x00-\x1f\x7f\ud800-\udfff]{1,255}")
# Identifiers ACR and EventBridge send (instance, repository, task and batch ids, event ids, regions, account
# ids, statuses): letters, digits and . _ : - only, so a value can always be stored and compared as text.
_ID_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,254}")
# An image digest: sha256 and 64 hex digits, with or without the "sha256:" prefix (sources differ).
_DIGEST_OK = re.compile(r"(?:sha256:)?[0-9a-fA-F]{64}")
# A rejected payload is kept up to this size; its full size and sha256 go into the reason.
MAX_REJECTED_PAYLOAD = 64 * 1024


# ---- typed events ----------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PushCompleted(Frozen):
    """An image tag was pushed to the source instance."""

    kind: Literal["push"] = "push"
    event_id: str
    # When the push happened, zone-aware; None when the source gives no time with a zone. For a webhook
    # (whose pushed_at has no zone) it is when the request reached FC: an upper bound of the push time.
    time: _dt.datetime | None = None
    account_id: str | None = None
    region: str | None = None
    instance_id: str
    instance_name: str | None = None
    namespace: str
    repo: str
    repo_id: str | None = None
    tag: str
    digest: str | None = None          # as ACR sent it: bare hex or "sha256:<hex>"
    via: Literal["eventbridge", "rawdata", "webhook"] = "eventbridge"
    raw: dict[str, Any]

    @property
    def digest_hex(self) -> str | None:
        """The digest without its algorithm prefix, lower case: compare digests with this."""
        if not self.digest:
            return None
        return self.digest.rsplit(":", 1)[-1].strip().lower()

    @property
    def repo_path(self) -> str:
        return f"{self.namespace}/{self.repo}"

    @property
    def pushed_at_ms(self) -> int | None:
        """``time`` as epoch milliseconds (what coverage compares with a rule's CreateTime)."""
        return None if self.time is None else int(self.time.timestamp() * 1000)


@dataclass(frozen=True, kw_only=True)
class SyncCompleted(Frozen):
    """ACR reports a sync task finished. A hint only: confirm with GetRepoSyncTask."""

    kind: Literal["sync"] = "sync"
    event_id: str
    time: _dt.datetime | None = None
    account_id: str | None = None
    region: str | None = None
    instance_id: str | None = None
    task_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    image_from: ImageSide | None = None
    image_to: ImageSide | None = None
    raw: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class TimerTick(Frozen):
    """A timer trigger fired; ``payload`` is the trigger's configured text, parsed when it is a JSON
    object."""

    kind: Literal["timer"] = "timer"
    trigger_name: str
    trigger_time: str | None = None
    payload: dict[str, Any] | str = ""

    @property
    def mode(self) -> str | None:
        """``payload["mode"]`` when the payload is a JSON object naming one (e.g. "reconcile")."""
        mode = self.payload.get("mode") if isinstance(self.payload, dict) else None
        return mode if isinstance(mode, str) else None


@dataclass(frozen=True, kw_only=True)
class Rejected(Frozen):
    """An item acrsync cannot use. Keep it (``to_rejected_event``), acknowledge it, never retry it.

    ``unauthenticated`` is set for webhook requests without the right token: they are answered 401 and
    stored like any rejected event (payload with secrets masked, reason), under a stable id derived from
    the payload, so a flood of identical requests is one row.
    """

    kind: Literal["rejected"] = "rejected"
    reason: str
    payload: str                       # raw text (base64 when it was not UTF-8); secret-named keys masked
    source: str                        # "eventbridge" | "webhook" | "timer" | "unknown"
    event_id: str | None = None
    unauthenticated: bool = False

    @property
    def http_status(self) -> int:
        return 401 if self.unauthenticated else 400

    def to_rejected_event(self, received_at: float, request_id: str | None = None) -> RejectedEvent:
        """The ledger's record of this item; its id is the event id or a stable hash of the payload.

        At most MAX_REJECTED_PAYLOAD bytes of the payload are kept: a 5 MB junk event must not become a 5 MB
        ledger row (Tablestore refuses a cell over 2 MB). The reason then says so, with the full size and the
        sha256 of the whole payload, so the original can still be recognised."""
        raw = self.payload.encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(raw).hexdigest()
        rid = self.event_id or "rej-" + digest[:16]
        payload, reason = self.payload, self.reason
        if len(raw) > MAX_REJECTED_PAYLOAD:
            payload = raw[:MAX_REJECTED_PAYLOAD].decode("utf-8", "ignore")       # never half a character
            reason = (f"{reason} [payload truncated: kept the first {len(payload.encode('utf-8'))} of "
                      f"{len(raw)} bytes; sha256 of the whole payload {digest}]")
        return RejectedEvent(id=rid, received_at=received_at, source=self.source, reason=reason,
                             payload=payload, request_id=request_id)


Parsed = PushCompleted | SyncCompleted | TimerTick | Rejected


# ---- helpers -----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _norm_text(key: str) -> str:
    return re.sub(r"[_\-\s]", "", key).lower()


def _norm(key: Any) -> str:
    """A key without case and separators; memoised: the same few dozen keys come in every event."""
    return _norm_text(key if isinstance(key, str) else str(key))


class _Keys:
    """Case- and separator-insensitive access to a mapping's scalar values."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self._by_norm: dict[str, Any] = {}
        for k, v in data.items():
            self._by_norm.setdefault(_norm(k), v)

    def raw(self, *names: str) -> Any:
        for n in names:
            if _norm(n) in self._by_norm:
                return self._by_norm[_norm(n)]
        return None

    def text(self, *names: str) -> str | None:
        """The first of ``names`` holding a non-empty string (ints accepted: ids sometimes are)."""
        for n in names:
            v = self._by_norm.get(_norm(n))
            if isinstance(v, bool):
                continue
            if isinstance(v, int):
                return str(v)
            if isinstance(v, str) and v.strip():
                return v.strip()
        return None

    def has_any(self, *names: str) -> bool:
        return any(_norm(n) in self._by_norm for n in names)


_INSTANCE_KEYS = ("InstanceId",)
_NAMESPACE_KEYS = ("RepoNamespaceName", "RepoNamespace", "NamespaceName", "Namespace")
_REPO_KEYS = ("RepoName", "RepositoryName", "Repo", "Name")
_FULL_NAME_KEYS = ("RepoFullName",)
_TAG_KEYS = ("Tag", "ImageTag")
_DIGEST_KEYS = ("Digest", "ImageDigest", "ManifestDigest")
_SYNC_TASK_KEYS = ("SyncTaskId", "TaskId")
_SYNC_BATCH_KEYS = ("SyncBatchTaskId", "SyncRecordId", "BatchTaskId")


def _keepable(text: str) -> str:
    """``text`` if it can be stored as UTF-8, else base64 of its bytes (lone surrogates), so nothing is
    lost."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


def _payload_text(item: Any) -> str:
    """The raw payload as text for a Rejected item, with secret values masked."""
    if isinstance(item, (bytes, bytearray)):
        try:
            return jsonlog.scrub_text(bytes(item).decode("utf-8"))
        except UnicodeDecodeError:
            return base64.b64encode(bytes(item)).decode("ascii")
    if isinstance(item, str):
        return _keepable(jsonlog.scrub_text(item))
    return _json_payload(item)


def _json_payload(item: Any) -> str:
    """A decoded JSON value (e.g. one element of a batch) back as JSON text, with secret values masked."""
    try:
        text = json.dumps(item, ensure_ascii=False, default=repr)
    except (ValueError, TypeError, RecursionError):
        text = repr(item)
    return _keepable(jsonlog.scrub_text(text))


def _stable_id(prefix: str, obj: Any) -> str:
    try:
        canon = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (ValueError, TypeError, RecursionError):
        canon = repr(obj)
    return f"{prefix}-{hashlib.sha256(canon.encode('utf-8', 'surrogatepass')).hexdigest()[:24]}"


def _zoned_time(text: str | None) -> _dt.datetime | None:
    """ISO 8601 / RFC 3339 with a zone -> datetime; None for anything else (no guessing a zone)."""
    if not text or not isinstance(text, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        return None
    return t


def _name_problem(what: str, value: str | None, keys: tuple[str, ...]) -> str | None:
    if value is None:
        return f"no {what} (looked for {'/'.join(keys)})"
    if not _NAME_OK.fullmatch(value):
        return (f"{what} {value[:80]!r} is not a usable name (empty, too long or has spaces/control "
                "characters)")
    return None


def _image_side(value: Any) -> ImageSide | None:
    if not isinstance(value, Mapping):
        return None
    k = _Keys(value)
    return ImageSide(instance_id=k.text("InstanceId") or "", region=k.text("RegionId", "Region") or "",
                     namespace=k.text(*_NAMESPACE_KEYS) or "", repo=k.text("RepoName", "Repo") or "",
                     tag=k.text("ImageTag", "Tag") or "")


# ---- per-shape parsers ------------------------------------------------------------------------------

def _push_from_data(data: Mapping[str, Any], *, event_id: str, via: Literal["eventbridge", "rawdata"],
                    raw: dict[str, Any], envelope: Mapping[str, Any] | None, payload: str) -> Parsed:
    k = _Keys(data)
    env = _Keys(envelope or {})
    instance_id = k.text(*_INSTANCE_KEYS)
    namespace = k.text(*_NAMESPACE_KEYS)
    repo = k.text(*_REPO_KEYS)
    full = k.text(*_FULL_NAME_KEYS)
    if full and "/" in full and (namespace is None or repo is None):
        ns_part, _, repo_part = full.partition("/")
        namespace, repo = namespace or ns_part, repo or repo_part
    if repo and "/" in repo:
        ns_part, _, repo_part = repo.partition("/")
        if namespace is None or namespace == ns_part:
            namespace, repo = ns_part, repo_part
    tag = k.text(*_TAG_KEYS)
    problems = [p for p in (
        None if instance_id else f"no instance id (looked for {'/'.join(_INSTANCE_KEYS)})",
        _name_problem("namespace", namespace, _NAMESPACE_KEYS),
        _name_problem("repository name", repo, _REPO_KEYS),
        _name_problem("tag", tag, _TAG_KEYS),
    ) if p]
    if problems:
        return Rejected(reason=f"malformed {PUSH_TYPE} event: {'; '.join(problems)}. The event data schema "
                               "is not documented: compare this payload with the parser in acrsync/events.py",
                        payload=payload, source="eventbridge", event_id=event_id)
    # no problem means each of them was found (a missing one is a problem)
    assert instance_id and namespace is not None and repo is not None and tag is not None
    return PushCompleted(
        event_id=event_id, time=_zoned_time(env.text("time")),
        account_id=env.text("aliyunaccountid") or k.text("AccountId", "AliUid", "UserId"),
        region=k.text("RegionId", "Region") or env.text("aliyunregionid"),
        instance_id=instance_id, instance_name=k.text("InstanceName"), namespace=namespace, repo=repo,
        repo_id=k.text("RepoId"), tag=tag, digest=k.text(*_DIGEST_KEYS), via=via, raw=raw)


def _sync_from_data(data: Mapping[str, Any], *, event_id: str, raw: dict[str, Any],
                    envelope: Mapping[str, Any] | None) -> SyncCompleted:
    k = _Keys(data)
    env = _Keys(envelope or {})
    return SyncCompleted(
        event_id=event_id, time=_zoned_time(env.text("time")),
        account_id=env.text("aliyunaccountid"),
        region=k.text("RegionId", "Region") or env.text("aliyunregionid"),
        instance_id=k.text("InstanceId"), task_id=k.text(*_SYNC_TASK_KEYS),
        batch_id=k.text(*_SYNC_BATCH_KEYS),
        status=k.text("TaskStatus", "SyncStatus", "Status"),
        image_from=_image_side(k.raw("ImageFrom")), image_to=_image_side(k.raw("ImageTo")), raw=raw)


def _cloudevent_data(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``data`` object, also when it arrives as JSON text or ``data_base64``."""
    data = obj.get("data")
    if data is None and isinstance(obj.get("data_base64"), str):
        try:
            data = base64.b64decode(obj["data_base64"], validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            return None
    return data if isinstance(data, Mapping) else None


def _parse_cloudevent(obj: dict[str, Any], payload: str) -> Parsed:
    ev_id = obj.get("id")
    event_id = ev_id.strip() if isinstance(ev_id, str) and ev_id.strip() else _stable_id("ce", obj)
    source, etype = obj.get("source"), obj.get("type")
    if source != ACR_SOURCE:
        return Rejected(reason=f"event source {source!r} (type {etype!r}) is not handled; {_FILTER_HINT}",
                        payload=payload, source="eventbridge", event_id=event_id)
    if etype not in (PUSH_TYPE, SYNC_TYPE):
        return Rejected(reason=f"event type {etype!r} is not handled; {_FILTER_HINT}",
                        payload=payload, source="eventbridge", event_id=event_id)
    data = _cloudevent_data(obj)
    if data is None:
        return Rejected(reason=f"malformed {etype} event: 'data' is missing or not a JSON object",
                        payload=payload, source="eventbridge", event_id=event_id)
    if etype == SYNC_TYPE:
        return _sync_from_data(data, event_id=event_id, raw=obj, envelope=obj)
    return _push_from_data(data, event_id=event_id, via="eventbridge", raw=obj, envelope=obj, payload=payload)


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    for k, v in headers.items():
        if str(k).lower() == name:
            return v if isinstance(v, str) else None
    return None


TOKEN_DIGEST_PREFIX = "sha256:"


def _token_ok(provided: str | None, expected: str) -> bool:
    """``expected`` is the token, or ``sha256:<hex>`` (its digest: what s.yaml deploys, so that neither
    ``s preview`` nor the function's configuration shows the token)."""
    if provided is None:
        return False
    given = provided.encode("utf-8", "surrogatepass")
    if expected.startswith(TOKEN_DIGEST_PREFIX):
        digest = expected[len(TOKEN_DIGEST_PREFIX):].strip().lower()
        return hmac.compare_digest(hashlib.sha256(given).hexdigest(), digest)
    return hmac.compare_digest(given, expected.encode("utf-8", "surrogatepass"))


def _parse_webhook(obj: dict[str, Any], payload: str, *, webhook_token: str | None,
                   source_instance_id: str | None) -> Parsed:
    def reject(reason: str, *, unauthenticated: bool = False, event_id: str | None = None) -> Rejected:
        return Rejected(reason=reason, payload=payload, source="webhook", event_id=event_id,
                        unauthenticated=unauthenticated)

    if not webhook_token:
        return reject("unauthenticated webhook: no webhook token is configured, so no webhook request is "
                      "accepted; set one and put it in the ACR trigger URL as ?token=...",
                      unauthenticated=True)
    query = obj.get("queryParameters")
    provided = _header(obj.get("headers"), TOKEN_HEADER)
    if provided is None and isinstance(query, Mapping) and isinstance(query.get(TOKEN_QUERY), str):
        provided = query[TOKEN_QUERY]
    if not _token_ok(provided, webhook_token):
        what = "has no token" if provided is None else "has a wrong token"
        return reject(f"unauthenticated webhook: the request {what}; the ACR trigger URL must end in "
                      f"?{TOKEN_QUERY}=<the configured webhook token> (or send header {TOKEN_HEADER})",
                      unauthenticated=True)
    request_context = obj.get("requestContext")
    ctx: Mapping[str, Any] = request_context if isinstance(request_context, Mapping) else {}
    method = ctx.get("http", {}).get("method") if isinstance(ctx.get("http"), Mapping) else None
    if isinstance(method, str) and method.upper() != "POST":
        return reject(f"malformed webhook: method {method} is not accepted; ACR sends a POST")
    body: Any = obj.get("body")
    if isinstance(body, str) and obj.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return reject("malformed webhook: isBase64Encoded is true but the body is not base64 of UTF-8 "
                          "text")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return reject("malformed webhook: the body is not JSON; expected ACR's push notification "
                          "{\"push_data\": {...}, \"repository\": {...}}")
    if not isinstance(body, Mapping) or not isinstance(body.get("push_data"), Mapping) \
            or not isinstance(body.get("repository"), Mapping):
        return reject("malformed webhook: the body has no 'push_data' and 'repository' objects; is the ACR "
                      "trigger pointing at the right function?")
    if not source_instance_id:
        return reject("malformed webhook: the webhook payload names no instance and no source instance id "
                      "is configured; set source.instance_id in the replication config")
    push, repo_obj = _Keys(body["push_data"]), _Keys(body["repository"])
    namespace, repo = repo_obj.text("namespace"), repo_obj.text("name")
    full = repo_obj.text("repo_full_name")
    if full and "/" in full and (namespace is None or repo is None):
        ns_part, _, repo_part = full.partition("/")
        namespace, repo = namespace or ns_part, repo or repo_part
    tag = push.text("tag")
    event_id = _stable_id("webhook", body)
    problems = [p for p in (_name_problem("repository.namespace", namespace, ("namespace", "repo_full_name")),
                            _name_problem("repository.name", repo, ("name", "repo_full_name")),
                            _name_problem("push_data.tag", tag, ("tag",))) if p]
    if problems:
        return reject(f"malformed webhook: {'; '.join(problems)}", event_id=event_id)
    epoch = ctx.get("timeEpoch")
    received = None
    if isinstance(epoch, (str, int)) and re.fullmatch(r"\d{1,14}", str(epoch)):
        received = _dt.datetime.fromtimestamp(int(epoch) / 1000, _dt.timezone.utc)
    assert namespace is not None and repo is not None and tag is not None   # else a problem above
    return PushCompleted(
        event_id=event_id, time=received, account_id=None,
        region=repo_obj.text("region"), instance_id=source_instance_id, namespace=namespace, repo=repo,
        tag=tag, digest=push.text("digest"), via="webhook", raw=dict(body))


def _parse_timer(obj: dict[str, Any], payload: str) -> Parsed:
    name, when, text = obj.get("triggerName"), obj.get("triggerTime"), obj.get("payload", "")
    if not isinstance(name, str) or not isinstance(when, (str, type(None))):
        return Rejected(reason="malformed timer event: triggerName must be a string and triggerTime a "
                               "string such as 2018-02-09T05:49:00Z", payload=payload, source="timer")
    if isinstance(text, Mapping):
        return TimerTick(trigger_name=name, trigger_time=when, payload=dict(text))
    if text is None:
        text = ""
    if not isinstance(text, str):
        return Rejected(reason="malformed timer event: payload must be the trigger's configured text",
                        payload=payload, source="timer")
    try:
        parsed = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        parsed = None
    return TimerTick(trigger_name=name, trigger_time=when,
                     payload=parsed if isinstance(parsed, dict) else text)


def _is_http(obj: Mapping[str, Any]) -> bool:
    return "requestContext" in obj or ("rawPath" in obj and ("headers" in obj or "body" in obj))


def _parse_item(item: Any, payload: str, *, webhook_token: str | None,
                source_instance_id: str | None) -> Parsed:
    if not isinstance(item, dict):
        return Rejected(reason=f"malformed event: expected a JSON object, got {type(item).__name__}; "
                               "the trigger should deliver CloudEvents, an HTTP request or a timer event",
                        payload=payload, source="unknown")
    if "specversion" in item or {"type", "source", "data"} <= item.keys():
        return _parse_cloudevent(item, payload)
    if _is_http(item):
        return _parse_webhook(item, payload, webhook_token=webhook_token,
                              source_instance_id=source_instance_id)
    if "triggerName" in item and "triggerTime" in item:
        return _parse_timer(item, payload)
    if "push_data" in item and "repository" in item:
        return Rejected(reason="unauthenticated webhook: an ACR webhook payload arrived without the FC HTTP "
                               "trigger envelope, so its token cannot be checked; point the ACR trigger at "
                               "the function's HTTP trigger URL", payload=payload, source="webhook",
                        unauthenticated=True)
    keys = _Keys(item)
    if keys.has_any(*_SYNC_TASK_KEYS, *_SYNC_BATCH_KEYS):
        return _sync_from_data(item, event_id=_stable_id("raw", item), raw=item, envelope=None)
    if (keys.has_any(*_INSTANCE_KEYS) and keys.has_any(*_REPO_KEYS, *_FULL_NAME_KEYS)
            and keys.has_any(*_TAG_KEYS)):
        return _push_from_data(item, event_id=_stable_id("raw", item), via="rawdata", raw=item,
                               envelope=None, payload=payload)
    return Rejected(reason="unrecognised event: not a CloudEvent (no specversion), not RawData of a push "
                           "(no InstanceId/RepoName/Tag), not an HTTP trigger request and not a timer event",
                    payload=payload, source="unknown")


def _storable(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _field_problems(parsed: PushCompleted | SyncCompleted) -> list[str]:
    """Every string the event would carry into the ledger, checked: identifiers by _ID_OK, the digest by
    _DIGEST_OK, names by _NAME_OK (already at parse time), free text (instance name) only for encodability.
    A lone surrogate (valid JSON "\\udfff") fails every one of them, so it is a Rejected, never a crash
    when the value is stored."""
    problems = []

    def check(label: str, value: str | None, pattern: re.Pattern[str] | None) -> None:
        if value is None:
            return
        if not _storable(value) or (pattern is not None and not pattern.fullmatch(value)):
            problems.append(f"{label} {value[:80]!r} is not a valid {label}")

    check("event id", parsed.event_id, _ID_OK)
    for label, value in (("account id", parsed.account_id), ("region", parsed.region),
                         ("instance id", parsed.instance_id)):
        check(label, value, _ID_OK)
    if isinstance(parsed, PushCompleted):
        check("instance name", parsed.instance_name, None)
        check("repository id", parsed.repo_id, _ID_OK)
        check("digest", parsed.digest, _DIGEST_OK)
        for label, value in (("namespace", parsed.namespace), ("repository name", parsed.repo),
                             ("tag", parsed.tag)):
            check(label, value, _NAME_OK)
    else:
        check("task id", parsed.task_id, _ID_OK)
        check("batch id", parsed.batch_id, _ID_OK)
        check("task status", parsed.status, _ID_OK)
        for side_name, side in (("ImageFrom", parsed.image_from), ("ImageTo", parsed.image_to)):
            if side is None:
                continue
            for label in ("instance_id", "region", "namespace", "repo", "tag"):
                value = getattr(side, label)
                check(f"{side_name}.{label}", value or None, None)
    return problems


def _unstorable_at(value: Any, path: str = "") -> str | None:
    """Where in a decoded JSON value a key or string cannot be encoded as UTF-8 (None: nowhere)."""
    if isinstance(value, str):
        return None if _storable(value) else (path or "(the value)")
    if isinstance(value, Mapping):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and not _storable(k):
                return where.encode("utf-8", "backslashreplace").decode("utf-8")
            found = _unstorable_at(v, where)
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _unstorable_at(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _checked(parsed: Parsed) -> Parsed:
    """A typed event whose every string is storable and well-formed, else a Rejected saying which is not."""
    if isinstance(parsed, (PushCompleted, SyncCompleted)):
        problems = _field_problems(parsed)
        bad_at = _unstorable_at(parsed.raw)
        if bad_at and not problems:
            problems = [f"{bad_at} holds text that cannot be stored as UTF-8 (a lone surrogate)"]
        if problems:
            kind = PUSH_TYPE if isinstance(parsed, PushCompleted) else SYNC_TYPE
            via = getattr(parsed, "via", "eventbridge")
            return Rejected(reason=f"malformed {kind} event: {'; '.join(problems)}",
                            payload="", source="webhook" if via == "webhook" else "eventbridge",
                            event_id=parsed.event_id if _storable(parsed.event_id) and
                            _ID_OK.fullmatch(parsed.event_id) else None)
    if isinstance(parsed, Rejected):
        updates: dict[str, Any] = {}
        event_id = parsed.event_id
        if event_id is not None and not (_storable(event_id) and _ID_OK.fullmatch(event_id)):
            updates["event_id"] = None                 # the record gets an id derived from the payload
        if not _storable(parsed.reason):
            updates["reason"] = parsed.reason.encode("utf-8", "backslashreplace").decode("utf-8")
        if updates:
            parsed = dataclasses.replace(parsed, **updates)
    return parsed


def _safe_item(item: Any, payload: Callable[[], str], **kw: Any) -> Parsed:
    """One item, parsed. ``payload()`` gives its raw text (secrets masked); it is computed only for a
    Rejected, the one thing that keeps it (masking costs more than parsing a good event)."""
    try:
        parsed = _checked(_parse_item(item, "", **kw))
        if isinstance(parsed, Rejected):
            parsed = dataclasses.replace(parsed, payload=payload())
        return parsed
    except Exception as e:  # the contract is "never raise for bad input"
        jsonlog.log_decision(log, "event parser failed", logging.ERROR, error=f"{type(e).__name__}: {e}")
        return Rejected(reason=f"internal error while parsing ({type(e).__name__}: {e}); the event is kept, "
                               "report it with this payload", payload=_json_payload(item), source="unknown")


def detect_and_parse(event: bytes | bytearray | str | dict[str, Any] | list[Any] | Any, *,
                     webhook_token: str | None,
                     source_instance_id: str | None) -> list[Parsed]:
    """Every item of ``event`` as a typed event or a Rejected; never raises for bad input.

    ``webhook_token`` is the configured shared secret for ACR webhooks (None: webhooks are refused);
    ``source_instance_id`` is the configured source instance, which a webhook payload does not name.
    """
    if isinstance(event, (bytes, bytearray)):
        try:
            text = bytes(event).decode("utf-8")
        except UnicodeDecodeError:
            return [Rejected(reason="malformed event: the bytes are not UTF-8 text",
                             payload=base64.b64encode(bytes(event)).decode("ascii"), source="unknown")]
    elif isinstance(event, str):
        text = event
    elif isinstance(event, (dict, list)):
        text = None
        obj: Any = event
    else:
        return [Rejected(reason=f"malformed event: a {type(event).__name__} is not an event; expected bytes, "
                                "text or a JSON object", payload=_payload_text(event), source="unknown")]
    if text is not None and not text.strip():
        return [Rejected(reason="malformed event: the event is empty", payload=_payload_text(text),
                         source="unknown")]
    if text is not None:
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as e:
            return [Rejected(reason=f"malformed event: not JSON ({str(e)[:120]})",
                             payload=_payload_text(text), source="unknown")]
    if log.isEnabledFor(logging.DEBUG):
        jsonlog.log_decision(log, "event received", logging.DEBUG, event=obj)
    kw = {"webhook_token": webhook_token, "source_instance_id": source_instance_id}
    if isinstance(obj, list):
        return [_safe_item(i, functools.partial(_json_payload, i), **kw) for i in obj]
    whole = functools.partial(_json_payload, obj) if text is None else functools.partial(_payload_text, text)
    return [_safe_item(obj, whole, **kw)]


parse = detect_and_parse


def http_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """The FC 3.0 HTTP trigger response object for a JSON reply."""
    return {"statusCode": int(status), "headers": {"Content-Type": "application/json"},
            "isBase64Encoded": False, "body": json.dumps(body, ensure_ascii=False, default=str)}
