"""ACR Enterprise Edition (cr 2018-12-01) adapter: typed calls returning acrsync.model objects.

Replies are read by wire name (``body.to_map()``), so the parsing matches the API reference's field names
(https://www.alibabacloud.com/help/en/acr/developer-reference/api-cr-2018-12-01-dir) field for
field: string ``TotalCount``s, ListRepoSyncTask's misspelt ``ModifedTime``, ``Progress`` 0/1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alibabacloud_cr20181201 import models as m

from acrsync.cloud.clients import Adapter, request
from acrsync.cloud.errors import CloudError, NotFound
from acrsync.model import (
    ImageSide,
    InstanceInfo,
    NamespaceInfo,
    RepoInfo,
    SyncRule,
    SyncTask,
    TagInfo,
)

PAGE_SIZE = 100            # ListRepository / ListRepoTag documented maximum
INSTANCE_PAGE_SIZE = 30    # ListInstance's default; its maximum is not documented


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _instance(d: dict[str, Any], instance_id: str = "") -> InstanceInfo:
    return InstanceInfo(instance_id=d.get("InstanceId") or instance_id, name=d.get("InstanceName") or "",
                        edition=d.get("InstanceSpecification") or "", status=d.get("InstanceStatus") or "",
                        region=d.get("RegionId") or None)


def _namespace(d: dict[str, Any], instance_id: str) -> NamespaceInfo:
    return NamespaceInfo(instance_id=d.get("InstanceId") or instance_id, name=d.get("NamespaceName") or "",
                         namespace_id=d.get("NamespaceId") or "",
                         auto_create_repo=bool(d.get("AutoCreateRepo")),
                         default_repo_type=d.get("DefaultRepoType") or None,
                         status=d.get("NamespaceStatus") or "NORMAL")


def _repo(d: dict[str, Any], instance_id: str) -> RepoInfo:
    return RepoInfo(instance_id=d.get("InstanceId") or instance_id, repo_id=d.get("RepoId") or "",
                    namespace=d.get("RepoNamespaceName") or "", name=d.get("RepoName") or "",
                    type=d.get("RepoType") or "PRIVATE", tag_immutability=bool(d.get("TagImmutability")),
                    status=d.get("RepoStatus") or "NORMAL")


def _tag(d: dict[str, Any]) -> TagInfo:
    return TagInfo(tag=d.get("Tag") or "", digest=d.get("Digest") or "", image_id=d.get("ImageId") or "",
                   size=_int(d.get("ImageSize")), updated_ms=_int(d.get("ImageUpdate")),
                   status=d.get("Status") or "NORMAL")


def _side(d: dict[str, Any] | None) -> ImageSide:
    d = d or {}
    return ImageSide(instance_id=d.get("InstanceId") or "", region=d.get("RegionId") or "",
                     namespace=d.get("RepoNamespaceName") or "", repo=d.get("RepoName") or "",
                     tag=d.get("ImageTag") or "")


def _task(d: dict[str, Any]) -> SyncTask:
    progress = d.get("Progress")
    synced = d.get("SyncedSize")
    return SyncTask(task_id=d.get("SyncTaskId") or "", batch_id=d.get("SyncBatchTaskId") or None,
                    rule_id=d.get("SyncRuleId") or None, status=d.get("TaskStatus") or "",
                    trigger=d.get("TaskTrigger") or None, issue=d.get("TaskIssue") or None,
                    cross_user=bool(d.get("CrossUser")),
                    progress=_int(progress) if progress is not None else None,
                    synced_size=_int(synced) if synced is not None else None,
                    source=_side(d.get("ImageFrom")), target=_side(d.get("ImageTo")),
                    created_ms=_int(d.get("CreateTime")),
                    modified_ms=_int(d.get("ModifiedTime") or d.get("ModifedTime")))


def _rule(d: dict[str, Any], instance_id: str) -> SyncRule:
    return SyncRule(rule_id=d.get("SyncRuleId") or "", name=d.get("SyncRuleName") or "",
                    scope=d.get("SyncScope") or "", trigger=d.get("SyncTrigger") or "PASSIVE",
                    direction=d.get("SyncDirection") or "FROM",
                    local_instance_id=d.get("LocalInstanceId") or instance_id,
                    local_region=d.get("LocalRegionId") or "",
                    local_namespace=d.get("LocalNamespaceName") or None,
                    local_repo=d.get("LocalRepoName") or None,
                    namespace_filter=d.get("NamespaceNameFilter") or None,
                    repo_filter=d.get("RepoNameFilter") or None, tag_filter=d.get("TagFilter") or ".*",
                    target_instance_id=d.get("TargetInstanceId") or "",
                    target_region=d.get("TargetRegionId") or "",
                    target_namespace=d.get("TargetNamespaceName") or None,
                    target_repo=d.get("TargetRepoName") or None, cross_user=bool(d.get("CrossUser")),
                    create_time_ms=_int(d.get("CreateTime")))


def more_pages(seen: int, page_len: int, page_size: int, total: Any) -> bool:
    """Public name of the paging rule (``_more``) for callers that page themselves."""
    return _more(seen, page_len, page_size, total)


def _more(seen: int, page_len: int, page_size: int, total: Any) -> bool:
    """Another page? Trust TotalCount when given (often a string), else a full page means maybe."""
    if page_len == 0:
        return False
    t = _int(total, -1)
    return seen < t if t >= 0 else page_len >= page_size


class Acr(Adapter):
    """One region's ACR endpoint, signing as the session's keys (or ``role_arn``'s)."""

    service = "cr"

    # ---- instances, namespaces, repositories, tags ----------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceInfo:
        d = self._body("get_instance", request(m.GetInstanceRequest, InstanceId=instance_id))
        return _instance(d, instance_id)

    def list_instances(self) -> list[InstanceInfo]:
        out: list[InstanceInfo] = []
        page = 1
        while True:
            d = self._body("list_instance", request(m.ListInstanceRequest, PageNo=page,
                                                        PageSize=INSTANCE_PAGE_SIZE))
            items = d.get("Instances") or []
            out.extend(_instance(i) for i in items)
            if not _more(len(out), len(items), INSTANCE_PAGE_SIZE, d.get("TotalCount")):
                return out
            page += 1

    def get_namespace(self, instance_id: str, name: str) -> NamespaceInfo | None:
        try:
            d = self._body("get_namespace", request(m.GetNamespaceRequest, InstanceId=instance_id,
                                                        NamespaceName=name))
        except NotFound as e:
            if e.service != self.service:     # e.g. STS: the role could not be assumed
                raise
            return None
        return _namespace(d, instance_id)

    def list_namespaces(self, instance_id: str) -> list[NamespaceInfo]:
        out: list[NamespaceInfo] = []
        page = 1
        while True:
            d = self._body("list_namespace", request(m.ListNamespaceRequest, InstanceId=instance_id,
                                                         PageNo=page, PageSize=PAGE_SIZE))
            items = d.get("Namespaces") or []
            out.extend(_namespace(i, instance_id) for i in items)
            if not _more(len(out), len(items), PAGE_SIZE, d.get("TotalCount")):
                return out
            page += 1

    def create_namespace(self, instance_id: str, name: str, *, auto_create_repo: bool,
                         default_repo_type: str | None = None) -> None:
        """Create a namespace (`grants apply`, as the target account's administrator).

        Booleans go on the wire as ``true``/``false``, as the API reference and the aliyun CLI write them:
        the SDK would send Python's ``True``/``False``, whose acceptance no document confirms.
        """
        self._body("create_namespace", request(
            m.CreateNamespaceRequest, InstanceId=instance_id, NamespaceName=name,
            AutoCreateRepo=_wire_bool(auto_create_repo), DefaultRepoType=default_repo_type))

    def update_namespace(self, instance_id: str, name: str, *, auto_create_repo: bool | None = None,
                         default_repo_type: str | None = None) -> None:
        """Change a namespace's automatic repository creation and default repository type
        (None: unchanged)."""
        self._body("update_namespace", request(
            m.UpdateNamespaceRequest, InstanceId=instance_id, NamespaceName=name,
            AutoCreateRepo=None if auto_create_repo is None else _wire_bool(auto_create_repo),
            DefaultRepoType=default_repo_type))

    def get_repository(self, instance_id: str, namespace: str, repo: str) -> RepoInfo | None:
        try:
            d = self._body("get_repository", request(m.GetRepositoryRequest, InstanceId=instance_id,
                                                         RepoNamespaceName=namespace, RepoName=repo))
        except NotFound as e:
            if e.service != self.service:     # e.g. STS: the role could not be assumed
                raise
            return None
        return _repo(d, instance_id)

    def list_repositories(self, instance_id: str, namespace: str | None = None) -> Iterator[RepoInfo]:
        seen = 0
        page = 1
        while True:
            d = self._body("list_repository", request(
                m.ListRepositoryRequest, InstanceId=instance_id, RepoNamespaceName=namespace,
                RepoStatus="NORMAL", PageNo=page, PageSize=PAGE_SIZE))
            items = d.get("Repositories") or []
            for i in items:
                yield _repo(i, instance_id)
            seen += len(items)
            if not _more(seen, len(items), PAGE_SIZE, d.get("TotalCount")):
                return
            page += 1

    def get_repo_tag(self, instance_id: str, repo_id: str, tag: str) -> TagInfo | None:
        try:
            d = self._body("get_repo_tag", request(m.GetRepoTagRequest, InstanceId=instance_id,
                                                       RepoId=repo_id, Tag=tag))
        except NotFound as e:
            if e.service != self.service:     # e.g. STS: the role could not be assumed
                raise
            return None
        return _tag(d)

    def list_repository_page(self, instance_id: str, page_no: int, *, namespace: str | None = None,
                             page_size: int = PAGE_SIZE) -> tuple[list[RepoInfo], int]:
        """One ListRepository page and the TotalCount (-1 when absent), for callers that pace their pages."""
        d = self._body("list_repository", request(
            m.ListRepositoryRequest, InstanceId=instance_id, RepoNamespaceName=namespace,
            RepoStatus="NORMAL", PageNo=page_no, PageSize=page_size))
        return [_repo(i, instance_id) for i in d.get("Repositories") or []], _int(d.get("TotalCount"), -1)

    def list_repo_tag_page(self, instance_id: str, repo_id: str, page_no: int, *,
                           page_size: int = PAGE_SIZE) -> tuple[list[TagInfo], int]:
        """One ListRepoTag page and the TotalCount (-1 when absent), for callers that pace their pages."""
        d = self._body("list_repo_tag", request(m.ListRepoTagRequest, InstanceId=instance_id, RepoId=repo_id,
                                                    PageNo=page_no, PageSize=page_size))
        return [_tag(i) for i in d.get("Images") or []], _int(d.get("TotalCount"), -1)

    def list_repo_tags(self, instance_id: str, repo_id: str) -> Iterator[TagInfo]:
        seen = 0
        page = 1
        while True:
            d = self._body("list_repo_tag", request(m.ListRepoTagRequest, InstanceId=instance_id,
                                                        RepoId=repo_id, PageNo=page, PageSize=PAGE_SIZE))
            items = d.get("Images") or []
            for i in items:
                yield _tag(i)
            seen += len(items)
            if not _more(seen, len(items), PAGE_SIZE, d.get("TotalCount")):
                return
            page += 1

    # ---- sync tasks ------------------------------------------------------------------------------

    def create_repo_sync_task(self, instance_id: str, repo_id: str, tag: str, *, target_region: str,
                              target_instance_id: str, target_namespace: str, target_repo: str,
                              target_tag: str, target_user_id: str | None = None, override: bool = False,
                              priority: int | None = None) -> str:
        """Start a manual single-tag sync; returns the SyncTaskId.

        ``Override`` is sent only when True: the SDK would serialise a Python bool as "True"/"False",
        and no document says the service accepts that casing; absent means false.
        """
        d = self._body("create_repo_sync_task", request(
            m.CreateRepoSyncTaskRequest, InstanceId=instance_id, RepoId=repo_id, Tag=tag,
            TargetRegionId=target_region, TargetInstanceId=target_instance_id,
            TargetNamespace=target_namespace, TargetRepoName=target_repo, TargetTag=target_tag,
            TargetUserId=target_user_id, Override=True if override else None, Priority=priority))
        return _task_id(d, "CreateRepoSyncTask")

    def get_repo_sync_task(self, instance_id: str, task_id: str) -> SyncTask:
        d = self._body("get_repo_sync_task", request(m.GetRepoSyncTaskRequest, InstanceId=instance_id,
                                                         SyncTaskId=task_id))
        return _task(d)

    def list_repo_sync_tasks(self, instance_id: str, *, namespace: str | None = None, repo: str | None = None,
                             tag: str | None = None, sync_record_id: str | None = None, page_no: int = 1,
                             page_size: int = 100) -> tuple[list[SyncTask], int]:
        d = self._body("list_repo_sync_task", request(
            m.ListRepoSyncTaskRequest, InstanceId=instance_id, RepoNamespaceName=namespace, RepoName=repo,
            Tag=tag, SyncRecordId=sync_record_id, PageNo=page_no, PageSize=page_size))
        tasks = [_task(t) for t in d.get("SyncTasks") or []]
        return tasks, _int(d.get("TotalCount"), len(tasks))

    def iter_repo_sync_tasks(self, instance_id: str, *, namespace: str | None = None, repo: str | None = None,
                             tag: str | None = None, sync_record_id: str | None = None,
                             page_size: int = 100) -> Iterator[SyncTask]:
        page = 1
        seen = 0
        while True:
            tasks, total = self.list_repo_sync_tasks(instance_id, namespace=namespace, repo=repo, tag=tag,
                                                     sync_record_id=sync_record_id, page_no=page,
                                                     page_size=page_size)
            yield from tasks
            seen += len(tasks)
            if not _more(seen, len(tasks), page_size, total):
                return
            page += 1

    def cancel_repo_sync_task(self, instance_id: str, task_id: str) -> None:
        self._body("cancel_repo_sync_task", request(m.CancelRepoSyncTaskRequest, InstanceId=instance_id,
                                                        SyncTaskId=task_id))

    # ---- sync rules ------------------------------------------------------------------------------

    def create_repo_sync_rule(self, instance_id: str, *, name: str, scope: str, tag_filter: str,
                              target_region: str, target_instance_id: str, namespace: str | None = None,
                              repo: str | None = None, namespace_filter: str | None = None,
                              repo_filter: str | None = None, target_namespace: str | None = None,
                              target_repo: str | None = None, target_user_id: str | None = None,
                              trigger: str = "PASSIVE") -> str:
        d = self._body("create_repo_sync_rule", request(
            m.CreateRepoSyncRuleRequest, InstanceId=instance_id, SyncRuleName=name, SyncScope=scope,
            TagFilter=tag_filter, TargetRegionId=target_region, TargetInstanceId=target_instance_id,
            NamespaceName=namespace, RepoName=repo, NamespaceNameFilter=namespace_filter,
            RepoNameFilter=repo_filter, TargetNamespaceName=target_namespace, TargetRepoName=target_repo,
            TargetUserId=target_user_id, SyncTrigger=trigger))
        rule_id: str | None = d.get("SyncRuleId")
        if not rule_id:
            raise _missing(d, "CreateRepoSyncRule", "SyncRuleId")
        return rule_id

    def list_repo_sync_rules(self, instance_id: str, *, namespace: str | None = None, repo: str | None = None,
                             target_instance_id: str | None = None,
                             target_region: str | None = None) -> list[SyncRule]:
        out: list[SyncRule] = []
        page = 1
        while True:
            d = self._body("list_repo_sync_rule", request(
                m.ListRepoSyncRuleRequest, InstanceId=instance_id, NamespaceName=namespace, RepoName=repo,
                TargetInstanceId=target_instance_id, TargetRegionId=target_region, PageNo=page,
                PageSize=PAGE_SIZE))
            items = d.get("SyncRules") or []
            out.extend(_rule(r, instance_id) for r in items)
            if not _more(len(out), len(items), PAGE_SIZE, d.get("TotalCount")):
                return out
            page += 1

    def delete_repo_sync_rule(self, instance_id: str, rule_id: str) -> None:
        self._body("delete_repo_sync_rule", request(m.DeleteRepoSyncRuleRequest, InstanceId=instance_id,
                                                        SyncRuleId=rule_id))

    def create_repo_sync_task_by_rule(self, instance_id: str, repo_id: str, rule_id: str, tag: str) -> str:
        d = self._body("create_repo_sync_task_by_rule", request(
            m.CreateRepoSyncTaskByRuleRequest, InstanceId=instance_id, RepoId=repo_id, SyncRuleId=rule_id,
            Tag=tag))
        return _task_id(d, "CreateRepoSyncTaskByRule")


def _wire_bool(value: bool) -> str:
    return "true" if value else "false"


def _missing(d: dict[str, Any], action: str, field: str) -> CloudError:
    return CloudError(f"the reply has no {field}; body keys: {sorted(d)}", service="cr", action=action,
                      code="InvalidResponse", request_id=d.get("RequestId"))


def _task_id(d: dict[str, Any], action: str) -> str:
    task_id: str | None = d.get("SyncTaskId")
    if not task_id:
        raise _missing(d, action, "SyncTaskId")
    return task_id
