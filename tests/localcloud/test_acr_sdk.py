"""localcloud ACR through the real ``alibabacloud_cr20181201`` client over HTTP: every operation's reply
deserialises into the SDK's own response model with its fields populated; the documented rules show up
the way the SDK reports them (HTTP errors raise, ``IsSuccess: false`` does not)."""

from __future__ import annotations

import pytest
from alibabacloud_cr20181201 import models as cr
from alibabacloud_cr20181201.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException

from localcloud.acr.models import CROSS_ACCOUNT_ROLE
from localcloud.server import LocalCloud
from tests.demo_world import SMALL_A, SMALL_B, control, cr_client

A, B = SMALL_A, SMALL_B   # source, target
KEYS = {  # made-up demo access keys, valid only inside localcloud
    "a": ("AK-DEMO-A", "made-up-demo-secret-a"),
    "b": ("AK-DEMO-B", "made-up-demo-secret-b"),
    "reader": ("AK-DEMO-READER", "made-up-demo-secret-reader"),
}
DIGEST = "2" * 64

SCENARIO = {
    "accounts": [
        {"id": A, "access_keys": [{"id": KEYS["a"][0], "secret": KEYS["a"][1]}],
         "users": [{"name": "reader", "access_keys": [{"id": KEYS["reader"][0], "secret": KEYS["reader"][1]}],
                    "policies": ["AliyunContainerRegistryReadOnlyAccess"]}]},
        {"id": B, "access_keys": [{"id": KEYS["b"][0], "secret": KEYS["b"][1]}], "roles": [{
            "name": CROSS_ACCOUNT_ROLE,
            "trust_policy": {"Version": "1", "Statement": [{
                "Action": "sts:AssumeRole", "Effect": "Allow",
                "Principal": {"Service": [f"{A}@cr.aliyuncs.com"]}}]},
            "policies": [{"name": "acr-cross-sync", "document": {"Version": "1", "Statement": [{
                "Effect": "Allow", "Action": ["cr:CreateSyncRule", "cr:CreateRepositorySync"],
                "Resource": f"acs:cr:cn-beijing:{B}:repository/cri-dst"}]}}],
        }]},
    ],
    "instances": [
        {"id": "cri-src", "account": A, "region": "cn-hangzhou", "edition": "Enterprise_Advanced",
         "name": "src",
         "namespaces": [{"name": "team",
                         "repos": [{"name": "app", "tags": [{"tag": "v1", "digest": DIGEST}]}]}]},
        {"id": "cri-dst", "account": B, "region": "cn-beijing", "edition": "Enterprise_Basic", "name": "dst",
         "namespaces": [{"name": "team", "auto_create_repo": True}, {"name": "strict"}]},
    ],
    "settings": {"sync": {"pending_seconds": 2, "synchronizing_seconds": 5}},
}


@pytest.fixture
def acr_cloud(cloud_factory):
    return cloud_factory(SCENARIO)


def client(cloud: LocalCloud, who: str = "a", region: str = "cn-hangzhou") -> Client:
    return cr_client(cloud, *KEYS[who], region)


def repo_id(cloud: LocalCloud) -> str:
    return cloud.world.instances["cri-src"].namespaces["team"].repos["app"].repo_id


def manual_task(c: Client, cloud: LocalCloud, **extra) -> cr.CreateRepoSyncTaskResponse:
    args = dict(instance_id="cri-src", repo_id=repo_id(cloud), tag="v1", target_region_id="cn-beijing",
                target_instance_id="cri-dst", target_namespace="team", target_repo_name="app",
                target_tag="v1",
                target_user_id=B, override=True)
    args.update(extra)
    return c.create_repo_sync_task(cr.CreateRepoSyncTaskRequest(**args))


def test_instances_and_namespaces(acr_cloud):
    c = client(acr_cloud)
    inst = c.get_instance(cr.GetInstanceRequest(instance_id="cri-src")).body
    assert (inst.is_success, inst.code, inst.instance_specification, inst.instance_status) == \
        (True, "success", "Enterprise_Advanced", "RUNNING")
    assert isinstance(inst.create_time, int)
    listed = c.list_instance(cr.ListInstanceRequest(page_no=1, page_size=30)).body
    assert listed.total_count == 1 and isinstance(listed.total_count, int)
    assert (listed.instances[0].region_id, type(listed.instances[0].create_time)) == ("cn-hangzhou", str)
    nss = client(acr_cloud,
                 "b", "cn-beijing").list_namespace(cr.ListNamespaceRequest(instance_id="cri-dst")).body
    assert nss.total_count == "2" and {n.namespace_name: n.auto_create_repo for n in nss.namespaces} == \
        {"team": True, "strict": False}
    ns = c.get_namespace(cr.GetNamespaceRequest(instance_id="cri-src", namespace_name="team")).body
    assert ns.namespace_id.startswith("crn-") and ns.default_repo_type == "PRIVATE"


def test_repositories_and_tags(acr_cloud):
    c = client(acr_cloud)
    repos = c.list_repository(cr.ListRepositoryRequest(instance_id="cri-src", repo_status="ALL")).body
    assert repos.total_count == "1" and repos.repositories[0].repo_id == repo_id(acr_cloud)
    got = c.get_repository(cr.GetRepositoryRequest(instance_id="cri-src", repo_namespace_name="team",
                                                   repo_name="app")).body
    assert (got.repo_type, got.tag_immutability, got.repo_build_type) == ("PRIVATE", False, "MANUAL")
    tags = c.list_repo_tag(cr.ListRepoTagRequest(instance_id="cri-src", repo_id=repo_id(acr_cloud))).body
    assert tags.total_count == "1" and tags.images[0].digest == DIGEST
    assert isinstance(tags.images[0].image_update, str)
    tag = c.get_repo_tag(cr.GetRepoTagRequest(instance_id="cri-src",
                                              repo_id=repo_id(acr_cloud), tag="v1")).body
    assert (tag.digest, type(tag.image_create), tag.status) == (DIGEST, int, "NORMAL")


def test_not_found_is_http_200_with_is_success_false(acr_cloud):
    c = client(acr_cloud)
    missing = c.get_repo_tag(cr.GetRepoTagRequest(instance_id="cri-src",
                                                  repo_id=repo_id(acr_cloud), tag="nope"))
    assert (missing.status_code, missing.body.is_success, missing.body.code) == (200, False, "TAG_NOT_EXIST")
    foreign = client(acr_cloud, "b").get_instance(cr.GetInstanceRequest(instance_id="cri-src")).body
    assert (foreign.is_success, foreign.code) == (False, "INSTANCE_NOT_EXIST")


def test_parameter_and_permission_errors_raise(acr_cloud):
    with pytest.raises(ClientException) as err:
        manual_task(client(acr_cloud), acr_cloud, target_tag=None)
    assert err.value.code == "MissingParameter"
    with pytest.raises(ClientException) as err:
        manual_task(client(acr_cloud, "reader"), acr_cloud)
    assert (err.value.status_code, err.value.code) == (403, "NoPrivilege")
    reader = client(acr_cloud, "reader").list_repo_tag(
        cr.ListRepoTagRequest(instance_id="cri-src", repo_id=repo_id(acr_cloud))).body
    assert reader.is_success is True


def test_manual_cross_account_sync_end_to_end(acr_cloud):
    c = client(acr_cloud)
    task_id = manual_task(c, acr_cloud).body.sync_task_id
    get = cr.GetRepoSyncTaskRequest(instance_id="cri-src", sync_task_id=task_id)
    pending = c.get_repo_sync_task(get).body
    assert (pending.task_status, pending.progress, pending.cross_user, pending.task_trigger) == \
        ("PENDING", 0, True, "INITIATIVE")
    assert pending.image_to.instance_id == "cri-dst" and pending.image_from.image_tag == "v1"
    acr_cloud.advance(7)
    done = c.get_repo_sync_task(get).body
    assert (done.task_status, done.progress, done.synced_size) == ("SUCCESS", 1, done.layer_tasks[0].size)
    listed = c.list_repo_sync_task(cr.ListRepoSyncTaskRequest(instance_id="cri-src", tag="v1")).body
    item = listed.sync_tasks[0]
    assert listed.total_count == "1" and isinstance(listed.total_count, str)
    assert item.modifed_time is not None and item.modified_time == item.modifed_time   # the SDK has both
    assert item.create_time < item.modifed_time and item.sync_batch_task_id
    b = client(acr_cloud, "b", "cn-beijing")
    target_repo = b.get_repository(cr.GetRepositoryRequest(instance_id="cri-dst", repo_namespace_name="team",
                                                           repo_name="app")).body
    assert target_repo.repo_build_type == "AUTO"
    copied = b.get_repo_tag(cr.GetRepoTagRequest(instance_id="cri-dst",
                                                 repo_id=target_repo.repo_id, tag="v1")).body
    assert copied.digest == DIGEST
    assert any(e["type"] == "cr:Artifact:SynchronizationCompleted" and e["data"]["SyncTaskId"] == task_id
               for e in acr_cloud.events())


def test_broken_grant_shows_up_as_a_failed_task(acr_cloud):
    acr_cloud.world.accounts[B].roles.clear()
    c = client(acr_cloud)
    task_id = manual_task(c, acr_cloud).body.sync_task_id
    acr_cloud.advance(2)
    failed = c.get_repo_sync_task(cr.GetRepoSyncTaskRequest(instance_id="cri-src", sync_task_id=task_id)).body
    assert (failed.task_status, failed.task_issue, failed.progress) == ("ERROR",
                                                                        "CROSS_ACCOUNT_AUTH_FAILED", 0)
    with pytest.raises(ClientException) as err:
        c.create_repo_sync_rule(cr.CreateRepoSyncRuleRequest(
            instance_id="cri-src", sync_rule_name="r", sync_scope="NAMESPACE", namespace_name="team",
            target_namespace_name="team", tag_filter=".*", target_region_id="cn-beijing",
            target_instance_id="cri-dst", target_user_id=B))
    assert (err.value.status_code, err.value.code) == (403, "NoPrivilege")


def test_missing_target_repo_without_auto_create_fails_later(acr_cloud):
    c = client(acr_cloud)
    task_id = manual_task(c, acr_cloud, target_namespace="strict").body.sync_task_id
    acr_cloud.advance(10)
    failed = c.get_repo_sync_task(cr.GetRepoSyncTaskRequest(instance_id="cri-src", sync_task_id=task_id)).body
    assert (failed.task_status, failed.task_issue) == ("ERROR", "REPO_NOT_EXIST")


def test_passive_rule_on_push(acr_cloud):
    c = client(acr_cloud)
    rule_id = c.create_repo_sync_rule(cr.CreateRepoSyncRuleRequest(
        instance_id="cri-src", sync_rule_name="team-to-b", sync_scope="NAMESPACE", namespace_name="team",
        target_namespace_name="team", tag_filter="release-.*", target_region_id="cn-beijing",
        target_instance_id="cri-dst", target_user_id=B, sync_trigger="PASSIVE")).body.sync_rule_id
    rules = c.list_repo_sync_rule(cr.ListRepoSyncRuleRequest(instance_id="cri-src")).body
    assert rules.total_count == 1 and isinstance(rules.total_count, int)
    rule = rules.sync_rules[0]
    assert (rule.sync_rule_id, rule.cross_user, rule.sync_direction, rule.local_namespace_name) == \
        (rule_id, True, "FROM", "team")
    assert not hasattr(rule, "target_user_id")
    assert acr_cloud.push("cri-src", "team", "app", "dev-1")["tasks"] == []
    pushed = acr_cloud.push("cri-src", "team", "app", "release-1", f"sha256:{'3' * 64}")
    assert len(pushed["tasks"]) == 1
    batch = c.list_repo_sync_task(cr.ListRepoSyncTaskRequest(instance_id="cri-src",
                                                             repo_namespace_name="team",
                                                             repo_name="app", tag="release-1")).body
    item = batch.sync_tasks[0]
    assert (item.sync_task_id, item.task_trigger, item.sync_rule_id) == (pushed["tasks"][0],
                                                                         "PASSIVE", rule_id)
    by_record = c.list_repo_sync_task(cr.ListRepoSyncTaskRequest(instance_id="cri-src",
                                                                 sync_record_id=item.sync_batch_task_id)).body
    assert [t.sync_task_id for t in by_record.sync_tasks] == pushed["tasks"]
    c.delete_repo_sync_rule(cr.DeleteRepoSyncRuleRequest(instance_id="cri-src", sync_rule_id=rule_id))
    assert c.list_repo_sync_rule(cr.ListRepoSyncRuleRequest(instance_id="cri-src")).body.total_count == 0


def test_task_by_initiative_rule_and_cancel(acr_cloud):
    c = client(acr_cloud)
    rule_id = c.create_repo_sync_rule(cr.CreateRepoSyncRuleRequest(
        instance_id="cri-src", sync_rule_name="manual", sync_scope="NAMESPACE", namespace_name="team",
        target_namespace_name="team", tag_filter=".*", target_region_id="cn-beijing",
        target_instance_id="cri-dst", target_user_id=B, sync_trigger="INITIATIVE")).body.sync_rule_id
    task_id = c.create_repo_sync_task_by_rule(cr.CreateRepoSyncTaskByRuleRequest(
        instance_id="cri-src", repo_id=repo_id(acr_cloud), sync_rule_id=rule_id, tag="v1")).body.sync_task_id
    cancel = cr.CancelRepoSyncTaskRequest(instance_id="cri-src", sync_task_id=task_id)
    assert c.cancel_repo_sync_task(cancel).body.is_success is True
    again = c.cancel_repo_sync_task(cancel).body
    assert (again.is_success, again.code) == (False, "SYNC_TASK_STATUS_INVALID")
    got = c.get_repo_sync_task(cr.GetRepoSyncTaskRequest(instance_id="cri-src", sync_task_id=task_id)).body
    assert (got.task_status, got.sync_rule_id) == ("CANCELED", rule_id)


def test_injected_task_fault_through_the_control_api(acr_cloud):
    control(acr_cloud, "acr/task-faults", {"instance_id": "cri-src", "fail_next": 1,
                                           "issue": "NETWORK_ERROR"})
    c = client(acr_cloud)
    failing = manual_task(c, acr_cloud).body.sync_task_id
    passing = manual_task(c, acr_cloud).body.sync_task_id
    acr_cloud.advance(7)
    states = {t["task_id"]: (t["status"], t["issue"]) for t in control(acr_cloud, "acr/tasks", {})["tasks"]}
    assert states == {failing: ("ERROR", "NETWORK_ERROR"), passing: ("SUCCESS", "")}


def test_demo_scenario_rule_replicates_new_pushes_only(cloud, sdk_config, demo):
    c = Client(sdk_config(cloud, demo.a_key_id, demo.a_secret))
    rules = c.list_repo_sync_rule(cr.ListRepoSyncRuleRequest(instance_id=demo.source_instance)).body
    assert [(r.sync_scope, r.local_namespace_name, r.cross_user) for r in rules.sync_rules] == \
        [("NAMESPACE", "team-b", True)]
    assert cloud.push(demo.source_instance, "team-a", "web", "v2.0.0")["tasks"] == []
    fired = cloud.push(demo.source_instance, "team-b", "batch", "v4")["tasks"]
    cloud.advance(7)
    done = c.get_repo_sync_task(cr.GetRepoSyncTaskRequest(instance_id=demo.source_instance,
                                                          sync_task_id=fired[0])).body
    assert (done.task_status, done.task_trigger, done.image_to.repo_name) == ("SUCCESS", "PASSIVE", "batch")
    b = Client(sdk_config(cloud, demo.b_key_id, demo.b_secret, region_id=demo.target_region))
    repo = b.get_repository(cr.GetRepositoryRequest(instance_id=demo.target_instance,
                                                    repo_namespace_name="team-b",
                                                    repo_name="batch")).body
    tags = b.list_repo_tag(cr.ListRepoTagRequest(instance_id=demo.target_instance, repo_id=repo.repo_id)).body
    assert [t.tag for t in tags.images] == ["v4"]       # v3 existed before the rule: never replicated
