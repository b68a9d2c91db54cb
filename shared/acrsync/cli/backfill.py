"""`acrsync backfill`: replicate the images pushed before replication was set up (docs/backfill.md).

Without --yes it prints the plan; with --yes it runs it under the caps. `acrsync backfill status` shows a
run's progress. Exit codes: 0 planned or done, 1 stopped (resumable), guard rail or blocked grants,
2 usage or config errors.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from acrsync.cli.common import ConfigOpt, Output, OutputOpt, load
from acrsync.config import Config, Target

if TYPE_CHECKING:
    from acrsync.app import App
    from acrsync.backfill.plan import BackfillPlan
    from acrsync.backfill.run import Backfill, Job
    from acrsync.model import RepoInfo

# --repo, --since, --max-tasks, --max-failures
JobArgs = tuple[list[str], str | None, int | None, float | None]

app = typer.Typer(add_completion=False, invoke_without_command=True,
                  help="replicate existing images (pushed before replication was set up), resumably")
err = Console(stderr=True)

PROGRESS_INTERVAL = 2.0


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/red]")
    return typer.Exit(2)


def _target(cfg: Config, name: str | None) -> Target:
    if not name:
        raise _usage(f"--target is required; configured targets: {', '.join(t.name for t in cfg.targets)}")
    try:
        t = cfg.target(name)
    except KeyError:
        raise _usage(
            f"--target: no target named {name!r}; use one of: "
            f"{', '.join(t.name for t in cfg.targets)} (or add it under targets: in the config)"
        ) from None
    if not t.enabled:
        raise _usage(f"--target: {name!r} is disabled in the config; set enabled: true to backfill it")
    return t


def parse_since(value: str | None, now: dt.datetime | None = None) -> int | None:
    """--since as epoch milliseconds; a date in the future or an unreadable one is a usage error."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _usage(f"--since {value!r} is not a date; use YYYY-MM-DD or an ISO time such as "
                     "2026-01-31T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    if when > now:
        raise _usage(f"--since {value} is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ}); give a past date, "
                     "or leave --since out to backfill every existing image")
    return int(when.timestamp() * 1000)


def _max_failures(value: float | None) -> float | None:
    if value is None:
        return None
    ratio = value / 100 if value > 1 else value
    if not 0 < ratio <= 1:
        raise _usage(f"--max-failures {value}: give a share of finished tasks, 0.5 or 50 (%)")
    return ratio


def _app(config: Path | None) -> App:
    from acrsync.app import App
    from acrsync.app import config_path as default_path

    found = config or default_path()
    return App.for_cli(load(Path(found) if found else None))


@app.callback()
def backfill(
    ctx: typer.Context,
    target: str = typer.Option(None, "--target", "-t", help="target name from the config"),
    repo: list[str] = typer.Option([], "--repo", "-r", help="'namespace/repo' glob (repeatable)"),
    since: str = typer.Option(None, "--since", help="only images pushed since this date (YYYY-MM-DD)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan and change nothing"),
    max_tasks: int = typer.Option(None, "--max-tasks", min=1, help="stop after this many tasks"),
    yes: bool = typer.Option(False, "--yes", "-y", help="run the plan (without it: only print it)"),
    resume: bool = typer.Option(False, "--resume", help="continue the target's stopped run"),
    max_failures: float = typer.Option(
        None, "--max-failures", help="stop when this share of >= 100 finished tasks failed (default 0.5)"
    ),
    output: Output = OutputOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Plan (default) or run (--yes) the backfill of one target."""
    if ctx.invoked_subcommand is not None:
        return
    from acrsync.backfill import local as L
    from acrsync.cloud.errors import CloudError

    a = _app(config)
    t = _target(a.config, target)
    bf = L.for_app(a, t)
    try:
        _backfill(a, t, bf, job_args=(repo, since, max_tasks, max_failures), resume=resume, yes=yes,
                  dry_run=dry_run, output=output)
    except CloudError as e:
        err.print(f"[red]{e}[/red]")
        err.print("nothing is lost: run the same command again (a started run: --resume)")
        raise typer.Exit(1) from None


def _backfill(a: App, t: Target, bf: Backfill, *, job_args: JobArgs, resume: bool, yes: bool, dry_run: bool,
              output: Output) -> None:
    from acrsync.backfill import Blocked, Job
    from acrsync.backfill.run import load_job

    repo, since, max_tasks, max_failures = job_args
    if resume:
        job, state = load_job(a.ledger, t.name)
        if job is None:
            raise _usage(f"--resume: target {t.name!r} has no stored run; start one with --yes")
        if state.get("status") == "done":
            typer.echo(f"the last backfill of {t.name} ({job.run_id}) is done; nothing to resume")
            raise typer.Exit(0)
        # --max-tasks limits this invocation; --max-failures, when given, replaces the stored one
        job = job.model_copy(update={"max_tasks": max_tasks, "max_failures": _max_failures(max_failures)
                                     if max_failures is not None else job.max_failures})
        yes = True
    else:
        job = Job(run_id=f"bf-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
                  target=t.name, repos=list(repo), since_ms=parse_since(since), max_tasks=max_tasks,
                  max_failures=_max_failures(max_failures))
    repos = bf.repositories(job.repos)
    if job.repos and not repos:
        known = sorted(r.path for r in bf.repositories([]))
        raise _usage(f"--repo {' '.join(job.repos)} matches no repository in the scope of target {t.name!r}; "
                     f"repositories in scope: {', '.join(known[:10]) or 'none'}"
                     + (" ..." if len(known) > 10 else ""))
    plan = bf.plan(job, repos)
    if plan.blocked_by is not None:
        _show_plan(plan, output)
        err.print(f"[red]{Blocked(plan.blocked_by)}[/red]")
        raise typer.Exit(1)
    if dry_run or not yes:
        _show_plan(plan, output)
        if not dry_run:
            err.print("nothing was changed; run again with --yes to create these tasks")
        raise typer.Exit(0)
    if resume:
        bf.takeover = True          # the stopped run is gone: its records without a task are finished now
    else:
        bf.caps.reset_counts()
    _execute(bf, job, repos, plan.to_create, output)


def _execute(bf: Backfill, job: Job, repos: list[RepoInfo], planned: int, output: Output) -> None:
    from acrsync.backfill import local as L

    done = threading.Event()
    emit = _reporter(bf, planned, output)
    tick = L.ticker(PROGRESS_INTERVAL, emit, done)
    try:
        outcome = L.run(bf, job, repos)
    finally:
        done.set()
        tick.join(timeout=5)
    summary = {"run": job.run_id, "target": job.target, "status": outcome.status, "reason": outcome.reason,
               "outcomes": dict(bf.tally.outcomes), **L.progress_of(bf, planned).to_dict()}
    typer.echo(json.dumps(summary, sort_keys=True) if output is Output.json else _summary_text(summary))
    if outcome.status == "guard":
        err.print(f"[red]guard rail: the run stopped itself: {outcome.reason}[/red]")
        raise typer.Exit(1)
    if outcome.status != "done":
        err.print(f"[yellow]stopped, resumable: {outcome.reason}[/yellow]")
        raise typer.Exit(1)


def _summary_text(s: dict[str, Any]) -> str:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s["outcomes"].items())) or "nothing to do"
    return f"backfill {s['run']} of {s['target']}: {s['status']} ({outcomes}); done {s['done']}, " \
           f"failed {s['failed']}, in flight {s['in_flight']}"


def _reporter(bf: Backfill, planned: int, output: Output) -> Callable[[], None]:
    """Progress: a rich bar on a terminal, else one JSON line per interval on stderr."""
    from acrsync.backfill import local as L

    if sys.stderr.isatty() and output is not Output.json:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("backfill"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} created"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        task = bar.add_task("backfill", total=max(planned, 1), info="")
        bar.start()

        def emit() -> None:
            p = L.progress_of(bf, planned)
            bar.update(task, completed=p.created, info=f"done {p.done} failed {p.failed} "
                                                       f"in flight {p.in_flight} {p.rate:.1f}/s")
            if p.created >= planned or bf.stop.is_set():
                bar.stop()
        return emit

    def emit_json() -> None:
        typer.echo(json.dumps({"progress": L.progress_of(bf, planned).to_dict()}, sort_keys=True), err=True)
    return emit_json


def _show_plan(plan: BackfillPlan, output: Output) -> None:
    from acrsync.backfill.plan import human_bytes, human_seconds

    if output is Output.json:
        typer.echo(json.dumps(plan.to_dict(), sort_keys=True))
        return
    out = Console()
    table = Table(title=f"backfill plan for target {plan.target}")
    for col in ("repository", "in scope", "on target", "to create", "skipped", "bytes"):
        table.add_column(col, justify="left" if col in ("repository", "skipped") else "right")
    for r in plan.repos:
        d = r.to_dict()
        skipped = ", ".join(f"{k} {v}" for k, v in d["skipped"].items()) or "-"
        table.add_row(d["repository"], str(d["in_scope"]), str(d["on_target"]), str(d["to_create"]), skipped,
                      human_bytes(d["bytes"]))
    out.print(table)
    t = plan.totals()
    e = plan.estimate
    out.print(f"total: {t['to_create']} task(s) to create, {human_bytes(t['bytes'])} to move; "
              f"{t['on_target']} already on the target; skipped {t['skipped'] or 'none'}")
    out.print(f"estimate: {e.calls} OpenAPI calls, about {human_seconds(e.seconds)} under the caps "
              f"(bound by {e.bound_by})")
    out.print("note: sync rules never copy images pushed before they existed; these need this backfill")
    if plan.blocked_by:
        out.print(f"[red]blocked: {plan.blocked_by.get('code')}: {plan.blocked_by.get('message', '')}[/red]")
    if plan.oss:
        o = plan.oss
        out.print(f"[yellow]the OSS route may be cheaper: {'; '.join(o.reasons)}; about "
                  f"{human_seconds(o.seconds)} as sync tasks[/yellow]")
        for i, (step, url) in enumerate(o.steps, 1):
            out.print(f"  {i}. {step}" + (f" ({url})" if url else ""))


@app.command("status")
def status(target: str = typer.Option(None, "--target", "-t", help="target name from the config"),
           output: Output = OutputOpt, config: Path | None = ConfigOpt) -> None:
    """Progress of the target's last backfill run: repositories done, tasks in flight, finished."""
    from acrsync.backfill import local as L
    from acrsync.backfill.run import load_doc, load_job, repo_name

    a = _app(config)
    t = _target(a.config, target)
    job, state = load_job(a.ledger, t.name)
    if job is None:
        typer.echo(f"target {t.name} has no backfill run yet")
        raise typer.Exit(0)
    repos = state.get("repos") or []
    done = 0
    pending = []
    for path in repos:
        ns, _, name = path.partition("/")
        ck = load_doc(a.ledger.get_checkpoint(repo_name(t.name, ns, name)))
        if ck.get("run") == job.run_id and ck.get("done"):
            done += 1
        else:
            pending.append(
                {"repository": path, "next_page": ck.get("page", 1) if ck.get("run") == job.run_id else 1}
            )
    bf = L.for_app(a, t)
    finished = bf.caps.finished()
    doc = {
        "run": job.run_id,
        "target": t.name,
        "status": state.get("status"),
        "reason": state.get("reason", ""),
        "repositories": len(repos),
        "repositories_done": done,
        "pending": pending[:20],
        "in_flight": bf.caps.in_flight(),
        "tasks_done": finished.done,
        "tasks_failed": finished.failed,
        "outcomes": state.get("outcomes", {}),
    }
    if output is Output.json:
        typer.echo(json.dumps(doc, sort_keys=True))
        return
    typer.echo(f"backfill {doc['run']} of {t.name}: {doc['status']}"
               + (f" ({doc['reason']})" if doc["reason"] else ""))
    typer.echo(f"repositories: {done}/{len(repos)} done; tasks in flight {doc['in_flight']}, "
               f"finished {finished.done} ok / {finished.failed} failed")
    for p in pending[:20]:
        typer.echo(f"  pending {p['repository']} from page {p['next_page']}")


