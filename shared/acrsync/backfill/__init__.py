"""Backfill: replicate the images pushed before acrsync (or a sync rule) was there (docs/backfill.md).

    plan.py     pure: per repository what is in scope, on the target, to create, skipped and why; the
                estimate under the caps; the OSS route over the threshold
    caps.py     the QPS token bucket and the in-flight slots per target, in the ledger's store
    run.py      the run: pages, checkpoints, the exactly-once path (origin BACKFILL), the guard rail
    local.py    a run in this process (the CLI): threads over repositories, progress, resume
    fanout.py   a run across Function Compute invocations: one shard per invocation, the rest async
"""

from acrsync.backfill.plan import BackfillPlan, OssRoute, RepoPlan, Skip
from acrsync.backfill.run import Backfill, Blocked, GuardTripped, Job, Resumable

__all__ = ["Backfill", "BackfillPlan", "Blocked", "GuardTripped", "Job", "OssRoute", "RepoPlan", "Resumable",
           "Skip"]
