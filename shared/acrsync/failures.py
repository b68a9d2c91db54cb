"""What a failure means: worth retrying, or blocked until a person fixes a grant or a prerequisite.

ACR reports task failures as a free-form ``TaskIssue`` and API failures as error codes; neither list
is documented in full (the API reference of GetRepoSyncTask lists no TaskIssue values), so the
classification is by known names and keywords, and anything unknown is treated as transient: it is
retried with back-off, a bounded number of times.
"""

from __future__ import annotations

from enum import Enum

from acrsync.value import Frozen, dataclass


class Kind(str, Enum):
    TRANSIENT = "transient"      # retry with back-off
    GRANT = "grant"              # the cross-account role/policy/trust is wrong: BLOCKED
    PREREQUISITE = "prerequisite"  # edition, region, namespace, repo settings: BLOCKED
    CONFLICT = "conflict"        # the target already has this tag at another digest: BLOCKED


@dataclass(frozen=True)
class Classified(Frozen):
    kind: Kind
    code: str
    hint: str

    @property
    def blocks(self) -> bool:
        return self.kind is not Kind.TRANSIENT


_GRANT_WORDS = ("AUTH", "PERMISSION", "PRIVILEGE", "ROLE", "DENIED", "FORBIDDEN", "UNAUTHORIZED", "STS")
_PREREQ_WORDS = ("NAMESPACE", "REPO_NOT_EXIST", "REPO_NOT_FOUND", "SPEC", "EDITION", "REGION",
                 "INSTANCE_NOT", "SETTINGS", "TYPE_MISMATCH")
_CONFLICT_WORDS = ("IMMUTABLE", "TAG_CONFLICT", "ALREADY_EXIST")

_HINTS = {
    Kind.GRANT: "run `acrsync grants verify --target {target}`; `acrsync grants apply` fixes the role",
    Kind.PREREQUISITE: "run `acrsync grants verify --target {target}` to see which prerequisite fails",
    Kind.CONFLICT: "the target holds this tag at another digest; set override: true or retag",
    Kind.TRANSIENT: "retried with back-off",
}


def classify(code: str | None, *, http_status: int | None = None) -> Classified:
    """Classify an API error code or a TaskIssue."""
    c = (code or "UNKNOWN").upper().replace(".", "_")
    if http_status in (401, 403) or c in ("NOPRIVILEGE", "NOPERMISSION") or any(w in c for w in _GRANT_WORDS):
        kind = Kind.GRANT
    elif any(w in c for w in _CONFLICT_WORDS):
        kind = Kind.CONFLICT
    elif any(w in c for w in _PREREQ_WORDS):
        kind = Kind.PREREQUISITE
    else:
        kind = Kind.TRANSIENT
    return Classified(kind=kind, code=code or "UNKNOWN", hint=_HINTS[kind])


def backoff_seconds(attempt: int, base: float, cap: float, rand: float) -> float:
    """Exponential back-off with full jitter: a uniform draw in [0, min(cap, base * 2**(attempt-1))].

    ``rand`` in [0, 1) comes from the caller so the decision stays pure and testable. A floor of a
    tenth of the window keeps retries from firing immediately.
    """
    window = min(cap, base * (2.0 ** max(0, attempt - 1)))
    return window * (0.1 + 0.9 * rand)
