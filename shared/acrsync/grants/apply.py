"""`acrsync grants apply`: put account B's role, trust and policy in place, idempotently.

It reads first and plans only the writes that change something: CreateRole or UpdateRole (trust),
CreatePolicy or CreatePolicyVersion (only when the document differs), AttachPolicyToRole (only when not
attached). A second run plans nothing. It runs with account B's administrator credentials, never
through the reader role (which can only read).
"""

from __future__ import annotations

import json
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from acrsync import policy as P
from acrsync.config import Config, Target
from acrsync.grants import fixes
from acrsync.grants.check import RamReader
from acrsync.model import PolicyInfo, RoleInfo

StepKind = Literal["CreateRole", "UpdateRole", "CreatePolicy", "CreatePolicyVersion", "AttachPolicyToRole"]


class RamAdmin(RamReader, Protocol):
    def create_role(self, name: str, trust_policy: str, description: str = "") -> RoleInfo: ...
    def update_role_trust(self, name: str, trust_policy: str) -> RoleInfo: ...
    def create_policy(self, name: str, document: str, description: str = "") -> PolicyInfo: ...
    def create_policy_version(self, name: str, document: str, set_as_default: bool = True) -> None: ...
    def attach_policy_to_role(self, policy_name: str, policy_type: str, role_name: str) -> None: ...


class Step(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: StepKind
    why: str
    role_name: str | None = None
    policy_name: str | None = None
    document: str | None = Field(default=None, description="the trust or policy JSON this step writes")
    command: str = Field(description="the equivalent `aliyun ram` command")


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)
    target: str
    account_id: str
    steps: list[Step] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what apply will not change, and why")

    @property
    def empty(self) -> bool:
        return not self.steps


ROLE_DESCRIPTION = "Lets Container Registry sync images from another account (managed by acrsync)"


def plan(config: Config, target: Target, ram: RamReader) -> Plan:
    """Read account B and work out the writes that make the grant right for this target."""
    src = config.source
    if target.account_id == src.account_id:
        return Plan(target=target.name, account_id=target.account_id,
                    notes=["source and target are in the same account: no cross-account grant is needed"])
    steps: list[Step] = []
    notes: list[str] = []
    role = ram.get_role(P.SYNC_ROLE_NAME)
    pname = fixes.sync_policy_name(target)
    want_policy = fixes.dumps(fixes.sync_policy(target))

    if role is None:
        trust = fixes.dumps(fixes.trust_policy(src))
        steps.append(Step(kind="CreateRole", why=f"account {target.account_id} has no role {P.SYNC_ROLE_NAME}",
                          role_name=P.SYNC_ROLE_NAME, document=trust, command=fixes.create_role_cmd(src)))
        near = P.near_miss_role_names(r.name for r in ram.list_roles())
        if near:
            notes.append(f"role(s) {', '.join(near)} look like {P.SYNC_ROLE_NAME} but ACR never uses them; "
                         "delete them once the new role works")
    else:
        new_trust, why = _trust_change(role, config, target)
        if new_trust is not None:
            steps.append(Step(kind="UpdateRole", why=why, role_name=role.name, document=new_trust,
                              command=fixes.update_trust_cmd(src, json.loads(new_trust))))
        elif why:
            notes.append(why)

    attached = [] if role is None else ram.list_policies_for_role(role.name)
    current = ram.get_policy(pname, "Custom")
    granted_by = _granted_by(ram, attached, target) if current is None else []
    if granted_by:
        notes.append(f"{' and '.join(P.SYNC_ACTIONS)} on {target.instance_id} are already allowed by "
                     f"{', '.join(granted_by)}; no acrsync policy is added")
    elif current is None:
        steps.append(Step(kind="CreatePolicy", why=f"the policy {pname} does not exist", policy_name=pname,
                          document=want_policy, command=fixes.create_policy_cmd(target)))
    elif not fixes.same_document(current.document, want_policy):
        steps.append(Step(kind="CreatePolicyVersion",
                          why=f"the default version of {pname} differs from the required document",
                          policy_name=pname, document=want_policy, command=fixes.create_policy_version_cmd(target)))
    if not granted_by and not any(r.name == pname and r.type == "Custom" for r in attached):
        steps.append(Step(kind="AttachPolicyToRole", why=f"{pname} is not attached to {P.SYNC_ROLE_NAME}",
                          role_name=P.SYNC_ROLE_NAME, policy_name=pname, command=fixes.attach_cmd(target)))
    notes.extend(_foreign_denies(ram, attached, pname, target))
    return Plan(target=target.name, account_id=target.account_id, steps=steps, notes=notes)


def _trust_change(role: RoleInfo, config: Config, target: Target) -> tuple[str | None, str]:
    """(new trust JSON or None, why). Keeps other trusted principals; drops Denies aimed at ours."""
    src = config.source
    ours = fixes.trust_policy(src)
    try:
        v = P.evaluate_trust(role.trust_policy, src.account_id, target.account_id)
    except P.PolicyError as e:
        return fixes.dumps(ours), f"the trust policy is malformed ({e}); it is replaced"
    if v.decision == "allowed":
        return None, ""
    if v.decision == "unknown":
        return None, (f"the trust policy trusts {v.principal} only under conditions ({'; '.join(v.conditions)}); "
                      "apply leaves conditions alone: review them by hand")
    doc = json.loads(role.trust_policy)
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    denying = {e.statement for e in v.evidence} if v.decision == "denied" else set()
    kept = [st for i, st in enumerate(statements) if i not in denying]
    new = {"Version": "1", "Statement": [*kept, *ours["Statement"]]}
    why = (f"the trust policy denies {v.principal} (statement(s) {sorted(denying)}): they are removed and "
           "an Allow added" if denying else f"the trust policy does not trust {v.principal}: an Allow is added")
    return fixes.dumps(new), why


def _attached_policies(ram: RamReader, attached, skip: str | None = None) -> list[P.Policy]:
    out = []
    for ref in attached:
        if ref.name == skip:
            continue
        info = ram.get_policy(ref.name, ref.type)
        if info is None:
            continue
        try:
            out.append(P.parse_policy(info.document, f"policy {ref.name} ({ref.type})"))
        except P.PolicyError:
            continue
    return out


def _granted_by(ram: RamReader, attached, target: Target) -> list[str]:
    """Policies already attached that allow both sync actions outright (set up by hand, per the guide).

    Deny statements are left out here: a Deny is reported as a note, and adding a policy cannot beat it.
    """
    policies = [P.Policy(p.name, tuple(st for st in p.statements if st.effect == "Allow"))
                for p in _attached_policies(ram, attached)]
    forms = P.target_resources(target.region, target.account_id, target.instance_id)
    verdicts = [P.evaluate_any(policies, a, forms) for a in P.SYNC_ACTIONS] if policies else []
    if not verdicts or not all(v.allowed for v in verdicts):
        return []
    return sorted({e.policy for v in verdicts for e in v.evidence})


def _foreign_denies(ram: RamReader, attached, ours: str, target: Target) -> list[str]:
    """Deny statements in other attached policies: apply does not edit them, it says so."""
    notes = []
    forms = P.target_resources(target.region, target.account_id, target.instance_id)
    for pol in _attached_policies(ram, attached, skip=ours):
        for action in P.SYNC_ACTIONS:
            v = P.evaluate_any([pol], action, forms)
            if v.decision == "denied":
                notes.append(f"{pol.name} statement {v.evidence[0].statement} denies {action}; apply does not "
                             "edit other policies: remove that Deny or detach the policy by hand")
    return notes


def execute(plan_: Plan, ram: RamAdmin) -> list[str]:
    """Run the plan's steps in order; returns one line per write done."""
    done = []
    for st in plan_.steps:
        if st.kind == "CreateRole":
            ram.create_role(st.role_name, st.document, ROLE_DESCRIPTION)
        elif st.kind == "UpdateRole":
            ram.update_role_trust(st.role_name, st.document)
        elif st.kind == "CreatePolicy":
            ram.create_policy(st.policy_name, st.document, f"acrsync: ACR cross-account sync into {plan_.target}")
        elif st.kind == "CreatePolicyVersion":
            ram.create_policy_version(st.policy_name, st.document, set_as_default=True)
        elif st.kind == "AttachPolicyToRole":
            ram.attach_policy_to_role(st.policy_name, "Custom", st.role_name)
        done.append(f"{st.kind} {st.role_name or ''} {st.policy_name or ''}".strip())
    return done
