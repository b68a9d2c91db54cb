"""What a grant or prerequisite check reports: one ``Finding`` per thing to change, with its fix.

Codes are stable (scripts and the ledger's BLOCKED records key on them); messages are for people.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "warning", "info"]

# code -> default severity. Every code the checks can emit is listed here (docs/grants.md explains each).
CODES: dict[str, Severity] = {
    "ROLE_MISSING": "error",
    "ROLE_NAME_MISSPELT": "error",
    "ACTION_NOT_ALLOWED": "error",
    "DENIED_BY_STATEMENT": "error",
    "RESOURCE_MISMATCH": "error",
    "TRUST_MISSING_PRINCIPAL": "error",
    "TRUST_TOO_WIDE": "warning",
    "CONDITION_UNKNOWN": "warning",
    "POLICY_MALFORMED": "error",
    "POLICY_UNREADABLE": "warning",
    "READER_ROLE_CANNOT_READ": "error",
    "READER_ROLE_NOT_CONFIGURED": "warning",
    "SOURCE_EDITION": "error",
    "TARGET_EDITION": "error",
    "SOURCE_INSTANCE_UNREADABLE": "error",
    "TARGET_INSTANCE_UNREADABLE": "error",
    "REGION_NOT_ALLOWED": "error",
    "TARGET_NAMESPACE_MISSING": "error",
    "TARGET_NAMESPACE_NO_AUTOCREATE": "error",
    "TARGET_REPO_MISSING": "error",
    "TARGET_REPO_SETTINGS_DIFFER": "error",
    "SOURCE_REPO_MISSING": "warning",
    "CHECK_FAILED": "error",
}


class Evidence(BaseModel):
    """Where the finding comes from: a policy statement, a role, an API reply."""

    model_config = ConfigDict(frozen=True)
    source: str = Field(description="e.g. 'policy acrsync-sync-cri-x (Custom)', 'trust policy of role r', "
                                    "'GetInstance cri-x'")
    statement: int | None = Field(default=None, description="0-based index in the document's Statement list")
    detail: str = Field(default="", description="the statement JSON, the condition, or the value read")


class Fix(BaseModel):
    """How to make the finding go away: the documents to put in place and the commands that do it."""

    model_config = ConfigDict(frozen=True)
    summary: str
    role_name: str | None = None
    policy_name: str | None = None
    policy_json: str | None = None
    trust_json: str | None = None
    commands: list[str] = Field(default_factory=list)
    automatic: bool = Field(default=False, description="`acrsync grants apply` makes this change")


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    severity: Severity
    target: str
    message: str
    evidence: list[Evidence] = Field(default_factory=list)
    fix: Fix | None = None


def finding(code: str, target: str, message: str, *, evidence: list[Evidence] | None = None,
            fix: Fix | None = None, severity: Severity | None = None) -> Finding:
    """Build a finding with the code's default severity (a typo in a code fails loudly here)."""
    if code not in CODES:
        raise KeyError(f"unknown finding code {code!r}; add it to acrsync.grants.findings.CODES")
    return Finding(code=code, severity=severity or CODES[code], target=target, message=message,
                   evidence=evidence or [], fix=fix)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
