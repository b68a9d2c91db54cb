"""Signatures and identities, through the real SDK clients over HTTP."""

from __future__ import annotations

import pytest
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.exceptions import ClientException

from localcloud import signing
from tests.demo_world import (
    A_KEY_ID,
    A_OPERATOR_KEY_ID,
    A_OPERATOR_SECRET,
    A_SECRET,
    ACCOUNT_A,
    B_KEY_ID,
    B_SECRET,
    CLI_KEY_ID,
    CLI_SECRET,
    http_json,
    make_sdk_config,
)


def sts(cloud, key_id, secret, token=None, **kw) -> StsClient:
    return StsClient(make_sdk_config(cloud, key_id, secret, token, **kw))


def test_v3_signature_is_accepted_and_identifies_the_root(cloud):
    body = sts(cloud, A_KEY_ID, A_SECRET).get_caller_identity().body
    assert (body.account_id, body.identity_type, body.arn) == (ACCOUNT_A, "Account",
                                                               f"acs:ram::{ACCOUNT_A}:root")
    assert body.request_id


def test_v3_identifies_a_ram_user(cloud):
    body = sts(cloud, A_OPERATOR_KEY_ID, A_OPERATOR_SECRET).get_caller_identity().body
    assert body.identity_type == "RAMUser"
    assert body.arn == f"acs:ram::{ACCOUNT_A}:user/acrsync-operator"
    assert body.user_id and body.user_id == body.principal_id


def test_wrong_secret_is_refused(cloud):
    with pytest.raises(ClientException) as err:
        sts(cloud, A_KEY_ID, "not-the-secret").get_caller_identity()
    assert err.value.code == "SignatureDoesNotMatch"
    assert err.value.status_code == 400
    assert "not matched" in err.value.message


def test_unknown_key_is_refused(cloud):
    with pytest.raises(ClientException) as err:
        sts(cloud, "LTAIUNKNOWNKEY", "whatever").get_caller_identity()
    assert (err.value.code, err.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)


def test_v1_signature_is_accepted_and_checked(cloud):
    body = sts(cloud, B_KEY_ID, B_SECRET, signature_algorithm="v2").get_caller_identity().body
    assert body.account_id == "2222222222222222"
    with pytest.raises(ClientException) as err:
        sts(cloud, B_KEY_ID, "wrong", signature_algorithm="v2").get_caller_identity()
    assert err.value.code == "SignatureDoesNotMatch"


def test_v1_session_policy_with_spaces_signed_either_way(cloud):
    # The SDK percent-encodes spaces as %20; alibabacloud_credentials signs them as '+'. Both verify.
    params = {"Action": "GetCallerIdentity", "Policy": "a b~*", "AccessKeyId": A_KEY_ID}
    for plus in (False, True):
        params["Signature"] = signing.v1_signature("GET", params, A_SECRET, plus_spaces=plus)
        assert signing.verify_v1("GET", params, A_SECRET)
    params["Signature"] = signing.v1_signature("GET", params, "other")
    assert not signing.verify_v1("GET", params, A_SECRET)


def raw_post(cloud, headers: dict[str, str]) -> tuple[int, dict]:
    return http_json(cloud, "POST", "/?Foo=bar", b"", headers)


def test_unsigned_and_garbled_requests(cloud):
    rpc = {"x-acs-action": "GetCallerIdentity", "x-acs-version": "2015-04-01"}
    status, body = raw_post(cloud, rpc)
    assert (status, body["Code"]) == (400, "MissingParameter")
    status, body = raw_post(cloud, {**rpc, "Authorization": "ACS3-HMAC-SHA256 Credential=x"})
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    status, body = raw_post(cloud, {**rpc, "Authorization": "Basic abc"})
    assert (status, body["Code"]) == (400, "IncompleteSignature")


def test_security_token_with_a_long_term_key_is_malformed(cloud):
    with pytest.raises(ClientException) as err:
        sts(cloud, A_KEY_ID, A_SECRET, token="made-up-token").get_caller_identity()
    assert err.value.code == "InvalidSecurityToken.Malformed"


def test_sts_credentials_need_their_own_token(cloud):
    creds = sts(cloud, CLI_KEY_ID, CLI_SECRET).assume_role(sts_models.AssumeRoleRequest(
        role_arn="acs:ram::2222222222222222:role/acrsync-reader",
        role_session_name="sig-test")).body.credentials
    with pytest.raises(ClientException) as err:
        sts(cloud, creds.access_key_id, creds.access_key_secret, "CAISwrong").get_caller_identity()
    assert err.value.code == "InvalidSecurityToken.Malformed"
    with pytest.raises(ClientException) as err:
        sts(cloud, creds.access_key_id, "wrong", creds.security_token).get_caller_identity()
    assert err.value.code == "SignatureDoesNotMatch"


def v3_call(cloud, *, date: str, nonce: str, key_id: str = CLI_KEY_ID, secret: str = CLI_SECRET):
    """A hand-signed V3 GetCallerIdentity (the SDK always sends a fresh date and nonce)."""
    import hashlib

    payload = hashlib.sha256(b"").hexdigest()
    headers = {"host": f"127.0.0.1:{cloud.port}", "x-acs-action": "GetCallerIdentity",
               "x-acs-version": "2015-04-01", "x-acs-date": date, "x-acs-signature-nonce": nonce,
               "x-acs-content-sha256": payload}
    signed = tuple(sorted(headers))
    sig = signing.v3_signature("POST", "/", [], headers, signed, payload, secret)
    headers["Authorization"] = (f"{signing.V3_ALGORITHM} "
                                f"Credential={key_id},SignedHeaders={';'.join(signed)},Signature={sig}")
    return http_json(cloud, "POST", "/", b"", headers)


def _utc(offset_seconds: float = 0) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_seconds))


def test_v3_signature_within_15_minutes_with_a_fresh_nonce_is_accepted(cloud):
    status, body = v3_call(cloud, date=_utc(-14 * 60), nonce="made-up-nonce-1")
    assert (status, body["AccountId"]) == (200, ACCOUNT_A)


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
def test_v3_signature_older_or_newer_than_15_minutes_is_refused(cloud, offset):
    # https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature
    status, body = v3_call(cloud, date=_utc(offset), nonce=f"made-up-nonce-{offset}")
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_v3_signature_with_a_reused_nonce_is_refused(cloud):
    assert v3_call(cloud, date=_utc(), nonce="made-up-nonce-once")[0] == 200
    status, body = v3_call(cloud, date=_utc(), nonce="made-up-nonce-once")
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    assert v3_call(cloud, date=_utc(), nonce="made-up-nonce-twice")[0] == 200
