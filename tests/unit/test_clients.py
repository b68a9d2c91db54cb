"""CloudSession construction: endpoints from the environment, credentials, timeouts (no network)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from acrsync.clock import ManualClock
from acrsync.cloud.clients import CloudSession, Endpoints, api_action, default_endpoint, split_endpoint
from acrsync.cloud.credentials import AssumedRole, Creds, SdkCredential, StaticCredentials
from acrsync.cloud.errors import CloudError, UndeclaredOperation
from acrsync.cloud.sts import parse_expiration

# made-up demo keys: not valid anywhere
AK, SK, TOKEN = "LTAIdemoAccessKeyA", "demo-secret-A-not-real", "demo-sts-token"


def session(env=None, **kw):
    return CloudSession.from_keys(AK, SK, env=env or {}, **kw)


def test_one_variable_routes_every_service_to_localcloud():
    e = Endpoints.from_env({"ACRSYNC_ENDPOINT": "http://127.0.0.1:8123"})
    for svc in ("cr", "ram", "sts", "fc", "ots"):
        assert e.resolve(svc, "whatever.aliyuncs.com") == "http://127.0.0.1:8123"


def test_a_per_service_variable_wins_over_the_global_one():
    e = Endpoints.from_env({"ACRSYNC_ENDPOINT": "http://127.0.0.1:1", "ACRSYNC_ENDPOINT_OTS": "http://127.0.0.1:2"})
    assert e.resolve("ots", "https://x.cn-hangzhou.ots.aliyuncs.com") == "http://127.0.0.1:2"
    assert e.resolve("cr", None) == "http://127.0.0.1:1"


def test_without_variables_the_default_is_kept():
    s = session()
    assert s.endpoint_for("ots", "https://inst.cn-hangzhou.ots.aliyuncs.com") == \
        "https://inst.cn-hangzhou.ots.aliyuncs.com"


def test_ram_is_pinned_to_the_global_host_in_every_region():
    assert default_endpoint("ram", "eu-west-2") == "ram.aliyuncs.com"
    client = session().client("ram", None)
    assert client._endpoint == "ram.aliyuncs.com"


def test_sdk_clients_get_protocol_and_host_from_the_endpoint_url():
    s = session({"ACRSYNC_ENDPOINT": "http://127.0.0.1:8123"})
    for svc in ("cr", "ram", "sts", "fc"):
        c = s.client(svc, "cn-hangzhou")
        assert (c._protocol, c._endpoint) == ("http", "127.0.0.1:8123"), svc


def test_regional_defaults_come_from_the_sdk_and_fix_its_stray_tab():
    s = session()
    assert s.client("cr", "cn-beijing")._endpoint == "cr.cn-beijing.aliyuncs.com"
    assert s.client("fc", "ap-southeast-5")._endpoint == "fcv3.ap-southeast-5.aliyuncs.com"
    assert s.client("sts", None)._endpoint == "sts.aliyuncs.com"


def test_environment_is_read_when_the_session_is_built(monkeypatch):
    monkeypatch.setenv("ACRSYNC_ENDPOINT", "http://127.0.0.1:7001")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    s = CloudSession.from_environment()
    assert s.endpoint_for("cr", None) == "http://127.0.0.1:7001"
    assert s.credentials() == Creds(AK, SK, None)


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:8080", ("http", "127.0.0.1:8080")),
    ("https://cr.cn-hangzhou.aliyuncs.com/", ("https", "cr.cn-hangzhou.aliyuncs.com")),
    ("ram.aliyuncs.com", ("https", "ram.aliyuncs.com")),
])
def test_split_endpoint(url, expected):
    assert split_endpoint(url) == expected


def test_a_malformed_endpoint_says_how_to_write_it():
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        split_endpoint("ftp://x")


def test_timeouts_default_to_3s_connect_and_10s_read():
    c = session().client("cr", "cn-hangzhou")
    assert (c._connect_timeout, c._read_timeout) == (3000, 10000)


def test_fc_python310_context_credentials():
    ctx = SimpleNamespace(credentials=SimpleNamespace(access_key_id=AK, access_key_secret=SK,
                                                      security_token=TOKEN), region="cn-shanghai")
    s = CloudSession.from_fc_context(ctx, env={})
    assert s.credentials() == Creds(AK, SK, TOKEN)
    assert s.region == "cn-shanghai"


def test_fc_python312_has_no_context_credentials_and_uses_the_environment():
    ctx = SimpleNamespace(region="cn-beijing")
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
           "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN}
    assert CloudSession.from_fc_context(ctx, env=env).credentials() == Creds(AK, SK, TOKEN)


def test_a_function_without_credentials_is_told_to_get_a_role():
    with pytest.raises(CloudError, match="give the function a role"):
        CloudSession.from_fc_context(SimpleNamespace(), env={})


def test_secrets_never_show_in_repr():
    text = repr(Creds(AK, SK, TOKEN))
    assert AK in text and SK not in text and TOKEN not in text


def test_the_sdk_sees_sts_keys_as_type_sts():
    m = SdkCredential(StaticCredentials(Creds(AK, SK, TOKEN))).get_credential()
    assert (m.type, m.access_key_id, m.security_token) == ("sts", AK, TOKEN)
    assert SdkCredential(StaticCredentials(Creds(AK, SK))).get_credential().type == "access_key"


def test_assumed_role_is_cached_until_15_minutes_before_expiry():
    clock = ManualClock(1_000_000.0)
    issued = []

    def assume():
        issued.append(clock.now())
        return Creds(f"STS.{len(issued)}", "s", "t", expiration=clock.now() + 3600)

    role = AssumedRole("acs:ram::200000000000002:role/reader", assume, clock=clock)
    assert role.get().access_key_id == "STS.1"
    clock.advance(3600 - 15 * 60 - 1)
    assert role.get().access_key_id == "STS.1"
    clock.advance(2)
    assert role.get().access_key_id == "STS.2"
    assert len(issued) == 2


def test_sts_expiration_is_parsed_as_utc():
    assert parse_expiration("2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_expiration(None) is None


@pytest.mark.parametrize("method,action", [("get_instance", "GetInstance"),
                                           ("list_policies_for_role", "ListPoliciesForRole"),
                                           ("create_repo_sync_task_by_rule", "CreateRepoSyncTaskByRule")])
def test_api_action_names(method, action):
    assert api_action(method) == action


def test_the_session_refuses_an_undeclared_operation_before_calling():
    s = session({"ACRSYNC_ENDPOINT": "http://127.0.0.1:9"})
    with pytest.raises(UndeclaredOperation, match="permissions.py"):
        s.invoke("cr", s.client("cr", "cn-hangzhou"), "delete_namespace", None)
    assert sum(s.calls.values()) == 0


def test_scoped_sessions_share_clients_and_the_counter():
    from acrsync.cloud.retry import Budget

    s = session()
    scoped = s.scoped(Budget.after(5))
    assert scoped.calls is s.calls
    assert scoped.client("cr", "cn-hangzhou") is s.client("cr", "cn-hangzhou")
    assert scoped.budget.bounded and not s.budget.bounded


def test_an_empty_default_chain_says_how_to_configure_keys():
    from acrsync.cloud.credentials import ChainCredentials

    class NoKeys:
        def get_credential(self):
            raise RuntimeError("unable to load credentials from any of the providers in the chain")

    with pytest.raises(CloudError, match="aliyun configure") as e:
        ChainCredentials(NoKeys()).get()
    assert e.value.code == "NoCredentials"
