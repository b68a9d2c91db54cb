"""Domain objects read from ACR. The adapters in ``acrsync.cloud`` return these; the pure logic
(coverage, grants, reconcile decisions) reads only these, never SDK models. What RAM and STS return is in
``acrsync.roles`` (the push path never reads it).
"""

from __future__ import annotations

from dataclasses import field

from acrsync.value import Frozen, dataclass

# ---- ACR -----------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class InstanceInfo(Frozen):
    instance_id: str
    name: str = ""
    edition: str                      # InstanceSpecification: Enterprise_Basic|_Standard|_Advanced
    status: str = ""                  # RUNNING, ...
    region: str | None = None         # only ListInstance returns it


@dataclass(frozen=True, kw_only=True)
class NamespaceInfo(Frozen):
    instance_id: str
    name: str
    namespace_id: str = ""
    auto_create_repo: bool = False
    default_repo_type: str | None = None
    status: str = "NORMAL"


@dataclass(frozen=True, kw_only=True)
class RepoInfo(Frozen):
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


@dataclass(frozen=True, kw_only=True)
class TagInfo(Frozen):
    tag: str
    digest: str                       # as ACR returns it (bare hex)
    image_id: str = ""
    size: int = 0
    updated_ms: int = 0
    status: str = "NORMAL"


@dataclass(frozen=True, kw_only=True)
class SyncRule(Frozen):
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


@dataclass(frozen=True, kw_only=True)
class ImageSide(Frozen):
    instance_id: str = ""
    region: str = ""
    namespace: str = ""
    repo: str = ""
    tag: str = ""


@dataclass(frozen=True, kw_only=True)
class SyncTask(Frozen):
    """A sync task from GetRepoSyncTask or ListRepoSyncTask (whichever fields that call returns)."""

    task_id: str
    batch_id: str | None = None       # SyncBatchTaskId
    rule_id: str | None = None        # empty for manual tasks
    status: str                       # PENDING | SYNCHRONIZING | SUCCESS | ERROR | CANCELED
    trigger: str | None = None        # PASSIVE | INITIATIVE
    issue: str | None = None          # TaskIssue
    cross_user: bool = False
    progress: int | None = None       # 0/1, not a percentage
    synced_size: int | None = None
    source: ImageSide = field(default_factory=ImageSide)   # ImageFrom
    target: ImageSide = field(default_factory=ImageSide)   # ImageTo
    created_ms: int = 0
    modified_ms: int = 0              # ModifedTime (sic) or ModifiedTime
