"""Compliance at scale: one run over REPOS repositories x TAGS tags on each side, against localcloud in its
own process (the client's threads then compete with nothing but themselves), every call delayed by
LATENCY_MS as an OpenAPI round trip is.

Setup (not measured): a scenario with REPOS repositories in team-a of the source and the same repositories,
tags and digests on the target (every 50th repository lacks one tag there), written as one file.

Measured:
- calls per run (the session's counter; grant check, ListRepoSyncRule and the FC reads included) vs the page
  floor: ceil(TAGS/100) ListRepoTag pages per repository per side, plus one ListRepository and one
  ListNamespace paging pass per side;
- wall time of the run (``entry.check``, ``compliance.qps`` per account, ``workers`` threads) vs the floor:
  a sequential bare-SDK loop paging the same ListRepository and ListRepoTag calls under the same per-account
  QPS cap (``drift.QpsLimiter``, the same class the run uses);
- peak memory at MEM_TAGS tags per repository on each side (100, 1,000 and 10,000: one page, in memory;
  ten and a hundred pages, spilled), against a localcloud without added latency or pacing (MEM_QPS): the
  peak of Python allocations (tracemalloc, after a warm-up run) of a run on one worker over four
  repositories (what one repository in flight holds); the same run's whole-process peak RSS growth as the
  first run of a fresh interpreter (VmHWM reset through /proc/self/clear_refs, so native allocations the
  tracer cannot see count too); and the tracemalloc peak of a run on ``workers`` threads over MEM_REPOS
  repositories.
  The figures are the largest peak over the smallest: memory bounded by the pages in flight, not the tags.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import yaml

from bench import (
    ACCOUNT_A,
    ACCOUNT_B,
    CLI_KEY_ID,
    CLI_SECRET,
    DEMO_SCENARIO,
    READER_ROLE_ARN,
    SOURCE_INSTANCE,
    SOURCE_REGION,
    TARGET,
    TARGET_INSTANCE,
    TARGET_REGION,
    ProcessCloud,
    decision_logs_on,
)
from bench.harness import Row, Target, timed

AREA = "F compliance"
NAMESPACE = "team-a"
PAGE = 100
MIB = 1024 * 1024
MEM_TAGS = (100, 1000, 10000)   # one full page per side (in memory), ten pages, a hundred (spilled)
ROOT = Path(__file__).resolve().parents[1]
MEM_QPS = 1000.0                # memory runs: no pacing to speak of (memory does not depend on it)
ONE_REPOS = f"{NAMESPACE}/r000[0-3]"   # the one-worker runs: four repositories, one at a time


def _digest(repo: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{repo}:{tag}".encode()).hexdigest()


def scenario(repos: int, tags: int) -> dict:
    """The demo world with REPOS x TAGS on the source and (nearly) the same on the target."""
    doc = yaml.safe_load(DEMO_SCENARIO.read_text())
    doc.pop("functions", None)
    names = [f"r{i:04d}" for i in range(repos)]
    by_id = {i["id"]: i for i in doc["instances"]}

    def repo(name: str, missing: bool) -> dict:
        n = tags - 1 if missing else tags
        return {"name": name, "tags": [{"tag": f"v1.{j}", "digest": _digest(name, f"v1.{j}")}
                                       for j in range(n)]}

    by_id[SOURCE_INSTANCE]["namespaces"] = [{"name": NAMESPACE, "auto_create_repo": True,
                                            "repos": [repo(n, False) for n in names]}]
    by_id[SOURCE_INSTANCE]["sync_rules"] = []
    by_id[TARGET_INSTANCE]["namespaces"] = [{"name": NAMESPACE, "auto_create_repo": True,
                                            "repos": [repo(n, i % 50 == 7) for i, n in enumerate(names)]}]
    return doc


def config_doc(ledger: Path, qps: float, workers: int, repos: str | None = None) -> dict:
    doc = {"source": {"account_id": ACCOUNT_A, "region": SOURCE_REGION, "instance_id": SOURCE_INSTANCE},
            "targets": [{"name": TARGET, "account_id": ACCOUNT_B, "region": TARGET_REGION,
                         "instance_id": TARGET_INSTANCE, "namespaces": [NAMESPACE], "tag_filter": r"v.*",
                         "reader_role_arn": READER_ROLE_ARN}],
            "ledger": {"backend": "sqlite", "path": str(ledger)},
            "compliance": {"qps": qps, "workers": workers}}
    if repos:
        doc["targets"][0]["repositories"] = [repos]
    return doc


def start(tmp: Path, repos: int, tags: int, latency_ms: int) -> ProcessCloud:
    path = tmp / f"scenario-{repos}x{tags}.yaml"
    path.write_text(yaml.safe_dump(scenario(repos, tags), sort_keys=False))
    cloud = ProcessCloud(path)
    if latency_ms:
        cloud.control("faults", {"action": "*", "latency_ms": latency_ms})
    return cloud


def make_app(cloud, tmp: Path, qps: float, workers: int, repos: str | None = None):
    from acrsync.app import App
    from acrsync.cloud import CloudSession
    from acrsync.config import parse_config
    from acrsync.ledger.factory import open_ledger

    cfg = parse_config(config_doc(tmp / f"ledger-{time.monotonic_ns()}.db", qps, workers, repos))
    session = CloudSession.from_keys(CLI_KEY_ID, CLI_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                     region=SOURCE_REGION)
    return App(cfg, session, open_ledger(cfg.ledger, session))


def sdk_client(cloud, key_id: str, secret: str, token: str | None, region: str):
    from alibabacloud_cr20181201.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(access_key_id=key_id, access_key_secret=secret, security_token=token,
                         region_id=region,
                         endpoint=f"127.0.0.1:{cloud.port}", protocol="http", read_timeout=10000,
                         connect_timeout=3000))


def bare_sequential(cloud, qps: float) -> tuple[float, int]:
    """The floor: one thread, the bare SDK, the same ListRepository/ListRepoTag pages, the same QPS cap."""
    from alibabacloud_cr20181201 import models as m
    from darabonba.runtime import RuntimeOptions

    from acrsync.cloud import CloudSession
    from acrsync.drift import QpsLimiter

    reader = CloudSession.from_keys(CLI_KEY_ID, CLI_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                    region=SOURCE_REGION).credentials(READER_ROLE_ARN)
    sides = [(sdk_client(cloud, CLI_KEY_ID, CLI_SECRET, None, SOURCE_REGION), SOURCE_INSTANCE,
              QpsLimiter(qps)),
             (sdk_client(cloud, reader.access_key_id, reader.access_key_secret, reader.security_token,
                         TARGET_REGION), TARGET_INSTANCE, QpsLimiter(qps))]
    runtime = RuntimeOptions()
    calls = [0]

    def loop() -> None:
        repos: list[list[tuple[str, str]]] = []
        for client, instance, limiter in sides:
            found, page = [], 1
            while True:
                limiter.acquire()
                body = client.list_repository_with_options(m.ListRepositoryRequest(
                    instance_id=instance, repo_status="NORMAL", page_no=page, page_size=PAGE), runtime).body
                calls[0] += 1
                found += [(r.repo_namespace_name + "/" + r.repo_name, r.repo_id) for r in body.repositories
                          or []]
                if not body.repositories or page * PAGE >= int(body.total_count or 0):
                    break
                page += 1
            repos.append(sorted(found))
        target_ids = dict(repos[1])
        for path, repo_id in repos[0]:
            for (client, instance, limiter), rid in zip(sides, (repo_id, target_ids.get(path)), strict=True):
                if rid is None:
                    continue
                page = 1
                while True:
                    limiter.acquire()
                    body = client.list_repo_tag_with_options(m.ListRepoTagRequest(
                        instance_id=instance, repo_id=rid, page_no=page, page_size=PAGE), runtime).body
                    calls[0] += 1
                    if not body.images or page * PAGE >= int(body.total_count or 0):
                        break
                    page += 1

    return timed(loop), calls[0]


def floor_calls(repos: int, tags: int) -> int:
    pages = max(1, math.ceil(tags / PAGE))
    listing = max(1, math.ceil(repos / PAGE))
    return 2 * repos * pages + 2 * listing + 2          # + one ListNamespace page per side


def traced_peak(cloud, tmp: Path, qps: float, workers: int, repos: str | None = None) -> tuple[float, int]:
    """Peak Python allocations (MiB) of one run after a warm-up run, and its calls."""
    from acrsync.compliance import entry
    from acrsync.compliance.run import Options

    app = make_app(cloud, tmp, qps, workers, repos)
    entry.check(app, Options())                         # warm: imports, clients, STS
    tracemalloc.start()
    try:
        report, _ = entry.check(app, Options())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB, sum(report.calls.values())


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_child(url: str, tmp: str, qps: float, workers: int, repos: str) -> dict:
    """In a fresh interpreter: the process's peak RSS during one run over its RSS just before (KiB).

    Linux keeps a process's peak RSS (VmHWM); writing 5 to /proc/self/clear_refs resets it to the current
    RSS (proc(5)), so the peak read after the run is the run's own. ru_maxrss cannot serve: it keeps the
    parent's peak across fork and exec."""
    import gc

    from acrsync.compliance import entry
    from acrsync.compliance.run import Options

    app = make_app(SimpleNamespace(url=url), Path(tmp), qps, workers, repos)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    report, _ = entry.check(app, Options())
    peak = _status_kib("VmHWM")
    return {"before_kib": before, "peak_kib": peak, "growth_kib": peak - before,
            "calls": sum(report.calls.values()), "complete": report.complete}


def rss_peak(cloud, tmp: Path, qps: float, workers: int, repos: str) -> dict:
    argv = [sys.executable, "-m", "bench.compliance_bench", "rss", cloud.url, str(tmp), str(qps),
            str(workers), repos]
    out = subprocess.run(argv, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=1800,
                         check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def memory(tmp: Path, repos: int, qps: float, workers: int) -> dict[int, dict]:
    """Per tag count, on one world of ``repos`` repositories: the tracemalloc peak (MiB) of a run on
    ``workers`` threads, and of a run on one thread over the first ONE_REPOS repositories (what one
    repository in flight holds), the latter also as the peak RSS growth of a fresh process."""
    found = {}
    for tags in MEM_TAGS:
        cloud = start(tmp, repos, tags, latency_ms=0)
        try:
            traced, calls = traced_peak(cloud, tmp, qps, workers)
            one, one_calls = traced_peak(cloud, tmp, qps, 1, ONE_REPOS)
            rss = rss_peak(cloud, tmp, qps, 1, ONE_REPOS)
        finally:
            cloud.stop()
        found[tags] = {"tracemalloc_peak_mib": round(traced, 3), "calls": calls,
                       "one_worker": {"tracemalloc_peak_mib": round(one, 3), "calls": one_calls,
                                      "rss_growth_mib": round(rss["growth_kib"] / 1024, 2),
                                      "rss_peak_mib": round(rss["peak_kib"] / 1024, 1), "rss_run": rss}}
    return found


def run(repos: int = 1000, tags: int = 30, qps: float = 40.0, workers: int = 8, latency_ms: int = 50,
        mem_repos: int = 100) -> tuple[list[Row], dict]:
    from acrsync.compliance import entry
    from acrsync.compliance.run import Options

    with tempfile.TemporaryDirectory() as tmpdir, decision_logs_on():
        tmp = Path(tmpdir)
        cloud = start(tmp, repos, tags, latency_ms)
        try:
            app = make_app(cloud, tmp, qps, workers)
            box: dict = {}
            run_s = timed(lambda: box.update(report=entry.check(app, Options())[0]))
            report = box["report"]
            bare_s, bare_calls = bare_sequential(cloud, qps)
        finally:
            cloud.stop()
        mem = memory(tmp, mem_repos, MEM_QPS, workers)
    calls = sum(report.calls.values())
    floor = floor_calls(repos, tags)
    missing = report.targets[0].counts.get("MISSING", 0)
    raw = {"repositories": repos, "tags_per_repository": tags, "qps_per_account": qps, "workers": workers,
           "latency_ms": latency_ms, "run_seconds": round(run_s, 2), "calls": report.calls,
           "floor_calls": floor,
           "bare_sequential": {"seconds": round(bare_s, 2), "calls": bare_calls}, "missing_found": missing,
           "complete": report.complete,
           "memory": {"repositories": mem_repos, "by_tags": mem}}
    ok = report.complete and missing == len([i for i in range(repos) if i % 50 == 7])
    rows = [
        Row(AREA, f"OpenAPI calls per run ({repos} repos x {tags} tags each side)", calls, "calls",
            floor=floor,
            target=Target("<=", 1.05), note="grant check, rules and FC reads included"
                                            + ("" if ok else "; run incomplete or wrong: see results.json")),
        Row(AREA, f"run wall time / sequential bare-SDK paging (same cap {qps:g} QPS/account)", run_s, "s",
            floor=bare_s, target=Target("<=", 0.35),
            note=f"{workers} workers; localcloud in its own process, {latency_ms} ms per call"),
    ]
    traced = {t: m["tracemalloc_peak_mib"] for t, m in mem.items()}
    one = {t: m["one_worker"]["tracemalloc_peak_mib"] for t, m in mem.items()}
    grown = {t: m["one_worker"]["rss_growth_mib"] for t, m in mem.items()}
    sizes = " / ".join(f"{t:,}" for t in MEM_TAGS)

    def spread(by: dict[int, float], unit: str) -> str:
        return "; ".join(f"{by[t]:.2f} {unit} at {t:,} tags" for t in MEM_TAGS)

    rows += [
        Row(AREA, f"peak Python memory (tracemalloc), 1 worker, 4 repos x {sizes} tags each side: largest "
                  "/ smallest", max(one.values()), "MiB", floor=min(one.values()),
            target=Target("<=", 1.10), note=spread(one, "MiB")),
        Row(AREA, f"peak RSS growth of that run in a fresh process (VmHWM), x {sizes} tags: largest / "
                  "smallest", max(grown.values()), "MiB", floor=min(grown.values()),
            target=Target("<=", 1.10), note=spread(grown, "MiB")),
        Row(AREA, f"peak Python memory (tracemalloc), {workers} workers, {mem_repos} repos x {sizes} tags: "
                  "largest / smallest", max(traced.values()), "MiB", floor=min(traced.values()),
            note=spread(traced, "MiB") + f"; bounded by {workers} repositories' pages in flight, the "
                 "spread is how many workers hold a page at the same moment; no target set"),
    ]
    return rows, raw


if __name__ == "__main__":
    if sys.argv[1:2] == ["rss"]:
        url, tmp, qps, workers, repos = sys.argv[2:7]
        print(json.dumps(rss_child(url, tmp, float(qps), int(workers), repos)))
