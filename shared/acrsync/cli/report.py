"""`acrsync report list | show`: the compliance reports stored in the ledger.

Exit codes: 0 shown, 1 no such report (or a ledger failure), 2 usage or config errors.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acrsync.cli.check import ReportFormat, emit
from acrsync.cli.common import ConfigOpt
from acrsync.cli.common import load as _config
from acrsync.ledger import Ledger, LedgerError, open_ledger

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="read the compliance reports stored in the ledger")


class ListFormat(str, Enum):
    table = "table"
    json = "json"


def _ledger(config: Path | None) -> Ledger:
    try:
        return open_ledger(_config(config).ledger)
    except (LedgerError, ValueError) as e:
        typer.echo(f"cannot open the ledger: {e}", err=True)
        raise typer.Exit(2 if isinstance(e, ValueError) else 1) from None


@app.command("list")
def list_(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="newest first, at most this many"),
    output: ListFormat = typer.Option(ListFormat.table, "--output", "-o", help="table or json"),
    config: Path | None = ConfigOpt,
) -> None:
    """The newest compliance reports: id, verdict, repositories checked, counts."""
    from acrsync.compliance.report import KIND

    try:
        found = _ledger(config).list_reports(KIND, limit=limit)
    except LedgerError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    if output is ListFormat.json:
        typer.echo(
            json.dumps([{"id": r.id, "created_at": r.created_at, **r.summary} for r in found], indent=2)
        )
        return
    table = Table("id", "time (UTC)", "verdict", "checked", "complete", "tasks", "counts")
    for r in found:
        s = r.summary
        counts = "; ".join(f"{t}: " + ", ".join(f"{c} {n}" for c, n in codes.items())
                           for t, codes in (s.get("counts") or {}).items())
        table.add_row(
            r.id,
            dt.datetime.fromtimestamp(r.created_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            str(s.get("verdict")),
            f"{s.get('repos_checked')}/{s.get('repos_total')}",
            "yes" if s.get("complete") else "no",
            str(s.get("tasks_created", 0)),
            counts,
        )
    Console(width=200, soft_wrap=True).print(table)


@app.command()
def show(
    report_id: str = typer.Argument("latest", help="a report id from `acrsync report list`, or latest"),
    output: ReportFormat = typer.Option(ReportFormat.table, "--output", "-o", help="table, json, md or html"),
    out: Path | None = typer.Option(None, "--out", help="write the report to this file"),
    config: Path | None = ConfigOpt,
) -> None:
    """One stored report, in the same forms as `acrsync check` prints."""
    from acrsync.compliance import render
    from acrsync.compliance.report import load

    try:
        found = load(_ledger(config), report_id)
    except LedgerError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    if found is None:
        typer.echo(f"no compliance report {report_id!r}; `acrsync report list` shows the stored ones "
                   "(`acrsync check` makes one)", err=True)
        raise typer.Exit(1)
    emit(render.FORMATS[output.value](found), out)
