"""The push path's view of the grant check: one verdict per target, cached in memory and shared.

A clean verdict is trusted for ``grants.cache_ttl_seconds``; a verdict with errors only for
``grants.blocked_ttl_seconds``, so that once someone fixes the grant, pushes stop being BLOCKED within
minutes instead of waiting out the long TTL. With a ``shared`` store (the ledger), a verdict is also
published for that long, so a cold function instance (a burst of pushes starts many) reads it with one
ledger read instead of re-running the whole check (an AssumeRole into account B, then RAM and ACR reads).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Protocol

from acrsync import codec
from acrsync.clock import SYSTEM, Clock
from acrsync.config import GrantsConfig, Target
from acrsync.errors import AcrsyncError
from acrsync.grants.findings import Finding, blocking
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.deps import Session


@dataclass(frozen=True, kw_only=True)
class Verdict(Frozen):
    target: str
    clean: bool                       # no blocking findings (advisory warnings and info allowed)
    findings: list[Finding] = field(default_factory=list)
    checked_at: float
    expires_at: float


Checker = Callable[[Target, "Session"], list[Finding]]
"""``checker(target, session)``: the findings for one target, read under the caller's session."""
log = logging.getLogger("acrsync.grants")


class SharedValues(Protocol):
    """Values shared between instances with a time to live (the ledger: ``share`` / ``shared``)."""

    def share(self, name: str, doc: str, *, ttl: float, now: float) -> None: ...

    def shared(self, name: str, *, now: float) -> str | None: ...


def shared_name(target: Target) -> str:
    """Keyed by the target's whole configuration: a changed target never trusts an old verdict."""
    digest = hashlib.sha256(codec.dumps(target).encode()).hexdigest()[:16]
    return f"grants/{target.name}/{digest}"


class GrantCache:
    """``verdict(target, session)`` runs ``checker(target, session)`` at most once per TTL per target.

    The cache is shared by the invocations of an instance; the session is not: each check runs under the
    session (budget, credentials) of the invocation that asked for it.
    """

    def __init__(self, checker: Checker, settings: GrantsConfig | None = None, clock: Clock = SYSTEM,
                 shared: SharedValues | None = None):
        self._checker = checker
        self._shared = shared
        self._settings = settings or GrantsConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._verdicts: dict[str, Verdict] = {}
        self._read_together: set[str] = set()   # targets whose shared read ``seed`` just made, to no avail
        self.checks = 0                      # how many times the checker ran (for logs and tests)

    def verdict(self, target: Target, session: Session) -> Verdict:
        now = self._clock.now()
        with self._lock:
            cached = self._verdicts.get(target.name)
            if cached is not None and now < cached.expires_at:
                return cached
            already_read = target.name in self._read_together
            self._read_together.discard(target.name)
        v = None if already_read else self._read_shared(target, now)
        if v is None:
            findings = self._checker(target, session)
            clean = not blocking(findings)
            ttl = self._settings.cache_ttl_seconds if clean else self._settings.blocked_ttl_seconds
            v = Verdict(target=target.name, clean=clean, findings=findings, checked_at=now,
                        expires_at=now + ttl)
            self._publish(target, v, ttl, now)
            with self._lock:
                self.checks += 1
        with self._lock:
            self._verdicts[target.name] = v
        return v

    def wants(self, target: Target) -> str | None:
        """The shared name to read for ``target`` when this instance holds no valid verdict for it."""
        with self._lock:
            cached = self._verdicts.get(target.name)
        return None if cached is not None and self._clock.now() < cached.expires_at else shared_name(target)

    def seed(self, target: Target, doc: str | None) -> bool:
        """Take what a shared read made along with other values (``Ledger.shared_many``) found for
        ``target``: the published verdict, or None. Either way ``verdict`` does not read it again."""
        v = self._usable(target, doc, self._clock.now()) if doc else None
        with self._lock:
            if v is None:
                self._read_together.add(target.name)
                return False
            self._verdicts[target.name] = v
        return True

    def _read_shared(self, target: Target, now: float) -> Verdict | None:
        """The verdict another instance published, if still valid; None (check again) on any doubt."""
        if self._shared is None:
            return None
        try:
            doc = self._shared.shared(shared_name(target), now=now)
        except AcrsyncError as e:     # the store is an optimisation: never let it fail a push
            log.warning("shared grant verdict for %s not readable (%s); checking again", target.name, e)
            return None
        return self._usable(target, doc, now) if doc else None

    @staticmethod
    def _usable(target: Target, doc: str, now: float) -> Verdict | None:
        try:
            v = codec.loads(Verdict, doc)
        except (AcrsyncError, ValueError) as e:
            log.warning("shared grant verdict for %s not readable (%s); checking again", target.name, e)
            return None
        return v if v.target == target.name and now < v.expires_at else None

    def _publish(self, target: Target, v: Verdict, ttl: float, now: float) -> None:
        if self._shared is None or ttl <= 0:
            return
        try:
            self._shared.share(shared_name(target), codec.dumps(v), ttl=ttl, now=now)
        except AcrsyncError as e:
            log.warning("grant verdict for %s not shared (%s); other instances check for themselves",
                        target.name, e)

    def invalidate(self, target_name: str | None = None) -> None:
        """Forget one target's verdict (or all), e.g. right after `grants apply`."""
        with self._lock:
            if target_name is None:
                self._verdicts.clear()
            else:
                self._verdicts.pop(target_name, None)
