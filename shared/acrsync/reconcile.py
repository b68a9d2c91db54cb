"""Reconcile: read the truth from ACR and repair the ledger, whatever events did or did not arrive.

One run:
1. scan the source instance's newest sync tasks down to the last run's high-water mark (one
   ListRepoSyncTask page when nothing is new): this sees every task made since, rule-made or ours;
2. read the open records in pages (oldest first, resuming at the cursor a budget-stopped run left)
   and fetch their tasks' status the cheaper way per repository: a ListRepoSyncTask page covers many
   records of one repository, a GetRepoSyncTask covers one;
3. decide per record (``acrsync.lifecycle``, pure) and write with compare-and-set; create, retry or
   cancel tasks as decided;
4. attach rule-made tasks toward configured targets (COVERED records, or new records);
5. stop before the deadline with a cursor; store and log a summary.
Overlapping runs are harmless: every write is compare-and-set, and a task is created only by the
run that won the claim on its record.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from acrsync import lifecycle
from acrsync.cloud.errors import BudgetExhausted, CloudError, NotFound
from acrsync.jsonlog import log_decision
from acrsync.ledger import VersionConflict
from acrsync.lifecycle import Action
from acrsync.model import SyncTask
from acrsync.push import PushDeps, create_task
from acrsync.records import ImageRef, Origin, Record, Report, Status, blocking_finding

log = logging.getLogger("acrsync.reconcile")

CURSOR = "reconcile.cursor"
HIGH_WATER = "reconcile.scan_ms"
SCAN_OVERLAP_MS = 15 * 60 * 1000      # tasks can become visible slightly out of order
FIRST_SCAN_PAGES = 10                 # how far back the very first run looks for rule-made tasks
SAFETY_SECONDS = 5.0                  # stop this long before the deadline
OPEN_BATCH = 5000                     # open records read (and their tasks fetched) per batch


@dataclass
class RunSummary:
    records_seen: int = 0
    updated: int = 0
    created: int = 0
    retried: int = 0
    adopted: int = 0
    stuck_found: int = 0
    cancelled: int = 0
    gave_up: int = 0
    blocked: int = 0
    rule_tasks_imported: int = 0
    conflicts: int = 0
    complete: bool = True             # False: stopped at the deadline, cursor saved
    calls: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    oldest_open_age_s: float | None = None
    planned: list[dict] = field(default_factory=list)   # dry run: what would be done

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not (k == "planned" and not v)}


def run(deps: PushDeps, *, deadline: float | None = None, dry_run: bool = False,
        calls=None, now: Callable[[], float] = time.time) -> RunSummary:
    """One reconcile pass (or as much of it as fits before ``deadline``, a time as ``now`` reads it:
    wall-clock seconds, as FC's deadline is)."""
    r = _Run(deps, deadline, dry_run, now)
    before = Counter(calls) if calls is not None else None
    try:
        r.scan_new_tasks()
        r.reconcile_open()
        r.import_rule_tasks()
    except BudgetExhausted:
        r.s.complete = False
        log.warning("reconcile stopped: time budget exhausted")
    if not dry_run and r.s.complete:
        deps.ledger.set_checkpoint(CURSOR, None)
    if calls is not None:
        r.s.calls = dict(Counter(calls) - before)
    r.s.counts = deps.ledger.counts_by_status()
    r.s.oldest_open_age_s = r.oldest_open_age()
    if not dry_run:
        now = deps.clock.now()
        rid = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        deps.ledger.put_report(Report(kind="reconcile", id=rid, created_at=now,
                                      summary={k: v for k, v in r.s.to_dict().items() if k != "planned"}))
    log_decision(log, decision="reconcile_summary", **{k: v for k, v in r.s.to_dict().items()
                                                       if k != "planned"})
    return r.s


class _Run:
    def __init__(self, deps: PushDeps, deadline: float | None, dry_run: bool, now: Callable[[], float]):
        self.d = deps
        self._now = now
        self.cfg = deps.config
        self.deadline = deadline
        self.dry = dry_run
        self.s = RunSummary()
        self.instance = self.cfg.source.instance_id
        self.seen: dict[str, SyncTask] = {}          # task id -> task, from every read this run
        self.targets_by_instance = {t.instance_id: t for t in self.cfg.targets}
        self.targets = {t.name: t for t in self.cfg.targets}
        self._verdicts: dict[str, bool] = {}

    # -- budget ---------------------------------------------------------------------------------
    def time_left(self) -> bool:
        return self.deadline is None or self._now() < self.deadline - SAFETY_SECONDS

    # -- 1. new tasks ---------------------------------------------------------------------------
    def scan_new_tasks(self) -> None:
        mark = self.d.ledger.get_checkpoint(HIGH_WATER)
        floor_ms = int(mark) - SCAN_OVERLAP_MS if mark else None
        newest = int(mark) if mark else 0
        page = 1
        while self.time_left():
            tasks, total = self.d.acr.list_repo_sync_tasks(self.instance, page_no=page,
                                                           page_size=self.cfg.reconcile.page_size)
            for t in tasks:
                self.seen[t.task_id] = t
                newest = max(newest, t.created_ms)
            done = (not tasks or page * self.cfg.reconcile.page_size >= total
                    or (floor_ms is not None and tasks[-1].created_ms < floor_ms)
                    or (floor_ms is None and page >= FIRST_SCAN_PAGES))
            if done:
                break
            page += 1
        if newest and not self.dry:
            self.d.ledger.set_checkpoint(HIGH_WATER, str(newest))

    # -- 2/3. open records ----------------------------------------------------------------------
    def next_batch(self, cursor: str | None) -> tuple[list[Record], str | None]:
        """Up to OPEN_BATCH open records from ``cursor`` (ledger reads are cheap; grouping many records
        per repository is what makes the ACR reads cheap)."""
        batch: list[Record] = []
        while len(batch) < OPEN_BATCH:
            page = self.d.ledger.open_records(limit=min(1000, OPEN_BATCH - len(batch)), cursor=cursor)
            batch.extend(page.records)
            cursor = page.cursor
            if cursor is None:
                break
        return batch, cursor

    def reconcile_open(self) -> None:
        start = self.d.ledger.get_checkpoint(CURSOR)
        while self.time_left():
            batch, after = self.next_batch(start)
            self.fetch_tasks(batch)
            for rec in batch:
                if not self.time_left():
                    # Resume at this batch: records done in it are closed or unchanged, so redoing is cheap.
                    self._save_cursor(start)
                    self.s.complete = False
                    return
                self.s.records_seen += 1
                self.one(rec)
            if after is None:
                return
            start = after
            self._save_cursor(start)
        self.s.complete = False

    def _save_cursor(self, cursor: str | None) -> None:
        if not self.dry:
            self.d.ledger.set_checkpoint(CURSOR, cursor)

    def fetch_tasks(self, records: list[Record]) -> None:
        """Read the status of these records' tasks, choosing per repository the cheaper read."""
        groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for rec in records:
            if rec.task_id and rec.task_id not in self.seen:
                groups[(rec.image.namespace, rec.image.repo)].append(rec)
            elif rec.task_id is None and rec.status is Status.QUEUED:
                groups[(rec.image.namespace, rec.image.repo)].append(rec)   # orphan candidates
        for (ns, repo), recs in groups.items():
            if not self.time_left():
                return
            wanted = {r.task_id for r in recs if r.task_id}
            orphans = [r for r in recs if r.task_id is None]
            if len(wanted) < 2 and not orphans:
                continue   # one task: GetRepoSyncTask in one() costs the same as a list page
            oldest_ms = int(min(r.created_at for r in recs) * 1000) - SCAN_OVERLAP_MS
            page = 1
            while self.time_left():
                tasks, total = self.d.acr.list_repo_sync_tasks(self.instance, namespace=ns, repo=repo,
                                                               page_no=page, page_size=self.cfg.reconcile.page_size)
                for t in tasks:
                    self.seen[t.task_id] = t
                    wanted.discard(t.task_id)
                if (not tasks or page * self.cfg.reconcile.page_size >= total or not wanted and not orphans
                        or tasks[-1].created_ms < oldest_ms):
                    break
                page += 1

    def task_of(self, rec: Record) -> SyncTask | None:
        if rec.task_id is None:
            return None
        t = self.seen.get(rec.task_id)
        if t is None:
            try:
                t = self.d.acr.get_repo_sync_task(self.instance, rec.task_id)
            except NotFound:
                return None
            self.seen[t.task_id] = t
        return t

    def grants_clean(self, target_name: str) -> bool:
        if target_name not in self._verdicts:
            target = self.targets.get(target_name)
            self._verdicts[target_name] = bool(target and self.d.grants.verdict(target).clean)
        return self._verdicts[target_name]

    def one(self, rec: Record) -> None:
        target = self.targets.get(rec.target)
        if target is None:
            return    # a target removed from the config: its records stay as they are
        now = self.d.clock.now()
        if rec.task_id is None and rec.status is Status.QUEUED:
            orphan = self.find_orphan(rec, target.instance_id)
            if orphan is not None:
                changes = lifecycle.adopt(rec, orphan)
                rec = self.write(rec, {**changes, "status": Status(orphan.status)}, "adopted orphan task")
                if rec is None:
                    return
                self.s.adopted += 1
        task = self.task_of(rec)
        needs_grants = rec.status in (Status.BLOCKED, Status.QUEUED, Status.ERROR, Status.CANCELED)
        ctx = lifecycle.Context(now=now, policy=self.cfg.reconcile,
                                grants_clean=self.grants_clean(rec.target) if needs_grants else None,
                                rand=self.d.rand.random())
        dec = lifecycle.decide(rec, task, ctx)
        if self.dry:
            if dec.writes or dec.action is not Action.NONE:
                self.s.planned.append({"key": rec.key, "action": dec.action.value, "why": dec.why,
                                       "changes": sorted(dec.changes)})
            return
        if dec.stuck_found:
            self.s.stuck_found += 1
            log_decision(log, decision="stuck", key=rec.key, task_id=rec.task_id, why=dec.why)
        if dec.gave_up:
            self.s.gave_up += 1
        if dec.changes.get("status") is Status.BLOCKED:
            self.s.blocked += 1
        if dec.writes:
            rec = self.write(rec, dec.changes, dec.why)
            if rec is None:
                return
        if dec.action is Action.CREATE_TASK:
            self.create(rec, target)
        elif dec.action is Action.CANCEL_TASK:
            self.cancel(rec)

    def find_orphan(self, rec: Record, target_instance: str) -> SyncTask | None:
        if not lifecycle.due(rec, lifecycle.Context(now=self.d.clock.now(), policy=self.cfg.reconcile,
                                                    grants_clean=None, rand=0.0)):
            return None   # too young: the push that made it may still be creating its task
        for t in sorted(self.seen.values(), key=lambda t: t.created_ms):
            if lifecycle.matches_orphan(rec, t, target_instance) and self.d.ledger.get_by_task(t.task_id) is None:
                return t
        return None

    def write(self, rec: Record, changes: dict, why: str) -> Record | None:
        try:
            new = self.d.ledger.update(rec.model_copy(update={**changes, "updated_at": self.d.clock.now()}))
        except VersionConflict:
            self.s.conflicts += 1
            return None
        self.s.updated += 1
        log_decision(log, decision="update", key=rec.key, why=why,
                     status=new.status.value, task_id=new.task_id)
        return new

    def create(self, rec: Record, target) -> None:
        # Claim: bump the version so a concurrent run's claim fails; only the winner creates a task.
        claimed = self.write(rec, {"status": Status.QUEUED, "next_retry_at": None}, "claim for a new task")
        if claimed is None:
            return
        repo = self.d.resolver.repository(self.d.acr, rec.image.namespace, rec.image.repo)
        if repo is None:
            self.write(claimed, {"status": Status.BLOCKED, "finding": blocking_finding(
                claimed.target, "SOURCE_REPO_MISSING", "the repository no longer exists on the source",
                "nothing to replicate; the record can be ignored")}, "source repository missing")
            return
        retry = claimed.attempts > 0
        outcome = create_task(claimed, repo.repo_id, target, self.d)
        if outcome == "created":
            self.s.created += 1
            if retry:
                self.s.retried += 1

    def cancel(self, rec: Record) -> None:
        try:
            self.d.acr.cancel_repo_sync_task(self.instance, rec.task_id)
        except CloudError as e:
            log_decision(log, decision="cancel_failed", key=rec.key, code=e.code)
            return
        self.s.cancelled += 1
        self.write(rec, {"status": Status.CANCELED}, "cancelled a stuck task")

    # -- 4. rule-made tasks ---------------------------------------------------------------------
    def import_rule_tasks(self) -> None:
        for t in sorted(self.seen.values(), key=lambda t: t.created_ms):
            if not self.time_left():
                self.s.complete = False
                return
            if not t.rule_id or t.source.instance_id not in ("", self.instance):
                continue
            target = self.targets_by_instance.get(t.target.instance_id)
            if target is None or self.d.ledger.get_by_task(t.task_id) is not None:
                continue
            ns, repo, tag = t.source.namespace, t.source.repo, t.source.tag
            candidates = [r for r in self.d.ledger.records_for(self.instance, ns, repo, tag)
                          if r.target == target.name and r.task_id is None and r.status is Status.COVERED]
            if self.dry:
                self.s.planned.append({"task": t.task_id, "action": "import_rule_task"})
                continue
            if candidates:
                rec = candidates[0]
                if self.write(rec, {**lifecycle.adopt(rec, t), "status": Status(t.status),
                                    "task_issue": t.issue}, "rule task attached") is not None:
                    self.s.rule_tasks_imported += 1
                continue
            now = self.d.clock.now()
            image = ImageRef(instance_id=self.instance, namespace=ns, repo=repo, tag=tag, digest=None)
            rec = Record(image=image, target=target.name, origin=Origin.RULE, status=Status(t.status),
                         created_at=t.created_ms / 1000 if t.created_ms else now, updated_at=now)
            rec = rec.model_copy(update=lifecycle.adopt(rec, t))
            created, _ = self.d.ledger.create_if_absent(rec)
            if created:
                self.s.rule_tasks_imported += 1

    def oldest_open_age(self) -> float | None:
        page = self.d.ledger.open_records(limit=1)
        if not page.records:
            return None
        return max(0.0, self.d.clock.now() - page.records[0].created_at)
