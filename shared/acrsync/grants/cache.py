"""The push path's view of the grant check: one verdict per target, cached in memory.

A clean verdict is trusted for ``grants.cache_ttl_seconds``; a verdict with errors only for
``grants.blocked_ttl_seconds``, so that once someone fixes the grant, pushes stop being BLOCKED within
minutes instead of waiting out the long TTL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from acrsync.clock import SYSTEM, Clock
from acrsync.config import GrantsConfig, Target
from acrsync.grants.findings import Finding, has_errors


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)
    target: str
    clean: bool = Field(description="no error findings (warnings and info allowed)")
    findings: list[Finding] = Field(default_factory=list)
    checked_at: float
    expires_at: float


Checker = Callable[[Target], list[Finding]]


class GrantCache:
    """``verdict(target)`` runs ``checker(target)`` at most once per TTL per target."""

    def __init__(self, checker: Checker, settings: GrantsConfig | None = None, clock: Clock = SYSTEM):
        self._checker = checker
        self._settings = settings or GrantsConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._verdicts: dict[str, Verdict] = {}
        self.checks = 0                      # how many times the checker ran (for logs and tests)

    def verdict(self, target: Target) -> Verdict:
        now = self._clock.now()
        with self._lock:
            cached = self._verdicts.get(target.name)
            if cached is not None and now < cached.expires_at:
                return cached
        findings = self._checker(target)
        clean = not has_errors(findings)
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
