"""s.yaml, rendered offline and checked against the fc3 component's own props schema and the product's
deployment rules (runtime, handlers, triggers, no secrets)."""

from __future__ import annotations

import ast
import copy
import json
import re
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.deploy.deploy_world import ACCESS, DEPLOY_ENV, FUNCTIONS, REPO_ROOT, S_YAML
from tests.deploy.s_render import RenderError, render

TRIGGER_DEFINITIONS = {"timer": "ITimerTriggerConfig", "http": "IHttpTriggerConfig",
                       "eventbridge": "IEventBridge"}


def _props(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["resources"][name]["props"]


def _triggers(doc: dict[str, Any], name: str, kind: str) -> list[dict[str, Any]]:
    return [t for t in _props(doc, name).get("triggers", []) if t["triggerType"] == kind]


def _errors(schema: dict[str, Any], instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<props>'}: {e.message}"
            for e in Draft7Validator(schema).iter_errors(instance)]


# ------------------------------------------------------------------ the document


def test_header(raw):
    assert raw["edition"] == "3.0.0"
    assert raw["name"] == "acrsync"
    # s does not render variables in `access` (it would look for an alias named "${env(...)}"), so the alias
    # is a literal and another one is chosen with `s deploy -a <alias>`.
    assert raw["access"] == "default"


def test_deploys_the_three_functions_with_fc3(rendered):
    assert set(rendered["resources"]) == set(FUNCTIONS)
    for name, resource in rendered["resources"].items():
        assert resource["component"] == "fc3", name


def test_nothing_is_left_unrendered(rendered):
    leftovers = re.findall(r"\$\{[^}]*\}", json.dumps(rendered))
    assert not leftovers


# ------------------------------------------------------------------ the fc3 schema


@pytest.mark.parametrize("name", FUNCTIONS)
def test_props_match_the_fc3_schema(rendered, fc3_schema, name):
    assert _errors(fc3_schema, _props(rendered, name)) == []


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_trigger_config_matches_its_own_type(rendered, fc3_schema, name):
    # The schema's triggerConfig is an anyOf of every type, which lets a config of one type pass as
    # another; check each against the definition of its declared type.
    triggers = _props(rendered, name)["triggers"]
    assert triggers
    for trigger in triggers:
        definition = TRIGGER_DEFINITIONS.get(trigger["triggerType"])
        assert definition, f"{name}: unexpected trigger type {trigger['triggerType']}"
        schema = {"$ref": f"#/definitions/{definition}", "definitions": fc3_schema["definitions"]}
        assert _errors(schema, trigger["triggerConfig"]) == [], trigger["triggerName"]


def test_the_schema_check_catches_broken_props(rendered, fc3_schema):
    broken = copy.deepcopy(_props(rendered, "on_push"))
    broken["runtime"] = "python3.99"
    broken["memorySize"] = 100
    del broken["triggers"][0]["triggerConfig"]["eventSourceConfig"]["eventSourceParameters"]
    errors = "\n".join(_errors(fc3_schema, broken))
    assert "runtime" in errors and "memorySize" in errors
    eb = {"$ref": "#/definitions/IEventBridge", "definitions": fc3_schema["definitions"]}
    assert _errors(eb, broken["triggers"][0]["triggerConfig"])


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize("name", FUNCTIONS)
def test_runtime_and_code_package(rendered, name):
    props = _props(rendered, name)
    assert props["runtime"] == "python3.10"
    assert props["handler"] == "index.handler"
    assert props["code"] == f"./build/fc/{name}.zip"
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", props["functionName"])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_handler_file_exists(rendered, name):
    entry = REPO_ROOT / "functions" / name / "index.py"
    assert entry.is_file(), f"s.yaml deploys {name} but {entry.relative_to(REPO_ROOT)} does not exist"
    tree = ast.parse(entry.read_text(encoding="utf-8"))
    handlers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
    assert handlers, f"{entry}: no top-level def handler(event, context)"
    assert len(handlers[0].args.args) == 2, f"{entry}: handler must take (event, context)"


def test_function_names_are_distinct(rendered):
    names = [_props(rendered, n)["functionName"] for n in FUNCTIONS]
    assert len(set(names)) == len(names)


def test_limits(rendered):
    assert _props(rendered, "on_push")["timeout"] == 120
    assert _props(rendered, "on_push")["memorySize"] == 512
    # One compliance pass or one backfill shard per invocation.
    assert _props(rendered, "compliance")["timeout"] >= 600


def _period_seconds(cron: str) -> int:
    second, minute, *_ = cron.split()
    assert second == "0" and minute.startswith("*/"), cron
    return int(minute[2:]) * 60


def test_reconcile_cannot_overlap_itself(rendered):
    props = _props(rendered, "reconcile")
    (timer,) = _triggers(rendered, "reconcile", "timer")
    period = _period_seconds(timer["triggerConfig"]["cronExpression"])
    assert props["concurrencyConfig"] == {"reservedConcurrency": 1}
    assert props["timeout"] < period
    # A tick that waited (behind a running one) longer than a period is dropped, and a failed one is not
    # retried: the next tick redoes it.
    assert props["asyncInvokeConfig"]["maxAsyncEventAgeInSeconds"] <= period
    assert props["asyncInvokeConfig"]["maxAsyncRetryAttempts"] == 0


@pytest.mark.parametrize("name", ["on_push", "compliance"])
def test_failed_async_invocations_are_kept(rendered, name):
    config = _props(rendered, name)["asyncInvokeConfig"]
    assert 1 <= config["maxAsyncRetryAttempts"] <= 3
    assert 60 <= config["maxAsyncEventAgeInSeconds"] <= 6 * 3600
    destination = config["destinationConfig"]["onFailure"]["destination"]
    assert re.fullmatch(rf"acs:mns:cn-hangzhou:{ACCESS['AccountID']}:/queues/[A-Za-z0-9-]+/messages",
                        destination)


def test_one_shared_dependency_layer(rendered):
    layers = {tuple(_props(rendered, n)["layers"]) for n in FUNCTIONS}
    assert len(layers) == 1
    (layer,) = layers.pop()
    assert re.fullmatch(rf"acs:fc:cn-hangzhou:{ACCESS['AccountID']}:layers/acrsync-deps-py310-[0-9a-f]{{8}}"
                        r"/versions/\d+", layer)


def test_every_deploy_builds_the_package_first(rendered):
    (action,) = rendered["actions"]["pre-deploy"]
    assert action["run"].split() == ["make", "package", "REGION=cn-hangzhou",
                                     f"LAYER={rendered['vars']['layerName']}"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_publishes_the_layer_before_it_deploys(rendered, name):
    (action,) = rendered["resources"][name]["actions"]["pre-deploy"]
    assert action["component"].split() == ["fc3", "layer", "publish", "--layer-name",
                                           rendered["vars"]["layerName"], "--code", "./build/fc/layer.zip",
                                           "--compatible-runtime", _props(rendered, name)["runtime"]]


def test_the_layer_name_is_the_pins(raw):
    from acrsync import packaging

    pins = packaging.function_requirements(packaging.read_dependencies(REPO_ROOT / "pyproject.toml"))
    assert raw["vars"]["layerName"] == packaging.layer_name(pins), \
        "the pinned dependencies changed: set vars.layerName in s.yaml to what `make package` prints"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_environment(rendered, name):
    env = _props(rendered, name)["environmentVariables"]
    assert env["ACRSYNC_CONFIG"] == "/code/acrsync.yaml"
    assert env["ACRSYNC_REGION"] == _props(rendered, name)["region"]
    assert env["ACRSYNC_OTS_INSTANCE"] == "acrsync"
    assert env["ACRSYNC_OTS_ENDPOINT"] == "https://acrsync.cn-hangzhou.ots.aliyuncs.com"
    assert env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] == "true"
    for key, value in env.items():
        # FC: a letter first, then letters, digits and underscores; FC_* is reserved; values are strings.
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key) and not key.startswith("FC_"), key
        assert isinstance(value, str), key
    assert len(json.dumps(env)) <= 4096
    # Only the function that checks webhooks holds the token.
    assert ("ACRSYNC_WEBHOOK_TOKEN" in env) == (name == "on_push")


def test_vpc_endpoint_and_region_follow_the_environment(raw):
    doc = render(raw, {**DEPLOY_ENV, "ACRSYNC_REGION": "cn-beijing", "ACRSYNC_OTS_INSTANCE": "ledger1",
                       "ACRSYNC_OTS_DOMAIN": "vpc.tablestore.aliyuncs.com"}, ACCESS)
    for name in FUNCTIONS:
        props = _props(doc, name)
        assert props["region"] == "cn-beijing"
        assert props["layers"][0].startswith("acs:fc:cn-beijing:")
        assert props["environmentVariables"]["ACRSYNC_OTS_ENDPOINT"] == \
            "https://ledger1.cn-beijing.vpc.tablestore.aliyuncs.com"


def test_all_functions_share_one_role(rendered):
    roles = {_props(rendered, n)["role"] for n in FUNCTIONS}
    assert roles == {"acrsync-fc"}


# ------------------------------------------------------------------ triggers


def test_eventbridge_trigger(rendered):
    (trigger,) = _triggers(rendered, "on_push", "eventbridge")
    config = trigger["triggerConfig"]
    pattern = json.loads(config["eventRuleFilterPattern"])
    assert pattern["source"] == ["acs.cr"]
    assert set(pattern["type"]) == {"cr:Artifact:PushCompleted", "cr:Artifact:SynchronizationCompleted"}
    assert config["triggerEnable"] is True
    assert isinstance(config["asyncInvocationType"], bool)
    assert config["eventSinkConfig"]["deliveryOption"]["eventSchema"] == "CloudEvents"
    assert config["eventSourceConfig"] == {"eventSourceType": "Default", "eventSourceParameters": {}}
    run = config["runOptions"]
    assert run["mode"] == "event-driven"
    assert run["errorsTolerance"] == "ALL"
    assert run["retryStrategy"] == {"PushRetryStrategy": "BACKOFF_RETRY"}


def test_webhook_trigger(rendered):
    (trigger,) = _triggers(rendered, "on_push", "http")
    assert trigger["triggerConfig"]["authType"] == "anonymous"
    assert trigger["triggerConfig"]["methods"] == ["POST"]


def test_timers(rendered):
    payloads: dict[str, list[str]] = {}
    for name in FUNCTIONS:
        for trigger in _triggers(rendered, name, "timer"):
            config = trigger["triggerConfig"]
            assert len(config["cronExpression"].split()) == 6, config["cronExpression"]
            assert config["enable"] is True
            payloads.setdefault(name, []).append(json.loads(config["payload"])["mode"])
    assert payloads == {"reconcile": ["reconcile"], "compliance": ["compliance"]}
    (reconcile,) = _triggers(rendered, "reconcile", "timer")
    assert reconcile["triggerConfig"]["cronExpression"] == "0 */10 * * * *"
    (compliance,) = _triggers(rendered, "compliance", "timer")
    assert compliance["triggerConfig"]["cronExpression"] == "0 0 * * * *"      # hourly, UTC
    for config in (reconcile["triggerConfig"], compliance["triggerConfig"]):
        assert "CRON_TZ" not in config["cronExpression"]


def test_compliance_shards_may_run_in_parallel(rendered):
    props = _props(rendered, "compliance")
    assert "concurrencyConfig" not in props      # backfill shards fan out as async invocations of itself
    assert props["environmentVariables"] == _props(rendered, "reconcile")["environmentVariables"]


# ------------------------------------------------------------------ secrets

_SECRET_VALUES = [
    re.compile(r"LTAI[A-Za-z0-9]{12,30}"),                    # AccessKey id
    re.compile(r"STS\.[A-Za-z0-9]{16,}"),                       # STS token
    re.compile(r"(?<![A-Za-z0-9])[0-9a-fA-F]{32,}(?![A-Za-z0-9])"),   # hex secrets (openssl rand -hex)
    re.compile(r"(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*\d)[A-Za-z0-9+/_-]{28,}={0,2}"),
]
_SECRET_KEY = re.compile(r"token|secret|password|access_?key", re.IGNORECASE)
_FROM_ENV = re.compile(r"\$\{env\('[A-Z0-9_]+'\)\}")
_DIGEST = "sha256:"      # a digest of a secret read from the environment is not the secret


def find_secrets(raw_text: str, raw: dict[str, Any]) -> list[str]:
    """Literal secrets in s.yaml: key-looking strings anywhere (comments too), and secret-named keys whose
    value is not read from the environment (directly or through a var) with no default."""
    found = [m.group(0) for p in _SECRET_VALUES for m in p.finditer(raw_text)]
    vars_ = raw.get("vars") or {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                here = f"{path}.{k}"
                if _SECRET_KEY.search(str(k)) and not isinstance(v, (dict, list)):
                    value = str(v).removeprefix(_DIGEST)
                    ref = re.fullmatch(r"\$\{vars\.(\w+)\}", value)
                    if ref:
                        value = str(vars_.get(ref.group(1)))
                    if not _FROM_ENV.fullmatch(value):
                        found.append(f"{here}: {v!r} is not ${{env('NAME')}}")
                walk(v, here)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(raw, "")
    return found


def test_no_literal_secrets(raw):
    assert find_secrets(S_YAML.read_text(encoding="utf-8"), raw) == []


def test_the_secret_scan_finds_planted_secrets(raw):
    planted = copy.deepcopy(raw)
    env = planted["resources"]["on_push"]["props"]["environmentVariables"]
    env["ACRSYNC_WEBHOOK_TOKEN"] = "hunter2"
    found = find_secrets("key: LTAI5tMadeUpNotARealKey01\n# a3f1c9e2b7d84f6a9c0e1b2d3f4a5b6c\n", planted)
    assert len(found) == 3, found
    assert any("ACRSYNC_WEBHOOK_TOKEN" in f for f in found)


def test_only_a_digest_of_the_webhook_token_is_deployed(raw, rendered):
    assert raw["vars"]["webhookTokenSha256"] == "${env('ACRSYNC_WEBHOOK_TOKEN_SHA256')}"
    assert "ACRSYNC_WEBHOOK_TOKEN')" not in S_YAML.read_text(encoding="utf-8")
    assert _props(rendered, "on_push")["environmentVariables"]["ACRSYNC_WEBHOOK_TOKEN"] == \
        "sha256:" + DEPLOY_ENV["ACRSYNC_WEBHOOK_TOKEN_SHA256"]
    without = {k: v for k, v in DEPLOY_ENV.items() if k != "ACRSYNC_WEBHOOK_TOKEN_SHA256"}
    with pytest.raises(RenderError, match="ACRSYNC_WEBHOOK_TOKEN_SHA256"):
        render(raw, without)
