"""A cold function instance trusts the latest grant verdict another instance published through the ledger
(within grants.cache_ttl_seconds) instead of re-running the whole grant check."""

from __future__ import annotations

import dataclasses

import pytest

from acrsync.clock import ManualClock
from acrsync.config import GrantsConfig, parse_config
from acrsync.errors import AcrsyncError
from acrsync.grants.cache import GrantCache, shared_name
from acrsync.ledger.sqlite import SqliteLedger
from acrsync.model import SyncRule
from acrsync.source import RuleCache
from tests.integration.e2e import config_doc, fc_context, make_app, push_event

TTL, BLOCKED = 900, 60
SESSION = object()          # the asking invocation's session: the checker receives it untouched


class Store:
    """The ledger's share/shared contract in memory (the real ledgers run it in the integration test)."""

    def __init__(self, fail: bool = False):
        self.values: dict[str, tuple[str, float]] = {}
        self.fail = fail

    def share(self, name: str, doc: str, *, ttl: float, now: float) -> None:
        if self.fail:
            raise AcrsyncError("store down")
        self.values[name] = (doc, now + ttl)

    def shared(self, name: str, *, now: float) -> str | None:
        if self.fail:
            raise AcrsyncError("store down")
        doc, expires = self.values.get(name, (None, 0.0))
        return doc if doc is not None and now < expires else None


@pytest.fixture
def target(tmp_path):
    return parse_config(config_doc(tmp_path / "l.db")).targets[0]


def _cache(store, clock, findings=None):
    calls = []

    def checker(t, session):
        assert session is SESSION
        calls.append(t.name)
        return findings or []
    return GrantCache(checker, GrantsConfig(cache_ttl_seconds=TTL, blocked_ttl_seconds=BLOCKED), clock,
                      shared=store), calls


def test_a_cold_instance_trusts_the_published_verdict_until_it_expires(target):
    store, clock = Store(), ManualClock()
    first, first_calls = _cache(store, clock)
    assert first.verdict(target, SESSION).clean and first_calls == ["beijing"]
    cold, cold_calls = _cache(store, clock)              # a new instance: empty memory
    clock.advance(TTL - 1)
    assert cold.verdict(target, SESSION).clean and cold_calls == [] and cold.checks == 0
    later, later_calls = _cache(store, clock)
    clock.advance(2)                                      # past the first check's TTL
    later.verdict(target, SESSION)
    assert later_calls == ["beijing"]


def test_a_changed_target_does_not_trust_an_old_verdict(target):
    store, clock = Store(), ManualClock()
    _cache(store, clock)[0].verdict(target, SESSION)
    changed = dataclasses.replace(target, instance_id="cri-othertarget01")
    assert shared_name(changed) != shared_name(target)
    cold, calls = _cache(store, clock)
    cold.verdict(changed, SESSION)
    assert calls == ["beijing"]


def test_a_shared_read_made_together_is_not_made_again(target):
    store, clock = Store(), ManualClock()
    reads = []
    store.shared = lambda name, *, now: reads.append(name)        # nothing published yet
    cold, calls = _cache(store, clock)
    assert cold.seed(target, None) is False                      # App._prime read it with the rules
    assert cold.verdict(target, SESSION).clean and calls == ["beijing"] and reads == []
    clock.advance(TTL + 1)
    cold.verdict(target, SESSION)                                # a later check reads the store again
    assert reads == [shared_name(target)]


def test_a_failing_store_never_fails_the_push(target):
    cache, calls = _cache(Store(fail=True), ManualClock())
    assert cache.verdict(target, SESSION).clean and calls == ["beijing"]


def test_a_verdict_with_errors_is_shared_for_the_short_ttl_only(target):
    from acrsync.grants.findings import finding

    bad = [finding("ROLE_MISSING", target.name, "no role")]
    store, clock = Store(), ManualClock()
    first, _ = _cache(store, clock, bad)
    assert not first.verdict(target, SESSION).clean
    clock.advance(BLOCKED + 1)
    cold, calls = _cache(store, clock, bad)
    cold.verdict(target, SESSION)
    assert calls == ["beijing"]


def test_two_cold_instances_on_one_ledger_check_the_grant_once(cloud, tmp_path):
    # Two function instances (two Apps, two sessions) on one ledger, each cold when its first push arrives.
    first = make_app(cloud, tmp_path / "ledger.db")
    first.handle_on_push(push_event(cloud, "team-a", "web", "v1.0.0"), fc_context())
    assert first.grants.checks == 1 and first.session.calls["sts:AssumeRole"] >= 1
    second = make_app(cloud, tmp_path / "ledger.db")
    summary = second.handle_on_push(push_event(cloud, "team-a", "web", "v1.0.1"), fc_context())
    assert summary["targets"]["beijing"]["created"] == 1
    assert second.grants.checks == 0
    spent = {k: v for k, v in second.session.calls.items() if v}
    assert not [k for k in spent if k.startswith(("sts:", "ram:"))], spent
    assert spent.get("cr:CreateRepoSyncTask") == 1
    # the sync rules came with the verdict: the only OpenAPI call of the cold instance is the task
    assert [k for k in spent if k.startswith("cr:")] == ["cr:CreateRepoSyncTask"], spent
    assert isinstance(second.ledger, SqliteLedger)


class Acr:
    """The source's ListRepoSyncRule, counted."""

    def __init__(self, rules):
        self.rules, self.calls = rules, 0

    def list_repo_sync_rules(self, instance_id):
        self.calls += 1
        return self.rules


RULE = SyncRule(rule_id="r1", scope="NAMESPACE", local_instance_id="cri-s", local_namespace="team-b",
                target_instance_id="cri-t", target_region="cn-beijing")


def test_sync_rules_read_by_one_instance_seed_a_cold_one_until_the_ttl():
    store, clock = Store(), ManualClock()
    first, acr = RuleCache("cri-s", 300, clock, shared=store), Acr([RULE])
    assert first.rules(acr) == [RULE] and acr.calls == 1
    clock.advance(299)
    cold = RuleCache("cri-s", 300, clock, shared=store)
    assert cold.wants() == "rules/cri-s"
    doc = store.shared(cold.wants(), now=clock.now())
    assert doc is not None and cold.seed(doc)
    assert cold.wants() is None and cold.rules(acr) == [RULE] and acr.calls == 1
    clock.advance(2)                                      # the first read is older than the TTL now
    assert cold.wants() == "rules/cri-s" and not cold.seed(doc)
    assert cold.rules(acr) == [RULE] and acr.calls == 2


def test_rules_of_another_instance_or_unreadable_are_not_taken():
    store, clock = Store(), ManualClock()
    RuleCache("cri-other", 300, clock, shared=store).rules(Acr([RULE]))
    other = store.shared("rules/cri-other", now=clock.now())
    cold = RuleCache("cri-s", 300, clock, shared=store)
    assert not cold.seed(other) and not cold.seed("{broken") and cold.wants() == "rules/cri-s"


def _function_app(cloud, tmp_path, monkeypatch):
    """An App as a function instance builds it (App.for_function), on the test ledger and localcloud."""
    import json
    from types import SimpleNamespace

    from acrsync.app import App
    from tests.integration.e2e import CLI_KEY_ID, CLI_SECRET

    cfg = tmp_path / "acrsync.yaml"
    cfg.write_text(json.dumps(config_doc(tmp_path / "ledger.db")), encoding="utf-8")
    monkeypatch.setenv("ACRSYNC_CONFIG", str(cfg))
    monkeypatch.setenv("ACRSYNC_ENDPOINT", cloud.url)
    context = fc_context()
    context.credentials = SimpleNamespace(access_key_id=CLI_KEY_ID, access_key_secret=CLI_SECRET,
                                          security_token=None)
    return App.for_function(context)


def test_a_cold_instance_reads_the_shared_values_while_it_builds(cloud, tmp_path, monkeypatch):
    # The read is made in its own thread while the ACR SDK is imported (App.for_function), so the first
    # event reads nothing.
    import threading

    from acrsync.ledger.sqlite import SqliteLedger

    reads = []
    real = SqliteLedger.shared_many

    def spy(self, names, *, now):
        reads.append((threading.current_thread().name, sorted(names)))
        return real(self, names, now=now)
    monkeypatch.setattr(SqliteLedger, "shared_many", spy)
    app = _function_app(cloud, tmp_path, monkeypatch)
    wanted = sorted(["rules/cri-demosource01", shared_name(app.config.targets[0])])
    assert reads == [("acrsync-prime", wanted)]
    app.handle_on_push(push_event(cloud, "team-a", "web", "v1.0.0"), fc_context())
    assert len(reads) == 1                    # the first event does not read them again
    app.handle_on_push(push_event(cloud, "team-a", "web", "v1.0.1"), fc_context())
    assert len(reads) == 1                    # nor a later one, while its own caches are fresh


def test_a_failing_shared_read_does_not_fail_the_build(cloud, tmp_path, monkeypatch, caplog):
    from acrsync.ledger.sqlite import SqliteLedger

    def broken(self, names, *, now):
        raise KeyError("a bug")
    monkeypatch.setattr(SqliteLedger, "shared_many", broken)
    app = _function_app(cloud, tmp_path, monkeypatch)
    assert app.rules.wants() is not None           # not seeded: the caches will read for themselves
    assert "reading the shared values failed" in caplog.text
