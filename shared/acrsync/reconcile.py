"""Reconcile: read the truth from ACR and repair the ledger, whatever events did or did not arrive.

One run, as much of it as fits in the invocation's ``Budget`` (its one deadline):
1. scan the source instance's newest sync tasks down to the last run's high-water mark (one
   ListRepoSyncTask page when nothing is new), page by page: rule-made tasks toward configured targets
   are attached to COVERED records or become new records;
2. read the open records in batches (oldest first, resuming at the cursor a budget-stopped run left),
   fetch their tasks' status the cheaper way per repository (a ListRepoSyncTask page covers many records
   of one repository, a GetRepoSyncTask covers one), and decide per record (``acrsync.lifecycle``, pure);
3. stop before the budget ends, with a cursor; store and log a summary.

Each phase is split in two, as ``acrsync.grants.apply`` is: ``Planner`` reads and decides, returning
steps; ``Applier`` writes them (compare-and-set) and creates, retries or cancels tasks. A dry run plans
and prints the steps; nothing else differs. Memory stays flat in the number of tasks read: a run holds
one scan page or one batch of records, and what it has read of tasks in a bounded cache of compact
entries (``TaskCache``), so a repository page read for one batch still serves the next.
Overlapping runs are harmless: every write is compare-and-set, and a task is created only by the run
that won the claim on its record.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import field
from datetime import datetime, timezone
from typing import Any

from acrsync import lifecycle
from acrsync.cloud.errors import BudgetExhausted, CloudError, NotFound
from acrsync.config import Target
from acrsync.deps import Deps
from acrsync.jsonlog import log_decision
from acrsync.ledger import VersionConflict
from acrsync.lifecycle import Action, Flag, RecordChanges
from acrsync.model import ImageSide, SyncTask
from acrsync.push import Outcome, create_task
from acrsync.records import ImageRef, Origin, Record, Report, Status, blocking_finding
from acrsync.value import Frozen, Value, dataclass

log = logging.getLogger("acrsync.reconcile")

CURSOR = "reconcile.cursor"
HIGH_WATER = "reconcile.scan_ms"
SCAN_OVERLAP_MS = 15 * 60 * 1000      # tasks can become visible slightly out of order
FIRST_SCAN_PAGES = 10                 # how far back the very first run looks for rule-made tasks
WRAP_UP_SECONDS = 5.0                 # budget kept to save the cursor and the report after the last step
OPEN_BATCH = 5000                     # open records read (and their tasks fetched) per batch
TASK_CACHE = 2 * OPEN_BATCH            # tasks read that a run keeps (compact, ~0.6 KiB each), oldest dropped
FLAGGED_MAX = 100                     # flagged records listed in one summary (all are counted and logged)


@dataclass
class RunSummary(Value):
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
    unknown_status: int = 0           # records whose task has a status acrsync does not know
    complete: bool = True             # False: stopped at the deadline, cursor saved
    calls: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    oldest_open_age_s: float | None = None
    # e.g. {"flag": "UNKNOWN_STATUS", "key", ...}
    flagged: list[dict[str, Any]] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)   # dry run: what would be done

    def flag(self, flag: Flag, **fields: object) -> None:
        if flag is Flag.UNKNOWN_STATUS:
            self.unknown_status += 1
        if len(self.flagged) < FLAGGED_MAX:
            self.flagged.append({"flag": flag.value, **fields})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not (k in ("planned", "flagged") and not v)}


# ---- steps: what a plan holds ---------------------------------------------------------------------

@dataclass(frozen=True)
class RecordStep(Frozen):
    """What to do with one open record: a compare-and-set write, then maybe an action on its task."""

    record: Record
    target: Target
    changes: RecordChanges
    action: Action
    why: str
    adopted: SyncTask | None = None   # an orphan task this record is linked to
    stuck_found: bool = False
    gave_up: bool = False
    flags: frozenset[Flag] = frozenset()

    @property
    def does_something(self) -> bool:
        return bool(self.changes) or self.action is not Action.NONE

    def describe(self) -> dict[str, Any]:
        return {"key": self.record.key, "action": self.action.value, "why": self.why,
                "changes": self.changes.names}


@dataclass(frozen=True)
class RuleTaskStep(Frozen):
    """A rule-made task toward a configured target: attach it to a COVERED record, or record it anew."""

    task: SyncTask
    target: Target
    covered: Record | None

    def describe(self) -> dict[str, Any]:
        return {"task": self.task.task_id, "action": "import_rule_task",
                "key": self.covered.key if self.covered else None}


# ---- planning: reads and decisions, no writes -----------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True, repr=False, eq=False)
class SeenTask(Frozen):
    """What reconcile needs of a task it has read, in about 0.6 KiB (a ``SyncTask`` is ~5 KiB)."""

    task_id: str
    status: str
    issue: str | None
    rule_id: str | None
    batch_id: str | None
    created_ms: int
    source_instance: str
    namespace: str
    repo: str
    tag: str
    target_instance: str

    @classmethod
    def of(cls, t: SyncTask) -> SeenTask:
        return cls(t.task_id, t.status, t.issue, t.rule_id, t.batch_id, t.created_ms, t.source.instance_id,
                   t.source.namespace, t.source.repo, t.source.tag, t.target.instance_id)

    def task(self) -> SyncTask:
        return SyncTask(task_id=self.task_id, status=self.status, issue=self.issue, rule_id=self.rule_id,
                        batch_id=self.batch_id, created_ms=self.created_ms,
                        source=ImageSide(instance_id=self.source_instance, namespace=self.namespace,
                                         repo=self.repo, tag=self.tag),
                        target=ImageSide(instance_id=self.target_instance))


class TaskCache:
    """The tasks a run has read, at most ``limit`` (the oldest read dropped first): flat memory whatever
    the number of tasks read, and a page read for one batch of records still serves the next batch."""

    def __init__(self, limit: int = TASK_CACHE):
        self._limit = limit
        self._tasks: OrderedDict[str, SeenTask] = OrderedDict()

    def add(self, task: SyncTask) -> None:
        self._tasks[task.task_id] = SeenTask.of(task)
        self._tasks.move_to_end(task.task_id)
        while len(self._tasks) > self._limit:
            self._tasks.popitem(last=False)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def get(self, task_id: str) -> SyncTask | None:
        seen = self._tasks.get(task_id)
        return None if seen is None else seen.task()

    def manual_for(self, namespace: str, repo: str, tag: str) -> list[SyncTask]:
        """Manual tasks of one tag (orphan candidates), oldest first."""
        hits = [t for t in self._tasks.values()
                if not t.rule_id and t.tag == tag and t.repo == repo and t.namespace == namespace]
        return [t.task() for t in sorted(hits, key=lambda t: t.created_ms)]


class Planner:
    """Reads ACR and the ledger and decides; every write is left to the ``Applier``."""

    def __init__(self, deps: Deps, summary: RunSummary):
        self.deps = deps
        self.config = deps.config
        self.summary = summary
        self.instance = deps.config.source.instance_id
        self.tasks = TaskCache()
        self.targets = {t.name: t for t in deps.config.targets}
        self.targets_by_instance = {t.instance_id: t for t in deps.config.targets}
        self._verdicts: dict[str, bool] = {}

    def time_left(self) -> bool:
        return self.deps.budget.remaining() > WRAP_UP_SECONDS

    # -- 1. the scan of new tasks ---------------------------------------------------------------
    def scan_pages(self) -> Iterator[list[RuleTaskStep]]:
        """Per page of the newest tasks, the rule-made tasks to import; ``high_water`` afterwards."""
        mark = self.deps.ledger.get_checkpoint(HIGH_WATER)
        floor_ms = int(mark) - SCAN_OVERLAP_MS if mark else None
        self.high_water = int(mark) if mark else 0
        page_size = self.config.reconcile.page_size
        page = 1
        while self.time_left():
            tasks, total = self.deps.acr.list_repo_sync_tasks(self.instance, page_no=page,
                                                              page_size=page_size)
            steps = []
            for task in tasks:
                self.tasks.add(task)
                self.high_water = max(self.high_water, task.created_ms)
                step = self.rule_task_step(task)
                if step is not None:
                    steps.append(step)
            yield steps
            if (not tasks or page * page_size >= total
                    or (floor_ms is not None and tasks[-1].created_ms < floor_ms)
                    or (floor_ms is None and page >= FIRST_SCAN_PAGES)):
                return
            page += 1
        self.summary.complete = False

    def rule_task_step(self, task: SyncTask) -> RuleTaskStep | None:
        if not task.rule_id or task.source.instance_id not in ("", self.instance):
            return None
        target = self.targets_by_instance.get(task.target.instance_id)
        if target is None or self.deps.ledger.get_by_task(task.task_id) is not None:
            return None
        src = task.source
        covered = [r for r in self.deps.ledger.records_for(self.instance, src.namespace, src.repo, src.tag)
                   if r.target == target.name and r.task_id is None and r.status is Status.COVERED]
        return RuleTaskStep(task, target, covered[0] if covered else None)

    # -- 2. open records ------------------------------------------------------------------------
    def next_batch(self, cursor: str | None) -> tuple[list[Record], str | None]:
        """Up to OPEN_BATCH open records from ``cursor`` (ledger reads are cheap; grouping many records
        per repository is what makes the ACR reads cheap)."""
        batch: list[Record] = []
        while len(batch) < OPEN_BATCH:
            page = self.deps.ledger.open_records(limit=min(1000, OPEN_BATCH - len(batch)), cursor=cursor)
            batch.extend(page.records)
            cursor = page.cursor
            if cursor is None:
                break
        return batch, cursor

    def plan_batch(self, records: list[Record]) -> list[RecordStep] | None:
        """The steps for one batch; None when the budget ran out before the batch was planned."""
        if not self.fetch_tasks(records):
            return None
        steps = []
        taken: set[str] = set()          # orphan tasks already given to a record of this batch
        for rec in records:
            if not self.time_left():
                return None
            self.summary.records_seen += 1
            step = self.plan_record(rec, taken)
            if step is not None:
                steps.append(step)
        return steps

    def fetch_tasks(self, records: list[Record]) -> bool:
        """Read the tasks these records need into the cache, the cheaper way per repository; False when the
        budget ran out first."""
        groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for rec in records:
            if rec.task_id and rec.task_id not in self.tasks:
                groups[(rec.image.namespace, rec.image.repo)].append(rec)
            elif rec.task_id is None and rec.status is Status.QUEUED:
                groups[(rec.image.namespace, rec.image.repo)].append(rec)   # orphan candidates
        page_size = self.config.reconcile.page_size
        for (ns, repo), recs in groups.items():
            wanted = {r.task_id for r in recs if r.task_id}
            orphan_tags = {r.image.tag for r in recs if r.task_id is None}
            if len(wanted) < 2 and not orphan_tags:
                continue   # one task: GetRepoSyncTask in plan_record costs the same as a list page
            oldest_ms = int(min(r.created_at for r in recs) * 1000) - SCAN_OVERLAP_MS
            page = 1
            while True:
                if not self.time_left():
                    return False
                tasks, total = self.deps.acr.list_repo_sync_tasks(self.instance, namespace=ns, repo=repo,
                                                                  page_no=page, page_size=page_size)
                for t in tasks:
                    self.tasks.add(t)
                    wanted.discard(t.task_id)
                if (not tasks or page * page_size >= total or not wanted and not orphan_tags
                        or tasks[-1].created_ms < oldest_ms):
                    break
                page += 1
        return True

    def task_of(self, rec: Record) -> SyncTask | None:
        if rec.task_id is None:
            return None
        task = self.tasks.get(rec.task_id)
        if task is None:
            try:
                task = self.deps.acr.get_repo_sync_task(self.instance, rec.task_id)
            except NotFound as e:
                if e.service != "cr":
                    raise
                return None
        return task

    def grants_clean(self, target: Target) -> bool:
        if target.name not in self._verdicts:
            verdict = self.deps.grants.verdict(target, self.deps.session)
            self._verdicts[target.name] = verdict.clean
        return self._verdicts[target.name]

    def context(self, rec: Record | None = None, target: Target | None = None) -> lifecycle.Context:
        needs_grants = rec is not None and target is not None and rec.status in (
            Status.BLOCKED, Status.QUEUED, Status.ERROR, Status.CANCELED)
        return lifecycle.Context(now=self.deps.clock.now(), policy=self.config.reconcile,
                                 grants_clean=self.grants_clean(target) if needs_grants and target else None,
                                 rand=self.deps.rand.random())

    def plan_record(self, rec: Record, taken: set[str]) -> RecordStep | None:
        target = self.targets.get(rec.target)
        if target is None:
            return None    # a target removed from the config: its records stay as they are
        adopted = None
        changes = lifecycle.NO_CHANGES
        if rec.task_id is None and rec.status is Status.QUEUED:
            adopted = self.find_orphan(rec, target.instance_id, taken)
            if adopted is not None:
                taken.add(adopted.task_id)
                changes = lifecycle.adopt(rec, adopted)
                rec_now = changes.apply(rec, now=rec.updated_at)   # decide on the record as adopted
                decision = lifecycle.decide(rec_now, adopted, self.context(rec_now, target))
                return RecordStep(rec, target, changes.merged(decision.changes), decision.action,
                                  f"adopted orphan task {adopted.task_id}; {decision.why}", adopted=adopted,
                                  stuck_found=decision.stuck_found, gave_up=decision.gave_up,
                                  flags=decision.flags)
        task = self.task_of(rec)
        decision = lifecycle.decide(rec, task, self.context(rec, target))
        step = RecordStep(rec, target, decision.changes, decision.action, decision.why,
                          stuck_found=decision.stuck_found, gave_up=decision.gave_up, flags=decision.flags)
        if Flag.UNKNOWN_STATUS in step.flags:
            return step                  # reported even when nothing is written
        return step if step.does_something else None

    def find_orphan(self, rec: Record, target_instance: str, taken: set[str]) -> SyncTask | None:
        if not lifecycle.due(rec, self.context()):
            return None   # too young: the push that made it may still be creating its task
        for t in self.tasks.manual_for(rec.image.namespace, rec.image.repo, rec.image.tag):
            if (t.task_id not in taken and lifecycle.matches_orphan(rec, t, target_instance)
                    and self.deps.ledger.get_by_task(t.task_id) is None):
                return t
        return None


# ---- applying: the writes and the task actions ----------------------------------------------------

class Applier:
    """Carries out a plan: compare-and-set writes, task creation (after a claim), cancellation."""

    def __init__(self, deps: Deps, summary: RunSummary):
        self.deps = deps
        self.summary = summary
        self.instance = deps.config.source.instance_id

    def save_cursor(self, cursor: str | None) -> None:
        self.deps.ledger.set_checkpoint(CURSOR, cursor)

    def save_high_water(self, mark_ms: int) -> None:
        if mark_ms:
            self.deps.ledger.set_checkpoint(HIGH_WATER, str(mark_ms))

    def write(self, rec: Record, changes: RecordChanges, why: str) -> Record | None:
        try:
            new = self.deps.ledger.update(changes.apply(rec, now=self.deps.clock.now()))
        except VersionConflict:
            self.summary.conflicts += 1
            return None
        self.summary.updated += 1
        log_decision(log, decision="update", key=rec.key, why=why, status=new.status.value,
                     task_id=new.task_id)
        return new

    def record_step(self, step: RecordStep) -> None:
        rec = step.record
        if step.stuck_found:
            self.summary.stuck_found += 1
            log_decision(log, decision="stuck", key=rec.key, task_id=rec.task_id, why=step.why)
        if step.gave_up:
            self.summary.gave_up += 1
        if step.changes.status is Status.BLOCKED:
            self.summary.blocked += 1
        changes = step.changes
        if step.action is Action.CREATE_TASK:
            # Claim with the same write: it bumps the version, so a concurrent run's claim fails and only
            # the winner creates a task.
            changes = changes.merged(RecordChanges(status=Status.QUEUED, next_retry_at=None))
        if changes:
            written = self.write(rec, changes, step.why)
            if written is None:
                return
            rec = written
            if step.adopted is not None:
                self.summary.adopted += 1
        if step.action is Action.CREATE_TASK:
            self.create(rec, step.target)
        elif step.action is Action.CANCEL_TASK:
            self.cancel(rec)

    def create(self, rec: Record, target: Target) -> None:
        repo = self.deps.resolver.repository(self.deps.acr, rec.image.namespace, rec.image.repo)
        if repo is None:
            self.write(rec, RecordChanges(status=Status.BLOCKED, finding=blocking_finding(
                rec.target, "SOURCE_REPO_MISSING", "the repository no longer exists on the source",
                "nothing to replicate; the record can be ignored")), "source repository missing")
            return
        retry = rec.attempts > 0
        if create_task(rec, repo.repo_id, target, self.deps) is Outcome.CREATED:
            self.summary.created += 1
            if retry:
                self.summary.retried += 1

    def cancel(self, rec: Record) -> None:
        if rec.task_id is None:
            return
        try:
            self.deps.acr.cancel_repo_sync_task(self.instance, rec.task_id)
        except CloudError as e:
            log_decision(log, decision="cancel_failed", key=rec.key, code=e.code)
            return
        self.summary.cancelled += 1
        self.write(rec, RecordChanges(status=Status.CANCELED), "cancelled a stuck task")

    def rule_task_step(self, step: RuleTaskStep) -> None:
        task, target = step.task, step.target
        if step.covered is not None:
            attached = self.write(step.covered, lifecycle.adopt(step.covered, task), "rule task attached")
            if attached is not None:
                self.summary.rule_tasks_imported += 1
            return
        now = self.deps.clock.now()
        src = task.source
        image = ImageRef(instance_id=self.instance, namespace=src.namespace, repo=src.repo, tag=src.tag,
                         digest=None)
        rec = Record(image=image, target=target.name, origin=Origin.RULE, status=Status.QUEUED,
                     created_at=task.created_ms / 1000 if task.created_ms else now, updated_at=now)
        created, _ = self.deps.ledger.create_if_absent(lifecycle.adopt(rec, task).apply(rec, now=now))
        if created:
            self.summary.rule_tasks_imported += 1


# ---- the run ----------------------------------------------------------------------------------------

def run(deps: Deps, *, dry_run: bool = False, calls: Counter[str] | None = None) -> RunSummary:
    """One reconcile pass, or as much of it as fits in ``deps.budget``. ``dry_run``: plan and print the
    steps (``RunSummary.planned``), change nothing."""
    summary = RunSummary()
    planner = Planner(deps, summary)
    applier = None if dry_run else Applier(deps, summary)
    before = Counter(calls) if calls is not None else None
    try:
        _scan(planner, applier)
        _open_records(planner, applier)
    except BudgetExhausted:
        summary.complete = False
        log.warning("reconcile stopped: time budget exhausted")
    if applier is not None and summary.complete:
        applier.save_cursor(None)
    if calls is not None and before is not None:
        summary.calls = dict(Counter(calls) - before)
    summary.counts = deps.ledger.counts_by_status()
    summary.oldest_open_age_s = _oldest_open_age(deps)
    reported = {k: v for k, v in summary.to_dict().items() if k != "planned"}
    if applier is not None:
        now = deps.clock.now()
        rid = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        deps.ledger.put_report(Report(kind="reconcile", id=rid, created_at=now, summary=reported))
    log_decision(log, decision="reconcile_summary", **reported)
    return summary


def _scan(planner: Planner, applier: Applier | None) -> None:
    for steps in planner.scan_pages():
        for step in steps:
            if applier is None:
                planner.summary.planned.append(step.describe())
            else:
                applier.rule_task_step(step)
    if applier is not None:
        applier.save_high_water(planner.high_water)


def _open_records(planner: Planner, applier: Applier | None) -> None:
    summary = planner.summary
    start = planner.deps.ledger.get_checkpoint(CURSOR)
    while planner.time_left():
        records, after = planner.next_batch(start)
        steps = planner.plan_batch(records)
        del records
        if steps is None:
            summary.complete = False        # resume at this batch's start next time
            return
        for step in steps:
            for flag in step.flags:
                summary.flag(flag, key=step.record.key, task_id=step.record.task_id, why=step.why)
                log_decision(log, decision="flag", flag=flag.value, key=step.record.key,
                             task_id=step.record.task_id, why=step.why)
            if applier is None:
                if step.does_something:
                    summary.planned.append(step.describe())
                continue
            if not planner.time_left():
                # Resume at this batch: records done in it are closed or unchanged, so redoing is cheap.
                summary.complete = False
                applier.save_cursor(start)
                return
            applier.record_step(step)
        if after is None:
            return
        start = after
        if applier is not None:
            applier.save_cursor(start)
    summary.complete = False


def _oldest_open_age(deps: Deps) -> float | None:
    page = deps.ledger.open_records(limit=1)
    if not page.records:
        return None
    return max(0.0, deps.clock.now() - page.records[0].created_at)
