"""What a grant or prerequisite check reports: one ``Finding`` per thing to change, with its fix.

Codes are stable (scripts and the ledger's BLOCKED records key on them); messages are for people.

A finding *blocks* (the target is not clean: `grants verify` exits 1, the push path records BLOCKED) when
it is an error, or when it says a grant is unproven: it holds only under a condition acrsync cannot
evaluate (``UNPROVEN_CODES``). Warnings that are advice only (e.g. trust wider than needed) never block.
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from acrsync.value import Frozen, dataclass

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

# Not proven is not clean: these block although their severity says "we do not know", not "wrong".
UNPROVEN_CODES: frozenset[str] = frozenset({"CONDITION_UNKNOWN"})


def code_blocks(code: str, severity: Severity | None = None) -> bool:
    """Does a finding with this code (and severity, default the code's own) keep a target from clean?"""
    return (severity or CODES[code]) == "error" or code in UNPROVEN_CODES


@dataclass(frozen=True, kw_only=True)
class PolicyName(Frozen):
    """A RAM policy by name and type, as ListPoliciesForRole returns it (never parsed back out of prose)."""

    name: str
    type: str                         # System | Custom

    @property
    def label(self) -> str:
        return f"policy {self.name} ({self.type})"


@dataclass(frozen=True, kw_only=True)
class Evidence(Frozen):
    """Where the finding comes from: a policy statement, a role, an API reply."""

    source: str                       # e.g. 'policy acrsync-sync-cri-x (Custom)', 'GetInstance cri-x'
    policy: PolicyName | None = None  # the attached policy this evidence is from
    statement: int | None = None      # 0-based index in the document's Statement list
    detail: str = ""                  # the statement JSON, the condition, or the value read


@dataclass(frozen=True, kw_only=True)
class Fix(Frozen):
    """How to make the finding go away: the documents to put in place and the commands that do it."""

    summary: str
    role_name: str | None = None
    policy_name: str | None = None
    policy_json: str | None = None
    trust_json: str | None = None
    commands: list[str] = field(default_factory=list)
    automatic: bool = False           # `acrsync grants apply` makes this change


@dataclass(frozen=True, kw_only=True)
class Finding(Frozen):
    code: str
    severity: Severity
    target: str
    message: str
    evidence: list[Evidence] = field(default_factory=list)
    fix: Fix | None = None
    not_checked: list[str] = field(default_factory=list)   # checks this failure kept from running
    # True when this finding keeps the target from clean (an error, or an unproven grant). A field, not a
    # property, so that every dump (JSON output, the ledger, reports) carries it.
    blocks: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", code_blocks(self.code, self.severity))


def finding(code: str, target: str, message: str, *, evidence: list[Evidence] | None = None,
            fix: Fix | None = None, severity: Severity | None = None,
            not_checked: list[str] | None = None) -> Finding:
    """Build a finding with the code's default severity (a typo in a code fails loudly here)."""
    if code not in CODES:
        raise KeyError(f"unknown finding code {code!r}; add it to acrsync.grants.findings.CODES")
    return Finding(code=code, severity=severity or CODES[code], target=target, message=message,
                   evidence=evidence or [], fix=fix, not_checked=not_checked or [])


def blocking(findings: list[Finding]) -> bool:
    """Is any finding blocking (an error or an unproven grant)? Then the target is not clean."""
    return any(f.blocks for f in findings)


def has_errors(findings: list[Finding]) -> bool:
    """The exit-code rule of `grants verify` and the push path's: the same as ``blocking``."""
    return blocking(findings)
