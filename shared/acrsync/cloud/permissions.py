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
- deployer: the account-A RAM user whose keys `s deploy` uses (the fc3 component's calls, not acrsync's;
  see DEPLOYER_STATEMENTS). The function principal also gets the role's trust policy (``trust_policy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from acrsync.cloud.errors import UndeclaredOperation
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.config import Config, Target

# A RAM policy document, or one statement of it, as the JSON that RAM takes.
Json = dict[str, Any]


class Principal(str, Enum):
    FUNCTION = "function"
    DEPLOYER = "deployer"
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
class Declaration(Frozen):
    service: str                   # "cr" | "ram" | "sts" | "fc" | "ots"
    api_action: str                # "CreateRepoSyncTask"
    ram_action: str | None         # "cr:CreateRepositorySync"; None: the API needs no permission
    needed_by: tuple[tuple[Principal, Scope], ...]
    idempotent: bool = True        # False: repeating after a read timeout could do it twice
    also: tuple[str, ...] = ()     # names older documents give the same permission: granted too (not on "*")

    @property
    def ram_actions(self) -> tuple[str, ...]:
        """Every RAM action a generated policy grants for this operation (the current name first)."""
        return ((self.ram_action,) if self.ram_action else ()) + self.also

    @property
    def key(self) -> str:
        return f"{self.service}:{self.api_action}"


F, R, A, OP = Principal.FUNCTION, Principal.READER, Principal.APPLIER, Principal.OPERATOR
S = Scope


def _d(service: str, api: str, ram: str | None, *needed: tuple[Principal, Scope],
       idempotent: bool = True, also: tuple[str, ...] = ()) -> Declaration:
    return Declaration(service, api, ram, tuple(needed), idempotent, also)


DECLARATIONS: tuple[Declaration, ...] = (
    # ACR, source instance (account A) and, through the reader role, the target instance (account B).
    # Names and resources: the current API reference page of each operation (data/ram_actions.txt lists
    # them). "All Resources" actions are granted on "*" (S.ALL): a narrower ARN does not grant them. Where an
    # older page names another action or resource, the generated policy grants that as well (``also``,
    # a second scope), so it holds under either reading.
    _d("cr", "GetInstance", "cr:GetInstance", (F, S.SOURCE), (R, S.TARGET), (A, S.TARGET)),
    _d("cr", "ListInstance", "cr:ListInstance", (OP, S.ALL)),
    _d("cr", "GetNamespace", "cr:GetNamespace", (F, S.SOURCE), (R, S.TARGET), (A, S.TARGET)),
    _d("cr", "ListNamespace", "cr:ListNamespace", (F, S.ALL), (R, S.ALL)),
    # target namespaces the applier creates or turns AutoCreateRepo on for (namespace-level targets)
    _d("cr", "CreateNamespace", "cr:CreateNamespace", (A, S.TARGET), idempotent=False),
    _d("cr", "UpdateNamespace", "cr:UpdateNamespace", (A, S.ALL), (A, S.TARGET)),
    _d("cr", "GetRepository", "cr:GetRepository", (F, S.SOURCE), (R, S.TARGET)),
    _d("cr", "ListRepository", "cr:ListRepository", (F, S.SOURCE), (R, S.TARGET)),
    _d("cr", "GetRepoTag", "cr:ListRepositoryTag", (F, S.SOURCE), (R, S.TARGET), (F, S.ALL), (R, S.ALL)),
    _d("cr", "ListRepoTag", "cr:ListRepositoryTag", (F, S.ALL), (R, S.ALL)),
    _d("cr", "CreateRepoSyncTask", "cr:CreateRepositorySync", (F, S.SOURCE), idempotent=False),
    _d("cr", "CreateRepoSyncTaskByRule", "cr:PullRepository", (F, S.ALL), (F, S.SOURCE), idempotent=False,
       also=("cr:CreateRepositorySync",)),
    _d("cr", "GetRepoSyncTask", "cr:GetRepositorySync", (F, S.SOURCE)),
    _d("cr", "ListRepoSyncTask", "cr:GetRepositorySync", (F, S.SOURCE)),
    _d("cr", "CancelRepoSyncTask", "cr:CancelRepoSyncTask", (F, S.SOURCE), also=("cr:CancelRepositorySync",)),
    _d("cr", "CreateRepoSyncRule", "cr:CreateSyncRule", (OP, S.SOURCE), idempotent=False,
       also=("cr:CreateRepoSyncRule",)),
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


def _resources(scope: Scope, config: Config, target: Target | None = None) -> list[str]:
    src = config.source
    if scope is Scope.SOURCE:
        return _cr_resources(src.region, src.account_id, src.instance_id)
    if scope is Scope.TARGET:
        assert target is not None, "a target scope needs the target"
        return _cr_resources(target.region, target.account_id, target.instance_id)
    if scope is Scope.ALL:
        return ["*"]
    if scope is Scope.READER_ROLES:
        return sorted({t.reader_role_arn for t in config.targets if t.enabled and t.reader_role_arn})
    if scope is Scope.RAM_B:
        assert target is not None, "a target scope needs the target"
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


def _document(principal: Principal, config: Config, target: Target | None = None) -> Json:
    """Group the principal's actions by identical resource lists: one Allow statement per group."""
    groups: dict[tuple[str, ...], set[str]] = {}
    for d in DECLARATIONS:
        for who, scope in d.needed_by:
            if who is not principal or d.ram_action is None:
                continue
            res = tuple(_resources(scope, config, target))
            if res:
                # older names are resource-level permissions: never widened to "*"
                names = (d.ram_action,) if scope is Scope.ALL else d.ram_actions
                groups.setdefault(res, set()).update(names)
    statements = [{"Effect": "Allow", "Action": sorted(actions), "Resource": list(res)}
                  for res, actions in sorted(groups.items())]
    return {"Version": "1", "Statement": statements}


# ---- deployment: what s.yaml creates, named as it names them ---------------------------------------

@dataclass(frozen=True)
class DeploySettings(Frozen):
    """The names s.yaml gives what it deploys, read from the same environment variables (and defaults)."""

    function_role: str = "acrsync-fc"
    function_prefix: str = "acrsync-"
    layer_prefix: str = "acrsync-deps-"
    log_project: str | None = None
    log_store: str = "acrsync"
    dead_letter_queue: str = "acrsync-failed-events"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeploySettings:
        return cls(function_role=env.get("ACRSYNC_FUNCTION_ROLE") or cls.function_role,
                   log_project=env.get("ACRSYNC_LOG_PROJECT") or None,
                   log_store=env.get("ACRSYNC_LOG_STORE") or cls.log_store,
                   dead_letter_queue=env.get("ACRSYNC_DEAD_LETTER_QUEUE") or cls.dead_letter_queue)


@dataclass(frozen=True)
class StaticStatement(Frozen):
    """One Allow statement of a deployment policy; ``{region}``, ``{account}`` and the settings' fields are
    filled in. ``verified`` is False when the action names follow the pattern but no source confirmed them."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    why: str
    verified: bool = True
    condition: Json | None = None


_FN = "acs:fc:{region}:{account}:functions/{function_prefix}*"
# What the fc3 component calls for s.yaml (https://github.com/devsapp/fc3, src/subCommands/deploy and
# src/subCommands/layer; FC 3.0 actions are fc:<API name>).
DEPLOYER_STATEMENTS: tuple[StaticStatement, ...] = (
    StaticStatement(("fc:CreateFunction", "fc:UpdateFunction", "fc:GetFunction", "fc:DeleteFunction",
                     "fc:PutAsyncInvokeConfig", "fc:GetAsyncInvokeConfig", "fc:DeleteAsyncInvokeConfig",
                     "fc:PutConcurrencyConfig", "fc:GetConcurrencyConfig", "fc:DeleteConcurrencyConfig"),
                    (_FN,), "the three functions, their async invoke and concurrency configuration"),
    StaticStatement(("fc:CreateTrigger", "fc:UpdateTrigger", "fc:GetTrigger", "fc:ListTriggers",
                     "fc:DeleteTrigger"), (_FN, _FN + "/triggers/*"),
                    "the EventBridge, HTTP and timer triggers"),
    StaticStatement(("fc:ListFunctions", "fc:ListLayers"), ("acs:fc:{region}:{account}:functions/*",
                                                             "acs:fc:{region}:{account}:layers/*"),
                    "fc3 lists before it creates"),
    StaticStatement(("fc:CreateLayerVersion", "fc:GetLayerVersion", "fc:ListLayerVersions",
                     "fc:GetLayerVersionByArn"),
                    ("acs:fc:{region}:{account}:layers/{layer_prefix}*",
                     "acs:fc:{region}:{account}:layers/{layer_prefix}*/versions/*"),
                    "the dependency layer (fc3 layer publish)"),
    StaticStatement(("fc:GetTempBucketToken",), ("*",),
                    "fc3 uploads each zip through a temporary OSS bucket that FC lends (uploadCodeToTmpOss); "
                    "the upload itself uses the temporary keys FC returns", verified=False),
    StaticStatement(("ram:PassRole",), ("acs:ram::{account}:role/{function_role}",),
                    "give the functions their role"),
    StaticStatement(("ram:GetRole",), ("acs:ram::{account}:role/*",),
                    "fc3 looks the service-linked roles up before creating them", verified=False),
    StaticStatement(("ram:CreateServiceLinkedRole",), ("*",),
                    "fc3 creates EventBridge's service-linked roles (SENDTOFC and the source type) before "
                    "the EventBridge trigger, and FC's own (AliyunServiceRoleForFC) when needed",
                    verified=False,
                    condition={"StringLike": {"ram:ServiceName": ["*.eventbridge.aliyuncs.com",
                                                                  "fc.aliyuncs.com"]}}),
    StaticStatement(("eventbridge:CreateRule", "eventbridge:UpdateRule", "eventbridge:GetRule",
                     "eventbridge:DeleteRule", "eventbridge:ListRules", "eventbridge:CreateTargets",
                     "eventbridge:DeleteTargets", "eventbridge:ListTargets"),
                    ("acs:eventbridge:{region}:{account}:eventbus/default",
                     "acs:eventbridge:{region}:{account}:eventbus/default/rule/*"),
                    "the EventBridge trigger's rule on the default bus, created on the deployer's behalf",
                    verified=False),
    StaticStatement(("log:GetProject", "log:GetLogStore"),
                    ("acs:log:{region}:{account}:project/{log_project}",
                     "acs:log:{region}:{account}:project/{log_project}/logstore/{log_store}"),
                    "the functions' logConfig names an existing project and logstore", verified=False),
)

# Beyond acrsync's own calls (DECLARATIONS), what the function role needs because of s.yaml.
FUNCTION_EXTRA_STATEMENTS: tuple[StaticStatement, ...] = (
    StaticStatement(("mns:SendMessage",),
                    ("acs:mns:{region}:{account}:/queues/{dead_letter_queue}/messages",),
                    "asyncInvokeConfig onFailure: FC sends an invocation that failed every retry to this "
                    "queue with the function's role "
                    "(https://www.alibabacloud.com/help/en/fc/user-guide/result-callback)"),
    StaticStatement(("log:PostLogStoreLogs",),
                    ("acs:log:{region}:{account}:project/{log_project}/logstore/{log_store}",),
                    "function logs: FC 3.0 documents its service-linked role AliyunServiceRoleForFC as the "
                    "one that collects logs (https://www.alibabacloud.com/help/en/functioncompute/"
                    "service-linked-role-of-function-compute); granted to the function role too, so logs "
                    "arrive whichever role a region uses", verified=False),
)


def trust_policy() -> Json:
    """The function role's trust policy: Function Compute may assume it (fc.aliyuncs.com)."""
    return {"Version": "1", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                           "Principal": {"Service": ["fc.aliyuncs.com"]}}]}


def _static(statements: tuple[StaticStatement, ...], config: Config, settings: DeploySettings) -> list[Json]:
    fields = {"region": config.source.region, "account": config.source.account_id,
              "function_role": settings.function_role, "function_prefix": settings.function_prefix,
              "layer_prefix": settings.layer_prefix, "log_project": settings.log_project or "*",
              "log_store": settings.log_store, "dead_letter_queue": settings.dead_letter_queue}
    out: list[Json] = []
    for st in statements:
        statement: Json = {"Effect": "Allow", "Action": list(st.actions),
                     "Resource": [r.format(**fields) for r in st.resources]}
        if st.condition:
            statement["Condition"] = st.condition
        out.append(statement)
    return out


def unverified_static_actions() -> set[str]:
    """Action names of the deployment statements that no source confirmed."""
    return {a for st in (*DEPLOYER_STATEMENTS, *FUNCTION_EXTRA_STATEMENTS) if not st.verified
            for a in st.actions}


@dataclass(frozen=True)
class PolicyDocument(Frozen):
    principal: Principal
    account_id: str
    attach_to: str                 # who gets it, in words
    document: Json
    target: str | None = None      # target name for per-target documents

    def to_dict(self) -> Json:
        return {"principal": self.principal.value, "account_id": self.account_id, "target": self.target,
                "attach_to": self.attach_to, "document": self.document}


def policy_documents(config: Config, principal: Principal | str, settings: DeploySettings | None = None,
                     ) -> list[PolicyDocument]:
    """The minimal policies for ``principal``, scoped as far as the config allows.

    function, deployer and operator get one document (account A); reader and applier one per enabled
    target (each target's account B). A reader document is produced only for targets with reader_role_arn.
    """
    principal = Principal(principal)
    settings = settings or DeploySettings()
    src = config.source
    if principal is Principal.FUNCTION:
        document = _document(principal, config)
        document["Statement"] += _static(FUNCTION_EXTRA_STATEMENTS, config, settings)
        return [PolicyDocument(principal, src.account_id,
                               f"the FC functions' service role ({settings.function_role}) in account A",
                               document)]
    if principal is Principal.DEPLOYER:
        return [PolicyDocument(principal, src.account_id,
                               "the RAM user whose keys `s deploy` uses (s config add) in account A",
                               {"Version": "1", "Statement": _static(DEPLOYER_STATEMENTS, config, settings)})]
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
