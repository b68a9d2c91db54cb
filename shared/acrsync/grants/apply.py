"""`acrsync grants apply`: make the target account right for one target, idempotently.

It reads first, as the target account's administrator (never through the reader role, which can only
read), and plans only the writes that change something, so a second run plans nothing. Each step names
the finding it fixes:

- the sync role (ROLE_MISSING, ROLE_NAME_MISSPELT, TRUST_MISSING_PRINCIPAL, a Deny or malformed trust):
  CreateRole or UpdateRole (other trusted principals are kept);
- its policy (ACTION_NOT_ALLOWED, RESOURCE_MISMATCH): CreatePolicy or CreatePolicyVersion, AttachPolicyToRole;
- a Deny in another policy attached to the sync role (DENIED_BY_STATEMENT): DetachPolicyFromRole, only when
  asked (``detach_conflicting``); the other policy is never edited or deleted;
- the reader role (READER_ROLE_CANNOT_READ): CreateRole or UpdateRole (trust), and its read-only policy;
- target namespaces (TARGET_NAMESPACE_MISSING, TARGET_NAMESPACE_NO_AUTOCREATE): CreateNamespace or
  UpdateNamespace.

Editions, regions and the repositories of repository-level targets are left to people, with a note.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from acrsync import policy as P
from acrsync.cloud.errors import NotFound
from acrsync.cloud.permissions import Json
from acrsync.config import Config, Source, Target
from acrsync.grants import fixes
from acrsync.grants.check import DISPUTED_EDITION, TARGET_EDITIONS, AcrReader, RamReader
from acrsync.roles import PolicyInfo, PolicyRef, RoleInfo

StepKind = Literal["CreateRole", "UpdateRole", "CreatePolicy", "CreatePolicyVersion", "AttachPolicyToRole",
                   "DetachPolicyFromRole", "CreateNamespace", "UpdateNamespace"]
ACR_STEPS = ("CreateNamespace", "UpdateNamespace")

ROLE_DESCRIPTION = "Lets Container Registry sync images from another account (managed by acrsync)"
READER = "READER_ROLE_CANNOT_READ"


class RamAdmin(RamReader, Protocol):
    def create_role(self, name: str, trust_policy: str, description: str = "") -> RoleInfo: ...
    def update_role_trust(self, name: str, trust_policy: str) -> RoleInfo: ...
    def create_policy(self, name: str, document: str, description: str = "") -> PolicyInfo: ...
    def create_policy_version(self, name: str, document: str, set_as_default: bool = True) -> None: ...
    def attach_policy_to_role(self, policy_name: str, policy_type: str, role_name: str) -> None: ...
    def detach_policy_from_role(self, policy_name: str, policy_type: str, role_name: str) -> None: ...


class AcrAdmin(AcrReader, Protocol):
    def create_namespace(self, instance_id: str, name: str, *, auto_create_repo: bool,
                         default_repo_type: str | None = None) -> None: ...
    def update_namespace(self, instance_id: str, name: str, *, auto_create_repo: bool | None = None,
                         default_repo_type: str | None = None) -> None: ...


class Step(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: StepKind
    changes: str = Field(description="what the step changes, e.g. 'role acrsync-reader', "
                                     "'namespace cri-x/ns'")
    why: str
    fixes: list[str] = Field(default_factory=list, description="the finding code(s) this step makes go away")
    role_name: str | None = None
    policy_name: str | None = None
    policy_type: str | None = None
    document: str | None = Field(default=None, description="the trust or policy JSON this step writes")
    description: str | None = Field(default=None, description="the description of a created role or policy")
    instance_id: str | None = None
    namespace: str | None = None
    default_repo_type: str | None = None
    command: str = Field(description="the equivalent `aliyun ram` / `aliyun cr` command")


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)
    target: str
    account_id: str
    steps: list[Step] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what apply will not change, and why")

    @property
    def empty(self) -> bool:
        return not self.steps


def plan(config: Config, target: Target, ram: RamReader, acr: AcrReader | None = None, *,
         detach_conflicting: bool = False) -> Plan:
    """Read the target account and work out the writes that make this target's setup right.

    ``acr`` is the target instance's ACR as the same administrator; without it namespaces are not planned.
    """
    steps: list[Step] = []
    notes: list[str] = []
    if target.account_id == config.source.account_id:
        notes.append("source and target are in the same account: no cross-account grant is needed")
    else:
        _sync_role(config, target, ram, detach_conflicting, steps, notes)
        _reader_role(config, target, ram, steps, notes)
    if acr is not None:
        _namespaces(target, acr, steps, notes)
    return Plan(target=target.name, account_id=target.account_id, steps=steps, notes=notes)


# ---- the sync role ACR assumes --------------------------------------------------------------------

def _sync_role(config: Config, target: Target, ram: RamReader, detach_conflicting: bool,
               steps: list[Step], notes: list[str]) -> None:
    src = config.source
    role = ram.get_role(P.SYNC_ROLE_NAME)
    pname = fixes.sync_policy_name(target)
    want_policy = fixes.dumps(fixes.sync_policy(target))
    role_label = f"role {P.SYNC_ROLE_NAME}"
    role_code = ""

    if role is None:
        near = P.near_miss_role_names(r.name for r in ram.list_roles())
        role_code = "ROLE_NAME_MISSPELT" if near else "ROLE_MISSING"
        steps.append(Step(kind="CreateRole", changes=role_label, fixes=[role_code],
                          why=f"account {target.account_id} has no role {P.SYNC_ROLE_NAME}",
                          role_name=P.SYNC_ROLE_NAME, document=fixes.dumps(fixes.trust_policy(src)),
                          description=ROLE_DESCRIPTION, command=fixes.create_role_cmd(src)))
        if near:
            notes.append(f"role(s) {', '.join(near)} look like {P.SYNC_ROLE_NAME} but ACR never uses them; "
                         "delete them once the new role works")
    else:
        new_trust, why, code = _trust_change(role, config, target)
        if new_trust is not None:
            steps.append(Step(kind="UpdateRole", changes=f"trust policy of {role_label}", why=why,
                              fixes=[code], role_name=role.name, document=new_trust,
                              command=fixes.update_trust_cmd(src, json.loads(new_trust))))
        elif why:
            notes.append(why)

    attached = [] if role is None else ram.list_policies_for_role(role.name)
    parsed = _parsed(ram, attached)
    conflicts = _conflicting_denies(parsed, pname, target)
    detached: set[tuple[str, str]] = set()
    if detach_conflicting:
        for (name, ptype), found in conflicts.items():
            detached.add((name, ptype))
            steps.append(Step(kind="DetachPolicyFromRole",
                              changes=f"attachment of policy {name} to {role_label}",
                              fixes=["DENIED_BY_STATEMENT"],
                              why=f"{'; '.join(found)}: {P.SYNC_ROLE_NAME} exists only for ACR cross-account "
                                  "sync, so a Deny against that purpose conflicts with it; the policy is "
                                  "detached from this role only and itself kept",
                              role_name=P.SYNC_ROLE_NAME, policy_name=name, policy_type=ptype,
                              command=fixes.policy_detach_cmd(name, ptype, P.SYNC_ROLE_NAME)))
    else:
        for (name, _), found in conflicts.items():
            notes.append(f"{'; '.join(found)}; apply does not edit other policies: remove that Deny by hand, "
                         f"or run again with --detach-conflicting to detach {name} from {P.SYNC_ROLE_NAME} "
                         "(the policy itself is kept)")

    kept = [(ref, pol) for ref, pol in parsed if (ref.name, ref.type) not in detached]
    current = ram.get_policy(pname, "Custom")
    granted_by = _granted_by(kept, target) if current is None else []
    codes = [role_code] if role is None else _policy_codes(kept, target)
    if granted_by:
        notes.append(f"{' and '.join(P.SYNC_ACTIONS)} on {target.instance_id} are already allowed by "
                     f"{', '.join(granted_by)}; no acrsync policy is added")
    elif current is None:
        steps.append(Step(kind="CreatePolicy", changes=f"policy {pname}", fixes=codes,
                          why=f"the policy {pname} does not exist", policy_name=pname, document=want_policy,
                          description=f"acrsync: ACR cross-account sync into {target.name}",
                          command=fixes.create_policy_cmd(target)))
    elif not fixes.same_document(current.document, want_policy):
        steps.append(Step(kind="CreatePolicyVersion", changes=f"default version of policy {pname}",
                          fixes=codes,
                          why=f"the default version of {pname} differs from the required document",
                          policy_name=pname, document=want_policy,
                          command=fixes.create_policy_version_cmd(target)))
    if not granted_by and not any(r.name == pname and r.type == "Custom" for r in attached):
        steps.append(Step(kind="AttachPolicyToRole", changes=f"attachment of policy {pname} to {role_label}",
                          fixes=codes, why=f"{pname} is not attached to {P.SYNC_ROLE_NAME}",
                          role_name=P.SYNC_ROLE_NAME, policy_name=pname, policy_type="Custom",
                          command=fixes.attach_cmd(target)))


def _trust_change(role: RoleInfo, config: Config, target: Target) -> tuple[str | None, str, str]:
    """(new trust JSON or None, why, finding code). Keeps other trusted principals; drops Denies aimed at
    ours."""
    src = config.source
    ours = fixes.trust_policy(src)
    try:
        v = P.evaluate_trust(role.trust_policy, src.account_id, target.account_id)
    except P.PolicyError as e:
        return fixes.dumps(ours), f"the trust policy is malformed ({e}); it is replaced", "POLICY_MALFORMED"
    if v.decision == "allowed":
        return None, "", ""
    if v.decision == "unknown":
        return None, (f"the trust policy trusts {v.principal} only under conditions "
                      f"({'; '.join(v.conditions)}); apply leaves conditions alone: review them by hand"), ""
    statements = _statements(role.trust_policy)
    denying = {e.statement for e in v.evidence} if v.decision == "denied" else set()
    kept = [st for i, st in enumerate(statements) if i not in denying]
    new = {"Version": "1", "Statement": [*kept, *ours["Statement"]]}
    if denying:
        return (fixes.dumps(new), f"the trust policy denies {v.principal} (statement(s) {sorted(denying)}): "
                "they are removed and an Allow added", "DENIED_BY_STATEMENT")
    return (fixes.dumps(new), f"the trust policy does not trust {v.principal}: an Allow is added",
            "TRUST_MISSING_PRINCIPAL")


def _statements(document: str) -> list[Json]:
    doc = json.loads(document)
    return doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]


def _parsed(ram: RamReader, attached: Iterable[PolicyRef]) -> list[tuple[PolicyRef, P.Policy]]:
    """The attached policies that can be read and parsed (the others are findings of `grants verify`)."""
    out = []
    for ref in attached:
        info = ram.get_policy(ref.name, ref.type)
        if info is None:
            continue
        try:
            out.append((ref, P.parse_policy(info.document, f"policy {ref.name} ({ref.type})")))
        except P.PolicyError:
            continue
    return out


def _allows_only(parsed: Iterable[tuple[PolicyRef, P.Policy]]) -> list[P.Policy]:
    return [P.Policy(p.name, tuple(st for st in p.statements if st.effect == "Allow")) for _, p in parsed]


def _granted_by(parsed: list[tuple[PolicyRef, P.Policy]], target: Target) -> list[str]:
    """Policies already attached that allow both sync actions outright (set up by hand, per the guide).

    Deny statements are left out here: a Deny is handled on its own, and adding a policy cannot beat it.
    """
    policies = _allows_only(parsed)
    forms = P.target_resources(target.region, target.account_id, target.instance_id)
    verdicts = [P.evaluate_any(policies, a, forms) for a in P.SYNC_ACTIONS] if policies else []
    if not verdicts or not all(v.allowed for v in verdicts):
        return []
    return sorted({e.policy for v in verdicts for e in v.evidence})


def _policy_codes(parsed: list[tuple[PolicyRef, P.Policy]], target: Target) -> list[str]:
    """The findings `grants verify` gives for the sync actions today, from the Allow statements attached."""
    policies = _allows_only(parsed)
    forms = P.target_resources(target.region, target.account_id, target.instance_id)
    codes: list[str] = []
    for action in P.SYNC_ACTIONS:
        if P.evaluate_any(policies, action, forms).allowed:
            continue
        code = "RESOURCE_MISMATCH" if P.allows_action_elsewhere(policies, action) else "ACTION_NOT_ALLOWED"
        if code not in codes:
            codes.append(code)
    return codes


def _conflicting_denies(parsed: list[tuple[PolicyRef, P.Policy]], ours: str,
                        target: Target) -> dict[tuple[str, str], list[str]]:
    """Other attached policies whose Deny blocks a sync action on the target: (name, type) -> what it
    denies."""
    forms = P.target_resources(target.region, target.account_id, target.instance_id)
    out: dict[tuple[str, str], list[str]] = {}
    for ref, pol in parsed:
        if ref.name == ours and ref.type == "Custom":
            continue
        by_statement: dict[int, list[str]] = {}
        for action in P.SYNC_ACTIONS:
            v = P.evaluate_any([pol], action, forms)
            if v.decision == "denied":
                by_statement.setdefault(v.evidence[0].statement, []).append(action)
        if by_statement:
            out[(ref.name, ref.type)] = [
                f"{pol.name} statement {i} denies {' and '.join(actions)} on {target.instance_id}"
                for i, actions in sorted(by_statement.items())]
    return out


# ---- the reader role acrsync assumes to read the target account ----------------------------------

def _reader_role(config: Config, target: Target, ram: RamReader, steps: list[Step], notes: list[str]) -> None:
    src = config.source
    arn = target.reader_role_arn
    if not arn:
        example = fixes.DEFAULT_READER_ARN.format(account=target.account_id)
        notes.append(f"target {target.name} has no reader_role_arn, so the grant check cannot run: create a "
                     f"reader role (`acrsync permissions --principal reader` prints its policy), set "
                     f"targets[].reader_role_arn to e.g. {example} "
                     "and run apply again")
        return
    name = fixes.reader_role_name(target)          # the config checked: a role ARN in the target account
    role = ram.get_role(name)
    if role is None:
        trust = fixes.reader_trust_policy(src)
        steps.append(Step(kind="CreateRole", changes=f"role {name}", fixes=[READER],
                          why=f"the reader role {arn} does not exist, so account {src.account_id} cannot "
                              f"read account {target.account_id}",
                          role_name=name, document=fixes.dumps(trust),
                          description=fixes.READER_ROLE_DESCRIPTION,
                          command=fixes.role_create_cmd(name, trust)))
    else:
        new_trust, why = _reader_trust_change(role, src)
        if new_trust is not None:
            steps.append(Step(kind="UpdateRole", changes=f"trust policy of role {role.name}", why=why,
                              fixes=[READER], role_name=role.name, document=new_trust,
                              command=fixes.role_trust_cmd(role.name, json.loads(new_trust))))
        elif why:
            notes.append(why)
    _reader_policy(config, target, ram, role, name, steps, notes)


def _reader_trust_change(role: RoleInfo, src: Source) -> tuple[str | None, str]:
    """(new trust JSON or None, why). Adds account A's root next to what is trusted already; never narrows."""
    ours = fixes.reader_trust_policy(src)
    label = f"trust policy of role {role.name}"
    try:
        policy = P.parse_policy(role.trust_policy, label, trust=True)
    except P.PolicyError as e:
        return fixes.dumps(ours), f"the {label} is malformed ({e}); it is replaced"
    deny: list[int] = []
    allow: list[int] = []
    conditional: list[int] = []
    narrow: list[str] = []
    for st in policy.statements:
        if not st.matches_action(P.ASSUME_ROLE):
            continue
        hit = (not _admits(st.not_principal, src.account_id) if st.not_principal is not None
               else _admits(st.principal, src.account_id))
        if hit and st.condition:
            conditional.append(st.index)
        elif hit:
            (deny if st.effect == "Deny" else allow).append(st.index)
        elif st.effect == "Allow":
            narrow.extend(_names_in_account(st.principal, src.account_id))
    who = fixes.reader_trust_principal(src)
    if conditional and not deny:
        return None, (f"the {label} admits {who} only under conditions (statement(s) {conditional}); apply "
                      "leaves conditions alone: review them by hand")
    if allow and not deny:
        return None, ""
    if narrow and not deny:
        return None, (f"the {label} trusts only {', '.join(narrow)} of account {src.account_id}; apply "
                      "does not widen it: make sure the identity acrsync runs as (the function role) is "
                      "among them")
    kept = [st for i, st in enumerate(_statements(role.trust_policy)) if i not in deny]
    add = [] if allow else ours["Statement"]
    new = {"Version": "1", "Statement": [*kept, *add]}
    if deny:
        return fixes.dumps(new), (f"the {label} denies {who} (statement(s) {deny}): they are removed"
                                  + ("" if allow else " and an Allow added"))
    return fixes.dumps(new), (f"the {label} does not let account {src.account_id} assume it: an Allow for "
                              f"{who} is added")


def _principal_values(principal: Any) -> list[tuple[str, str]]:
    if principal == "*":
        return [("*", "*")]
    if not isinstance(principal, dict):
        return []
    return [(kind, str(v)) for kind, values in principal.items()
            for v in ([values] if isinstance(values, str) else list(values or []))]


def _admits(principal: Any, account: str) -> bool:
    """Does this Principal admit account ``account`` as a whole (its root, ``*``, or the bare account id)?"""
    root = f"acs:ram::{account}:root"
    return any(kind == "*" or (kind == "RAM" and (v == account or fnmatchcase(root, v.lower())))
               for kind, v in _principal_values(principal))


def _names_in_account(principal: Any, account: str) -> list[str]:
    """RAM principals of ``account`` narrower than its root (a role or user)."""
    return [v for kind, v in _principal_values(principal)
            if kind == "RAM" and v.lower().startswith(f"acs:ram::{account}:")]


def _reader_policy(config: Config, target: Target, ram: RamReader, role: RoleInfo | None, name: str,
                   steps: list[Step], notes: list[str]) -> None:
    """Attach the read-only policy when an attached policy does not already allow what the check reads.

    An action counts as allowed when it is allowed on any resource the reader document names for it.
    """
    want = fixes.reader_policy(config, target)
    pname = fixes.reader_policy_name(target)
    attached = [] if role is None else ram.list_policies_for_role(role.name)
    policies = [p for _, p in _parsed(ram, attached)]
    lacking: list[str] = []
    for st in want["Statement"]:
        for action in st["Action"]:
            v = P.evaluate_any(policies, action, st["Resource"])
            if v.decision == "denied":
                e = v.evidence[0]
                notes.append(f"{e.policy} statement {e.statement} denies {action} to the reader role {name}; "
                             "apply does not edit other policies: remove that Deny by hand")
            elif v.decision == "unknown":
                notes.append(f"{action} for the reader role {name} depends on conditions "
                             f"({'; '.join(v.conditions)}); apply leaves conditions alone")
            elif v.decision == "implicit_deny":
                lacking.append(action)
    if not lacking:
        return
    shown = ", ".join(lacking[:4]) + (f" and {len(lacking) - 4} more" if len(lacking) > 4 else "")
    why = f"the reader role {name} lacks {shown}, which the grant check reads with"
    doc = fixes.dumps(want)
    current = ram.get_policy(pname, "Custom")
    if current is None:
        steps.append(Step(kind="CreatePolicy", changes=f"policy {pname}", fixes=[READER], why=why,
                          policy_name=pname, document=doc,
                          description=f"acrsync: read-only view of account {target.account_id} "
                                      "for the grant check",
                          command=fixes.policy_create_cmd(pname, want)))
    elif not fixes.same_document(current.document, doc):
        steps.append(Step(kind="CreatePolicyVersion", changes=f"default version of policy {pname}",
                          fixes=[READER],
                          why=f"{why}; the default version of {pname} differs from the reader document",
                          policy_name=pname, document=doc, command=fixes.policy_version_cmd(pname, want)))
    if not any(r.name == pname and r.type == "Custom" for r in attached):
        steps.append(Step(kind="AttachPolicyToRole", changes=f"attachment of policy {pname} to role {name}",
                          fixes=[READER], why=f"{pname} is not attached to {name}", role_name=name,
                          policy_name=pname, policy_type="Custom",
                          command=fixes.policy_attach_cmd(pname, "Custom", name)))


# ---- target namespaces ----------------------------------------------------------------------------

def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _namespaces(target: Target, acr: AcrReader, steps: list[Step], notes: list[str]) -> None:
    """Namespace-level targets: every target namespace must exist with AutoCreateRepo on."""
    if target.repositories:
        if any(not _is_glob(r) for r in target.repositories):
            notes.append("repository-level target: apply does not create or change target repositories, "
                         "since they must match the source's type and tag immutability and this account "
                         "cannot read the source; follow the fix `grants verify` gives for "
                         "TARGET_REPO_MISSING or TARGET_REPO_SETTINGS_DIFFER")
        return
    if not target.namespaces:
        return
    try:
        inst = acr.get_instance(target.instance_id)
    except NotFound as e:
        if e.service != "cr":         # not the instance: e.g. a role that could not be assumed
            raise
        notes.append(f"the target instance {target.instance_id} was not found in {target.region} of account "
                     f"{target.account_id}: check targets.{target.name}.instance_id and region; no namespace "
                     "is changed")
        return
    if inst.edition not in TARGET_EDITIONS:
        may = " (it may work; the guides disagree)" if inst.edition == DISPUTED_EDITION else ""
        notes.append(f"the target instance {target.instance_id} is {inst.edition}{may}: cross-account sync "
                     "needs Basic or Advanced Edition, and apply cannot change an edition (upgrade it in the "
                     "console)")
    if target.target_namespace:
        names = [target.target_namespace]
    else:
        names = [n for n in target.namespaces if not _is_glob(n)]
        globs = [n for n in target.namespaces if _is_glob(n)]
        if globs:
            notes.append(f"namespace glob(s) {', '.join(globs)} are expanded against the source instance, "
                         "which this account cannot read: apply handles the namespaces named literally; "
                         "create the others `grants verify` reports (its fix gives the command)")
    for ns in dict.fromkeys(names):
        where = f"{target.instance_id}/{ns}"
        got = acr.get_namespace(target.instance_id, ns)
        if got is None:
            steps.append(Step(kind="CreateNamespace", changes=f"namespace {where}",
                              fixes=["TARGET_NAMESPACE_MISSING"],
                              why=f"namespace-level sync lands in {ns!r}, which does not exist; it is "
                                  f"created with AutoCreateRepo on and {fixes.DEFAULT_REPO_TYPE} "
                                  "repositories",
                              instance_id=target.instance_id, namespace=ns,
                              default_repo_type=fixes.DEFAULT_REPO_TYPE,
                              command=fixes.create_namespace_cmd(target, ns)))
        elif not got.auto_create_repo:
            steps.append(Step(kind="UpdateNamespace", changes=f"AutoCreateRepo of namespace {where}",
                              fixes=["TARGET_NAMESPACE_NO_AUTOCREATE"],
                              why=f"namespace {ns!r} has AutoCreateRepo off, so repositories the target "
                                  "lacks cannot be synced into it; it is turned on (the default repository "
                                  "type is kept)",
                              instance_id=target.instance_id, namespace=ns,
                              default_repo_type=got.default_repo_type,
                              command=fixes.update_namespace_cmd(target, ns, got.default_repo_type)))


# ---- execution ------------------------------------------------------------------------------------

def _req(step: Step, value: str | None) -> str:
    """A field that ``plan`` always sets for this kind of step; a step without it is malformed."""
    if value is None:
        raise ValueError(f"the {step.kind} step ({step.changes}) lacks a field it needs")
    return value


def execute(plan_: Plan, ram: RamAdmin, acr: AcrAdmin | None = None) -> list[str]:
    """Run the plan's steps in order; returns one line per write done."""
    if acr is None and any(st.kind in ACR_STEPS for st in plan_.steps):
        raise ValueError("the plan changes target namespaces: pass the target instance's Acr adapter to "
                         "execute")
    done = []
    for st in plan_.steps:
        if st.kind == "CreateRole":
            ram.create_role(_req(st, st.role_name), _req(st, st.document), st.description or "")
        elif st.kind == "UpdateRole":
            ram.update_role_trust(_req(st, st.role_name), _req(st, st.document))
        elif st.kind == "CreatePolicy":
            ram.create_policy(_req(st, st.policy_name), _req(st, st.document), st.description or "")
        elif st.kind == "CreatePolicyVersion":
            ram.create_policy_version(_req(st, st.policy_name), _req(st, st.document), set_as_default=True)
        elif st.kind == "AttachPolicyToRole":
            ram.attach_policy_to_role(_req(st, st.policy_name), st.policy_type or "Custom",
                                      _req(st, st.role_name))
        elif st.kind == "DetachPolicyFromRole":
            ram.detach_policy_from_role(_req(st, st.policy_name), st.policy_type or "Custom",
                                        _req(st, st.role_name))
        elif st.kind == "CreateNamespace":
            assert acr is not None   # checked above for every ACR step
            acr.create_namespace(_req(st, st.instance_id), _req(st, st.namespace), auto_create_repo=True,
                                 default_repo_type=st.default_repo_type)
        elif st.kind == "UpdateNamespace":
            assert acr is not None   # checked above for every ACR step
            acr.update_namespace(_req(st, st.instance_id), _req(st, st.namespace), auto_create_repo=True,
                                 default_repo_type=st.default_repo_type)
        done.append(f"{st.kind} {st.changes}")
    return done
