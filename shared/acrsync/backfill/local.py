"""A backfill run in this process (the CLI): a few threads over repositories sharing the caps; one
stop event set by Ctrl-C, the guard rail or the first cloud failure; progress reported to a callback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from acrsync.backfill.caps import Caps, cap_store_for
from acrsync.backfill.run import Backfill, GuardTripped, Job, Resumable, save_run
from acrsync.cloud.errors import CloudError
from acrsync.config import Target
from acrsync.model import RepoInfo
from acrsync.value import Value, dataclass

if TYPE_CHECKING:
    from acrsync.app import App
    from acrsync.cloud.retry import Budget

WORKERS = 4


def for_app(app: App, target: Target, *, budget: Budget | None = None,
            stop: threading.Event | None = None) -> Backfill:
    """A Backfill wired to an ``acrsync.app.App``: its adapters, its ledger and the shared caps."""
    deps = app.deps(budget)
    session = app.session
    target_acr = session.acr(target.region, role_arn=target.reader_role_arn)
    caps = Caps(cap_store_for(app.ledger), app.ledger, target.name, app.config.backfill,
                stop=stop or threading.Event())
    bf = Backfill(deps, target, target_acr, caps, calls=session.calls)
    caps.refresh = bf.refresh
    session.set_pace("cr", lambda: caps.take(1))     # every ACR call of this process, retries included
    return bf


@dataclass
class Progress(Value):
    created: int
    done: int
    failed: int
    in_flight: int
    planned: int
    rate: float          # tasks created per second
    eta_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "done": self.done,
            "failed": self.failed,
            "in_flight": self.in_flight,
            "planned": self.planned,
            "rate": round(self.rate, 2),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
        }


def progress_of(bf: Backfill, planned: int) -> Progress:
    created = bf.tally.created
    elapsed = max(1e-6, time.monotonic() - bf.tally.started)
    rate = created / elapsed
    finished = bf.caps.finished()
    left = max(0, planned - created)
    return Progress(
        created=created,
        done=finished.done,
        failed=finished.failed,
        in_flight=bf.caps.in_flight(),
        planned=planned,
        rate=rate,
        eta_seconds=(left / rate) if rate > 0 else None,
    )


@dataclass
class Outcome(Value):
    status: str                  # done | stopped | guard
    reason: str = ""


def run(bf: Backfill, job: Job, repos: list[RepoInfo], *, workers: int = WORKERS) -> Outcome:
    """Work every repository (from its checkpoint); the run state is saved whatever happens."""
    ledger = bf.d.ledger
    save_run(ledger, job, status="running", repos=[r.path for r in repos], started_at=time.time())
    errors: list[BaseException] = []

    def work(repo: RepoInfo) -> None:
        if bf.stop.is_set():
            return
        try:
            bf.run_repo(job, repo)
        except (Resumable, GuardTripped, CloudError) as e:
            errors.append(e)
            bf.stop.set()

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="acrsync-backfill")
    try:
        for future in [pool.submit(work, repo) for repo in repos]:
            future.result()
    except KeyboardInterrupt:
        bf.stop.set()              # the threads stop at their next image; pages already done are checkpointed
        errors.append(Resumable("interrupted (Ctrl-C); run again with --resume"))
    finally:
        pool.shutdown(wait=True)
    guard = next((e for e in errors if isinstance(e, GuardTripped)), None)
    if guard is not None:
        outcome = Outcome("guard", str(guard))
    elif errors:
        e = errors[0]
        reason = str(e) if isinstance(e, Resumable) else (
            f"{type(e).__name__}: {e}; the checkpoint is saved, run again later with --resume")
        outcome = Outcome("stopped", reason)
    elif bf.stop.is_set():
        outcome = Outcome("stopped", "stopped on request; run again with --resume")
    else:
        outcome = Outcome("done")
    save_run(ledger, job, status=outcome.status, reason=outcome.reason, finished_at=time.time(),
             outcomes=dict(bf.tally.outcomes))
    return outcome


def ticker(interval: float, emit: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """Call ``emit`` every ``interval`` seconds until ``stop`` is set (and once more at the end)."""
    def loop() -> None:
        while not stop.wait(interval):
            emit()
        emit()

    t = threading.Thread(target=loop, daemon=True, name="acrsync-backfill-progress")
    t.start()
    return t
