"""Grant and prerequisite checks for cross-account sync (findings with fixes), their cache, and apply.

- ``check_target(config, target, ram=, source_acr=, target_acr=)``: findings for one target.
- ``GrantCache(checker, config.grants, clock).verdict(target, session)``: the push path's cached verdict,
  checked under the asking invocation's session.
- ``plan(config, target, ram, acr=None, *, detach_conflicting=False)`` / ``execute(plan, ram, acr=None)``:
  `acrsync grants apply` (the cross-account role and policy, the reader role, the target namespace).

The names load on first use (PEP 562): a cold on_push that reads the shared verdict imports only the
findings and the cache, never the check, the fixes, apply or ``acrsync.policy``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the submodule that defines it
_SOURCES = {
    "Plan": "apply", "Step": "apply", "execute": "apply", "plan": "apply",
    "GrantCache": "cache", "Verdict": "cache",
    "check_grants": "check", "check_prerequisites": "check", "check_target": "check",
    "check_with_session": "check", "session_checker": "check",
    "CODES": "findings", "UNPROVEN_CODES": "findings", "Evidence": "findings", "Finding": "findings",
    "Fix": "findings", "PolicyName": "findings", "blocking": "findings", "code_blocks": "findings",
    "finding": "findings", "has_errors": "findings",
}
_SUBMODULES = frozenset({"apply", "cache", "check", "findings", "fixes"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from acrsync.grants import fixes
    from acrsync.grants.apply import Plan, Step, execute, plan
    from acrsync.grants.cache import GrantCache, Verdict
    from acrsync.grants.check import (
        check_grants,
        check_prerequisites,
        check_target,
        check_with_session,
        session_checker,
    )
    from acrsync.grants.findings import (
        CODES,
        UNPROVEN_CODES,
        Evidence,
        Finding,
        Fix,
        PolicyName,
        blocking,
        code_blocks,
        finding,
        has_errors,
    )

__all__ = ["CODES", "UNPROVEN_CODES", "Evidence", "Finding", "Fix", "GrantCache", "PolicyName", "Plan",
           "Step", "Verdict", "blocking", "check_grants", "check_prerequisites", "check_target",
           "check_with_session", "code_blocks", "execute", "finding", "fixes", "has_errors", "plan",
           "session_checker"]
