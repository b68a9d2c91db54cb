"""In-memory fakes of acrsync's own Ram and Acr adapters (not of SDK clients) for the grant tests (no tests
here).

Accounts and instance ids are made up.
"""

from __future__ import annotations

import dataclasses
import json

from acrsync.cloud.errors import AccessDenied, NotFound
from acrsync.config import Config, parse_config
from acrsync.model import InstanceInfo, NamespaceInfo, RepoInfo
from acrsync.policy import SYNC_ROLE_NAME
from acrsync.roles import PolicyInfo, PolicyRef, RoleInfo

SOURCE_ACCOUNT = "1250000000000001"     # made-up account A
TARGET_ACCOUNT = "1510000000000002"     # made-up account B
READER_ARN = f"acs:ram::{TARGET_ACCOUNT}:role/acrsync-reader"


def make_config(**target_overrides) -> Config:
    target = {"name": "beijing", "account_id": TARGET_ACCOUNT, "region": "cn-beijing",
              "instance_id": "cri-target0001", "reader_role_arn": READER_ARN}
    target.update(target_overrides)
    return parse_config({
        "source": {"account_id": SOURCE_ACCOUNT, "region": "cn-hangzhou", "instance_id": "cri-source0001"},
        "targets": [target],
    })


def good_trust(account: str = SOURCE_ACCOUNT) -> str:
    return json.dumps({"Version": "1", "Statement": [{
        "Action": "sts:AssumeRole", "Effect": "Allow",
        "Principal": {"Service": [f"{account}@cr.aliyuncs.com"]}}]})


def good_policy(region: str = "cn-beijing", account: str = TARGET_ACCOUNT,
                instance: str = "cri-target0001") -> str:
    return json.dumps({"Version": "1", "Statement": [{
        "Effect": "Allow", "Action": ["cr:CreateSyncRule", "cr:CreateRepositorySync"],
        "Resource": f"acs:cr:{region}:{account}:instance/{instance}"}]})


class FakeRam:
    """Account B's RAM as the Ram adapter shows it. ``deny`` names methods that raise AccessDenied."""

    API = {"get_role": "GetRole", "list_roles": "ListRoles", "list_policies_for_role": "ListPoliciesForRole",
           "get_policy": "GetPolicy"}

    def __init__(self):
        self.roles: dict[str, RoleInfo] = {}
        self.policies: dict[tuple[str, str], PolicyInfo] = {}
        self.attached: dict[str, list[tuple[str, str]]] = {}
        self.deny: set[str] = set()
        self.fail: Exception | None = None
        self.writes: list[str] = []
        self.calls_made: list[str] = []          # every read tried, in order (a failing one too)

    # -- setup helpers
    def add_role(self, name: str = SYNC_ROLE_NAME, trust: str | None = None) -> FakeRam:
        self.roles[name.lower()] = RoleInfo(name=name, arn=f"acs:ram::{TARGET_ACCOUNT}:role/{name.lower()}",
                                            trust_policy=trust if trust is not None else good_trust())
        self.attached.setdefault(name.lower(), [])
        return self

    def add_policy(self, name: str, document: str, type: str = "Custom",
                   attach_to: str | None = SYNC_ROLE_NAME):
        self.policies[(name, type)] = PolicyInfo(name=name, type=type, default_version="v1",
                                                 document=document)
        if attach_to:
            self.attached.setdefault(attach_to.lower(), []).append((name, type))
        return self

    def _gate(self, method: str) -> None:
        self.calls_made.append(self.API[method])
        if self.fail is not None:
            raise self.fail
        if method in self.deny:
            raise AccessDenied("You are not authorized to do this action.", service="ram",
                               action=self.API[method], code="NoPermission", http_status=403)

    # -- reads
    def get_role(self, name: str) -> RoleInfo | None:
        self._gate("get_role")
        return self.roles.get(name.lower())

    def list_roles(self) -> list[RoleInfo]:
        self._gate("list_roles")
        return list(self.roles.values())

    def list_policies_for_role(self, role_name: str) -> list[PolicyRef]:
        self._gate("list_policies_for_role")
        return [PolicyRef(name=n, type=t, default_version="v1")
                for n, t in self.attached.get(role_name.lower(), [])]

    def get_policy(self, name: str, type: str) -> PolicyInfo | None:
        self._gate("get_policy")
        return self.policies.get((name, type))

    # -- writes (apply)
    def create_role(self, name: str, trust_policy: str, description: str = "") -> RoleInfo:
        self.writes.append("CreateRole")
        self.add_role(name, trust_policy)
        return self.roles[name.lower()]

    def update_role_trust(self, name: str, trust_policy: str) -> RoleInfo:
        self.writes.append("UpdateRole")
        r = self.roles[name.lower()]
        self.roles[name.lower()] = dataclasses.replace(r, trust_policy=trust_policy)
        return self.roles[name.lower()]

    def create_policy(self, name: str, document: str, description: str = "") -> PolicyInfo:
        self.writes.append("CreatePolicy")
        self.add_policy(name, document, attach_to=None)
        return self.policies[(name, "Custom")]

    def create_policy_version(self, name: str, document: str, set_as_default: bool = True) -> None:
        self.writes.append("CreatePolicyVersion")
        p = self.policies[(name, "Custom")]
        self.policies[(name, "Custom")] = dataclasses.replace(p, document=document, default_version="v2")

    def attach_policy_to_role(self, policy_name: str, policy_type: str, role_name: str) -> None:
        self.writes.append("AttachPolicyToRole")
        self.attached.setdefault(role_name.lower(), []).append((policy_name, policy_type))


class FakeAcr:
    """One account's ACR as the Acr adapter shows it."""

    def __init__(self, account: str):
        self.account = account
        self.instances: dict[str, InstanceInfo] = {}
        self.namespaces: dict[tuple[str, str], NamespaceInfo] = {}
        self.repos: dict[tuple[str, str, str], RepoInfo] = {}
        self.deny: set[str] = set()
        self.fail: Exception | None = None
        self.calls_made: list[str] = []          # every read tried, in order (a failing one too)

    def add_instance(self, instance_id: str, edition: str = "Enterprise_Advanced") -> FakeAcr:
        self.instances[instance_id] = InstanceInfo(instance_id=instance_id, edition=edition)
        return self

    def add_namespace(self, instance_id: str, name: str, auto_create_repo: bool = True) -> FakeAcr:
        self.namespaces[(instance_id, name)] = NamespaceInfo(instance_id=instance_id, name=name,
                                                             auto_create_repo=auto_create_repo)
        return self

    def add_repo(self, instance_id: str, ns: str, name: str, type: str = "PRIVATE",
                 tag_immutability: bool = False) -> FakeAcr:
        self.add_namespace(instance_id, ns) if (instance_id, ns) not in self.namespaces else None
        self.repos[(instance_id, ns, name)] = RepoInfo(instance_id=instance_id, repo_id=f"crr-{ns}-{name}",
                                                       namespace=ns, name=name, type=type,
                                                       tag_immutability=tag_immutability)
        return self

    def _gate(self, api: str) -> None:
        self.calls_made.append(api)
        if self.fail is not None:
            raise self.fail
        if api in self.deny:
            raise AccessDenied("Access denied for this user.", service="cr", action=api, code="NoPrivilege",
                               http_status=403)

    def get_instance(self, instance_id: str) -> InstanceInfo:
        self._gate("GetInstance")
        if instance_id not in self.instances:
            raise NotFound("instance not found", service="cr", action="GetInstance",
                           code="INSTANCE_NOT_EXIST")
        return self.instances[instance_id]

    def get_namespace(self, instance_id: str, name: str) -> NamespaceInfo | None:
        self._gate("GetNamespace")
        return self.namespaces.get((instance_id, name))

    def list_namespaces(self, instance_id: str) -> list[NamespaceInfo]:
        self._gate("ListNamespace")
        return [n for (i, _), n in self.namespaces.items() if i == instance_id]

    def get_repository(self, instance_id: str, namespace: str, repo: str) -> RepoInfo | None:
        self._gate("GetRepository")
        return self.repos.get((instance_id, namespace, repo))


def healthy() -> tuple[FakeRam, FakeAcr, FakeAcr]:
    """Account B set up as the replication guide says, editions right."""
    ram = FakeRam().add_role()
    ram.add_policy("ACRCrossAccountSync", good_policy())      # made by hand, as the guide shows
    src = FakeAcr(SOURCE_ACCOUNT).add_instance("cri-source0001")
    dst = FakeAcr(TARGET_ACCOUNT).add_instance("cri-target0001", "Enterprise_Basic")
    return ram, src, dst
