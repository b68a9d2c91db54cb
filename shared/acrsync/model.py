"""Domain objects read from ACR and RAM. The adapters in ``acrsync.cloud`` return these; the pure
logic (coverage, grants, reconcile decisions) reads only these, never SDK models.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---- ACR -----------------------------------------------------------------------------------------

class InstanceInfo(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    instance_id: str
    name: str = ""
    edition: str                      # InstanceSpecification: Enterprise_Basic|_Standard|_Advanced
    status: str = ""                  # RUNNING, ...
    region: str | None = None         # only ListInstance returns it


class NamespaceInfo(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    instance_id: str
    name: str
    namespace_id: str = ""
    auto_create_repo: bool = False
    default_repo_type: str | None = None
    status: str = "NORMAL"


class RepoInfo(_Frozen):
    instance_id: str
    repo_id: str
    namespace: str
    name: str
    type: str = "PRIVATE"             # PUBLIC | PRIVATE
    tag_immutability: bool = False
    status: str = "NORMAL"

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.name}"


class TagInfo(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    tag: str
    digest: str                       # as ACR returns it (bare hex)
    image_id: str = ""
    size: int = 0
    updated_ms: int = 0
    status: str = "NORMAL"


class SyncRule(_Frozen):
    """A sync rule as ListRepoSyncRule returns it. Note: it carries no TargetUserId (only CrossUser)."""

    rule_id: str
    name: str = ""
    scope: str                        # REPO | NAMESPACE | INSTANCE
    trigger: str = "PASSIVE"          # PASSIVE (on push) | INITIATIVE (manual)
    direction: str = "FROM"           # FROM: this instance is the source
    local_instance_id: str
    local_region: str = ""
    local_namespace: str | None = None
    local_repo: str | None = None
    namespace_filter: str | None = None   # regex (INSTANCE scope)
    repo_filter: str | None = None        # regex (INSTANCE or NAMESPACE scope)
    tag_filter: str = ".*"
    target_instance_id: str
    target_region: str
    target_namespace: str | None = None
    target_repo: str | None = None
    cross_user: bool = False
    create_time_ms: int = 0


class ImageSide(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    instance_id: str = ""
    region: str = ""
    namespace: str = ""
    repo: str = ""
    tag: str = ""


class SyncTask(_Frozen):
    """A sync task from GetRepoSyncTask or ListRepoSyncTask (whichever fields that call returns)."""

    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    task_id: str
    batch_id: str | None = None       # SyncBatchTaskId
    rule_id: str | None = None        # empty for manual tasks
    status: str                       # PENDING | SYNCHRONIZING | SUCCESS | ERROR | CANCELED
    trigger: str | None = None        # PASSIVE | INITIATIVE
    issue: str | None = None          # TaskIssue
    cross_user: bool = False
    progress: int | None = None       # 0/1, not a percentage
    synced_size: int | None = None
    source: ImageSide = Field(default_factory=ImageSide)   # ImageFrom
    target: ImageSide = Field(default_factory=ImageSide)   # ImageTo
    created_ms: int = 0
    modified_ms: int = 0              # ModifedTime (sic) or ModifiedTime


# ---- RAM -----------------------------------------------------------------------------------------

class RoleInfo(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    name: str
    arn: str = ""
    role_id: str = ""
    trust_policy: str                 # AssumeRolePolicyDocument, JSON text
    description: str = ""


class PolicyRef(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    name: str
    type: str                         # System | Custom
    default_version: str = ""


class PolicyInfo(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    name: str
    type: str
    default_version: str = ""
    document: str                     # DefaultPolicyVersion.PolicyDocument, JSON text


class CallerIdentity(_Frozen):
    model_config = ConfigDict(defer_build=True)   # not validated on a push: built on first use
    account_id: str
    arn: str = ""
    identity_type: str = ""
