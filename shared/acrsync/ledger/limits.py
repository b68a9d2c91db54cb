"""Global caps held in the ledger, as pure state transitions: the ledger stores the state in a versioned
item and writes it back with compare-and-set, so concurrent FC instances never exceed a cap.

- ``Slots``: an in-flight counter as leases (holder -> expiry). A holder that crashes frees its slot when
  the lease expires, so a counter cannot leak.
- ``Bucket``: a token bucket (``rate`` tokens a second, at most ``burst``), for a QPS cap.
"""

from __future__ import annotations

import math
from dataclasses import field

from acrsync.value import Frozen, dataclass


@dataclass(frozen=True)
class Slots(Frozen):
    """Leases on one named counter: holder -> the time its lease ends."""

    leases: dict[str, float] = field(default_factory=dict)

    def live(self, now: float) -> dict[str, float]:
        return {h: t for h, t in self.leases.items() if t > now}

    def acquire(self, holder: str, *, cap: int, ttl: float, now: float) -> Slots | None:
        """The state with ``holder`` holding a slot (a holder re-acquiring renews), or None when full."""
        live = self.live(now)
        if holder not in live and len(live) >= cap:
            return None
        return Slots(leases={**live, holder: now + ttl})

    def release(self, holder: str, now: float) -> Slots:
        return Slots(leases={h: t for h, t in self.live(now).items() if h != holder})


@dataclass(frozen=True, kw_only=True)
class Bucket(Frozen):
    """A token bucket: ``tokens`` left at time ``at``."""

    tokens: float
    at: float

    @classmethod
    def full(cls, burst: float, now: float) -> Bucket:
        return cls(tokens=burst, at=now)

    def refilled(self, *, rate: float, burst: float, now: float) -> Bucket:
        # Clocks of different instances disagree a little: time never runs backwards for the bucket.
        at = max(self.at, now)
        return Bucket(tokens=min(burst, self.tokens + (at - self.at) * rate), at=at)

    def take(self, n: float, *, rate: float, burst: float, now: float) -> tuple[Bucket | None, float]:
        """(new state, 0.0) when ``n`` tokens were taken; (None, seconds to wait) when not enough."""
        if n > burst:
            raise ValueError(f"cannot take {n} tokens from a bucket of at most {burst}")
        b = self.refilled(rate=rate, burst=burst, now=now)
        if b.tokens >= n:
            return Bucket(tokens=b.tokens - n, at=b.at), 0.0
        return None, (n - b.tokens) / rate if rate > 0 else math.inf
