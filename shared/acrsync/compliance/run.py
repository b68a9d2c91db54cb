"""One compliance run: for every enabled target, grants, coverage, drift, event liveness and (opt-in)
remediation; plus the pipeline health of the deployed functions. Reads are paged and paced.

Order of work: the grant check per target, the source's sync rules (one ListRepoSyncRule pass) and
repositories (one ListRepository pass), each target's repositories (one ListRepository pass through its
reader role), then the source repositories in path order on ``workers`` threads, at most ``2 x workers``
in flight. Per repository: each in-scope target's tags into a ``drift.TargetSide`` (ListRepoTag pages; in
memory when they fit one page, else spilled to a temporary directory, removed when the repository is done),
the ledger's records for the repository (one read), then the source tags page by page, each page
classified for every target at once, so the source side is read once whatever the number of targets.
Which examples a finding lists does not depend on the order ACR lists tags in: each tally keeps the
first tags by name.

Faults stay local: a target whose repositories cannot be listed gets a TARGET_UNREADABLE finding and the
others are still checked; a repository whose target side fails is counted under that target's finding.
The run stops starting repositories ``SAFETY_SECONDS`` before the deadline, saves the first repository it
did not check as the cursor (checkpoint ``compliance.cursor``), and the next run starts there.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from acrsync import coverage, drift
from acrsync.clock import SYSTEM, Clock
from acrsync.cloud.errors import AccessDenied, CloudError, NotFound
from acrsync.compliance import pipeline
from acrsync.compliance.findings import Finding, finding, from_grant
from acrsync.compliance.remediate import Remediator
from acrsync.compliance.report import (
    Cell,
    ComplianceReport,
    Mode,
    RepoRow,
    Scope,
    TargetResult,
    finalize,
)
from acrsync.config import Config, Target
from acrsync.errors import AcrsyncError
from acrsync.grants.findings import Evidence, Fix, has_errors
from acrsync.grants.findings import Finding as GrantFinding
from acrsync.jsonlog import log_decision
from acrsync.ledger import Ledger, Record, Status
from acrsync.lifecycle import Flag, TaskPhase
from acrsync.model import RepoInfo, SyncRule

if TYPE_CHECKING:
    from acrsync.cloud.acr import Acr

log = logging.getLogger("acrsync.compliance")

SAFETY_SECONDS = 10.0
CURSOR = "compliance.cursor"
EVENTS_SINCE = "compliance.events_since"
UNKNOWN_STATUS = Flag.UNKNOWN_STATUS.value
IN_FLIGHT_STATUSES = frozenset({Status.QUEUED, Status.PENDING, Status.SYNCHRONIZING})


@dataclass
class Deps:
    """What a run talks to; ``acrsync.compliance.entry`` wires it from the App."""

    config: Config
    ledger: Ledger
    source_acr: Acr                                   # source region, own keys
    target_acr: Callable[[Target], Acr]               # the target's Acr through its reader role
    grants: Callable[[Target], list[GrantFinding]]
    fc: pipeline.FcReader | None = None
    fc_why_not: str = ""
    remediator: Remediator | None = None
    clock: Clock = SYSTEM                             # domain time (push times, the ledger)
    now: Callable[[], float] = time.time              # wall time, for the deadline (as FC's is)
    limiters: drift.Limiters | None = None
    calls: Counter[str] | None = None                      # the session's call counter (reported)


@dataclass
class Options:
    targets: list[str] | None = None                  # names; None: every target
    remediate: bool = False
    deadline: float | None = None                     # wall-clock seconds; None: no deadline
    trigger: str = "cli"
    resume: bool = True
    progress: Callable[[int, int], None] | None = None   # (repositories done, total), from the main thread


# ---- pure helpers ------------------------------------------------------------------------------------

def repo_scope(target: Target, namespace: str, repo: str) -> tuple[Mode | None, str]:
    """Repository-level scope (``scope.in_scope`` without the tag): None when in scope, else why not."""
    path = f"{namespace}/{repo}"
    if not target.enabled:
        return Mode.DISABLED, f"target {target.name} is disabled"
    for g in target.exclude:
        if fnmatchcase(path, g):
            return Mode.EXCLUDED, g
    if target.namespaces and not any(fnmatchcase(namespace, g) for g in target.namespaces):
        return Mode.OUT_OF_SCOPE, f"namespace {namespace!r} is not in namespaces {target.namespaces}"
    if target.repositories and not any(fnmatchcase(path, g) for g in target.repositories):
        return Mode.OUT_OF_SCOPE, f"{path!r} is not in repositories {target.repositories}"
    return None, ""


def report_id(now: float) -> str:
    """Sortable and readable: ``20261128T000000.123Z``."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    return t.strftime("%Y%m%dT%H%M%S.") + f"{t.microsecond // 1000:03d}Z"


def _ms_text(ms: int) -> str:
    if not ms:
        return "unknown"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _tag_line(d: drift.TagDrift) -> str:
    s = d.source
    parts = [f"{d.tag}"]
    if s is not None:
        parts.append(f"source sha256:{s.digest[:12]} ({s.size} bytes, pushed {_ms_text(s.pushed_ms)})")
    if d.target_digest:
        parts.append(f"target sha256:{d.target_digest[:12]}")
    if d.in_flight:
        parts.append(f"in flight: {d.in_flight}")
    return ", ".join(parts)


# ---- per repository and target: the tally ----------------------------------------------------------

def keep_first(found: list[drift.TagDrift], d: drift.TagDrift, keep: int) -> None:
    """Keep the ``keep`` first tags by name in ``found`` (sorted), whatever order they arrive in."""
    if len(found) < keep or (found and d.tag < found[-1].tag):
        bisect.insort(found, d, key=lambda x: x.tag)
        del found[keep:]


@dataclass
class Tally:
    """One (repository, target): counts per state and the first ``keep`` tags (by name) of each problem
    state. The rule named is the one covering the first tag by name, else the first covered MISSING or
    DIGEST_DIFFERS tag's, so the outcome does not depend on the order the tags were listed in."""

    keep: int
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[drift.TagDrift]] = field(default_factory=dict)
    rule_missing: int = 0                              # MISSING/DIFFERS tags a sync rule covers
    first_rule: str | None = None                      # the rule covering ``first_tag``
    missing_rule: tuple[str, str] | None = None        # (tag, rule id): the first covered MISSING/DIFFERS
    rule_examples: list[drift.TagDrift] = field(default_factory=list)
    unseen: list[drift.TagDrift] = field(default_factory=list)
    unseen_count: int = 0
    remediated: Counter[str] = field(default_factory=Counter)
    error: CloudError | None = None
    first_tag: str | None = None

    @property
    def rule_id(self) -> str | None:
        return self.first_rule or (self.missing_rule[1] if self.missing_rule else None)

    def add(self, d: drift.TagDrift) -> None:
        self.counts[d.state.value] += 1
        if d.state is not drift.TagState.OK:
            keep_first(self.examples.setdefault(d.state.value, []), d, self.keep)


@dataclass
class RepoOutcome:
    row: RepoRow
    tallies: dict[str, Tally]


# ---- the run ---------------------------------------------------------------------------------------

class Run:
    def __init__(self, deps: Deps, opts: Options):
        self.deps = deps
        self.opts = opts
        cfg = deps.config
        self.cfg = cfg
        self.limiters = deps.limiters or drift.Limiters(cfg.compliance.qps)
        self.findings: list[Finding] = []
        self.started = deps.clock.now()
        wanted = set(opts.targets) if opts.targets else None
        self.targets = [t for t in cfg.targets if wanted is None or t.name in wanted]
        self.results = {t.name: TargetResult(name=t.name, account_id=t.account_id, region=t.region,
                                             instance_id=t.instance_id, enabled=t.enabled,
                                             status="checked" if t.enabled else "disabled",
                                             tag_filter=t.tag_filter, override=t.override)
                        for t in self.targets}
        self.active: list[Target] = [t for t in self.targets if t.enabled]
        self.blocked: set[str] = set()
        self.target_repos: dict[str, dict[str, str]] = {}
        self.unreadable: dict[str, list[str]] = {}      # target -> repositories whose target side failed
        self.rules: list[SyncRule] = []
        self.live_since: float | None = None
        self.unseen_total = 0
        self.checked = 0                                # repositories compared in this run
        self.unseen_examples: list[str] = []
        self.lock = threading.Lock()

    # -- phases --
    def execute(self) -> ComplianceReport:
        cfg = self.cfg
        for t in self.targets:
            if not t.enabled:
                self.findings.append(
                    finding(
                        "TARGET_DISABLED",
                        t.name,
                        f"target {t.name} has enabled: false; nothing is replicated to it",
                        fix=Fix(summary=f"set targets[{t.name}].enabled: true to replicate"),
                    )
                )
        for t in self.active:
            self._grants(t)
        pipe_findings, pipe_note = pipeline.check(cfg, self.deps.fc, why_not=self.deps.fc_why_not)
        self.findings += pipe_findings
        self.live_since = self._events_since()
        source_limiter = self.limiters.for_account(cfg.source.account_id)
        try:
            source_limiter.acquire()
            self.rules = self.deps.source_acr.list_repo_sync_rules(cfg.source.instance_id)
            repos = sorted(
                (
                    r
                    for page in drift.pages(
                        lambda n: self.deps.source_acr.list_repository_page(cfg.source.instance_id, n),
                        source_limiter,
                    )
                    for r in page
                ),
                key=lambda r: r.path,
            )
        except CloudError as e:
            self.findings.append(
                finding(
                    "SOURCE_UNREADABLE",
                    "*",
                    f"the source instance {cfg.source.instance_id} could not be listed: "
                    f"{e.code}: {e.message}",
                    evidence=[Evidence(source=f"{e.service}:{e.action}", detail=str(e))],
                    fix=Fix(
                        summary="check the function role's cr:ListRepository and cr:ListSyncRule on the "
                        "source (`acrsync permissions --principal function`), then run again"
                    ),
                )
            )
            return self._report([], total=0, checked=0, resumed=None, stopped=None, pipe_note=pipe_note)
        for t in self.active:
            self._target_repos(t)
        cursor = (
            self.deps.ledger.get_checkpoint(CURSOR) if self.opts.resume and not self.opts.targets else None
        )
        todo = [r for r in repos if cursor is None or r.path >= cursor]
        rows, stopped = self._compare_all(todo)
        if not self.opts.targets:
            self.deps.ledger.set_checkpoint(CURSOR, stopped)
        self._aggregate_unreadable()
        self._liveness_finding()
        if stopped is not None:
            self.findings.append(
                finding(
                    "RUN_INCOMPLETE",
                    "*",
                    f"the run reached its deadline and stopped before {stopped}; "
                    f"{self.checked} of {len(todo)} repositories were checked. The next run "
                    "starts at this repository",
                    evidence=[Evidence(source="checkpoint " + CURSOR, detail=stopped)],
                    fix=Fix(
                        summary="nothing to do: the next run resumes; for a full pass in one run raise the "
                        "function timeout or compliance.workers"
                    ),
                )
            )
        return self._report(rows, total=len(repos), checked=self.checked,
                            resumed=cursor if cursor and todo and todo[0].path >= cursor else None,
                            stopped=stopped, pipe_note=pipe_note)

    def _grants(self, t: Target) -> None:
        try:
            found = self.deps.grants(t)
        except CloudError as e:
            self.findings.append(
                finding(
                    "TARGET_UNREADABLE",
                    t.name,
                    f"the grant check of {t.name} failed: {e}",
                    evidence=[Evidence(source=f"{e.service}:{e.action}", detail=str(e))],
                )
            )
            return
        self.findings += [from_grant(f) for f in found]
        if has_errors(found):
            self.blocked.add(t.name)

    def _target_repos(self, t: Target) -> None:
        acr = self.deps.target_acr(t)
        limiter = self.limiters.for_account(t.account_id)
        try:
            self.target_repos[t.name] = drift.target_repos(acr, t.instance_id, limiter)
        except CloudError as e:
            self.results[t.name].status = "unreadable"
            who = (
                f"through the reader role {t.reader_role_arn}"
                if t.reader_role_arn
                else "with the source's keys"
            )
            self.findings.append(
                finding(
                    "TARGET_UNREADABLE",
                    t.name,
                    f"the repositories of {t.instance_id} could not be listed {who}: "
                    f"{e.code}: {e.message}. This target was not compared; the others were",
                    evidence=[Evidence(source=f"{e.service}:{e.action}", detail=str(e))],
                    fix=_reader_fix(t, e),
                )
            )

    def _events_since(self) -> float | None:
        """Since when the ledger is expected to see every push: stamped by the first run (older images predate
        acrsync and say nothing about event delivery)."""
        try:
            found = self.deps.ledger.get_checkpoint(EVENTS_SINCE)
            if found is None:
                self.deps.ledger.set_checkpoint(EVENTS_SINCE, str(self.started))
                return None
            return float(found)
        except (ValueError, TypeError):
            return None

    def _compare_all(self, repos: list[RepoInfo]) -> tuple[list[RepoRow], str | None]:
        """Compare on worker threads, at most 2 x workers repositories in flight; stop at the deadline."""
        workers = self.cfg.compliance.workers
        rows: list[RepoRow] = []
        stopped: str | None = None
        window: list[tuple[RepoInfo, Future[RepoOutcome | None]]] = []
        it: Iterator[RepoInfo] = iter(repos)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="acrsync-compliance") as pool:
            def fill() -> None:
                while len(window) < 2 * workers:
                    repo = next(it, None)
                    if repo is None:
                        return
                    window.append((repo, pool.submit(self._repo, repo)))

            fill()
            while window:
                repo, fut = window.pop(0)
                try:
                    outcome = fut.result()
                except AcrsyncError as e:          # e.g. the ledger read failed: this repository only
                    with self.lock:
                        self.unreadable.setdefault("*", []).append(
                            f"{repo.path}: {type(e).__name__}: {e}"[:300]
                        )
                    rows.append(self._not_checked(repo, f"{type(e).__name__}: {e}"[:300]))
                    continue
                if outcome is None:
                    stopped = stopped or repo.path
                    rows.append(self._not_checked(repo))
                else:
                    rows.append(outcome.row)
                    self.checked += 1
                    self._collect(repo, outcome)
                if self.opts.progress is not None:
                    self.opts.progress(len(rows), len(repos))
                if stopped is None:
                    fill()
            for repo in it:
                stopped = stopped or repo.path
                rows.append(self._not_checked(repo))
        return rows, stopped

    def _time_left(self) -> bool:
        return self.opts.deadline is None or self.deps.now() < self.opts.deadline - SAFETY_SECONDS

    def _not_checked(self, repo: RepoInfo, why: str = "the run stopped before this repository") -> RepoRow:
        return RepoRow(namespace=repo.namespace, repo=repo.name,
                       cells={t.name: Cell(mode=Mode.NOT_CHECKED, reason=why) for t in self.targets})

    # -- one repository (worker thread) --
    def _repo(self, repo: RepoInfo) -> RepoOutcome | None:
        if not self._time_left():
            return None
        row = RepoRow(namespace=repo.namespace, repo=repo.name)
        tallies: dict[str, Tally] = {}
        with ExitStack() as spills:
            return self._compare(repo, row, tallies, spills)

    def _compare(self, repo: RepoInfo, row: RepoRow, tallies: dict[str, Tally],
                 spills: ExitStack) -> RepoOutcome:
        """Read and classify ``repo`` for every target; each target side's spill is closed by ``spills``."""
        cfg = self.cfg
        live: list[tuple[Target, drift.TargetSide]] = []
        for t in self.targets:
            mode, why = repo_scope(t, repo.namespace, repo.name)
            if mode is not None:
                row.cells[t.name] = Cell(mode=mode, reason=why)
                continue
            if t.name not in self.target_repos:
                row.cells[t.name] = Cell(
                    mode=Mode.UNREADABLE, reason="the target's repositories could not be listed"
                )
                continue
            pair = drift.pair_for(repo, t, self.target_repos[t.name])
            side = spills.enter_context(drift.TargetSide())
            try:
                if pair.target_repo_id is not None:
                    acr = self.deps.target_acr(t)
                    fetch = functools.partial(acr.list_repo_tag_page, t.instance_id, pair.target_repo_id)
                    for page, total in drift.paged(fetch, self.limiters.for_account(t.account_id)):
                        side.add_page(page, total)
            except CloudError as e:
                side.close()
                row.cells[t.name] = Cell(mode=Mode.UNREADABLE, reason=f"{e.code}: {e.message}"[:300])
                with self.lock:
                    self.unreadable.setdefault(t.name, []).append(f"{repo.path}: {e.code}")
                continue
            tallies[t.name] = Tally(keep=cfg.compliance.examples_per_repo)
            live.append((t, side))
        if not live:
            return RepoOutcome(row, tallies)
        records = self.deps.ledger.records_for(cfg.source.instance_id, repo.namespace, repo.name)
        flights, seen = _ledger_view(records)
        source_limiter = self.limiters.for_account(cfg.source.account_id)
        try:
            for page in drift.pages(lambda n: self.deps.source_acr.list_repo_tag_page(
                    cfg.source.instance_id, repo.repo_id, n), source_limiter):
                row.tags += len(page)
                for t, side in live:
                    fl = flights.get(t.name, {})
                    for d in side.classify_page(page, tag_regex=t.tag_regex, override=t.override,
                                                in_flight=functools.partial(_flight, fl)):
                        self._tag(repo, t, d, tallies[t.name], seen.get(t.name, set()))
        except CloudError as e:
            # The source side of this repository failed after retries: every target's cell says so.
            for t, _side in live:
                row.cells[t.name] = Cell(mode=Mode.UNREADABLE, reason=f"source: {e.code}: {e.message}"[:300])
                tallies.pop(t.name, None)
            with self.lock:
                self.unreadable.setdefault("*", []).append(f"{repo.path}: {e.code}")
            return RepoOutcome(row, tallies)
        for t, side in live:
            tally = tallies[t.name]
            fl = flights.get(t.name, {})
            for d in side.finish(tag_regex=t.tag_regex, override=t.override,
                                 in_flight=functools.partial(_flight, fl)):
                if d.state is drift.TagState.EXTRA:
                    tally.add(d)
                else:
                    self._tag(repo, t, d, tally, seen.get(t.name, set()))
            side.close()
            c = tally.counts
            mode = Mode.RULE if tally.rule_id else Mode.ACRSYNC
            row.cells[t.name] = Cell(mode=mode, rule_id=tally.rule_id, ok=c["OK"], missing=c["MISSING"],
                                     differs=c["DIGEST_DIFFERS"], in_flight=c["IN_FLIGHT"], extra=c["EXTRA"],
                                     reason="" if tally.first_tag else "no source tag passes the tag filter")
        return RepoOutcome(row, tallies)

    def _tag(self, repo: RepoInfo, t: Target, d: drift.TagDrift, tally: Tally,
             seen: set[tuple[str, str]]) -> None:
        tally.add(d)
        src = d.source
        if tally.first_tag is None or d.tag < tally.first_tag:
            tally.first_tag = d.tag
            rule = coverage.covering_rule(self.rules, t, repo.namespace, repo.name, d.tag)
            tally.first_rule = rule.rule_id if rule else None
        if d.state not in (drift.TagState.MISSING, drift.TagState.DIGEST_DIFFERS) or src is None:
            return
        rule = coverage.covering_rule(self.rules, t, repo.namespace, repo.name, d.tag,
                                      pushed_at_ms=src.pushed_ms or None)
        if rule is not None:
            tally.rule_missing += 1
            if tally.missing_rule is None or d.tag < tally.missing_rule[0]:
                tally.missing_rule = (d.tag, rule.rule_id)
            keep_first(tally.rule_examples, d, tally.keep)
            return                              # the rule's to replicate; remediation would only note it
        if self._unseen(src, seen):
            tally.unseen_count += 1
            keep_first(tally.unseen, d, 5)
        if self.deps.remediator is not None and self.opts.remediate and t.name not in self.blocked:
            if d.state is drift.TagState.MISSING or (d.state is drift.TagState.DIGEST_DIFFERS and t.override):
                try:
                    outcome = self.deps.remediator.heal(repo, t, src)
                except AcrsyncError as e:       # the ledger or CreateRepoSyncTask failed: counted, not fatal
                    log_decision(log, decision="remediation_failed", repo=repo.path, tag=d.tag, target=t.name,
                                 error=f"{type(e).__name__}: {e}")
                    outcome = "failed"
                tally.remediated[outcome] += 1

    def _unseen(self, src: drift.SourceTag, seen: set[tuple[str, str]]) -> bool:
        """Pushed after acrsync's first run, longer ago than the grace, and never recorded by the ledger."""
        if self.live_since is None or not src.pushed_ms or (src.tag, src.digest) in seen:
            return False
        pushed = src.pushed_ms / 1000
        grace = self.cfg.compliance.events_grace_minutes * 60
        return self.live_since < pushed <= self.started - grace

    # -- main thread: findings from outcomes --
    def _collect(self, repo: RepoInfo, outcome: RepoOutcome) -> None:
        for name, tally in outcome.tallies.items():
            t = next(x for x in self.targets if x.name == name)
            res = self.results[name]
            for state, n in tally.counts.items():
                res.counts[state] = res.counts.get(state, 0) + n
            res.tasks_created += tally.remediated.get("created", 0)
            self.findings += _repo_findings(self.cfg, repo, t, tally)
            self.unseen_total += tally.unseen_count
            for d in tally.unseen:
                if len(self.unseen_examples) < 10:
                    self.unseen_examples.append(f"{repo.path}:{_tag_line(d)} (target {name})")

    def _aggregate_unreadable(self) -> None:
        for name, items in sorted(self.unreadable.items()):
            if name == "*":
                self.findings.append(
                    finding(
                        "SOURCE_UNREADABLE",
                        "*",
                        f"the tags of {len(items)} source repositories could not be listed",
                        evidence=[Evidence(source="ListRepoTag (source)", detail="\n".join(items[:20]))],
                        count=len(items),
                        fix=Fix(
                            summary="run again; if it persists, check cr:ListRepositoryTag on "
                            "the source for the function role"
                        ),
                    )
                )
                continue
            t = next(x for x in self.targets if x.name == name)
            self.results[name].status = "partial"
            self.findings.append(
                finding(
                    "TARGET_UNREADABLE",
                    name,
                    f"the tags of {len(items)} repositories on {t.instance_id} could not "
                    "be listed; they were not compared",
                    evidence=[Evidence(source="ListRepoTag (target)", detail="\n".join(items[:20]))],
                    count=len(items),
                    fix=_reader_fix(t, None),
                )
            )

    def _liveness_finding(self) -> None:
        n = self.unseen_total
        if not n:
            return
        grace = self.cfg.compliance.events_grace_minutes
        self.findings.append(
            finding(
                "EVENTS_NOT_ARRIVING",
                "*",
                f"{n} in-scope tags were pushed more than {grace:g} minutes ago, no sync "
                "rule covers them, and the ledger never saw them: push events are not reaching on_push. "
                "ACR's PushCompleted event is not documented for every region, so check the EventBridge "
                "trigger (or the ACR webhook) end to end",
                count=n,
                evidence=[
                    Evidence(
                        source="ListRepoTag (source) vs the ledger", detail="\n".join(self.unseen_examples)
                    )
                ],
                fix=Fix(
                    summary="check the on_push trigger (EventBridge rule on the default bus with source "
                    "acs.cr and type cr:Artifact:PushCompleted) or configure the ACR webhook to on_push's "
                    "HTTP trigger; meanwhile `acrsync check --remediate` replicates what was missed",
                    commands=["acrsync check --remediate"],
                ),
            )
        )

    def _report(self, rows: list[RepoRow], *, total: int, checked: int, resumed: str | None,
                stopped: str | None, pipe_note: str) -> ComplianceReport:
        rem = self.deps.remediator
        for name, res in self.results.items():
            if not self.opts.remediate or not res.enabled:
                continue
            if name in self.blocked:
                res.remediation = "skipped_blocked"
                self.findings.append(finding(
                    "REMEDIATION_SKIPPED", name, f"no sync tasks were created for {name}: its grant or "
                    "prerequisite check has errors (listed in this report); fix those first",
                    fix=Fix(summary=f"acrsync grants apply --target {name}",
                            commands=[f"acrsync grants apply --target {name}"])))
            elif rem is not None and rem.limit_reached:
                res.remediation = "limit_reached"
            else:
                res.remediation = "done"
        if rem is not None and rem.limit_reached:
            self.findings.append(
                finding(
                    "REMEDIATION_LIMIT",
                    "*",
                    f"compliance.max_tasks_per_run ({rem.limit}) was reached; the next run creates more",
                    fix=Fix(summary="wait for the next run, or raise compliance.max_tasks_per_run"),
                )
            )
        for res in self.results.values():
            if res.status == "checked" and stopped is not None and res.enabled:
                res.status = "partial"
        scope = Scope(source_instance=self.cfg.source.instance_id, source_region=self.cfg.source.region,
                      targets=[t.name for t in self.targets], repos_total=total, repos_checked=checked,
                      resumed_from=resumed, stopped_at=stopped, pipeline=pipe_note,
                      remediate=self.opts.remediate, trigger=self.opts.trigger)
        finished = self.deps.clock.now()
        report = ComplianceReport(
            id=report_id(self.started), started_at=self.started, finished_at=finished, verdict="compliant",
            complete=stopped is None, scope=scope, targets=list(self.results.values()), rows=rows,
            findings=self.findings, calls=dict(sorted((self.deps.calls or {}).items())),
            tasks_created=rem.created if rem is not None else 0)
        return finalize(report)


def _flight(flights: dict[tuple[str, str], str], tag: str, digest: str) -> str | None:
    """drift's ``in_flight(tag, digest)`` over one target's open records."""
    return flights.get((tag, digest))


def _ledger_view(
    records: list[Record],
) -> tuple[dict[str, dict[tuple[str, str], str]], dict[str, set[tuple[str, str]]]]:
    """Per target: open records bringing (tag, digest) in, and every (tag, digest) the ledger has seen."""
    flights: dict[str, dict[tuple[str, str], str]] = {}
    seen: dict[str, set[tuple[str, str]]] = {}
    for rec in records:
        key = (rec.image.tag, drift.bare(rec.image.digest))
        seen.setdefault(rec.target, set()).add(key)
        if rec.status in IN_FLIGHT_STATUSES and not rec.gave_up:
            what = f"ledger {rec.status.value}" + (f", task {rec.task_id}" if rec.task_id else "")
            task_status = next((a.status for a in reversed(rec.history) if a.task_id == rec.task_id), None)
            if rec.task_id and TaskPhase.of(task_status) is TaskPhase.UNKNOWN:
                what += f" with status {task_status!r} ({UNKNOWN_STATUS})"
            flights.setdefault(rec.target, {})[key] = what
    return flights, seen


def _reader_fix(t: Target, e: CloudError | None) -> Fix:
    if isinstance(e, (AccessDenied, NotFound)) or e is None:
        return Fix(
            summary=f"the reader role needs cr:ListRepository and cr:ListRepositoryTag on {t.instance_id}: "
            f"`acrsync permissions --principal reader` prints its policy; `acrsync grants apply "
            f"--target {t.name}` creates it",
            commands=["acrsync permissions --principal reader", f"acrsync grants apply --target {t.name}"],
        )
    return Fix(summary="the target was throttled or failed after retries; run the check again, or lower "
                       "compliance.qps")


def _repo_findings(cfg: Config, repo: RepoInfo, t: Target, tally: Tally) -> list[Finding]:
    out: list[Finding] = []
    c = tally.counts
    ex = tally.examples
    path = repo.path
    remediated = sum(tally.remediated.get(k, 0) for k in ("created", "queued"))
    healed = f"; this run created {remediated} sync task(s) for them" if remediated else ""
    if c["MISSING"]:
        first = ex["MISSING"][0]
        cmd = (f"aliyun cr CreateRepoSyncTask --InstanceId {cfg.source.instance_id} --RepoId {repo.repo_id} "
               f"--Tag {first.tag} --TargetRegionId {t.region} --TargetInstanceId {t.instance_id} "
               f"--TargetNamespace {t.target_namespace or repo.namespace} --TargetRepoName {repo.name} "
               f"--TargetTag {first.tag}" + (f" --TargetUserId {t.account_id}"
                                             if t.account_id != cfg.source.account_id else ""))
        out.append(
            finding(
                "TAG_MISSING",
                t.name,
                f"{c['MISSING']} tag(s) of {path} are on the source but not on {t.name}{healed}",
                repo=path,
                count=c["MISSING"],
                evidence=[Evidence(source=f"ListRepoTag {path}", detail=_tag_line(d)) for d in ex["MISSING"]],
                fix=Fix(
                    summary=f"`acrsync check --target {t.name} --remediate` creates the sync tasks through "
                    "the ledger (exactly once); or one by hand",
                    commands=[f"acrsync check --target {t.name} --remediate", cmd],
                ),
            )
        )
    if c["DIGEST_DIFFERS"]:
        if t.override:
            msg = (
                f"{c['DIGEST_DIFFERS']} tag(s) of {path} point to another digest on {t.name}; the target has "
                f"override: true, so a sync task replaces them{healed}"
            )
            fix = Fix(summary=f"acrsync check --target {t.name} --remediate",
                      commands=[f"acrsync check --target {t.name} --remediate"])
        else:
            msg = (
                f"{c['DIGEST_DIFFERS']} tag(s) of {path} point to another digest on {t.name}; the target has "
                "override: false, so a sync task would not overwrite them"
            )
            fix = Fix(summary=f"decide which image is right: set override: true on target {t.name} and "
                              "remediate, or delete (or re-tag) the tag on the target and remediate")
        out.append(finding("DIGEST_DIFFERS", t.name, msg, repo=path, count=c["DIGEST_DIFFERS"], fix=fix,
                           evidence=[Evidence(source=f"ListRepoTag {path}", detail=_tag_line(d))
                                     for d in ex["DIGEST_DIFFERS"]]))
    if tally.rule_missing:
        out.append(finding(
            "RULE_NOT_REPLICATING", t.name, f"{tally.rule_missing} missing or different tag(s) of {path} are "
            f"covered by sync rule {tally.rule_id}, which should have replicated them on push", repo=path,
            count=tally.rule_missing,
            evidence=[Evidence(source=f"ListRepoSyncRule {tally.rule_id}", detail=_tag_line(d))
                      for d in tally.rule_examples],
            fix=Fix(summary="check the rule's tasks in the ACR console (instance > Repositories > "
                            "Synchronization); to replicate one tag now, run a task by the rule",
                    commands=[f"aliyun cr CreateRepoSyncTaskByRule --InstanceId {cfg.source.instance_id} "
                              f"--RepoId {repo.repo_id} --SyncRuleId {tally.rule_id} --Tag "
                              f"{tally.rule_examples[0].tag if tally.rule_examples else '<tag>'}"])))
    if c["IN_FLIGHT"]:
        out.append(
            finding(
                "IN_FLIGHT",
                t.name,
                f"{c['IN_FLIGHT']} tag(s) of {path} are on their way to {t.name}",
                repo=path,
                count=c["IN_FLIGHT"],
                evidence=[Evidence(source="ledger", detail=_tag_line(d)) for d in ex["IN_FLIGHT"]],
            )
        )
    unknown = [d for d in ex.get("IN_FLIGHT", []) if d.in_flight and UNKNOWN_STATUS in d.in_flight]
    if unknown:
        out.append(
            finding(
                UNKNOWN_STATUS,
                t.name,
                f"{len(unknown)} sync task(s) of {path} toward {t.name} report a status acrsync "
                "does not know; they are treated as still running (never retried) until the stuck rule acts",
                repo=path,
                count=len(unknown),
                evidence=[Evidence(source="ledger", detail=_tag_line(d)) for d in unknown],
                fix=Fix(
                    summary="look at the task in the ACR console; reconcile flags it stuck after "
                    "reconcile.stuck_after_seconds (and cancels and retries it with cancel_stuck: true)"
                ),
            )
        )
    if c["EXTRA"]:
        out.append(finding("EXTRA_TAGS", t.name, f"{c['EXTRA']} tag(s) exist only on {t.name} in "
                           f"{t.target_namespace or repo.namespace}/{repo.name} (acrsync never deletes)",
                           repo=path, count=c["EXTRA"],
                           evidence=[Evidence(source="ListRepoTag (target)", detail=f"{d.tag} sha256:"
                                              f"{(d.target_digest or '')[:12]}") for d in ex["EXTRA"]]))
    return out


def run(deps: Deps, opts: Options | None = None) -> ComplianceReport:
    """One compliance run; never raises for a cloud error (it becomes a finding)."""
    opts = opts or Options()
    report = Run(deps, opts).execute()
    log_decision(log, decision="compliance_summary", report_id=report.id, **{
        k: v for k, v in report.summary().items() if k != "counts"}, counts=json.dumps(report.counts()))
    return report
