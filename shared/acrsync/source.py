"""What the push path reads from the source instance, cached so that a warm function instance spends
its OpenAPI calls on CreateRepoSyncTask and nothing else. The caches outlive an invocation; the ACR
adapter does not (its credentials come with each invocation), so it is passed in per call.

- sync rules (ListRepoSyncRule), for the coverage decision, with a TTL;
- repository ids (GetRepository), which never change for a repository;
- tag digests (GetRepoTag), only when the event did not carry one.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from acrsync import codec
from acrsync.clock import SYSTEM, Clock
from acrsync.errors import AcrsyncError
from acrsync.model import RepoInfo, SyncRule, TagInfo
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.deps import SourceAcr
    from acrsync.grants.cache import SharedValues

log = logging.getLogger("acrsync.source")


@dataclass(frozen=True, kw_only=True)
class SharedRules(Frozen):
    """The rules as one instance read them, published for the others (``RuleCache``)."""

    instance_id: str
    read_at: float
    rules: list[SyncRule]


class RuleCache:
    """The source instance's sync rules (direction FROM), re-read after ``ttl`` seconds.

    With a ``shared`` store (the ledger) the rules one instance read are published for the same ``ttl``, so
    a cold instance takes them with its other shared reads (``seed``) and its first push spends no
    ListRepoSyncRule: a rule created meanwhile is seen within ``ttl``, as on a warm instance.
    """

    def __init__(self, instance_id: str, ttl: float, clock: Clock = SYSTEM,
                 shared: SharedValues | None = None):
        self._instance_id = instance_id
        self._ttl = ttl
        self._clock = clock
        self._shared = shared
        self._rules: list[SyncRule] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    @property
    def shared_name(self) -> str:
        return f"rules/{self._instance_id}"

    def wants(self) -> str | None:
        """The shared name to read when this instance holds no fresh rules."""
        with self._lock:
            return None if self._fresh(self._clock.now()) else self.shared_name

    def _fresh(self, now: float) -> bool:
        return self._rules is not None and now - self._read_at < self._ttl

    def seed(self, doc: str) -> bool:
        """Take rules read from the shared store along with other values (``Ledger.shared_many``)."""
        try:
            got = codec.loads(SharedRules, doc)
        except (AcrsyncError, ValueError) as e:
            log.warning("shared sync rules not readable (%s); reading them from ACR", e)
            return False
        now = self._clock.now()
        if got.instance_id != self._instance_id or not 0 <= now - got.read_at < self._ttl:
            return False
        with self._lock:
            self._rules, self._read_at = list(got.rules), got.read_at
        return True

    def rules(self, acr: SourceAcr) -> list[SyncRule]:
        """The cached rules; ``acr`` (this invocation's adapter) is used only when they are re-read."""
        with self._lock:
            now = self._clock.now()
            if self._fresh(now):
                assert self._rules is not None
                return self._rules
            rules = acr.list_repo_sync_rules(self._instance_id)
            self._rules = [r for r in rules if (r.direction or "FROM").upper() == "FROM"]
            self._read_at = now
            fresh = self._rules
        self._publish(fresh, now)
        return fresh

    def _publish(self, rules: list[SyncRule], now: float) -> None:
        if self._shared is None or self._ttl <= 0:
            return
        doc = codec.dumps(SharedRules(instance_id=self._instance_id, read_at=now, rules=rules))
        try:
            self._shared.share(self.shared_name, doc, ttl=self._ttl, now=now)
        except AcrsyncError as e:
            log.warning("sync rules not shared (%s); other instances read them themselves", e)

    def invalidate(self) -> None:
        with self._lock:
            self._rules = None


@dataclass(frozen=True)
class ResolvedImage(Frozen):
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
