"""RAM 2015-05-01 over the wire: read the query parameters, authorise, call ``models``, shape the reply.

Reply shapes follow the ``alibabacloud_ram20150501`` response models (e.g. ``Policies: {Policy: [...]}``).
Every action acts on the caller's own account, as RAM does.
"""

from __future__ import annotations

from localcloud.ram import models
from localcloud.service import Handler, RequestContext, ServiceError, bool_param, int_param, required_param
from localcloud.state import Policy, PolicyVersion, Role


def _role_arn(ctx: RequestContext, name: str) -> str:
    return f"acs:ram::{ctx.caller.account_id}:role/{name}"


def _policy_arn(ctx: RequestContext, name: str) -> str:
    return f"acs:ram::{ctx.caller.account_id}:policy/{name}"


def _role(role: Role, *, with_trust: bool = True) -> dict:
    out = {
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "Description": role.description,
        "MaxSessionDuration": role.max_session_duration,
        "CreateDate": role.create_date,
        "UpdateDate": role.update_date,
        "IsServiceLinkedRole": False,
        "AllowConsoleLogin": False,
        "RolePrincipalName": f"{role.name}@role.{role.account_id}.onaliyunservice.com",
    }
    if with_trust:
        out["AssumeRolePolicyDocument"] = role.trust_policy
    return out


def _version(policy: Policy, version: PolicyVersion) -> dict:
    return {"VersionId": version.version_id, "IsDefaultVersion": version.version_id == policy.default_version,
            "PolicyDocument": version.document, "CreateDate": version.create_date}


def _policy(ctx: RequestContext, policy: Policy) -> dict:
    return {
        "PolicyName": policy.name,
        "PolicyType": policy.type,
        "Description": policy.description,
        "DefaultVersion": policy.default_version,
        "AttachmentCount": models.attachment_count(ctx.world, ctx.caller.account_id, policy),
        "CreateDate": policy.create_date,
        "UpdateDate": policy.update_date,
        "PolicyDocument": policy.document,
    }


def get_role(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "RoleName")
    ctx.authorize("ram:GetRole", _role_arn(ctx, name))
    return {"Role": _role(models.get_role(ctx.world, ctx.caller.account_id, name))}


def list_roles(ctx: RequestContext, params: dict[str, str]) -> dict:
    ctx.authorize("ram:ListRoles", _role_arn(ctx, "*"))
    max_items = int_param(params, "MaxItems", 100)
    if not 1 <= max_items <= 1000:
        raise ServiceError(400, "InvalidParameter.MaxItems", "MaxItems must be between 1 and 1000.")
    marker = params.get("Marker") or "0"
    if not marker.isdigit():
        raise ServiceError(400, "InvalidParameter.Marker", f"The Marker {marker!r} was not issued by "
                                                           "ListRoles.")
    roles = models.list_roles(ctx.world, ctx.caller.account_id)
    start = int(marker)
    page = roles[start:start + max_items]
    truncated = start + max_items < len(roles)
    out = {"IsTruncated": truncated, "Roles": {"Role": [_role(r, with_trust=False) for r in page]}}
    if truncated:
        out["Marker"] = str(start + max_items)
    return out


def create_role(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "RoleName")
    ctx.authorize("ram:CreateRole", _role_arn(ctx, name))
    role = models.create_role(ctx.world, ctx.caller.account_id, name,
                              required_param(params, "AssumeRolePolicyDocument"),
                              description=params.get("Description", ""),
                              max_session_duration=int_param(params, "MaxSessionDuration"))
    return {"Role": _role(role)}


def update_role(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "RoleName")
    ctx.authorize("ram:UpdateRole", _role_arn(ctx, name))
    role = models.update_role(ctx.world, ctx.caller.account_id, name,
                              trust_policy=params.get("NewAssumeRolePolicyDocument") or None,
                              description=params.get("NewDescription"),
                              max_session_duration=int_param(params, "NewMaxSessionDuration"))
    return {"Role": _role(role)}


def list_policies_for_role(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "RoleName")
    ctx.authorize("ram:ListPoliciesForRole", _role_arn(ctx, name))
    role = models.get_role(ctx.world, ctx.caller.account_id, name)
    items = []
    for policy_name, policy_type in role.attached:
        policy = models.find_policy(ctx.world, ctx.caller.account_id, policy_name, policy_type)
        if policy is None:
            continue
        items.append({"PolicyName": policy.name, "PolicyType": policy.type, "Description": policy.description,
                      "DefaultVersion": policy.default_version,
                      "AttachDate": role.attach_dates.get((policy_name, policy_type), role.create_date)})
    return {"Policies": {"Policy": items}}


def _policy_type(params: dict[str, str]) -> str:
    return models.check_policy_type(required_param(params, "PolicyType"))


def get_policy(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "PolicyName")
    ctx.authorize("ram:GetPolicy", _policy_arn(ctx, name))
    policy = models.get_policy(ctx.world, ctx.caller.account_id, name, _policy_type(params))
    default = policy.versions[policy.default_version]
    return {"Policy": _policy(ctx, policy), "DefaultPolicyVersion": _version(policy, default)}


def get_policy_version(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "PolicyName")
    ctx.authorize("ram:GetPolicyVersion", _policy_arn(ctx, name))
    policy_type = _policy_type(params)
    version = models.get_policy_version(ctx.world, ctx.caller.account_id, name, policy_type,
                                        required_param(params, "VersionId"))
    policy = models.get_policy(ctx.world, ctx.caller.account_id, name, policy_type)
    return {"PolicyVersion": _version(policy, version)}


def list_policy_versions(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "PolicyName")
    ctx.authorize("ram:ListPolicyVersions", _policy_arn(ctx, name))
    policy = models.get_policy(ctx.world, ctx.caller.account_id, name, _policy_type(params))
    versions = sorted(policy.versions.values(), key=lambda v: -models.version_number(v.version_id))
    return {"PolicyVersions": {"PolicyVersion": [_version(policy, v) for v in versions]}}


def create_policy(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "PolicyName")
    ctx.authorize("ram:CreatePolicy", _policy_arn(ctx, name))
    policy = models.create_policy(ctx.world, ctx.caller.account_id, name, required_param(params,
                                                                                         "PolicyDocument"),
                                  description=params.get("Description", ""))
    return {"Policy": {"PolicyName": policy.name, "PolicyType": policy.type,
                       "Description": policy.description,
                       "DefaultVersion": policy.default_version, "CreateDate": policy.create_date}}


def create_policy_version(ctx: RequestContext, params: dict[str, str]) -> dict:
    name = required_param(params, "PolicyName")
    ctx.authorize("ram:CreatePolicyVersion", _policy_arn(ctx, name))
    version = models.create_policy_version(
        ctx.world, ctx.caller.account_id, name, required_param(params, "PolicyDocument"),
        set_as_default=bool(bool_param(params, "SetAsDefault", False)),
        rotate_strategy=params.get("RotateStrategy"))
    policy = models.get_policy(ctx.world, ctx.caller.account_id, name, "Custom")
    return {"PolicyVersion": _version(policy, version)}


def attach_policy_to_role(ctx: RequestContext, params: dict[str, str]) -> dict:
    role_name = required_param(params, "RoleName")
    ctx.authorize("ram:AttachPolicyToRole", _role_arn(ctx, role_name))
    models.attach_policy_to_role(ctx.world, ctx.caller.account_id, required_param(params, "PolicyName"),
                                 _policy_type(params), role_name)
    return {}


def detach_policy_from_role(ctx: RequestContext, params: dict[str, str]) -> dict:
    role_name = required_param(params, "RoleName")
    ctx.authorize("ram:DetachPolicyFromRole", _role_arn(ctx, role_name))
    models.detach_policy_from_role(ctx.world, ctx.caller.account_id, required_param(params, "PolicyName"),
                                   _policy_type(params), role_name)
    return {}


ACTIONS: dict[str, Handler] = {
    "GetRole": get_role,
    "ListRoles": list_roles,
    "CreateRole": create_role,
    "UpdateRole": update_role,
    "ListPoliciesForRole": list_policies_for_role,
    "GetPolicy": get_policy,
    "GetPolicyVersion": get_policy_version,
    "ListPolicyVersions": list_policy_versions,
    "CreatePolicy": create_policy,
    "CreatePolicyVersion": create_policy_version,
    "AttachPolicyToRole": attach_policy_to_role,
    "DetachPolicyFromRole": detach_policy_from_role,
}
