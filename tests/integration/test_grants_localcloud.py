"""`acrsync grants verify/apply/print` through the real SDK clients against localcloud.

Each broken scenario is scenarios/demo.yaml with one thing changed. For each one: verify reports the
right code; apply (as account B's administrator) fixes it, verify is then clean, localcloud's own sync
task succeeds, and a second apply writes nothing (RAM and ACR writes counted by localcloud); and
localcloud, judging with its own evaluator, ends a cross-account sync task in ERROR before the fix (the
two judges agree). Every account, key and id here is made up (the demo scenario's).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from acrsync.cli import app
from acrsync.cloud.clients import CloudSession
from localcloud.server import LocalCloud
from tests.demo_world import (
    ACCOUNT_A,
    ACCOUNT_B,
    B_KEY_ID,
    B_SECRET,
    CLI_KEY_ID,
    CLI_SECRET,
    DEMO_SCENARIO,
    READER_ROLE,
    READER_ROLE_ARN,
    SOURCE_INSTANCE,
    SOURCE_REGION,
    SYNC_ROLE,
    TARGET_INSTANCE,
    TARGET_REGION,
)

WRITES = ("CreateRole", "UpdateRole", "CreatePolicy", "CreatePolicyVersion", "AttachPolicyToRole",
          "DetachPolicyFromRole", "CreateNamespace", "UpdateNamespace")
DEMO = yaml.safe_load(DEMO_SCENARIO.read_text(encoding="utf-8"))


# ---- scenario edits (each returns nothing, edits the copy in place) ------------------------------

def _b(sc) -> dict:
    return next(a for a in sc["accounts"] if a["id"] == ACCOUNT_B)


def _role(sc, name=SYNC_ROLE) -> dict:
    return next(r for r in _b(sc)["roles"] if r["name"] == name)


def _sync_policy(sc) -> dict:
    doc = _role(sc)["policies"][0]["document"]
    return json.loads(doc) if isinstance(doc, str) else doc


def _set_sync_policy(sc, doc: dict) -> None:
    _role(sc)["policies"][0]["document"] = json.dumps(doc)


def _instance(sc, instance_id) -> dict:
    return next(i for i in sc["instances"] if i["id"] == instance_id)


def role_missing(sc):
    _b(sc)["roles"].remove(_role(sc))


def role_misspelt(sc):
    _role(sc)["name"] = "aliyuncontainerregistrycrossaccountsyncrole"


def trust_other_account(sc):
    _role(sc)["trust_policy"] = {"Version": "1", "Statement": [{
        "Action": "sts:AssumeRole", "Effect": "Allow",
        "Principal": {"Service": ["3333333333333333@cr.aliyuncs.com"]}}]}


def trust_ram_root(sc):
    _role(sc)["trust_policy"] = {"Version": "1", "Statement": [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": [f"acs:ram::{ACCOUNT_A}:root"]}}]}


def trust_deny(sc):
    trust = json.loads(_role(sc)["trust_policy"])
    trust["Statement"].append({"Action": "sts:AssumeRole", "Effect": "Deny", "Principal": "*"})
    _role(sc)["trust_policy"] = trust


def policy_other_region(sc):
    doc = _sync_policy(sc)
    doc["Statement"][0]["Resource"] = doc["Statement"][0]["Resource"].replace(TARGET_REGION, "cn-shanghai")
    _set_sync_policy(sc, doc)


def policy_one_action(sc):
    doc = _sync_policy(sc)
    doc["Statement"][0]["Action"] = ["cr:CreateSyncRule"]
    _set_sync_policy(sc, doc)


def policy_detached(sc):
    _role(sc)["policies"] = []


def policy_deny(sc):
    _role(sc)["policies"].append({"name": "lockdown", "document": {"Version": "1", "Statement": [
        {"Effect": "Deny", "Action": "cr:Create*", "Resource": "*"}]}})


def namespace_no_autocreate(sc):
    next(n for n in _instance(sc, TARGET_INSTANCE)["namespaces"]
         if n["name"] == "team-a")["auto_create_repo"] = False


def namespace_missing(sc):
    inst = _instance(sc, TARGET_INSTANCE)
    inst["namespaces"] = [n for n in inst["namespaces"] if n["name"] != "team-a"]


def reader_lacks_list_policies(sc):
    st = _role(sc, "acrsync-reader")["policies"][0]["document"]["Statement"][0]
    st["Action"] = [a for a in st["Action"] if a != "ram:ListPoliciesForRole"]


def reader_not_trusted(sc):
    _role(sc, "acrsync-reader")["trust_policy"]["Statement"][0]["Principal"] = {
        "RAM": ["acs:ram::3333333333333333:root"]}


def reader_missing(sc):
    _b(sc)["roles"].remove(_role(sc, "acrsync-reader"))


def reader_and_role_missing(sc):
    reader_missing(sc)
    role_missing(sc)


def target_standard(sc):
    _instance(sc, TARGET_INSTANCE)["edition"] = "Enterprise_Standard"


def policy_conditional(sc):
    doc = _sync_policy(sc)
    doc["Statement"][0]["Condition"] = {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}
    _set_sync_policy(sc, doc)


def trust_too_wide(sc):
    trust = json.loads(_role(sc)["trust_policy"])
    trust["Statement"][0]["Principal"]["RAM"] = ["acs:ram::3333333333333333:root"]
    _role(sc)["trust_policy"] = trust


# (edit, code verify reports, apply fixes it, a cross-account task into team-a ends in ERROR)
BROKEN: dict[str, tuple[Callable, str, bool, bool]] = {
    "role_missing": (role_missing, "ROLE_MISSING", True, True),
    "role_misspelt": (role_misspelt, "ROLE_NAME_MISSPELT", True, True),
    "trust_other_account": (trust_other_account, "TRUST_MISSING_PRINCIPAL", True, True),
    "trust_ram_root": (trust_ram_root, "TRUST_MISSING_PRINCIPAL", True, True),
    "trust_deny": (trust_deny, "DENIED_BY_STATEMENT", True, True),
    "policy_other_region": (policy_other_region, "RESOURCE_MISMATCH", True, True),
    "policy_one_action": (policy_one_action, "ACTION_NOT_ALLOWED", True, True),
    "policy_detached": (policy_detached, "ACTION_NOT_ALLOWED", True, True),
    "policy_deny": (policy_deny, "DENIED_BY_STATEMENT", True, True),
    "namespace_no_autocreate": (namespace_no_autocreate, "TARGET_NAMESPACE_NO_AUTOCREATE", True, True),
    "namespace_missing": (namespace_missing, "TARGET_NAMESPACE_MISSING", True, True),
    "reader_lacks_list_policies": (reader_lacks_list_policies, "READER_ROLE_CANNOT_READ", True, False),
    "reader_not_trusted": (reader_not_trusted, "READER_ROLE_CANNOT_READ", True, False),
    "reader_missing": (reader_missing, "READER_ROLE_CANNOT_READ", True, False),
    "reader_and_role_missing": (reader_and_role_missing, "READER_ROLE_CANNOT_READ", True, True),
}
# extra `grants apply` flags a case needs
APPLY_FLAGS = {"policy_deny": ("--detach-conflicting",)}
WARNINGS = {"trust_too_wide": (trust_too_wide, "TRUST_TOO_WIDE")}
# not clean although nothing is proven wrong (unproven grant), or wrong by the replication guide
NOT_CLEAN = {"target_standard": (target_standard, "TARGET_EDITION"),
             "policy_conditional": (policy_conditional, "CONDITION_UNKNOWN")}


# ---- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def start():
    started: list[LocalCloud] = []

    def make(edit: Callable | None = None) -> LocalCloud:
        sc = copy.deepcopy(DEMO)
        if edit is not None:
            edit(sc)
        cloud = LocalCloud(sc, clock="manual").start()
        started.append(cloud)
        return cloud

    yield make
    for c in started:
        c.stop()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    cfg = {"source": {"account_id": ACCOUNT_A, "region": SOURCE_REGION, "instance_id": SOURCE_INSTANCE},
           "targets": [{"name": "beijing", "account_id": ACCOUNT_B, "region": TARGET_REGION,
                        "instance_id": TARGET_INSTANCE, "namespaces": ["team-a", "team-b"],
                        "reader_role_arn": READER_ROLE_ARN}],
           "ledger": {"path": str(tmp_path / "ledger.db")}}
    path = tmp_path / "acrsync.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _env(cloud: LocalCloud, config: Path, key_id: str, secret: str) -> dict[str, str]:
    return {"ACRSYNC_ENDPOINT": cloud.url, "ACRSYNC_CONFIG": str(config),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret, "ALIBABA_CLOUD_SECURITY_TOKEN": "",
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}


def verify(cloud, config):
    """`grants verify -o json` as account A (the functions' view): (exit code, codes)."""
    r = CliRunner().invoke(app, ["grants", "verify", "-o", "json"], env=_env(cloud, config,
                                                                             CLI_KEY_ID, CLI_SECRET))
    assert r.exit_code in (0, 1), r.output
    out = json.loads(r.stdout)
    return r.exit_code, [f["code"] for f in out["targets"]["beijing"]]


def apply(cloud, config, *args):
    r = CliRunner().invoke(app, ["grants", "apply", "--target", "beijing", "-o", "json", *args],
                           env=_env(cloud, config, B_KEY_ID, B_SECRET))
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def writes(cloud) -> dict[str, int]:
    """RAM and ACR write calls localcloud has served, by action."""
    return {k: v for k, v in cloud.stats().items() if k in WRITES}


def sync_task_status(cloud) -> str:
    """Localcloud's own verdict: a cross-account manual sync of team-a/api:1.1 into the target."""
    acr = CloudSession.from_keys(CLI_KEY_ID, CLI_SECRET,
                                 env={"ACRSYNC_ENDPOINT": cloud.url}).acr(SOURCE_REGION)
    repo = acr.get_repository(SOURCE_INSTANCE, "team-a", "api")
    task = acr.create_repo_sync_task(SOURCE_INSTANCE, repo.repo_id, "1.1", target_region=TARGET_REGION,
                                     target_instance_id=TARGET_INSTANCE, target_namespace="team-a",
                                     target_repo="api", target_tag="1.1", target_user_id=ACCOUNT_B)
    cloud.advance(60)
    return acr.get_repo_sync_task(SOURCE_INSTANCE, task).status


# ---- tests ---------------------------------------------------------------------------------------

def test_demo_scenario_is_clean_and_apply_plans_nothing(start, config_file):
    cloud = start()
    assert verify(cloud, config_file) == (0, [])
    out = apply(cloud, config_file, "--yes")
    assert out["steps"] == [] and "already allowed by policy acr-cross-account-sync-from-a" in out["notes"][0]
    assert writes(cloud) == {}
    assert sync_task_status(cloud) == "SUCCESS"


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scenario_is_found_and_localcloud_agrees(start, config_file, case):
    edit, code, _, task_fails = BROKEN[case]
    cloud = start(edit)
    exit_code, codes = verify(cloud, config_file)
    assert exit_code == 1 and code in codes, codes
    if task_fails:
        assert sync_task_status(cloud) == "ERROR"


@pytest.mark.parametrize("case", sorted(c for c, v in BROKEN.items() if v[2]))
def test_apply_fixes_then_verify_is_clean_and_second_apply_writes_nothing(start, config_file, case):
    edit, code, _, _ = BROKEN[case]
    flags = APPLY_FLAGS.get(case, ())
    cloud = start(edit)
    planned = apply(cloud, config_file, *flags)              # without --yes: plan only
    assert planned["steps"] and not planned["applied"] and writes(cloud) == {}
    assert all(st["why"] and st["changes"] and st["command"].startswith("aliyun ") for st in planned["steps"])
    assert code in {c for st in planned["steps"] for c in st["fixes"]}, planned["steps"]
    assert code in verify(cloud, config_file)[1]

    done = apply(cloud, config_file, "--yes", *flags)
    assert done["applied"] and len(done["done"]) == len(done["steps"]) == sum(writes(cloud).values())
    exit_code, codes = verify(cloud, config_file)
    assert exit_code == 0 and all(c in ("TRUST_TOO_WIDE",) for c in codes), codes
    assert sync_task_status(cloud) == "SUCCESS"

    before = writes(cloud)
    again = apply(cloud, config_file, "--yes", *flags)
    assert again["steps"] == [] and again["done"] == [] and writes(cloud) == before


def test_apply_without_the_flag_leaves_a_foreign_deny_and_says_how(start, config_file):
    cloud = start(policy_deny)
    out = apply(cloud, config_file, "--yes")
    assert out["steps"] == [] and writes(cloud) == {}
    assert any("lockdown" in n and "by hand" in n and "--detach-conflicting" in n for n in out["notes"])
    assert verify(cloud, config_file)[0] == 1


def test_detach_conflicting_detaches_only_and_keeps_the_policy(start, config_file):
    cloud = start(policy_deny)
    out = apply(cloud, config_file, "--yes", "--detach-conflicting")
    assert [(s["kind"], s["policy_name"], s["fixes"]) for s in out["steps"]] == [
        ("DetachPolicyFromRole", "lockdown", ["DENIED_BY_STATEMENT"])]
    assert f"--PolicyName lockdown --RoleName {SYNC_ROLE}" in out["steps"][0]["command"]
    assert writes(cloud) == {"DetachPolicyFromRole": 1}
    b = cloud.world.account(ACCOUNT_B)
    assert "lockdown" in b.policies                              # the other policy itself is kept
    assert ("lockdown", "Custom") not in b.roles[SYNC_ROLE].attached
    assert ("acr-cross-account-sync-from-a", "Custom") in b.roles[SYNC_ROLE].attached


def test_a_deny_in_the_granting_policy_is_replaced_by_the_acrsync_policy(start, config_file):
    """Detaching a policy that both grants and denies leaves no grant: apply adds its own policy then."""
    def deny_in_the_granting_policy(sc):
        doc = _sync_policy(sc)
        doc["Statement"].append({"Effect": "Deny", "Action": "cr:CreateSyncRule", "Resource": "*"})
        _set_sync_policy(sc, doc)

    cloud = start(deny_in_the_granting_policy)
    out = apply(cloud, config_file, "--yes", "--detach-conflicting")
    assert [s["kind"] for s in out["steps"]] == ["DetachPolicyFromRole", "CreatePolicy", "AttachPolicyToRole"]
    assert verify(cloud, config_file) == (0, [])
    assert sync_task_status(cloud) == "SUCCESS"


def test_reader_trust_keeps_other_principals_and_adds_account_a(start, config_file):
    cloud = start(reader_not_trusted)
    out = apply(cloud, config_file, "--yes")
    assert [(s["kind"], s["role_name"], s["fixes"]) for s in out["steps"]] == [
        ("UpdateRole", READER_ROLE, ["READER_ROLE_CANNOT_READ"])]
    trust = json.loads(cloud.world.account(ACCOUNT_B).roles[READER_ROLE].trust_policy)
    principals = [p for st in trust["Statement"] for p in st["Principal"]["RAM"]]
    assert principals == ["acs:ram::3333333333333333:root", f"acs:ram::{ACCOUNT_A}:root"]


def test_reader_policy_is_the_one_permissions_prints(start, config_file):
    cloud = start(reader_lacks_list_policies)
    out = apply(cloud, config_file, "--yes")
    name = f"acrsync-reader-{TARGET_INSTANCE}"
    assert [(s["kind"], s["policy_name"]) for s in out["steps"]] == [("CreatePolicy", name),
                                                                      ("AttachPolicyToRole", name)]
    assert "ram:ListPoliciesForRole" in out["steps"][0]["why"]
    r = CliRunner().invoke(app, ["permissions", "--principal", "reader", "-o", "json"],
                           env={"ACRSYNC_CONFIG": str(config_file)})
    assert r.exit_code == 0, r.output
    assert json.loads(out["steps"][0]["document"]) == json.loads(r.stdout)["policies"][0]["document"]


def test_namespace_steps_create_or_turn_on_auto_create(start, config_file):
    cloud = start(namespace_missing)
    out = apply(cloud, config_file, "--yes")
    assert [(s["kind"], s["namespace"], s["fixes"]) for s in out["steps"]] == [
        ("CreateNamespace", "team-a", ["TARGET_NAMESPACE_MISSING"])]
    assert out["steps"][0]["command"].startswith(f"aliyun cr CreateNamespace --region {TARGET_REGION} ")
    ns = cloud.world.instances[TARGET_INSTANCE].namespaces["team-a"]
    assert ns.auto_create_repo and ns.default_repo_type == "PRIVATE"

    def public_no_autocreate(sc):
        namespace_no_autocreate(sc)
        next(n for n in _instance(sc, TARGET_INSTANCE)["namespaces"]
             if n["name"] == "team-a")["default_repo_type"] = "PUBLIC"

    cloud2 = start(public_no_autocreate)
    out2 = apply(cloud2, config_file, "--yes")
    assert [(s["kind"], s["namespace"]) for s in out2["steps"]] == [("UpdateNamespace", "team-a")]
    ns2 = cloud2.world.instances[TARGET_INSTANCE].namespaces["team-a"]
    assert ns2.auto_create_repo and ns2.default_repo_type == "PUBLIC"      # what someone set is kept


def test_apply_table_output_names_what_changes_and_the_finding_it_fixes(start, config_file):
    cloud = start(namespace_missing)
    r = CliRunner().invoke(app, ["grants", "apply", "--target", "beijing"],
                           env=_env(cloud, config_file, B_KEY_ID, B_SECRET))
    assert r.exit_code == 0, r.output
    assert f"CreateNamespace namespace {TARGET_INSTANCE}/team-a (fixes TARGET_NAMESPACE_MISSING)" in r.stdout
    assert "run again with --yes" in r.stdout and writes(cloud) == {}


@pytest.mark.parametrize("case", sorted(WARNINGS))
def test_warnings_do_not_fail_verify(start, config_file, case):
    edit, code = WARNINGS[case]
    cloud = start(edit)
    assert verify(cloud, config_file) == (0, [code])


@pytest.mark.parametrize("case", sorted(NOT_CLEAN))
def test_unproven_grants_and_a_standard_target_fail_verify(start, config_file, case):
    edit, code = NOT_CLEAN[case]
    cloud = start(edit)
    assert verify(cloud, config_file) == (1, [code])


@pytest.mark.parametrize("case", ["reader_missing", "reader_not_trusted", "reader_and_role_missing"])
def test_a_reader_role_that_cannot_be_assumed_says_only_that(start, config_file, case):
    cloud = start(BROKEN[case][0])
    r = CliRunner().invoke(app, ["grants", "verify", "-o", "json"],
                           env=_env(cloud, config_file, CLI_KEY_ID, CLI_SECRET))
    assert r.exit_code == 1, r.output
    (only,) = json.loads(r.stdout)["targets"]["beijing"]
    assert only["code"] == "READER_ROLE_CANNOT_READ" and "cannot be assumed" in only["message"]
    assert f"the role {SYNC_ROLE}" in only["not_checked"], only
    assert "GetRole" not in cloud.stats()          # nothing in account B was read, so nothing is guessed


def test_reader_findings_name_the_missing_permission(start, config_file):
    cloud = start(reader_lacks_list_policies)
    r = CliRunner().invoke(app, ["grants", "verify"], env=_env(cloud, config_file, CLI_KEY_ID, CLI_SECRET))
    assert r.exit_code == 1
    assert "lacks ram:ListPoliciesForRole" in r.stdout and "READER_ROLE_CANNOT_READ" in r.stdout
    cloud2 = start(reader_not_trusted)
    r2 = CliRunner().invoke(app, ["grants", "verify"], env=_env(cloud2, config_file, CLI_KEY_ID, CLI_SECRET))
    assert r2.exit_code == 1 and "cannot be assumed" in r2.stdout


def test_apply_refuses_credentials_of_another_account(start, config_file):
    cloud = start(role_missing)
    r = CliRunner().invoke(app, ["grants", "apply", "--target", "beijing", "--yes"],
                           env=_env(cloud, config_file, CLI_KEY_ID, CLI_SECRET))
    assert r.exit_code == 2 and f"account {ACCOUNT_A}" in r.output and writes(cloud) == {}


def test_print_shows_role_policy_trust_and_commands(config_file):
    r = CliRunner().invoke(app, ["grants", "print", "--target", "beijing", "-o", "json"],
                           env={"ACRSYNC_CONFIG": str(config_file)})
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["role_name"] == SYNC_ROLE
    assert out["trust_policy"]["Statement"][0]["Principal"] == {"Service": [f"{ACCOUNT_A}@cr.aliyuncs.com"]}
    resources = out["policy"]["Statement"][0]["Resource"]
    assert f"acs:cr:{TARGET_REGION}:{ACCOUNT_B}:instance/{TARGET_INSTANCE}" in resources
    cmds = "\n".join(out["commands"])
    for verb in ("CreateRole", "CreatePolicy", "AttachPolicyToRole", "UpdateRole --RoleName"):
        assert f"aliyun ram {verb}" in cmds
    text = CliRunner().invoke(app, ["grants", "print", "--target", "beijing"],
                              env={"ACRSYNC_CONFIG": str(config_file)})
    assert text.exit_code == 0 and "--NewAssumeRolePolicyDocument" in text.stdout


def test_usage_errors_exit_2(tmp_path, config_file):
    runner = CliRunner()
    r = runner.invoke(app, ["grants", "print", "--target", "nope"], env={"ACRSYNC_CONFIG": str(config_file)})
    assert r.exit_code == 2 and "beijing" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {account_id: x}\n", encoding="utf-8")
    r = runner.invoke(app, ["grants", "verify", "--config", str(bad)])
    assert r.exit_code == 2 and "source.account_id" in r.output
