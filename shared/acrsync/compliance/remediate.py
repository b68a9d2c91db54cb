"""Remediation: sync tasks for what a compliance run found missing, through the push path's exactly-once
ledger gate (``push.replicate``: coverage, grants, create-if-absent, CreateRepoSyncTask, compare-and-set),
origin COMPLIANCE, at most ``compliance.max_tasks_per_run`` per run.

A tag a record already exists for is a duplicate for the ledger and costs no call, so a second run right
after the first creates nothing new (those tags are IN_FLIGHT by then anyway).
"""

from __future__ import annotations

import threading

from acrsync import push
from acrsync.config import Target
from acrsync.drift import SourceTag
from acrsync.ledger import ImageRef, Origin
from acrsync.model import RepoInfo

# Outcomes that made a record (and so took a slot): the task was created, or it is queued for reconcile.
SPENDS = ("created", "queued", "blocked")


class Remediator:
    """Thread-safe: workers call ``heal``; a slot is taken before the call and given back if unused."""

    def __init__(self, deps: push.PushDeps, limit: int):
        self.deps = deps
        self.limit = limit
        self.created = 0
        self.spent = 0
        self.limit_reached = False
        self._lock = threading.Lock()

    def _take(self) -> bool:
        with self._lock:
            if self.spent >= self.limit:
                self.limit_reached = True
                return False
            self.spent += 1
            return True

    def heal(self, repo: RepoInfo, target: Target, tag: SourceTag) -> str:
        """One image to one target; returns the push path's outcome, or ``limit`` when none is left."""
        if not self._take():
            return "limit"
        image = ImageRef(instance_id=self.deps.config.source.instance_id, namespace=repo.namespace,
                         repo=repo.name, tag=tag.tag, digest=tag.digest)
        try:
            outcome = push.replicate(image, repo.repo_id, target, self.deps, origin=Origin.COMPLIANCE,
                                     pushed_at_ms=tag.pushed_ms or None)
        except Exception:
            with self._lock:
                self.spent -= 1
            raise
        with self._lock:
            if outcome not in SPENDS:
                self.spent -= 1
            if outcome == "created":
                self.created += 1
        return outcome
