"""localcloud's FC 3.0 trigger reads (ListTriggers, GetTrigger) through the real alibabacloud_fc20230330
client: replies deserialise into the SDK's models, triggerConfig is the documented JSON string per type,
paging by nextToken, RAM authorization, and disabled EventBridge triggers do not fire."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.demo_world import A_OPERATOR_KEY_ID, A_OPERATOR_SECRET, DEMO_SCENARIO, SOURCE_INSTANCE
from tests.localcloud.test_fc_sdk import PUSH_PATTERN, _function, client

TRIGGERS = [
    {"type": "eventbridge", "name": "acr-events", "pattern": PUSH_PATTERN},
    {"type": "eventbridge", "name": "off", "pattern": PUSH_PATTERN, "enabled": False},
    {"type": "timer", "name": "hourly", "cron": "0 0 * * * *", "payload": '{"mode":"compliance"}'},
    {"type": "http", "name": "webhook"},
]


@pytest.fixture
def trig_cloud(cloud_factory):
    doc = copy.deepcopy(yaml.safe_load(DEMO_SCENARIO.read_text()))
    doc["functions"] = [_function("text", "index.text", triggers=TRIGGERS),
                        _function("disabled", "index.text", triggers=[TRIGGERS[1]])]
    return cloud_factory(doc)


def test_list_triggers_deserialises_into_sdk_models(trig_cloud):
    body = client(trig_cloud).list_triggers("text", fc_models.ListTriggersRequest()).body
    assert isinstance(body, fc_models.ListTriggersOutput)
    by_name = {t.trigger_name: t for t in body.triggers}
    assert sorted(by_name) == ["acr-events", "hourly", "off", "webhook"] and body.next_token is None
    eb = json.loads(by_name["acr-events"].trigger_config)
    assert eb["triggerEnable"] is True and json.loads(eb["eventRuleFilterPattern"]) == PUSH_PATTERN
    assert json.loads(by_name["off"].trigger_config)["triggerEnable"] is False
    timer = json.loads(by_name["hourly"].trigger_config)
    assert (by_name["hourly"].trigger_type, timer["cronExpression"], timer["enable"]) == ("timer",
                                                                                          "0 0 * * * *", True)
    assert by_name["webhook"].http_trigger.url_internet.startswith("https://")


def test_list_triggers_pages_and_prefix(trig_cloud):
    c = client(trig_cloud)
    first = c.list_triggers("text", fc_models.ListTriggersRequest(limit=3)).body
    assert [t.trigger_name for t in first.triggers] == ["acr-events", "hourly", "off"]
    rest = c.list_triggers("text", fc_models.ListTriggersRequest(limit=3, next_token=first.next_token)).body
    assert [t.trigger_name for t in rest.triggers] == ["webhook"] and rest.next_token is None
    only = c.list_triggers("text", fc_models.ListTriggersRequest(prefix="h")).body
    assert [t.trigger_name for t in only.triggers] == ["hourly"]
    with pytest.raises(ClientException) as err:
        c.list_triggers("text", fc_models.ListTriggersRequest(limit=101))
    assert err.value.code == "InvalidArgument"


def test_get_trigger_and_not_found(trig_cloud):
    got = client(trig_cloud).get_trigger("text", "hourly").body
    assert isinstance(got, fc_models.Trigger) and got.trigger_type == "timer"
    assert got.target_arn.endswith(":functions/text")
    with pytest.raises(ClientException) as err:
        client(trig_cloud).get_trigger("text", "nope")
    assert (err.value.status_code, err.value.code) == (404, "TriggerNotFound")
    with pytest.raises(ClientException) as err:
        client(trig_cloud).list_triggers("missing", fc_models.ListTriggersRequest())
    assert err.value.code == "FunctionNotFound"


def test_trigger_reads_need_their_ram_actions(trig_cloud):
    with pytest.raises(ClientException) as err:
        client(trig_cloud, A_OPERATOR_KEY_ID, A_OPERATOR_SECRET).list_triggers("text",
                                                                               fc_models.ListTriggersRequest())
    assert err.value.code == "NoPermission" and "fc:ListTriggers" in err.value.message


def test_a_disabled_eventbridge_trigger_does_not_fire(trig_cloud):
    trig_cloud.push(SOURCE_INSTANCE, "team-a", "web", "v9.9.9")
    runs = trig_cloud.world.backends["fc"].wait(30)
    assert [(r["function"], r["trigger_name"]) for r in runs] == [("text", "acr-events")]


def test_a_pattern_on_a_timer_is_a_scenario_error(cloud_factory):
    doc = copy.deepcopy(yaml.safe_load(DEMO_SCENARIO.read_text()))
    doc["functions"] = [_function("t", "index.text", triggers=[{"type": "timer", "pattern": PUSH_PATTERN}])]
    with pytest.raises(Exception, match="only eventbridge triggers have a pattern"):
        cloud_factory(doc)
