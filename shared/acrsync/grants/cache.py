"""The push path's view of the grant check: one verdict per target, cached in memory.

A clean verdict is trusted for ``grants.cache_ttl_seconds``; a verdict with errors only for
``grants.blocked_ttl_seconds``, so that once someone fixes the grant, pushes stop being BLOCKED within
minutes instead of waiting out the long TTL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from acrsync.clock import SYSTEM, Clock
from acrsync.config import GrantsConfig, Target
from acrsync.grants.findings import Finding, blocking

if TYPE_CHECKING:
    from acrsync.deps import Session


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)
    target: str
    clean: bool = Field(description="no blocking findings (advisory warnings and info allowed)")
    findings: list[Finding] = Field(default_factory=list)
    checked_at: float
    expires_at: float


Checker = Callable[[Target, "Session"], list[Finding]]
"""``checker(target, session)``: the findings for one target, read under the caller's session."""


class GrantCache:
    """``verdict(target, session)`` runs ``checker(target, session)`` at most once per TTL per target.

    The cache is shared by the invocations of an instance; the session is not: each check runs under the
    session (budget, credentials) of the invocation that asked for it.
    """

    def __init__(self, checker: Checker, settings: GrantsConfig | None = None, clock: Clock = SYSTEM):
        self._checker = checker
        self._settings = settings or GrantsConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._verdicts: dict[str, Verdict] = {}
        self.checks = 0                      # how many times the checker ran (for logs and tests)

    def verdict(self, target: Target, session: Session) -> Verdict:
        now = self._clock.now()
        with self._lock:
            cached = self._verdicts.get(target.name)
            if cached is not None and now < cached.expires_at:
                return cached
        findings = self._checker(target, session)
        clean = not blocking(findings)
        ttl = self._settings.cache_ttl_seconds if clean else self._settings.blocked_ttl_seconds
        v = Verdict(target=target.name, clean=clean, findings=findings, checked_at=now, expires_at=now + ttl)
        with self._lock:
            self.checks += 1
            self._verdicts[target.name] = v
        return v

    def invalidate(self, target_name: str | None = None) -> None:
        """Forget one target's verdict (or all), e.g. right after `grants apply`."""
        with self._lock:
            if target_name is None:
                self._verdicts.clear()
            else:
                self._verdicts.pop(target_name, None)
