"""The report as a terminal table, JSON, Markdown, or one self-contained HTML file (jinja2, autoescaped:
everything the report holds is escaped, finding evidence and config values alike)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from io import StringIO
from typing import Any

from jinja2 import Environment, StrictUndefined, Template
from rich.console import Console
from rich.table import Table

from acrsync.compliance.report import ComplianceReport, RepoRow

TEMPLATE = "data/compliance_report.html.j2"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def as_json(report: ComplianceReport) -> str:
    return report.model_dump_json(indent=2)


def as_text(report: ComplianceReport, *, width: int = 120) -> str:
    """A short table for a terminal: per target, counts per state and finding code; the error findings."""
    out = StringIO()
    console = Console(file=out, width=width, force_terminal=False, no_color=True, highlight=False)
    s = report.scope
    console.print(f"compliance {report.id}: {report.verdict.upper()}"
                  f"{'' if report.complete else ' (partial: stopped at ' + str(s.stopped_at) + ')'}")
    console.print(
        f"source {s.source_instance} ({s.source_region}); repositories checked {s.repos_checked} of "
        f"{s.repos_total}; pipeline {s.pipeline}; tasks created {report.tasks_created}"
    )
    table = Table("target", "status", "ok", "missing", "digest differs", "in flight", "extra", "remediation")
    for t in report.targets:
        c = t.counts
        table.add_row(
            t.name,
            t.status,
            *(str(c.get(k, 0)) for k in ("OK", "MISSING", "DIGEST_DIFFERS", "IN_FLIGHT", "EXTRA")),
            t.remediation,
        )
    console.print(table)
    shown = [f for f in report.findings if f.severity != "info"]
    if shown:
        ft = Table("severity", "code", "target", "repository", "message", "fix")
        for f in shown:
            ft.add_row(f.severity, f.code, f.target, f.repo or "", f.message, f.fix.summary if f.fix else "")
        console.print(ft)
    info = len(report.findings) - len(shown)
    if info:
        console.print(f"{info} informational finding(s) not shown (--output json|md|html lists them)")
    return out.getvalue()


def _md(text: str) -> str:
    """Text in a Markdown table cell: pipes escaped, newlines as spaces, angle brackets as entities."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\n", " "))


def as_markdown(report: ComplianceReport) -> str:
    s = report.scope
    lines = [f"# acrsync compliance report {report.id}", "",
             f"- verdict: **{report.verdict}**{'' if report.complete else ' (partial)'}",
             f"- time: {_when(report.started_at)} to {_when(report.finished_at)}",
             f"- source: {s.source_instance} ({s.source_region}); targets: {', '.join(s.targets)}",
             f"- repositories checked: {s.repos_checked} of {s.repos_total}"
             + (f"; resumed from {s.resumed_from}" if s.resumed_from else "")
             + (f"; stopped at {s.stopped_at} (the next run resumes there)" if s.stopped_at else ""),
             f"- pipeline: {s.pipeline}; remediation: {'on' if s.remediate else 'off'}; tasks created: "
             f"{report.tasks_created}", "", "## Targets", "",
             "| target | status | ok | missing | digest differs | in flight | extra | remediation |",
             "|---|---|---|---|---|---|---|---|"]
    for t in report.targets:
        counts = t.counts
        lines.append(f"| {_md(t.name)} | {t.status} | " + " | ".join(str(counts.get(k, 0)) for k in (
            "OK", "MISSING", "DIGEST_DIFFERS", "IN_FLIGHT", "EXTRA")) + f" | {t.remediation} |")
    problems = [r for r in report.rows if not r.healthy]
    names = [t.name for t in report.targets]
    lines += ["", f"## Coverage: {len(problems)} repositories need attention "
                  f"({len(report.rows) - len(problems)} fully OK not listed)", ""]
    if problems:
        lines += [
            "| repository | " + " | ".join(_md(n) for n in names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for r in problems:
            lines.append(f"| {_md(r.path)} | " + " | ".join(
                _md(r.cells[n].label) if n in r.cells else "" for n in names) + " |")
    lines += ["", "## Findings", ""]
    for f in report.findings:
        where = f" {f.repo}" if f.repo else ""
        lines.append(f"- **{f.severity}** `{f.code}` ({_md(f.target)}{_md(where)}): {_md(f.message)}")
        for e in f.evidence[:5]:
            lines.append(f"  - {_md(e.source)}: {_md(e.detail)[:500]}")
        if f.fix:
            lines.append(f"  - fix: {_md(f.fix.summary)}")
            for c in f.fix.commands:
                lines.append(f"    - `{c.replace('`', '')}`")
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "ns"


# The state filter of the HTML report: (radio id suffix, label, class a matrix row carries when it is in that
# state; "" for "all"). Rows get the classes in _row_view; the template generates one CSS rule per state.
STATES: tuple[tuple[str, str, str], ...] = (
    ("all", "all", ""),
    ("problems", "needing attention", "attention"),
    ("missing", "missing tags", "missing"),
    ("drift", "digest differs", "drift"),
    ("inflight", "in flight", "inflight"),
    ("unreadable", "unreadable or not checked", "unreadable"),
    ("excluded", "excluded", "excluded"),
    ("rule", "by a sync rule", "rule"),
    ("ok", "fully OK", "fully-ok"),
)


def _row_view(r: RepoRow, names: list[str]) -> dict[str, Any]:
    cells = [r.cells.get(n) for n in names]
    present = [c for c in cells if c is not None]
    flags = {"attention": not r.healthy,
             "fully-ok": r.healthy,
             "missing": any(c.missing for c in present),
             "drift": any(c.differs for c in present),
             "inflight": any(c.in_flight for c in present),
             "unreadable": any(c.mode.value in ("unreadable", "not_checked") for c in present),
             "excluded": any(c.mode.value == "excluded" for c in present),
             "rule": any(c.mode.value == "rule" for c in present)}
    return {"path": r.path, "repo": r.repo, "tags": r.tags, "cells": cells, "ok": r.healthy,
            "classes": " ".join(k for k, v in flags.items() if v)}


@lru_cache(maxsize=1)
def _template() -> Template:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(resources.files("acrsync").joinpath(TEMPLATE).read_text(encoding="utf-8"))


def as_html(report: ComplianceReport) -> str:
    """One self-contained page: no external assets; every value autoescaped. The filter's CSS is generated
    per namespace and per state (never per repository), so it stays small at thousands of repositories."""
    names = [t.name for t in report.targets]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in report.rows:
        groups.setdefault(r.namespace, []).append(_row_view(r, names))
    namespaces = []
    ids: set[str] = set()
    for i, (ns, rows) in enumerate(sorted(groups.items())):
        bad = [r for r in rows if not r["ok"]]
        anchor = "ns-" + _slug(ns)
        while anchor in ids:                 # "a.b" and "a-b" share a slug: keep anchors unique
            anchor = f"{anchor}-{i}"
        ids.add(anchor)
        namespaces.append(
            {
                "name": ns,
                "id": anchor,
                "index": i,
                "rows": bad,
                "ok_rows": [r for r in rows if r["ok"]],
                "problems": len(bad),
                "total": len(rows),
            }
        )
    sev = {"error": 0, "warning": 0, "info": 0}
    for f in report.findings:
        sev[f.severity] += 1
    return _template().render(report=report, scope=report.scope, targets=report.targets, names=names,
                              namespaces=namespaces, findings=report.findings, severities=sev,
                              states=[{"key": k, "label": label, "cls": c} for k, label, c in STATES],
                              started=_when(report.started_at), finished=_when(report.finished_at),
                              problems=sum(n["problems"] for n in namespaces),
                              repos=len(report.rows), calls=sum(report.calls.values()))


FORMATS = {"table": as_text, "json": as_json, "md": as_markdown, "html": as_html}
