"""STS (2015-04-01) adapter: AssumeRole into account B's reader role, and who-am-I."""

from __future__ import annotations

from datetime import datetime, timezone

from alibabacloud_sts20150401 import models as m

from acrsync.cloud.clients import Adapter, CloudSession, request
from acrsync.cloud.credentials import Creds
from acrsync.cloud.errors import CloudError
from acrsync.roles import CallerIdentity


def parse_expiration(value: str | None) -> float | None:
    """STS's ``YYYY-MM-DDThh:mm:ssZ`` (UTC) -> epoch seconds."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Sts(Adapter):
    service = "sts"

    def __init__(self, session: CloudSession, region: str | None = None):
        super().__init__(session, region, None)

    def assume_role(self, role_arn: str, session_name: str, duration_seconds: int = 3600) -> Creds:
        d = self._body("assume_role", request(m.AssumeRoleRequest, RoleArn=role_arn,
                                              RoleSessionName=session_name, DurationSeconds=duration_seconds))
        c = d.get("Credentials") or {}
        if not c.get("AccessKeyId") or not c.get("AccessKeySecret"):
            raise CloudError(f"AssumeRole of {role_arn} returned no credentials", service="sts",
                             action="AssumeRole", code="InvalidResponse", request_id=d.get("RequestId"))
        return Creds(c["AccessKeyId"], c["AccessKeySecret"], c.get("SecurityToken") or None,
                     parse_expiration(c.get("Expiration")))

    def get_caller_identity(self) -> CallerIdentity:
        d = self._body("get_caller_identity")
        return CallerIdentity(account_id=str(d.get("AccountId") or ""), arn=d.get("Arn") or "",
                              identity_type=d.get("IdentityType") or "")
