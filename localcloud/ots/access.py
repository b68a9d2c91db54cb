"""Who may touch which Tablestore instance and table: ownership and RAM, checked before every operation.

- An instance belongs to one account (scenario ``tablestore:``). A request for an instance that does not exist
  or belongs to another account is refused as the service refuses it: ``403 OTSAuthFailed`` "The instance does
  not exist." / "The user does not have permission to access the instance."
- The signer's RAM policies must allow ``ots:<Api>`` on ``acs:ots:<region>:<account>:instance/<name>``
(ListTable)
  or ``.../instance/<name>/table/<table>`` (every table operation; BatchGetRow/BatchWriteRow on each table
  they name); otherwise ``403 OTSNoPermissionAccess``.
Sources: https://www.alibabacloud.com/help/en/tablestore/developer-reference/error-codes (codes and messages);
https://www.alibabacloud.com/help/en/tablestore/developer-reference/ram-policy (actions and resource forms).

A scenario without a ``tablestore:`` section keeps the emulator's convenience for Tablestore-only tests: an
instance is created for the account that first uses it (in ``DEFAULT_REGION``), and is that account's from
then on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tablestore.protobuf import table_store_pb2 as pb

from localcloud import authz, identity, policy
from localcloud.ots.models import OtsError
from localcloud.service import ServiceError
from localcloud.state import World

DEFAULT_REGION = "cn-hangzhou"
NO_PERMISSION = "You have no permission to access the requested resource, please contact the resource owner."


@dataclass(frozen=True)
class OtsInstance:
    name: str
    account_id: str
    region: str


@dataclass
class Instances:
    declared: bool                          # the scenario has a tablestore: section (no implicit instances)
    by_name: dict[str, OtsInstance]


def install(world: World, specs: list[dict] | None) -> None:
    """Record the scenario's Tablestore instances (``None``: no section, implicit instances allowed)."""
    world.backends["ots_instances"] = Instances(
        declared=specs is not None,
        by_name={s["name"]: OtsInstance(s["name"], str(s["account"]), s["region"]) for s in specs or []})


def _instances(world: World) -> Instances:
    with world.lock:
        return world.backends.setdefault("ots_instances", Instances(declared=False, by_name={}))


def _single_table(message: type) -> Callable[[bytes], list[str]]:
    return lambda body: [message.FromString(body).table_name]


_TABLES = {
    "CreateTable": lambda body: [pb.CreateTableRequest.FromString(body).table_meta.table_name],
    "DescribeTable": _single_table(pb.DescribeTableRequest),
    "DeleteTable": _single_table(pb.DeleteTableRequest),
    "PutRow": _single_table(pb.PutRowRequest),
    "UpdateRow": _single_table(pb.UpdateRowRequest),
    "DeleteRow": _single_table(pb.DeleteRowRequest),
    "GetRow": _single_table(pb.GetRowRequest),
    "GetRange": _single_table(pb.GetRangeRequest),
    "BatchGetRow": lambda body: [t.table_name for t in pb.BatchGetRowRequest.FromString(body).tables],
    "BatchWriteRow": lambda body: [t.table_name for t in pb.BatchWriteRowRequest.FromString(body).tables],
}


def owner(world: World, name: str, caller_account: str) -> OtsInstance:
    """The instance ``name`` as the caller's account sees it; OTSAuthFailed when it is not the caller's."""
    instances = _instances(world)
    with world.lock:
        found = instances.by_name.get(name)
        if found is None and not instances.declared:
            found = instances.by_name[name] = OtsInstance(name, caller_account, DEFAULT_REGION)
    if found is None:
        raise OtsError(403, "OTSAuthFailed", "The instance does not exist.")
    if found.account_id != caller_account:
        raise OtsError(403, "OTSAuthFailed", "The user does not have permission to access the instance.")
    return found


def check(world: World, api: str, access_key_id: str, token: str | None, instance: str, body: bytes) -> None:
    """Refuse the request unless its signer owns ``instance`` and may do ``ots:<api>`` on what it names."""
    try:
        caller = identity.lookup(world, access_key_id, token).caller
    except ServiceError:
        raise OtsError(403, "OTSAuthFailed", "The AccessKeyID does not exist.") from None
    inst = owner(world, instance, caller.account_id)
    base = f"acs:ots:{inst.region}:{inst.account_id}:instance/{inst.name}"
    tables = _TABLES.get(api, lambda _body: [])(body)
    for resource in [f"{base}/table/{t}" for t in dict.fromkeys(tables)] or [base]:
        if authz.decide(world, caller, f"ots:{api}", resource) != policy.ALLOW:
            raise OtsError(403, "OTSNoPermissionAccess", NO_PERMISSION)
