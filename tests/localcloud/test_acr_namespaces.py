"""localcloud's CreateNamespace and UpdateNamespace through the real ``alibabacloud_cr20181201`` client:
the namespace really appears or changes (GetNamespace and a push show it), replies fit the SDK models,
refusals come the way the SDK reports them, and RAM decides on the documented resources
(``repository/<instance>`` to create, ``repository/<instance>/<namespace>`` to update)."""

from __future__ import annotations

import pytest
from alibabacloud_cr20181201 import models as cr
from alibabacloud_cr20181201.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException

from localcloud.acr.models import NAMESPACE_EXISTS, backend_of
from localcloud.server import LocalCloud
from tests.demo_world import SMALL_A, SMALL_B, cr_client

A, B = SMALL_A, SMALL_B   # another account, the instance's owner
KEYS = {  # made-up demo access keys, valid only inside localcloud
    "a": ("AK-DEMO-NS-A", "made-up-demo-secret-ns-a"),
    "b": ("AK-DEMO-NS-B", "made-up-demo-secret-ns-b"),
    "viewer": ("AK-DEMO-NS-VIEWER", "made-up-demo-secret-ns-viewer"),
    "scoped": ("AK-DEMO-NS-SCOPED", "made-up-demo-secret-ns-scoped"),
    "updater": ("AK-DEMO-NS-UPDATER", "made-up-demo-secret-ns-updater"),
}
REGION = "cn-beijing"
SCOPED_POLICY = {"Version": "1", "Statement": [
    {"Effect": "Allow", "Action": "cr:CreateNamespace",
     "Resource": f"acs:cr:{REGION}:{B}:repository/cri-dst"},
    {"Effect": "Allow", "Action": "cr:UpdateNamespace",
     "Resource": f"acs:cr:{REGION}:{B}:repository/cri-dst/team"},
    {"Effect": "Allow", "Action": "cr:GetNamespace", "Resource": f"acs:cr:{REGION}:{B}:repository/cri-dst/*"},
]}
# cr:UpdateNamespace is an "All Resources" action (https://www.alibabacloud.com/help/doc-detail/145287.htm)
UPDATE_ANY_POLICY = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "cr:UpdateNamespace",
                                                    "Resource": "*"}]}

SCENARIO = {
    "accounts": [
        {"id": A, "access_keys": [{"id": KEYS["a"][0], "secret": KEYS["a"][1]}]},
        {"id": B, "access_keys": [{"id": KEYS["b"][0], "secret": KEYS["b"][1]}],
         "policies": [{"name": "namespace-admin", "document": SCOPED_POLICY},
                      {"name": "namespace-updater", "document": UPDATE_ANY_POLICY}],
         "users": [
             {"name": "viewer", "access_keys": [{"id": KEYS["viewer"][0], "secret": KEYS["viewer"][1]}],
              "policies": ["AliyunContainerRegistryReadOnlyAccess"]},
             {"name": "scoped", "access_keys": [{"id": KEYS["scoped"][0], "secret": KEYS["scoped"][1]}],
              "policies": ["namespace-admin"]},
             {"name": "updater", "access_keys": [{"id": KEYS["updater"][0], "secret": KEYS["updater"][1]}],
              "policies": ["namespace-updater"]}]},
    ],
    "instances": [
        {"id": "cri-dst", "account": B, "region": REGION, "edition": "Enterprise_Basic", "name": "dst",
         "namespaces": [{"name": "team", "default_repo_type": "PUBLIC"}]},
    ],
}


@pytest.fixture
def ns_cloud(cloud_factory):
    return cloud_factory(SCENARIO)


def client(cloud: LocalCloud, who: str = "b") -> Client:
    return cr_client(cloud, *KEYS[who], REGION)


def get(c: Client, name: str) -> cr.GetNamespaceResponseBody:
    return c.get_namespace(cr.GetNamespaceRequest(instance_id="cri-dst", namespace_name=name)).body


def test_create_namespace_then_get_and_push_into_a_new_repository(ns_cloud):
    c = client(ns_cloud)
    reply = c.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst", namespace_name="mirror",
                                                         auto_create_repo=True, default_repo_type="PRIVATE"))
    assert reply.status_code == 200 and reply.body.is_success and reply.body.code == "success"
    assert reply.body.request_id
    got = get(c, "mirror")
    assert got.is_success and got.auto_create_repo is True and got.default_repo_type == "PRIVATE"
    assert got.namespace_id.startswith("crn-") and got.namespace_name == "mirror"
    # AutoCreateRepo on: a push into a repository the namespace does not have yet creates it
    backend_of(ns_cloud.world).push("cri-dst", "mirror", "app", "v1")
    assert "app" in ns_cloud.world.instances["cri-dst"].namespaces["mirror"].repos


def test_create_accepts_lower_case_booleans_and_defaults_to_private_without_auto_create(ns_cloud):
    c = client(ns_cloud)
    req = cr.CreateNamespaceRequest().from_map({"InstanceId": "cri-dst", "NamespaceName": "lower",
                                                "AutoCreateRepo": "true"})
    assert c.create_namespace(req).body.is_success
    assert get(c, "lower").auto_create_repo is True and get(c, "lower").default_repo_type == "PRIVATE"
    assert c.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst",
                                                        namespace_name="plain")).body.is_success
    assert get(c, "plain").auto_create_repo is False


def test_create_refusals(ns_cloud):
    c = client(ns_cloud)
    again = c.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst", namespace_name="team",
                                                         auto_create_repo=True)).body
    assert (again.is_success, again.code) == (False, NAMESPACE_EXISTS)
    assert ns_cloud.world.instances["cri-dst"].namespaces["team"].auto_create_repo is False   # unchanged
    for bad in ("Team", "-team", "team-", "t"):
        with pytest.raises(ClientException) as err:
            c.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst", namespace_name=bad))
        assert (err.value.status_code, err.value.code) == (400, "InvalidParameter"), bad
    with pytest.raises(ClientException) as err:
        c.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst", namespace_name="x1",
                                                     default_repo_type="SECRET"))
    assert (err.value.status_code, err.value.code) == (400, "InvalidParameter")
    with pytest.raises(ClientException) as err:
        c.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst"))
    assert (err.value.status_code, err.value.code) == (400, "MissingParameter")
    assert sorted(ns_cloud.world.instances["cri-dst"].namespaces) == ["team"]


def test_update_turns_auto_create_on_and_keeps_what_is_not_given(ns_cloud):
    c = client(ns_cloud)
    reply = c.update_namespace(cr.UpdateNamespaceRequest(instance_id="cri-dst", namespace_name="team",
                                                         auto_create_repo=True))
    assert reply.body.is_success and reply.body.code == "success"
    got = get(c, "team")
    assert got.auto_create_repo is True and got.default_repo_type == "PUBLIC"
    c.update_namespace(cr.UpdateNamespaceRequest(instance_id="cri-dst", namespace_name="team",
                                                 default_repo_type="PRIVATE"))
    got = get(c, "team")
    assert got.auto_create_repo is True and got.default_repo_type == "PRIVATE"
    missing = c.update_namespace(cr.UpdateNamespaceRequest(instance_id="cri-dst", namespace_name="nope",
                                                           auto_create_repo=True)).body
    assert (missing.is_success, missing.code) == (False, "NAMESPACE_NOT_EXIST")


def test_another_accounts_instance_does_not_exist_for_the_caller(ns_cloud):
    c = client(ns_cloud, "a")
    created = c.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst",
                                                           namespace_name="intruder")).body
    updated = c.update_namespace(cr.UpdateNamespaceRequest(instance_id="cri-dst", namespace_name="team",
                                                           auto_create_repo=True)).body
    assert (created.is_success, created.code) == (False, "INSTANCE_NOT_EXIST")
    assert (updated.is_success, updated.code) == (False, "INSTANCE_NOT_EXIST")
    assert sorted(ns_cloud.world.instances["cri-dst"].namespaces) == ["team"]
    assert ns_cloud.world.instances["cri-dst"].namespaces["team"].auto_create_repo is False


def test_ram_decides_on_the_documented_resources(ns_cloud):
    viewer = client(ns_cloud, "viewer")
    for call in (lambda: viewer.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst",
                                                                           namespace_name="ro")),
                 lambda: viewer.update_namespace(cr.UpdateNamespaceRequest(instance_id="cri-dst",
                                                                           namespace_name="team",
                                                                           auto_create_repo=True))):
        with pytest.raises(ClientException) as err:
            call()
        assert (err.value.status_code, err.value.code) == (403, "NoPrivilege")

    scoped = client(ns_cloud, "scoped")
    assert scoped.create_namespace(cr.CreateNamespaceRequest(instance_id="cri-dst",
                                                             namespace_name="made")).body.is_success
    # UpdateNamespace is listed under "All Resources": a grant on repository/cri-dst/team does not give it
    with pytest.raises(ClientException) as err:
        scoped.update_namespace(cr.UpdateNamespaceRequest(instance_id="cri-dst", namespace_name="team",
                                                          auto_create_repo=True))
    assert (err.value.status_code, err.value.code) == (403, "NoPrivilege")
    updater = client(ns_cloud, "updater")
    assert updater.update_namespace(cr.UpdateNamespaceRequest(instance_id="cri-dst", namespace_name="made",
                                                              auto_create_repo=True)).body.is_success
