"""localcloud's own RAM policy evaluator (pure: no I/O)."""

from __future__ import annotations

import json

import pytest

from localcloud import policy
from localcloud.clock import Clock
from localcloud.scenario import build_world, parse

INSTANCE = "acs:cr:cn-beijing:2222222222222222:instance/cri-demotarget01"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(("pattern", "value", "ignore_case", "expected"), [
    ("cr:*", "cr:GetInstance", False, True),
    ("cr:Get*", "cr:ListInstance", False, False),
    ("cr:GetInstanc?", "cr:GetInstance", False, True),
    ("cr:GetInstanc?", "cr:GetInstances", False, False),
    ("CR:getinstance", "cr:GetInstance", True, True),
    ("CR:getinstance", "cr:GetInstance", False, False),
    ("acs:cr:*:222:repository/cri-1/*", "acs:cr:cn-beijing:222:repository/cri-1/ns/repo", False, True),
    ("a.b", "aXb", False, False),          # regex metacharacters are literal
])
def test_wildcards(pattern, value, ignore_case, expected):
    assert policy.wildcard_match(pattern, value, ignore_case=ignore_case) is expected


def test_actions_case_insensitive_resources_case_sensitive():
    docs = [doc(allow("CR:CreateREPOSITORYSync", INSTANCE))]
    assert policy.is_allowed(docs, "cr:CreateRepositorySync", INSTANCE)
    assert not policy.is_allowed(docs, "cr:CreateRepositorySync", INSTANCE.replace("cri-demotarget01",
                                                                                   "CRI-DEMOTARGET01"))


def test_implicit_deny_and_string_or_list_values():
    docs = [doc(allow(["cr:CreateSyncRule", "cr:CreateRepositorySync"], [INSTANCE]))]
    assert policy.is_allowed(docs, "cr:CreateSyncRule", INSTANCE)
    assert not policy.is_allowed(docs, "cr:DeleteSyncRule", INSTANCE)
    assert not policy.is_allowed(docs, "cr:CreateSyncRule", INSTANCE + "x")
    assert policy.decide([], "cr:CreateSyncRule", INSTANCE) == policy.IMPLICIT_DENY


def test_explicit_deny_wins_across_documents():
    docs = [doc(allow("cr:*")), doc(deny("cr:CreateRepositorySync", INSTANCE))]
    assert policy.decide(docs, "cr:CreateRepositorySync", INSTANCE) == policy.EXPLICIT_DENY
    assert policy.is_allowed(docs, "cr:CreateSyncRule", INSTANCE)


def test_not_action_and_not_resource():
    docs = [doc({"Effect": "Allow", "NotAction": "ram:*", "Resource": "*"})]
    assert policy.is_allowed(docs, "cr:GetInstance", INSTANCE)
    assert not policy.is_allowed(docs, "ram:GetRole", "acs:ram::1:role/x")
    docs = [doc({"Effect": "Allow", "Action": "cr:*", "NotResource": INSTANCE})]
    assert not policy.is_allowed(docs, "cr:GetInstance", INSTANCE)
    assert policy.is_allowed(docs, "cr:GetInstance", INSTANCE + "2")


def test_condition_never_grants_but_always_denies():
    cond = {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}
    assert not policy.is_allowed([doc(allow("cr:*", Condition=cond))], "cr:GetInstance", INSTANCE)
    assert not policy.is_allowed([doc(allow("cr:*"), deny("cr:GetInstance", Condition=cond))],
                                 "cr:GetInstance",
                                 INSTANCE)


def test_malformed_documents_grant_nothing_and_are_reported():
    assert not policy.is_allowed(["{not json", {"Version": "2", "Statement": [allow("*")]}],
                                 "cr:GetInstance", "*")
    with pytest.raises(policy.PolicyDocumentError, match="Version"):
        policy.load_document({"Version": "2012-10-17", "Statement": [allow("*")]})
    with pytest.raises(policy.PolicyDocumentError, match="Effect"):
        policy.load_document({"Version": "1", "Statement": [{"Effect": "Maybe", "Action": "*",
                                                             "Resource": "*"}]})
    with pytest.raises(policy.PolicyDocumentError, match="Action or NotAction"):
        policy.load_document({"Version": "1", "Statement": [{"Effect": "Allow", "Resource": "*"}]})


def trust(principal: dict, **extra) -> dict:
    return {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                           "Principal": principal,
                                            **extra}]}


def test_trust_service_principal():
    t = trust({"Service": ["1111111111111111@cr.aliyuncs.com"]})
    assert policy.trust_allows(t, service="1111111111111111@cr.aliyuncs.com")
    assert not policy.trust_allows(t, service="3333333333333333@cr.aliyuncs.com")
    assert not policy.trust_allows(t, account_id="1111111111111111")


def test_trust_ram_root_means_any_identity_of_that_account():
    t = json.dumps(trust({"RAM": "acs:ram::1111111111111111:root"}))
    assert policy.trust_allows(t, ram_arn="acs:ram::1111111111111111:user/alice")
    assert policy.trust_allows(t, ram_arn="acs:ram::1111111111111111:role/acrsync-fc")
    assert policy.trust_allows(t, account_id="1111111111111111")
    assert not policy.trust_allows(t, ram_arn="acs:ram::3333333333333333:root")


def test_trust_exact_principal_and_deny_and_condition():
    t = trust({"RAM": ["acs:ram::1111111111111111:role/acrsync-fc"]})
    assert policy.trust_allows(t, ram_arn="acs:ram::1111111111111111:role/ACRSYNC-FC")
    assert not policy.trust_allows(t, ram_arn="acs:ram::1111111111111111:role/other")
    assert not policy.trust_allows(trust({"RAM": "acs:ram::1:root"},
                                         Condition={"StringEquals": {"sts:ExternalId": "x"}}),
                                   account_id="1")
    denied = trust({"RAM": "acs:ram::1:root"})
    denied["Statement"].append({"Effect": "Deny", "Action": "sts:*",
                                "Principal": {"RAM": "acs:ram::1:user/bob"}})
    assert policy.trust_allows(denied, ram_arn="acs:ram::1:user/alice")
    assert not policy.trust_allows(denied, ram_arn="acs:ram::1:user/bob")
    assert not policy.trust_allows({"Version": "1",
                                    "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity",
                                                   "Principal": {"RAM": "acs:ram::1:root"}}]},
                                   account_id="1")


def test_role_documents_returns_custom_and_system_default_versions():
    spec = parse({
        "accounts": [{"id": "2222222222222222", "roles": [{
            "name": "Mixed", "trust_policy": trust({"RAM": "acs:ram::1111111111111111:root"}),
            "policies": [{"name": "custom-one", "document": doc(allow("cr:CreateSyncRule", INSTANCE))},
                         "AliyunContainerRegistryReadOnlyAccess"]}]}]})
    world = build_world(spec, Clock("manual", 0))
    docs = policy.role_documents(world, "2222222222222222", "mixed")
    assert len(docs) == 2
    assert policy.is_allowed(docs, "cr:CreateSyncRule", INSTANCE)
    assert policy.is_allowed(docs, "cr:ListRepository", INSTANCE)
    assert not policy.is_allowed(docs, "cr:DeleteSyncRule", INSTANCE)
    assert policy.role_documents(world, "2222222222222222", "absent") == []
    assert policy.role_documents(world, "9999", "mixed") == []
