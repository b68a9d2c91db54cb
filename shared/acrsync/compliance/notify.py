"""Tell a chat when the verdict changes: a DingTalk custom robot message (markdown), signed when the
webhook URL carries a ``secret`` (kept out of the request we send).

Signing, as DingTalk's custom robot security settings describe it: ``timestamp`` in milliseconds,
``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``, both appended to the
webhook URL as query parameters.
https://open.dingtalk.com/document/robots/customize-robot-security-settings
Message body (``msgtype: markdown``): https://open.dingtalk.com/document/robots/custom-robot-access
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from acrsync.compliance.report import ComplianceReport

log = logging.getLogger("acrsync.compliance")

TIMEOUT_SECONDS = 5.0


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, already URL-encoded (it is a query parameter)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_url(url: str, timestamp_ms: int) -> str:
    """The URL to POST to: without ``secret``, with ``timestamp`` and ``sign`` when there was a secret."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    secret = next((v for k, v in query if k == "secret"), None)
    kept = [(k, v) for k, v in query if k not in ("secret", "timestamp", "sign")]
    text = urllib.parse.urlencode(kept)
    if secret:
        text = (text + "&" if text else "") + f"timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, text, ""))


def message(report: ComplianceReport, previous: str | None) -> dict[str, Any]:
    """The robot's markdown message: the verdict, the change, counts per target and code."""
    title = f"acrsync compliance: {report.verdict}"
    lines = [
        f"### {title}",
        "",
        f"- verdict: **{report.verdict}** (was {previous or 'unknown'})",
        f"- report: {report.id} (`acrsync report show {report.id}`)",
        f"- source: {report.scope.source_instance}; repositories checked: {report.scope.repos_checked} of "
        f"{report.scope.repos_total}" + ("" if report.complete else " (partial; the next run resumes)"),
    ]
    for target, codes in report.counts().items():
        lines.append(f"- {target}: " + ", ".join(f"{code} {n}" for code, n in codes.items()))
    return {"msgtype": "markdown", "markdown": {"title": title, "text": "\n".join(lines)}}


def changed(previous: str | None, report: ComplianceReport) -> bool:
    """Compliant <-> findings; no earlier report counts as compliant. A partial run tells only findings."""
    before = previous or "compliant"
    if report.verdict == before:
        return False
    return report.complete or report.verdict == "findings"


def send(url: str, body: dict[str, Any], *, now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
         timeout: float = TIMEOUT_SECONDS) -> bool:
    """POST the message; False (logged, never raised) when it could not be delivered."""
    req = urllib.request.Request(signed_url(url, now_ms()), data=json.dumps(body).encode("utf-8"),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read() or b"{}")
    except (OSError, ValueError) as e:
        log.warning("compliance notification not delivered: %s", type(e).__name__)
        return False
    if isinstance(reply, dict) and reply.get("errcode", 0) != 0:
        log.warning("compliance notification refused: errcode %s", reply.get("errcode"))
        return False
    return True
