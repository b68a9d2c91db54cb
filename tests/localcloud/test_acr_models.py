"""localcloud ACR models: the documented replication rules, the task lifecycle on the emulator clock,
PASSIVE rules on push, faults, scenario install. Pure: no HTTP."""

from __future__ import annotations

import json

import pytest

from localcloud.acr import control
from localcloud.acr.models import (
    CROSS_ACCOUNT_ROLE,
    AcrBackend,
    BusinessError,
    cross_account_grant_problem,
    install,
)
from localcloud.clock import Clock
from localcloud.ram import models as ram
from localcloud.service import ServiceError
from localcloud.state import Account, Instance, Namespace, Repo, Tag, World
from tests.demo_world import SMALL_A, SMALL_B

A, B = SMALL_A, SMALL_B   # source, target
START = 1_800_000_000.0
DIGEST = "a" * 64
OTHER_DIGEST = "b" * 64


def _instance(world: World, iid: str, account: str, region: str, edition: str) -> Instance:
    inst = Instance(instance_id=iid, account_id=account, region=region, edition=edition, name=iid,
                    created_ms=int(START * 1000))
    world.instances[iid] = inst
    return inst


def _namespace(inst: Instance, name: str, *, auto_create: bool = False) -> Namespace:
    ns = Namespace(namespace_id=f"ns-{inst.instance_id}-{name}", name=name, instance_id=inst.instance_id,
                   auto_create_repo=auto_create)
    inst.namespaces[name] = ns
    return ns


def _repo(inst: Instance, ns: str, name: str, *, immutable: bool = False, type_: str = "PRIVATE",
          tags: dict[str, str] | None = None) -> Repo:
    repo = Repo(repo_id=f"crr-{inst.instance_id}-{ns}-{name}", name=name, namespace=ns,
                instance_id=inst.instance_id, type=type_, tag_immutability=immutable)
    for tag, digest in (tags or {}).items():
        repo.tags[tag] = Tag(tag=tag, digest=digest, image_id="c" * 64, size=1234, created_ms=1, updated_ms=1)
    inst.namespaces[ns].repos[name] = repo
    return repo


def make_world(emitted: list | None = None) -> World:
    """A (cri-src, Advanced, cn-hangzhou) replicates to B (cri-dst, Basic, cn-beijing)."""
    world = World(clock=Clock("manual", start=START))
    if emitted is not None:
        world.emit = emitted.append
    world.accounts = {A: Account(A), B: Account(B)}
    src = _instance(world, "cri-src", A, "cn-hangzhou", "Enterprise_Advanced")
    _namespace(src, "team")
    _repo(src, "team", "app", tags={"v1": DIGEST})
    _repo(src, "team", "web", tags={"v1": DIGEST})
    _namespace(src, "other")
    _repo(src, "other", "app", tags={"v1": DIGEST})
    dst = _instance(world, "cri-dst", B, "cn-beijing", "Enterprise_Basic")
    _namespace(dst, "team", auto_create=True)
    _repo(dst, "team", "app")
    _namespace(dst, "strict")
    same = _instance(world, "cri-same", A, "cn-shanghai", "Enterprise_Basic")
    _namespace(same, "team", auto_create=True)
    _instance(world, "cri-std", A, "cn-hangzhou", "Enterprise_Standard")
    _instance(world, "cri-basic", A, "cn-hangzhou", "Enterprise_Basic")
    std_target = _instance(world, "cri-stdtarget", B, "cn-beijing", "Enterprise_Standard")
    _namespace(std_target, "team", auto_create=True)
    fin = _instance(world, "cri-fin", B, "cn-shanghai-finance-1", "Enterprise_Advanced")
    _namespace(fin, "team", auto_create=True)
    install(world, {})
    return world


def grant(world: World, *, role: str = CROSS_ACCOUNT_ROLE, trusted: str = A,
          actions: tuple[str, ...] = ("cr:CreateSyncRule", "cr:CreateRepositorySync"),
          resource: str = f"acs:cr:cn-beijing:{B}:instance/cri-dst", deny: str | None = None) -> None:
    """Account B's side of the documented cross-account setup (or a broken variant of it)."""
    trust = {"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                            "Principal": {"Service": [f"{trusted}@cr.aliyuncs.com"]}}]}
    ram.create_role(world, B, role, json.dumps(trust))
    statements = [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]
    if deny:
        statements.append({"Effect": "Deny", "Action": deny, "Resource": "*"})
    ram.create_policy(world, B, "acr-cross-sync", json.dumps({"Version": "1", "Statement": statements}))
    ram.attach_policy_to_role(world, B, "acr-cross-sync", "Custom", role)


def acr(world: World) -> AcrBackend:
    return world.backends["acr"]


def manual(world: World, *, source: str = "cri-src", repo: str = "crr-cri-src-team-app", tag: str = "v1",
           target: str = "cri-dst", region: str = "cn-beijing", ns: str = "team", target_repo: str = "app",
           user: str | None = B, override: bool = False):
    b = acr(world)
    return b.create_task(b.instance(source, world.instances[source].account_id), repo_id=repo, tag=tag,
                         target_instance_id=target, target_region=region, target_namespace=ns,
                         target_repo=target_repo, target_tag=tag, target_user_id=user, override=override)


def run(world: World, seconds: float = 10.0) -> None:
    world.clock.advance(seconds)
    acr(world).settle(world.clock.now())


# ---- lifecycle -------------------------------------------------------------------------------------

def test_cross_account_task_walks_pending_synchronizing_success_on_the_clock():
    emitted: list = []
    world = make_world(emitted)
    grant(world)
    task = manual(world)
    assert (task.status, task.cross_user, task.trigger, task.rule_id) == ("PENDING", True, "INITIATIVE", "")
    run(world, 1.9)
    assert task.status == "PENDING"
    run(world, 0.2)
    assert task.status == "SYNCHRONIZING"
    assert world.instances["cri-dst"].namespaces["team"].repos["app"].tags == {}
    run(world, 5.0)
    assert (task.status, task.progress, task.synced_size) == ("SUCCESS", 1, 1234)
    assert world.instances["cri-dst"].namespaces["team"].repos["app"].tags["v1"].digest == DIGEST
    assert task.modified == pytest.approx(START + 7.0)
    sync_events = [e for e in emitted if e["type"] == "cr:Artifact:SynchronizationCompleted"]
    assert len(sync_events) == 1
    assert sync_events[0]["data"]["SyncTaskId"] == task.task_id
    assert sync_events[0]["data"]["Digest"] == f"sha256:{DIGEST}"


def test_settle_jumps_straight_to_the_end_when_the_clock_moved_far():
    world = make_world()
    grant(world)
    task = manual(world)
    run(world, 3600)
    assert task.status == "SUCCESS"


def test_same_account_sync_needs_no_grant_and_auto_creates_the_repo_with_the_source_type():
    world = make_world()
    world.instances["cri-src"].namespaces["team"].repos["app"].type = "PUBLIC"
    task = manual(world, target="cri-same", region="cn-shanghai", user=None)
    assert task.cross_user is False
    run(world)
    assert task.status == "SUCCESS"
    created = world.instances["cri-same"].namespaces["team"].repos["app"]
    assert (created.type, created.build_type, created.tags["v1"].digest) == ("PUBLIC", "AUTO", DIGEST)


# ---- the cross-account grant, broken in every way ----------------------------------------------------

BROKEN_GRANTS = {
    "no role": None,
    "misspelt role name": {"role": "aliyuncontainerregistrycrossaccountsyncrole"},
    "policy lacks CreateRepositorySync": {"actions": ("cr:CreateSyncRule",)},
    "policy lacks CreateSyncRule": {"actions": ("cr:CreateRepositorySync",)},
    "policy on another instance": {"resource": f"acs:cr:cn-beijing:{B}:instance/cri-elsewhere"},
    "policy on another account": {"resource": f"acs:cr:cn-beijing:{A}:instance/cri-dst"},
    "explicit deny": {"deny": "cr:CreateRepositorySync"},
    "trust names another account": {"trusted": "3000000000000003"},
}


@pytest.mark.parametrize("case", sorted(BROKEN_GRANTS))
def test_broken_grant_lets_the_task_be_created_then_fail_when_it_leaves_pending(case):
    world = make_world()
    if BROKEN_GRANTS[case] is not None:
        grant(world, **BROKEN_GRANTS[case])
    problem = cross_account_grant_problem(world, A, world.instances["cri-dst"])
    assert problem, case
    task = manual(world)
    assert task.status == "PENDING"
    run(world, 2.0)
    assert (task.status, task.issue) == ("ERROR", "CROSS_ACCOUNT_AUTH_FAILED")
    assert task.detail == problem
    assert world.instances["cri-dst"].namespaces["team"].repos["app"].tags == {}


@pytest.mark.parametrize("case", sorted(BROKEN_GRANTS))
def test_broken_grant_refuses_a_cross_account_rule_with_no_privilege(case):
    world = make_world()
    if BROKEN_GRANTS[case] is not None:
        grant(world, **BROKEN_GRANTS[case])
    with pytest.raises(ServiceError) as err:
        _rule(world)
    assert (err.value.status, err.value.code) == (403, "NoPrivilege")


def test_misspelt_role_is_named_in_the_problem():
    world = make_world()
    grant(world, role="aliyuncontainerregistrycrossaccountsyncrole")
    problem = cross_account_grant_problem(world, A, world.instances["cri-dst"])
    assert "aliyuncontainerregistrycrossaccountsyncrole" in problem and CROSS_ACCOUNT_ROLE in problem


@pytest.mark.parametrize("resource", [f"acs:cr:cn-beijing:{B}:instance/cri-dst",
                                      f"acs:cr:cn-beijing:{B}:repository/cri-dst",
                                      f"acs:cr:*:{B}:instance/*", "*"])
def test_either_resource_form_or_a_wildcard_grants(resource):
    world = make_world()
    grant(world, resource=resource)
    assert cross_account_grant_problem(world, A, world.instances["cri-dst"]) == ""


def test_grant_revoked_after_the_rule_fails_the_rule_tasks():
    world = make_world()
    grant(world)
    rule = _rule(world)
    ram.detach_policy_from_role(world, B, "acr-cross-sync", "Custom", CROSS_ACCOUNT_ROLE)
    run(world, 1)
    pushed = acr(world).push("cri-src", "team", "app", "v2", OTHER_DIGEST)
    task = acr(world).tasks[pushed["tasks"][0]]
    assert task.rule_id == rule.rule_id
    run(world)
    assert (task.status, task.issue) == ("ERROR", "CROSS_ACCOUNT_AUTH_FAILED")


# ---- refusals at creation ----------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["cri-std", "cri-basic"])
def test_source_must_be_advanced(source):
    world = make_world()
    src = world.instances[source]
    _namespace(src, "team")
    _repo(src, "team", "app", tags={"v1": DIGEST})
    with pytest.raises(ServiceError) as err:
        manual(world, source=source, repo=f"crr-{source}-team-app", target="cri-same", region="cn-shanghai",
               user=None)
    assert (err.value.status, err.value.code) == (400, "INSTANCE_SPEC_NOT_SUPPORT")
    assert "Enterprise_Advanced" in err.value.message


def test_standard_edition_is_accepted_as_a_target():
    world = make_world()
    grant(world, resource=f"acs:cr:cn-beijing:{B}:instance/*")
    task = manual(world, target="cri-stdtarget")
    run(world)
    assert task.status == "SUCCESS"


def test_public_region_cannot_replicate_to_finance_region():
    world = make_world()
    grant(world, resource="*")
    with pytest.raises(ServiceError) as err:
        manual(world, target="cri-fin", region="cn-shanghai-finance-1")
    assert (err.value.status, err.value.code) == (400, "REGION_NOT_SUPPORT")


def test_target_user_id_must_be_the_target_owner():
    world = make_world()
    grant(world)
    with pytest.raises(ServiceError) as err:
        manual(world, user="3000000000000003")
    assert err.value.code == "InvalidParameter" and "TargetUserId" in err.value.message
    with pytest.raises(ServiceError):
        manual(world, target="cri-same", region="cn-shanghai", user=B)


def test_cross_account_target_without_target_user_id_is_not_found():
    world = make_world()
    grant(world)
    with pytest.raises(BusinessError) as err:
        manual(world, user=None)
    assert err.value.code == "INSTANCE_NOT_EXIST" and "TargetUserId" in err.value.message


def test_target_region_must_be_the_instance_region():
    world = make_world()
    with pytest.raises(ServiceError) as err:
        manual(world, region="cn-hangzhou")
    assert err.value.code == "InvalidParameter"


def test_missing_source_tag_and_repo_are_business_errors():
    world = make_world()
    with pytest.raises(BusinessError) as err:
        manual(world, tag="nope")
    assert err.value.code == "TAG_NOT_EXIST"
    with pytest.raises(BusinessError) as err:
        manual(world, repo="crr-missing")
    assert err.value.code == "REPO_NOT_EXIST"


# ---- target prerequisites, found when the task runs ----------------------------------------------------

def test_missing_target_namespace_fails_the_task():
    world = make_world()
    grant(world)
    task = manual(world, ns="absent")
    run(world)
    assert (task.status, task.issue) == ("ERROR", "NAMESPACE_NOT_EXIST")


def test_missing_target_repo_without_auto_create_fails_the_task():
    world = make_world()
    grant(world)
    task = manual(world, ns="strict")
    run(world)
    assert (task.status, task.issue) == ("ERROR", "REPO_NOT_EXIST")
    assert "AutoCreateRepo" in task.detail


def test_immutable_target_tag_wins_even_with_override():
    world = make_world()
    grant(world)
    target = world.instances["cri-dst"].namespaces["team"].repos["app"]
    target.tag_immutability = True
    target.tags["v1"] = Tag("v1", OTHER_DIGEST, "d" * 64, 1, 1, 1)
    task = manual(world, override=True)
    run(world)
    assert (task.status, task.issue) == ("ERROR", "TAG_IMMUTABLE")
    assert target.tags["v1"].digest == OTHER_DIGEST


def test_existing_tag_with_another_digest_needs_override():
    world = make_world()
    grant(world)
    target = world.instances["cri-dst"].namespaces["team"].repos["app"]
    target.tags["v1"] = Tag("v1", OTHER_DIGEST, "d" * 64, 1, 1, 1)
    refused = manual(world)
    run(world)
    assert (refused.status, refused.issue) == ("ERROR", "TAG_CONFLICT")
    overridden = manual(world, override=True)
    run(world)
    assert overridden.status == "SUCCESS" and target.tags["v1"].digest == DIGEST


def test_same_digest_already_there_is_a_success():
    world = make_world()
    grant(world)
    target = world.instances["cri-dst"].namespaces["team"].repos["app"]
    target.tag_immutability = True
    target.tags["v1"] = Tag("v1", DIGEST, "d" * 64, 1, 1, 1)
    task = manual(world)
    run(world)
    assert task.status == "SUCCESS"


def test_repo_scope_rule_needs_the_same_repo_configuration():
    world = make_world()
    grant(world)
    world.instances["cri-dst"].namespaces["team"].repos["app"].type = "PUBLIC"
    _rule(world)
    run(world, 1)
    task = acr(world).tasks[acr(world).push("cri-src", "team", "app", "v2", OTHER_DIGEST)["tasks"][0]]
    run(world)
    assert (task.status, task.issue) == ("ERROR", "REPO_CONFIG_MISMATCH")


# ---- rules and push --------------------------------------------------------------------------------

def _rule(world: World, **overrides):
    b = acr(world)
    args = dict(name="r", scope="REPO", trigger="PASSIVE", tag_filter=".*", target_instance_id="cri-dst",
                target_region="cn-beijing", target_user_id=B, namespace="team", repo="app",
                target_namespace="team", target_repo="app")
    args.update(overrides)
    return b.create_rule(b.instance("cri-src", A), **args)


def test_rule_fires_only_for_tags_pushed_after_it_exists():
    emitted: list = []
    world = make_world(emitted)
    grant(world)
    existing = acr(world).push("cri-src", "team", "app", "v0", DIGEST)
    run(world, 1)
    rule = _rule(world)
    assert existing["tasks"] == [] and acr(world).tasks == {}
    run(world, 1)
    pushed = acr(world).push("cri-src", "team", "app", "v2", OTHER_DIGEST)
    assert len(pushed["tasks"]) == 1
    task = acr(world).tasks[pushed["tasks"][0]]
    assert (task.trigger, task.rule_id, task.digest, task.cross_user) == ("PASSIVE", rule.rule_id,
                                                                          OTHER_DIGEST, True)
    run(world)
    assert world.instances["cri-dst"].namespaces["team"].repos["app"].tags["v2"].digest == OTHER_DIGEST
    assert "v0" not in world.instances["cri-dst"].namespaces["team"].repos["app"].tags
    push_event = pushed["event"]
    assert push_event["type"] == "cr:Artifact:PushCompleted" and push_event in emitted
    assert push_event["data"]["Digest"] == f"sha256:{OTHER_DIGEST}"
    assert push_event["subject"] == f"acs.cr:cn-hangzhou:{A}:crr-cri-src-team-app"


@pytest.mark.parametrize(("overrides", "path", "fires"), [
    ({}, ("team", "app", "v2"), True),
    ({}, ("team", "web", "v2"), False),
    ({"scope": "NAMESPACE", "repo": "", "target_repo": ""}, ("team", "web", "v2"), True),
    ({"scope": "NAMESPACE", "repo": "", "target_repo": "", "repo_filter": "a.*"},
     ("team", "web", "v2"), False),
    ({"scope": "NAMESPACE", "repo": "", "target_repo": ""}, ("other", "app", "v2"), False),
    ({"scope": "INSTANCE", "namespace": "", "repo": "", "target_namespace": "", "target_repo": "",
      "namespace_filter": "oth.*"}, ("other", "app", "v2"), True),
    ({"scope": "INSTANCE", "namespace": "", "repo": "", "target_namespace": "", "target_repo": "",
      "namespace_filter": "oth.*"}, ("team", "app", "v2"), False),
    ({"tag_filter": "v\\d+"}, ("team", "app", "v2"), True),
    ({"tag_filter": "v\\d+"}, ("team", "app", "release-v2"), False),
    ({"trigger": "INITIATIVE"}, ("team", "app", "v2"), False),
])
def test_rule_scope_and_filters(overrides, path, fires):
    world = make_world()
    grant(world)
    _rule(world, **overrides)
    assert bool(acr(world).push("cri-src", *path, OTHER_DIGEST)["tasks"]) is fires


def test_namespace_rule_keeps_the_repo_name_under_the_target_namespace():
    world = make_world()
    grant(world)
    _rule(world, scope="NAMESPACE", repo="", target_repo="")
    task = acr(world).tasks[acr(world).push("cri-src", "team", "web", "v2", OTHER_DIGEST)["tasks"][0]]
    assert (task.target_namespace, task.target_repo) == ("team", "web")
    run(world)
    assert task.status == "SUCCESS"
    assert world.instances["cri-dst"].namespaces["team"].repos["web"].build_type == "AUTO"


def test_one_push_matched_by_several_rules_shares_one_batch_id():
    world = make_world()
    grant(world)
    first = _rule(world)
    second = _rule(world, name="r2", scope="NAMESPACE", repo="", target_repo="")
    third = _rule(world, name="r3", scope="NAMESPACE", repo="", target_repo="", target_instance_id="cri-same",
                  target_region="cn-shanghai", target_user_id=None)
    tasks = [acr(world).tasks[t] for t in acr(world).push("cri-src", "team", "app",
                                                          "v2", OTHER_DIGEST)["tasks"]]
    assert {t.rule_id for t in tasks} == {first.rule_id, second.rule_id, third.rule_id}
    assert len({t.batch_id for t in tasks}) == 1
    assert len(tasks[0].batch_id) == 36


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"target_namespace": "mirror"}, "TargetNamespaceName 'mirror' differs from NamespaceName 'team'"),
    ({"target_repo": "app-copy"}, "TargetRepoName 'app-copy' differs from RepoName 'app'"),
    ({"scope": "NAMESPACE", "repo": "", "target_repo": "", "target_namespace": "strict"},
     "TargetNamespaceName 'strict' differs"),
    ({"namespace": "other", "target_namespace": "other"}, "has no namespace 'other'"),
    ({"repo": "web", "target_repo": "web"}, "has no repository team/web"),
    ({"scope": "NAMESPACE", "repo": "", "target_repo": "", "target_instance_id": "cri-same",
      "target_region": "cn-shanghai", "target_user_id": None, "namespace": "team"}, None),      # allowed
])
def test_sync_rules_keep_names(overrides, fragment):
    """https://www.alibabacloud.com/help/en/acr/user-guide/replicate-images-between-instances-in-the-same-account"""
    world = make_world()
    grant(world)
    if fragment is None:
        assert _rule(world, **overrides).scope == "NAMESPACE"
        return
    with pytest.raises(ServiceError) as err:
        _rule(world, **overrides)
    assert (err.value.status, err.value.code) == (400, "InvalidParameter")
    assert fragment in err.value.message and "keeps names" in err.value.message


def test_a_namespace_rule_needs_automatic_repository_creation_on_the_target():
    world = make_world()
    grant(world)
    world.instances["cri-dst"].namespaces["strict"].repos.clear()
    _namespace(world.instances["cri-src"], "strict")
    with pytest.raises(ServiceError) as err:
        _rule(world, scope="NAMESPACE", namespace="strict", repo="", target_namespace="strict",
              target_repo="")
    assert "does not create repositories automatically" in err.value.message


def test_a_manual_task_may_still_rename():
    world = make_world()
    grant(world)
    task = manual(world, ns="strict", target_repo="renamed")
    assert (task.target_namespace, task.target_repo) == ("strict", "renamed")


def test_rule_parameter_errors():
    world = make_world()
    grant(world)
    for overrides, code in [({"scope": "REGISTRY"}, "InvalidParameter"), ({"trigger": "AUTO"},
                                                                          "InvalidParameter"),
                            ({"repo": ""}, "MissingParameter"), ({"tag_filter": "v("}, "InvalidParameter"),
                            ({"namespace_filter": "x"}, "InvalidParameter")]:
        with pytest.raises(ServiceError) as err:
            _rule(world, **overrides)
        assert err.value.code == code, overrides


def test_task_by_rule_only_for_initiative_rules_and_covered_images():
    world = make_world()
    grant(world)
    b = acr(world)
    src = b.instance("cri-src", A)
    passive = _rule(world)
    with pytest.raises(ServiceError) as err:
        b.create_task_by_rule(src, repo_id="crr-cri-src-team-app", rule_id=passive.rule_id, tag="v1")
    assert "INITIATIVE" in err.value.message
    manual_rule = _rule(world, trigger="INITIATIVE")
    with pytest.raises(ServiceError):
        b.create_task_by_rule(src, repo_id="crr-cri-src-team-web", rule_id=manual_rule.rule_id, tag="v1")
    task = b.create_task_by_rule(src, repo_id="crr-cri-src-team-app", rule_id=manual_rule.rule_id, tag="v1")
    assert (task.trigger, task.rule_id) == ("INITIATIVE", manual_rule.rule_id)
    run(world)
    assert task.status == "SUCCESS"


def test_delete_rule_stops_it_firing():
    world = make_world()
    grant(world)
    rule = _rule(world)
    acr(world).delete_rule("cri-src", rule.rule_id)
    assert acr(world).push("cri-src", "team", "app", "v2")["tasks"] == []
    with pytest.raises(BusinessError):
        acr(world).delete_rule("cri-src", rule.rule_id)


def test_push_needs_the_repo_or_auto_create():
    world = make_world()
    with pytest.raises(ServiceError) as err:
        acr(world).push("cri-src", "team", "absent", "v1")
    assert err.value.status == 404 and "auto_create_repo" in err.value.message
    result = acr(world).push("cri-dst", "team", "fresh", "v1")
    repo = world.instances["cri-dst"].namespaces["team"].repos["fresh"]
    assert repo.tags["v1"].digest == result["event"]["data"]["Digest"][len("sha256:"):]
    with pytest.raises(ServiceError):
        acr(world).push("cri-src", "team", "app", "v1", "sha256:xyz")


def test_push_moves_an_existing_tag():
    world = make_world()
    acr(world).push("cri-src", "team", "app", "v1", f"sha256:{OTHER_DIGEST}")
    tag = world.instances["cri-src"].namespaces["team"].repos["app"].tags["v1"]
    assert (tag.digest, tag.created_ms) == (OTHER_DIGEST, 1)


# ---- cancel and faults -------------------------------------------------------------------------------

def test_cancel_only_open_tasks():
    world = make_world()
    grant(world)
    task = manual(world)
    acr(world).cancel_task("cri-src", task.task_id)
    run(world)
    assert task.status == "CANCELED"
    done = manual(world)
    run(world)
    with pytest.raises(BusinessError) as err:
        acr(world).cancel_task("cri-src", done.task_id)
    assert "SUCCESS" in err.value.message


def test_fault_fail_next_then_recover():
    world = make_world()
    grant(world)
    control.handle(world, "task-faults", {"repo": "app", "fail_next": 1, "issue": "NETWORK_ERROR"})
    failed, ok = manual(world), manual(world, override=True)
    run(world)
    assert (failed.status, failed.issue) == ("ERROR", "NETWORK_ERROR")
    assert ok.status == "SUCCESS"


def test_fault_match_is_respected():
    world = make_world()
    grant(world)
    control.handle(world, "task-faults", {"tag": "other", "fail_next": 3})
    task = manual(world)
    run(world)
    assert task.status == "SUCCESS"


def test_stuck_tasks_stay_synchronizing_until_cleared():
    world = make_world()
    grant(world)
    control.handle(world, "task-faults", {"stuck": True, "instance_id": "cri-src"})
    task = manual(world)
    run(world, 10_000)
    assert task.status == "SYNCHRONIZING"
    control.handle(world, "task-faults", {"clear": True})
    run(world, 0)
    assert task.status == "SUCCESS"


def test_control_tasks_delete_tag_and_errors():
    world = make_world()
    grant(world, deny="cr:CreateRepositorySync")
    manual(world)
    run(world)
    listed = control.handle(world, "tasks", {})["tasks"]
    assert listed[0]["status"] == "ERROR" and "cr:CreateRepositorySync" in listed[0]["detail"]
    control.handle(world, "delete-tag", {"instance_id": "cri-src", "namespace": "team",
                                         "repo": "app", "tag": "v1"})
    assert "v1" not in world.instances["cri-src"].namespaces["team"].repos["app"].tags
    with pytest.raises(ServiceError) as err:
        control.handle(world, "delete-tag", {"instance_id": "cri-src", "namespace": "team", "repo": "app",
                                             "tag": "v1"})
    assert (err.value.status, err.value.code) == (404, "TAG_NOT_EXIST")
    with pytest.raises(ServiceError) as err:
        control.handle(world, "nope", {})
    assert err.value.status == 404 and "task-faults" in err.value.message
    with pytest.raises(ServiceError):
        control.handle(world, "task-faults", {"fail_next": 0})
    pushed = control.handle(world, "push", {"instance_id": "cri-src", "namespace": "team", "repo": "app",
                                            "tag": "v9"})
    assert pushed["event"]["data"]["Tag"] == "v9"


# ---- scenario install --------------------------------------------------------------------------------

def test_install_reads_timings_and_rules_created_at_the_start():
    world = make_world()
    grant(world)
    world.clock.advance(100)
    install(world, {
        "settings": {"sync": {"pending_seconds": 1, "synchronizing_seconds": 3}},
        "instances": [{"id": "cri-src", "sync_rules": [
            {"id": "crsr-demo", "name": "to-b", "scope": "NAMESPACE", "namespace": "team",
             "target_instance": "cri-dst", "target_namespace": "team", "tag_filter": "v.*"}]},
            {"id": "cri-dst"}],
    })
    b = acr(world)
    rule = b.rules["crsr-demo"]
    assert (rule.cross_user, rule.target_account, rule.target_region, rule.created) == \
        (True, B, "cn-beijing", START + 100 - 1)      # the whole second before the start
    task = b.tasks[b.push("cri-src", "team", "app", "v3", OTHER_DIGEST)["tasks"][0]]
    world.clock.advance(1)
    b.settle()
    assert task.status == "SYNCHRONIZING"
    world.clock.advance(3)
    b.settle()
    assert task.status == "SUCCESS"


def test_install_rejects_bad_rules_with_the_place_named():
    world = make_world()
    with pytest.raises(ValueError, match=r"instances\[cri-src\]\.sync_rules\[0\].*target_instnace"):
        install(world, {"instances": [{"id": "cri-src", "sync_rules": [{"target_instnace": "cri-dst"}]}]})
    with pytest.raises(ValueError, match="SyncScope"):
        install(world, {"instances": [{"id": "cri-src", "sync_rules": [
            {"scope": "REPOSITORY", "target_instance": "cri-dst"}]}]})
