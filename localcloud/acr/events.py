"""The CloudEvents ACR publishes to EventBridge's default bus: an image push and a finished sync task.

The envelope follows the documented sample (https://www.alibabacloud.com/help/en/eventbridge/user-guide/
container-registry-events): CloudEvents 1.0 plus the ``aliyun*`` extensions, ``time`` in China Standard Time
with its offset and no fraction (``2020-11-19T21:04:41+08:00``), ``aliyunpublishtime`` in UTC without a
fraction (``2020-11-19T21:04:42Z``) and ``aliyunpublishaddr`` (a made-up private address here). The ``data``
payloads of PushCompleted and SynchronizationCompleted are UNVERIFIED (no stored sample): PascalCase keys by
analogy with BuildCompleted.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

SOURCE = "acs.cr"
PUSH_COMPLETED = "cr:Artifact:PushCompleted"
SYNCHRONIZATION_COMPLETED = "cr:Artifact:SynchronizationCompleted"


CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
PUBLISH_ADDR = "172.25.0.1"        # made up, in the documented sample's private range


def _event_time(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=CHINA_STANDARD_TIME).isoformat(timespec="seconds")


def _publish_time(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cloud_event(*, type_: str, region: str, account_id: str, subject_id: str, now: float, data: dict) -> dict:
    """One CloudEvent as EventBridge delivers it from the default bus."""
    return {
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "specversion": "1.0",
        "type": type_,
        "subject": f"acs.cr:{region}:{account_id}:{subject_id}",
        "time": _event_time(now),
        "aliyunaccountid": account_id,
        "aliyunpublishtime": _publish_time(now),
        "aliyuneventbusname": "default",
        "aliyunregionid": region,
        "aliyunpublishaddr": PUBLISH_ADDR,
        "data": data,
    }


def push_completed(*, instance, repo, tag: str, digest: str, now: float) -> dict:
    """An image (tag) was pushed to ``repo`` of ``instance`` (``localcloud.state`` objects)."""
    return cloud_event(
        type_=PUSH_COMPLETED, region=instance.region, account_id=instance.account_id,
        subject_id=repo.repo_id, now=now,
        data={
            "InstanceId": instance.instance_id,
            "InstanceName": instance.name,
            "RegionId": instance.region,
            "RepoNamespaceName": repo.namespace,
            "RepoName": repo.name,
            "RepoId": repo.repo_id,
            "Tag": tag,
            "Digest": f"sha256:{digest}",
        },
    )


def synchronization_completed(*, task, source_instance, now: float) -> dict:
    """A sync task reached SUCCESS. Published in the source account, where the task lives (UNVERIFIED)."""
    return cloud_event(
        type_=SYNCHRONIZATION_COMPLETED, region=source_instance.region, account_id=source_instance.account_id,
        subject_id=task.repo_id, now=now,
        data={
            "SyncTaskId": task.task_id,
            "SyncBatchTaskId": task.batch_id,
            "SyncRuleId": task.rule_id,
            "TaskStatus": task.status,
            "TaskTrigger": task.trigger,
            "CrossUser": task.cross_user,
            "InstanceId": source_instance.instance_id,
            "InstanceName": source_instance.name,
            "RegionId": source_instance.region,
            "RepoNamespaceName": task.namespace,
            "RepoName": task.repo,
            "RepoId": task.repo_id,
            "Tag": task.tag,
            "Digest": f"sha256:{task.digest}",
            "TargetInstanceId": task.target_instance_id,
            "TargetRegionId": task.target_region,
            "TargetNamespaceName": task.target_namespace,
            "TargetRepoName": task.target_repo,
            "TargetTag": task.target_tag,
        },
    )
