"""``/_localcloud/acr/<op>``: what tests and the demo do to ACR that no cloud API does (push an image, delete
a tag, make sync tasks fail or hang) and a full view of the tasks for debugging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from localcloud.acr.models import AcrBackend, BusinessError, TaskFault, backend_of
from localcloud.service import ServiceError
from localcloud.state import World

FAULT_MATCH_KEYS = ("instance_id", "namespace", "repo", "tag", "target_instance_id")


def _text(body: dict, name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ServiceError(400, "MissingParameter", f"the body needs {name!r}")
        return None
    if not isinstance(value, str):
        raise ServiceError(400, "InvalidParameter", f"{name!r} must be a string, not {value!r}")
    return value


def _fault_view(fault: TaskFault) -> dict:
    return {k: v for k, v in asdict(fault).items() if v is not None}


def task_faults(backend: AcrBackend, body: dict) -> dict:
    """``{"clear": true}``; ``{"stuck": true, <match>}``: matching tasks stay SYNCHRONIZING until cleared;
    ``{"fail_next": N, "issue": "NETWORK_ERROR", <match>}``: the next N matching tasks end ERROR;
    ``{"status": "RUNNING", <match>}``: matching tasks report that status, which no document lists, once they
    start (to test a client against a status it does not know).
    ``<match>``: any of instance_id (the source instance), namespace, repo, tag, target_instance_id."""
    if body.get("clear"):
        backend.faults.clear()
        return {"faults": []}
    match = {key: _text(body, key, required=False) for key in FAULT_MATCH_KEYS}
    if body.get("status") is not None:
        fault = TaskFault(status=_text(body, "status"), **match)
    elif body.get("stuck"):
        fault = TaskFault(stuck=True, **match)
    else:
        count = body.get("fail_next")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ServiceError(400, "InvalidParameter",
                               f"fail_next must be a positive integer, not {count!r} (or send stuck/clear)")
        issue = _text(body, "issue", required=False) or "NETWORK_ERROR"
        fault = TaskFault(issue=issue, remaining=count, **match)
    backend.faults.append(fault)
    return {"faults": [_fault_view(f) for f in backend.faults]}


def tasks(backend: AcrBackend, body: dict) -> dict:
    """Every task with its status, TaskIssue and the reason behind it, oldest first."""
    backend.settle()
    instance_id = body.get("instance_id")
    out = []
    for t in sorted(backend.tasks.values(), key=lambda t: t.seq):
        if instance_id and t.instance_id != instance_id:
            continue
        out.append({
            "task_id": t.task_id, "batch_id": t.batch_id, "rule_id": t.rule_id, "trigger": t.trigger,
            "status": t.status, "issue": t.issue, "detail": t.detail, "cross_user": t.cross_user,
            "source": f"{t.instance_id}/{t.namespace}/{t.repo}:{t.tag}@sha256:{t.digest}",
            "target": f"{t.target_instance_id}/{t.target_namespace}/{t.target_repo}:{t.target_tag}",
            "created_ms": int(t.created * 1000), "modified_ms": int(t.modified * 1000),
        })
    return {"tasks": out}


def rules(backend: AcrBackend, body: dict) -> dict:
    """Every sync rule, with the target account that ListRepoSyncRule does not show."""
    return {"rules": [asdict(r) for r in sorted(backend.rules.values(),
                                                key=lambda r: (r.created, r.rule_id))]}


def push(backend: AcrBackend, body: dict) -> dict:
    """Push an image: ``{"instance_id", "namespace", "repo", "tag", "digest"?}``."""
    args = {k: _text(body, k) for k in ("instance_id", "namespace", "repo", "tag")}
    return backend.push(**args, digest=_text(body, "digest", required=False))


def delete_tag(backend: AcrBackend, body: dict) -> dict:
    """Delete a tag: ``{"instance_id", "namespace", "repo", "tag"}``."""
    args = {k: _text(body, k) for k in ("instance_id", "namespace", "repo", "tag")}
    backend.delete_tag(**args)
    return {"deleted": f"{args['instance_id']}/{args['namespace']}/{args['repo']}:{args['tag']}"}


def settle(backend: AcrBackend, body: dict) -> dict:
    """Bring the sync tasks up to the emulator clock now (the server also does it on clock advance)."""
    backend.settle()
    return {"open": sum(1 for t in backend.tasks.values() if t.status in ("PENDING", "SYNCHRONIZING"))}


OPS: dict[str, Callable[[AcrBackend, dict], dict]] = {
    "task-faults": task_faults, "tasks": tasks, "rules": rules, "push": push, "delete-tag": delete_tag,
    "settle": settle,
}


def handle(world: World, op: str, body: dict[str, Any] | None) -> dict:
    """Serve ``/_localcloud/acr/<op>``; a missing thing is a 404 naming it."""
    fn = OPS.get(op)
    if fn is None:
        raise ServiceError(404, "UnknownOperation", f"/_localcloud/acr/{op} does not exist; "
                                                    f"operations: {', '.join(sorted(OPS))}")
    if body is not None and not isinstance(body, dict):
        raise ServiceError(400, "InvalidParameter", "the body must be a JSON object")
    backend = backend_of(world)
    try:
        with world.lock:
            return fn(backend, body or {})
    except BusinessError as exc:
        raise ServiceError(404, exc.code, exc.message) from None
