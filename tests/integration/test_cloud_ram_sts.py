"""Ram and Sts adapters against localcloud, including account B read through the reader role."""

from __future__ import annotations

import json

import pytest

from acrsync.cloud import AccessDenied, CloudError, NotFound
from tests.demo_world import (
    ACCOUNT_A,
    ACCOUNT_B,
    CLI_KEY_ID,
    READER_ROLE,
    READER_ROLE_ARN,
    SYNC_POLICY,
    SYNC_ROLE,
    TARGET_INSTANCE,
    TARGET_REGION,
)

TRUST_A = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"RAM": [f"acs:ram::{ACCOUNT_A}:root"]}}]})
DOC = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["cr:GetInstance"],
                                                 "Resource": "*"}]})


def test_caller_identity(session):
    me = session.sts().get_caller_identity()
    assert me.account_id == ACCOUNT_A
    assert session.calls["sts:GetCallerIdentity"] == 1


def test_assume_role_returns_expiring_temporary_keys(session):
    creds = session.sts().assume_role(READER_ROLE_ARN, "acrsync-test", 3600)
    assert creds.security_token and creds.access_key_id.startswith("STS.")
    assert creds.expiration == pytest.approx(session.clock.now() + 3600, abs=5)


def test_reading_account_b_through_the_reader_role(session):
    ram_b = session.ram(role_arn=READER_ROLE_ARN)
    role = ram_b.get_role(SYNC_ROLE)
    assert role is not None and f"{ACCOUNT_A}@cr.aliyuncs.com" in role.trust_policy
    assert ram_b.get_role("no-such-role") is None
    refs = ram_b.list_policies_for_role(SYNC_ROLE)
    assert (SYNC_POLICY, "Custom") in {(p.name, p.type) for p in refs}
    policy = ram_b.get_policy(SYNC_POLICY, "Custom")
    assert "cr:CreateRepositorySync" in policy.document and policy.default_version == "v1"
    assert ram_b.get_policy("no-such-policy", "Custom") is None
    assert {SYNC_ROLE, READER_ROLE} <= {r.name for r in ram_b.list_roles()}
    # the target instance too, as the reader
    assert session.acr(TARGET_REGION, role_arn=READER_ROLE_ARN).get_instance(TARGET_INSTANCE).edition


def test_the_assumed_role_is_cached_across_adapters(session):
    session.ram(role_arn=READER_ROLE_ARN).get_role(SYNC_ROLE)
    session.ram(role_arn=READER_ROLE_ARN).get_role(READER_ROLE)
    assert session.calls["sts:AssumeRole"] == 1
    assert session.calls["ram:GetRole"] == 2
    assert session.credentials(READER_ROLE_ARN).access_key_id != CLI_KEY_ID


def test_the_role_is_assumed_again_15_minutes_before_expiry(session, cloud):
    ram_b = session.ram(role_arn=READER_ROLE_ARN)
    ram_b.get_role(SYNC_ROLE)
    cloud.advance(3600 - 15 * 60 + 1)
    ram_b.get_role(SYNC_ROLE)
    assert session.calls["sts:AssumeRole"] == 2


def test_the_reader_role_cannot_write(session):
    with pytest.raises(AccessDenied) as e:
        session.ram(role_arn=READER_ROLE_ARN).create_role("sneaky", TRUST_A)
    assert e.value.code == "NoPermission" and e.value.http_status == 403


def test_applier_writes_roles_and_policies(session_b):
    ram = session_b.ram()
    role = ram.create_role("acrsync-test-role", TRUST_A, description="made by a test")
    assert role.arn.endswith(":role/acrsync-test-role") and role.trust_policy
    updated = ram.update_role_trust("acrsync-test-role", TRUST_A.replace(ACCOUNT_A, ACCOUNT_B))
    assert ACCOUNT_B in updated.trust_policy
    created = ram.create_policy("acrsync-test-policy", DOC, description="made by a test")
    assert (created.name, created.type, created.default_version) == ("acrsync-test-policy", "Custom", "v1")
    ram.create_policy_version("acrsync-test-policy", DOC.replace("GetInstance", "ListInstance"))
    assert "cr:ListInstance" in ram.get_policy("acrsync-test-policy", "Custom").document
    ram.attach_policy_to_role("acrsync-test-policy", "Custom", "acrsync-test-role")
    assert "acrsync-test-policy" in {p.name for p in ram.list_policies_for_role("acrsync-test-role")}


def test_creating_an_existing_role_is_not_retried(session_b):
    with pytest.raises(CloudError) as e:
        session_b.ram().create_role(SYNC_ROLE, TRUST_A)
    assert e.value.code == "EntityAlreadyExists.Role" and not isinstance(e.value, NotFound)
    assert session_b.calls["ram:CreateRole"] == 1


def test_a_reader_role_that_does_not_exist_is_not_an_absent_role_or_namespace(session):
    # STS answers 404 (EntityNotExist.Role) for the reader role itself: that says nothing about the
    # role, policy or namespace asked for, so the adapters raise it instead of returning None.
    missing_reader = f"acs:ram::{ACCOUNT_B}:role/no-such-reader"
    with pytest.raises(CloudError) as got:
        session.ram(role_arn=missing_reader).get_role(SYNC_ROLE)
    assert got.value.service == "sts"
    with pytest.raises(CloudError) as got:
        session.ram(role_arn=missing_reader).get_policy(SYNC_POLICY, "Custom")
    assert got.value.service == "sts"
    with pytest.raises(CloudError) as got:
        session.acr(TARGET_REGION, role_arn=missing_reader).get_namespace(TARGET_INSTANCE, "team-a")
    assert got.value.service == "sts"
    assert "ram:GetRole" not in session.calls and "cr:GetNamespace" not in session.calls
