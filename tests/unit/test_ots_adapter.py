"""The Tablestore adapter's error mapping (no I/O): which failures the one retry decision repeats."""

from __future__ import annotations

import pytest
import urllib3

from acrsync.cloud import errors
from acrsync.cloud.ots import ConditionFailed, OTSClientError, OTSServiceError, classify, translate
from acrsync.cloud.retry import should_retry


@pytest.mark.parametrize(("code", "status", "kind", "retryable"), [
    ("OTSConditionCheckFail", 403, ConditionFailed, False),
    ("OTSServerBusy", 503, errors.Throttled, True),
    ("OTSNotEnoughCapacityUnit", 403, errors.Throttled, True),
    ("OTSQuotaExhausted", 403, errors.Throttled, True),
    ("OTSInternalServerError", 500, errors.ServerError, True),
    ("OTSTimeout", 503, errors.ServerError, True),
    ("OTSPartitionUnavailable", 503, errors.ServerError, True),
    ("OTSObjectNotExist", 404, errors.NotFound, False),
    ("OTSNoPermissionAccess", 403, errors.AccessDenied, False),
    ("OTSAuthFailed", 403, errors.CloudError, False),
    ("OTSParameterInvalid", 400, errors.CloudError, False),
])
def test_service_errors_map_to_typed_cloud_errors(code, status, kind, retryable):
    err = translate(OTSServiceError(status, code, "message", "req-1"), "PutRow")
    assert type(err) is kind
    assert err.retryable is retryable
    assert (err.service, err.action, err.code, err.request_id) == ("ots", "PutRow", code, "req-1")


def test_a_failed_row_in_a_batch_maps_like_a_reply():
    assert isinstance(classify("OTSServerBusy", None, "busy", action="BatchWriteRow"), errors.Throttled)
    assert isinstance(classify("OTSConditionCheckFail", None, "", action="BatchWriteRow"), ConditionFailed)


def test_network_errors_are_retryable_and_a_read_timeout_may_have_applied():
    refused = translate(ConnectionRefusedError("refused"), "GetRow")
    assert isinstance(refused, errors.NetworkError) and not refused.maybe_applied
    timeout = translate(urllib3.exceptions.ReadTimeoutError(None, "/PutRow", "Read timed out."), "PutRow")
    assert isinstance(timeout, errors.NetworkError) and timeout.maybe_applied
    # writes are declared idempotent (conditional, with a writer token), so even that one is repeated
    assert should_retry(timeout, idempotent=True)


def test_client_errors_are_not_retried_unless_the_reply_was_a_5xx_page():
    assert translate(OTSClientError("MD5 mismatch in response."), "GetRow").retryable is False
    assert isinstance(translate(OTSClientError("bad body", 502), "GetRow"), errors.ServerError)


def test_other_exceptions_are_not_cloud_failures():
    assert translate(KeyError("x"), "GetRow") is None
