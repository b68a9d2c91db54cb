"""Who signed a request: account root keys, RAM users' keys, and STS temporary credentials.

The server calls :func:`authenticate` for every RPC request; the Tablestore service checks its own
signature scheme with :func:`secret_for`. STS sessions live in ``world.backends["sts"]`` so that a role's
temporary key works on every service of the emulator, as in the cloud.
"""

from __future__ import annotations

import calendar
import hmac
import secrets
import time
from dataclasses import dataclass, field

from localcloud import signing
from localcloud.service import Caller, ServiceError
from localcloud.state import World


@dataclass(frozen=True)
class TemporaryCredential:
    """One AssumeRole result."""

    access_key_id: str          # "STS.<random>"
    secret: str
    token: str
    expires: float              # emulator-clock seconds
    account_id: str             # the role's account
    role_name: str
    role_id: str
    session_name: str
    session_policy: str | None = None


@dataclass
class Sessions:
    """Issued STS credentials by access key id."""

    by_key: dict[str, TemporaryCredential] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    caller: Caller
    secret: str
    session: TemporaryCredential | None = None


def sessions(world: World) -> Sessions:
    with world.lock:
        return world.backends.setdefault("sts", Sessions())


def issue(world: World, *, account_id: str, role_name: str, role_id: str, session_name: str,
          duration: int, session_policy: str | None) -> TemporaryCredential:
    """Mint temporary credentials for a role session (the STS service decides whether it may)."""
    cred = TemporaryCredential(
        access_key_id="STS." + secrets.token_hex(12),
        secret=secrets.token_urlsafe(30),
        token="CAIS" + secrets.token_urlsafe(96),
        expires=world.clock.now() + duration,
        account_id=account_id, role_name=role_name, role_id=role_id, session_name=session_name,
        session_policy=session_policy,
    )
    with world.lock:
        sessions(world).by_key[cred.access_key_id] = cred
    return cred


def lookup(world: World, access_key_id: str, token: str | None) -> Identity:
    """The identity owning ``access_key_id``; raises the error the real service gives otherwise."""
    if access_key_id.startswith("STS."):
        return _session_identity(world, access_key_id, token)
    if token:
        raise ServiceError(400, "InvalidSecurityToken.Malformed",
                           "A security token was sent with a long-term access key; send it only with "
                           "STS keys.")
    with world.lock:
        for account in world.accounts.values():
            if access_key_id in account.access_keys:
                return Identity(Caller(account.account_id, access_key_id, "root"),
                                account.access_keys[access_key_id])
            for user_name, user in account.users.items():
                keys = user.get("access_keys", {})
                if access_key_id in keys:
                    return Identity(Caller(account.account_id, access_key_id, "user", name=user_name),
                                    keys[access_key_id])
    raise ServiceError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")


def _session_identity(world: World, access_key_id: str, token: str | None) -> Identity:
    with world.lock:
        cred = sessions(world).by_key.get(access_key_id)
    if cred is None:
        raise ServiceError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if not token or not hmac.compare_digest(token, cred.token):
        raise ServiceError(400, "InvalidSecurityToken.Malformed",
                           "The security token is missing or does not belong to this STS access key.")
    if world.clock.now() >= cred.expires:
        raise ServiceError(400, "InvalidSecurityToken.Expired",
                           "Specified SecurityToken is expired. Assume the role again to get new "
                           "credentials.")
    caller = Caller(cred.account_id, access_key_id, "role", name=cred.role_name,
                    session_name=cred.session_name)
    return Identity(caller, cred.secret, cred)


def secret_for(world: World):
    """``secret_for(access_key_id, token) -> secret | None`` for services that verify their own signatures."""

    def _secret(access_key_id: str, token: str | None) -> str | None:
        try:
            return lookup(world, access_key_id, token or None).secret
        except ServiceError:
            return None

    return _secret


def authenticate(world: World, method: str, path: str, query: list[tuple[str, str]],
                 params: dict[str, str], headers: dict[str, str], body: bytes) -> Identity:
    """Check the signature of an RPC request (V3 header or V1 query) and return the signer."""
    authorization = headers.get("authorization")
    if authorization:
        auth = signing.parse_v3_authorization(authorization)
        identity = lookup(world, auth.access_key_id, headers.get("x-acs-security-token"))
        if not signing.verify_v3(method, path, query, headers, body, auth, identity.secret):
            raise _mismatch()
        _check_fresh(world, auth.access_key_id, headers)
        return identity
    if params.get("Signature") and params.get("SignatureVersion"):
        if params.get("SignatureVersion") != "1.0" \
                or params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
            raise ServiceError(400, "InvalidSignatureMethod",
                               "Only SignatureMethod HMAC-SHA1 with SignatureVersion 1.0 is supported "
                               "for V1.")
        if not params.get("AccessKeyId"):
            raise ServiceError(400, "MissingParameter", "The input parameter AccessKeyId that is mandatory "
                                                        "for processing this request is not supplied.")
        identity = lookup(world, params["AccessKeyId"], params.get("SecurityToken"))
        if not signing.verify_v1(method, params, identity.secret):
            raise _mismatch()
        return identity
    raise ServiceError(400, "MissingParameter",
                       "The request is not signed: send an ACS3-HMAC-SHA256 Authorization header or V1 "
                       "Signature/SignatureVersion query parameters (use an Alibaba Cloud SDK).")


# V3 signatures
# (https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature):
# x-acs-date is the UTC time of the request and x-acs-signature-nonce a unique random value that prevents
# replays. A request dated more than 15 minutes from now, or reusing a nonce, is refused. The SDK signs with
# the real clock, so this compares with time.time(), never the emulator clock. Codes: Alibaba Cloud's common
# InvalidTimeStamp.Expired and SignatureNonceUsed (HTTP 400; the exact codes are UNVERIFIED for V3).
SIGNATURE_WINDOW_SECONDS = 15 * 60


@dataclass
class Nonces:
    """Nonces seen in the last SIGNATURE_WINDOW_SECONDS, by (access key id, nonce): wall time first seen."""

    seen: dict[tuple[str, str], float] = field(default_factory=dict)


def _check_fresh(world: World, access_key_id: str, headers: dict[str, str]) -> None:
    date = headers.get("x-acs-date", "")
    try:
        sent = calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise ServiceError(400, "InvalidTimeStamp.Format",
                           f"x-acs-date {date!r} is not a UTC time like 2026-01-01T00:00:00Z.") from None
    now = time.time()
    if abs(now - sent) > SIGNATURE_WINDOW_SECONDS:
        raise ServiceError(400, "InvalidTimeStamp.Expired",
                           f"Specified time stamp or date value is expired: x-acs-date {date} is more than "
                           "15 minutes from the current time.")
    nonce = headers.get("x-acs-signature-nonce", "")
    if not nonce:
        raise ServiceError(400, "MissingParameter", "The x-acs-signature-nonce header is required.")
    with world.lock:
        store = world.backends.setdefault("nonces", Nonces())
        if len(store.seen) > 10_000:
            store.seen = {k: t for k, t in store.seen.items() if now - t <= SIGNATURE_WINDOW_SECONDS}
        first = store.seen.get((access_key_id, nonce))
        if first is not None and now - first <= SIGNATURE_WINDOW_SECONDS:
            raise ServiceError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        store.seen[(access_key_id, nonce)] = now


def _mismatch() -> ServiceError:
    return ServiceError(400, "SignatureDoesNotMatch", "Specified signature is not matched with our "
                                                      "calculation.")
