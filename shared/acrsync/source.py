"""What the push path reads from the source instance, cached so that a warm function instance spends
its OpenAPI calls on CreateRepoSyncTask and nothing else. The caches outlive an invocation; the ACR
adapter does not (its credentials come with each invocation), so it is passed in per call.

- sync rules (ListRepoSyncRule), for the coverage decision, with a TTL;
- repository ids (GetRepository), which never change for a repository;
- tag digests (GetRepoTag), only when the event did not carry one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acrsync.clock import SYSTEM, Clock
from acrsync.model import RepoInfo, SyncRule, TagInfo

if TYPE_CHECKING:
    from acrsync.deps import SourceAcr


class RuleCache:
    """The source instance's sync rules (direction FROM), re-read after ``ttl`` seconds."""

    def __init__(self, instance_id: str, ttl: float, clock: Clock = SYSTEM):
        self._instance_id = instance_id
        self._ttl = ttl
        self._clock = clock
        self._rules: list[SyncRule] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def rules(self, acr: SourceAcr) -> list[SyncRule]:
        """The cached rules; ``acr`` (this invocation's adapter) is used only when they are re-read."""
        with self._lock:
            now = self._clock.now()
            if self._rules is None or now - self._read_at >= self._ttl:
                rules = acr.list_repo_sync_rules(self._instance_id)
                self._rules = [r for r in rules if (r.direction or "FROM").upper() == "FROM"]
                self._read_at = now
            return self._rules

    def invalidate(self) -> None:
        with self._lock:
            self._rules = None


@dataclass(frozen=True)
class ResolvedImage:
    repo: RepoInfo
    digest: str | None


class ImageResolver:
    """Fills in what a push event may lack: the repository id and the digest of the tag."""

    def __init__(self, instance_id: str):
        self._instance_id = instance_id
        self._repos: dict[tuple[str, str], RepoInfo] = {}
        self._lock = threading.Lock()

    def repository(self, acr: SourceAcr, namespace: str, repo: str,
                   repo_id: str | None = None) -> RepoInfo | None:
        key = (namespace, repo)
        with self._lock:
            hit = self._repos.get(key)
        if hit is not None:
            return hit
        info: RepoInfo | None
        if repo_id:
            # The event named the id: trust it and spare a call; settings are read only when needed.
            info = RepoInfo(instance_id=self._instance_id, repo_id=repo_id, namespace=namespace, name=repo)
        else:
            info = acr.get_repository(self._instance_id, namespace, repo)
            if info is None:
                return None
        with self._lock:
            self._repos[key] = info
        return info

    def tag(self, acr: SourceAcr, repo: RepoInfo, tag: str) -> TagInfo | None:
        return acr.get_repo_tag(self._instance_id, repo.repo_id, tag)

    def refresh(self, acr: SourceAcr, namespace: str, repo: str) -> RepoInfo | None:
        """Look the repository up by name again (an event's RepoId may be stale or wrong)."""
        self.forget(namespace, repo)
        return self.repository(acr, namespace, repo)

    def forget(self, namespace: str, repo: str) -> None:
        """Drop a cached repository (e.g. it was deleted and re-created with a new id)."""
        with self._lock:
            self._repos.pop((namespace, repo), None)
