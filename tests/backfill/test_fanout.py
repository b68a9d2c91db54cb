"""Backfill beyond one machine: shards fanned out as asynchronous FC invocations through localcloud.

Every image gets exactly one task, and the global caps hold across all invocations: ACR never sees more
open backfill tasks than backfill.max_in_flight, nor more calls in any window than backfill.qps allows.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

from acrsync.backfill import Job
from acrsync.backfill.fanout import payload
from acrsync.cloud import CloudSession
from tests.backfill.world import ACCOUNT_A, bulk_world, manual_tasks, write_config
from tests.demo_world import FC_ROLE, FC_ROLE_ARN

REPOS = int(os.environ.get("ACRSYNC_FANOUT_REPOS", "200"))
TAGS = int(os.environ.get("ACRSYNC_FANOUT_TAGS", "50"))
QPS, IN_FLIGHT = 400.0, 100
FUNCTION = Path(__file__).resolve().parents[2] / "functions" / "compliance"     # the real entry point
ACR_ACTIONS = ("ListRepository", "ListRepoTag", "GetRepository", "CreateRepoSyncTask", "ListRepoSyncTask",
               "GetRepoSyncTask", "ListRepoSyncRule", "GetNamespace", "GetInstance")


def fanout_world(config: Path, repos: int = REPOS, tags: int = TAGS) -> dict:
    sc = bulk_world(repos, tags, pending=0.05, synchronizing=0.05)
    acc = sc["accounts"][0]
    role = next(r for r in acc["roles"] if r["name"] == FC_ROLE)
    role["policies"].append({"name": "acrsync-fc-fanout", "document": {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "fc:InvokeFunction",
         "Resource": f"acs:fc:cn-hangzhou:{ACCOUNT_A}:functions/acrsync-compliance"}]}})
    sc["functions"] = [{"name": "acrsync-compliance", "account": ACCOUNT_A, "region": "cn-hangzhou",
                        "code": str(FUNCTION), "handler": "index.handler", "timeout": 300,
                        "role": FC_ROLE_ARN,
                        "environment": {"ACRSYNC_CONFIG": str(config)}}]
    sc["settings"].update({"fc_instance_reuse": True, "fc_async_concurrency": 4})
    return sc


class Judge:
    """Samples localcloud (the independent judge) while the run goes: open manual tasks and ACR calls."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.samples: list[tuple[float, int, int]] = []   # (time, ACR calls so far, open manual tasks)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        backend = self.cloud.world.backends["acr"]
        while not self.stop.wait(0.1):
            with self.cloud.world.lock:
                backend.settle()
                open_ = sum(1 for t in backend.tasks.values() if not t.rule_id and t.status in
                            ("PENDING", "SYNCHRONIZING"))
            stats = self.cloud.stats()
            self.samples.append((time.monotonic(), sum(stats.get(a, 0) for a in ACR_ACTIONS), open_))


def test_fanout_every_image_exactly_one_task_and_global_caps_hold(bulk_cloud, cloud_factory, tmp_path):
    cfg = write_config(tmp_path, namespaces=["bulk"], backfill={
        "qps": QPS, "max_in_flight": IN_FLIGHT, "poll_seconds": 0.05})
    cloud = cloud_factory(fanout_world(cfg), clock="wall")
    session = CloudSession.from_keys("LTAIDEMOACCOUNTABACKFILL1",
                                     "made-up-demo-secret-account-a-backfill-user",
                                     env={"ACRSYNC_ENDPOINT": cloud.url}, region="cn-hangzhou")
    judge = Judge(cloud)
    judge.thread.start()
    started = time.monotonic()
    session.fc("cn-hangzhou").invoke_function(
        "acrsync-compliance", payload(Job(run_id="bf-fanout", target="beijing")), async_=True)
    views = cloud.world.backends["fc"].wait(900)
    elapsed = time.monotonic() - started
    judge.stop.set()
    judge.thread.join(5)

    bad = [v for v in views if v["status"] != "succeeded"]
    assert not bad, bad[:2]
    results = [json.loads(v["result"]) for v in views]
    assert results[0] == {"status": "running", "shards": REPOS}
    assert Counter(r["status"] for r in results[1:]) == Counter({"done": REPOS})

    images = Counter((t.repo, t.tag) for t in manual_tasks(cloud))
    assert len(images) == REPOS * TAGS and set(images.values()) == {1}

    assert max(s[2] for s in judge.samples) <= IN_FLIGHT
    for i, (t1, c1, _) in enumerate(judge.samples):
        for t2, c2, _ in judge.samples[i + 1:]:
            assert c2 - c1 <= QPS * (t2 - t1) + QPS + 1, (t2 - t1, c2 - c1)
    print(f"fan-out: {REPOS * TAGS} images, {len(views)} invocations, {elapsed:.1f}s")


def test_fanout_resume_starts_each_repository_at_its_checkpoint(cloud_factory, tmp_path):
    from acrsync.backfill.run import repo_name, save_run
    from acrsync.config import load_config
    from acrsync.ledger.factory import open_ledger

    cfg = write_config(tmp_path, namespaces=["bulk"], backfill={"qps": QPS, "max_in_flight": IN_FLIGHT,
                                                               "poll_seconds": 0.05})
    cloud = cloud_factory(fanout_world(cfg, repos=3, tags=4), clock="wall")
    ledger = open_ledger(load_config(cfg).ledger)
    job = Job(run_id="bf-again", target="beijing")
    save_run(ledger, job, status="stopped", repos=["bulk/app000", "bulk/app001", "bulk/app002"])
    ledger.set_checkpoint(repo_name("beijing", "bulk", "app000"), json.dumps({"run": "bf-again", "page": 2,
                                                                              "done": True}))
    session = CloudSession.from_keys("LTAIDEMOACCOUNTABACKFILL1",
                                     "made-up-demo-secret-account-a-backfill-user",
                                     env={"ACRSYNC_ENDPOINT": cloud.url}, region="cn-hangzhou")
    session.fc("cn-hangzhou").invoke_function("acrsync-compliance", payload(job), async_=True)
    views = cloud.world.backends["fc"].wait(300)
    assert json.loads(views[0]["result"]) == {"status": "running", "shards": 2}
    assert sorted({t.repo for t in manual_tasks(cloud)}) == ["app001", "app002"]
