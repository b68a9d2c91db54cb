"""The compliance function's entry and the CLI's: wire a run from the App, store its report, notify.

``handle`` decides by the event's shape: a timer tick (or an empty event) is a compliance run; anything
it cannot use is stored as rejected and acknowledged. This is the one place other work carried by the
same function is routed from.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from acrsync import drift, events
from acrsync.cloud.retry import Budget
from acrsync.compliance import notify
from acrsync.compliance import report as reports
from acrsync.compliance.remediate import Remediator
from acrsync.compliance.report import ComplianceReport
from acrsync.compliance.run import Deps, Options, run
from acrsync.errors import AcrsyncError
from acrsync.grants import check_target
from acrsync.jsonlog import log_decision

if TYPE_CHECKING:
    from acrsync.app import App
    from acrsync.cloud.acr import Acr
    from acrsync.config import Config, Target
    from acrsync.grants.findings import Finding as GrantFinding

log = logging.getLogger("acrsync.compliance")


def deps_for(app: App, budget: Budget | None = None, *, remediate: bool = False,
             now: Callable[[], float] = time.time) -> Deps:
    """A run's dependencies from the App: the source read with the session's keys, each target through
    its reader role (same account: the session's keys), the FC API in the source region."""
    cfg = app.config
    session = app.session.scoped(budget) if budget is not None else app.session
    source_acr = session.acr(cfg.source.region)

    def target_acr(t: Target) -> Acr:
        if t.account_id != cfg.source.account_id and t.reader_role_arn:
            return session.acr(t.region, role_arn=t.reader_role_arn)
        return session.acr(t.region)

    def grants(t: Target) -> list[GrantFinding]:
        cross = t.account_id != cfg.source.account_id
        ram = session.ram(role_arn=t.reader_role_arn) if cross and t.reader_role_arn else None
        target = target_acr(t) if (not cross or t.reader_role_arn) else None
        return check_target(cfg, t, ram=ram, source_acr=source_acr, target_acr=target)

    remediator = Remediator(app.deps(budget), cfg.compliance.max_tasks_per_run) if remediate else None
    return Deps(config=cfg, ledger=app.ledger, source_acr=source_acr, target_acr=target_acr, grants=grants,
                fc=session.fc(cfg.source.region), remediator=remediator, clock=app.clock, now=now,
                limiters=drift.Limiters(cfg.compliance.qps), calls=None)


def check(app: App, opts: Options, *, budget: Budget | None = None, now: Callable[[], float] = time.time,
          store: bool = True) -> tuple[ComplianceReport, bool]:
    """Run, store the report, notify on a verdict change. Returns (report, notified)."""
    deps = deps_for(app, budget, remediate=opts.remediate, now=now)
    before = Counter(app.session.calls)
    report = run(deps, opts)
    calls = {k: v for k, v in sorted((Counter(app.session.calls) - before).items())}
    report = report.model_copy(update={"calls": calls})
    notified = False
    if store:
        previous = None
        try:
            prior = reports.latest(app.ledger)
            previous = prior.verdict if prior else None
        except (AcrsyncError, ValueError):
            previous = None
        reports.store(app.ledger, report)
        url = app.config.compliance.notify_url
        if url and notify.changed(previous, report):
            notified = notify.send(url, notify.message(report, previous))
    return report, notified


def options_from(item: events.TimerTick | None, config: Config) -> Options:
    """Options from a timer payload: ``{"mode": "compliance", "targets": [...], "remediate": true}``."""
    payload = item.payload if item is not None and isinstance(item.payload, dict) else {}
    targets = payload.get("targets")
    remediate = payload.get("remediate")
    return Options(targets=[str(t) for t in targets] if isinstance(targets, list) and targets else None,
                   remediate=bool(remediate) if isinstance(remediate, bool) else config.compliance.remediate,
                   trigger="timer" if item is not None else "invoke")


def handle(
    app: App, event: Any, budget: Budget, *, context: Any = None, request_id: str | None = None
) -> dict[str, Any]:
    """The FC handler's work. Never raises for a cloud error or bad input: both end up in the result.

    The dispatch point: work other than a compliance run that this function carries is recognised here by
    the event's shape, before the event is parsed as a timer tick (``context`` is FC's, for such work).
    """
    from acrsync.backfill import fanout

    job = fanout.job_of(event)
    if job is not None:                   # a backfill shard (docs/backfill.md)
        return fanout.handle(app, job, context, budget)
    cfg = app.config
    items: list[events.Parsed] = []
    if event not in (None, b"", "", {}):
        items = events.detect_and_parse(event, webhook_token=None, source_instance_id=cfg.source.instance_id)
    rejected = 0
    tick = None
    for item in items:
        if isinstance(item, events.TimerTick) and item.mode in (None, "compliance"):
            tick = tick or item
            continue
        if not isinstance(item, events.Rejected):
            item = events.Rejected(
                reason=f"the compliance function runs on its timer; a {item.kind} event is "
                "not for it (check the trigger)",
                payload=str(getattr(item, "raw", "") or item.kind),
                source="timer",
            )
        app.ledger.put_rejected(item.to_rejected_event(app.clock.now(), request_id))
        rejected += 1
        log_decision(log, decision="rejected", reason=item.reason)
    if items and tick is None:
        return {"rejected": rejected, "report_id": None}
    opts = options_from(tick, cfg)
    if deadline_of(budget) is not None:
        opts.deadline = deadline_of(budget)
    try:
        report, notified = check(app, opts, budget=budget)
    except AcrsyncError as e:            # e.g. the ledger is unreachable: reported, never raised
        log_decision(log, decision="compliance_failed", error=f"{type(e).__name__}: {e}")
        return {"rejected": rejected, "report_id": None, "error": f"{type(e).__name__}: {e}"}
    return {**report.summary(), "report_id": report.id, "notified": notified, "rejected": rejected}


def deadline_of(budget: Budget | None) -> float | None:
    return budget.deadline if budget is not None else None
