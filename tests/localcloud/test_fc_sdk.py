"""localcloud's Function Compute 3.0 through the real alibabacloud_fc20230330 client: GetFunction, sync and
async InvokeFunction (the handler runs in localcloud's subprocess runtime with its role's STS keys),
FC's error shapes, timeouts, EventBridge triggers, and the ``/_localcloud/fc`` control API."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_fc20230330.client import Client as FcClient
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from darabonba.runtime import RuntimeOptions

from tests.demo_world import (
    A_KEY_ID,
    A_OPERATOR_KEY_ID,
    A_OPERATOR_SECRET,
    A_SECRET,
    ACCOUNT_A,
    B_KEY_ID,
    B_SECRET,
    DEMO_SCENARIO,
    FC_ROLE,
    FC_ROLE_ARN,
    SOURCE_INSTANCE,
    http_json,
    make_sdk_config,
)

FIXTURES = Path(__file__).parent / "fc_fixtures" / "basic"
PUSH_PATTERN = {"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted"],
                "data": {"RepoNamespaceName": ["team-a"]}}


def _function(name: str, handler: str, **over) -> dict:
    spec = {"name": name, "account": ACCOUNT_A, "region": "cn-hangzhou", "runtime": "python3.10",
            "code": str(FIXTURES), "handler": handler, "timeout": 20, "role": FC_ROLE_ARN,
            "environment": {"DEMO_SETTING": "made-up-value"}}
    spec.update(over)
    return spec


FUNCTIONS = [
    _function("echo", "index.echo"),
    _function("text", "index.text", triggers=[{"type": "eventbridge", "name": "team-a-pushes",
                                               "pattern": PUSH_PATTERN}]),
    _function("fail", "index.fail"),
    _function("slow", "index.sleep", timeout=1),
    _function("shape310", "index.shape"),
    _function("shape312", "index.shape", runtime="python3.12"),
    _function("roleless", "index.shape", role=None),
]


@pytest.fixture
def fc_cloud(cloud_factory):
    doc = copy.deepcopy(yaml.safe_load(DEMO_SCENARIO.read_text()))
    doc["functions"] = FUNCTIONS
    return cloud_factory(doc)


def client(cloud, key_id: str = A_KEY_ID, secret: str = A_SECRET) -> FcClient:
    return FcClient(make_sdk_config(cloud, key_id, secret, read_timeout=30000))


def invoke(cloud, name: str, body: bytes, *, kind: str = "Sync", qualifier: str | None = None):
    request = fc_models.InvokeFunctionRequest(body=body, qualifier=qualifier)
    headers = fc_models.InvokeFunctionHeaders(x_fc_invocation_type=kind)
    return client(cloud).invoke_function_with_options(name, request, headers, RuntimeOptions())


def control(cloud, op: str, body: dict | None = None) -> tuple[int, dict]:
    return http_json(cloud, "POST", f"/_localcloud/fc/{op}", body or {}, timeout=60)


def test_get_function_has_fc3_shape(fc_cloud):
    body = client(fc_cloud).get_function("echo", fc_models.GetFunctionRequest()).body
    assert isinstance(body, fc_models.Function)
    assert (body.function_name, body.runtime, body.handler, body.timeout, body.memory_size) == \
        ("echo", "python3.10", "index.echo", 20, 512)
    assert body.role == FC_ROLE_ARN
    assert body.function_arn == f"acs:fc:cn-hangzhou:{ACCOUNT_A}:functions/echo"
    assert body.environment_variables == {"DEMO_SETTING": "made-up-value"}
    assert body.state == "Active" and body.code_size > 0


def test_unknown_function_and_other_accounts_function_are_not_found(fc_cloud):
    with pytest.raises(ClientException) as err:
        client(fc_cloud).get_function("missing", fc_models.GetFunctionRequest())
    assert (err.value.code, err.value.status_code) == ("FunctionNotFound", 404)
    assert "missing" in err.value.message and err.value.request_id
    with pytest.raises(ClientException) as err:
        client(fc_cloud, B_KEY_ID, B_SECRET).get_function("echo", fc_models.GetFunctionRequest())
    assert err.value.code == "FunctionNotFound"


def test_a_ram_user_without_fc_permissions_is_refused(fc_cloud):
    with pytest.raises(ClientException) as err:
        client(fc_cloud, A_OPERATOR_KEY_ID, A_OPERATOR_SECRET).get_function("echo",
                                                                            fc_models.GetFunctionRequest())
    assert (err.value.status_code, err.value.code) == (403, "NoPermission")
    assert "fc:GetFunction" in err.value.message


def test_a_wrong_signature_is_refused(fc_cloud):
    with pytest.raises(ClientException) as err:
        client(fc_cloud, A_KEY_ID, "not-the-secret").get_function("echo", fc_models.GetFunctionRequest())
    assert err.value.code == "SignatureDoesNotMatch"


def test_apis_localcloud_does_not_serve_say_so(fc_cloud):
    with pytest.raises(ServerException) as err:
        client(fc_cloud).list_functions(fc_models.ListFunctionsRequest())
    assert (err.value.status_code, err.value.code) == (501, "NotImplemented")
    assert "ListFunctions" in err.value.message


def test_sync_invocation_runs_the_handler_with_the_role_credentials(fc_cloud):
    resp = invoke(fc_cloud, "echo", b'{"hello": "fc"}')
    reply = json.loads(resp.body.read())
    request_id = resp.headers["x-fc-request-id"]
    assert resp.status_code == 200 and "x-fc-error-type" not in resp.headers
    assert reply["event"] == '{"hello": "fc"}' and reply["event_type"] == "bytes"
    assert reply["request_id"] == request_id
    assert reply["function"] == {"name": "echo", "handler": "index.echo", "memory": 512, "timeout": 20}
    assert (reply["region"], reply["account_id"], reply["has_credentials"]) == ("cn-hangzhou",
                                                                                ACCOUNT_A, True)
    # The function asked localcloud's STS who it is, signing with the injected temporary keys.
    assert reply["caller_arn"] == f"acs:ram::{ACCOUNT_A}:assumed-role/{FC_ROLE}/echo"
    assert reply["env"] == {"FC_FUNCTION_NAME": "echo", "FC_REGION": "cn-hangzhou",
                            "DEMO_SETTING": "made-up-value",
                            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    assert Path(reply["cwd"]) == FIXTURES.resolve()
    [record] = control(fc_cloud, "invocations", {"function": "echo"})[1]["invocations"]
    assert (record["request_id"], record["status"], record["trigger"]) == (request_id, "succeeded", "api")
    # What the function printed or logged is in its logs, never in its reply.
    assert any("stdout goes to the logs" in line for line in record["logs"])
    assert any("[INFO] echo: logging goes to the logs too" in line for line in record["logs"])
    assert "stdout goes to the logs" not in json.dumps(reply)


def test_context_follows_the_runtime_and_keys_come_only_with_a_role(fc_cloud):
    py310 = json.loads(invoke(fc_cloud, "shape310", b"").body.read())
    py312 = json.loads(invoke(fc_cloud, "shape312", b"").body.read())
    roleless = json.loads(invoke(fc_cloud, "roleless", b"").body.read())
    assert py310["context"] == ["account_id", "credentials", "function", "region", "request_id", "service"]
    assert py312["context"] == ["account_id", "function", "logger", "region", "request_id"]
    assert py312["function"] == ["handler", "memory", "name", "qualifier", "timeout", "version_id"]
    assert (py310["env_keys"], py312["env_keys"], roleless["env_keys"]) == (True, True, False)


def test_a_str_reply_is_returned_as_is(fc_cloud):
    assert invoke(fc_cloud, "text", b"abc").body.read() == b"plain:abc"


def test_an_unhandled_exception_is_http_200_with_the_fc_error_header(fc_cloud):
    resp = invoke(fc_cloud, "fail", b'{"why": "made-up reason"}')
    assert resp.status_code == 200
    assert resp.headers["x-fc-error-type"] == "UnhandledInvocationError"
    error = json.loads(resp.body.read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "the event was refused: made-up reason"
    assert any("in fail" in frame for frame in error["stackTrace"])
    [record] = control(fc_cloud, "invocations", {"function": "fail"})[1]["invocations"]
    assert record["status"] == "failed" and any("ValueError" in line for line in record["logs"])


def test_a_function_past_its_timeout_is_killed_and_reported(fc_cloud):
    resp = invoke(fc_cloud, "slow", b"{}")
    assert resp.headers["x-fc-error-type"] == "UnhandledInvocationError"
    error = json.loads(resp.body.read())
    assert error["errorType"] == "FunctionTimeout" and "time out after 1 seconds" in error["errorMessage"]
    [record] = control(fc_cloud, "invocations", {"function": "slow"})[1]["invocations"]
    assert record["status"] == "timeout" and 1000 <= record["duration_ms"] < 10000
    assert "sleeping" in record["logs"]


def test_invocation_type_and_qualifier_are_checked(fc_cloud):
    with pytest.raises(ClientException) as err:
        invoke(fc_cloud, "text", b"x", kind="Later")
    assert (err.value.status_code, err.value.code) == (400, "InvalidArgument")
    assert invoke(fc_cloud, "text", b"x", qualifier="LATEST").body.read() == b"plain:x"
    with pytest.raises(ClientException) as err:
        invoke(fc_cloud, "text", b"x", qualifier="prod")
    assert err.value.status_code == 404


def test_async_invocation_is_accepted_then_runs_in_the_background(fc_cloud):
    resp = invoke(fc_cloud, "text", b"later", kind="Async")
    assert resp.status_code == 202 and resp.headers["x-fc-request-id"]
    assert resp.body.read() == b""
    status, body = control(fc_cloud, "wait", {"timeout": 30})
    assert status == 200
    [record] = body["invocations"]
    assert (record["request_id"], record["invocation_type"]) == (resp.headers["x-fc-request-id"], "Async")
    assert (record["status"], record["result"]) == ("succeeded", "plain:later")


def test_eventbridge_trigger_fires_on_a_matching_push_only(fc_cloud):
    fc_cloud.push(SOURCE_INSTANCE, "team-b", "batch", "v9")       # namespace does not match the pattern
    fc_cloud.push(SOURCE_INSTANCE, "team-a", "web", "v7.0.0")
    invocations = control(fc_cloud, "wait", {"timeout": 30})[1]["invocations"]
    assert len(invocations) == 1
    [record] = invocations
    assert (record["function"], record["trigger"], record["trigger_name"], record["status"]) == \
        ("text", "eventbridge", "team-a-pushes", "succeeded")
    event = json.loads(record["result"].removeprefix("plain:"))
    assert event["type"] == "cr:Artifact:PushCompleted" and event["data"]["Tag"] == "v7.0.0"
    assert record["event_id"] == event["id"]


def test_control_api_errors(fc_cloud):
    assert control(fc_cloud, "nothing")[0] == 404
    status, body = control(fc_cloud, "wait", {"timeout": "soon"})
    assert status == 400 and "timeout" in body["Message"]
