"""Retry schedule and time budget: exponential back-off with full jitter, capped, never past the deadline."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acrsync.clock import ManualClock
from acrsync.cloud.errors import BudgetExhausted, CloudError, NetworkError, ServerError, Throttled
from acrsync.cloud.retry import Budget, RetryPolicy, backoff_window, call_with_retry, retry_delay


def throttled(retry_after=None):
    return Throttled("slow down", service="cr", action="GetInstance", code="Throttling.User",
                     retry_after=retry_after)


def test_window_doubles_per_attempt_and_stops_at_the_cap():
    p = RetryPolicy(base=0.25, cap=2.0)
    assert [backoff_window(n, p) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize("rand", [0.0, 0.3, 0.999])
def test_full_jitter_draws_anywhere_in_the_window(rand):
    p = RetryPolicy(base=1.0, cap=8.0)
    assert retry_delay(ServerError(code="SystemError"), 3, p, rand) == pytest.approx(rand * 4.0)


def test_retry_after_is_a_floor_for_the_delay():
    p = RetryPolicy(base=0.25, cap=8.0)
    assert retry_delay(throttled(retry_after=1.5), 1, p, 0.0) == 1.5
    assert retry_delay(throttled(retry_after=0.1), 4, p, 1.0) == pytest.approx(2.0)


def test_retryable_errors_are_retried_until_success_with_the_jittered_delays():
    failures = [throttled(), ServerError(code="ServiceUnavailable", http_status=503)]
    slept: list[float] = []

    def attempt(remaining):
        if failures:
            raise failures.pop(0)
        return "ok"

    out = call_with_retry(attempt, policy=RetryPolicy(base=1.0, cap=8.0), sleep=slept.append,
                          rand=lambda: 0.5)
    assert out == "ok"
    assert slept == [0.5, 1.0]


def test_a_non_retryable_error_is_raised_at_once():
    calls = []

    def attempt(remaining):
        calls.append(1)
        raise CloudError("bad signature", code="SignatureDoesNotMatch", http_status=400)

    with pytest.raises(CloudError) as e:
        call_with_retry(attempt, sleep=lambda s: None)
    assert e.value.code == "SignatureDoesNotMatch" and len(calls) == 1


def test_attempts_run_out_and_the_last_error_is_raised_as_is():
    calls = []

    def attempt(remaining):
        calls.append(1)
        raise ServerError(code="SystemError", http_status=500)

    with pytest.raises(ServerError):
        call_with_retry(attempt, policy=RetryPolicy(max_attempts=3), sleep=lambda s: None)
    assert len(calls) == 3


def test_a_read_timeout_is_not_repeated_for_an_action_that_creates_something():
    calls = []

    def attempt(remaining):
        calls.append(1)
        raise NetworkError("Read timed out", maybe_applied=True, code="NetworkError")

    with pytest.raises(NetworkError):
        call_with_retry(attempt, idempotent=False, sleep=lambda s: None)
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(NetworkError):
        call_with_retry(attempt, idempotent=True, policy=RetryPolicy(max_attempts=2), sleep=lambda s: None)
    assert len(calls) == 2


def test_connection_refused_is_retried_even_for_creating_actions():
    calls = []

    def attempt(remaining):
        calls.append(1)
        if len(calls) < 2:
            raise NetworkError("Connection refused", maybe_applied=False, code="NetworkError")
        return "created"

    assert call_with_retry(attempt, idempotent=False, sleep=lambda s: None) == "created"


def test_persistent_throttling_stops_inside_the_budget_with_the_last_error():
    clock = ManualClock()
    budget = Budget.after(5.0, clock)
    attempts = []

    def attempt(remaining):
        attempts.append(clock.now())
        clock.advance(min(0.2, remaining))
        raise throttled(retry_after=1.0)

    with pytest.raises(BudgetExhausted) as e:
        call_with_retry(attempt, budget=budget, policy=RetryPolicy(max_attempts=100),
                        sleep=clock.advance, rand=lambda: 0.0)
    assert clock.now() <= budget.deadline
    assert isinstance(e.value.last, Throttled)
    assert e.value.attempts == len(attempts) >= 3
    assert "time budget" in str(e.value)


def test_a_retry_after_longer_than_the_budget_gives_up_without_sleeping():
    clock = ManualClock()
    slept = []

    def attempt(remaining):
        raise throttled(retry_after=30.0)

    with pytest.raises(BudgetExhausted):
        call_with_retry(attempt, budget=Budget.after(10.0, clock), sleep=slept.append)
    assert slept == []


def test_an_already_spent_budget_makes_no_call():
    clock = ManualClock()
    calls = []
    with pytest.raises(BudgetExhausted) as e:
        call_with_retry(lambda r: calls.append(r), budget=Budget(clock.now() - 1, clock))
    assert calls == [] and e.value.attempts == 0


@settings(max_examples=200, deadline=None)
@given(budget_s=st.floats(0.1, 60), attempt_s=st.floats(0.0, 5),
       rands=st.lists(st.floats(0, 0.999), min_size=1),
       retry_after=st.one_of(st.none(), st.floats(0.0, 10)))
def test_the_deadline_is_never_passed(budget_s, attempt_s, rands, retry_after):
    clock = ManualClock()
    budget = Budget.after(budget_s, clock)
    draws = iter(rands * 1000)

    def attempt(remaining):
        clock.advance(min(attempt_s, remaining))     # a call never outlives its (budget-shortened) timeout
        raise throttled(retry_after=retry_after)

    with pytest.raises(CloudError):
        call_with_retry(attempt, budget=budget, policy=RetryPolicy(max_attempts=50, base=0.1, cap=4),
                        sleep=clock.advance, rand=lambda: next(draws))
    assert clock.now() <= budget.deadline + 1e-9


def test_budget_remaining_and_fc_context():
    clock = ManualClock(1000.0)
    assert Budget.unbounded(clock).remaining() == math.inf
    assert Budget.after(30, clock).remaining() == 30

    class Fn:
        timeout = 60

    class Ctx:
        function = Fn()

    b = Budget.from_fc_context(Ctx(), reserve=2.0, clock=clock)
    assert b.deadline == 1058.0
    assert Budget.from_fc_context(object(), clock=clock).deadline is None
