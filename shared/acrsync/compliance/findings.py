"""What a compliance run reports: one ``Finding`` per thing to look at, with a stable code and the fix.

Findings have the shape of the grant findings (``acrsync.grants.findings``: code, severity, target,
message, evidence, fix); grant and prerequisite findings are carried over with their own codes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from acrsync.grants.findings import CODES as GRANT_CODES
from acrsync.grants.findings import UNPROVEN_CODES, Evidence, Fix, Severity
from acrsync.grants.findings import Finding as GrantFinding

# code -> default severity (docs/compliance.md explains each).
CODES: dict[str, Severity] = {
    "TAG_MISSING": "error",  # on the source, in scope, not on the target
    "DIGEST_DIFFERS": "error",  # same tag, another digest on the target
    "RULE_NOT_REPLICATING": "error",  # a sync rule covers tags the target still lacks
    "IN_FLIGHT": "info",  # an open ledger record or task is bringing it
    "UNKNOWN_STATUS": "warning",  # its task reports a status acrsync does not know (treated as running)
    "EXTRA_TAGS": "info",  # tags only the target has (acrsync never deletes)
    "TARGET_DISABLED": "info",  # enabled: false, so nothing is replicated to it
    "TARGET_UNREADABLE": "error",  # the target (or a repository on it) could not be listed
    "SOURCE_UNREADABLE": "error",  # the source instance could not be listed
    "EVENTS_NOT_ARRIVING": "error",  # in-scope pushes older than the grace the ledger never saw
    "PIPELINE_FUNCTION_MISSING": "error",
    "PIPELINE_TRIGGER_MISSING": "error",
    "PIPELINE_TRIGGER_DISABLED": "error",
    "PIPELINE_TRIGGER_FILTER": "error",
    "PIPELINE_TIMER_MISSING": "error",
    "PIPELINE_TIMER_DISABLED": "error",
    "PIPELINE_NOT_CHECKED": "info",
    "REMEDIATION_SKIPPED": "warning",  # blocking grant findings: no tasks made for this target
    "REMEDIATION_LIMIT": "warning",  # compliance.max_tasks_per_run reached
    "RUN_INCOMPLETE": "warning",  # the deadline came first; the next run resumes
}


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    severity: Severity
    target: str = Field(description="target name, or '*' for the whole run")
    message: str
    repo: str | None = Field(default=None, description="source 'namespace/repo' when about one repository")
    evidence: list[Evidence] = Field(default_factory=list)
    fix: Fix | None = None
    count: int = Field(default=1, description="how many tags or items the finding stands for")

    @property
    def blocks(self) -> bool:
        """Keeps the run from compliant: an error, or a grant that holds only under an unknown Condition."""
        return self.severity == "error" or self.code in UNPROVEN_CODES


def finding(code: str, target: str, message: str, *, repo: str | None = None,
            evidence: list[Evidence] | None = None, fix: Fix | None = None, count: int = 1,
            severity: Severity | None = None) -> Finding:
    """Build a finding with the code's default severity (an unknown code fails loudly here)."""
    if code not in CODES:
        raise KeyError(
            f"unknown compliance finding code {code!r}; add it to acrsync.compliance.findings.CODES"
        )
    return Finding(code=code, severity=severity or CODES[code], target=target, message=message, repo=repo,
                   evidence=evidence or [], fix=fix, count=count)


def from_grant(f: GrantFinding) -> Finding:
    """A grant or prerequisite finding, as the compliance report carries it (its code unchanged)."""
    assert f.code in GRANT_CODES
    return Finding(code=f.code, severity=f.severity, target=f.target, message=f.message, evidence=f.evidence,
                   fix=f.fix)


SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.target, f.code, f.repo or ""))
