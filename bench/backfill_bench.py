"""Backfill: OpenAPI calls per backfilled image against the floor, and the achieved call rate against the
QPS cap.

Setup (not measured): localcloud in its own process (wall clock; tasks finish in 0.1 s) with REPOS
repositories of TAGS existing images each in a ``bulk`` namespace, nothing of it on the target; a RAM user
of account A runs the backfill (as the CLI does), against a fresh SQLite ledger.

Measured:
- calls: every ACR call of a full run (``acrsync.backfill.local.run``) per task created. The floor is one
  CreateRepoSyncTask per image plus the paging floor: the source's ListRepository pages, and per
  repository ceil(tags / 100) ListRepoTag pages and one look at the target repository (GetRepository;
  it does not exist yet, so it has no tag pages).
- rate: a run under a QPS cap low enough that localcloud is not the bottleneck, with an in-flight cap it
  never reaches; ACR calls (as localcloud counted them) per wall second of the run, over the cap.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import time
from pathlib import Path

import yaml

from bench import ROOT, SOURCE_REGION, TARGET, ProcessCloud, config_doc
from bench.harness import Row, Target

AREA = "G backfill"
CALLS_TARGET = Target("<=", 1.10)
RATE_TARGET = Target(">=", 0.9)
# Made-up demo keys of a RAM user that exists only inside localcloud.
USER_KEY, USER_SECRET = "LTAIDEMOACCOUNTABENCHBF1", "made-up-demo-secret-account-a-bench-backfill"
ACR = ("ListRepository", "ListRepoTag", "GetRepository", "CreateRepoSyncTask", "ListRepoSyncTask",
       "GetRepoSyncTask", "ListRepoSyncRule", "GetNamespace", "GetInstance")


def scenario(path: Path, repos: int, tags: int) -> Path:
    doc = yaml.safe_load((ROOT / "scenarios" / "demo.yaml").read_text())
    doc.pop("functions", None)
    acc = doc["accounts"][0]
    acc.setdefault("policies", []).append({"name": "bench-backfill", "document": {"Version": "1",
                                                                                  "Statement": [
        {"Effect": "Allow", "Action": ["cr:Get*", "cr:List*", "cr:CreateRepositorySync"],
         "Resource": ["acs:cr:*:1111111111111111:instance/*", "acs:cr:*:1111111111111111:repository/*"]},
        {"Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": "acs:ram::2222222222222222:role/acrsync-reader"},
    ]}})
    acc["users"].append({"name": "bench-backfill", "access_keys": [{"id": USER_KEY, "secret": USER_SECRET}],
                         "policies": ["bench-backfill"]})
    src = next(i for i in doc["instances"] if i["id"] == "cri-demosource01")
    src["namespaces"].append({"name": "bulk", "auto_create_repo": True, "repos": [
        {"name": f"app{r:03d}", "tags": [{"tag": f"v{t}", "digest": "sha256:" + hashlib.sha256(
            f"{r}/{t}".encode()).hexdigest()} for t in range(tags)]} for r in range(repos)]})
    dst = next(i for i in doc["instances"] if i["id"] == "cri-demotarget01")
    dst["namespaces"].append({"name": "bulk", "auto_create_repo": True})
    doc["settings"]["sync"] = {"pending_seconds": 0.05, "synchronizing_seconds": 0.05}
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(cloud, tmp: Path, name: str, backfill: dict) -> dict:
    from acrsync.app import App
    from acrsync.backfill import Job
    from acrsync.backfill import local as L
    from acrsync.cloud import CloudSession
    from acrsync.config import parse_config
    from acrsync.ledger.factory import open_ledger

    doc = config_doc(tmp / f"{name}.db", ["bulk"])
    doc["targets"][0]["tag_filter"] = ".*"
    doc["backfill"] = backfill
    cfg = parse_config(doc)
    session = CloudSession.from_keys(USER_KEY, USER_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                     region=SOURCE_REGION)
    app = App(cfg, session, open_ledger(cfg.ledger, session))
    bf = L.for_app(app, cfg.target(TARGET))
    job = Job(run_id=name, target=TARGET)
    repos = bf.repositories([])
    before = cloud.stats()
    t0 = time.perf_counter()
    outcome = L.run(bf, job, repos)
    seconds = time.perf_counter() - t0
    after = cloud.stats()
    acr_calls = sum(after.get(a, 0) - before.get(a, 0) for a in ACR)
    calls = {k: v for k, v in session.calls.items() if k.startswith("cr:")}
    return {"status": outcome.status, "created": bf.tally.created, "repos": len(repos), "seconds": seconds,
            "acr_calls_seen": acr_calls, "calls": calls, "outcomes": dict(bf.tally.outcomes)}


def run(repos: int = 20, tags: int = 100, rate_images: int = 300,
        qps: float = 20.0) -> tuple[list[Row], dict]:
    os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cloud = ProcessCloud(scenario(tmp / "world.yaml", repos, tags))
        try:
            full = _run(cloud, tmp, "calls", {"qps": 1000, "max_in_flight": 10_000, "poll_seconds": 0.05})
        finally:
            cloud.stop()
        rate_repos = max(1, rate_images // tags)
        cloud = ProcessCloud(scenario(tmp / "rate.yaml", rate_repos, tags))
        try:
            paced = _run(cloud, tmp, "rate", {"qps": qps, "max_in_flight": 10_000, "poll_seconds": 0.05})
        finally:
            cloud.stop()
    pages = math.ceil(repos / 100) + repos * (math.ceil(tags / 100) + 1)
    floor = (repos * tags + pages) / (repos * tags)
    made = max(1, full["created"])
    value = sum(full["calls"].values()) / made
    achieved = paced["acr_calls_seen"] / paced["seconds"]
    rows = [
        Row(AREA, "OpenAPI calls per backfilled image (run / floor)", value, "calls/image", floor=floor,
            target=CALLS_TARGET, note=f"{full['created']} images in {repos} repositories; floor: 1 "
                                      "CreateRepoSyncTask + the paging floor"),
        Row(AREA, "achieved call rate under the QPS cap (rate / cap)", achieved, "calls/s", floor=qps,
            target=RATE_TARGET, note=f"backfill.qps {qps:g}, {paced['created']} images, "
                                     f"{paced['seconds']:.1f} s; localcloud in its own process"),
    ]
    return rows, {"calls_run": full, "rate_run": paced, "floor_calls_per_image": floor}
