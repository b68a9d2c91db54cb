"""Two invocations at once in one App (the CLI's threads, FC instance concurrency): each grant check runs
under its own invocation's budget and session, and building an invocation's dependencies changes nothing
shared."""

from __future__ import annotations

import threading

import pytest

from acrsync.cloud.retry import Budget
from acrsync.grants import check as check_mod
from tests.integration.e2e import fc_context, make_app, push_event


@pytest.fixture
def app(cloud, tmp_path):
    return make_app(cloud, tmp_path / "ledger.db")


def test_deps_changes_nothing_on_the_app(app):
    before = dict(vars(app))
    first, second = app.deps(Budget(1_000.0)), app.deps(Budget(2_000.0))
    assert vars(app) == before
    assert (first.budget.deadline, second.budget.deadline) == (1_000.0, 2_000.0)
    assert first.session is not second.session and app.session.budget.deadline is None


def test_two_invocations_with_different_deadlines_each_check_grants_under_their_own(app, cloud, monkeypatch):
    both_checking = threading.Barrier(2, timeout=30)
    seen: dict[str, tuple[float | None, object]] = {}
    real_check = check_mod.check_target

    def check_target(config, target, *, ram, source_acr, target_acr):
        # Both checks are in flight at once before either finishes: neither can borrow the other's state.
        both_checking.wait()
        seen[threading.current_thread().name] = (source_acr.session.budget.deadline, source_acr.session)
        return real_check(config, target, ram=ram, source_acr=source_acr, target_acr=target_acr)

    monkeypatch.setattr(check_mod, "check_target", check_target)
    events = {"short": push_event(cloud, "team-a", "web", "v20.0.0"),
              "long": push_event(cloud, "team-a", "api", "v20.0.0")}
    timeouts = {"short": 100, "long": 400}
    results: dict[str, dict] = {}
    started: dict[str, float] = {}

    def invoke(name: str) -> None:
        import time

        started[name] = time.time()
        results[name] = app.handle_on_push(events[name], fc_context(timeout=timeouts[name], request_id=name))

    threads = [threading.Thread(target=invoke, args=(n,), name=n) for n in timeouts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(seen) == {"short", "long"}, "both invocations must have run a grant check"
    for name, timeout in timeouts.items():
        deadline, _ = seen[name]
        # Budget.from_fc_context: the invocation's start + its timeout - 2 s kept to record the outcome
        assert deadline == pytest.approx(started[name] + timeout - 2.0, abs=5.0), name
        assert results[name]["targets"]["beijing"]["created"] == 1
    assert seen["short"][1] is not seen["long"][1]
    assert app.grants.checks == 2
