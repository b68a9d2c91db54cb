"""The composition root: what a function instance builds once, and what each invocation gets.

Built once per FC instance (or CLI run): config, one CloudSession (its clients and STS caches), the
ledger, the rule/repository caches and the grant cache, so a warm instance spends its OpenAPI calls
on CreateRepoSyncTask. Per invocation: the function role's current keys (they rotate) and a time
budget from the FC deadline. The handlers in ``functions/`` call ``handle_on_push`` and
``handle_reconcile`` and nothing else.
"""

from __future__ import annotations

import contextvars
import gc
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acrsync import events, push
from acrsync.clock import SYSTEM, Clock
from acrsync.cloud import credentials as creds_mod
from acrsync.cloud.clients import CloudSession, Endpoints
from acrsync.cloud.errors import CloudError
from acrsync.cloud.retry import Budget
from acrsync.config import Config, load_config, with_env_overrides
from acrsync.deps import Deps
from acrsync.errors import AcrsyncError
from acrsync.grants.cache import GrantCache
from acrsync.jsonlog import install, log_decision, reset_request_id, set_request_id
from acrsync.ledger import Ledger
from acrsync.ledger.factory import open_ledger
from acrsync.source import ImageResolver, RuleCache

log = logging.getLogger("acrsync")



class InvocationCredentials:
    """The function role's keys, replaced at every invocation (FC rotates them); a CredentialSource."""

    def __init__(self, creds: creds_mod.Creds | None = None):
        self._creds = creds
        self._lock = threading.Lock()

    def update(self, creds: creds_mod.Creds) -> None:
        with self._lock:
            self._creds = creds

    def get(self) -> creds_mod.Creds:
        with self._lock:
            if self._creds is None:
                raise CloudError("no credentials yet: the function role's keys arrive with the first "
                                 "invocation",
                                 service="credentials", action="Resolve", code="NoCredentials")
            return self._creds


def config_path() -> str | None:
    """ACRSYNC_CONFIG, else an ``acrsync.yaml`` packaged beside the function's code."""
    env = os.environ.get("ACRSYNC_CONFIG")
    if env and Path(env).exists():
        return env
    for base in (Path.cwd(), Path(os.environ.get("FC_FUNC_CODE_PATH", "/code"))):
        if (base / "acrsync.yaml").exists():
            return str(base / "acrsync.yaml")
    return env


def _check_grants(config: Config, target: Any, session: Any) -> Any:
    """The grant check, imported only when a verdict must be computed: a cold instance usually reads the
    shared verdict, and the check's modules (fixes, policy) cost it ~0.1 s of imports."""
    from acrsync.grants.check import check_with_session

    return check_with_session(config, target, session)




class App:
    """One per process: long-lived state shared by invocations. Nothing here belongs to one invocation:
    ``deps(budget)`` builds what an invocation uses and changes nothing on the App."""

    def __init__(self, config: Config, session: CloudSession, ledger: Ledger, *, clock: Clock = SYSTEM,
                 credentials: InvocationCredentials | None = None):
        self.config = config
        self.session = session
        self.ledger = ledger
        self.clock = clock
        self._credentials = credentials
        self.rules = RuleCache(config.source.instance_id, config.rules_cache_ttl_seconds, clock,
                               shared=ledger)
        self.resolver = ImageResolver(config.source.instance_id)
        # The latest verdict is shared through the ledger: a cold instance trusts it within the TTL.
        self.grants = GrantCache(lambda target, invocation_session: _check_grants(
            config, target, invocation_session), config.grants, clock, shared=ledger)
        self.rand = random.Random()
        self._just_primed = False

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def for_function(cls, context: Any) -> App:
        """Inside Function Compute: the role's keys from ``context`` (3.10) or the environment (3.12)."""
        started = time.time()
        config = with_env_overrides(load_config(config_path()))
        found = creds_mod.from_fc_context(context) or creds_mod.from_env(os.environ)
        credentials = InvocationCredentials(found)
        region = getattr(context, "region", None) or os.environ.get("FC_REGION") or config.source.region
        session = CloudSession(credentials, region=region, endpoints=Endpoints.from_env(os.environ))
        ledger = open_ledger(config.ledger, session)
        app = cls(config, session, ledger, credentials=credentials)
        # Every function calls ACR, so its SDK is imported here, in the cold start. Meanwhile another thread
        # reads what other instances shared: the read waits on the network while the import holds the CPU.
        budget = Budget.from_fc_context(context, started_at=started)
        reading = threading.Thread(target=app._prime, args=(ledger.scoped(budget),), name="acrsync-prime",
                                   daemon=True)
        reading.start()
        try:
            session.acr(config.source.region)
        finally:
            reading.join()
        app._just_primed = True
        return app

    @classmethod
    def for_cli(cls, config: Config, session: CloudSession | None = None, *, clock: Clock = SYSTEM) -> App:
        session = session or CloudSession.from_environment(region=config.source.region)
        return cls(config, session, open_ledger(config.ledger, session), clock=clock)

    # ---- per invocation ---------------------------------------------------------------------------
    def deps(self, budget: Budget | None = None) -> Deps:
        """What one invocation works with: a session scoped to ``budget`` (its one deadline) and the shared
        caches. Free of side effects: concurrent invocations each keep their own session."""
        session = self.session.scoped(budget) if budget is not None else self.session
        ledger = self.ledger.scoped(budget) if budget is not None else self.ledger
        return Deps(config=self.config, ledger=ledger, session=session,
                    acr=session.acr(self.config.source.region), rules=self.rules, resolver=self.resolver,
                    grants=self.grants, clock=self.clock, rand=self.rand)

    def _begin(self, context: Any) -> tuple[Budget, contextvars.Token[str | None]]:
        started = time.time()
        self._just_primed = False       # only the instance's first invocation may skip the shared read
        if self._credentials is not None and context is not None:
            found = creds_mod.from_fc_context(context) or creds_mod.from_env(os.environ)
            if found is not None:
                self._credentials.update(found)
        token = set_request_id(getattr(context, "request_id", None))
        return Budget.from_fc_context(context, started_at=started), token

    def handle_on_push(self, event: Any, context: Any = None) -> dict[str, Any]:
        """EventBridge CloudEvents, RawData, or an ACR webhook through the HTTP trigger."""
        primed = self._just_primed
        budget, token = self._begin(context)
        try:
            secret = os.environ.get(self.config.webhook.token_env) or None
            items = events.detect_and_parse(event, webhook_token=secret,
                                            source_instance_id=self.config.source.instance_id)
            webhook = any(getattr(i, "via", None) == "webhook" or getattr(i, "source", "") == "webhook"
                          for i in items)
            deps = self.deps(budget)
            if not primed:              # else read while the instance was built (for_function)
                self._prime(deps.ledger)
            try:
                summary = push.handle(items, deps)
            except push.DeliveryFailed as e:
                log_decision(log, decision="on_push_summary", failed=e.errors, **e.summary.to_dict())
                if webhook:   # the sender may retry; nothing was half done that a retry could duplicate
                    return events.http_response(503, {"error": "not recorded; retry later"})
                raise         # EventBridge delivers the batch again
            result = summary.to_dict()
            if len(items) != 1:       # one event: its decision lines already say everything
                log_decision(log, decision="on_push_summary", **result)
            if webhook:
                bad = [i for i in items if isinstance(i, events.Rejected)]
                status = bad[0].http_status if bad else 200
                body = {"error": bad[0].reason} if bad else result
                return events.http_response(status, body)
            return result
        finally:
            reset_request_id(token)

    def _prime(self, ledger: Ledger) -> None:
        """A cold instance reads what other instances shared (the sync rules, each target's grant verdict)
        in one ledger request, so its first push spends no ListRepoSyncRule and no grant check. When the
        caches are fresh it reads nothing."""
        rules = self.rules.wants()
        targets = {name: t for t in self.config.targets if t.enabled and (name := self.grants.wants(t))}
        names = ([rules] if rules else []) + list(targets)
        if not names:
            return
        try:
            docs = ledger.shared_many(names, now=self.clock.now())
        except AcrsyncError as e:       # an optimisation only: each cache reads for itself
            log.warning("shared values not readable (%s); reading them one by one", e)
            return
        except Exception:               # a bug here must not cost the event (it may run in a thread)
            log.exception("reading the shared values failed; reading them one by one")
            return
        if rules and rules in docs:
            self.rules.seed(docs[rules])
        for name, target in targets.items():
            self.grants.seed(target, docs.get(name))

    def handle_reconcile(self, event: Any = None, context: Any = None, *,
                         dry_run: bool = False) -> dict[str, Any]:
        from acrsync import reconcile

        budget, token = self._begin(context)
        try:
            summary = reconcile.run(self.deps(budget), dry_run=dry_run, calls=self.session.calls)
            return summary.to_dict()
        finally:
            reset_request_id(token)

    def handle_backfill(self, event: Any, context: Any = None) -> dict[str, Any]:
        """A backfill job in the event (``{"backfill": ...}``), as the compliance function receives it:
        one shard per invocation, the rest fanned out asynchronously (acrsync.backfill.fanout)."""
        from acrsync.backfill import fanout

        budget, token = self._begin(context)
        try:
            body = fanout.job_of(event)
            if body is None:
                raise ValueError("not a backfill job: the event has no 'backfill' object")
            return fanout.handle(self, body, context, budget)
        finally:
            reset_request_id(token)

    def handle_compliance(self, event: Any = None, context: Any = None) -> dict[str, Any]:
        """The compliance timer (and `acrsync invoke compliance`); acrsync.compliance decides by event
        shape."""
        from acrsync.compliance import entry

        budget, token = self._begin(context)
        try:
            return entry.handle(self, event, budget, context=context,
                                request_id=getattr(context, "request_id", None))
        finally:
            reset_request_id(token)


_APP: App | None = None
_APP_LOCK = threading.Lock()


def app_for(context: Any) -> App:
    """The process's App, built on the first invocation (FC gives credentials only with an invocation)."""
    global _APP
    with _APP_LOCK:
        if _APP is None:
            install()                 # acrsync's records as JSON lines on stderr (FC's log store)
            with collector_paused():
                _APP = App.for_function(context)
        return _APP


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a cold instance imports the SDKs and builds its App; then what
    was built is frozen out of later collections.

    Importing the SDKs allocates ~90,000 tracked objects that live as long as the instance, and the
    collector walks them again and again while they are created: about 60 ms of a cold start on
    Python 3.10 (docs/BENCHMARKS.md, "Cold start"). Freezing them keeps every later collection from walking
    them too. The pattern is the one the ``gc.freeze`` documentation gives (disable, freeze, enable):
    https://docs.python.org/3/library/gc.html#gc.freeze. The few cycles that die during the build
    (~1,500 objects) stay frozen with the rest.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
