"""The backfill run: page by page through the source's repositories, one manual sync task per image that
is missing or differs on the target, exactly once, under the shared caps, with a checkpoint per
(target, repository, page cursor).

Every task goes through the push path's exactly-once gate (``push.replicate``: ledger create-if-absent,
then CreateRepoSyncTask, then compare-and-set) with origin BACKFILL, so a second run, a resumed run or a
run racing on_push creates nothing twice. A record left QUEUED without a task by a crash is finished on
resume: the task it may have made is adopted (``lifecycle.matches_orphan``), else it is claimed by
compare-and-set and created.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from acrsync import codec, drift, lifecycle, scope
from acrsync.backfill.caps import CLAIM_SECONDS, Caps, guard_tripped
from acrsync.backfill.plan import BackfillPlan, RepoPlan, estimate, in_flight_of, oss_route, plan_page
from acrsync.cloud.acr import more_pages
from acrsync.cloud.errors import CloudError
from acrsync.config import Target
from acrsync.deps import Deps
from acrsync.drift import SourceTag, TagDrift, TargetIndex
from acrsync.errors import AcrsyncError
from acrsync.jsonlog import log_decision
from acrsync.ledger import ImageRef, Ledger, Origin, Record, Status, VersionConflict, record_key
from acrsync.model import RepoInfo, TagInfo
from acrsync.push import create_task, replicate
from acrsync.value import Value, dataclass

if TYPE_CHECKING:
    from acrsync.cloud.acr import Acr

T = TypeVar("T")

log = logging.getLogger("acrsync.backfill")

TRANSIENT_STREAK = 3        # this many images in a row left QUEUED by transient errors: stop, resumable


class Resumable(AcrsyncError):
    """The run stopped before the end (cloud errors, a deadline, --max-tasks, Ctrl-C); --resume continues."""


class GuardTripped(AcrsyncError):
    """Too many finished tasks failed: the run stopped itself (docs/backfill.md, guard rail)."""


class Blocked(AcrsyncError):
    """The target's grants are not clean: nothing is planned; ``finding`` says what blocks it."""

    def __init__(self, finding: dict[str, Any] | None):
        self.finding = finding or {}
        code = self.finding.get("code", "grants")
        super().__init__(f"target grants are blocked by {code}: {self.finding.get('message', '')} "
                         f"Fix: {self.finding.get('fix', 'acrsync grants check')}")


class Job(BaseModel):
    """What to backfill; stored with the run so --resume and every fan-out shard read the same thing."""

    run_id: str
    target: str
    repos: list[str] = []           # 'namespace/repo' globs; empty: every repository in the target's scope
    since_ms: int | None = None
    max_tasks: int | None = None
    max_failures: float | None = None


def run_name(target: str) -> str:
    return f"backfill/{target}/run"


def repo_name(target: str, namespace: str, repo: str) -> str:
    return f"backfill/{target}/repo/{namespace}/{repo}"


@dataclass
class Tally(Value):
    """What a run did, for progress lines and the final summary."""

    outcomes: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1

    reserved: int = 0

    def reserve(self, limit: int | None) -> bool:
        """Take one of ``limit`` task creations (threads race for the last ones); False when none is left."""
        with self.lock:
            if limit is not None and self.reserved >= limit:
                return False
            self.reserved += 1
            return True

    def unreserve(self) -> None:
        with self.lock:
            self.reserved -= 1

    @property
    def created(self) -> int:
        return self.outcomes.get("created", 0) + self.outcomes.get("adopted", 0)


class Backfill:
    """One target's backfill over one process's adapters; CLI threads and FC invocations share the caps."""

    def __init__(self, deps: Deps, target: Target, target_acr: Acr, caps: Caps, *,
                 calls: Counter[str] | None = None, stop: threading.Event | None = None):
        self.d = deps
        self.target = target
        self.target_acr = target_acr
        self.caps = caps
        self.calls: Counter[str] = calls if calls is not None else Counter()
        self.stop = stop or caps.stop
        self.tally = Tally()
        self._streak = 0
        self._streak_lock = threading.Lock()
        self.on_image: Callable[[str], None] = lambda outcome: None
        self.takeover = False       # --resume: the stopped run's QUEUED records are ours to finish now
        self.limiter = drift.QpsLimiter(0)      # pacing is the session's (set_pace), not drift's

    @property
    def source_id(self) -> str:
        return self.d.config.source.instance_id

    # ---- reads (every ACR call waits for the shared QPS cap: CloudSession.set_pace) -----------------
    @staticmethod
    def _read(fn: Callable[[], T]) -> T:
        return fn()

    def repositories(self, globs: list[str]) -> list[RepoInfo]:
        """Source repositories in the target's scope and matching ``globs`` (none: all)."""
        t = self.target
        out = []
        for repo in self._read(lambda: list(self.d.acr.list_repositories(self.source_id))):
            if not scope.repo_in_scope(t, repo.namespace, repo.name).in_scope:
                continue
            if globs and not any(fnmatch.fnmatchcase(repo.path, g) for g in globs):
                continue
            out.append(repo)
        return sorted(out, key=lambda r: r.path)

    def target_index(self, repo: RepoInfo) -> TargetIndex:
        """What the target holds for ``repo`` (drift's index; empty when the repository is missing)."""
        tns, trepo = scope.target_names(self.target, repo.namespace, repo.name)
        info = self._read(lambda: self.target_acr.get_repository(self.target.instance_id, tns, trepo))
        index = TargetIndex()
        if info is not None:
            for page in drift.pages(
                lambda n: self.target_acr.list_repo_tag_page(self.target.instance_id, info.repo_id, n),
                self.limiter,
            ):
                for t in page:
                    index.add(t.tag, t.digest)
        return index

    def pages(self, repo: RepoInfo, start: int = 1) -> Iterator[tuple[int, list[TagInfo], bool]]:
        """Source ListRepoTag pages from ``start`` (the checkpoint's cursor): (page, tags, more)."""
        page, seen = start, (start - 1) * drift.PAGE_SIZE
        while True:
            tags, total = self._read(
                functools.partial(self.d.acr.list_repo_tag_page, self.source_id, repo.repo_id, page)
            )
            seen += len(tags)
            more = more_pages(seen, len(tags), drift.PAGE_SIZE, total if total >= 0 else None)
            yield page, tags, more
            if not more:
                return
            page += 1

    def classify(self, repo: RepoInfo, tags: list[TagInfo], index: TargetIndex,
                 known: dict[str, Record]) -> list[TagDrift]:
        return drift.classify_page(
            tags,
            index,
            tag_regex=self.target.tag_regex,
            override=self.target.override,
            in_flight=in_flight_of(known, self.target.name, self.source_id, repo.namespace, repo.name),
        )

    def grants_finding(self) -> dict[str, Any] | None:
        verdict = self.d.grants.verdict(self.target, self.d.session)
        if verdict.clean:
            return None
        for f in verdict.findings or []:
            d: dict[str, Any] = codec.dump(f)
            if d.get("severity", "error") == "error":
                return d
        return {
            "code": "GrantsNotClean",
            "message": "the grant check is not clean",
            "fix": "acrsync grants check",
        }

    def _known(self, repo: RepoInfo) -> dict[str, Record]:
        return {r.key: r for r in self.d.ledger.records_for(self.source_id, repo.namespace, repo.name)
                if r.target == self.target.name}

    def _ctx(self, job: Job, blocked: bool) -> dict[str, Any]:
        return {"rules": self.d.rules.rules(self.d.acr), "since_ms": job.since_ms, "blocked": blocked}

    # ---- plan ----------------------------------------------------------------------------------------
    def plan(self, job: Job, repos: list[RepoInfo] | None = None) -> BackfillPlan:
        """Read everything, write nothing. A blocked target plans nothing and names the finding."""
        finding = self.grants_finding()
        repos = self.repositories(job.repos) if repos is None else repos
        plans: list[RepoPlan] = []
        listed = 0
        if finding is None:
            for repo in repos:
                rp = RepoPlan(repo.namespace, repo.name, repo.repo_id)
                index = self.target_index(repo)
                known = self._known(repo)
                ctx = self._ctx(job, blocked=False)
                for _, tags, _ in self.pages(repo):
                    listed += len(tags)
                    plan_page(
                        rp, self.target, repo, len(tags), self.classify(repo, tags, index, known), **ctx
                    )
                plans.append(rp)
        tasks = sum(len(p.to_create) for p in plans)
        est = estimate(tasks, listed, len(plans), self.d.config.backfill)
        total_bytes = sum(p.bytes for p in plans)
        return BackfillPlan(target=self.target.name, repos=plans, estimate=est, blocked_by=finding,
                            oss=oss_route(total_bytes, est, self.d.config.backfill))

    # ---- run -----------------------------------------------------------------------------------------
    def run_repo(self, job: Job, repo: RepoInfo, *, start_page: int | None = None,
                 one_page: bool = False) -> tuple[int, bool]:
        """Work a repository from its checkpoint (or ``start_page``); returns (next page, done).
        With ``one_page`` only one page is worked (a fan-out shard)."""
        name = repo_name(self.target.name, repo.namespace, repo.name)
        ckpt = load_doc(self.d.ledger.get_checkpoint(name))
        if start_page is None:
            if ckpt.get("run") == job.run_id and ckpt.get("done"):
                return ckpt.get("page", 1), True
            start_page = ckpt.get("page", 1) if ckpt.get("run") == job.run_id else 1
        index = self.target_index(repo)
        rp = RepoPlan(repo.namespace, repo.name, repo.repo_id)
        for page, tags, more in self.pages(repo, start_page):
            known = self._known(repo)
            todo = plan_page(rp, self.target, repo, len(tags), self.classify(repo, tags, index, known),
                             **self._ctx(job, blocked=False))
            for tag in todo:
                self.one(job, repo, tag, known)
            self.d.ledger.set_checkpoint(
                name, json.dumps({"run": job.run_id, "page": page + 1, "done": not more})
            )
            if not more or one_page:
                return page + 1, not more
        return start_page, True

    def one(self, job: Job, repo: RepoInfo, tag: SourceTag, known: dict[str, Record]) -> str:
        if self.stop.is_set():
            raise Resumable("stopped on request; run again with --resume")
        if not self.tally.reserve(job.max_tasks):
            raise Resumable(f"--max-tasks {job.max_tasks} reached; run again with --resume for the rest")
        image = ImageRef(instance_id=self.source_id, namespace=repo.namespace, repo=repo.name, tag=tag.tag,
                         digest=tag.digest)
        key = record_key(image, self.target.name)
        outcome = "failed"
        try:
            if not self.caps.acquire(key):
                raise Resumable("stopped on request; run again with --resume")
            rec = known.get(key)
            if rec is not None and rec.task_id is None and rec.status is Status.QUEUED:
                outcome = self.finish_queued(rec, repo)
            else:
                outcome = replicate(image, repo.repo_id, self.target, self.d, origin=Origin.BACKFILL,
                                    pushed_at_ms=tag.pushed_ms or None)
        finally:
            if outcome not in ("created", "adopted"):
                self.caps.release(key)
                self.tally.unreserve()
        self.tally.count(outcome)
        self.on_image(outcome)
        self._check(outcome, job)
        return outcome

    def finish_queued(self, rec: Record, repo: RepoInfo) -> str:
        """A record left QUEUED without a task (a crash, or transient errors): adopt the task it may have
        made, else claim it by compare-and-set and create the task. Records written recently are left to
        their writer (or reconcile), except a resumed run's own (``takeover``: the stopped run is gone)."""
        now = self.d.clock.now()
        mine = self.takeover and rec.origin is Origin.BACKFILL
        if not mine and now - rec.updated_at < CLAIM_SECONDS and rec.last_error is None:
            return "duplicate"
        tasks = self._read(lambda: self.d.acr.list_repo_sync_tasks(
            self.source_id, namespace=repo.namespace, repo=repo.name, tag=rec.image.tag)[0])
        for task in tasks:
            if lifecycle.matches_orphan(rec, task, self.target.instance_id) and \
                    self.d.ledger.get_by_task(task.task_id) is None:
                try:
                    self.d.ledger.update(lifecycle.adopt(rec, task).apply(rec, now=now))
                except VersionConflict:
                    return "duplicate"
                log_decision(log, decision="adopted", key=rec.key, task_id=task.task_id)
                return "adopted"
        try:
            claimed = self.d.ledger.update(rec.replace(updated_at=now, next_retry_at=None))
        except VersionConflict:
            return "duplicate"
        return create_task(claimed, repo.repo_id, self.target, self.d)

    def _check(self, outcome: str, job: Job) -> None:
        with self._streak_lock:
            self._streak = self._streak + 1 if outcome == "queued" else 0
            streak = self._streak
        if streak >= TRANSIENT_STREAK:
            self.stop.set()
            raise Resumable(
                f"ACR kept failing ({streak} images in a row left for a retry: throttling or server "
                "errors); the checkpoint is saved, run again later with --resume"
            )
        reason = guard_tripped(self.caps.finished(), self.d.config.backfill, job.max_failures)
        if reason:
            self.stop.set()
            raise GuardTripped(reason)

    # ---- status refresh (when reconcile has not reported) -------------------------------------------
    def refresh(self, records: list[Record]) -> None:
        """Read the status of in-flight tasks from ACR and record it (compare-and-set): one
        ListRepoSyncTask page of the instance's newest tasks, GetRepoSyncTask for the few older ones."""
        try:
            newest, _ = self._read(lambda: self.d.acr.list_repo_sync_tasks(self.source_id, page_size=100))
        except CloudError:
            return
        by_id = {t.task_id: t for t in newest}
        missing = [r for r in records if r.task_id not in by_id]
        for rec in missing[:3]:
            task_id = rec.task_id
            if task_id is None:         # callers pass records that have a task
                continue
            try:
                by_id[task_id] = self._read(
                    functools.partial(self.d.acr.get_repo_sync_task, self.source_id, task_id)
                )
            except CloudError:
                break
        for rec in records:
            task = by_id.get(rec.task_id) if rec.task_id is not None else None
            if task is None or task.status == rec.status.value:
                continue
            try:
                self.d.ledger.update(
                    rec.replace(status=Status(task.status), task_issue=task.issue,
                                updated_at=self.d.clock.now())
                )
            except (VersionConflict, ValueError):
                continue


def load_doc(raw: str | None) -> dict[str, Any]:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def load_job(ledger: Ledger, target: str) -> tuple[Job | None, dict[str, Any]]:
    """The stored run of ``target`` (for --resume, status and shards) and its state."""
    state = load_doc(ledger.get_checkpoint(run_name(target)))
    job = state.get("job")
    return (Job.model_validate(job) if job else None), state


def save_run(ledger: Ledger, job: Job, **state: Any) -> None:
    current = load_doc(ledger.get_checkpoint(run_name(job.target)))
    if current.get("job", {}).get("run_id") != job.run_id:
        current = {}
    current.update(state)
    current["job"] = job.model_dump()
    ledger.set_checkpoint(run_name(job.target), json.dumps(current, sort_keys=True))
