"""RAM (2015-05-01) adapter: roles and policies in account B, read for grant checks and written by
`acrsync grants apply`. RAM is global: the session pins its endpoint to ram.aliyuncs.com.
"""

from __future__ import annotations

from typing import Any

from alibabacloud_ram20150501 import models as m

from acrsync.cloud.clients import Adapter, CloudSession, request
from acrsync.cloud.errors import NotFound
from acrsync.roles import PolicyInfo, PolicyRef, RoleInfo

LIST_ROLES_PAGE = 1000     # ListRoles MaxItems upper bound


def _role(d: dict[str, Any] | None) -> RoleInfo:
    d = d or {}
    return RoleInfo(name=d.get("RoleName") or "", arn=d.get("Arn") or "", role_id=d.get("RoleId") or "",
                    trust_policy=d.get("AssumeRolePolicyDocument") or "",
                    description=d.get("Description") or "")


class Ram(Adapter):
    """RAM as the session's keys, or as ``role_arn`` (the reader role in account B)."""

    service = "ram"

    def __init__(self, session: CloudSession, role_arn: str | None = None):
        super().__init__(session, None, role_arn)

    def _absent(self, e: NotFound) -> bool:
        """A NotFound from RAM itself means the thing asked about is absent. One from STS (the role this
        adapter signs as cannot be assumed) means nothing of the sort: the caller must see it."""
        return e.service == self.service

    def get_role(self, name: str) -> RoleInfo | None:
        """None when the role does not exist (EntityNotExist.Role)."""
        try:
            d = self._body("get_role", request(m.GetRoleRequest, RoleName=name))
        except NotFound as e:
            if not self._absent(e):
                raise
            return None
        return _role(d.get("Role"))

    def list_roles(self) -> list[RoleInfo]:
        out: list[RoleInfo] = []
        marker = None
        while True:
            d = self._body("list_roles", request(m.ListRolesRequest, Marker=marker, MaxItems=LIST_ROLES_PAGE))
            out.extend(_role(r) for r in (d.get("Roles") or {}).get("Role") or [])
            marker = d.get("Marker")
            if not d.get("IsTruncated") or not marker:
                return out

    def list_policies_for_role(self, role_name: str) -> list[PolicyRef]:
        d = self._body("list_policies_for_role", request(m.ListPoliciesForRoleRequest, RoleName=role_name))
        return [PolicyRef(name=p.get("PolicyName") or "", type=p.get("PolicyType") or "",
                          default_version=p.get("DefaultVersion") or "")
                for p in (d.get("Policies") or {}).get("Policy") or []]

    def get_policy(self, name: str, type: str) -> PolicyInfo | None:
        """The policy with its default version's document; None when it does not exist."""
        try:
            d = self._body("get_policy", request(m.GetPolicyRequest, PolicyName=name, PolicyType=type))
        except NotFound as e:
            if not self._absent(e):
                raise
            return None
        p = d.get("Policy") or {}
        v = d.get("DefaultPolicyVersion") or {}
        return PolicyInfo(name=p.get("PolicyName") or name, type=p.get("PolicyType") or type,
                          default_version=v.get("VersionId") or p.get("DefaultVersion") or "",
                          # Policy.PolicyDocument is deprecated; the fallback when the version is missing
                          document=v.get("PolicyDocument") or p.get("PolicyDocument") or "")

    def create_role(self, name: str, trust_policy: str, description: str = "") -> RoleInfo:
        d = self._body("create_role", request(m.CreateRoleRequest, RoleName=name,
                                              AssumeRolePolicyDocument=trust_policy,
                                              Description=description or None))
        return _role(d.get("Role"))

    def update_role_trust(self, name: str, trust_policy: str) -> RoleInfo:
        d = self._body("update_role", request(m.UpdateRoleRequest, RoleName=name,
                                              NewAssumeRolePolicyDocument=trust_policy))
        return _role(d.get("Role"))

    def create_policy(self, name: str, document: str, description: str = "") -> PolicyInfo:
        d = self._body("create_policy", request(m.CreatePolicyRequest, PolicyName=name,
                                                PolicyDocument=document, Description=description or None))
        p = d.get("Policy") or {}
        return PolicyInfo(name=p.get("PolicyName") or name, type=p.get("PolicyType") or "Custom",
                          default_version=p.get("DefaultVersion") or "v1", document=document)

    def create_policy_version(self, name: str, document: str, set_as_default: bool = True) -> None:
        """A new version; the oldest non-default one is dropped when RAM's 5-version limit is reached."""
        self._body("create_policy_version", request(
            m.CreatePolicyVersionRequest, PolicyName=name, PolicyDocument=document,
            SetAsDefault=set_as_default, RotateStrategy="DeleteOldestNonDefaultVersionWhenLimitExceeded"))

    def attach_policy_to_role(self, policy_name: str, policy_type: str, role_name: str) -> None:
        self._body("attach_policy_to_role", request(m.AttachPolicyToRoleRequest, PolicyName=policy_name,
                                                    PolicyType=policy_type, RoleName=role_name))

    def detach_policy_from_role(self, policy_name: str, policy_type: str, role_name: str) -> None:
        """Detach only: the policy itself stays (other roles or users may use it)."""
        self._body("detach_policy_from_role", request(m.DetachPolicyFromRoleRequest, PolicyName=policy_name,
                                                      PolicyType=policy_type, RoleName=role_name))
