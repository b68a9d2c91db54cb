"""The compliance report: what one run checked, how each source repository reaches each target, and the
findings. Stored in the ledger (``Report`` kind ``compliance``), read back by `acrsync report`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field

from acrsync.compliance.findings import Finding, ordered
from acrsync.ledger import Ledger, Report

KIND = "compliance"


class Mode(str, Enum):
    """How a source repository reaches a target (one matrix cell)."""

    RULE = "rule"                    # an ACR sync rule replicates it (rule id in the cell)
    ACRSYNC = "acrsync"              # acrsync makes the sync tasks
    EXCLUDED = "excluded"            # an ``exclude`` glob of the target (named in the cell)
    OUT_OF_SCOPE = "out_of_scope"    # not in the target's namespaces/repositories
    DISABLED = "disabled"            # the target has enabled: false
    UNREADABLE = "unreadable"        # the target side could not be listed
    NOT_CHECKED = "not_checked"      # the run stopped before this repository


class Cell(BaseModel):
    mode: Mode
    rule_id: str | None = None
    reason: str = ""
    ok: int = 0
    missing: int = 0
    differs: int = 0
    in_flight: int = 0
    extra: int = 0

    @property
    def healthy(self) -> bool:
        return self.mode not in (Mode.UNREADABLE, Mode.NOT_CHECKED) and not (self.missing or self.differs)

    @property
    def label(self) -> str:
        """What the HTML and Markdown matrices print in the cell."""
        if self.mode is Mode.RULE:
            base = f"rule {self.rule_id}" if self.rule_id else "rule"
        elif self.mode is Mode.EXCLUDED:
            base = f"excluded {self.reason}" if self.reason else "excluded"
        else:
            base = self.mode.value.replace("_", " ")
        extra = []
        if self.missing:
            extra.append(f"missing {self.missing}")
        if self.differs:
            extra.append(f"drift {self.differs}")
        if self.in_flight:
            extra.append(f"in flight {self.in_flight}")
        return " · ".join([base, *extra])

    @property
    def css(self) -> str:
        if self.mode is Mode.UNREADABLE or self.missing or self.differs:
            return "bad"
        if self.in_flight:
            return "busy"
        if self.mode in (Mode.RULE, Mode.ACRSYNC):
            return "ok"
        return "none"


class RepoRow(BaseModel):
    namespace: str
    repo: str
    tags: int = 0                            # source tags seen (all, before any tag filter)
    cells: dict[str, Cell] = Field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.repo}"

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.cells.values())


class TargetResult(BaseModel):
    name: str
    account_id: str
    region: str
    instance_id: str
    enabled: bool = True
    status: Literal["checked", "unreadable", "disabled", "partial"] = "checked"
    tag_filter: str = ".*"
    override: bool = False
    counts: dict[str, int] = Field(default_factory=dict)     # TagState value -> tags
    remediation: Literal["off", "done", "skipped_blocked", "limit_reached"] = "off"
    tasks_created: int = 0


class Scope(BaseModel):
    source_instance: str
    source_region: str
    targets: list[str]
    repos_total: int = 0
    repos_checked: int = 0
    resumed_from: str | None = None          # first repository of this run when it resumed a cursor
    stopped_at: str | None = None            # first repository not checked (the cursor) when it stopped
    pipeline: str = "not checked"            # "checked" | "not checked: <why>"
    remediate: bool = False
    trigger: str = "cli"                     # cli | timer | invoke


class ComplianceReport(BaseModel):
    id: str
    started_at: float
    finished_at: float
    verdict: Literal["compliant", "findings"]
    complete: bool
    scope: Scope
    targets: list[TargetResult]
    rows: list[RepoRow] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    calls: dict[str, int] = Field(default_factory=dict)
    tasks_created: int = 0
    truncated: bool = False                  # per-tag evidence trimmed to fit the ledger's row size

    def counts(self) -> dict[str, dict[str, int]]:
        """target -> finding code -> count (a finding's ``count`` tags or items)."""
        out: dict[str, Counter[str]] = {}
        for f in self.findings:
            out.setdefault(f.target, Counter())[f.code] += f.count
        return {t: dict(sorted(c.items())) for t, c in sorted(out.items())}

    def summary(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "complete": self.complete, "counts": self.counts(),
                "repos_checked": self.scope.repos_checked, "repos_total": self.scope.repos_total,
                "tasks_created": self.tasks_created, "stopped_at": self.scope.stopped_at}


def verdict_of(findings: list[Finding]) -> Literal["compliant", "findings"]:
    return "findings" if any(f.blocks for f in findings) else "compliant"


# Tablestore keeps a string column up to 2 MB; stay well below it (the SQLite ledger has no such limit).
MAX_STORED_BYTES = 1_500_000


def to_stored(report: ComplianceReport) -> Report:
    """The ledger's Report. When the body is too big for one Tablestore cell it is trimmed in steps, each
    setting ``truncated``: three evidence lines per finding, then the fully-OK matrix rows (their counts
    stay in the targets' totals), then one evidence line and no matrix at all."""
    steps: list[Callable[[ComplianceReport], ComplianceReport]] = [
        lambda r: r.model_copy(
            update={"findings": [f.model_copy(update={"evidence": f.evidence[:3]}) for f in r.findings]}
        ),
        lambda r: r.model_copy(update={"rows": [row for row in r.rows if not row.healthy]}),
        lambda r: r.model_copy(
            update={
                "rows": [],
                "findings": [f.model_copy(update={"evidence": f.evidence[:1]}) for f in r.findings],
            }
        ),
    ]
    stored = report
    for step in steps:
        if len(stored.model_dump_json()) <= MAX_STORED_BYTES:
            break
        stored = step(stored).model_copy(update={"truncated": True})
    return Report(kind=KIND, id=report.id, created_at=report.finished_at, summary=report.summary(),
                  body=stored.model_dump(mode="json"))


def from_stored(stored: Report) -> ComplianceReport:
    return ComplianceReport.model_validate(stored.body)


def store(ledger: Ledger, report: ComplianceReport) -> None:
    ledger.put_report(to_stored(report))


def latest(ledger: Ledger) -> ComplianceReport | None:
    found = ledger.list_reports(KIND, limit=1)
    return from_stored(found[0]) if found else None


def load(ledger: Ledger, report_id: str) -> ComplianceReport | None:
    if report_id == "latest":
        return latest(ledger)
    found = ledger.get_report(KIND, report_id)
    return from_stored(found) if found else None


def finalize(report: ComplianceReport) -> ComplianceReport:
    findings = ordered(report.findings)
    return report.model_copy(update={"findings": findings, "verdict": verdict_of(findings)})
