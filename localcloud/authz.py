"""Authorization of a signed caller: may this identity do ``ram_action`` on ``resource``?

- Account root: everything on its own account's resources. ``sts:AssumeRole`` passes here so that STS itself
  gives its own answer: roles may not be assumed by root accounts (``localcloud.sts.models``).
- RAM user / assumed role: the union of its attached policies (Custom from its account, System shipped in
  ``localcloud/data``) evaluated by ``localcloud.policy``; an assumed role's session policy narrows it
  further.
Whether a resource of another account may be touched at all is the service's rule, not this module's.
"""

from __future__ import annotations

import re

from localcloud import identity, policy
from localcloud.ram.models import find_policy
from localcloud.service import Caller, RequestContext, ServiceError
from localcloud.state import World

_ARN_ACCOUNT = re.compile(r"acs:[^:]*:[^:]*:([^:]*):")


def caller_documents(world: World, caller: Caller) -> list[str]:
    """The identity policies that apply to a caller (empty for root, which needs none)."""
    account = world.account(caller.account_id)
    if account is None:
        return []
    if caller.kind == "user":
        names = account.users.get(caller.name, {}).get("policies", [])
        found = (find_policy(world, caller.account_id, name) for name in names)
        return [p.document for p in found if p is not None]
    if caller.kind == "role":
        return policy.role_documents(world, caller.account_id, caller.name)
    return []


def _own_resource(caller: Caller, resource: str) -> bool:
    m = _ARN_ACCOUNT.match(resource)
    return m is None or m.group(1) in ("", "*", caller.account_id)


def decide(world: World, caller: Caller, ram_action: str, resource: str) -> str:
    """``Allow`` / ``ExplicitDeny`` / ``ImplicitDeny`` for this caller."""
    if caller.kind == "root":
        if ram_action.lower() == "sts:assumerole" or _own_resource(caller, resource):
            return policy.ALLOW
        return policy.IMPLICIT_DENY
    verdict = policy.decide(caller_documents(world, caller), ram_action, resource)
    if verdict == policy.ALLOW and caller.kind == "role":
        cred = identity.sessions(world).by_key.get(caller.access_key_id)
        if cred is not None and cred.session_policy:
            verdict = policy.decide([cred.session_policy], ram_action, resource)
    return verdict


def check(ctx: RequestContext, ram_action: str, resource: str) -> None:
    """Raise the service's 403 unless the caller may do ``ram_action`` on ``resource``."""
    verdict = decide(ctx.world, ctx.caller, ram_action, resource)
    if verdict == policy.ALLOW:
        return
    detail = {
        "AuthAction": ram_action,
        "AuthPrincipalType": {"root": "Account", "user": "SubUser",
                              "role": "AssumedRoleUser"}[ctx.caller.kind],
        "AuthPrincipalOwnerId": ctx.caller.account_id,
        "AuthPrincipalDisplayName": ctx.caller.arn,
        "NoPermissionType": verdict,
        "PolicyType": "AccountLevelIdentityBasedPolicy",
        "EncodedDiagnosticMessage": "",
    }
    if ram_action.lower().startswith("cr:"):
        raise ServiceError(403, "NoPrivilege", "Access denied for this user.",
                           extra={"AccessDeniedDetail": detail})
    raise ServiceError(403, "NoPermission",
                       f"You are not authorized to do this action ({ram_action} on {resource}). "
                       f"You should be authorized by RAM.",
                       extra={"AccessDeniedDetail": detail})
