"""Retries bounded by the caller's time budget.

An FC invocation has a hard timeout; a retry that sleeps past it is killed mid-way and leaves nothing
behind to say why. So every retry loop here is bounded twice: by ``RetryPolicy.max_attempts`` and by a
``Budget`` (an absolute deadline). Delays are exponential with full jitter (a uniform draw in
``[0, min(cap, base * 2**(attempt-1))]``), raised to the service's ``x-acs-retry-after`` when it sent one.
The SDKs' own retries stay off: alibabacloud-tea-openapi 0.4 ignores ``RuntimeOptions.autoretry`` (one request
is sent whatever it says), and darabonba-core's ``RetryOptions`` cannot see a deadline.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import field
from typing import Any, TypeVar

from acrsync.clock import SYSTEM, Clock
from acrsync.cloud.errors import BudgetExhausted, CloudError, NetworkError, Throttled, Unreachable
from acrsync.value import Frozen, dataclass

T = TypeVar("T")


@dataclass(frozen=True)
class Budget(Frozen):
    """An absolute deadline in ``clock`` seconds (epoch by default); None means no deadline."""

    deadline: float | None = None
    clock: Clock = field(default=SYSTEM, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = SYSTEM) -> Budget:
        """A budget of ``seconds`` from now."""
        return cls(clock.now() + seconds, clock)

    @classmethod
    def unbounded(cls, clock: Clock = SYSTEM) -> Budget:
        return cls(None, clock)

    @classmethod
    def from_fc_context(cls, context: Any, *, reserve: float = 2.0, started_at: float | None = None,
                        clock: Clock = SYSTEM) -> Budget:
        """The invocation's deadline less ``reserve`` seconds to record the outcome.

        FC's Python context gives the function timeout (``context.function.timeout``, seconds), not a
        deadline, so the deadline counts from ``started_at`` (default: now, i.e. call this first thing).
        """
        timeout = getattr(getattr(context, "function", None), "timeout", None)
        if not timeout:
            return cls(None, clock)
        start = clock.now() if started_at is None else started_at
        return cls(start + float(timeout) - reserve, clock)

    def remaining(self) -> float:
        """Seconds left (``inf`` without a deadline; negative once past it)."""
        if self.deadline is None:
            return math.inf
        return self.deadline - self.clock.now()

    @property
    def bounded(self) -> bool:
        return self.deadline is not None


@dataclass(frozen=True)
class RetryPolicy(Frozen):
    max_attempts: int = 5
    base: float = 0.25          # first window, seconds
    cap: float = 8.0            # largest window, seconds
    min_attempt: float = 0.5    # an attempt needs at least this much budget to be worth starting
    # Nothing answered at all (connection refused, DNS failure): a short blip is worth one quick retry,
    # a closed port or a wrong host is not worth a minute of back-off before the user hears of it.
    unreachable_attempts: int = 2
    unreachable_cap: float = 0.5


def backoff_window(attempt: int, policy: RetryPolicy) -> float:
    """Upper bound of the jittered delay after failed attempt number ``attempt`` (1-based)."""
    return min(policy.cap, policy.base * (2.0 ** max(0, attempt - 1)))


def retry_delay(error: CloudError, attempt: int, policy: RetryPolicy, rand: float) -> float:
    """Full jitter over the window; never shorter than the service's retry-after hint."""
    delay = rand * backoff_window(attempt, policy)
    if isinstance(error, Unreachable):
        return min(delay, policy.unreachable_cap)
    if isinstance(error, Throttled) and error.retry_after:
        delay = max(delay, error.retry_after)
    return delay


def should_retry(error: CloudError, *, idempotent: bool) -> bool:
    if not error.retryable:
        return False
    if isinstance(error, NetworkError) and error.maybe_applied and not idempotent:
        return False
    return True


def call_with_retry(attempt: Callable[[float], T], *, budget: Budget | None = None,
                    policy: RetryPolicy = RetryPolicy(), idempotent: bool = True,
                    sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random,
                    on_retry: Callable[[CloudError, int, float], None] | None = None) -> T:
    """Run ``attempt(remaining_seconds)`` until it returns, retrying retryable CloudErrors.

    Raises the CloudError itself when it is not retryable or attempts run out, and ``BudgetExhausted``
    (carrying the last error) when the budget cannot fit the next delay plus ``policy.min_attempt``.
    """
    budget = budget or Budget.unbounded()
    n = 0
    while True:
        remaining = budget.remaining()
        if remaining <= 0:
            last = CloudError("the time budget ran out before the call could start", code="DeadlineExceeded")
            raise BudgetExhausted(last, attempts=n, remaining=remaining)
        n += 1
        try:
            return attempt(remaining)
        except CloudError as err:
            limit = policy.unreachable_attempts if isinstance(err, Unreachable) else policy.max_attempts
            if not should_retry(err, idempotent=idempotent) or n >= min(limit, policy.max_attempts):
                raise
            delay = retry_delay(err, n, policy, rand())
            left = budget.remaining()
            if left - delay < policy.min_attempt:
                raise BudgetExhausted(err, attempts=n, remaining=left) from err
            if on_retry is not None:
                on_retry(err, n, delay)
            sleep(delay)
