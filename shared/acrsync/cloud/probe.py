"""One cheap call before many: is the cloud there, and does it accept these keys?

A check that makes twenty calls against a closed port or with a wrong key would report the same
failure twenty times, each after its own retries. ``probe`` makes one STS GetCallerIdentity (it needs
no RAM permission: https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-getcalleridentity)
and names the one problem, so the caller can stop there.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from acrsync.cloud.errors import CredentialsInvalid, Unreachable
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.cloud.clients import CloudSession


class Problem(str, Enum):
    CLOUD_UNREACHABLE = "CLOUD_UNREACHABLE"
    CREDENTIALS_INVALID = "CREDENTIALS_INVALID"


@dataclass(frozen=True)
class ProbeResult(Frozen):
    problem: Problem | None
    message: str = ""
    fix: str = ""
    account_id: str | None = None      # whose keys these are, when the cloud answered
    error: Exception | None = None     # the failure itself (its trace, for --debug)

    @property
    def ok(self) -> bool:
        return self.problem is None


def probe(session: CloudSession, region: str | None, *, expected_account: str | None = None) -> ProbeResult:
    """GetCallerIdentity with ``session``'s keys. A missing key raises NoCredentials (a config error)."""
    try:
        me = session.sts(region).get_caller_identity()
    except Unreachable as e:
        where = e.endpoint or session.endpoint_for("sts", None) or f"sts.{region or 'aliyuncs'}.aliyuncs.com"
        return ProbeResult(Problem.CLOUD_UNREACHABLE,
                           f"cannot reach {where}: nothing answers there "
                           "(connection refused or no such host)",
                           "check --endpoint / ACRSYNC_ENDPOINT, --region and the network, then run it again",
                           error=e)
    except CredentialsInvalid as e:
        key = e.access_key_id = session.credentials().access_key_id
        whose = f" (expected a RAM user of account {expected_account})" if expected_account else ""
        return ProbeResult(Problem.CREDENTIALS_INVALID,
                           f"the access key {key}{whose} was refused: {e.code}: {e.message}",
                           "use a valid AccessKey pair of a RAM user (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or "
                           "--profile); an STS token also needs ALIBABA_CLOUD_SECURITY_TOKEN", error=e)
    return ProbeResult(None, account_id=me.account_id)
