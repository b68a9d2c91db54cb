"""Grant and prerequisite checks through in-memory fakes of the Ram and Acr adapters: every finding code."""

from __future__ import annotations

import dataclasses
import json

import pytest

from acrsync import policy as P
from acrsync.cloud.errors import AccessDenied, NotFound, ServerError
from acrsync.grants import CODES, check_target, fixes
from acrsync.grants import check as check_mod
from tests.unit.test_grants_fakes import (
    SOURCE_ACCOUNT,
    TARGET_ACCOUNT,
    FakeAcr,
    good_policy,
    good_trust,
    healthy,
    make_config,
)


def run(config=None, ram="healthy", src=None, dst=None, target_acr="dst"):
    config = config or make_config()
    h_ram, h_src, h_dst = healthy()
    ram = h_ram if ram == "healthy" else ram
    return check_target(config, config.targets[0], ram=ram, source_acr=src or h_src,
                        target_acr=(dst or h_dst) if target_acr == "dst" else target_acr)


def codes(found):
    return [f.code for f in found]


def only(found, code):
    hits = [f for f in found if f.code == code]
    assert len(hits) == 1, codes(found)
    return hits[0]


def ram_with(trust=None, *policies):
    ram, _, _ = healthy()
    ram.roles.clear()
    ram.attached.clear()
    ram.policies.clear()
    ram.add_role(trust=trust)
    for i, doc in enumerate(policies):
        ram.add_policy(f"p{i}", doc)
    return ram


# ---- clean ---------------------------------------------------------------------------------------

def test_healthy_target_has_no_findings():
    assert run() == []


def test_same_account_target_needs_no_grant():
    cfg = make_config(account_id=SOURCE_ACCOUNT, reader_role_arn=None)
    assert run(cfg, ram=None) == []


def test_system_policy_with_cr_star_is_enough():
    ram = ram_with(good_trust())
    ram.add_policy("AliyunContainerRegistryFullAccess", json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "cr:*", "Resource": "*"}]}),
                   type="System")
    assert run(ram=ram) == []


# ---- role ----------------------------------------------------------------------------------------

def test_role_missing():
    ram, _, _ = healthy()
    ram.roles.clear()
    f = only(run(ram=ram), "ROLE_MISSING")
    assert f.severity == "error"
    assert P.SYNC_ROLE_NAME in f.message and "cri-target0001" in f.message
    assert f.fix.automatic and f.fix.role_name == P.SYNC_ROLE_NAME
    assert any(c.startswith(f"aliyun ram CreateRole --RoleName {P.SYNC_ROLE_NAME} ") for c in f.fix.commands)
    assert any("UpdateRole" in c and "--NewAssumeRolePolicyDocument" in c for c in f.fix.commands)


def test_role_with_corrected_spelling_is_misspelt():
    ram, _, _ = healthy()
    ram.roles.clear()
    ram.add_role("aliyuncontainerregistrycrossaccountsyncrole")
    found = run(ram=ram)
    assert codes(found) == ["ROLE_NAME_MISSPELT"]
    f = found[0]
    assert "aliyuncontainerregistrycrossaccountsyncrole" in f.message and "accout" in f.message
    assert f.evidence[0].source == "role aliyuncontainerregistrycrossaccountsyncrole"


def test_corrected_spelling_is_found_with_get_role_alone():
    ram, _, _ = healthy()
    ram.roles.clear()
    ram.add_role("AliyunContainerRegistryCrossAccountSyncRole")
    ram.deny.add("list_roles")
    f = only(run(ram=ram), "ROLE_NAME_MISSPELT")
    assert "AliyunContainerRegistryCrossAccountSyncRole" in f.message
    assert "ListRoles" not in ram.calls_made


def test_role_missing_when_roles_cannot_be_listed_says_so():
    ram, _, _ = healthy()
    ram.roles.clear()
    ram.deny.add("list_roles")
    f = only(run(ram=ram), "ROLE_MISSING")
    assert "ram:ListRoles" in f.message


# ---- actions -------------------------------------------------------------------------------------

def test_no_policy_attached_means_action_not_allowed_for_both_actions():
    found = run(ram=ram_with(good_trust()))
    assert codes(found) == ["ACTION_NOT_ALLOWED"]          # one finding for both actions, same cause
    assert "no policy is attached" in found[0].message
    assert "cr:CreateSyncRule and cr:CreateRepositorySync" in found[0].message


def test_policy_without_the_actions():
    doc = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "cr:Get*",
                                                     "Resource": "*"}]})
    found = run(ram=ram_with(good_trust(), doc))
    assert codes(found) == ["ACTION_NOT_ALLOWED"]
    assert "no attached policy allows it" in found[0].message


def test_one_action_missing_old_name():
    doc = good_policy().replace("cr:CreateSyncRule", "cr:CreateRepoSyncRule")
    f = only(run(ram=ram_with(good_trust(), doc)), "ACTION_NOT_ALLOWED")
    assert "cr:CreateSyncRule" in f.message and "cr:CreateRepositorySync" not in f.message


@pytest.mark.parametrize("kwargs, hint", [
    ({"region": "cn-hangzhou"}, "region cn-hangzhou instead of cn-beijing"),
    ({"account": SOURCE_ACCOUNT}, f"account {SOURCE_ACCOUNT} instead of {TARGET_ACCOUNT}"),
    ({"instance": "cri-other0002"}, "instance cri-other0002 instead of cri-target0001"),
])
def test_resource_mismatch_names_what_differs(kwargs, hint):
    found = run(ram=ram_with(good_trust(), good_policy(**kwargs)))
    assert codes(found) == ["RESOURCE_MISMATCH"]
    assert hint in found[0].message
    assert found[0].message.startswith("cr:CreateSyncRule and cr:CreateRepositorySync are allowed, but not")
    assert found[0].evidence[0].source == "policy p0 (Custom)" and found[0].evidence[0].statement == 0
    assert "acs:cr:cn-beijing:1510000000000002:instance/cri-target0001" in found[0].fix.policy_json


def test_repository_form_grant_is_accepted():
    doc = good_policy().replace("instance/cri-target0001", "repository/cri-target0001")
    assert run(ram=ram_with(good_trust(), doc)) == []


def test_deny_statement_in_policy():
    deny = json.dumps({"Version": "1", "Statement": [
        {"Effect": "Deny", "Action": "cr:CreateRepositorySync", "Resource": "*"}]})
    ram = ram_with(good_trust(), good_policy(), deny)
    f = only(run(ram=ram), "DENIED_BY_STATEMENT")
    assert "policy p1 (Custom) statement 0 denies cr:CreateRepositorySync" in f.message
    assert f.evidence[0].statement == 0 and '"Deny"' in f.evidence[0].detail
    assert not f.fix.automatic


def test_conditional_allow_is_unknown_with_condition_quoted():
    doc = json.loads(good_policy())
    doc["Statement"][0]["Condition"] = {"IpAddress": {"acs:SourceIp": "192.168.0.0/16"}}
    found = run(ram=ram_with(good_trust(), json.dumps(doc)))
    assert codes(found) == ["CONDITION_UNKNOWN"]
    assert "192.168.0.0/16" in found[0].message and found[0].severity == "warning"


def test_malformed_attached_policy_is_skipped_with_a_warning():
    found = run(ram=ram_with(good_trust(), '{"Version": "1", "Statement": [}'))
    assert codes(found) == ["ACTION_NOT_ALLOWED", "POLICY_MALFORMED"]
    assert found[1].severity == "warning" and "not valid JSON" in found[1].message


def test_attached_policy_without_document_is_reported():
    ram = ram_with(good_trust(), good_policy())
    ram.attached[P.SYNC_ROLE_NAME].append(("Vanished", "Custom"))
    found = run(ram=ram)
    assert codes(found) == ["POLICY_UNREADABLE"] and found[0].severity == "warning"


# ---- trust ---------------------------------------------------------------------------------------

def test_trust_for_ram_root_instead_of_cr_service():
    trust = json.dumps({"Version": "1", "Statement": [{
        "Action": "sts:AssumeRole", "Effect": "Allow",
        "Principal": {"RAM": [f"acs:ram::{SOURCE_ACCOUNT}:root"]}}]})
    found = run(ram=ram_with(trust, good_policy()))
    assert codes(found) == ["TRUST_MISSING_PRINCIPAL", "TRUST_TOO_WIDE"]
    fix_doc = json.loads(found[0].fix.trust_json)
    # The fix keeps what was trusted before and adds ACR's principal for account A.
    assert P.evaluate_trust(fix_doc, SOURCE_ACCOUNT, TARGET_ACCOUNT).trusted
    assert fix_doc["Statement"][0]["Principal"] == {"RAM": [f"acs:ram::{SOURCE_ACCOUNT}:root"]}
    assert "UpdateRole" in found[0].fix.commands[0]


def test_trust_for_another_source_account():
    found = run(ram=ram_with(good_trust("1999999999999999"), good_policy()))
    assert "TRUST_MISSING_PRINCIPAL" in codes(found)
    assert f"{SOURCE_ACCOUNT}@cr.aliyuncs.com" in only(found, "TRUST_MISSING_PRINCIPAL").message


def test_wide_trust_is_only_a_warning():
    trust = json.dumps({"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                                       "Principal": "*"}]})
    found = run(ram=ram_with(trust, good_policy()))
    assert codes(found) == ["TRUST_TOO_WIDE"]
    assert found[0].severity == "warning" and "every principal" in found[0].message


def test_trust_deny_statement():
    trust = json.loads(good_trust())
    trust["Statement"].append({"Action": "sts:AssumeRole", "Effect": "Deny", "Principal": "*"})
    f = only(run(ram=ram_with(json.dumps(trust), good_policy())), "DENIED_BY_STATEMENT")
    assert "statement 1 of the trust policy" in f.message


def test_trust_condition_unknown():
    trust = json.loads(good_trust())
    trust["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalId": "x"}}
    f = only(run(ram=ram_with(json.dumps(trust), good_policy())), "CONDITION_UNKNOWN")
    assert "sts:ExternalId" in f.message


def test_trust_malformed_is_an_error_with_the_full_trust_as_fix():
    f = only(run(ram=ram_with('{"Version": "2", "Statement": []}', good_policy())), "POLICY_MALFORMED")
    assert f.severity == "error" and "trust policy" in f.evidence[0].source
    assert P.evaluate_trust(f.fix.trust_json, SOURCE_ACCOUNT, TARGET_ACCOUNT).trusted


# ---- reader role ---------------------------------------------------------------------------------

def test_reader_role_not_configured_is_a_warning_with_the_reader_policy():
    cfg = make_config(reader_role_arn=None)
    found = run(cfg, ram=None, target_acr=None)
    assert codes(found) == ["READER_ROLE_NOT_CONFIGURED"]
    f = found[0]
    assert f.severity == "warning" and "reader_role_arn" in f.message
    actions = {a for st in json.loads(f.fix.policy_json)["Statement"] for a in st["Action"]}
    assert {"ram:GetRole", "ram:ListPoliciesForRole", "ram:GetPolicy", "cr:GetInstance"} <= actions


@pytest.mark.parametrize("method, action", [
    ("get_role", "ram:GetRole"), ("list_policies_for_role", "ram:ListPoliciesForRole"),
    ("get_policy", "ram:GetPolicy"),
])
def test_reader_role_lacking_a_permission_names_it(method, action):
    ram, _, _ = healthy()
    ram.deny.add(method)
    found = run(ram=ram)
    assert codes(found) == ["READER_ROLE_CANNOT_READ"]
    assert f"lacks {action}" in found[0].message
    assert action in found[0].fix.policy_json


def test_reader_role_that_cannot_be_assumed():
    ram, _, _ = healthy()
    ram.fail = AccessDenied("not trusted", service="sts", action="AssumeRole", code="NoPermission")
    dst = FakeAcr(TARGET_ACCOUNT)
    dst.fail = ram.fail
    found = run(ram=ram, dst=dst)
    assert codes(found) == ["READER_ROLE_CANNOT_READ"]       # one finding, no guess about account B
    f = found[0]
    assert "cannot be assumed" in f.message and SOURCE_ACCOUNT in f.fix.trust_json
    assert f.not_checked == [*check_mod.TARGET_SIDE_CHECKS, *check_mod.GRANT_CHECKS]
    assert len(dst.calls_made) == 1 and ram.calls_made == []     # nothing more tried once AssumeRole failed


def test_reader_role_that_does_not_exist_is_not_a_missing_sync_role():
    ram, _, _ = healthy()
    ram.fail = NotFound("role gone", service="sts", action="AssumeRole", code="EntityNotExist.Role")
    dst = FakeAcr(TARGET_ACCOUNT)
    dst.fail = ram.fail
    found = run(ram=ram, dst=dst)
    assert codes(found) == ["READER_ROLE_CANNOT_READ"] and "does not exist" in found[0].message
    assert f"the role {P.SYNC_ROLE_NAME}" in found[0].not_checked


def test_reader_role_lacking_cr_get_instance_on_target():
    _, _, dst = healthy()
    dst.deny.add("GetInstance")
    f = only(run(dst=dst), "READER_ROLE_CANNOT_READ")
    assert "lacks cr:GetInstance" in f.message


def test_transient_failure_is_check_failed():
    ram, _, _ = healthy()
    ram.fail = ServerError("boom", service="ram", action="GetRole", code="InternalError", http_status=500)
    f = only(run(ram=ram), "CHECK_FAILED")
    assert f.severity == "error" and "InternalError" in f.message


# ---- prerequisites -------------------------------------------------------------------------------

@pytest.mark.parametrize("edition", ["Enterprise_Basic", "Enterprise_Standard"])
def test_source_edition_must_be_advanced(edition):
    _, src, _ = healthy()
    src.add_instance("cri-source0001", edition)
    f = only(run(src=src), "SOURCE_EDITION")
    assert f.severity == "error" and f.blocks and edition in f.message
    if edition == "Enterprise_Standard":
        assert "another version of the guide" in f.message


@pytest.mark.parametrize("edition", ["Enterprise_Standard", "Personal"])
def test_target_edition_must_be_basic_or_advanced(edition):
    _, _, dst = healthy()
    dst.add_instance("cri-target0001", edition)
    f = only(run(dst=dst), "TARGET_EDITION")
    assert f.severity == "error" and f.blocks


def test_advanced_target_is_fine():
    _, _, dst = healthy()
    dst.add_instance("cri-target0001", "Enterprise_Advanced")
    assert run(dst=dst) == []


def test_source_instance_missing():
    f = only(run(src=FakeAcr(SOURCE_ACCOUNT)), "SOURCE_INSTANCE_UNREADABLE")
    assert "does not exist" in f.message


def test_target_instance_missing():
    f = only(run(dst=FakeAcr(TARGET_ACCOUNT)), "TARGET_INSTANCE_UNREADABLE")
    assert "cri-target0001" in f.message


def test_region_rule_public_to_finance():
    cfg = make_config()
    finance = dataclasses.replace(cfg.targets[0], region="cn-shanghai-finance-1")
    h_ram, h_src, h_dst = healthy()
    found = check_target(cfg, finance, ram=h_ram, source_acr=h_src, target_acr=h_dst)
    f = only(found, "REGION_NOT_ALLOWED")
    assert "Finance" in f.message and "cn-shanghai-finance-1" in f.message


def test_namespace_level_target_namespace_missing_and_no_autocreate():
    cfg = make_config(namespaces=["team-a", "team-*"])
    _, src, dst = healthy()
    for ns in ("team-a", "team-b", "team-c", "other"):
        src.add_namespace("cri-source0001", ns)
    dst.add_namespace("cri-target0001", "team-a", auto_create_repo=True)
    dst.add_namespace("cri-target0001", "team-b", auto_create_repo=False)
    found = run(cfg, src=src, dst=dst)
    assert codes(found) == ["TARGET_NAMESPACE_NO_AUTOCREATE", "TARGET_NAMESPACE_MISSING"]
    assert "'team-b'" in found[0].message and "AutoCreateRepo true" in found[0].fix.commands[0]
    assert "'team-c'" in found[1].message and "CreateNamespace" in found[1].fix.commands[0]


def test_namespace_level_target_with_renamed_namespace():
    cfg = make_config(namespaces=["team-a"], target_namespace="mirror")
    _, src, dst = healthy()
    dst.add_namespace("cri-target0001", "team-a")
    found = run(cfg, src=src, dst=dst)
    assert codes(found) == ["TARGET_NAMESPACE_MISSING"] and "'mirror'" in found[0].message


def test_repo_level_target_repo_missing_and_settings_differ():
    cfg = make_config(repositories=["team-a/api", "team-a/web", "team-a/tmp-*", "team-a/gone"])
    _, src, dst = healthy()
    src.add_repo("cri-source0001", "team-a", "api", type="PRIVATE", tag_immutability=True)
    src.add_repo("cri-source0001", "team-a", "web", type="PUBLIC")
    dst.add_repo("cri-target0001", "team-a", "api", type="PRIVATE", tag_immutability=False)
    found = run(cfg, src=src, dst=dst)
    assert codes(found) == ["TARGET_REPO_SETTINGS_DIFFER", "TARGET_REPO_MISSING", "SOURCE_REPO_MISSING"]
    assert "tag immutability false (source true)" in found[0].message
    assert "--RepoType PUBLIC" in found[1].fix.commands[0]
    assert "team-a/gone" in found[2].message


def test_repo_level_target_matching_repo_is_clean():
    cfg = make_config(repositories=["team-a/api"])
    _, src, dst = healthy()
    src.add_repo("cri-source0001", "team-a", "api", type="PUBLIC", tag_immutability=True)
    dst.add_repo("cri-target0001", "team-a", "api", type="PUBLIC", tag_immutability=True)
    assert run(cfg, src=src, dst=dst) == []


def test_findings_are_sorted_errors_first():
    ram = ram_with(json.dumps({"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                                              "Principal": "*"}]}))
    found = run(ram=ram)
    assert [(f.severity, f.code) for f in found] == [("error", "ACTION_NOT_ALLOWED"),
                                                     ("warning", "TRUST_TOO_WIDE")]
    assert not found[1].fix.automatic                     # apply never narrows a trust by itself


# ---- fixes ---------------------------------------------------------------------------------------

def test_fix_documents_satisfy_the_evaluator():
    cfg = make_config()
    t = cfg.targets[0]
    pol = P.parse_policy(fixes.sync_policy(t), "fix")
    for action in P.SYNC_ACTIONS:
        assert P.evaluate_any([pol], action, P.target_resources(t.region, t.account_id,
                                                                t.instance_id)).allowed
    assert P.evaluate_trust(fixes.trust_policy(cfg.source), SOURCE_ACCOUNT, TARGET_ACCOUNT).trusted
    assert fixes.trust_policy(cfg.source)["Statement"][0]["Principal"] == {
        "Service": [f"{SOURCE_ACCOUNT}@cr.aliyuncs.com"]}


# ---- one broken account B per code ----------------------------------------------------------------

def _denied_ram(method):
    ram, _, _ = healthy()
    ram.deny.add(method)
    return ram


def _no_role(extra_role=None):
    ram, _, _ = healthy()
    ram.roles.clear()
    if extra_role:
        ram.add_role(extra_role)
    return ram


def _trust(doc):
    return ram_with(json.dumps(doc), good_policy())


def _src(edition):
    return FakeAcr(SOURCE_ACCOUNT).add_instance("cri-source0001", edition)


def _dst(edition="Enterprise_Basic", **setup):
    dst = FakeAcr(TARGET_ACCOUNT).add_instance("cri-target0001", edition)
    for ns, auto in setup.get("namespaces", {}).items():
        dst.add_namespace("cri-target0001", ns, auto)
    for ns, repo, rtype in setup.get("repos", []):
        dst.add_repo("cri-target0001", ns, repo, type=rtype)
    return dst


def _src_repos(*repos):
    src = _src("Enterprise_Advanced")
    for ns, repo in repos:
        src.add_repo("cri-source0001", ns, repo)
    return src


_WIDE = {"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": "*"}]}
_COND = json.loads(good_trust())
_COND["Statement"][0]["Condition"] = {"Bool": {"acs:MFAPresent": "true"}}
_DENY = json.dumps({"Version": "1", "Statement": [{"Effect": "Deny", "Action": "cr:*", "Resource": "*"}]})

BROKEN = {
    "ROLE_MISSING": lambda: run(ram=_no_role()),
    "ROLE_NAME_MISSPELT": lambda: run(ram=_no_role("aliyuncontainerregistrycrossaccountsyncrole")),
    "ACTION_NOT_ALLOWED": lambda: run(ram=ram_with(good_trust())),
    "DENIED_BY_STATEMENT": lambda: run(ram=ram_with(good_trust(), good_policy(), _DENY)),
    "RESOURCE_MISMATCH": lambda: run(ram=ram_with(good_trust(), good_policy(region="cn-shanghai"))),
    "TRUST_MISSING_PRINCIPAL": lambda: run(ram=ram_with(good_trust("1999999999999999"), good_policy())),
    "TRUST_TOO_WIDE": lambda: run(ram=_trust(_WIDE)),
    "CONDITION_UNKNOWN": lambda: run(ram=_trust(_COND)),
    "POLICY_MALFORMED": lambda: run(ram=ram_with("not json", good_policy())),
    "POLICY_UNREADABLE": lambda: _gone(),
    "READER_ROLE_CANNOT_READ": lambda: run(ram=_denied_ram("get_role")),
    "READER_ROLE_NOT_CONFIGURED": lambda: run(make_config(reader_role_arn=None), ram=None, target_acr=None),
    "SOURCE_EDITION": lambda: run(src=_src("Enterprise_Basic")),
    "TARGET_EDITION": lambda: run(dst=_dst("Enterprise_Standard")),
    "SOURCE_INSTANCE_UNREADABLE": lambda: run(src=FakeAcr(SOURCE_ACCOUNT)),
    "TARGET_INSTANCE_UNREADABLE": lambda: run(dst=FakeAcr(TARGET_ACCOUNT)),
    "REGION_NOT_ALLOWED": lambda: check_target(
        make_config(), dataclasses.replace(make_config().targets[0], region="cn-north-2-gov-1"),
        ram=healthy()[0], source_acr=healthy()[1], target_acr=healthy()[2]),
    "TARGET_NAMESPACE_MISSING": lambda: run(make_config(namespaces=["team-a"]), dst=_dst()),
    "TARGET_NAMESPACE_NO_AUTOCREATE": lambda: run(make_config(namespaces=["team-a"]),
                                                  dst=_dst(namespaces={"team-a": False})),
    "TARGET_REPO_MISSING": lambda: run(make_config(repositories=["team-a/api"]),
                                       src=_src_repos(("team-a", "api")),
                                       dst=_dst()),
    "TARGET_REPO_SETTINGS_DIFFER": lambda: run(make_config(repositories=["team-a/api"]),
                                               src=_src_repos(("team-a", "api")),
                                               dst=_dst(repos=[("team-a", "api", "PUBLIC")])),
    "SOURCE_REPO_MISSING": lambda: run(make_config(repositories=["team-a/api"]), dst=_dst()),
    "CHECK_FAILED": lambda: run(ram=_failing_ram()),
}


def _gone():
    ram = ram_with(good_trust(), good_policy())
    ram.attached[P.SYNC_ROLE_NAME].append(("Gone", "Custom"))
    return run(ram=ram)


def _failing_ram():
    ram, _, _ = healthy()
    ram.fail = ServerError("unavailable", service="ram", action="GetRole", code="ServiceUnavailable",
                           http_status=503)
    return ram


def test_every_code_has_a_broken_case():
    assert set(BROKEN) == set(CODES)


@pytest.mark.parametrize("code", sorted(BROKEN))
def test_broken_case_reports_its_code(code):
    found = BROKEN[code]()
    assert code in codes(found), codes(found)
    f = next(f for f in found if f.code == code)
    assert f.severity == CODES[code] or code in ("POLICY_MALFORMED", "SOURCE_EDITION", "TARGET_EDITION")
    assert f.target == "beijing" and f.message
