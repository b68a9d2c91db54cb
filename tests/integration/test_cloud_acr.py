"""Every Acr adapter method against localcloud's demo scenario, through the real cr20181201 SDK."""

from __future__ import annotations

import pytest

from acrsync.cloud import CloudError
from acrsync.model import SyncTask
from tests.demo_world import (
    ACCOUNT_B,
    SOURCE_INSTANCE,
    SOURCE_REGION,
    TARGET_INSTANCE,
    TARGET_REGION,
)


@pytest.fixture
def acr(session):
    return session.acr(SOURCE_REGION)


def test_instance(acr, session):
    inst = acr.get_instance(SOURCE_INSTANCE)
    assert (inst.instance_id, inst.edition, inst.status) == (SOURCE_INSTANCE,
                                                             "Enterprise_Advanced", "RUNNING")
    assert SOURCE_INSTANCE in {i.instance_id for i in acr.list_instances()}
    assert session.calls["cr:GetInstance"] == 1 and session.calls["cr:ListInstance"] >= 1


def test_namespaces(acr):
    ns = acr.get_namespace(SOURCE_INSTANCE, "team-a")
    assert ns is not None and ns.auto_create_repo
    assert acr.get_namespace(SOURCE_INSTANCE, "no-such-team") is None
    assert {n.name for n in acr.list_namespaces(SOURCE_INSTANCE)} == {"team-a", "team-b"}


def test_repositories(acr):
    web = acr.get_repository(SOURCE_INSTANCE, "team-a", "web")
    assert web is not None and web.repo_id.startswith("crr-") and web.path == "team-a/web"
    assert acr.get_repository(SOURCE_INSTANCE, "team-a", "nope") is None
    assert {r.name for r in acr.list_repositories(SOURCE_INSTANCE, "team-a")} == {"web", "api", "worker"}
    assert {r.path for r in acr.list_repositories(SOURCE_INSTANCE)} >= {"team-a/web", "team-b/batch"}
    worker = acr.get_repository(SOURCE_INSTANCE, "team-a", "worker")
    assert worker.tag_immutability


def test_tags(acr):
    web = acr.get_repository(SOURCE_INSTANCE, "team-a", "web")
    tag = acr.get_repo_tag(SOURCE_INSTANCE, web.repo_id, "v1.0.0")
    assert tag is not None and tag.digest.endswith("1a1a1a1a")
    assert acr.get_repo_tag(SOURCE_INSTANCE, web.repo_id, "v9.9.9") is None
    assert {t.tag for t in acr.list_repo_tags(SOURCE_INSTANCE, web.repo_id)} == {"v1.0.0", "v1.1.0", "latest"}


def test_sync_rules_of_the_demo(acr):
    [rule] = acr.list_repo_sync_rules(SOURCE_INSTANCE)
    assert (rule.scope, rule.local_namespace, rule.target_instance_id, rule.target_region) == (
        "NAMESPACE", "team-b", TARGET_INSTANCE, TARGET_REGION)
    assert rule.cross_user
    assert acr.list_repo_sync_rules(SOURCE_INSTANCE, target_instance_id="cri-other") == []


def create_web_task(acr, tag="v1.1.0") -> str:
    web = acr.get_repository(SOURCE_INSTANCE, "team-a", "web")
    return acr.create_repo_sync_task(SOURCE_INSTANCE, web.repo_id, tag, target_region=TARGET_REGION,
                                     target_instance_id=TARGET_INSTANCE, target_namespace="team-a",
                                     target_repo="web", target_tag=tag, target_user_id=ACCOUNT_B)


def test_manual_sync_task_lifecycle(acr, cloud):
    task_id = create_web_task(acr)
    task = acr.get_repo_sync_task(SOURCE_INSTANCE, task_id)
    assert isinstance(task, SyncTask) and task.task_id == task_id
    assert task.status in ("PENDING", "SYNCHRONIZING")
    assert task.target.instance_id == TARGET_INSTANCE and task.cross_user

    page, total = acr.list_repo_sync_tasks(SOURCE_INSTANCE, namespace="team-a", repo="web", page_size=10)
    assert task_id in {t.task_id for t in page} and total >= 1
    assert task_id in {t.task_id for t in acr.iter_repo_sync_tasks(SOURCE_INSTANCE, tag="v1.1.0")}

    cloud.advance(60)
    assert acr.get_repo_sync_task(SOURCE_INSTANCE, task_id).status == "SUCCESS"


def test_cancel_a_pending_task(acr):
    task_id = create_web_task(acr, "latest")
    acr.cancel_repo_sync_task(SOURCE_INSTANCE, task_id)
    assert acr.get_repo_sync_task(SOURCE_INSTANCE, task_id).status == "CANCELED"


def test_manual_rule_create_use_delete(acr, cloud):
    # the target has team-a (creating repositories automatically) but no team-a/api: a NAMESPACE rule, since
    # a REPO rule needs the same-named repository on the target and localcloud refuses it without one
    rule_id = acr.create_repo_sync_rule(
        SOURCE_INSTANCE, name="api-manual", scope="NAMESPACE", tag_filter=".*", target_region=TARGET_REGION,
        target_instance_id=TARGET_INSTANCE, namespace="team-a", target_namespace="team-a",
        target_user_id=ACCOUNT_B, trigger="INITIATIVE")
    assert rule_id in {r.rule_id for r in acr.list_repo_sync_rules(SOURCE_INSTANCE, namespace="team-a")}
    api = acr.get_repository(SOURCE_INSTANCE, "team-a", "api")
    task_id = acr.create_repo_sync_task_by_rule(SOURCE_INSTANCE, api.repo_id, rule_id, "1.1")
    assert acr.get_repo_sync_task(SOURCE_INSTANCE, task_id).rule_id == rule_id
    acr.delete_repo_sync_rule(SOURCE_INSTANCE, rule_id)
    assert rule_id not in {r.rule_id for r in acr.list_repo_sync_rules(SOURCE_INSTANCE)}


def test_a_business_error_in_an_http_200_reply_is_a_cloud_error(acr):
    with pytest.raises(CloudError) as e:
        acr.get_repo_sync_task(SOURCE_INSTANCE, "rst-doesnotexist")
    assert e.value.http_status == 200 and e.value.action == "GetRepoSyncTask"
