"""Fault injection and request counting, seen from the real SDK clients."""

from __future__ import annotations

import time

import pytest
from alibabacloud_ram20150501 import models as m
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import UnretryableException

from localcloud.faults import ERROR, THROTTLE, FaultRule, Faults
from tests.demo_world import B_KEY_ID, B_SECRET, SYNC_ROLE, make_sdk_config


@pytest.fixture
def ram(cloud) -> RamClient:
    return RamClient(make_sdk_config(cloud, B_KEY_ID, B_SECRET))


def get_role(ram: RamClient):
    return ram.get_role(m.GetRoleRequest(role_name=SYNC_ROLE))


def test_throttle_twice_then_succeed(cloud, ram):
    cloud.set_faults("GetRole", throttle_rate=1.0, count=2)
    for _ in range(2):
        with pytest.raises(ClientException) as err:
            get_role(ram)
        assert (err.value.code, err.value.status_code) == ("Throttling.User", 400)
        assert err.value.message.startswith("code: 400, Request was denied due to user flow control.")
    assert get_role(ram).body.role.role_name == SYNC_ROLE
    assert cloud.stats() == {"GetRole": 3}


def test_throttle_with_retry_after_is_a_throttling_exception(cloud, ram):
    cloud.set_faults("GetRole", throttle_rate=1.0, count=1, retry_after_ms=1500)
    with pytest.raises(ThrottlingException) as err:
        get_role(ram)
    assert err.value.retry_after == 1500


def test_server_error_is_503(cloud, ram):
    cloud.set_faults("*", error_rate=1.0, count=1)
    with pytest.raises(ServerException) as err:
        get_role(ram)
    assert (err.value.code, err.value.status_code) == ("ServiceUnavailable", 503)
    assert get_role(ram).body.role


def test_specific_action_rule_wins_over_wildcard(cloud, ram):
    cloud.set_faults("*", error_rate=1.0)
    cloud.set_faults("GetRole", latency_ms=1)
    assert get_role(ram).body.role
    with pytest.raises(ServerException):
        ram.list_roles(m.ListRolesRequest())
    cloud.clear_faults()
    assert ram.list_roles(m.ListRolesRequest()).body.roles


def test_latency_is_added(cloud, ram):
    get_role(ram)
    cloud.set_faults("GetRole", latency_ms=200, count=1)
    started = time.perf_counter()
    get_role(ram)
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    get_role(ram)
    assert time.perf_counter() - started < 0.2


def test_timeout_outlasts_the_client_read_timeout(cloud):
    ram = RamClient(make_sdk_config(cloud, B_KEY_ID, B_SECRET, read_timeout=300))
    cloud.set_faults("GetRole", timeout_rate=1.0, timeout_seconds=1.0, count=1)
    with pytest.raises(UnretryableException):
        get_role(ram)


def test_stats_count_every_request_and_reset(cloud, ram):
    cloud.set_faults("GetRole", throttle_rate=1.0, count=1)
    with pytest.raises(ClientException):
        get_role(ram)
    get_role(ram)
    ram.list_roles(m.ListRolesRequest())
    assert cloud.stats() == {"GetRole": 2, "ListRoles": 1}
    cloud.reset_stats()
    assert cloud.stats() == {}


def test_seeded_rates_are_deterministic():
    def run() -> list[str | None]:
        faults = Faults()
        faults.set(FaultRule(action="PutRow", throttle_rate=0.3, error_rate=0.3, seed=7))
        return [(f.kind if f else None) for f in (faults.on_request("PutRow") for _ in range(50))]

    first = run()
    assert first == run()
    assert {THROTTLE, ERROR, None} <= set(first)


def test_fault_rule_validation():
    with pytest.raises(ValueError, match="throttle_rate"):
        FaultRule(throttle_rate=1.5)
    with pytest.raises(ValueError, match="must not exceed 1"):
        FaultRule(throttle_rate=0.6, error_rate=0.6)
    with pytest.raises(ValueError, match="count"):
        FaultRule(count=-1)
