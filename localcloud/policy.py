"""RAM policy language, evaluated the way RAM documents it (localcloud's own judge, independent of acrsync).

Rules implemented:
- ``Effect`` Allow/Deny; ``Action``/``NotAction``; ``Resource``/``NotResource``; string or list values.
- Wildcards ``*`` (any run of characters) and ``?`` (one character) in actions, resources and principals.
- Actions match case-insensitively, resources case-sensitively.
- An explicit Deny wins over any Allow; nothing allowed means denied (implicit deny).
- ``Condition``: localcloud does not evaluate condition keys. A statement with a Condition never grants
  (Allow is treated as not matching) and always refuses (Deny is treated as matching): a setup that only works
  thanks to a condition is flagged here rather than silently accepted.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

EFFECTS = ("Allow", "Deny")


class PolicyDocumentError(ValueError):
    """A policy document that RAM would refuse (``MalformedPolicyDocument``)."""


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """``*`` and ``?`` wildcards over the whole value."""
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def load_document(document: str | dict) -> dict:
    """Parse a policy document (JSON text or mapping) and check the structure RAM requires."""
    if isinstance(document, dict):
        doc = document
    else:
        try:
            doc = json.loads(document)
        except (TypeError, ValueError) as exc:
            raise PolicyDocumentError(f"the policy document is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PolicyDocumentError("the policy document must be a JSON object with Version and Statement")
    if str(doc.get("Version")) != "1":
        raise PolicyDocumentError(f'the policy document Version must be "1", not {doc.get("Version")!r}')
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyDocumentError("the policy document needs a non-empty Statement list")
    for i, st in enumerate(statements):
        if not isinstance(st, dict):
            raise PolicyDocumentError(f"Statement[{i}] must be an object")
        if st.get("Effect") not in EFFECTS:
            raise PolicyDocumentError(f"Statement[{i}].Effect must be Allow or Deny, not "
                                      f"{st.get('Effect')!r}")
        if ("Action" in st) == ("NotAction" in st):
            raise PolicyDocumentError(f"Statement[{i}] needs exactly one of Action or NotAction")
    return {**doc, "Statement": statements}


POLICY_SYNTAX = "https://www.alibabacloud.com/help/en/ram/policy-structure-and-syntax"
PERMISSION, TRUST = "permission", "trust"


def _strings(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def validate_document(document: str | dict, kind: str = PERMISSION) -> dict:
    """Check a document as RAM does when it stores one (``MalformedPolicyDocument`` otherwise), following
    "Policy structure and syntax" (POLICY_SYNTAX, May 2026):

    - ``Version`` is the string ``"1"`` (the grammar's ``"Version" : ("1")``; a number is refused);
    - ``Statement`` is a list of one or more objects (``[ <statement>, ... ]``; one bare object is refused);
    - each statement has ``Effect`` (Allow|Deny), ``Action`` or ``NotAction`` (a string or a list of strings)
      and, in a permission policy, ``Resource``. ``NotResource`` appears only in the older grammar page
      (https://www.alibabacloud.com/help/doc-detail/93739.htm) and is refused, as the current page lists only
      Resource. ``Principal`` belongs to trust policies only, where it is required; ``Condition`` is an
      object.
    """
    doc = load_document(document)
    raw = document if isinstance(document, dict) else json.loads(document)
    if raw.get("Version") != "1":
        raise PolicyDocumentError(f'Version must be the string "1", not {raw.get("Version")!r} '
                                  f'({POLICY_SYNTAX})')
    if not isinstance(raw.get("Statement"), list):
        raise PolicyDocumentError(f"Statement must be a list of statements, even for one ({POLICY_SYNTAX})")
    for i, st in enumerate(doc["Statement"]):
        where = f"Statement[{i}]"
        for key in ("Action", "NotAction"):
            if key in st and not _strings(st[key]):
                raise PolicyDocumentError(f"{where}.{key} must be a string or a non-empty list of strings")
        if "NotResource" in st:
            raise PolicyDocumentError(f"{where}: NotResource is not part of the policy language "
                                      f"({POLICY_SYNTAX}); list the resources in Resource")
        if "Condition" in st and not isinstance(st["Condition"], dict):
            raise PolicyDocumentError(f"{where}.Condition must be an object")
        if kind == TRUST:
            if not isinstance(st.get("Principal"), (dict, str)) or not st.get("Principal"):
                raise PolicyDocumentError(f"{where} of a trust policy needs a Principal")
            continue
        if "Principal" in st:
            raise PolicyDocumentError(f"{where}: Principal belongs to a role's trust policy, not to a "
                                      "permission policy")
        if "Resource" not in st:
            raise PolicyDocumentError(f"{where} needs a Resource ({POLICY_SYNTAX}); use \"*\" for all "
                                      "resources")
        if not _strings(st["Resource"]):
            raise PolicyDocumentError(f"{where}.Resource must be a string or a non-empty list of strings")
    return doc


def _matches_any(patterns: list[str], value: str, *, ignore_case: bool) -> bool:
    return any(wildcard_match(p, value, ignore_case=ignore_case) for p in patterns)


def _statement_applies(st: dict, action: str, resource: str) -> bool:
    if "Action" in st:
        action_ok = _matches_any(_as_list(st["Action"]), action, ignore_case=True)
    else:
        action_ok = not _matches_any(_as_list(st.get("NotAction")), action, ignore_case=True)
    if not action_ok:
        return False
    if "Resource" in st:
        return _matches_any(_as_list(st["Resource"]), resource, ignore_case=False)
    if "NotResource" in st:
        return not _matches_any(_as_list(st["NotResource"]), resource, ignore_case=False)
    # Neither Resource nor NotResource: RAM refuses such identity policies; never grant through it.
    return st.get("Effect") == "Deny"


def _statements(documents: list[str | dict]) -> list[dict]:
    out: list[dict] = []
    for document in documents:
        try:
            out.extend(load_document(document)["Statement"])
        except PolicyDocumentError:
            continue  # RAM never stores a malformed document; one that slipped in grants nothing
    return out


ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"


def decide(documents: list[str | dict], action: str, resource: str) -> str:
    """``Allow``, ``ExplicitDeny`` (a Deny statement matched) or ``ImplicitDeny`` (nothing allowed it)."""
    allowed = False
    for st in _statements(documents):
        if st["Effect"] == "Deny":
            # A Deny with a Condition is taken as matching (conservative).
            if _statement_applies(st, action, resource):
                return EXPLICIT_DENY
        elif "Condition" not in st and _statement_applies(st, action, resource):
            allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def is_allowed(documents: list[str | dict], action: str, resource: str) -> bool:
    """Whether the union of ``documents`` allows ``action`` on ``resource`` (explicit Deny wins)."""
    return decide(documents, action, resource) == ALLOW


def _account_of(arn: str) -> str | None:
    m = re.match(r"acs:ram::(\d+):", arn)
    return m.group(1) if m else None


def _principal_matches(principal: Any, *, service: str | None, ram_arn: str | None,
                       account_id: str | None) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if service is not None:
        if _matches_any(_as_list(principal.get("Service")), service, ignore_case=True):
            return True
    if ram_arn is not None or account_id is not None:
        caller_account = account_id or (_account_of(ram_arn) if ram_arn else None)
        for entry in _as_list(principal.get("RAM")):
            if entry == "*":
                return True
            root = re.fullmatch(r"acs:ram::(\d+):root", entry)
            if root is not None:
                # "the account" as principal: any identity of that account.
                if caller_account == root.group(1):
                    return True
            elif ram_arn is not None and wildcard_match(entry, ram_arn, ignore_case=True):
                return True
    return False


def trust_allows(trust_document: str | dict, *, service: str | None = None, ram_arn: str | None = None,
                 account_id: str | None = None) -> bool:
    """Whether a role's trust policy lets ``service`` (e.g. ``<uid>@cr.aliyuncs.com``) or the RAM identity
    ``ram_arn`` / any identity of ``account_id`` call ``sts:AssumeRole`` on it."""
    try:
        statements = load_document(trust_document)["Statement"]
    except PolicyDocumentError:
        return False
    allowed = False
    for st in statements:
        acts = _as_list(st.get("Action"))
        if not _matches_any(acts, "sts:AssumeRole", ignore_case=True):
            continue
        if not _principal_matches(st.get("Principal"), service=service, ram_arn=ram_arn,
                                  account_id=account_id):
            continue
        if st["Effect"] == "Deny":
            return False
        if "Condition" not in st:
            allowed = True
    return allowed


def role_documents(world: Any, account_id: str, role_name: str) -> list[str]:
    """The default-version documents of every policy (Custom and System) attached to a role; [] if no role."""
    from localcloud.ram.models import find_policy

    account = world.account(account_id)
    if account is None:
        return []
    role = account.roles.get(role_name.lower())
    if role is None:
        return []
    docs = []
    for name, kind in role.attached:
        policy = find_policy(world, account_id, name, kind)
        if policy is not None:
            docs.append(policy.document)
    return docs
