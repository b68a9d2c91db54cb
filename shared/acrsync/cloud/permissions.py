"""Every SDK operation acrsync calls, the RAM action it needs, and who needs it (like Cloud Custodian's
``permissions``).

The session's central call refuses an operation that has no row here, and the tests compare this
table with the SDK methods the adapters call, so the policies `acrsync permissions` prints cannot
fall behind the code. Action names come from data/ram_actions.txt (sources and UNVERIFIED marks there).

Principals:
- function: the FC functions' role in account A (push, reconcile).
- reader: the role in account B that the functions assume (ram_role_arn) to read RAM and the target.
- applier: the account-B administrator who runs `acrsync grants apply`.
- operator: the account-A administrator who runs rule-management and ledger-setup commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from importlib import resources
from urllib.parse import urlparse

from acrsync.cloud.errors import UndeclaredOperation


class Principal(str, Enum):
    FUNCTION = "function"
    READER = "reader"
    APPLIER = "applier"
    OPERATOR = "operator"


class Scope(str, Enum):
    """Which resources a statement is scoped to; resolved against the config in ``policy_documents``."""

    SOURCE = "source"              # the source instance and its repositories (account A)
    TARGET = "target"              # a target instance and its repositories (account B)
    ALL = "all"                    # the action takes no resource (List* over the account)
    READER_ROLES = "reader_roles"  # the configured reader role ARNs
    RAM_B = "ram_b"                # roles and policies in account B
    OTS = "ots"                    # the ledger's Tablestore tables
    FC = "fc"                      # functions in account A
    NONE = "none"                  # no permission needed (sts:GetCallerIdentity)


@dataclass(frozen=True)
class Declaration:
    service: str                   # "cr" | "ram" | "sts" | "fc" | "ots"
    api_action: str                # "CreateRepoSyncTask"
    ram_action: str | None         # "cr:CreateRepositorySync"; None: the API needs no permission
    needed_by: tuple[tuple[Principal, Scope], ...]
    idempotent: bool = True        # False: repeating after a read timeout could do it twice

    @property
    def key(self) -> str:
        return f"{self.service}:{self.api_action}"


F, R, A, OP = Principal.FUNCTION, Principal.READER, Principal.APPLIER, Principal.OPERATOR
S = Scope


def _d(service: str, api: str, ram: str | None, *needed: tuple[Principal, Scope],
       idempotent: bool = True) -> Declaration:
    return Declaration(service, api, ram, tuple(needed), idempotent)


DECLARATIONS: tuple[Declaration, ...] = (
    # ACR, source instance (account A) and, through the reader role, the target instance (account B)
    _d("cr", "GetInstance", "cr:GetInstance", (F, S.SOURCE), (R, S.TARGET), (A, S.TARGET)),
    _d("cr", "ListInstance", "cr:ListInstance", (OP, S.ALL)),
    _d("cr", "GetNamespace", "cr:GetNamespace", (F, S.SOURCE), (R, S.TARGET), (A, S.TARGET)),
    _d("cr", "ListNamespace", "cr:ListNamespace", (F, S.SOURCE), (R, S.TARGET)),
    # target namespaces the applier creates or turns AutoCreateRepo on for (namespace-level targets)
    _d("cr", "CreateNamespace", "cr:CreateNamespace", (A, S.TARGET), idempotent=False),
    _d("cr", "UpdateNamespace", "cr:UpdateNamespace", (A, S.TARGET)),
    _d("cr", "GetRepository", "cr:GetRepository", (F, S.SOURCE), (R, S.TARGET)),
    _d("cr", "ListRepository", "cr:ListRepository", (F, S.SOURCE), (R, S.TARGET)),
    _d("cr", "GetRepoTag", "cr:GetRepositoryTag", (F, S.SOURCE), (R, S.TARGET)),
    _d("cr", "ListRepoTag", "cr:ListRepositoryTag", (F, S.SOURCE), (R, S.TARGET)),
    _d("cr", "CreateRepoSyncTask", "cr:CreateRepositorySync", (F, S.SOURCE), idempotent=False),
    _d("cr", "CreateRepoSyncTaskByRule", "cr:CreateRepositorySync", (F, S.SOURCE), idempotent=False),
    _d("cr", "GetRepoSyncTask", "cr:GetRepositorySync", (F, S.SOURCE)),
    _d("cr", "ListRepoSyncTask", "cr:GetRepositorySync", (F, S.SOURCE)),
    _d("cr", "CancelRepoSyncTask", "cr:CancelRepositorySync", (F, S.SOURCE)),
    _d("cr", "CreateRepoSyncRule", "cr:CreateSyncRule", (OP, S.SOURCE), idempotent=False),
    _d("cr", "ListRepoSyncRule", "cr:ListSyncRule", (F, S.SOURCE), (OP, S.SOURCE)),
    _d("cr", "DeleteRepoSyncRule", "cr:DeleteSyncRule", (OP, S.SOURCE)),
    # RAM in account B: read by the reader role (grant checks), written by the applier
    _d("ram", "GetRole", "ram:GetRole", (R, S.RAM_B), (A, S.RAM_B)),
    _d("ram", "ListRoles", "ram:ListRoles", (R, S.RAM_B), (A, S.RAM_B)),
    _d("ram", "ListPoliciesForRole", "ram:ListPoliciesForRole", (R, S.RAM_B), (A, S.RAM_B)),
    _d("ram", "GetPolicy", "ram:GetPolicy", (R, S.RAM_B), (A, S.RAM_B)),
    _d("ram", "CreateRole", "ram:CreateRole", (A, S.RAM_B), idempotent=False),
    _d("ram", "UpdateRole", "ram:UpdateRole", (A, S.RAM_B)),
    _d("ram", "CreatePolicy", "ram:CreatePolicy", (A, S.RAM_B), idempotent=False),
    _d("ram", "CreatePolicyVersion", "ram:CreatePolicyVersion", (A, S.RAM_B), idempotent=False),
    _d("ram", "AttachPolicyToRole", "ram:AttachPolicyToRole", (A, S.RAM_B)),
    _d("ram", "DetachPolicyFromRole", "ram:DetachPolicyFromRole", (A, S.RAM_B)),
    # STS
    _d("sts", "AssumeRole", "sts:AssumeRole", (F, S.READER_ROLES)),
    _d("sts", "GetCallerIdentity", None, (F, S.NONE), (R, S.NONE), (A, S.NONE), (OP, S.NONE)),
    # FC 3.0
    _d("fc", "InvokeFunction", "fc:InvokeFunction", (F, S.FC), (OP, S.FC), idempotent=False),
    _d("fc", "GetFunction", "fc:GetFunction", (F, S.FC), (OP, S.FC)),
    # the compliance run's pipeline health check (the on_push trigger, the timers)
    _d("fc", "ListTriggers", "fc:ListTriggers", (F, S.FC), (OP, S.FC)),
    _d("fc", "GetTrigger", "fc:GetTrigger", (F, S.FC), (OP, S.FC)),
    # Tablestore (the ledger, through tablestore.OTSClient)
    _d("ots", "GetRow", "ots:GetRow", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "PutRow", "ots:PutRow", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "UpdateRow", "ots:UpdateRow", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "DeleteRow", "ots:DeleteRow", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "GetRange", "ots:GetRange", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "BatchWriteRow", "ots:BatchWriteRow", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "BatchGetRow", "ots:BatchGetRow", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "DescribeTable", "ots:DescribeTable", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "ListTable", "ots:ListTable", (F, S.OTS), (OP, S.OTS)),
    _d("ots", "CreateTable", "ots:CreateTable", (OP, S.OTS)),
)

TABLE: dict[tuple[str, str], Declaration] = {(d.service, d.api_action): d for d in DECLARATIONS}


def required(service: str, api_action: str) -> Declaration:
    """The declaration for an operation; raises UndeclaredOperation when there is none."""
    try:
        return TABLE[(service, api_action)]
    except KeyError:
        raise UndeclaredOperation(
            f"{service}:{api_action} has no RAM permission declared; add a row for it to "
            "acrsync/cloud/permissions.py DECLARATIONS (and its RAM action to data/ram_actions.txt)"
        ) from None


def known_ram_actions() -> dict[str, bool]:
    """data/ram_actions.txt as {action: verified}; lines marked UNVERIFIED map to False."""
    text = resources.files("acrsync").joinpath("data/ram_actions.txt").read_text(encoding="utf-8")
    out: dict[str, bool] = {}
    for line in text.splitlines():
        name, _, comment = line.partition("#")
        name = name.strip()
        if name:
            out[name] = "UNVERIFIED" not in comment
    return out


# ---- policy documents ----------------------------------------------------------------------------

def _cr_resources(region: str, account: str, instance_id: str) -> list[str]:
    base = f"acs:cr:{region}:{account}"
    return [f"{base}:instance/{instance_id}", f"{base}:repository/{instance_id}",
            f"{base}:repository/{instance_id}/*"]


def _ots_region(endpoint: str | None, fallback: str) -> str:
    """Region from https://<instance>.<region>.ots.aliyuncs.com (or the .vpc.tablestore. form)."""
    host = urlparse(endpoint or "").hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) > 3 and parts[1] not in ("ots", "vpc") else fallback


def _resources(scope: Scope, config, target=None) -> list[str]:
    src = config.source
    if scope is Scope.SOURCE:
        return _cr_resources(src.region, src.account_id, src.instance_id)
    if scope is Scope.TARGET:
        return _cr_resources(target.region, target.account_id, target.instance_id)
    if scope is Scope.ALL:
        return ["*"]
    if scope is Scope.READER_ROLES:
        return sorted({t.reader_role_arn for t in config.targets if t.enabled and t.reader_role_arn})
    if scope is Scope.RAM_B:
        return [f"acs:ram::{target.account_id}:role/*", f"acs:ram::{target.account_id}:policy/*"]
    if scope is Scope.OTS:
        led = config.ledger
        if led.backend != "tablestore":
            return []
        region = _ots_region(led.endpoint, src.region)
        return [f"acs:ots:{region}:{src.account_id}:instance/{led.instance}/table/{led.table_prefix}*"]
    if scope is Scope.FC:
        return [f"acs:fc:{src.region}:{src.account_id}:functions/*"]
    return []


def _document(principal: Principal, config, target=None) -> dict:
    """Group the principal's actions by identical resource lists: one Allow statement per group."""
    groups: dict[tuple[str, ...], set[str]] = {}
    for d in DECLARATIONS:
        for who, scope in d.needed_by:
            if who is not principal or d.ram_action is None:
                continue
            res = tuple(_resources(scope, config, target))
            if res:
                groups.setdefault(res, set()).add(d.ram_action)
    statements = [{"Effect": "Allow", "Action": sorted(actions), "Resource": list(res)}
                  for res, actions in sorted(groups.items())]
    return {"Version": "1", "Statement": statements}


@dataclass(frozen=True)
class PolicyDocument:
    principal: Principal
    account_id: str
    attach_to: str                 # who gets it, in words
    document: dict
    target: str | None = None      # target name for per-target documents

    def to_dict(self) -> dict:
        return {"principal": self.principal.value, "account_id": self.account_id, "target": self.target,
                "attach_to": self.attach_to, "document": self.document}


def policy_documents(config, principal: Principal) -> list[PolicyDocument]:
    """The minimal policies for ``principal``, scoped as far as the config allows.

    function and operator get one document (account A); reader and applier one per enabled target
    (each target's account B). A reader document is produced only for targets with reader_role_arn.
    """
    principal = Principal(principal)
    src = config.source
    if principal is Principal.FUNCTION:
        return [PolicyDocument(principal, src.account_id, "the FC functions' service role in account A",
                               _document(principal, config))]
    if principal is Principal.OPERATOR:
        return [PolicyDocument(principal, src.account_id, "the administrator running acrsync in account A",
                               _document(principal, config))]
    out = []
    for t in config.targets:
        if not t.enabled:
            continue
        if principal is Principal.READER:
            if not t.reader_role_arn:
                continue
            who = f"the reader role {t.reader_role_arn} (trusting account {src.account_id})"
        else:
            who = f"the administrator who runs `acrsync grants apply` in account {t.account_id}"
        out.append(PolicyDocument(principal, t.account_id, who, _document(principal, config, t), t.name))
    return out
