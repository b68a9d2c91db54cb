"""SDK failures -> typed CloudErrors, built from the SDK's own exception classes."""

from __future__ import annotations

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from acrsync.cloud.errors import (
    AccessDenied,
    CloudError,
    CredentialsInvalid,
    NetworkError,
    NotFound,
    ServerError,
    Throttled,
    Unreachable,
    from_body,
    from_exception,
)


def sdk_error(cls, status, code, message="msg", rid="RID-1", **kw):
    """The shape tea-openapi raises: message prefixed with the status, data = the reply body."""
    return cls(status_code=status, code=code, message=f"code: {status}, {message} request id: {rid}",
               request_id=rid, data={"Code": code, "Message": message, "RequestId": rid}, **kw)


def unretryable(inner):
    """What darabonba raises when the request itself failed (darabonba-core: network errors, an HTML 502
    body)."""
    return UnretryableException(RetryPolicyContext(retries_attempted=1, exception=inner))


CASES = [
    (sdk_error(ClientException, 400, "Throttling.User"), Throttled, True),
    (sdk_error(ClientException, 400, "Throttling"), Throttled, True),
    (sdk_error(ServerException, 503, "ServiceUnavailable"), ServerError, True),
    (sdk_error(ServerException, 500, "SystemError"), ServerError, True),
    (sdk_error(ClientException, 404, "EntityNotExist.Role"), NotFound, False),
    (sdk_error(ClientException, 400, "REPO_NOT_EXIST"), NotFound, False),
    (sdk_error(ClientException, 404, "InvalidAccessKeyId.NotFound"), CredentialsInvalid, False),
    (sdk_error(ClientException, 400, "SignatureDoesNotMatch"), CredentialsInvalid, False),
    (sdk_error(ClientException, 403, "NoPermission"), AccessDenied, False),
    (sdk_error(ClientException, 403, "NoPrivilege"), AccessDenied, False),
    (sdk_error(ClientException, 400, "InvalidParameter"), CloudError, False),
    (unretryable(RetryError("HTTPConnectionPool: Connection refused")), Unreachable, True),
    (unretryable(RetryError("HTTPConnectionPool: Read timed out")), NetworkError, True),
    (unretryable(RuntimeError('Failed to parse the value as json format, Value: "<html>502</html>"')),
     ServerError, True),
]


@pytest.mark.parametrize(("exc", "cls", "retryable"), CASES, ids=[c[0].__class__.__name__ + ":" + str(
    getattr(c[0], "code", "")) for c in CASES])
def test_classification(exc, cls, retryable):
    err = from_exception(exc, service="cr", action="GetInstance")
    assert type(err) is cls
    assert err.retryable is retryable
    assert (err.service, err.action) == ("cr", "GetInstance")


def test_throttling_exception_carries_retry_after_in_seconds():
    exc = sdk_error(ThrottlingException, 400, "Throttling.Api", retry_after=1500)
    err = from_exception(exc, service="ram", action="GetRole")
    assert isinstance(err, Throttled) and err.retry_after == 1.5


def test_error_fields_and_text_name_what_failed():
    err = from_exception(sdk_error(ClientException, 400, "SignatureDoesNotMatch",
                                   message="bad sig", rid="R9"),
                         service="cr", action="GetInstance")
    assert (err.code, err.message, err.request_id, err.http_status) == ("SignatureDoesNotMatch",
                                                                        "bad sig", "R9", 400)
    text = str(err)
    for part in ("cr:GetInstance", "SignatureDoesNotMatch", "HTTP 400", "bad sig", "R9"):
        assert part in text
    assert err.to_dict()["error"] == "CredentialsInvalid"


def test_read_timeout_may_have_reached_the_service_but_refused_connection_did_not():
    timeout = from_exception(unretryable(RetryError("HTTPConnectionPool: Read timed out. (read timeout=10)")),
                             service="cr", action="CreateRepoSyncTask")
    refused = from_exception(unretryable(RetryError("[Errno 111] Connection refused")),
                             service="cr", action="CreateRepoSyncTask")
    assert isinstance(timeout, NetworkError) and timeout.maybe_applied
    assert isinstance(refused, NetworkError) and not refused.maybe_applied


def test_plain_os_errors_are_network_errors():
    assert isinstance(from_exception(ConnectionResetError("reset"), service="sts", action="AssumeRole"),
                      NetworkError)


def test_programming_errors_are_not_translated():
    assert from_exception(TypeError("bad arg"), service="cr", action="GetInstance") is None


def test_an_unretryable_wrapping_a_cloud_error_keeps_it():
    inner = CloudError("no keys", code="NoCredentials")
    assert from_exception(unretryable(inner), service="cr", action="GetInstance") is inner


@pytest.mark.parametrize(("body", "cls"), [
    ({"IsSuccess": False, "Code": "INSTANCE_NOT_EXIST", "RequestId": "R"}, NotFound),
    ({"IsSuccess": False, "Code": "REPO_NOT_FOUND"}, NotFound),
    ({"IsSuccess": False, "Code": "NamespaceNotExist"}, NotFound),
    ({"IsSuccess": False, "Code": "NoPrivilege"}, AccessDenied),
    ({"IsSuccess": False, "Code": "TAG_CONFLICT", "Message": "tag exists"}, CloudError),
    ({"Code": "Throttling.User"}, Throttled),
])
def test_http_200_failures_become_errors(body, cls):
    err = from_body(body, service="cr", action="GetRepository", http_status=200)
    assert type(err) is cls
    assert err.http_status == 200 and "cr:GetRepository" in str(err)


@pytest.mark.parametrize("body", [{"IsSuccess": True, "Code": "success"}, {"RequestId": "R"}, None])
def test_successful_bodies_are_not_errors(body):
    assert from_body(body, service="cr", action="GetInstance") is None


def test_not_implemented_is_not_worth_retrying():
    err = from_exception(sdk_error(ServerException, 501, "NotImplemented"), service="fc",
                         action="GetFunction")
    assert type(err) is CloudError and not err.retryable
