"""Request signatures of Alibaba Cloud RPC APIs, checked the way the service checks them.

Two schemes reach localcloud:
- V3 ``ACS3-HMAC-SHA256`` (tea-openapi's default): an ``Authorization`` header over a canonical request built
  from the method, path, sorted percent-encoded query, the signed headers and ``x-acs-content-sha256``.
- V1 ``HMAC-SHA1`` (``SignatureVersion=1.0`` in the query): ``Config(signature_algorithm='v2')`` and the
  ``alibabacloud_credentials`` ram_role_arn provider, which signs its own AssumeRole.
Only the arithmetic lives here; who owns a key is ``localcloud.identity``'s job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from localcloud.service import ServiceError

V3_ALGORITHM = "ACS3-HMAC-SHA256"


def _pct(value: str) -> str:
    """RFC 3986 percent-encoding as Alibaba Cloud uses it (space -> %20, ``~`` kept, ``*`` -> %2A)."""
    return quote(value, safe="~", encoding="utf-8")


@dataclass(frozen=True)
class V3Authorization:
    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_v3_authorization(header: str) -> V3Authorization:
    """Split ``ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..``; garbled ->
    IncompleteSignature."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != V3_ALGORITHM:
        raise ServiceError(400, "IncompleteSignature",
                           f"The Authorization header uses {algorithm or 'no'} algorithm; localcloud "
                           f"verifies {V3_ALGORITHM} (or V1 HMAC-SHA1 with SignatureVersion=1.0 in the "
                           "query).")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not parts.get(k)]
    if missing:
        raise ServiceError(400, "IncompleteSignature",
                           f"The Authorization header lacks {', '.join(missing)}.")
    return V3Authorization(algorithm, parts["Credential"], tuple(parts["SignedHeaders"].split(";")),
                           parts["Signature"])


def v3_signature(method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                 signed_headers: tuple[str, ...], payload_hash: str, secret: str) -> str:
    """The hex signature V3 expects. ``headers`` have lower-cased names."""
    canon_query = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(query))
    canon_headers = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed_headers)
    canonical = "\n".join([method, path or "/", canon_query, canon_headers, ";".join(signed_headers),
                           payload_hash])
    to_sign = V3_ALGORITHM + "\n" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_v3(method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes,
              auth: V3Authorization, secret: str) -> bool:
    payload_hash = hashlib.sha256(body).hexdigest()
    if headers.get("x-acs-content-sha256", payload_hash) != payload_hash:
        return False
    want = v3_signature(method, path, query, headers, auth.signed_headers, payload_hash, secret)
    return hmac.compare_digest(want, auth.signature)


def v1_signature(method: str, params: dict[str, str], secret: str, *, plus_spaces: bool = False) -> str:
    """base64 HMAC-SHA1 over ``METHOD&%2F&pct(sorted k=v)``, key ``secret&``.

    ``plus_spaces`` reproduces alibabacloud_credentials' variant, which encodes with ``quote_plus``."""
    enc = (lambda s: quote_plus(s, encoding="utf-8")) if plus_spaces else _pct
    canon = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()) if k != "Signature")
    outer = quote_plus(canon, encoding="utf-8") if plus_spaces else _pct(canon)
    to_sign = f"{method}&%2F&{outer}"
    digest = hmac.new((secret + "&").encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_v1(method: str, params: dict[str, str], secret: str) -> bool:
    got = params.get("Signature", "")
    return any(hmac.compare_digest(v1_signature(method, params, secret, plus_spaces=plus), got)
               for plus in (False, True))
