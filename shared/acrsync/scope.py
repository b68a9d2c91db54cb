"""Is an image in a target's scope, and under which names does it land there? Pure, no I/O.

API::

    in_scope(target, namespace, repo, tag) -> ScopeDecision(in_scope: bool, reason: str)
    target_names(target, namespace, repo) -> (target_namespace, target_repo)

Rules, in the order they are checked (the first that fails is the reason):
the target is enabled; ``exclude`` globs on "namespace/repo" (exclusion wins over any inclusion);
``namespaces`` globs (empty: all); ``repositories`` "namespace/repo" globs (empty: all in the
namespaces); ``tag_filter`` matched against the whole tag (``re.fullmatch``). Globs are fnmatch-style
and case-sensitive, as ACR names are.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from acrsync.config import Target
from acrsync.value import Frozen, dataclass


@dataclass(frozen=True)
class ScopeDecision(Frozen):
    in_scope: bool
    reason: str

    def __bool__(self) -> bool:
        return self.in_scope


def _first_match(name: str, globs: list[str]) -> str | None:
    return next((g for g in globs if fnmatchcase(name, g)), None)


def _globs(globs: list[str]) -> str:
    return "[" + ", ".join(repr(g) for g in globs) + "]"


def in_scope(target: Target, namespace: str, repo: str, tag: str) -> ScopeDecision:
    """Whether ``namespace/repo:tag`` should be replicated to ``target``, with a short reason."""
    path = f"{namespace}/{repo}"
    if not target.enabled:
        return ScopeDecision(in_scope=False, reason=f"target {target.name!r} is disabled")
    excluded_by = _first_match(path, target.exclude)
    if excluded_by is not None:
        return ScopeDecision(in_scope=False, reason=f"excluded by {excluded_by!r}")
    if target.namespaces and _first_match(namespace, target.namespaces) is None:
        return ScopeDecision(in_scope=False,
                             reason=f"namespace {namespace!r} is not in namespaces "
                                    f"{_globs(target.namespaces)}")
    if target.repositories and _first_match(path, target.repositories) is None:
        return ScopeDecision(in_scope=False,
                             reason=f"{path!r} is not in repositories {_globs(target.repositories)}")
    if re.fullmatch(target.tag_filter, tag) is None:
        return ScopeDecision(in_scope=False, reason=f"tag {tag!r} does not match {target.tag_filter!r}")
    return ScopeDecision(in_scope=True, reason=f"{path}:{tag} is in the scope of target {target.name!r}")


def repo_in_scope(target: Target, namespace: str, repo: str) -> ScopeDecision:
    """``in_scope`` for a whole repository: every check but the tag filter."""
    decision = in_scope(target, namespace, repo, "")
    if decision.in_scope or decision.reason.startswith("tag "):
        return ScopeDecision(in_scope=True,
                             reason=f"{namespace}/{repo} is in the scope of target {target.name!r}")
    return decision


def target_names(target: Target, namespace: str, repo: str) -> tuple[str, str]:
    """Where the image goes on the target: ``target_namespace`` if set, else the same names."""
    return (target.target_namespace or namespace, repo)
