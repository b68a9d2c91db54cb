"""localcloud FC: warm instances (settings.fc_instance_reuse) and queued asynchronous invocations
(settings.fc_async_concurrency), through the real FC 3.0 SDK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_fc20230330.client import Client as FcClient

from tests.demo_world import A_KEY_ID, A_SECRET, ACCOUNT_A, FC_ROLE_ARN, make_sdk_config
from tests.integration.e2e import scenario

WARM = Path(__file__).parent / "fc_fixtures" / "warm"


def world(**settings) -> dict:
    doc = scenario()
    doc["functions"] = [{"name": "warm", "account": ACCOUNT_A, "region": "cn-hangzhou", "code": str(WARM),
                         "handler": "index.handler", "timeout": 20, "role": FC_ROLE_ARN}]
    doc["settings"].update(settings)
    return doc


def invoke(cloud, payload: dict, kind: str = "Sync") -> dict | None:
    client = FcClient(make_sdk_config(cloud, A_KEY_ID, A_SECRET, read_timeout=30000))
    resp = client.invoke_function_with_options(
        "warm", fc_models.InvokeFunctionRequest(body=json.dumps(payload).encode()),
        fc_models.InvokeFunctionHeaders(x_fc_invocation_type=kind), __import__(
            "darabonba.runtime", fromlist=["RuntimeOptions"]).RuntimeOptions())
    if kind == "Async":
        assert resp.status_code == 202
        return None
    return json.loads(resp.body.read())


def finished(cloud) -> list[dict]:
    views = cloud.world.backends["fc"].wait(60)
    assert all(v["status"] == "succeeded" for v in views), views
    return [json.loads(v["result"]) for v in views]


def test_without_reuse_every_invocation_is_a_fresh_process(cloud_factory):
    cloud = cloud_factory(world())
    a, b = invoke(cloud, {}), invoke(cloud, {})
    assert a["pid"] != b["pid"] and a["calls"] == b["calls"] == 1


def test_reuse_keeps_the_instance_warm_and_logs_stay_per_invocation(cloud_factory):
    cloud = cloud_factory(world(fc_instance_reuse=True))
    replies = [invoke(cloud, {}) for _ in range(3)]
    assert len({r["pid"] for r in replies}) == 1 and [r["calls"] for r in replies] == [1, 2, 3]
    views = cloud.world.backends["fc"].views("warm")
    assert [sum("warm: call" in line for line in v["logs"]) for v in views] == [1, 1, 1]
    assert "warm: call 2" in " ".join(views[1]["logs"])


def test_async_invocations_queue_and_run_at_most_the_concurrency_at_once(cloud_factory):
    cloud = cloud_factory(world(fc_instance_reuse=True, fc_async_concurrency=2))
    for _ in range(6):
        invoke(cloud, {"sleep": 0.3}, kind="Async")
    replies = finished(cloud)
    assert len(replies) == 6 and len({r["pid"] for r in replies}) <= 2
    edges = sorted([(r["started"], 1) for r in replies] + [(r["ended"], -1) for r in replies])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak <= 2


@pytest.mark.parametrize("settings, words", [({"fc_instance_reuse": "yes"}, "fc_instance_reuse"),
                                             ({"fc_async_concurrency": 0}, "fc_async_concurrency")])
def test_bad_settings_are_refused_with_the_path(cloud_factory, settings, words):
    with pytest.raises(Exception) as e:
        cloud_factory(world(**settings))
    assert words in str(e.value)
