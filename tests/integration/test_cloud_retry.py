"""Retries, typed errors and the time budget, end to end: real SDK clients, faults injected by localcloud."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from acrsync.cloud import (
    Budget,
    BudgetExhausted,
    CloudError,
    CloudSession,
    CredentialsInvalid,
    NetworkError,
    RetryPolicy,
    ServerError,
    Throttled,
    Timeouts,
    Unreachable,
)
from tests.demo_world import CLI_KEY_ID, CLI_SECRET, SOURCE_INSTANCE, SOURCE_REGION, TARGET_INSTANCE


def test_a_wrong_secret_fails_once_with_signature_does_not_match(make_session):
    s = make_session(CLI_KEY_ID, "made-up-wrong-secret")
    with pytest.raises(CloudError) as e:
        s.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE)
    assert type(e.value) is CredentialsInvalid and e.value.code == "SignatureDoesNotMatch"
    assert e.value.request_id and e.value.http_status == 400
    assert s.calls["cr:GetInstance"] == 1


def test_throttled_twice_then_success_on_the_third_attempt(session, cloud, caplog):
    cloud.set_faults("GetInstance", throttle_rate=1.0, count=2)
    with caplog.at_level(logging.INFO, logger="acrsync.cloud"):
        inst = session.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE)
    assert inst.instance_id == SOURCE_INSTANCE
    assert session.calls["cr:GetInstance"] == 3
    retries = [r for r in caplog.records if r.name == "acrsync.cloud"]
    assert [(r.action, r.code, r.attempt) for r in retries] == [
        ("cr:GetInstance", "Throttling.User", 1), ("cr:GetInstance", "Throttling.User", 2)]
    assert all(r.levelno == logging.INFO and r.delay >= 0 for r in retries)
    assert CLI_SECRET not in caplog.text


def test_server_errors_are_retried(session, cloud):
    cloud.set_faults("ListNamespace", error_rate=1.0, count=2)
    assert session.acr(SOURCE_REGION).list_namespaces(SOURCE_INSTANCE)
    assert session.calls["cr:ListNamespace"] == 3


def test_persistent_server_errors_stop_after_max_attempts(session, cloud):
    cloud.set_faults("GetInstance", error_rate=1.0)
    with pytest.raises(ServerError) as e:
        session.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE)
    assert e.value.code == "ServiceUnavailable" and e.value.http_status == 503
    assert session.calls["cr:GetInstance"] == session.policy.max_attempts


def test_retry_after_is_honoured(session, cloud):
    cloud.set_faults("GetInstance", throttle_rate=1.0, count=1, retry_after_ms=300)
    start = time.monotonic()
    session.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE)
    assert time.monotonic() - start >= 0.3
    assert session.calls["cr:GetInstance"] == 2


def test_persistent_throttling_returns_within_the_budget(make_session, cloud):
    s = make_session(policy=RetryPolicy(max_attempts=1000, base=0.05, cap=0.3, min_attempt=0.05),
                     budget=Budget.after(1.0))
    cloud.set_faults("GetInstance", throttle_rate=1.0)
    start = time.monotonic()
    with pytest.raises(BudgetExhausted) as e:
        s.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE)
    assert time.monotonic() - start <= 1.05
    assert isinstance(e.value.last, Throttled) and e.value.attempts == s.calls["cr:GetInstance"] >= 3


def test_scoped_budget_applies_to_the_scoped_copy_only(session, cloud):
    cloud.set_faults("GetInstance", throttle_rate=1.0, count=3)
    scoped = session.scoped(Budget.after(0.0))
    with pytest.raises(BudgetExhausted):
        scoped.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE)
    assert session.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE).instance_id == SOURCE_INSTANCE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_once_briefly_and_names_the_endpoint():
    # made-up keys: nothing listens on the port
    port = free_port()
    s = CloudSession.from_keys("LTAIdemoNoServer", "made-up-secret", region=SOURCE_REGION,
                               env={"ACRSYNC_ENDPOINT": f"http://127.0.0.1:{port}"},
                               policy=RetryPolicy(max_attempts=5, base=0.01, cap=0.02))
    with pytest.raises(Unreachable) as e:
        s.acr(SOURCE_REGION).get_instance(SOURCE_INSTANCE)
    assert isinstance(e.value, NetworkError) and not e.value.maybe_applied
    assert e.value.endpoint == f"127.0.0.1:{port}"
    assert s.calls["cr:GetInstance"] == s.policy.unreachable_attempts == 2


def test_a_read_timeout_on_create_repo_sync_task_is_not_repeated(make_session, session, cloud):
    s = make_session(timeouts=Timeouts(connect=1.0, read=0.3))
    web = session.acr(SOURCE_REGION).get_repository(SOURCE_INSTANCE, "team-a", "web")
    cloud.set_faults("CreateRepoSyncTask", timeout_rate=1.0, timeout_seconds=1.0)
    with pytest.raises(NetworkError) as e:
        s.acr(SOURCE_REGION).create_repo_sync_task(
            SOURCE_INSTANCE, web.repo_id, "v1.1.0", target_region="cn-beijing",
            target_instance_id=TARGET_INSTANCE,
            target_namespace="team-a", target_repo="web", target_tag="v1.1.0")
    assert e.value.maybe_applied
    assert s.calls["cr:CreateRepoSyncTask"] == 1


def test_fc_calls_reach_the_fc3_api_path(session):
    """The FC 3.0 client, endpoint and signing reach localcloud's FC: an unknown function is a typed,
    non-retried error."""
    with pytest.raises(CloudError) as e:
        session.fc(SOURCE_REGION).get_function("acrsync-missing")
    assert (e.value.code, e.value.http_status, e.value.action) == ("FunctionNotFound", 404, "GetFunction")
    with pytest.raises(CloudError):
        session.fc(SOURCE_REGION).invoke_function("acrsync-missing", b"{}", async_=True)
    assert session.calls["fc:GetFunction"] == 1 and session.calls["fc:InvokeFunction"] == 1
