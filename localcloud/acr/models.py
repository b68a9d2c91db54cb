"""ACR state and the documented replication rules (moto's ``models`` for Container Registry 2018-12-01).

Instances, namespaces, repositories and tags live in the shared ``World`` (``localcloud.state``); this
module owns what only ACR touches: sync rules, sync tasks and injected task faults, kept in one
``AcrBackend`` at ``world.backends["acr"]``.

The rules enforced come from the cross-account replication document (see docs/localcloud.md, section ACR):
editions, public -> Finance/Gov regions, the ``aliyuncontainerregistrycrossaccoutsyncrole`` grant in the
target account, target namespace/repository prerequisites, tag immutability and the "only images pushed
after the rule exists" limit of automatic rules. Refusals the API gives at once raise ``ServiceError``
(HTTP 4xx) or ``BusinessError`` (HTTP 200 with ``IsSuccess: false``); problems the cloud only reports later
end the task ERROR with a ``TaskIssue``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from localcloud import policy
from localcloud.acr import events
from localcloud.service import ServiceError
from localcloud.state import Instance, Namespace, Repo, Tag, World

CROSS_ACCOUNT_ROLE = "aliyuncontainerregistrycrossaccoutsyncrole"   # sic: "accout", as documented
CROSS_ACCOUNT_ACTIONS = ("cr:CreateSyncRule", "cr:CreateRepositorySync")
SOURCE_EDITIONS = ("Enterprise_Advanced",)
TARGET_EDITIONS = ("Enterprise_Basic", "Enterprise_Standard", "Enterprise_Advanced")
RESTRICTED_REGION_MARKERS = ("-finance", "-gov")
SCOPES = ("REPO", "NAMESPACE", "INSTANCE")
TRIGGERS = ("PASSIVE", "INITIATIVE")

PENDING, SYNCHRONIZING, SUCCESS, ERROR, CANCELED = "PENDING", "SYNCHRONIZING", "SUCCESS", "ERROR", "CANCELED"
OPEN_STATUSES = (PENDING, SYNCHRONIZING)

# TaskIssue values. Only NETWORK_ERROR appears in a public example; the others are UNVERIFIED names.
ISSUE_CROSS_ACCOUNT = "CROSS_ACCOUNT_AUTH_FAILED"
ISSUE_NAMESPACE = "NAMESPACE_NOT_EXIST"
ISSUE_REPO = "REPO_NOT_EXIST"
ISSUE_REPO_CONFIG = "REPO_CONFIG_MISMATCH"
ISSUE_TAG_IMMUTABLE = "TAG_IMMUTABLE"
ISSUE_TAG_CONFLICT = "TAG_CONFLICT"

# CreateNamespace / UpdateNamespace. The name rule is the API reference's (2-120 characters: lower-case
# letters, digits and the separators "_", "-", "."; no separator first or last). The defaults of an
# omitted AutoCreateRepo/DefaultRepoType and the "already exists" code are UNVERIFIED (localcloud's choice).
NAMESPACE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,118}[a-z0-9]")
REPO_TYPES = ("PUBLIC", "PRIVATE")
NAMESPACE_EXISTS = "NAMESPACE_ALREADY_EXIST"

DEFAULT_PENDING_SECONDS = 2.0
DEFAULT_SYNCHRONIZING_SECONDS = 5.0


class BusinessError(Exception):
    """A refusal ACR sends as HTTP 200 with ``IsSuccess: false`` (the SDK does not raise for it)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def is_restricted_region(region: str) -> bool:
    """Finance Cloud and Gov Cloud regions (e.g. ``cn-shanghai-finance-1``, ``cn-north-2-gov-1``)."""
    return any(marker in region for marker in RESTRICTED_REGION_MARKERS)


def instance_arn(instance: Instance, account_id: str | None = None) -> str:
    return f"acs:cr:{instance.region}:{account_id or instance.account_id}:instance/{instance.instance_id}"


def repository_arn(instance: Instance, *path: str, account_id: str | None = None) -> str:
    tail = "/".join((instance.instance_id, *path))
    return f"acs:cr:{instance.region}:{account_id or instance.account_id}:repository/{tail}"


def _compile(pattern: str | None, what: str) -> re.Pattern[str] | None:
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ServiceError(400, "InvalidParameter", f"{what} {pattern!r} is not a valid regular "
                                                    f"expression: {exc}.") \
            from None


def _full_match(pattern: str | None, value: str) -> bool:
    """Filters are full matches (``re.fullmatch``); the service's own regex semantics are UNVERIFIED."""
    return not pattern or re.fullmatch(pattern, value) is not None


@dataclass
class SyncRule:
    rule_id: str
    name: str
    instance_id: str            # the source ("local") instance
    region: str
    scope: str                  # REPO | NAMESPACE | INSTANCE
    trigger: str                # PASSIVE | INITIATIVE
    tag_filter: str
    target_instance_id: str
    target_region: str
    target_account: str         # TargetUserId (or the target instance's owner); ListRepoSyncRule hides it
    cross_user: bool
    namespace: str = ""
    repo: str = ""
    namespace_filter: str = ""
    repo_filter: str = ""
    target_namespace: str = ""
    target_repo: str = ""
    priority: int = 3
    link_id: str = ""
    created: float = 0.0        # seconds, emulator clock

    def covers_repo(self, namespace: str, repo: str) -> bool:
        if self.scope == "REPO":
            return namespace == self.namespace and repo == self.repo
        if self.scope == "NAMESPACE":
            return namespace == self.namespace and _full_match(self.repo_filter, repo)
        return _full_match(self.namespace_filter, namespace) and _full_match(self.repo_filter, repo)

    def covers(self, namespace: str, repo: str, tag: str) -> bool:
        return self.covers_repo(namespace, repo) and _full_match(self.tag_filter, tag)

    def target_path(self, namespace: str, repo: str) -> tuple[str, str]:
        """Where an image of ``namespace/repo`` lands: REPO maps one repo, NAMESPACE one namespace,
        INSTANCE keeps the source names."""
        if self.scope == "REPO":
            return self.target_namespace or namespace, self.target_repo or repo
        if self.scope == "NAMESPACE":
            return self.target_namespace or namespace, repo
        return namespace, repo


@dataclass
class SyncTask:
    task_id: str
    batch_id: str
    rule_id: str                # "" for manual tasks
    rule_scope: str             # the rule's scope; "" for manual tasks
    trigger: str                # PASSIVE (rule on push) | INITIATIVE (manual or by rule on request)
    instance_id: str
    region: str
    account_id: str
    repo_id: str
    namespace: str
    repo: str
    tag: str
    digest: str                 # the source tag's digest when the task was made (bare hex)
    size: int
    source_repo_type: str
    source_tag_immutability: bool
    target_instance_id: str
    target_region: str
    target_account: str
    target_namespace: str
    target_repo: str
    target_tag: str
    cross_user: bool
    override: bool
    priority: int
    created: float
    seq: int
    status: str = PENDING
    issue: str = ""
    detail: str = ""            # why it failed, for the control API (the real service gives only TaskIssue)
    modified: float = 0.0
    planned_issue: str = ""     # from an injected fault: the task will end ERROR with this TaskIssue
    synced_size: int = 0

    @property
    def progress(self) -> int:
        """GetRepoSyncTask's Progress: 1 once succeeded, else 0 (documented; not a percentage)."""
        return 1 if self.status == SUCCESS else 0


@dataclass
class TaskFault:
    """``/_localcloud/acr/task-faults``: make matching tasks fail (``remaining`` more times) or hang."""

    issue: str = "NETWORK_ERROR"
    remaining: int = 0
    stuck: bool = False
    status: str | None = None      # report this status (one ACR never documented) instead of SYNCHRONIZING
    instance_id: str | None = None
    namespace: str | None = None
    repo: str | None = None
    tag: str | None = None
    target_instance_id: str | None = None

    def matches(self, task: SyncTask) -> bool:
        pairs = ((self.instance_id, task.instance_id), (self.namespace, task.namespace),
                 (self.repo, task.repo), (self.tag, task.tag), (self.target_instance_id,
                                                                task.target_instance_id))
        return all(want is None or want == have for want, have in pairs)


def _hex(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def _strip_digest(digest: str) -> str:
    value = digest.strip()
    if value.startswith("sha256:"):
        value = value[len("sha256:"):]
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ServiceError(400, "InvalidParameter",
                           f"digest {digest!r} is not a sha256 digest (64 lower-case hex digits, "
                           "with or without the 'sha256:' prefix)")
    return value


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def cross_account_grant_problem(world: World, source_account: str, target: Instance) -> str:
    """Why account ``source_account`` may not replicate into ``target`` (another account's instance); ""
    when the documented grant is in place: the role named exactly
    ``aliyuncontainerregistrycrossaccoutsyncrole`` in the target account, trusting
    ``<source>@cr.aliyuncs.com``, with policies allowing both
    ``cr:CreateSyncRule`` and ``cr:CreateRepositorySync`` on the target instance (``instance/`` or
    ``repository/`` resource form: either is enough)."""
    owner = target.account_id
    account = world.account(owner)
    role = account.roles.get(CROSS_ACCOUNT_ROLE) if account is not None else None
    if role is None:
        near = [r.name for r in (account.roles.values() if account else ()) if "crossacc" in r.name.lower()]
        hint = f" (found {', '.join(near)}: the name must be exactly {CROSS_ACCOUNT_ROLE})" if near else ""
        return f"account {owner} has no RAM role {CROSS_ACCOUNT_ROLE}{hint}"
    service = f"{source_account}@cr.aliyuncs.com"
    if not policy.trust_allows(role.trust_policy, service=service):
        return (f"the trust policy of role {role.name} in account {owner} does not let service {service} "
                "call sts:AssumeRole")
    documents = policy.role_documents(world, owner, role.name)
    resources = (instance_arn(target), repository_arn(target))
    for action in CROSS_ACCOUNT_ACTIONS:
        if not any(policy.is_allowed(documents, action, resource) for resource in resources):
            return (f"the policies attached to role {role.name} in account {owner} do not allow {action} on "
                    f"{resources[0]} (or {resources[1]})")
    return ""


class AcrBackend:
    """Sync rules, sync tasks and faults of every instance in the world, on the emulator clock."""

    def __init__(self, world: World, *, pending_seconds: float = DEFAULT_PENDING_SECONDS,
                 synchronizing_seconds: float = DEFAULT_SYNCHRONIZING_SECONDS):
        self.world = world
        self.pending_seconds = float(pending_seconds)
        self.synchronizing_seconds = float(synchronizing_seconds)
        self.rules: dict[str, SyncRule] = {}
        self.tasks: dict[str, SyncTask] = {}
        # Tasks that may still change status, in creation order: settle() touches only these, so a
        # request costs the same with ten thousand finished tasks as with none.
        self._open: dict[str, SyncTask] = {}
        self.faults: list[TaskFault] = []
        self._seq = itertools.count(1)

    # ---- lookups -----------------------------------------------------------------------------------

    def now(self) -> float:
        return self.world.clock.now()

    def instance(self, instance_id: str, account_id: str | None = None) -> Instance:
        """The instance; one of another account is answered as missing (accounts see only their own)."""
        inst = self.world.instances.get(instance_id)
        if inst is None or (account_id is not None and inst.account_id != str(account_id)):
            raise BusinessError("INSTANCE_NOT_EXIST", f"The instance {instance_id} does not exist.")
        return inst

    @staticmethod
    def namespace(instance: Instance, name: str) -> Namespace:
        ns = instance.namespaces.get(name)
        if ns is None:
            raise BusinessError("NAMESPACE_NOT_EXIST",
                                f"The namespace {name} does not exist in instance {instance.instance_id}.")
        return ns

    @staticmethod
    def repo_by_id(instance: Instance, repo_id: str) -> Repo:
        for ns in instance.namespaces.values():
            for repo in ns.repos.values():
                if repo.repo_id == repo_id:
                    return repo
        raise BusinessError("REPO_NOT_EXIST", f"The repository {repo_id} does not exist in instance "
                                              f"{instance.instance_id}.")

    def repo_by_name(self, instance: Instance, namespace: str, name: str) -> Repo:
        repo = self.namespace(instance, namespace).repos.get(name)
        if repo is None:
            raise BusinessError("REPO_NOT_EXIST", f"The repository {namespace}/{name} does not exist in "
                                                  f"instance {instance.instance_id}.")
        return repo

    @staticmethod
    def tag(repo: Repo, tag: str) -> Tag:
        found = repo.tags.get(tag)
        if found is None:
            raise BusinessError("TAG_NOT_EXIST", f"The tag {tag} does not exist in repository "
                                                 f"{repo.namespace}/{repo.name}.")
        return found

    # ---- namespaces ----------------------------------------------------------------------------------

    @staticmethod
    def _repo_type(value: str | None, default: str) -> str:
        if value is None or value == "":
            return default
        if value not in REPO_TYPES:
            raise ServiceError(400, "InvalidParameter",
                               f"DefaultRepoType {value!r} must be one of {', '.join(REPO_TYPES)}.")
        return value

    def create_namespace(self, instance: Instance, name: str, *, auto_create_repo: bool | None = None,
                         default_repo_type: str | None = None) -> Namespace:
        """A new, empty namespace; its id follows the scenario loader's scheme (stable per name)."""
        with self.world.lock:
            if not NAMESPACE_NAME.fullmatch(name):
                raise ServiceError(400, "InvalidParameter",
                                   f"NamespaceName {name!r} must be 2-120 characters of lower-case letters, "
                                   "digits and the separators '_', '-', '.', not starting or ending with a "
                                   "separator.")
            repo_type = self._repo_type(default_repo_type, "PRIVATE")
            if name in instance.namespaces:
                raise BusinessError(NAMESPACE_EXISTS, f"The namespace {name} already exists in instance "
                                                      f"{instance.instance_id}.")
            stable = hashlib.sha256(f"{instance.instance_id}/{name}".encode()).hexdigest()[:16]
            ns = Namespace(namespace_id=f"crn-{stable}", name=name, instance_id=instance.instance_id,
                           auto_create_repo=bool(auto_create_repo), default_repo_type=repo_type)
            instance.namespaces[name] = ns
            return ns

    def update_namespace(self, instance: Instance, name: str, *, auto_create_repo: bool | None = None,
                         default_repo_type: str | None = None) -> Namespace:
        """Change what is given; an omitted setting stays as it is."""
        with self.world.lock:
            ns = self.namespace(instance, name)
            repo_type = self._repo_type(default_repo_type, ns.default_repo_type)
            if auto_create_repo is not None:
                ns.auto_create_repo = auto_create_repo
            ns.default_repo_type = repo_type
            return ns

    # ---- prerequisites checked when a rule or task is created ----------------------------------------

    def _target(self, source: Instance, target_instance_id: str, target_region: str,
                target_user_id: str | None) -> tuple[Instance, bool]:
        """The target instance and whether the sync crosses accounts; refuses what the API refuses."""
        target = self.world.instances.get(target_instance_id)
        if target is None:
            raise BusinessError("INSTANCE_NOT_EXIST", f"The target instance {target_instance_id} does "
                                                      f"not exist in region {target_region}.")
        if target.region != target_region:
            raise ServiceError(400, "InvalidParameter",
                               f"The target instance {target_instance_id} is in region {target.region}, not "
                               f"TargetRegionId {target_region}.")
        if target_user_id and str(target_user_id) != target.account_id:
            raise ServiceError(400, "InvalidParameter",
                               f"TargetUserId {target_user_id} is not the account that owns the target "
                               f"instance {target_instance_id}: set TargetUserId to the target "
                               "account's UID.")
        cross = target.account_id != source.account_id
        if cross and not target_user_id:
            # Without TargetUserId the caller's account is searched, where the instance does not exist.
            raise BusinessError("INSTANCE_NOT_EXIST",
                                f"The target instance {target_instance_id} does not exist in account "
                                f"{source.account_id}; for a cross-account sync set TargetUserId to the UID "
                                "of the account that owns it.")
        if source.edition not in SOURCE_EDITIONS:
            raise ServiceError(400, "INSTANCE_SPEC_NOT_SUPPORT",
                               f"The source instance {source.instance_id} is {source.edition}; "
                               "replication needs an Enterprise_Advanced source instance. Upgrade the "
                               "instance.")
        if target.edition not in TARGET_EDITIONS:
            raise ServiceError(400, "INSTANCE_SPEC_NOT_SUPPORT",
                               f"The target instance {target_instance_id} is {target.edition}; the "
                               f"target must be one of {', '.join(TARGET_EDITIONS)}.")
        if is_restricted_region(target.region) and not is_restricted_region(source.region):
            raise ServiceError(400, "REGION_NOT_SUPPORT",
                               f"Images cannot be replicated from the public region {source.region} to the "
                               f"Finance/Gov region {target.region}.")
        return target, cross

    # ---- rules -------------------------------------------------------------------------------------

    def create_rule(self, source: Instance, *, name: str, scope: str, trigger: str, tag_filter: str,
                    target_instance_id: str, target_region: str, target_user_id: str | None = None,
                    namespace: str = "", repo: str = "", namespace_filter: str = "", repo_filter: str = "",
                    target_namespace: str = "", target_repo: str = "", priority: int = 3, link_id: str = "",
                    check_grant: bool = True, created: float | None = None) -> SyncRule:
        with self.world.lock:
            if scope not in SCOPES:
                raise ServiceError(400, "InvalidParameter", f"SyncScope {scope!r} must be one of "
                                                            f"{', '.join(SCOPES)}.")
            if trigger not in TRIGGERS:
                raise ServiceError(400, "InvalidParameter",
                                   f"SyncTrigger {trigger!r} must be one of {', '.join(TRIGGERS)}.")
            needed = {"REPO": ("NamespaceName", "RepoName", "TargetNamespaceName", "TargetRepoName"),
                      "NAMESPACE": ("NamespaceName", "TargetNamespaceName"), "INSTANCE": ()}[scope]
            given = {"NamespaceName": namespace, "RepoName": repo, "TargetNamespaceName": target_namespace,
                     "TargetRepoName": target_repo}
            missing = [n for n in needed if not given[n]]
            if missing:
                raise ServiceError(400, "MissingParameter",
                                   f"SyncScope {scope} needs {', '.join(missing)}.")
            if namespace_filter and scope != "INSTANCE":
                raise ServiceError(400, "InvalidParameter", "NamespaceNameFilter is only valid with "
                                                            "SyncScope INSTANCE.")
            if repo_filter and scope == "REPO":
                raise ServiceError(400, "InvalidParameter",
                                   "RepoNameFilter is only valid with SyncScope NAMESPACE or INSTANCE.")
            for pattern, what in ((tag_filter, "TagFilter"), (repo_filter, "RepoNameFilter"),
                                  (namespace_filter, "NamespaceNameFilter")):
                _compile(pattern, what)
            if scope in ("REPO", "NAMESPACE"):
                self.namespace(source, namespace)
            if scope == "REPO":
                self.repo_by_name(source, namespace, repo)
            target, cross = self._target(source, target_instance_id, target_region, target_user_id)
            _check_rule_keeps_names(target, scope, namespace, repo, target_namespace, target_repo)
            if cross and check_grant:
                problem = cross_account_grant_problem(self.world, source.account_id, target)
                if problem:
                    raise ServiceError(403, "NoPrivilege", f"Access denied for this user: {problem}.")
            rule = SyncRule(
                rule_id=f"crsr-{uuid.uuid4().hex[:16]}", name=name, instance_id=source.instance_id,
                region=source.region, scope=scope, trigger=trigger, tag_filter=tag_filter,
                target_instance_id=target.instance_id, target_region=target.region,
                target_account=target.account_id,
                cross_user=cross, namespace=namespace, repo=repo, namespace_filter=namespace_filter,
                repo_filter=repo_filter, target_namespace=target_namespace, target_repo=target_repo,
                priority=priority, link_id=link_id, created=self.now() if created is None else created)
            self.rules[rule.rule_id] = rule
            return rule

    def rules_of(self, instance_id: str) -> list[SyncRule]:
        return sorted((r for r in self.rules.values() if r.instance_id == instance_id),
                      key=lambda r: (r.created, r.rule_id))

    def rule(self, instance_id: str, rule_id: str) -> SyncRule:
        found = self.rules.get(rule_id)
        if found is None or found.instance_id != instance_id:
            raise BusinessError("SYNC_RULE_NOT_EXIST", f"The sync rule {rule_id} does not exist in instance "
                                                       f"{instance_id}.")
        return found

    def delete_rule(self, instance_id: str, rule_id: str) -> None:
        with self.world.lock:
            self.rule(instance_id, rule_id)
            del self.rules[rule_id]

    # ---- tasks -------------------------------------------------------------------------------------

    def _new_task(self, *, source: Instance, repo: Repo, tag: Tag, target: Instance, cross: bool,
                  target_namespace: str, target_repo: str, target_tag: str, override: bool, priority: int,
                  trigger: str, batch_id: str, rule: SyncRule | None) -> SyncTask:
        now = self.now()
        task = SyncTask(
            task_id=f"rst-{uuid.uuid4().hex[:16]}", batch_id=batch_id, rule_id=rule.rule_id if rule else "",
            rule_scope=rule.scope if rule else "", trigger=trigger, instance_id=source.instance_id,
            region=source.region, account_id=source.account_id, repo_id=repo.repo_id,
            namespace=repo.namespace,
            repo=repo.name, tag=tag.tag, digest=tag.digest, size=tag.size, source_repo_type=repo.type,
            source_tag_immutability=repo.tag_immutability, target_instance_id=target.instance_id,
            target_region=target.region, target_account=target.account_id, target_namespace=target_namespace,
            target_repo=target_repo, target_tag=target_tag, cross_user=cross, override=override,
            priority=priority, created=now, seq=next(self._seq), modified=now)
        for fault in self.faults:
            if not fault.stuck and not fault.status and fault.remaining > 0 and fault.matches(task):
                fault.remaining -= 1
                task.planned_issue = fault.issue
                break
        self.faults = [f for f in self.faults if f.stuck or f.status or f.remaining > 0]
        self.tasks[task.task_id] = task
        self._open[task.task_id] = task
        return task

    def create_task(self, source: Instance, *, repo_id: str, tag: str, target_instance_id: str,
                    target_region: str, target_namespace: str, target_repo: str, target_tag: str,
                    target_user_id: str | None = None, override: bool = False, priority: int = 3) -> SyncTask:
        """CreateRepoSyncTask: a manual (INITIATIVE) single-tag sync. A cross-account task without the grant
        is accepted and fails later, when it leaves PENDING (as the cloud reports it)."""
        with self.world.lock:
            self.settle()
            repo = self.repo_by_id(source, repo_id)
            found = self.tag(repo, tag)
            target, cross = self._target(source, target_instance_id, target_region, target_user_id)
            if (target.instance_id, target_namespace, target_repo, target_tag) == \
                    (source.instance_id, repo.namespace, repo.name, tag):
                raise ServiceError(400, "InvalidParameter", "The target image is the source image itself.")
            return self._new_task(source=source, repo=repo, tag=found, target=target, cross=cross,
                                  target_namespace=target_namespace, target_repo=target_repo,
                                  target_tag=target_tag,
                                  override=override, priority=priority, trigger="INITIATIVE",
                                  batch_id=str(uuid.uuid4()), rule=None)

    def create_task_by_rule(self, source: Instance, *, repo_id: str, rule_id: str, tag: str,
                            priority: int | None = None) -> SyncTask:
        """CreateRepoSyncTaskByRule: only for manual (INITIATIVE) rules, for an image the rule covers."""
        with self.world.lock:
            self.settle()
            rule = self.rule(source.instance_id, rule_id)
            if rule.trigger != "INITIATIVE":
                raise ServiceError(400, "InvalidParameter",
                                   f"The sync rule {rule_id} is {rule.trigger}; CreateRepoSyncTaskByRule "
                                   "works only with INITIATIVE (manual) rules.")
            repo = self.repo_by_id(source, repo_id)
            found = self.tag(repo, tag)
            if not rule.covers(repo.namespace, repo.name, tag):
                raise ServiceError(400, "InvalidParameter",
                                   f"The sync rule {rule_id} does not cover "
                                   f"{repo.namespace}/{repo.name}:{tag} (check its scope, RepoNameFilter and "
                                   "TagFilter).")
            target = self.world.instances[rule.target_instance_id]
            ns, name = rule.target_path(repo.namespace, repo.name)
            return self._new_task(source=source, repo=repo, tag=found, target=target, cross=rule.cross_user,
                                  target_namespace=ns, target_repo=name, target_tag=tag, override=True,
                                  priority=priority or rule.priority, trigger="INITIATIVE",
                                  batch_id=str(uuid.uuid4()), rule=rule)

    def task(self, instance_id: str, task_id: str) -> SyncTask:
        with self.world.lock:
            self.settle()
            found = self.tasks.get(task_id)
            if found is None or found.instance_id != instance_id:
                raise BusinessError("SYNC_TASK_NOT_EXIST", f"The sync task {task_id} does not exist in "
                                                           f"instance {instance_id}.")
            return found

    def tasks_of(self, instance_id: str, *, namespace: str | None = None, repo: str | None = None,
                 tag: str | None = None, batch_id: str | None = None) -> list[SyncTask]:
        """Tasks whose source is ``instance_id``, newest first."""
        with self.world.lock:
            self.settle()
            out = [t for t in self.tasks.values() if t.instance_id == instance_id
                   and (not namespace or t.namespace == namespace) and (not repo or t.repo == repo)
                   and (not tag or t.tag == tag) and (not batch_id or t.batch_id == batch_id)]
            return sorted(out, key=lambda t: (t.created, t.seq), reverse=True)

    def cancel_task(self, instance_id: str, task_id: str) -> SyncTask:
        with self.world.lock:
            task = self.task(instance_id, task_id)
            if task.status not in OPEN_STATUSES:
                raise BusinessError("SYNC_TASK_STATUS_INVALID",
                                    f"The sync task {task_id} is {task.status}; only PENDING or "
                                    "SYNCHRONIZING tasks can be canceled.")
            task.status = CANCELED
            task.modified = self.now()
            return task

    # ---- the clock ---------------------------------------------------------------------------------

    def settle(self, now: float | None = None) -> None:
        """Bring every open task up to ``now``: PENDING for ``pending_seconds``, SYNCHRONIZING for
        ``synchronizing_seconds``, then SUCCESS or ERROR. Runs before every read and on clock advance."""
        with self.world.lock:
            now = self.now() if now is None else now
            for task in list(self._open.values()):
                if task.status in OPEN_STATUSES:
                    self._advance(task, now)
                if task.status not in OPEN_STATUSES:
                    del self._open[task.task_id]

    def _advance(self, task: SyncTask, now: float) -> None:
        started = task.created + self.pending_seconds
        finished = started + self.synchronizing_seconds
        if task.status == PENDING and now >= started:
            if task.cross_user:
                target = self.world.instances.get(task.target_instance_id)
                problem = cross_account_grant_problem(self.world, task.account_id, target) if target else \
                    f"the target instance {task.target_instance_id} no longer exists"
                if problem:
                    self._fail(task, ISSUE_CROSS_ACCOUNT, problem, started)
                    return
            task.status = SYNCHRONIZING
            task.modified = started
        if task.status == SYNCHRONIZING:
            odd = next((f.status for f in self.faults if f.status and f.matches(task)), None)
            if odd:
                task.status = odd      # an undocumented status: the task is no longer moved by the clock
                return
        if task.status == SYNCHRONIZING and now >= finished:
            if any(f.stuck and f.matches(task) for f in self.faults):
                return
            if task.planned_issue:
                self._fail(task, task.planned_issue, "injected by /_localcloud/acr/task-faults", finished)
                return
            issue, detail = self._deliver(task, finished)
            if issue:
                self._fail(task, issue, detail, finished)
                return
            task.status = SUCCESS
            task.modified = finished
            task.synced_size = task.size
            source = self.world.instances.get(task.instance_id)
            if source is not None:
                self.world.emit(events.synchronization_completed(task=task,
                                                                 source_instance=source, now=finished))

    @staticmethod
    def _fail(task: SyncTask, issue: str, detail: str, when: float) -> None:
        task.status = ERROR
        task.issue = issue
        task.detail = detail
        task.modified = when

    def _deliver(self, task: SyncTask, when: float) -> tuple[str, str]:
        """Write the image into the target, or say (TaskIssue, why) it cannot be written."""
        target = self.world.instances.get(task.target_instance_id)
        where = f"{task.target_instance_id}/{task.target_namespace}"
        if target is None or task.target_namespace not in target.namespaces:
            return ISSUE_NAMESPACE, f"the target namespace {where} does not exist"
        ns = target.namespaces[task.target_namespace]
        repo = ns.repos.get(task.target_repo)
        if repo is None and not ns.auto_create_repo:
            return ISSUE_REPO, (f"the target repository {where}/{task.target_repo} does not exist and the "
                                "namespace does not create repositories automatically (AutoCreateRepo)")
        if repo is not None:
            if task.rule_scope == "REPO" and (repo.type, repo.tag_immutability) != \
                    (task.source_repo_type, task.source_tag_immutability):
                return ISSUE_REPO_CONFIG, (
                    f"the target repository {where}/{repo.name} is {repo.type} with tag immutability "
                    f"{repo.tag_immutability}, the source is {task.source_repo_type} with "
                    f"{task.source_tag_immutability}: repository-level sync needs the same configuration")
            existing = repo.tags.get(task.target_tag)
            if existing is not None and existing.digest != task.digest:
                if repo.tag_immutability:
                    return ISSUE_TAG_IMMUTABLE, (f"tag {task.target_tag} already exists in the immutable "
                                                 f"repository {where}/{repo.name} with another digest")
                if not task.override:
                    return ISSUE_TAG_CONFLICT, (f"tag {task.target_tag} already exists in "
                                                f"{where}/{repo.name} with another digest and Override "
                                                "is false")
        if repo is None:
            repo = self._new_repo(target, ns, task.target_repo, repo_type=task.source_repo_type, when=when)
        self._put_tag(repo, task.target_tag, task.digest, task.size, when)
        return "", ""

    # ---- images ------------------------------------------------------------------------------------

    @staticmethod
    def _new_repo(instance: Instance, ns: Namespace, name: str, *, repo_type: str, when: float) -> Repo:
        # Same id scheme as the scenario loader: a repository has one id however it came to exist.
        stable = hashlib.sha256(f"{instance.instance_id}/{ns.name}/{name}".encode()).hexdigest()[:16]
        repo = Repo(repo_id=f"crr-{stable}", name=name, namespace=ns.name,
                    instance_id=instance.instance_id, type=repo_type, build_type="AUTO",
                    created_ms=_ms(when), modified_ms=_ms(when))
        ns.repos[name] = repo
        return repo

    @staticmethod
    def _put_tag(repo: Repo, tag: str, digest: str, size: int, when: float) -> Tag:
        old = repo.tags.get(tag)
        repo.tags[tag] = Tag(tag=tag, digest=digest, image_id=_hex("image", digest), size=size,
                             created_ms=old.created_ms if old else _ms(when), updated_ms=_ms(when))
        repo.modified_ms = _ms(when)
        return repo.tags[tag]

    def push(self, instance_id: str, namespace: str, repo: str, tag: str, digest: str | None = None) -> dict:
        """An image push: create or move the tag, fire the PASSIVE rules that cover it, emit PushCompleted.
        A repository is created only if the namespace has AutoCreateRepo (as a docker push would)."""
        with self.world.lock:
            self.settle()
            now = self.now()
            inst = self.world.instances.get(instance_id)
            if inst is None:
                raise ServiceError(404, "INSTANCE_NOT_EXIST", f"The instance {instance_id} does not exist.")
            ns = inst.namespaces.get(namespace)
            if ns is None:
                raise ServiceError(404, "NAMESPACE_NOT_EXIST",
                                   f"The namespace {namespace} does not exist in instance {instance_id}: "
                                   "create it first (scenario 'namespaces').")
            target_repo = ns.repos.get(repo)
            if target_repo is None:
                if not ns.auto_create_repo:
                    raise ServiceError(404, "REPO_NOT_EXIST",
                                       f"The repository {namespace}/{repo} does not exist in instance "
                                       f"{instance_id} and the namespace does not create repositories on "
                                       "push: create the repository or set auto_create_repo on the "
                                       "namespace.")
                target_repo = self._new_repo(inst, ns, repo, repo_type=ns.default_repo_type, when=now)
            bare = _strip_digest(digest) if digest else _hex("push", instance_id, namespace, repo, tag, now)
            size = 1_000_000 + int(bare[:6], 16) % 50_000_000
            pushed = self._put_tag(target_repo, tag, bare, size, now)
            batch_id = str(uuid.uuid4())
            created = []
            for rule in self.rules_of(instance_id):
                if rule.trigger == "PASSIVE" and rule.created <= now and rule.covers(namespace, repo, tag):
                    target = self.world.instances.get(rule.target_instance_id)
                    if target is None:
                        continue
                    tns, tname = rule.target_path(namespace, repo)
                    task = self._new_task(source=inst, repo=target_repo, tag=pushed, target=target,
                                          cross=rule.cross_user, target_namespace=tns, target_repo=tname,
                                          target_tag=tag, override=True, priority=rule.priority,
                                          trigger="PASSIVE", batch_id=batch_id, rule=rule)
                    created.append(task.task_id)
            event = events.push_completed(instance=inst, repo=target_repo, tag=tag, digest=bare, now=now)
            self.world.emit(event)
            return {"event": event, "tasks": created}

    def delete_tag(self, instance_id: str, namespace: str, repo: str, tag: str) -> None:
        with self.world.lock:
            inst = self.instance(instance_id)
            found = self.repo_by_name(inst, namespace, repo)
            self.tag(found, tag)
            del found.tags[tag]
            found.modified_ms = _ms(self.now())


# ---- scenario --------------------------------------------------------------------------------------

RULE_KEYS = ("name", "scope", "trigger", "namespace", "repo", "namespace_filter", "repo_filter", "tag_filter",
             "target_instance", "target_region", "target_namespace", "target_repo", "target_account",
             "priority",
             "id")


def _instance_id(entry: dict) -> str:
    for key in ("id", "instance_id", "InstanceId"):
        if entry.get(key):
            return str(entry[key])
    raise ValueError(f"scenario instance {entry!r} has no 'id'")


KEEP_NAMES_SOURCE = ("https://www.alibabacloud.com/help/en/acr/user-guide/"
                     "replicate-images-between-instances-in-the-same-account")


def _check_rule_keeps_names(target: Instance, scope: str, namespace: str, repo: str, target_namespace: str,
                            target_repo: str) -> None:
    """Sync rules keep names (KEEP_NAMES_SOURCE): by namespace, the target needs a namespace of the same name
    that creates repositories automatically; by repository, the same namespace and an existing repository of
    the same name. A rule that renames is refused; manual tasks (CreateRepoSyncTask) may still rename.
    The error code is not documented (UNVERIFIED): 400 InvalidParameter, with the reason."""
    def refuse(why: str) -> ServiceError:
        return ServiceError(400, "InvalidParameter", f"A sync rule keeps names: {why} ({KEEP_NAMES_SOURCE}).")

    if scope == "INSTANCE":
        return
    if target_namespace != namespace:
        raise refuse(f"TargetNamespaceName {target_namespace!r} differs from NamespaceName {namespace!r}")
    if scope == "REPO" and target_repo != repo:
        raise refuse(f"TargetRepoName {target_repo!r} differs from RepoName {repo!r}")
    ns = target.namespaces.get(namespace)
    if ns is None:
        raise refuse(f"the target instance {target.instance_id} has no namespace {namespace!r}")
    if scope == "NAMESPACE" and not ns.auto_create_repo:
        raise refuse(f"namespace {namespace!r} of {target.instance_id} does not create repositories "
                     "automatically (turn on AutoCreateRepo)")
    if scope == "REPO" and repo not in ns.repos:
        raise refuse(f"the target instance {target.instance_id} has no repository {namespace}/{repo}")


def install(world: World, scenario_doc: dict) -> None:
    """Attach the ACR backend to a built world: ``settings.sync`` timings and every
    ``instances[*].sync_rules`` entry as an existing rule, created at the scenario's start (so before any
    pushed tag).

    Scenario rules describe what already exists in the cloud: their shape is checked, the cross-account grant
    is not (a rule whose grant was removed later fails its tasks, as in the cloud)."""
    doc = scenario_doc or {}
    sync = (doc.get("settings") or {}).get("sync") or {}
    backend = AcrBackend(world, pending_seconds=float(sync.get("pending_seconds", DEFAULT_PENDING_SECONDS)),
                         synchronizing_seconds=float(sync.get("synchronizing_seconds",
                                                              DEFAULT_SYNCHRONIZING_SECONDS)))
    world.backends["acr"] = backend
    # A second before the start, whole: event times have second precision (the documented sample), so a
    # push in the scenario's first second must still come after the rules that "already exist".
    start = float(math.floor(world.clock.now()) - 1)
    for entry in doc.get("instances") or []:
        source_id = _instance_id(entry)
        for i, spec in enumerate(entry.get("sync_rules") or []):
            where = f"instances[{source_id}].sync_rules[{i}]"
            unknown = sorted(set(spec) - set(RULE_KEYS))
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                                 f"{', '.join(RULE_KEYS)}")
            if not spec.get("target_instance"):
                raise ValueError(f"{where}: 'target_instance' is required")
            source = world.instances.get(source_id)
            target = world.instances.get(str(spec["target_instance"]))
            if source is None or target is None:
                raise ValueError(f"{where}: instance "
                                 f"{source_id if source is None else spec['target_instance']} is not defined "
                                 "in the scenario")
            try:
                rule = backend.create_rule(
                    source, name=str(spec.get("name") or f"rule-{i + 1}"),
                    scope=str(spec.get("scope", "REPO")),
                    trigger=str(spec.get("trigger", "PASSIVE")), tag_filter=str(spec.get("tag_filter", ".*")),
                    target_instance_id=target.instance_id,
                    target_region=str(spec.get("target_region") or target.region),
                    target_user_id=str(spec.get("target_account") or target.account_id),
                    namespace=str(spec.get("namespace") or ""), repo=str(spec.get("repo") or ""),
                    namespace_filter=str(spec.get("namespace_filter") or ""),
                    repo_filter=str(spec.get("repo_filter") or ""),
                    target_namespace=str(spec.get("target_namespace") or ""),
                    target_repo=str(spec.get("target_repo") or ""), priority=int(spec.get("priority", 3)),
                    check_grant=False, created=start)
            except (ServiceError, BusinessError) as exc:
                raise ValueError(f"{where}: {exc}") from None
            if spec.get("id"):
                del backend.rules[rule.rule_id]
                rule.rule_id = str(spec["id"])
                backend.rules[rule.rule_id] = rule


def backend_of(world: World) -> AcrBackend:
    """The world's ACR backend (an empty one if the scenario loader did not install it)."""
    with world.lock:
        found: Any = world.backends.get("acr")
        if found is None:
            found = world.backends["acr"] = AcrBackend(world)
        return found
