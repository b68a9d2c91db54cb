"""Container Registry 2018-12-01 over RPC: parameters in, reply bodies out (moto's ``responses``).

Reply shapes follow the SDK models of ``alibabacloud_cr20181201`` 2.2.5, quirks included: string
``TotalCount`` on ListNamespace/ListRepository/ListRepoTag/ListRepoSyncTask, int on ListInstance and
ListRepoSyncRule; both ``ModifedTime`` (sic) and ``ModifiedTime`` on ListRepoSyncTask items; string times on
ListInstance and ListRepoTag, int elsewhere (epoch milliseconds). Business refusals ("does not exist") are
HTTP 200 with
``IsSuccess: false``; parameter and permission errors are HTTP 4xx.
"""

from __future__ import annotations

from collections.abc import Callable

from localcloud.acr.models import (
    AcrBackend,
    BusinessError,
    SyncRule,
    SyncTask,
    backend_of,
    instance_arn,
    repository_arn,
)
from localcloud.service import Handler, RequestContext, ServiceError, bool_param
from localcloud.service import required_param as _required
from localcloud.state import Instance, Namespace, Repo, Tag

ACTIONS: dict[str, Handler] = {}

DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 100


def _action(name: str) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Register ``fn(ctx, params, backend) -> fields`` as the handler of ``name``; wrap the common fields."""

    def register(fn: Callable[..., dict]) -> Callable[..., dict]:
        def handler(ctx: RequestContext, params: dict[str, str]) -> dict:
            backend = backend_of(ctx.world)
            try:
                with ctx.world.lock:
                    backend.settle(ctx.now)
                    fields = fn(ctx, params, backend)
            except BusinessError as exc:
                return {"Code": exc.code, "IsSuccess": False, "RequestId": ctx.request_id,
                        "Message": exc.message}
            return {"Code": "success", "IsSuccess": True, "RequestId": ctx.request_id, **fields}

        handler.__name__ = handler.__qualname__ = name
        handler.__doc__ = fn.__doc__
        ACTIONS[name] = handler
        return fn

    return register


# ---- parameters ------------------------------------------------------------------------------------

def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(400, "InvalidParameter", f"The parameter {name} must be an integer, not "
                                                    f"{raw!r}.") \
            from None
    if not low <= value <= high:
        raise ServiceError(400, "InvalidParameter", f"The parameter {name} must be between {low} and {high}, "
                                                    f"not {value}.")
    return value


def _paged(params: dict[str, str], items: list) -> tuple[list, dict]:
    """PageNo/PageSize paging (defaults 1/30, PageSize at most 100)."""
    page_no = _int(params, "PageNo", 1, 1, 1_000_000)
    page_size = _int(params, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    start = (page_no - 1) * page_size
    return items[start:start + page_size], {"PageNo": page_no, "PageSize": page_size}


def _token_paged(params: dict[str, str], items: list) -> tuple[list, dict]:
    """``MaxResults`` + ``NextToken`` take priority over PageNo/PageSize when given."""
    if not params.get("MaxResults"):
        return _paged(params, items)
    size = _int(params, "MaxResults", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    token = params.get("NextToken") or "0"
    if not token.isdigit():
        raise ServiceError(400, "InvalidParameter", f"NextToken {token!r} was not issued by this service.")
    start = int(token)
    end = start + size
    return items[start:end], {"MaxResults": size, "NextToken": str(end) if end < len(items) else ""}


def _region_hint(ctx: RequestContext) -> str:
    return str(getattr(ctx, "region", "") or "*")


ALL_RESOURCES = "*"
INSTANCE, REPOSITORY = "instance", "repository"


def _instance(ctx: RequestContext, backend: AcrBackend, params: dict[str, str], ram_action: str,
              *repo_path: str, form: str = INSTANCE) -> Instance:
    """Authorize ``ram_action`` on the resource the API reference names, then find the caller's own
    instance: another account's instance is answered as not existing.

    ``form``: ``instance`` (``instance/<id>``), ``repository`` (``repository/<id>`` plus ``repo_path``), or
    ``*`` for an action the reference lists under "All Resources": only a statement whose Resource is ``*``
    grants it, never a narrower ARN."""
    instance_id = _required(params, "InstanceId")
    found = ctx.world.instances.get(instance_id)
    account = ctx.caller.account_id
    if form == ALL_RESOURCES:
        resource = ALL_RESOURCES
    elif found is None:
        region = _region_hint(ctx)
        tail = "/".join((instance_id, *repo_path))
        resource = f"acs:cr:{region}:{account}:" + (
            f"repository/{tail}" if repo_path or form == REPOSITORY else f"instance/{instance_id}")
    elif repo_path or form == REPOSITORY:
        resource = repository_arn(found, *repo_path, account_id=account)
    else:
        resource = instance_arn(found, account_id=account)
    ctx.authorize(ram_action, resource)
    return backend.instance(instance_id, account)


def _repo_of(ctx: RequestContext, backend: AcrBackend, params: dict[str, str], ram_action: str,
             form: str = "") -> tuple[Instance, Repo]:
    """An action on one repository named by ``RepoId``: authorized on ``repository/<id>/<ns>/<repo>``, or on
    ``form`` (``repository``: ``repository/<id>``; ``*``: All Resources) where the reference says so."""
    if form:
        inst = _instance(ctx, backend, params, ram_action, form=form)
        return inst, backend.repo_by_id(inst, _required(params, "RepoId"))
    instance_id = _required(params, "InstanceId")
    repo_id = _required(params, "RepoId")
    found = ctx.world.instances.get(instance_id)
    path: tuple[str, ...] = (repo_id,)
    if found is not None and found.account_id == ctx.caller.account_id:
        try:
            repo = backend.repo_by_id(found, repo_id)
            path = (repo.namespace, repo.name)
        except BusinessError:
            pass
    inst = _instance(ctx, backend, params, ram_action, *path)
    return inst, backend.repo_by_id(inst, repo_id)


# ---- reply shapes ----------------------------------------------------------------------------------

def _instance_fields(inst: Instance) -> dict:
    return {"InstanceId": inst.instance_id, "InstanceName": inst.name or inst.instance_id,
            "InstanceSpecification": inst.edition, "InstanceStatus": inst.status, "InstanceIssue": "",
            "ResourceGroupId": "", "Tags": []}


def _namespace_fields(ns: Namespace) -> dict:
    return {"InstanceId": ns.instance_id, "NamespaceId": ns.namespace_id, "NamespaceName": ns.name,
            "NamespaceStatus": "NORMAL", "AutoCreateRepo": ns.auto_create_repo,
            "DefaultRepoType": ns.default_repo_type,
            "DefaultRepoConfiguration": {"RepoType": ns.default_repo_type, "TagImmutability": False},
            "ResourceGroupId": ""}


def _repo_fields(repo: Repo) -> dict:
    return {"InstanceId": repo.instance_id, "RepoId": repo.repo_id, "RepoName": repo.name,
            "RepoNamespaceName": repo.namespace, "RepoStatus": "NORMAL", "RepoType": repo.type,
            "RepoBuildType": repo.build_type, "Summary": repo.summary,
            "TagImmutability": repo.tag_immutability,
            "ResourceGroupId": "", "CreateTime": repo.created_ms, "ModifiedTime": repo.modified_ms}


def _tag_fields(tag: Tag, times: type) -> dict:
    return {"Tag": tag.tag, "Digest": tag.digest, "ImageId": tag.image_id, "ImageSize": tag.size,
            "ImageCreate": times(tag.created_ms), "ImageUpdate": times(tag.updated_ms), "Status": tag.status}


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def _image_sides(task: SyncTask) -> dict:
    return {
        "ImageFrom": {"InstanceId": task.instance_id, "RegionId": task.region,
                      "RepoNamespaceName": task.namespace,
                      "RepoName": task.repo, "ImageTag": task.tag},
        "ImageTo": {"InstanceId": task.target_instance_id, "RegionId": task.target_region,
                    "RepoNamespaceName": task.target_namespace, "RepoName": task.target_repo,
                    "ImageTag": task.target_tag},
    }


def _task_common(task: SyncTask) -> dict:
    out = {"SyncTaskId": task.task_id, "SyncBatchTaskId": task.batch_id, "TaskStatus": task.status,
           "TaskTrigger": task.trigger, "TaskIssue": task.issue, "CrossUser": task.cross_user,
           "SyncTransAccelerate": False, "Priority": task.priority, **_image_sides(task)}
    if task.rule_id:
        out["SyncRuleId"] = task.rule_id
    return out


def _rule_fields(rule: SyncRule) -> dict:
    """As ListRepoSyncRule gives it: no TargetUserId, only CrossUser."""
    return {"SyncRuleId": rule.rule_id, "SyncRuleName": rule.name, "SyncScope": rule.scope,
            "SyncTrigger": rule.trigger, "SyncDirection": "FROM", "TagFilter": rule.tag_filter,
            "RepoNameFilter": rule.repo_filter, "NamespaceNameFilter": rule.namespace_filter,
            "LocalInstanceId": rule.instance_id, "LocalRegionId": rule.region,
            "LocalNamespaceName": rule.namespace, "LocalRepoName": rule.repo,
            "TargetInstanceId": rule.target_instance_id, "TargetRegionId": rule.target_region,
            "TargetNamespaceName": rule.target_namespace, "TargetRepoName": rule.target_repo,
            "CrossUser": rule.cross_user, "LinkId": rule.link_id, "Priority": rule.priority,
            "CreateTime": _ms(rule.created), "ModifiedTime": _ms(rule.created)}


# ---- instances and namespaces ----------------------------------------------------------------------

@_action("GetInstance")
def get_instance(ctx, params, backend):
    inst = _instance(ctx, backend, params, "cr:GetInstance")
    return {**_instance_fields(inst), "CreateTime": inst.created_ms, "ModifiedTime": inst.created_ms}


@_action("ListInstance")
def list_instance(ctx, params, backend):
    """The caller's instances in every region (whether the cloud limits it to the endpoint's region is
    UNVERIFIED; acrsync de-duplicates by InstanceId)."""
    ctx.authorize("cr:ListInstance", f"acs:cr:{_region_hint(ctx)}:{ctx.caller.account_id}:instance/*")
    name, status = params.get("InstanceName"), params.get("InstanceStatus")
    found = sorted((i for i in ctx.world.instances.values() if i.account_id == ctx.caller.account_id
                    and (not name or i.name == name) and (not status or i.status == status)),
                   key=lambda i: (i.created_ms, i.instance_id))
    page, paging = _paged(params, found)
    return {**paging, "TotalCount": len(found), "Instances": [
        {**_instance_fields(i), "RegionId": i.region, "CreateTime": str(i.created_ms),
         "ModifiedTime": str(i.created_ms)} for i in page]}


@_action("ListNamespace")
def list_namespace(ctx, params, backend):
    # cr:ListNamespace on All Resources:
    # https://www.alibabacloud.com/help/en/acr/developer-reference/api-cr-2018-12-01-listnamespace
    inst = _instance(ctx, backend, params, "cr:ListNamespace", form=ALL_RESOURCES)
    name, status = params.get("NamespaceName"), params.get("NamespaceStatus")
    found = [ns for ns in sorted(inst.namespaces.values(), key=lambda n: n.name)
             if (not name or ns.name == name) and (not status or status == "NORMAL")]
    page, paging = _paged(params, found)
    return {**paging, "TotalCount": str(len(found)), "Namespaces": [_namespace_fields(ns) for ns in page]}


@_action("GetNamespace")
def get_namespace(ctx, params, backend):
    name, ns_id = params.get("NamespaceName"), params.get("NamespaceId")
    if not name and not ns_id:
        raise ServiceError(400, "MissingParameter", "GetNamespace needs NamespaceName or NamespaceId.")
    inst = _instance(ctx, backend, params, "cr:GetNamespace", name or ns_id)
    if name:
        return _namespace_fields(backend.namespace(inst, name))
    for ns in inst.namespaces.values():
        if ns.namespace_id == ns_id:
            return _namespace_fields(ns)
    raise BusinessError("NAMESPACE_NOT_EXIST", f"The namespace {ns_id} does not exist in instance "
                                               f"{inst.instance_id}.")


@_action("CreateNamespace")
def create_namespace(ctx, params, backend):
    """Authorized on ``repository/<id>``, the resource the API reference names for cr:CreateNamespace."""
    instance_id = _required(params, "InstanceId")
    name = _required(params, "NamespaceName")
    found = ctx.world.instances.get(instance_id)
    region = found.region if found is not None else _region_hint(ctx)
    ctx.authorize("cr:CreateNamespace", f"acs:cr:{region}:{ctx.caller.account_id}:repository/{instance_id}")
    inst = backend.instance(instance_id, ctx.caller.account_id)
    backend.create_namespace(inst, name, auto_create_repo=bool_param(params, "AutoCreateRepo"),
                             default_repo_type=params.get("DefaultRepoType"))
    return {}


@_action("UpdateNamespace")
def update_namespace(ctx, params, backend):
    """cr:UpdateNamespace on All Resources (https://www.alibabacloud.com/help/doc-detail/145287.htm, Mar 2024;
    an older page named ``repository/<id>/<ns>``, which acrsync's generated policies grant as well)."""
    name = _required(params, "NamespaceName")
    inst = _instance(ctx, backend, params, "cr:UpdateNamespace", form=ALL_RESOURCES)
    backend.update_namespace(inst, name, auto_create_repo=bool_param(params, "AutoCreateRepo"),
                             default_repo_type=params.get("DefaultRepoType"))
    return {}


# ---- repositories and tags -------------------------------------------------------------------------

@_action("ListRepository")
def list_repository(ctx, params, backend):
    ns_name, repo_name = params.get("RepoNamespaceName"), params.get("RepoName")
    status = params.get("RepoStatus")
    inst = _instance(ctx, backend, params, "cr:ListRepository", *((ns_name, "*") if ns_name else ("*",)))
    found = [r for ns in sorted(inst.namespaces.values(), key=lambda n: n.name)
             if not ns_name or ns.name == ns_name
             for r in sorted(ns.repos.values(), key=lambda r: r.name)
             if (not repo_name or r.name == repo_name) and (not status or status in ("ALL", "NORMAL"))]
    page, paging = _token_paged(params, found)
    return {**paging, "TotalCount": str(len(found)), "Repositories": [_repo_fields(r) for r in page]}


@_action("GetRepository")
def get_repository(ctx, params, backend):
    if params.get("RepoId"):
        inst, repo = _repo_of(ctx, backend, params, "cr:GetRepository")
    else:
        ns_name = _required(params, "RepoNamespaceName")
        repo_name = _required(params, "RepoName")
        inst = _instance(ctx, backend, params, "cr:GetRepository", ns_name, repo_name)
        repo = backend.repo_by_name(inst, ns_name, repo_name)
    return {**_repo_fields(repo), "Detail": ""}


@_action("ListRepoTag")
def list_repo_tag(ctx, params, backend):
    # cr:ListRepositoryTag on All Resources: https://www.alibabacloud.com/help/doc-detail/145295.htm
    _, repo = _repo_of(ctx, backend, params, "cr:ListRepositoryTag", ALL_RESOURCES)
    tags = sorted(repo.tags.values(), key=lambda t: (t.updated_ms, t.tag), reverse=True)
    page, paging = _token_paged(params, tags)
    return {**paging, "TotalCount": str(len(tags)), "Images": [_tag_fields(t, str) for t in page]}


@_action("GetRepoTag")
def get_repo_tag(ctx, params, backend):
    tag = _required(params, "Tag")
    # cr:ListRepositoryTag on repository/<id> (api-cr-2018-12-01-getrepotag, Dec 2024; the Apr 2024 page
    # doc-detail/371968.htm said All Resources, which acrsync's generated policies grant as well)
    _, repo = _repo_of(ctx, backend, params, "cr:ListRepositoryTag", REPOSITORY)
    return _tag_fields(backend.tag(repo, tag), int)


# ---- sync tasks ------------------------------------------------------------------------------------

def _priority(params: dict[str, str], default: int | None = 3) -> int | None:
    if not params.get("Priority"):
        return default
    return _int(params, "Priority", 3, 1, 5)


@_action("CreateRepoSyncTask")
def create_repo_sync_task(ctx, params, backend):
    fields = {name: _required(params, name) for name in ("Tag", "TargetRegionId", "TargetInstanceId",
                                                         "TargetNamespace", "TargetRepoName", "TargetTag")}
    inst, repo = _repo_of(ctx, backend, params, "cr:CreateRepositorySync")
    task = backend.create_task(
        inst, repo_id=repo.repo_id, tag=fields["Tag"], target_instance_id=fields["TargetInstanceId"],
        target_region=fields["TargetRegionId"], target_namespace=fields["TargetNamespace"],
        target_repo=fields["TargetRepoName"], target_tag=fields["TargetTag"],
        target_user_id=params.get("TargetUserId") or None,
        override=bool(bool_param(params, "Override", False)),
        priority=_priority(params))
    return {"SyncTaskId": task.task_id}


@_action("CreateRepoSyncTaskByRule")
def create_repo_sync_task_by_rule(ctx, params, backend):
    rule_id = _required(params, "SyncRuleId")
    tag = _required(params, "Tag")
    # cr:PullRepository on All Resources: https://www.alibabacloud.com/help/doc-detail/145279.htm (Mar 2024);
    # an older page named cr:CreateRepositorySync, which acrsync's generated policies grant as well
    inst, repo = _repo_of(ctx, backend, params, "cr:PullRepository", ALL_RESOURCES)
    task = backend.create_task_by_rule(inst, repo_id=repo.repo_id, rule_id=rule_id, tag=tag,
                                       priority=_priority(params, None))
    return {"SyncTaskId": task.task_id}


@_action("GetRepoSyncTask")
def get_repo_sync_task(ctx, params, backend):
    task_id = _required(params, "SyncTaskId")
    # cr:GetRepositorySync on repository/<id>: https://www.alibabacloud.com/help/doc-detail/145285.htm
    inst = _instance(ctx, backend, params, "cr:GetRepositorySync", form=REPOSITORY)
    task = backend.task(inst.instance_id, task_id)
    layer = {"SyncLayerTaskId": f"{task.task_id}-layer-1", "Digest": f"sha256:{task.digest}",
             "ArtifactDigest": f"sha256:{task.digest}", "Size": task.size, "SyncedSize": task.synced_size,
             "TaskStatus": task.status}
    return {**_task_common(task), "Progress": task.progress, "SyncedSize": task.synced_size,
            "LayerTasks": [layer]}


@_action("ListRepoSyncTask")
def list_repo_sync_task(ctx, params, backend):
    """Tasks whose source is this instance, newest first. Items carry both ``ModifedTime`` (sic) and
    ``ModifiedTime``, as the SDK model ListRepoSyncTaskResponseBodySyncTasks declares both."""
    # cr:GetRepositorySync on repository/<id>: https://www.alibabacloud.com/help/en/doc-detail/145283.htm
    inst = _instance(ctx, backend, params, "cr:GetRepositorySync", form=REPOSITORY)
    found = backend.tasks_of(inst.instance_id, namespace=params.get("RepoNamespaceName"),
                             repo=params.get("RepoName"), tag=params.get("Tag"),
                             batch_id=params.get("SyncRecordId"))
    page, paging = _paged(params, found)
    return {**paging, "TotalCount": str(len(found)), "SyncTasks": [
        {**_task_common(t), "CustomLink": False, "LinkId": "", "CreateTime": _ms(t.created),
         "ModifedTime": _ms(t.modified), "ModifiedTime": _ms(t.modified)} for t in page]}


@_action("CancelRepoSyncTask")
def cancel_repo_sync_task(ctx, params, backend):
    task_id = _required(params, "SyncTaskId")
    # cr:CancelRepoSyncTask on repository/<id> (Dec 2024):
    # https://www.alibabacloud.com/help/en/acr/developer-reference/api-cr-2018-12-01-cancelreposynctask
    inst = _instance(ctx, backend, params, "cr:CancelRepoSyncTask", form=REPOSITORY)
    backend.cancel_task(inst.instance_id, task_id)
    return {}


# ---- sync rules ------------------------------------------------------------------------------------

@_action("CreateRepoSyncRule")
def create_repo_sync_rule(ctx, params, backend):
    fields = {name: _required(params, name) for name in ("SyncRuleName", "SyncScope", "TagFilter",
                                                         "TargetRegionId", "TargetInstanceId")}
    # cr:CreateSyncRule on repository/<id> (May 2025; the Apr 2023 page doc-detail/145280.htm named
    # cr:CreateRepoSyncRule):
    # https://www.alibabacloud.com/help/en/acr/developer-reference/api-cr-2018-12-01-createreposyncrule
    inst = _instance(ctx, backend, params, "cr:CreateSyncRule", form=REPOSITORY)
    rule = backend.create_rule(
        inst, name=fields["SyncRuleName"], scope=fields["SyncScope"], trigger=params.get("SyncTrigger")
        or "PASSIVE",
        tag_filter=fields["TagFilter"], target_instance_id=fields["TargetInstanceId"],
        target_region=fields["TargetRegionId"], target_user_id=params.get("TargetUserId") or None,
        namespace=params.get("NamespaceName", ""), repo=params.get("RepoName", ""),
        namespace_filter=params.get("NamespaceNameFilter", ""), repo_filter=params.get("RepoNameFilter", ""),
        target_namespace=params.get("TargetNamespaceName", ""), target_repo=params.get("TargetRepoName", ""),
        priority=_priority(params), link_id=params.get("LinkId", ""))
    return {"SyncRuleId": rule.rule_id}


@_action("ListRepoSyncRule")
def list_repo_sync_rule(ctx, params, backend):
    """Rules whose source is this instance (``SyncDirection: FROM``)."""
    # cr:ListSyncRule on repository/<id>: https://www.alibabacloud.com/help/doc-detail/145284.htm
    inst = _instance(ctx, backend, params, "cr:ListSyncRule", form=REPOSITORY)
    want = {"namespace": params.get("NamespaceName"), "repo": params.get("RepoName"),
            "target_instance_id": params.get("TargetInstanceId"),
            "target_region": params.get("TargetRegionId")}
    found = [r for r in backend.rules_of(inst.instance_id)
             if all(not value or getattr(r, key) == value for key, value in want.items())]
    page, paging = _paged(params, found)
    return {**paging, "TotalCount": len(found), "SyncRules": [_rule_fields(r) for r in page]}


@_action("DeleteRepoSyncRule")
def delete_repo_sync_rule(ctx, params, backend):
    rule_id = _required(params, "SyncRuleId")
    inst = _instance(ctx, backend, params, "cr:DeleteSyncRule")
    backend.delete_rule(inst.instance_id, rule_id)
    return {}
