"""STS rules: who may assume which role, for how long, and who the caller is.

AssumeRole needs two yeses: the caller's own permission (``sts:AssumeRole`` on the role ARN, checked by the
wire layer through ``ctx.authorize``) and the role's trust policy naming the caller's account root
(``acs:ram::<uid>:root``, meaning any RAM identity of that account) or the caller itself. An account's root
AccessKey can never assume a role: STS answers ``NoPermission`` "Roles may not be assumed by root accounts."
(https://www.alibabacloud.com/help/doc-detail/42775.htm); a RAM user or a role session must call it.
"""

from __future__ import annotations

import hashlib
import re

from localcloud import identity
from localcloud.policy import PolicyDocumentError, trust_allows, validate_document
from localcloud.ram.models import get_role
from localcloud.service import Caller, ServiceError
from localcloud.state import Role, World

ROLE_ARN = re.compile(r"acs:ram::(\d+):role/([A-Za-z0-9.\-]{1,64})")
SESSION_NAME = re.compile(r"[A-Za-z0-9.@_\-]{2,64}")
MIN_DURATION = 900
NOT_AUTHORIZED = "You are not authorized to do this action. You should be authorized by RAM."
ROOT_REFUSED = "Roles may not be assumed by root accounts."


def principal_arn(caller: Caller) -> str:
    """The ARN a trust policy names for this caller (a role session is named by its role)."""
    if caller.kind == "role":
        return f"acs:ram::{caller.account_id}:role/{caller.name}"
    return caller.arn


def parse_role_arn(role_arn: str) -> tuple[str, str]:
    m = ROLE_ARN.fullmatch(role_arn or "")
    if m is None:
        raise ServiceError(400, "InvalidParameter.RoleArn",
                           f"The parameter RoleArn {role_arn!r} is invalid: expected acs:ram::<account "
                           "id>:role/<name>.")
    return m.group(1), m.group(2)


def assume_role(world: World, caller: Caller, role_arn: str, session_name: str, duration: int,
                session_policy: str | None) -> tuple[identity.TemporaryCredential, Role]:
    if caller.kind == "root":
        raise ServiceError(403, "NoPermission", ROOT_REFUSED)
    account_id, role_name = parse_role_arn(role_arn)
    if not SESSION_NAME.fullmatch(session_name or ""):
        raise ServiceError(400, "InvalidParameter.RoleSessionName",
                           "RoleSessionName must be 2-64 characters of letters, digits and . @ _ -.")
    if world.account(account_id) is None:
        raise ServiceError(404, "EntityNotExist.Role", f"The role not exists: {role_arn}.")
    role = get_role(world, account_id, role_name)
    if not MIN_DURATION <= duration <= role.max_session_duration:
        raise ServiceError(400, "InvalidParameter.DurationSeconds",
                           f"DurationSeconds must be between {MIN_DURATION} and the role's "
                           f"MaxSessionDuration ({role.max_session_duration}).")
    if session_policy:
        try:
            validate_document(session_policy)
        except PolicyDocumentError as exc:
            raise ServiceError(400, "InvalidParameter.PolicyGrammar", f"The session Policy is "
                                                                      f"invalid: {exc}.") \
                from None
    if not trust_allows(role.trust_policy, ram_arn=principal_arn(caller),
                                         account_id=caller.account_id):
        raise ServiceError(403, "NoPermission", NOT_AUTHORIZED)
    cred = identity.issue(world, account_id=account_id, role_name=role.name, role_id=role.role_id,
                          session_name=session_name, duration=duration, session_policy=session_policy or None)
    return cred, role


def user_id(account_id: str, user_name: str) -> str:
    """A stable numeric id for a RAM user."""
    digest = hashlib.sha256(f"{account_id}/user/{user_name}".encode()).hexdigest()
    return "2" + str(int(digest[:16], 16)).rjust(18, "0")[-18:]


def caller_identity(world: World, caller: Caller) -> dict:
    """GetCallerIdentity's body for this caller."""
    base = {"AccountId": caller.account_id, "Arn": caller.arn}
    if caller.kind == "root":
        return {**base, "IdentityType": "Account", "PrincipalId": caller.account_id,
                "UserId": caller.account_id}
    if caller.kind == "user":
        uid = user_id(caller.account_id, caller.name)
        return {**base, "IdentityType": "RAMUser", "PrincipalId": uid, "UserId": uid}
    role = get_role(world, caller.account_id, caller.name)
    return {**base, "IdentityType": "AssumedRoleUser", "RoleId": role.role_id,
            "PrincipalId": f"{role.role_id}:{caller.session_name}"}
