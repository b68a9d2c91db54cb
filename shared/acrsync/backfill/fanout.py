"""A backfill across Function Compute invocations, for runs that do not fit one process.

The payload ``{"backfill": {"job": {...}, "shard": null | {...}}}`` is accepted by the compliance function
(docs/ARCHITECTURE.md says why there is no separate function). The first invocation (no shard) checks the
grants, lists the repositories in scope, stores the run and fans one shard per repository out as
asynchronous invocations of the same function (FC 3.0 InvokeFunction, ``x-fc-invocation-type: Async``).
A shard works one ListRepoTag page of one repository, records the page's checkpoint, and invokes the next
page asynchronously; near the invocation's deadline it stops and invokes itself again from its checkpoint.
The QPS cap and the in-flight slots are the ledger's rows (caps.py), so they hold across all invocations.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from acrsync.backfill.local import for_app
from acrsync.backfill.run import (
    Blocked,
    GuardTripped,
    Job,
    Resumable,
    load_doc,
    load_job,
    repo_name,
    save_run,
)
from acrsync.cloud.errors import CloudError
from acrsync.jsonlog import log_decision
from acrsync.model import RepoInfo

if TYPE_CHECKING:
    from acrsync.app import App
    from acrsync.backfill.run import Backfill
    from acrsync.cloud.fc import Fc
    from acrsync.cloud.retry import Budget

log = logging.getLogger("acrsync.backfill")

KEY = "backfill"
DEADLINE_MARGIN = 20.0          # seconds kept to checkpoint and re-invoke before FC's timeout


class Shard(BaseModel):
    namespace: str
    repo: str
    repo_id: str
    page: int = 1


def payload(job: Job, shard: Shard | None = None) -> bytes:
    return json.dumps(
        {KEY: {"job": job.model_dump(), "shard": shard.model_dump() if shard else None}}
    ).encode()


def job_of(event: Any) -> dict[str, Any] | None:
    """The backfill part of an event (bytes or parsed), or None when it is not a backfill job."""
    if isinstance(event, (bytes, bytearray, str)):
        try:
            event = json.loads(event)
        except ValueError:
            return None
    if isinstance(event, dict):
        body = event.get(KEY)
        if isinstance(body, dict):
            return body
    return None


def handle(app: App, body: dict[str, Any], context: Any, budget: Budget) -> dict[str, Any]:
    """One invocation's part of a fanned-out backfill. Never raises for a stopped shard: FC would retry
    an async invocation that failed, and the checkpoint already says where to continue."""
    job = Job.model_validate(body["job"])
    shard = Shard.model_validate(body["shard"]) if body.get("shard") else None
    target = app.config.target(job.target)
    bf = for_app(app, target, budget=budget)
    fc = app.session.fc(getattr(context, "region", None) or app.config.source.region)
    name = context.function.name
    timer = None
    if budget.deadline is not None:
        timer = threading.Timer(max(0.0, budget.remaining() - DEADLINE_MARGIN), bf.stop.set)
        timer.daemon = True
        timer.start()
    try:
        if shard is None:
            return _root(app, bf, job, fc, name)
        return _shard(app, bf, job, shard, fc, name)
    finally:
        if timer is not None:
            timer.cancel()
        app.session.set_pace("cr", None)


def _root(app: App, bf: Backfill, job: Job, fc: Fc, name: str) -> dict[str, Any]:
    finding = bf.grants_finding()
    if finding is not None:
        save_run(app.ledger, job, status="blocked", reason=str(Blocked(finding)), mode="fanout")
        return {"status": "blocked", "finding": finding}
    repos = bf.repositories(job.repos)
    stored, _ = load_job(app.ledger, job.target)
    resuming = stored is not None and stored.run_id == job.run_id
    if not resuming:
        bf.caps.reset_counts()
    save_run(app.ledger, job, status="running", repos=[r.path for r in repos], mode="fanout")
    shards = 0
    for repo in repos:
        # the same run again (a resume): each repository from its checkpoint, finished ones not at all
        ck = load_doc(app.ledger.get_checkpoint(repo_name(job.target, repo.namespace, repo.name)))
        mine = resuming and ck.get("run") == job.run_id
        if mine and ck.get("done"):
            continue
        fc.invoke_function(
            name,
            payload(
                job,
                Shard(
                    namespace=repo.namespace,
                    repo=repo.name,
                    repo_id=repo.repo_id,
                    page=ck.get("page", 1) if mine else 1,
                ),
            ),
            async_=True,
        )
        shards += 1
    log_decision(log, decision="backfill_fanout", run=job.run_id, target=job.target, shards=shards)
    return {"status": "running", "shards": shards}


def _shard(app: App, bf: Backfill, job: Job, shard: Shard, fc: Fc, name: str) -> dict[str, Any]:
    repo = RepoInfo(
        instance_id=app.config.source.instance_id,
        repo_id=shard.repo_id,
        namespace=shard.namespace,
        name=shard.repo,
    )
    try:
        next_page, done = bf.run_repo(job, repo, start_page=shard.page, one_page=True)
    except GuardTripped as e:
        save_run(app.ledger, job, status="guard", reason=str(e))
        return {"status": "guard", "reason": str(e)}
    except (Resumable, CloudError) as e:
        if bf.stop.is_set() and not isinstance(e, CloudError) and "ACR kept failing" not in str(e):
            # the deadline: continue from the checkpoint in a fresh invocation
            fc.invoke_function(name, payload(job, shard), async_=True)
            return {"status": "continued", "repository": repo.path}
        save_run(app.ledger, job, status="stopped", reason=f"{repo.path}: {e}; run acrsync backfill --resume")
        return {"status": "stopped", "reason": str(e)}
    if not done:
        fc.invoke_function(name, payload(job, shard.model_copy(update={"page": next_page})), async_=True)
    return {
        "status": "done" if done else "next_page",
        "repository": repo.path,
        "outcomes": dict(bf.tally.outcomes),
    }
