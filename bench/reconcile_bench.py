"""Reconcile at scale: one run over many open records, in OpenAPI calls, wall time and memory.

Setup (not measured): REPOS repositories in team-a with PER_REPO new tags each; one manual sync task per
image, seeded straight into localcloud's ACR backend; one PENDING record per task in a fresh SQLite
ledger, oldest first in push order (pushes interleave across repositories, as CI pushes do). The
emulator clock then moves past the tasks' run time, so every task has finished and reconcile has a
status to write for every record.

Measured:
- run 1 (``App.handle_reconcile``, the real entry point): wall time, OpenAPI calls, peak RSS over the
  RSS before it (sampled every 10 ms);
- run 2, on a copy of the same ledger with a fresh App: the same run under tracemalloc for the peak of
  Python allocations, with ListRepoSyncTask calls split into per-repository pages and the instance-wide
  scan for rule-made tasks;
- the floor: a bare SDK loop paging ListRepoSyncTask per repository over the same tasks, same page size.
localcloud runs in this process, so its own allocations while serving the run are in both memory figures.

Memory against the number of records (``memory_by_count``): the same run over 10,000 and 100,000 open
records in a SQLite ledger, with the source's tasks generated on demand by an in-process object that
answers the ACR operations reconcile calls (so the figure is acrsync's own allocations, not an emulator's
store). The peak of Python allocations (tracemalloc) for the larger count over the peak for the smaller
one must stay near 1: a run holds one batch of records, not every task it read.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import sqlite3
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from pathlib import Path

from acrsync.cloud.retry import Budget
from bench import (
    SOURCE_INSTANCE,
    TARGET,
    TARGET_INSTANCE,
    bare_cr_client,
    decision_logs_on,
    demo_cloud,
    fc_context,
    make_app,
)
from bench.harness import Row, Target, timed

AREA = "E reconcile"
NAMESPACE = "team-a"
MIB = 1024 * 1024


class CallSplit:
    """The real Acr adapter, with its ListRepoSyncTask calls sorted into per-repository and instance-wide."""

    def __init__(self, acr):
        self._acr = acr
        self.split: Counter = Counter()

    def list_repo_sync_tasks(self, instance_id: str, **kw):
        self.split["by_repository" if kw.get("repo") else "instance_wide_scan"] += 1
        return self._acr.list_repo_sync_tasks(instance_id, **kw)

    def __getattr__(self, name: str):
        return getattr(self._acr, name)


class RssPeak:
    """Peak resident set size while the block runs, over the RSS at its start (Linux /proc; else
    ru_maxrss)."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.delta_bytes: int | None = None
        self.source = "/proc/self/statm" if Path("/proc/self/statm").exists() else "ru_maxrss"

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> RssPeak:
        self._stop = threading.Event()
        if self.source == "ru_maxrss":
            self._start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            return self
        self._start = self._peak = self._rss()

        def sample() -> None:
            while not self._stop.wait(self.interval):
                self._peak = max(self._peak, self._rss())

        self._thread = threading.Thread(target=sample, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.source == "ru_maxrss":
            self.delta_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self._start
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.delta_bytes = self._peak - self._start


def seed(cloud, ledger, repos: int, per_repo: int) -> list[str]:
    """Tags, tasks (finished once the clock moves) and one open record per task; returns the repo names."""
    from acrsync.ledger import Attempt, ImageRef, Origin, Record, Status

    names = [f"r{i:04d}" for i in range(repos)]
    for name in names:
        for j in range(per_repo):
            cloud.push(SOURCE_INSTANCE, NAMESPACE, name, f"v1.{j}")
    backend = cloud.world.backends["acr"]
    world = cloud.world
    now = world.clock.now()
    records = []
    with world.lock:
        source, target = world.instances[SOURCE_INSTANCE], world.instances[TARGET_INSTANCE]
        for j in range(per_repo):                  # push order: interleaved across repositories
            for name in names:
                repo = source.namespaces[NAMESPACE].repos[name]
                tag = repo.tags[f"v1.{j}"]
                task = backend._new_task(source=source, repo=repo, tag=tag, target=target, cross=True,
                                         target_namespace=NAMESPACE, target_repo=name, target_tag=tag.tag,
                                         override=False, priority=3, trigger="INITIATIVE",
                                         batch_id=str(uuid.uuid4()), rule=None)
                at = now - 600 + len(records) * 0.01
                records.append(Record(
                    image=ImageRef(instance_id=SOURCE_INSTANCE, namespace=NAMESPACE, repo=name, tag=tag.tag,
                                   digest=tag.digest),
                    target=TARGET, origin=Origin.PUSH, status=Status.PENDING, task_id=task.task_id,
                    attempts=1, history=[Attempt(task_id=task.task_id, status="PENDING", created_at=at)],
                    created_at=at, updated_at=at))
    for rec in records:
        created, _ = ledger.create_if_absent(rec)
        if not created:
            raise RuntimeError(f"seeding found record {rec.key} already in a fresh ledger")
    cloud.advance(60)                              # every task runs to its end now, not inside the run
    return names


def bare_paging(client, names: list[str], page_size: int) -> tuple[float, int, int]:
    """The floor: ListRepoSyncTask per repository, every page; (seconds, calls, tasks read)."""
    from alibabacloud_cr20181201 import models as m
    from darabonba.runtime import RuntimeOptions

    runtime = RuntimeOptions()
    counts = {"calls": 0, "tasks": 0}

    def loop() -> None:
        for name in names:
            page = 1
            while True:
                body = client.list_repo_sync_task_with_options(m.ListRepoSyncTaskRequest(
                    instance_id=SOURCE_INSTANCE, repo_namespace_name=NAMESPACE, repo_name=name, page_no=page,
                    page_size=page_size), runtime).body
                counts["calls"] += 1
                got = len(body.sync_tasks or [])
                counts["tasks"] += got
                if not got or page * page_size >= int(body.total_count or 0):
                    break
                page += 1

    return timed(loop), counts["calls"], counts["tasks"]


def copy_ledger(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite ledger (WAL included), through SQLite's backup API."""
    a, b = sqlite3.connect(str(src)), sqlite3.connect(str(dst))
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def run(repos: int = 200, per_repo: int = 50) -> tuple[list[Row], dict]:
    from acrsync import reconcile

    n = repos * per_repo
    cloud = demo_cloud()
    try:
        with tempfile.TemporaryDirectory() as tmp, decision_logs_on():
            path1, path2 = Path(tmp) / "ledger.db", Path(tmp) / "ledger-copy.db"
            app = make_app(cloud, path1, [NAMESPACE])
            names = seed(cloud, app.ledger, repos, per_repo)
            copy_ledger(path1, path2)
            page_size = app.config.reconcile.page_size
            client = bare_cr_client(cloud)
            bare_paging(client, names[:3], page_size)                 # warm the floor's client
            bare_a = bare_paging(client, names, page_size)

            served_before = cloud.stats()
            run1: dict = {}
            with RssPeak() as rss:
                run1_s = timed(lambda: run1.update(app.handle_reconcile(None, fc_context(timeout=900))))
            served = {k: v - served_before.get(k, 0) for k, v in cloud.stats().items()
                      if v != served_before.get(k, 0)}
            counts1 = app.ledger.counts_by_status()
            app.ledger.close()

            app2 = make_app(cloud, path2, [NAMESPACE])
            deps = app2.deps(Budget.after(900))
            split = CallSplit(deps.acr)
            deps = dataclasses.replace(deps, acr=split)
            tracemalloc.start()
            try:
                t0 = time.perf_counter()
                run2 = reconcile.run(deps, calls=app2.session.calls)
                run2_s = time.perf_counter() - t0
                _, traced_peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            app2.ledger.close()
            bare_b = bare_paging(client, names, page_size)
    finally:
        cloud.stop()

    bare_s, bare_calls, bare_tasks = min(bare_a, bare_b)
    floor_calls = repos * math.ceil(per_repo / page_size)
    calls1 = sum(run1["calls"].values())
    calls2 = sum(run2.calls.values())
    closed = counts1.get("SUCCESS", 0)
    split_calls = {"list_by_repository": split.split["by_repository"],
                   "list_instance_wide_scan": split.split["instance_wide_scan"],
                   "get_repo_sync_task": run2.calls.get("cr:GetRepoSyncTask", 0),
                   "other": calls2 - sum(split.split.values()) - run2.calls.get("cr:GetRepoSyncTask", 0)}
    raw = {
        "records": n, "repositories": repos, "per_repository": per_repo, "page_size": page_size,
        "first_scan_pages_max": reconcile.FIRST_SCAN_PAGES, "floor_calls": floor_calls,
        "run1": {"seconds": round(run1_s, 3), "calls": run1["calls"], "localcloud_calls": served,
                 "records_seen": run1["records_seen"], "updated": run1["updated"],
                 "complete": run1["complete"],
                 "counts_after": counts1, "rss_peak_delta_mib": round((rss.delta_bytes or 0) / MIB, 2),
                 "rss_source": rss.source},
        "run2_tracemalloc": {"seconds": round(run2_s, 3), "calls": dict(run2.calls), "split": split_calls,
                             "traced_peak_mib": round(traced_peak / MIB, 2), "updated": run2.updated},
        "bare_paging": {"seconds": [round(bare_a[0], 3), round(bare_b[0], 3)], "calls": bare_calls,
                        "tasks_read": bare_tasks},
    }
    split_note = (f"split: {split_calls['list_by_repository']} per-repo pages, "
                  f"{split_calls['list_instance_wide_scan']} instance-wide scan, "
                  f"{split_calls['get_repo_sync_task']} GetRepoSyncTask")
    ok = closed == n and run1["complete"] and calls1 == calls2
    rows = [
        Row(AREA, f"OpenAPI calls per run ({n} records, {repos} repos)", calls1, "calls", floor=floor_calls,
            target=Target("<=", 1.1), note=split_note),
        Row(AREA, "run wall time / bare ListRepoSyncTask paging", run1_s, "s", floor=bare_s,
            note=f"no target set; {closed}/{n} records closed"
                 + ("" if ok else " (run incomplete or runs disagree: see results.json)")),
        Row(AREA, "peak Python memory (tracemalloc)", traced_peak / MIB, "MiB",
            note="no target set; includes in-process localcloud serving the run"),
        Row(AREA, "peak RSS delta", (rss.delta_bytes or 0) / MIB, "MiB",
            note=f"no target set; {rss.source}, sampled every 10 ms"),
    ]
    return rows, raw


# ---- memory against the number of records ---------------------------------------------------------

class GeneratedAcr:
    """The source's sync tasks, made on demand from their index (nothing stored): ``per_repo`` PENDING
    manual tasks in each of ``repos`` repositories, newest first as ACR lists them. It answers the ACR
    operations a reconcile run calls, as ``acrsync.deps.SourceAcr`` types them."""

    def __init__(self, repos: int, per_repo: int, created_ms: int):
        self.repos, self.per_repo, self.created_ms = repos, per_repo, created_ms

    @staticmethod
    def repo_name(i: int) -> str:
        return f"r{i:05d}"

    @staticmethod
    def task_id(repo: str, j: int) -> str:
        return f"rst-{repo}-{j:04d}"

    def task(self, repo: str, j: int):
        from acrsync.model import ImageSide, SyncTask

        return SyncTask(task_id=self.task_id(repo, j), status="PENDING", trigger="INITIATIVE",
                        cross_user=True,
                        source=ImageSide(instance_id=SOURCE_INSTANCE, namespace=NAMESPACE, repo=repo,
                                         tag=f"v1.{j}"),
                        target=ImageSide(instance_id=TARGET_INSTANCE, namespace=NAMESPACE, repo=repo,
                                         tag=f"v1.{j}"),
                        created_ms=self.created_ms + j, modified_ms=self.created_ms + j)

    def list_repo_sync_tasks(self, instance_id: str, *, namespace=None, repo=None, tag=None,
                             sync_record_id=None,
                             page_no: int = 1, page_size: int = 100):
        # the instance-wide scan: the newest tasks, one repository's worth per page
        if repo is None:
            names = [self.repo_name(i) for i in range(self.repos)]
            total = self.repos * self.per_repo
            start = (page_no - 1) * page_size
            items = [self.task(names[k % self.repos], self.per_repo - 1 - k // self.repos)
                     for k in range(start, min(start + page_size, total))]
            return items, total
        newest_first = range(self.per_repo - 1, -1, -1)
        window = list(newest_first)[(page_no - 1) * page_size:page_no * page_size]
        return [self.task(repo, j) for j in window], self.per_repo

    def get_repo_sync_task(self, instance_id: str, task_id: str):
        _, repo, j = task_id.split("-")
        return self.task(repo, int(j))

    def list_repo_sync_rules(self, instance_id: str):
        return []

    def get_repository(self, instance_id, namespace, repo):
        return None

    def get_repo_tag(self, instance_id, repo_id, tag):
        return None

    def list_repo_tags(self, instance_id, repo_id):
        return iter(())

    def create_repo_sync_task(self, *args, **kwargs):
        raise AssertionError("a run over in-progress tasks creates none")

    def cancel_repo_sync_task(self, instance_id, task_id):
        raise AssertionError("a run over in-progress tasks cancels none")


def _peak_for(count: int, per_repo: int, tmp: Path) -> tuple[float, dict]:
    """Seed ``count`` PENDING records (their tasks still running) and trace one reconcile run over them."""
    from acrsync import reconcile
    from acrsync.app import App
    from acrsync.clock import ManualClock
    from acrsync.cloud import CloudSession
    from acrsync.config import parse_config
    from acrsync.ledger import Attempt, ImageRef, Origin, Record, Status
    from acrsync.ledger.factory import open_ledger
    from bench import config_doc

    clock = ManualClock()
    now = clock.now()
    repos = count // per_repo
    acr = GeneratedAcr(repos, per_repo, int((now - 60) * 1000))
    cfg = parse_config(config_doc(tmp / f"ledger-{count}.db", [NAMESPACE]))
    session = CloudSession.from_keys("made-up-key-id", "made-up-secret", env={}, clock=clock)
    app = App(cfg, session, open_ledger(cfg.ledger, session), clock=clock)
    try:
        for j in range(per_repo):
            for i in range(repos):
                repo = acr.repo_name(i)
                task_id = acr.task_id(repo, j)
                at = now - 60
                app.ledger.create_if_absent(Record(
                    image=ImageRef(instance_id=SOURCE_INSTANCE, namespace=NAMESPACE, repo=repo, tag=f"v1.{j}",
                                   digest=f"{i:032x}{j:032x}"),
                    target=TARGET, origin=Origin.PUSH, status=Status.PENDING, task_id=task_id, attempts=1,
                    history=[Attempt(task_id=task_id, status="PENDING", created_at=at)],
                    created_at=at, updated_at=at))
    finally:
        app.ledger.close()
    # The run is a fresh instance on the seeded ledger: the seeding left the ledger's known-version cache
    # (bounded, KNOWN_MAX entries) full of untraced entries, which a run over fewer records than the cap
    # would then reuse and a larger run would not, so both counts start from the same empty cache.
    app = App(cfg, session, open_ledger(cfg.ledger, session), clock=clock)
    try:
        deps = dataclasses.replace(app.deps(Budget.after(3600, clock)), acr=acr)
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            summary = reconcile.run(deps)
            seconds = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        app.ledger.close()
    return peak / MIB, {"records_seen": summary.records_seen, "complete": summary.complete,
                        "updated": summary.updated, "seconds": round(seconds, 3),
                        "traced_peak_mib": round(peak / MIB, 2)}


def memory_by_count(counts: tuple[int, int] = (10_000, 100_000),
                    per_repo: int = 50) -> tuple[list[Row], dict]:
    """Peak Python memory of one run over each count of open records; the larger over the smaller."""
    raw: dict = {"per_repository": per_repo, "open_batch": None}
    from acrsync import reconcile

    raw["open_batch"] = reconcile.OPEN_BATCH
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            peaks[n], raw[str(n)] = _peak_for(n, per_repo, Path(tmp))
    small, large = counts
    ok = all(raw[str(n)]["records_seen"] == n and raw[str(n)]["complete"] for n in counts)
    rows = [
        Row(AREA, f"peak Python memory, {n:,} open records", peaks[n], "MiB",
            note="tracemalloc; source tasks generated in process" + ("" if ok else " (run incomplete: "
                                                                                   "see raw)"))
        for n in counts
    ]
    rows.append(Row(AREA, f"peak memory {large:,} records / {small:,} records", peaks[large], "MiB",
                    floor=peaks[small], target=Target("<=", 1.2),
                    note="flat: a run holds one batch of records, not every task it read"))
    return rows, raw
