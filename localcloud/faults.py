"""Fault injection and request counting: how a client behaves when the cloud throttles, fails or hangs.

A rule applies to one action (``CreateRepoSyncTask``, ``PutRow``...) or to every action (``"*"``; a rule for
the action itself wins). Each call draws one number from the rule's seeded RNG: below ``throttle_rate`` it is
throttled, then ``error_rate`` a server error, then ``timeout_rate`` a hang. ``count`` limits the rule to the
next N calls it affects, so a test can say "throttle twice, then succeed".
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

THROTTLE, ERROR, TIMEOUT = "throttle", "error", "timeout"


@dataclass
class FaultRule:
    action: str = "*"
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    latency_ms: int = 0
    timeout_rate: float = 0.0
    count: int | None = None
    seed: int | None = None
    retry_after_ms: int | None = None
    timeout_seconds: float = 3.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate", "timeout_rate"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
            setattr(self, name, value)
        if self.throttle_rate + self.error_rate + self.timeout_rate > 1.0:
            raise ValueError("throttle_rate + error_rate + timeout_rate must not exceed 1")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        if self.latency_ms < 0 or self.timeout_seconds < 0:
            raise ValueError("latency_ms and timeout_seconds must be >= 0")
        self.rng = random.Random(self.seed)


@dataclass(frozen=True)
class Fault:
    """What to do to one call: ``kind`` None means only the latency (if any)."""

    kind: str | None
    latency_ms: int = 0
    retry_after_ms: int | None = None
    timeout_seconds: float = 3.0


class Faults:
    """The active rules and per-action request counts; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, FaultRule] = {}
        self._stats: Counter[str] = Counter()

    def set(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules[rule.action] = rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        with self._lock:
            return [{k: v for k, v in vars(r).items() if k != "rng"} for r in self._rules.values()]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()

    def on_request(self, action: str) -> Fault | None:
        """Count the call and decide its fault (None: serve it normally)."""
        with self._lock:
            self._stats[action] += 1
            rule = self._rules.get(action) or self._rules.get("*")
            if rule is None or rule.count == 0:
                return None
            draw = rule.rng.random()
            if draw < rule.throttle_rate:
                kind: str | None = THROTTLE
            elif draw < rule.throttle_rate + rule.error_rate:
                kind = ERROR
            elif draw < rule.throttle_rate + rule.error_rate + rule.timeout_rate:
                kind = TIMEOUT
            else:
                kind = None
            if kind is None and rule.latency_ms == 0:
                return None
            if rule.count is not None:
                rule.count -= 1
                if rule.count == 0:
                    del self._rules[rule.action]
            return Fault(kind, rule.latency_ms, rule.retry_after_ms, rule.timeout_seconds)
