"""RAM 2015-05-01 through the real alibabacloud_ram20150501 client: every action, its errors, and replies that
deserialise into the SDK's own response models."""

from __future__ import annotations

import json

import pytest
from alibabacloud_ram20150501 import models as m
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.demo_world import (
    A_KEY_ID,
    A_OPERATOR_KEY_ID,
    A_OPERATOR_SECRET,
    A_SECRET,
    ACCOUNT_B,
    B_KEY_ID,
    B_SECRET,
    START_TIME,
    SYNC_POLICY,
    SYNC_ROLE,
    fc_role_credentials,
    make_sdk_config,
)

TRUST = json.dumps({"Version": "1", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {"RAM": ["acs:ram::1111111111111111:root"]}}]})


def policy_doc(*actions: str) -> str:
    return json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": list(actions),
                                                      "Resource": "*"}]})


@pytest.fixture
def ram_b(cloud) -> RamClient:
    return RamClient(make_sdk_config(cloud, B_KEY_ID, B_SECRET))


def error_of(call) -> ClientException:
    with pytest.raises(ClientException) as err:
        call()
    return err.value


def test_get_role_populates_the_sdk_model(ram_b):
    body = ram_b.get_role(m.GetRoleRequest(role_name=SYNC_ROLE.upper())).body   # names are case-insensitive
    assert isinstance(body, m.GetRoleResponseBody)
    role = body.role
    assert role.role_name == SYNC_ROLE
    assert role.arn == f"acs:ram::{ACCOUNT_B}:role/{SYNC_ROLE}"
    assert role.role_id.isdigit()
    assert role.create_date == START_TIME and role.update_date == START_TIME
    assert role.max_session_duration == 3600
    trust = json.loads(role.assume_role_policy_document)
    assert trust["Statement"][0]["Principal"]["Service"] == ["1111111111111111@cr.aliyuncs.com"]
    assert body.request_id


def test_list_roles_pages_with_marker(ram_b):
    for i in range(3):
        ram_b.create_role(m.CreateRoleRequest(role_name=f"extra-{i}", assume_role_policy_document=TRUST))
    first = ram_b.list_roles(m.ListRolesRequest(max_items=2)).body
    assert first.is_truncated and first.marker
    second = ram_b.list_roles(m.ListRolesRequest(max_items=2, marker=first.marker)).body
    rest = ram_b.list_roles(m.ListRolesRequest(max_items=2, marker=second.marker)).body
    names = [r.role_name for page in (first, second, rest) for r in page.roles.role]
    assert sorted(names) == sorted(["acrsync-reader", SYNC_ROLE, "extra-0", "extra-1", "extra-2"])
    assert not rest.is_truncated


def test_create_and_update_role(cloud, ram_b):
    created = ram_b.create_role(m.CreateRoleRequest(role_name="Deployer", assume_role_policy_document=TRUST,
                                                    description="made-up demo role",
                                                    max_session_duration=7200))
    assert created.body.role.arn == f"acs:ram::{ACCOUNT_B}:role/Deployer"      # the ARN keeps the case
    assert created.body.role.max_session_duration == 7200
    cloud.advance(60)
    new_trust = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                           "Principal": {"Service": ["fc.aliyuncs.com"]}}]})
    updated = ram_b.update_role(m.UpdateRoleRequest(role_name="deployer",
                                                    new_assume_role_policy_document=new_trust,
                                                    new_description="changed")).body.role
    principal = json.loads(updated.assume_role_policy_document)["Statement"][0]["Principal"]
    assert principal["Service"] == ["fc.aliyuncs.com"]
    assert updated.description == "changed"
    assert updated.update_date == "2026-11-28T00:01:00Z" and updated.create_date == START_TIME


@pytest.mark.parametrize(("request_", "code", "status"), [
    (m.CreateRoleRequest(role_name=SYNC_ROLE, assume_role_policy_document=TRUST),
     "EntityAlreadyExists.Role", 409),
    (m.CreateRoleRequest(role_name="bad_name!", assume_role_policy_document=TRUST),
     "InvalidParameter.RoleName", 400),
    (m.CreateRoleRequest(role_name="x" * 65, assume_role_policy_document=TRUST),
     "InvalidParameter.RoleName", 400),
    (m.CreateRoleRequest(role_name="ok", assume_role_policy_document="{oops"),
     "MalformedPolicyDocument", 400),
    (m.CreateRoleRequest(role_name="ok", assume_role_policy_document=json.dumps(
        {"Version": "2", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                        "Principal": {"RAM": "x"}}]})),
     "MalformedPolicyDocument", 400),
    (m.CreateRoleRequest(role_name="ok"), "MissingParameter", 400),
])
def test_create_role_errors(ram_b, request_, code, status):
    err = error_of(lambda: ram_b.create_role(request_))
    assert (err.code, err.status_code) == (code, status)


def test_missing_role_errors(ram_b):
    for call in (lambda: ram_b.get_role(m.GetRoleRequest(role_name="nope")),
                 lambda: ram_b.update_role(m.UpdateRoleRequest(role_name="nope", new_description="x")),
                 lambda: ram_b.list_policies_for_role(m.ListPoliciesForRoleRequest(role_name="nope"))):
        err = error_of(call)
        assert (err.code, err.status_code) == ("EntityNotExist.Role", 404)


def test_list_policies_for_role(ram_b):
    body = ram_b.list_policies_for_role(m.ListPoliciesForRoleRequest(role_name=SYNC_ROLE)).body
    [policy] = body.policies.policy
    assert (policy.policy_name, policy.policy_type, policy.default_version) == (SYNC_POLICY, "Custom", "v1")
    assert policy.attach_date == START_TIME


def test_get_policy_custom_and_system(ram_b):
    body = ram_b.get_policy(m.GetPolicyRequest(policy_name=SYNC_POLICY, policy_type="Custom")).body
    assert body.policy.policy_type == "Custom" and body.policy.attachment_count == 1
    assert body.default_policy_version.version_id == "v1" and body.default_policy_version.is_default_version
    statement = json.loads(body.default_policy_version.policy_document)["Statement"][0]
    assert statement["Action"] == ["cr:CreateSyncRule", "cr:CreateRepositorySync"]
    assert statement["Resource"] == "acs:cr:cn-beijing:2222222222222222:instance/cri-demotarget01"
    system = ram_b.get_policy(m.GetPolicyRequest(policy_name="AliyunContainerRegistryFullAccess",
                                                 policy_type="System")).body
    assert system.policy.policy_type == "System"
    assert json.loads(system.default_policy_version.policy_document)["Statement"][0]["Action"] == "cr:*"
    err = error_of(lambda: ram_b.get_policy(m.GetPolicyRequest(policy_name="nope", policy_type="Custom")))
    assert (err.code, err.status_code) == ("EntityNotExist.Policy", 404)
    err = error_of(lambda: ram_b.get_policy(m.GetPolicyRequest(policy_name=SYNC_POLICY,
                                                               policy_type="System")))
    assert err.code == "EntityNotExist.Policy"
    err = error_of(lambda: ram_b.get_policy(m.GetPolicyRequest(policy_name=SYNC_POLICY, policy_type="Other")))
    assert err.code == "InvalidParameter.PolicyType"


def test_policy_lifecycle_and_version_limit(ram_b):
    created = ram_b.create_policy(m.CreatePolicyRequest(policy_name="acrsync-test",
                                                        description="made-up demo",
                                                        policy_document=policy_doc("cr:GetInstance"))).body.policy
    assert (created.policy_name, created.policy_type, created.default_version) == ("acrsync-test",
                                                                                   "Custom", "v1")
    err = error_of(lambda: ram_b.create_policy(m.CreatePolicyRequest(policy_name="acrsync-test",
                                                                     policy_document=policy_doc("cr:*"))))
    assert (err.code, err.status_code) == ("EntityAlreadyExists.Policy", 409)
    err = error_of(lambda: ram_b.create_policy(m.CreatePolicyRequest(policy_name="p2", policy_document="[]")))
    assert err.code == "MalformedPolicyDocument"

    v2 = ram_b.create_policy_version(m.CreatePolicyVersionRequest(
        policy_name="acrsync-test", policy_document=policy_doc("cr:ListInstance"), set_as_default=True)).body
    assert (v2.policy_version.version_id, v2.policy_version.is_default_version) == ("v2", True)
    for _ in range(3):
        ram_b.create_policy_version(m.CreatePolicyVersionRequest(
            policy_name="acrsync-test", policy_document=policy_doc("cr:GetRepository"), set_as_default=False))
    err = error_of(lambda: ram_b.create_policy_version(m.CreatePolicyVersionRequest(
        policy_name="acrsync-test", policy_document=policy_doc("cr:*"))))
    assert err.code == "LimitExceeded.Policy.Version"
    rotated = ram_b.create_policy_version(m.CreatePolicyVersionRequest(
        policy_name="acrsync-test", policy_document=policy_doc("cr:*"), set_as_default=False,
        rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded")).body.policy_version
    assert rotated.version_id == "v6" and not rotated.is_default_version

    versions = ram_b.list_policy_versions(m.ListPolicyVersionsRequest(
        policy_name="acrsync-test", policy_type="Custom")).body.policy_versions.policy_version
    assert [v.version_id for v in versions] == ["v6", "v5", "v4", "v3", "v2"]     # v1 rotated out
    assert [v.is_default_version for v in versions] == [False, False, False, False, True]
    v2_again = ram_b.get_policy_version(m.GetPolicyVersionRequest(
        policy_name="acrsync-test", policy_type="Custom", version_id="v2")).body.policy_version
    assert json.loads(v2_again.policy_document)["Statement"][0]["Action"] == ["cr:ListInstance"]
    err = error_of(lambda: ram_b.get_policy_version(m.GetPolicyVersionRequest(
        policy_name="acrsync-test", policy_type="Custom", version_id="v1")))
    assert err.code == "EntityNotExist.Policy.Version"
    default = ram_b.get_policy(m.GetPolicyRequest(policy_name="acrsync-test", policy_type="Custom")).body
    assert default.policy.default_version == "v2"


def test_attach_and_detach(ram_b):
    ram_b.attach_policy_to_role(m.AttachPolicyToRoleRequest(policy_name="AliyunRAMReadOnlyAccess",
                                                            policy_type="System", role_name=SYNC_ROLE))
    names = {p.policy_name for p in ram_b.list_policies_for_role(
        m.ListPoliciesForRoleRequest(role_name=SYNC_ROLE)).body.policies.policy}
    assert names == {SYNC_POLICY, "AliyunRAMReadOnlyAccess"}
    err = error_of(lambda: ram_b.attach_policy_to_role(m.AttachPolicyToRoleRequest(
        policy_name="AliyunRAMReadOnlyAccess", policy_type="System", role_name=SYNC_ROLE)))
    assert (err.code, err.status_code) == ("EntityAlreadyExists.Role.Policy", 409)
    err = error_of(lambda: ram_b.attach_policy_to_role(m.AttachPolicyToRoleRequest(
        policy_name="NoSuchPolicy", policy_type="Custom", role_name=SYNC_ROLE)))
    assert err.code == "EntityNotExist.Policy"
    err = error_of(lambda: ram_b.attach_policy_to_role(m.AttachPolicyToRoleRequest(
        policy_name="AliyunRAMReadOnlyAccess", policy_type="System", role_name="nope")))
    assert err.code == "EntityNotExist.Role"

    ram_b.detach_policy_from_role(m.DetachPolicyFromRoleRequest(policy_name=SYNC_POLICY, policy_type="Custom",
                                                                role_name=SYNC_ROLE))
    names = [p.policy_name for p in ram_b.list_policies_for_role(
        m.ListPoliciesForRoleRequest(role_name=SYNC_ROLE)).body.policies.policy]
    assert names == ["AliyunRAMReadOnlyAccess"]
    err = error_of(lambda: ram_b.detach_policy_from_role(m.DetachPolicyFromRoleRequest(
        policy_name=SYNC_POLICY, policy_type="Custom", role_name=SYNC_ROLE)))
    assert (err.code, err.status_code) == ("EntityNotExist.Role.Policy", 404)


def test_each_account_sees_only_its_own_roles(cloud):
    ram_a = RamClient(make_sdk_config(cloud, A_KEY_ID, A_SECRET))
    err = error_of(lambda: ram_a.get_role(m.GetRoleRequest(role_name=SYNC_ROLE)))
    assert err.code == "EntityNotExist.Role"
    assert [r.role_name for r in ram_a.list_roles(m.ListRolesRequest()).body.roles.role] == ["acrsync-fc"]


def test_role_without_ram_permission_gets_no_permission(cloud):
    creds = fc_role_credentials(cloud)          # acrsync-fc holds no RAM permission
    ram = RamClient(make_sdk_config(cloud, creds.access_key_id, creds.secret, creds.token))
    err = error_of(lambda: ram.get_role(m.GetRoleRequest(role_name="acrsync-fc")))
    assert (err.code, err.status_code) == ("NoPermission", 403)
    assert err.data["AccessDeniedDetail"]["NoPermissionType"] == "ImplicitDeny"
    assert err.data["AccessDeniedDetail"]["AuthAction"] == "ram:GetRole"


def test_read_only_user_can_read_but_not_write(cloud):
    ram = RamClient(make_sdk_config(cloud, A_OPERATOR_KEY_ID, A_OPERATOR_SECRET))
    assert ram.get_role(m.GetRoleRequest(role_name="acrsync-fc")).body.role.role_name == "acrsync-fc"
    err = error_of(lambda: ram.create_role(m.CreateRoleRequest(role_name="sneaky",
                                                               assume_role_policy_document=TRUST)))
    assert err.code == "NoPermission"


def _statement(**over) -> dict:
    base = {"Effect": "Allow", "Action": "cr:GetRepository", "Resource": "*"}
    return {k: v for k, v in {**base, **over}.items() if v is not None}


# https://www.alibabacloud.com/help/en/ram/policy-structure-and-syntax (May 2026)
@pytest.mark.parametrize(("document", "fragment"), [
    ({"Version": 1, "Statement": [_statement()]}, 'Version must be the string "1"'),
    ({"Version": "1", "Statement": _statement()}, "Statement must be a list"),
    ({"Version": "1", "Statement": []}, "non-empty Statement list"),
    ({"Version": "1", "Statement": [_statement(Resource=None)]}, "Statement[0] needs a Resource"),
    ({"Version": "1", "Statement": [_statement(Resource=None, NotResource="acs:cr:*:*:*")]},
     "NotResource is not part of the policy language"),
    ({"Version": "1", "Statement": [_statement(Principal={"RAM": ["acs:ram::1:root"]})]},
     "Principal belongs to a role's trust policy"),
    ({"Version": "1", "Statement": [_statement(Effect="allow")]}, "Effect must be Allow or Deny"),
    ({"Version": "1", "Statement": [_statement(Action=None)]}, "exactly one of Action or NotAction"),
    ({"Version": "1", "Statement": [_statement(Action=[])]}, "Action must be a string or a non-empty list"),
    ({"Version": "1", "Statement": [_statement(Condition="no")]}, "Condition must be an object"),
])
def test_permission_policies_are_validated_as_ram_does(ram_b, document, fragment):
    err = error_of(lambda: ram_b.create_policy(m.CreatePolicyRequest(policy_name="bad",
                                                                      policy_document=json.dumps(document))))
    assert (err.code, err.status_code) == ("MalformedPolicyDocument", 400)
    assert fragment in err.message
    err = error_of(lambda: ram_b.create_policy_version(m.CreatePolicyVersionRequest(
        policy_name=SYNC_POLICY, policy_document=json.dumps(document))))
    assert err.code == "MalformedPolicyDocument"


@pytest.mark.parametrize(("statement", "fragment"), [
    ({"Effect": "Allow", "Action": "sts:AssumeRole"}, "needs a Principal"),
    ({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {}}, "needs a Principal"),
])
def test_trust_policies_need_a_principal(ram_b, statement, fragment):
    err = error_of(lambda: ram_b.create_role(m.CreateRoleRequest(
        role_name="needs-principal", assume_role_policy_document=json.dumps({"Version": "1",
                                                                             "Statement": [statement]}))))
    assert (err.code, err.status_code) == ("MalformedPolicyDocument", 400)
    assert fragment in err.message


def test_a_trust_policy_needs_no_resource_and_a_permission_policy_accepts_a_valid_document(ram_b):
    assert ram_b.create_role(m.CreateRoleRequest(role_name="fine",
                                                 assume_role_policy_document=TRUST)).body.role
    ok = {"Version": "1", "Statement": [_statement(NotAction="ram:*", Action=None, Effect="Allow",
                                                   Condition={"Bool": {"acs:SecureTransport": "true"}})]}
    assert ram_b.create_policy(m.CreatePolicyRequest(policy_name="fine", policy_document=json.dumps(ok))).body


def test_role_arns_keep_the_case_the_role_was_created_with(ram_b):
    created = ram_b.create_role(m.CreateRoleRequest(role_name="MixedCase-Role",
                                                    assume_role_policy_document=TRUST)).body.role
    assert created.arn == f"acs:ram::{ACCOUNT_B}:role/MixedCase-Role"
    found = ram_b.get_role(m.GetRoleRequest(role_name="mixedcase-role")).body.role    # looked up in any case
    assert (found.role_name, found.arn) == ("MixedCase-Role", f"acs:ram::{ACCOUNT_B}:role/MixedCase-Role")
