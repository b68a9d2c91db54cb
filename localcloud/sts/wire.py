"""STS 2015-04-01 over the wire (also the GET form the credentials library's ram_role_arn provider sends)."""

from __future__ import annotations

from localcloud.clock import iso
from localcloud.service import Handler, RequestContext, int_param, required_param
from localcloud.sts import models


def assume_role(ctx: RequestContext, params: dict[str, str]) -> dict:
    role_arn = required_param(params, "RoleArn")
    session_name = required_param(params, "RoleSessionName")
    models.parse_role_arn(role_arn)
    ctx.authorize("sts:AssumeRole", role_arn)
    cred, role = models.assume_role(ctx.world, ctx.caller, role_arn, session_name,
                                    int_param(params, "DurationSeconds", 3600), params.get("Policy"))
    return {
        "Credentials": {"AccessKeyId": cred.access_key_id, "AccessKeySecret": cred.secret,
                        "SecurityToken": cred.token, "Expiration": iso(cred.expires)},
        "AssumedRoleUser": {"Arn": f"acs:ram::{role.account_id}:assumed-role/{role.name}/{session_name}",
                            "AssumedRoleId": f"{role.role_id}:{session_name}"},
    }


def get_caller_identity(ctx: RequestContext, params: dict[str, str]) -> dict:
    return models.caller_identity(ctx.world, ctx.caller)


ACTIONS: dict[str, Handler] = {
    "AssumeRole": assume_role,
    "GetCallerIdentity": get_caller_identity,
}
