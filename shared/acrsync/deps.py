"""What one invocation's domain code talks to, typed by what it needs (Protocols), not by who provides it.

push, reconcile, compliance and backfill take one ``Deps``. The App builds it per invocation
(``App.deps(budget)``) from long-lived parts (config, ledger, caches) and per-invocation parts (the session
scoped to this invocation's ``Budget``, the ACR adapter made from it). Nothing in a ``Deps`` is replaced
while an invocation runs, and nothing of one invocation leaks into another: the grant check receives the
session it must run under (``deps.grants.verdict(target, deps.session)``).

Unit tests pass in-memory objects that satisfy these Protocols; integration tests pass the real adapters.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import field
from typing import TYPE_CHECKING, Protocol

from acrsync.clock import SYSTEM, Clock
from acrsync.cloud.retry import Budget
from acrsync.config import Config, Target
from acrsync.ledger import Ledger
from acrsync.model import RepoInfo, SyncRule, SyncTask, TagInfo
from acrsync.source import ImageResolver, RuleCache
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.cloud.acr import Acr
    from acrsync.cloud.ram import Ram
    from acrsync.grants.cache import Verdict


class SourceAcr(Protocol):
    """The source instance's ACR operations that push, reconcile and backfill call (``cloud.acr.Acr``)."""

    def get_repository(self, instance_id: str, namespace: str, repo: str) -> RepoInfo | None: ...

    def get_repo_tag(self, instance_id: str, repo_id: str, tag: str) -> TagInfo | None: ...

    def list_repositories(self, instance_id: str, namespace: str | None = None) -> Iterator[RepoInfo]: ...

    def list_repo_tag_page(self, instance_id: str, repo_id: str, page_no: int, *,
                           page_size: int = ...) -> tuple[list[TagInfo], int]: ...

    def list_repo_tags(self, instance_id: str, repo_id: str) -> Iterator[TagInfo]: ...

    def list_repo_sync_rules(self, instance_id: str) -> list[SyncRule]: ...

    def create_repo_sync_task(self, instance_id: str, repo_id: str, tag: str, *, target_region: str,
                              target_instance_id: str, target_namespace: str, target_repo: str,
                              target_tag: str, target_user_id: str | None = None, override: bool = False,
                              priority: int | None = None) -> str: ...

    def get_repo_sync_task(self, instance_id: str, task_id: str) -> SyncTask: ...

    def list_repo_sync_tasks(self, instance_id: str, *, namespace: str | None = None, repo: str | None = None,
                             tag: str | None = None, sync_record_id: str | None = None, page_no: int = 1,
                             page_size: int = 100) -> tuple[list[SyncTask], int]: ...

    def cancel_repo_sync_task(self, instance_id: str, task_id: str) -> None: ...


class Session(Protocol):
    """The cloud session an invocation runs under (``cloud.clients.CloudSession``): its budget, and adapters
    signed with its credentials or with a role it assumes."""

    @property
    def budget(self) -> Budget: ...

    def acr(self, region: str, role_arn: str | None = None) -> Acr: ...

    def ram(self, role_arn: str | None = None) -> Ram: ...


class GrantVerdicts(Protocol):
    """The grant check per target (``grants.GrantCache``), run under the caller's session."""

    def verdict(self, target: Target, session: Session) -> Verdict: ...


@dataclass(frozen=True)
class Deps(Frozen):
    """Everything one invocation of push, reconcile, compliance or backfill talks to."""

    config: Config
    ledger: Ledger
    session: Session             # this invocation's: its budget bounds every call and every loop
    acr: SourceAcr               # the source region's ACR, made from ``session``
    rules: RuleCache
    resolver: ImageResolver
    grants: GrantVerdicts
    clock: Clock = SYSTEM
    rand: random.Random = field(default_factory=random.Random)

    @property
    def budget(self) -> Budget:
        """The invocation's one deadline."""
        return self.session.budget
