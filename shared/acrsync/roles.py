"""Domain objects read from RAM and STS: roles, their policies, the caller. The grant check reads these
(never SDK models); the push path does not, so they are apart from ``acrsync.model``.
"""

from __future__ import annotations

from acrsync.value import Frozen, dataclass


@dataclass(frozen=True, kw_only=True)
class RoleInfo(Frozen):
    name: str
    arn: str = ""
    role_id: str = ""
    trust_policy: str                 # AssumeRolePolicyDocument, JSON text
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class PolicyRef(Frozen):
    name: str
    type: str                         # System | Custom
    default_version: str = ""


@dataclass(frozen=True, kw_only=True)
class PolicyInfo(Frozen):
    name: str
    type: str
    default_version: str = ""
    document: str                     # DefaultPolicyVersion.PolicyDocument, JSON text


@dataclass(frozen=True, kw_only=True)
class CallerIdentity(Frozen):
    account_id: str
    arn: str = ""
    identity_type: str = ""
