"""localcloud ACR wire layer: ``ACTIONS[action](ctx, params)`` with the flat string params the SDK sends,
on a world built by the real scenario loader. Checks reply shapes, error kinds and the RAM action asked
for."""

from __future__ import annotations

import pytest

from localcloud.acr.models import CROSS_ACCOUNT_ROLE
from localcloud.acr.wire import ACTIONS
from localcloud.clock import Clock
from localcloud.scenario import build_world, parse
from localcloud.service import Caller, RequestContext, ServiceError
from tests.demo_world import SMALL_A, SMALL_B

A, B = SMALL_A, SMALL_B   # source, target
DIGEST = "1" * 64

SCENARIO = {
    "accounts": [
        {"id": A, "access_keys": [{"id": "AK-DEMO-A", "secret": "made-up-demo-secret-a"}]},
        {"id": B, "access_keys": [{"id": "AK-DEMO-B", "secret": "made-up-demo-secret-b"}], "roles": [{
            "name": CROSS_ACCOUNT_ROLE,
            "trust_policy": {"Version": "1", "Statement": [{
                "Action": "sts:AssumeRole", "Effect": "Allow",
                "Principal": {"Service": [f"{A}@cr.aliyuncs.com"]}}]},
            "policies": [{"name": "acr-cross-sync", "document": {"Version": "1", "Statement": [{
                "Effect": "Allow", "Action": ["cr:CreateSyncRule", "cr:CreateRepositorySync"],
                "Resource": f"acs:cr:cn-beijing:{B}:instance/cri-dst"}]}}],
        }]},
    ],
    "instances": [
        {"id": "cri-src", "account": A, "region": "cn-hangzhou", "edition": "Enterprise_Advanced",
         "name": "src",
         "namespaces": [{"name": "team", "repos": [
             {"name": "app", "tags": [{"tag": "v1", "digest": DIGEST}, {"tag": "v2"}]},
             {"name": "web", "type": "PUBLIC", "tag_immutability": True}]}],
         "sync_rules": [{"id": "crsr-scenario", "name": "app-to-b", "scope": "REPO", "namespace": "team",
                         "repo": "app", "target_instance": "cri-dst", "target_namespace": "team",
                         "target_repo": "app", "tag_filter": "release-.*"}]},
        {"id": "cri-dst", "account": B, "region": "cn-beijing", "edition": "Enterprise_Basic",   # a REPO rule
         # keeps names
         "namespaces": [{"name": "team", "auto_create_repo": True, "repos": [{"name": "app"}]}]},
    ],
    "settings": {"sync": {"pending_seconds": 2, "synchronizing_seconds": 5}},
}


class Harness:
    def __init__(self):
        self.world = build_world(parse(SCENARIO), Clock("manual", start=1_800_000_000.0))
        self.asked: list[tuple[str, str]] = []

    def call(self, action: str, account: str = A, **params) -> dict:
        ctx = RequestContext(world=self.world, caller=Caller(account_id=account, access_key_id="AK-DEMO",
                                                             kind="root"),
                             action=action, authorizer=lambda _ctx, act, res: self.asked.append((act, res)))
        return ACTIONS[action](ctx, {k: str(v) for k, v in params.items()})

    def repo_id(self, name: str = "app") -> str:
        return self.world.instances["cri-src"].namespaces["team"].repos[name].repo_id

    def advance(self, seconds: float) -> None:
        self.world.clock.advance(seconds)


@pytest.fixture
def w() -> Harness:
    return Harness()


def ok(reply: dict) -> dict:
    assert (reply["Code"], reply["IsSuccess"]) == ("success", True), reply
    assert reply["RequestId"]
    return reply


def test_get_and_list_instance(w):
    got = ok(w.call("GetInstance", InstanceId="cri-src"))
    assert (got["InstanceSpecification"], got["InstanceName"], type(got["CreateTime"])) == \
        ("Enterprise_Advanced", "src", int)
    listed = ok(w.call("ListInstance"))
    assert listed["TotalCount"] == 1 and isinstance(listed["TotalCount"], int)
    assert listed["Instances"][0]["RegionId"] == "cn-hangzhou"
    assert isinstance(listed["Instances"][0]["CreateTime"], str)
    assert ok(w.call("ListInstance", account=B))["Instances"][0]["InstanceId"] == "cri-dst"
    assert w.asked[0] == ("cr:GetInstance", f"acs:cr:cn-hangzhou:{A}:instance/cri-src")


def test_another_accounts_instance_is_answered_as_missing(w):
    reply = w.call("GetInstance", account=B, InstanceId="cri-src")
    assert (reply["IsSuccess"], reply["Code"]) == (False, "INSTANCE_NOT_EXIST")
    assert w.call("ListRepository", account=B, InstanceId="cri-src")["Code"] == "INSTANCE_NOT_EXIST"


def test_missing_instance_id_is_a_400(w):
    with pytest.raises(ServiceError) as err:
        w.call("GetInstance")
    assert (err.value.status, err.value.code) == (400, "MissingParameter")


def test_namespaces(w):
    listed = ok(w.call("ListNamespace", InstanceId="cri-dst", account=B))
    assert listed["TotalCount"] == "1" and listed["Namespaces"][0]["AutoCreateRepo"] is True
    got = ok(w.call("GetNamespace", InstanceId="cri-src", NamespaceName="team"))
    assert got["NamespaceId"].startswith("crn-") and got["AutoCreateRepo"] is False
    assert ok(w.call("GetNamespace", InstanceId="cri-src",
                     NamespaceId=got["NamespaceId"]))["NamespaceName"] == "team"
    assert w.call("GetNamespace", InstanceId="cri-src", NamespaceName="nope")["Code"] == "NAMESPACE_NOT_EXIST"
    assert ("cr:GetNamespace", f"acs:cr:cn-hangzhou:{A}:repository/cri-src/team") in w.asked


def test_repositories_paging_and_lookup(w):
    listed = ok(w.call("ListRepository", InstanceId="cri-src", PageSize=1, PageNo=2))
    assert (listed["TotalCount"], listed["PageNo"], listed["PageSize"]) == ("2", 2, 1)
    assert [r["RepoName"] for r in listed["Repositories"]] == ["web"]
    token = ok(w.call("ListRepository", InstanceId="cri-src", MaxResults=1))
    assert token["NextToken"] == "1"
    assert ok(w.call("ListRepository", InstanceId="cri-src", MaxResults=1, NextToken=1))["NextToken"] == ""
    by_name = ok(w.call("GetRepository", InstanceId="cri-src", RepoNamespaceName="team", RepoName="web"))
    assert (by_name["RepoType"], by_name["TagImmutability"]) == ("PUBLIC", True)
    assert ok(w.call("GetRepository", InstanceId="cri-src", RepoId=w.repo_id()))["RepoName"] == "app"
    missing = w.call("GetRepository", InstanceId="cri-src", RepoNamespaceName="team", RepoName="nope")
    assert (missing["IsSuccess"], missing["Code"]) == (False, "REPO_NOT_EXIST")
    with pytest.raises(ServiceError) as err:
        w.call("ListRepository", InstanceId="cri-src", PageSize=101)
    assert err.value.code == "InvalidParameter"


def test_tags(w):
    listed = ok(w.call("ListRepoTag", InstanceId="cri-src", RepoId=w.repo_id()))
    assert listed["TotalCount"] == "2"
    assert all(isinstance(i["ImageUpdate"], str) for i in listed["Images"])
    got = ok(w.call("GetRepoTag", InstanceId="cri-src", RepoId=w.repo_id(), Tag="v1"))
    assert (got["Digest"], type(got["ImageCreate"])) == (DIGEST, int)
    assert w.call("GetRepoTag", InstanceId="cri-src", RepoId=w.repo_id(), Tag="v9")["Code"] == "TAG_NOT_EXIST"
    assert ("cr:ListRepositoryTag", f"acs:cr:cn-hangzhou:{A}:repository/cri-src") in w.asked      # GetRepoTag
    assert ("cr:ListRepositoryTag", "*") in w.asked                                              # ListRepoTag


def _manual(w: Harness, **extra) -> dict:
    params = dict(InstanceId="cri-src", RepoId=w.repo_id(), Tag="v1", TargetRegionId="cn-beijing",
                  TargetInstanceId="cri-dst", TargetNamespace="team", TargetRepoName="app", TargetTag="v1",
                  TargetUserId=B)
    params.update(extra)
    return w.call("CreateRepoSyncTask", **params)


def test_sync_task_lifecycle_through_the_wire(w):
    task_id = ok(_manual(w, Override="True"))["SyncTaskId"]
    assert task_id.startswith("rst-")
    got = ok(w.call("GetRepoSyncTask", InstanceId="cri-src", SyncTaskId=task_id))
    assert (got["TaskStatus"], got["Progress"], got["TaskTrigger"], got["CrossUser"]) == \
        ("PENDING", 0, "INITIATIVE", True)
    assert "SyncRuleId" not in got
    assert got["ImageTo"] == {"InstanceId": "cri-dst", "RegionId": "cn-beijing", "RepoNamespaceName": "team",
                              "RepoName": "app", "ImageTag": "v1"}
    w.advance(7)
    got = ok(w.call("GetRepoSyncTask", InstanceId="cri-src", SyncTaskId=task_id))
    assert (got["TaskStatus"], got["Progress"], got["TaskIssue"]) == ("SUCCESS", 1, "")
    listed = ok(w.call("ListRepoSyncTask", InstanceId="cri-src"))
    item = listed["SyncTasks"][0]
    assert listed["TotalCount"] == "1"
    # both spellings, as the SDK model ListRepoSyncTaskResponseBodySyncTasks declares them
    assert item["ModifedTime"] == item["ModifiedTime"] and item["ModifedTime"] > item["CreateTime"]
    assert ("cr:CreateRepositorySync", f"acs:cr:cn-hangzhou:{A}:repository/cri-src/team/app") in w.asked
    assert ("cr:GetRepositorySync", f"acs:cr:cn-hangzhou:{A}:repository/cri-src") in w.asked


def test_list_sync_task_filters_and_order(w):
    first = ok(_manual(w))["SyncTaskId"]
    w.advance(1)
    second = ok(_manual(w, Tag="v2", TargetTag="v2"))["SyncTaskId"]
    ids = [t["SyncTaskId"] for t in ok(w.call("ListRepoSyncTask", InstanceId="cri-src"))["SyncTasks"]]
    assert ids == [second, first]
    by_tag = ok(w.call("ListRepoSyncTask", InstanceId="cri-src", Tag="v2"))["SyncTasks"]
    assert [t["SyncTaskId"] for t in by_tag] == [second]
    batch = by_tag[0]["SyncBatchTaskId"]
    assert [t["SyncTaskId"] for t in ok(w.call("ListRepoSyncTask", InstanceId="cri-src",
                                               SyncRecordId=batch))["SyncTasks"]] == [second]
    assert ok(w.call("ListRepoSyncTask", InstanceId="cri-src", RepoName="web"))["TotalCount"] == "0"


def test_cancel(w):
    task_id = ok(_manual(w))["SyncTaskId"]
    ok(w.call("CancelRepoSyncTask", InstanceId="cri-src", SyncTaskId=task_id))
    again = w.call("CancelRepoSyncTask", InstanceId="cri-src", SyncTaskId=task_id)
    assert again["IsSuccess"] is False and "CANCELED" in again["Message"]
    assert w.call("GetRepoSyncTask", InstanceId="cri-src",
                  SyncTaskId="rst-nope")["Code"] == "SYNC_TASK_NOT_EXIST"


@pytest.mark.parametrize("value", ["true", "True", "false", "False"])
def test_override_accepts_both_bool_spellings(w, value):
    ok(_manual(w, Override=value))


def test_create_task_refusals(w):
    with pytest.raises(ServiceError) as err:
        _manual(w, TargetUserId="3000000000000003")
    assert err.value.status == 400
    with pytest.raises(ServiceError) as err:
        _manual(w, TargetTag="")
    assert err.value.code == "MissingParameter"
    with pytest.raises(ServiceError):
        _manual(w, Priority=9)
    assert _manual(w, RepoId="crr-nope")["Code"] == "REPO_NOT_EXIST"


def test_rules_through_the_wire(w):
    scenario_rule = ok(w.call("ListRepoSyncRule", InstanceId="cri-src"))
    assert scenario_rule["TotalCount"] == 1 and isinstance(scenario_rule["TotalCount"], int)
    rule = scenario_rule["SyncRules"][0]
    assert (rule["SyncRuleId"], rule["CrossUser"], rule["SyncDirection"]) == ("crsr-scenario", True, "FROM")
    assert "TargetUserId" not in rule
    created = ok(w.call("CreateRepoSyncRule", InstanceId="cri-src", SyncRuleName="manual",
                        SyncScope="NAMESPACE",
                        NamespaceName="team", TargetNamespaceName="team", TagFilter=".*",
                        SyncTrigger="INITIATIVE",
                        TargetRegionId="cn-beijing", TargetInstanceId="cri-dst", TargetUserId=B))
    rule_id = created["SyncRuleId"]
    assert ok(w.call("ListRepoSyncRule", InstanceId="cri-src", NamespaceName="team",
                     RepoName="app"))["TotalCount"] == 1
    by_rule = ok(w.call("CreateRepoSyncTaskByRule", InstanceId="cri-src", RepoId=w.repo_id(),
                        SyncRuleId=rule_id,
                        Tag="v2"))
    got = ok(w.call("GetRepoSyncTask", InstanceId="cri-src", SyncTaskId=by_rule["SyncTaskId"]))
    assert (got["SyncRuleId"], got["TaskTrigger"]) == (rule_id, "INITIATIVE")
    with pytest.raises(ServiceError) as err:
        w.call("CreateRepoSyncTaskByRule", InstanceId="cri-src", RepoId=w.repo_id(),
               SyncRuleId="crsr-scenario",
               Tag="v2")
    assert "INITIATIVE" in err.value.message
    ok(w.call("DeleteRepoSyncRule", InstanceId="cri-src", SyncRuleId=rule_id))
    assert w.call("DeleteRepoSyncRule", InstanceId="cri-src",
                  SyncRuleId=rule_id)["Code"] == "SYNC_RULE_NOT_EXIST"
    assert ("cr:CreateSyncRule", f"acs:cr:cn-hangzhou:{A}:repository/cri-src") in w.asked
    assert ("cr:ListSyncRule", f"acs:cr:cn-hangzhou:{A}:repository/cri-src") in w.asked
    assert ("cr:DeleteSyncRule", f"acs:cr:cn-hangzhou:{A}:instance/cri-src") in w.asked


def test_scenario_rule_fires_on_push_for_matching_tags(w):
    backend = w.world.backends["acr"]
    assert backend.push("cri-src", "team", "app", "v3")["tasks"] == []
    fired = backend.push("cri-src", "team", "app", "release-1")["tasks"]
    w.advance(7)
    got = ok(w.call("GetRepoSyncTask", InstanceId="cri-src", SyncTaskId=fired[0]))
    assert (got["TaskStatus"], got["TaskTrigger"], got["SyncRuleId"]) == ("SUCCESS", "PASSIVE",
                                                                          "crsr-scenario")


def test_rule_creation_without_grant_is_no_privilege(w):
    w.world.accounts[B].roles.clear()
    with pytest.raises(ServiceError) as err:
        w.call("CreateRepoSyncRule", InstanceId="cri-src", SyncRuleName="x", SyncScope="REPO",
               NamespaceName="team",
               RepoName="app", TargetNamespaceName="team", TargetRepoName="app", TagFilter=".*",
               TargetRegionId="cn-beijing", TargetInstanceId="cri-dst", TargetUserId=B)
    assert (err.value.status, err.value.code) == (403, "NoPrivilege")


def test_authorizer_refusal_stops_the_action(w):
    def deny(_ctx, action, resource):
        raise ServiceError(403, "NoPrivilege", f"denied {action} on {resource}")

    ctx = RequestContext(world=w.world, caller=Caller(A, "AK-DEMO", "root"), action="GetInstance",
                         authorizer=deny)
    with pytest.raises(ServiceError) as err:
        ACTIONS["GetInstance"](ctx, {"InstanceId": "cri-src"})
    assert err.value.status == 403


REPO_ARN = f"acs:cr:cn-hangzhou:{A}:repository/cri-src"


@pytest.mark.parametrize(("action", "params", "ram_action", "resource"), [
    # each row: the operation's current API reference page (docs/localcloud.md, "ACR permissions")
    ("ListNamespace", {}, "cr:ListNamespace", "*"),
    ("UpdateNamespace", {"NamespaceName": "team", "AutoCreateRepo": "true"}, "cr:UpdateNamespace", "*"),
    ("ListRepoTag", {"RepoId": None}, "cr:ListRepositoryTag", "*"),
    ("GetRepoTag", {"RepoId": None, "Tag": "v1"}, "cr:ListRepositoryTag", REPO_ARN),
    ("ListRepoSyncTask", {}, "cr:GetRepositorySync", REPO_ARN),
    ("GetRepoSyncTask", {"SyncTaskId": "rst-nope"}, "cr:GetRepositorySync", REPO_ARN),
    ("CancelRepoSyncTask", {"SyncTaskId": "rst-nope"}, "cr:CancelRepoSyncTask", REPO_ARN),
    ("ListRepoSyncRule", {}, "cr:ListSyncRule", REPO_ARN),
    ("CreateRepoSyncTaskByRule", {"RepoId": None, "SyncRuleId": "crsr-nope", "Tag": "v1"},
     "cr:PullRepository", "*"),
])
def test_each_operation_is_judged_on_its_documented_action_and_resource(w, action, params,
                                                                        ram_action, resource):
    params = {k: (w.repo_id() if v is None else v) for k, v in params.items()}
    try:
        w.call(action, InstanceId="cri-src", **params)
    except ServiceError:
        pass                       # a refusal after authorization (unknown rule) still asked first
    assert w.asked == [(ram_action, resource)]


def test_push_events_look_like_the_documented_eventbridge_sample(w):
    """https://www.alibabacloud.com/help/en/eventbridge/user-guide/container-registry-events: ``time`` with an
    offset and no fraction, ``aliyunpublishtime`` in UTC, and ``aliyunpublishaddr``."""
    import re
    from datetime import datetime

    w.world.clock.advance(0.789)                        # a fractional second is not shown
    event = w.world.backends["acr"].push("cri-src", "team", "app", "v9")["event"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", event["time"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["aliyunpublishtime"])
    assert event["aliyunpublishaddr"]
    assert int(datetime.fromisoformat(event["time"]).timestamp()) == int(w.world.clock.now())
    expected = {"id", "source", "specversion", "type", "subject", "time", "aliyunaccountid",
                "aliyunpublishtime",
                "aliyuneventbusname", "aliyunregionid", "aliyunpublishaddr", "data"}
    assert set(event) == expected
