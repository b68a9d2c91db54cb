"""`acrsync ledger init | list | show | rejected`: the replication records, as the config's ledger holds them.

Exit codes: 0 done, 1 not found or a ledger failure, 2 usage or config errors.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acrsync.cli.common import ConfigOpt, Output, OutputOpt
from acrsync.cli.common import load as _config
from acrsync.config import Config
from acrsync.ledger import Ledger, LedgerError, open_ledger
from acrsync.records import Record, Status

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="inspect and set up the replication ledger (one record per image and target)")



def _ledger(cfg: Config) -> Ledger:
    try:
        return open_ledger(cfg.ledger)
    except (LedgerError, ValueError) as e:
        typer.echo(f"cannot open the ledger: {e}", err=True)
        raise typer.Exit(2 if isinstance(e, ValueError) else 1) from None


def _fail(e: LedgerError) -> typer.Exit:
    typer.echo(str(e), err=True)
    return typer.Exit(1)


def _when(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _console() -> Console:
    return Console(width=200, soft_wrap=True)


@app.command()
def init(config: Path | None = ConfigOpt) -> None:
    """Create the ledger tables (Tablestore) or file (SQLite). Safe to run again."""
    cfg = _config(config)
    ledger = _ledger(cfg)
    try:
        ledger.init()
    except LedgerError as e:
        raise _fail(e) from None
    where = cfg.ledger.path if cfg.ledger.backend == "sqlite" else \
        f"{cfg.ledger.instance} (tables {cfg.ledger.table_prefix}_*)"
    typer.echo(f"ledger ready: {cfg.ledger.backend} {where}")


@app.command("list")
def list_(status: Status | None = typer.Option(None, "--status", "-s", case_sensitive=False,
                                              help="only records with this status"),
          repo: str | None = typer.Option(None, "--repo", help="NAMESPACE/REPO in the source instance"),
          tag: str | None = typer.Option(None, "--tag", help="one tag (needs --repo)"),
          output: Output = OutputOpt,
          limit: int = typer.Option(100, "--limit", "-n", min=1, help="at most this many records"),
          config: Path | None = ConfigOpt) -> None:
    """Records in key order, optionally of one repository or tag, or in one status."""
    if tag is not None and repo is None:
        typer.echo("--tag needs --repo NAMESPACE/REPO (a tag is looked up inside one repository)", err=True)
        raise typer.Exit(2)
    if repo is not None and repo.count("/") != 1:
        typer.echo(f"--repo {repo!r}: use NAMESPACE/REPO, e.g. team-a/api", err=True)
        raise typer.Exit(2)
    cfg = _config(config)
    ledger = _ledger(cfg)
    try:
        if repo is not None:
            ns, name = repo.split("/")
            source = ledger.records_for(cfg.source.instance_id, ns, name, tag)
        else:
            source = ledger.all_records()
        records: list[Record] = []
        for r in source:
            if status is None or r.status == status:
                records.append(r)
                if len(records) >= limit:
                    break
    except LedgerError as e:
        raise _fail(e) from None
    if output == Output.json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    table = Table("image", "digest", "target", "status", "task", "attempts", "origin", "created", "next retry",
                  "issue / finding", title="ledger records (`acrsync ledger show KEY` for one in full)")
    for r in records:
        mark = " (gave up)" if r.gave_up else " (stuck)" if r.stuck else ""
        note = (r.finding.code if r.finding else None) or r.task_issue or (
            r.last_error.code if r.last_error else "")
        table.add_row(f"{r.image.repo_path}:{r.image.tag}", (r.image.digest or "-").removeprefix("sha256:")[:12],
                      r.target, r.status.value + mark, r.task_id or "", str(r.attempts), r.origin.value,
                      _when(r.created_at), _when(r.next_retry_at), note or "")
    _console().print(table)
    typer.echo(f"{len(records)} record(s)")


@app.command()
def show(key: str = typer.Argument(..., help="record key: <instance>/<ns>/<repo>:<tag>@<digest>#<target>"),
         output: Output = typer.Option(Output.json, "--output", "-o", help="json or table"),
         config: Path | None = ConfigOpt) -> None:
    """One record with its task history."""
    cfg = _config(config)
    ledger = _ledger(cfg)
    try:
        record = ledger.get(key)
    except LedgerError as e:
        raise _fail(e) from None
    if record is None:
        typer.echo(f"no record {key!r}; `acrsync ledger list` shows the keys", err=True)
        raise typer.Exit(1)
    if output == Output.json:
        typer.echo(record.model_dump_json(indent=2))
        return
    fields = Table("field", "value", title=key, show_header=False)
    for name, value in record.model_dump(mode="json", exclude={"history", "image"}).items():
        if value not in (None, [], {}):
            shown = _when(value) if name.endswith("_at") and isinstance(value, (int, float)) else value
            fields.add_row(name, shown if isinstance(shown, str) else json.dumps(shown))
    history = Table("task", "status", "created", "issue", title="attempts")
    for a in record.history:
        history.add_row(a.task_id, a.status, _when(a.created_at), a.issue or "")
    console = _console()
    console.print(fields)
    if record.history:
        console.print(history)


@app.command()
def rejected(limit: int = typer.Option(20, "--limit", "-n", min=1, help="at most this many events"),
             output: Output = OutputOpt, config: Path | None = ConfigOpt) -> None:
    """Events acrsync could not use, newest first, with the reason."""
    cfg = _config(config)
    ledger = _ledger(cfg)
    try:
        events = ledger.list_rejected(limit)
    except LedgerError as e:
        raise _fail(e) from None
    if output == Output.json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in events], indent=2))
        return
    table = Table("received", "source", "reason", "id", "payload", title="rejected events")
    for e in events:
        payload = e.payload if len(e.payload) <= 60 else e.payload[:57] + "..."
        table.add_row(_when(e.received_at), e.source, e.reason, e.id, payload)
    _console().print(table)
    typer.echo(f"{len(events)} event(s)")
