"""Grant and prerequisite checks for cross-account sync (findings with fixes), their cache, and apply.

- ``check_target(config, target, ram=, source_acr=, target_acr=)``: findings for one target.
- ``GrantCache(checker, config.grants, clock).verdict(target)``: the push path's cached verdict.
- ``plan(config, target, ram, acr=None, *, detach_conflicting=False)`` / ``execute(plan, ram, acr=None)``:
  `acrsync grants apply` (the cross-account role and policy, the reader role, the target namespace).
"""

from acrsync.grants import fixes
from acrsync.grants.apply import Plan, Step, execute, plan
from acrsync.grants.cache import GrantCache, Verdict
from acrsync.grants.check import check_grants, check_prerequisites, check_target, session_checker
from acrsync.grants.findings import CODES, Evidence, Finding, Fix, finding, has_errors

__all__ = ["CODES", "Evidence", "Finding", "Fix", "GrantCache", "Plan", "Step", "Verdict", "check_grants",
           "check_prerequisites", "check_target", "execute", "finding", "fixes", "has_errors", "plan", "session_checker"]
