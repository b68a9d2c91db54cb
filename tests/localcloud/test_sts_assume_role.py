"""STS AssumeRole and GetCallerIdentity through the real alibabacloud_sts20150401 client."""

from __future__ import annotations

import json

import pytest
import yaml
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.exceptions import ClientException

from localcloud.clock import parse_iso
from tests.demo_world import (
    A_KEY_ID,
    A_OPERATOR_KEY_ID,
    A_OPERATOR_SECRET,
    A_SECRET,
    ACCOUNT_B,
    B_KEY_ID,
    B_SECRET,
    CLI_KEY_ID,
    CLI_SECRET,
    DEMO_SCENARIO,
    FC_ROLE_ARN,
    READER_ROLE_ARN,
    START_TIME,
    SYNC_ROLE,
    fc_role_credentials,
    make_sdk_config,
)


def assume(cloud, key_id=CLI_KEY_ID, secret=CLI_SECRET, role_arn=READER_ROLE_ARN, **kw):
    client = StsClient(make_sdk_config(cloud, key_id, secret))
    return client.assume_role(sts_models.AssumeRoleRequest(role_arn=role_arn, role_session_name="acrsync",
                                                           **kw)).body


def test_cross_account_assume_role_and_use_the_credentials(cloud):
    body = assume(cloud, duration_seconds=1800)
    creds = body.credentials
    assert creds.access_key_id.startswith("STS.")
    assert creds.access_key_secret and creds.security_token
    assert parse_iso(creds.expiration) == parse_iso(START_TIME) + 1800
    assert body.assumed_role_user.arn == f"acs:ram::{ACCOUNT_B}:assumed-role/acrsync-reader/acrsync"
    assert body.assumed_role_user.assumed_role_id.endswith(":acrsync")
    assert body.request_id

    config = make_sdk_config(cloud, creds.access_key_id, creds.access_key_secret, creds.security_token)
    who = StsClient(config).get_caller_identity().body
    assert (who.identity_type, who.account_id) == ("AssumedRoleUser", ACCOUNT_B)
    assert who.role_id and who.principal_id == f"{who.role_id}:acrsync"
    role = RamClient(config).get_role(ram_models.GetRoleRequest(role_name=SYNC_ROLE)).body.role
    assert role.arn == f"acs:ram::{ACCOUNT_B}:role/{SYNC_ROLE}"


def test_trust_policy_refuses_an_identity_it_does_not_name(cloud):
    # acrsync-fc (account A) trusts fc.aliyuncs.com only: even account A's own RAM user has no way in.
    with pytest.raises(ClientException) as err:
        assume(cloud, role_arn=FC_ROLE_ARN)
    assert (err.value.code, err.value.status_code) == ("NoPermission", 403)
    assert "authorized by RAM" in err.value.message


@pytest.mark.parametrize(("key_id", "secret", "role_arn"), [
    (A_KEY_ID, A_SECRET, READER_ROLE_ARN),                             # another account's role that trusts A
    (A_KEY_ID, A_SECRET, FC_ROLE_ARN),                                 # its own account's role
    (B_KEY_ID, B_SECRET, f"acs:ram::{ACCOUNT_B}:role/{SYNC_ROLE}"),
])
def test_root_keys_may_not_assume_any_role(cloud, key_id, secret, role_arn):
    # https://www.alibabacloud.com/help/doc-detail/42775.htm: "Roles may not be assumed by root accounts."
    with pytest.raises(ClientException) as err:
        assume(cloud, key_id, secret, role_arn)
    assert (err.value.code, err.value.status_code) == ("NoPermission", 403)
    assert "Roles may not be assumed by root accounts." in err.value.message
    assert cloud.stats()["AssumeRole"] == 1


def test_caller_needs_its_own_sts_permission(cloud):
    # The operator user's policies (read-only cr and ram) do not include sts:AssumeRole.
    with pytest.raises(ClientException) as err:
        assume(cloud, A_OPERATOR_KEY_ID, A_OPERATOR_SECRET)
    assert err.value.code == "NoPermission"
    assert err.value.data["AccessDeniedDetail"]["AuthAction"] == "sts:AssumeRole"


def test_role_chaining_from_the_functions_role(cloud):
    # The keys Function Compute hands the functions (the role trusts fc.aliyuncs.com) assume the reader role.
    fc = fc_role_credentials(cloud)
    client = StsClient(make_sdk_config(cloud, fc.access_key_id, fc.secret, fc.token))
    reader = client.assume_role(sts_models.AssumeRoleRequest(role_arn=READER_ROLE_ARN,
                                                             role_session_name="chained")).body
    assert reader.assumed_role_user.arn.endswith("acrsync-reader/chained")


def test_token_expires_on_the_emulator_clock(cloud):
    creds = assume(cloud, duration_seconds=900).credentials
    client = StsClient(make_sdk_config(cloud, creds.access_key_id, creds.access_key_secret,
                                       creds.security_token))
    assert client.get_caller_identity().body.account_id == ACCOUNT_B
    cloud.advance(899)
    assert client.get_caller_identity().body.account_id == ACCOUNT_B
    cloud.advance(1)
    with pytest.raises(ClientException) as err:
        client.get_caller_identity()
    assert (err.value.code, err.value.status_code) == ("InvalidSecurityToken.Expired", 400)


def test_missing_role_is_not_found_for_a_caller_allowed_to_assume_it(cloud_factory):
    doc = yaml.safe_load(DEMO_SCENARIO.read_text())
    doc["accounts"][0]["users"][1]["policies"].append("AliyunSTSAssumeRoleAccess")     # acrsync-cli: any role
    cloud = cloud_factory(doc)
    for role_arn in (f"acs:ram::{ACCOUNT_B}:role/no-such-role",
                     "acs:ram::9999999999999999:role/acrsync-reader"):
        with pytest.raises(ClientException) as err:
            assume(cloud, role_arn=role_arn)
        assert (err.value.code, err.value.status_code) == ("EntityNotExist.Role", 404)


@pytest.mark.parametrize(("kwargs", "code", "status"), [
    # not in acrsync-cli's policy
    ({"role_arn": f"acs:ram::{ACCOUNT_B}:role/no-such-role"}, "NoPermission", 403),
    ({"role_arn": "arn:aws:iam::1:role/x"}, "InvalidParameter.RoleArn", 400),
    ({"duration_seconds": 899}, "InvalidParameter.DurationSeconds", 400),
    ({"duration_seconds": 3601}, "InvalidParameter.DurationSeconds", 400),
    ({"policy": "{not json"}, "InvalidParameter.PolicyGrammar", 400),
])
def test_assume_role_parameter_errors(cloud, kwargs, code, status):
    with pytest.raises(ClientException) as err:
        assume(cloud, **kwargs)
    assert (err.value.code, err.value.status_code) == (code, status)


def test_session_policy_narrows_the_role(cloud):
    only_get_role = json.dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ram:GetRole", "Resource": "*"}]})
    creds = assume(cloud, policy=only_get_role).credentials
    ram = RamClient(make_sdk_config(cloud, creds.access_key_id, creds.access_key_secret,
                                    creds.security_token))
    assert ram.get_role(ram_models.GetRoleRequest(role_name=SYNC_ROLE)).body.role.role_name == SYNC_ROLE
    with pytest.raises(ClientException) as err:
        ram.list_roles(ram_models.ListRolesRequest())
    assert err.value.code == "NoPermission"


def test_credentials_library_ram_role_arn_provider(cloud_factory):
    """alibabacloud_credentials signs its own GET AssumeRole (V1). It forces https unless the endpoint carries
    its scheme, so point it at ``http://127.0.0.1:PORT``. It judges expiry by the real clock: use a clock that
    starts now (wall, or manual without start_time)."""
    from alibabacloud_credentials.client import Client as CredClient
    from alibabacloud_credentials.models import Config as CredConfig
    from alibabacloud_tea_openapi.utils_models import Config

    cloud = cloud_factory(DEMO_SCENARIO, clock="wall")
    credential = CredClient(CredConfig(
        type="ram_role_arn", access_key_id=CLI_KEY_ID, access_key_secret=CLI_SECRET, role_arn=READER_ROLE_ARN,
        role_session_name="acrsync-reader", role_session_expiration=3600, sts_endpoint=cloud.url,
        policy=json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ram:*",
                                                          "Resource": "*"}]}),
    ))
    ram = RamClient(Config(credential=credential, endpoint=f"127.0.0.1:{cloud.port}", protocol="http",
                           region_id="cn-hangzhou"))
    assert ram.get_role(ram_models.GetRoleRequest(role_name=SYNC_ROLE)).body.role.role_name == SYNC_ROLE
    ram.get_role(ram_models.GetRoleRequest(role_name=SYNC_ROLE))
    assert cloud.stats()["AssumeRole"] == 1          # cached by the provider
    assert credential.get_credential().access_key_id.startswith("STS.")


def test_the_assumed_role_arn_keeps_the_roles_case(cloud_factory):
    doc = yaml.safe_load(DEMO_SCENARIO.read_text())
    doc["accounts"][0]["users"][1]["policies"].append("AliyunSTSAssumeRoleAccess")     # acrsync-cli: any role
    reader = next(r for r in doc["accounts"][1]["roles"] if r["name"] == "acrsync-reader")
    reader["name"] = "AcrSync-Reader"
    cloud = cloud_factory(doc)
    body = assume(cloud, role_arn=f"acs:ram::{ACCOUNT_B}:role/acrsync-reader")        # matched in any case
    assert body.assumed_role_user.arn == f"acs:ram::{ACCOUNT_B}:assumed-role/AcrSync-Reader/acrsync"
    creds = body.credentials
    who = StsClient(make_sdk_config(cloud, creds.access_key_id, creds.access_key_secret,
                                    creds.security_token)).get_caller_identity().body
    assert who.arn == f"acs:ram::{ACCOUNT_B}:assumed-role/AcrSync-Reader/acrsync"
