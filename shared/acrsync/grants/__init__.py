"""Grant and prerequisite checks for cross-account sync (findings with fixes), their cache, and apply.

- ``check_target(config, target, ram=, source_acr=, target_acr=)``: findings for one target.
- ``GrantCache(checker, config.grants, clock).verdict(target, session)``: the push path's cached verdict,
  checked under the asking invocation's session.
- ``plan(config, target, ram, acr=None, *, detach_conflicting=False)`` / ``execute(plan, ram, acr=None)``:
  `acrsync grants apply` (the cross-account role and policy, the reader role, the target namespace).
"""

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
