"""RAM policy and trust-policy evaluation, pure (no I/O).

ACR accepts a cross-account sync rule even when account B's role cannot possibly let it write, and
shows the failure only later as an ERROR task. Evaluating account B's documents up front lets acrsync
say exactly which statement is missing or in the way.

The rules implemented (RAM policy language, docs 93738/93739): ``Effect`` Allow/Deny; ``Action`` or
``NotAction``; ``Resource`` or ``NotResource``; string-or-list values; ``*`` (any run) and ``?`` (one
character) wildcards; actions match case-insensitively, resources case-sensitively; an explicit Deny
beats any Allow; nothing allowed means implicit deny. A ``Condition`` depends on the request context,
which acrsync cannot see, so a statement that needs one makes the answer ``unknown``, never ``allowed``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import field
from functools import lru_cache
from typing import Any, Literal

from acrsync.value import Frozen, dataclass

SYNC_ROLE_NAME = "aliyuncontainerregistrycrossaccoutsyncrole"
"""The role ACR assumes in account B. The name really is spelt "accout": ACR looks up exactly this."""

SYNC_ACTIONS = ("cr:CreateSyncRule", "cr:CreateRepositorySync")
ASSUME_ROLE = "sts:AssumeRole"
CR_SERVICE_SUFFIX = "@cr.aliyuncs.com"

Decision = Literal["allowed", "denied", "implicit_deny", "unknown"]


class PolicyError(ValueError):
    """A document that is not a usable RAM policy; the message says what is wrong and how to fix it."""


# ---- parsed documents ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Statement(Frozen):
    index: int                               # position in the document's Statement list, 0-based
    effect: str                              # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    condition: dict[str, Any] | None = None
    principal: Any = None                    # trust policies only: "*" or {"Service": ..., "RAM": ...}
    not_principal: Any = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def matches_action(self, action: str) -> bool:
        if self.not_actions is not None:
            return not any(_action_match(p, action) for p in self.not_actions)
        return any(_action_match(p, action) for p in self.actions)

    def matches_resource(self, resource: str) -> bool:
        if self.not_resources is not None:
            return not any(_resource_match(p, resource) for p in self.not_resources)
        if self.resources is None:          # trust policies carry no Resource
            return True
        return any(_resource_match(p, resource) for p in self.resources)

    @property
    def text(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class Policy(Frozen):
    name: str
    statements: tuple[Statement, ...]


def _as_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{where}: {key} must be a string or a non-empty list of strings, got {value!r}")


def parse_policy(text: str | dict[str, Any], name: str = "policy", *, trust: bool = False) -> Policy:
    """Parse a policy (or, with ``trust``, a role trust policy) document; raise PolicyError if unusable."""
    if isinstance(text, dict):
        doc = text
    else:
        try:
            doc = json.loads(text)
        except (TypeError, ValueError) as e:
            raise PolicyError(f"{name}: not valid JSON ({e}); paste the document into a JSON validator "
                              "and fix the syntax") from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{name}: a policy document is a JSON object with \"Version\" and \"Statement\"")
    version = doc.get("Version")
    if version != "1":
        raise PolicyError(f"{name}: \"Version\" is {version!r}; RAM accepts only \"1\" (a string)")
    raw_statements = doc.get("Statement")
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise PolicyError(f"{name}: \"Statement\" must be a non-empty list of statements")
    out = []
    for i, st in enumerate(raw_statements):
        out.append(_parse_statement(st, i, name, trust))
    return Policy(name=name, statements=tuple(out))


def _parse_statement(st: Any, i: int, name: str, trust: bool) -> Statement:
    where = f"{name}: Statement[{i}]"
    if not isinstance(st, dict):
        raise PolicyError(f"{where} is not a JSON object")
    effect = st.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}: \"Effect\" is {effect!r}; use \"Allow\" or \"Deny\"")
    if ("Action" in st) == ("NotAction" in st):
        raise PolicyError(f"{where}: give exactly one of \"Action\" or \"NotAction\"")
    if "Resource" in st and "NotResource" in st:
        raise PolicyError(f"{where}: give \"Resource\" or \"NotResource\", not both")
    if not trust and "Resource" not in st and "NotResource" not in st:
        raise PolicyError(f"{where}: a permission policy statement needs \"Resource\" (e.g. \"*\" or an ARN)")
    if trust and "Principal" not in st and "NotPrincipal" not in st:
        raise PolicyError(f"{where}: a trust policy statement needs \"Principal\", e.g. "
                          "{\"Service\": [\"<account A id>@cr.aliyuncs.com\"]}")
    cond = st.get("Condition")
    if cond is not None and not isinstance(cond, dict):
        raise PolicyError(f"{where}: \"Condition\" must be an object like {{\"IpAddress\": {{...}}}}")
    return Statement(
        index=i,
        effect=effect,
        actions=_as_list(st["Action"], "Action", where) if "Action" in st else (),
        not_actions=_as_list(st["NotAction"], "NotAction", where) if "NotAction" in st else None,
        resources=_as_list(st["Resource"], "Resource", where) if "Resource" in st else None,
        not_resources=_as_list(st["NotResource"], "NotResource", where) if "NotResource" in st else None,
        condition=cond or None,
        principal=st.get("Principal"),
        not_principal=st.get("NotPrincipal"),
        raw=st,
    )


# ---- matching ------------------------------------------------------------------------------------

@lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _action_match(pattern: str, action: str) -> bool:
    return _glob(pattern, True).fullmatch(action) is not None


def _resource_match(pattern: str, resource: str) -> bool:
    return _glob(pattern, False).fullmatch(resource) is not None


# ---- verdicts ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Evidence(Frozen):
    """Which statement of which document a verdict rests on."""

    policy: str
    statement: int
    effect: str
    text: str                          # the statement as JSON
    condition: str | None = None       # the Condition block, quoted, if any


@dataclass(frozen=True, kw_only=True)
class Verdict(Frozen):
    """The answer to "may ``action`` be done on ``resource``?" with the statements that decided it."""

    decision: Decision
    action: str
    resource: str                      # the resource form that decided the verdict
    evidence: list[Evidence] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)   # conditions acrsync cannot evaluate

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


def _evidence(policy: Policy, st: Statement) -> Evidence:
    cond = json.dumps(st.condition, ensure_ascii=False, sort_keys=True) if st.condition else None
    return Evidence(policy=policy.name, statement=st.index, effect=st.effect, text=st.text, condition=cond)


def evaluate(policies: Sequence[Policy], action: str, resource: str) -> Verdict:
    """Evaluate one action on one resource over every policy attached to an identity."""
    deny_hard: list[Evidence] = []
    deny_cond: list[Evidence] = []
    allow_hard: list[Evidence] = []
    allow_cond: list[Evidence] = []
    for policy in policies:
        for st in policy.statements:
            if not (st.matches_action(action) and st.matches_resource(resource)):
                continue
            ev = _evidence(policy, st)
            if st.effect == "Deny":
                (deny_cond if st.condition else deny_hard).append(ev)
            else:
                (allow_cond if st.condition else allow_hard).append(ev)
    if deny_hard:
        return Verdict(decision="denied", action=action, resource=resource, evidence=deny_hard)
    if allow_hard and deny_cond:
        return Verdict(decision="unknown", action=action, resource=resource, evidence=deny_cond + allow_hard,
                       conditions=[e.condition for e in deny_cond if e.condition])
    if allow_hard:
        return Verdict(decision="allowed", action=action, resource=resource, evidence=allow_hard)
    if allow_cond:
        conds = [e.condition for e in allow_cond + deny_cond if e.condition]
        return Verdict(decision="unknown", action=action, resource=resource,
                       evidence=deny_cond + allow_cond, conditions=conds)
    return Verdict(decision="implicit_deny", action=action, resource=resource)


_ORDER = {"allowed": 0, "unknown": 1, "denied": 2, "implicit_deny": 3}


def evaluate_any(policies: Sequence[Policy], action: str, resources: Iterable[str]) -> Verdict:
    """Evaluate ``action`` on each resource form; allowed if any form is allowed (the verdict names it).

    ACR's documents disagree on the resource (``instance/<id>`` in the role guide, ``repository/<id>``
    in the API reference), so a grant on either form counts. With no form allowed, an ``unknown`` beats
    an explicit deny (it may yet work), and an explicit deny beats an implicit one (it needs fixing first).
    """
    verdicts = [evaluate(policies, action, r) for r in resources]
    if not verdicts:
        raise ValueError("evaluate_any needs at least one resource")
    return min(verdicts, key=lambda v: _ORDER[v.decision])


def target_resources(region: str, account_id: str, instance_id: str) -> list[str]:
    """The ARNs a sync into a target instance may be checked against, most documented first."""
    base = f"acs:cr:{region}:{account_id}"
    return [f"{base}:instance/{instance_id}", f"{base}:repository/{instance_id}",
            f"{base}:repository/{instance_id}/*"]


def allows_action_elsewhere(policies: Sequence[Policy], action: str) -> list[Evidence]:
    """Allow statements that name ``action`` but were not applied to the wanted resource (a mismatch)."""
    out = []
    for policy in policies:
        for st in policy.statements:
            if st.effect == "Allow" and st.matches_action(action):
                out.append(_evidence(policy, st))
    return out


# ---- trust policies ------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TrustWarning(Frozen):
    principal: str                     # the principal that is wider than needed, as written
    reason: str
    evidence: Evidence


@dataclass(frozen=True, kw_only=True)
class TrustVerdict(Frozen):
    """Does the trust policy let ACR acting for account A assume the role, and what else does it let in."""

    decision: Decision
    principal: str                     # the principal that must be trusted: <A>@cr.aliyuncs.com
    evidence: list[Evidence] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    warnings: list[TrustWarning] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        return self.decision == "allowed"


def cr_service_principal(source_account_id: str) -> str:
    return f"{source_account_id}{CR_SERVICE_SUFFIX}"


def _principal_values(principal: Any) -> list[tuple[str, str]]:
    """Flatten a Principal into (kind, value) pairs; ``"*"`` becomes ("*", "*")."""
    if principal == "*":
        return [("*", "*")]
    if not isinstance(principal, dict):
        return [("?", json.dumps(principal))]
    out = []
    for kind, values in principal.items():
        for v in [values] if isinstance(values, str) else list(values or []):
            out.append((kind, str(v)))
    return out


def _principal_matches(principal: Any, wanted: str) -> bool:
    for kind, value in _principal_values(principal):
        if kind == "*" or (kind == "Service" and (value == "*" or value.lower() == wanted.lower())):
            return True
    return False


def evaluate_trust(text: str | dict[str, Any], source_account_id: str, target_account_id: str,
                   name: str = "trust policy") -> TrustVerdict:
    """Evaluate a role's trust policy for ACR acting for ``source_account_id``; raise PolicyError if
    malformed."""
    policy = parse_policy(text, name, trust=True)
    wanted = cr_service_principal(source_account_id)
    deny_hard: list[Evidence] = []
    deny_cond: list[Evidence] = []
    allow_hard: list[Evidence] = []
    allow_cond: list[Evidence] = []
    warnings: list[TrustWarning] = []
    for st in policy.statements:
        if not st.matches_action(ASSUME_ROLE):
            continue
        ev = _evidence(policy, st)
        if st.effect == "Allow":
            warnings.extend(_wide(st, ev, wanted, target_account_id))
        if st.not_principal is not None:
            hit = not _principal_matches(st.not_principal, wanted)
        else:
            hit = _principal_matches(st.principal, wanted)
        if not hit:
            continue
        if st.effect == "Deny":
            (deny_cond if st.condition else deny_hard).append(ev)
        else:
            (allow_cond if st.condition else allow_hard).append(ev)
    conds = [e.condition for e in deny_cond + allow_cond if e.condition]
    decision: Decision
    evidence: list[Evidence]
    if deny_hard:
        decision, evidence = "denied", deny_hard
    elif allow_hard and not deny_cond:
        decision, evidence = "allowed", allow_hard
    elif allow_hard or allow_cond:
        decision, evidence = "unknown", deny_cond + allow_hard + allow_cond
    else:
        decision, evidence = "implicit_deny", []
    return TrustVerdict(decision=decision, principal=wanted, evidence=evidence,
                        conditions=conds if decision == "unknown" else [], warnings=warnings)


def _wide(st: Statement, ev: Evidence, wanted: str, target_account_id: str) -> list[TrustWarning]:
    """Principals in an Allow statement beyond the one ACR needs."""
    if st.not_principal is not None:
        return [TrustWarning(principal=f"NotPrincipal {json.dumps(st.not_principal)}", evidence=ev,
                             reason="NotPrincipal with Allow trusts every principal not listed")]
    out = []
    for kind, value in _principal_values(st.principal):
        if kind == "Service" and value.lower() == wanted.lower():
            continue
        if kind == "*" or value == "*":
            reason = "trusts every principal, in every account"
        elif kind == "RAM":
            m = re.fullmatch(r"acs:ram::(\d+):.*", value)
            acct = m.group(1) if m else "?"
            whose = "account B itself" if acct == target_account_id else f"account {acct}"
            reason = (f"lets RAM identities of {whose} assume the role; only ACR acting for the source "
                      "account needs it")
        elif kind == "Service":
            reason = "a service other than ACR for the source account; ACR needs only " + wanted
        else:
            reason = f"a {kind} principal; ACR needs only {wanted}"
        shown = "*" if kind == "*" else f"{kind}: {value}"
        out.append(TrustWarning(principal=shown, reason=reason, evidence=ev))
    return out


# ---- role names ----------------------------------------------------------------------------------

def near_miss_role_names(names: Iterable[str], wanted: str = SYNC_ROLE_NAME,
                         cutoff: float = 0.8) -> list[str]:
    """Role names that look like ``wanted`` but are not it (case-insensitively), closest first.

    The usual case: someone "corrects" the role to ``...crossaccountsyncrole``, and ACR, which asks
    for the misspelt ``...crossaccoutsyncrole``, never finds it.
    """
    want = _squash(wanted)
    scored = []
    for n in names:
        if n.lower() == wanted.lower():
            continue
        ratio = difflib.SequenceMatcher(None, _squash(n), want).ratio()
        if ratio >= cutoff:
            scored.append((-ratio, n))
    return [n for _, n in sorted(scored)]


def likely_misspellings(wanted: str = SYNC_ROLE_NAME) -> list[str]:
    """The names someone most likely gave the sync role instead of ``wanted``, to look up with GetRole.

    First the corrected spelling ("account" for ACR's "accout"), then the CamelCase forms of both as the
    console's role names are often written. Looking these up needs only ram:GetRole, not ram:ListRoles.
    """
    corrected = wanted.replace("accout", "account")
    camel = {"aliyuncontainerregistrycrossaccoutsyncrole": "AliyunContainerRegistryCrossAccoutSyncRole"}
    names = [corrected]
    if wanted in camel:
        names += [camel[wanted].replace("Accout", "Account"), camel[wanted]]
    return [n for n in dict.fromkeys(names) if n != wanted]


def _squash(name: str) -> str:
    """Lower-case without separators, so ``cross-accout-sync`` compares equal to ``crossaccoutsync``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())
