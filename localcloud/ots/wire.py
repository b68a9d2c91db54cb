"""Tablestore over HTTP as the real ``tablestore.OTSClient`` speaks it: ``POST /<Api>``, protobuf bodies.

Checks the request the way the service does (SignV2 HMAC-SHA1 over the ``x-ots-*`` headers, content MD5,
``x-ots-date`` skew), runs the operation on the backend in ``models.py`` and signs the reply, because the
SDK rejects a 2xx reply without a valid ``Authorization: OTS <id>:<sig>``, MD5 and a date within 15 minutes
of the real wall time (so reply dates use ``time.time()``, never the emulator clock).
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from google.protobuf.message import DecodeError, Message
from tablestore.protobuf import table_store_pb2 as pb

from localcloud.ots import access
from localcloud.ots import filters as flt
from localcloud.ots.models import (
    OtsBackend,
    OtsError,
    PkColumn,
    ReadSpec,
    RowCondition,
    WriteItem,
    invalid,
    table_from_schema,
)
from localcloud.ots.plainbuffer import PlainBufferError, read_row, write_row, write_rows
from localcloud.state import World

SecretFor = Callable[[str, "str | None"], "str | None"]
Reply = tuple[int, dict[str, str], bytes]

MAX_SKEW_SECONDS = 15 * 60
PK_TYPE_NAMES = {pb.INTEGER: "INTEGER", pb.STRING: "STRING", pb.BINARY: "BINARY", pb.PK_BOOLEAN: "BOOLEAN"}
PK_TYPE_ENUMS = {v: k for k, v in PK_TYPE_NAMES.items()}
DEFINED_TYPE_NAMES = {pb.DCT_INTEGER: "INTEGER", pb.DCT_DOUBLE: "DOUBLE", pb.DCT_BOOLEAN: "BOOLEAN",
                      pb.DCT_STRING: "STRING", pb.DCT_BLOB: "BINARY"}
DEFINED_TYPE_ENUMS = {v: k for k, v in DEFINED_TYPE_NAMES.items()}
WRITE_OPS = {pb.PUT: "PUT", pb.UPDATE: "UPDATE", pb.DELETE: "DELETE"}


def backend_for(world: World) -> OtsBackend:
    """The world's Tablestore backend, created on first use (file-backed when the settings name a file)."""
    backend = world.backends.get("ots")
    if backend is None:
        with world.lock:
            backend = world.backends.get("ots")
            if backend is None:
                clock = world.clock
                backend = OtsBackend(state_file=world.settings.get("ots_state_file"),
                                     now=clock.now if clock is not None else None)
                world.backends["ots"] = backend
    return backend


# --- signatures ------------------------------------------------------------------------------------


def _ots_headers_string(headers: dict[str, str], skip: tuple[str, ...] = ()) -> str:
    items = sorted(f"{k}:{v.strip()}" for k, v in headers.items() if k.startswith("x-ots-") and k not in skip)
    return "\n".join(items)


def _hmac_sha1(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def request_signature(api: str, headers: dict[str, str], secret: str) -> str:
    """SignV2: ``/<Api>\\nPOST\\n\\n`` + sorted ``k:v`` of the ``x-ots-*`` headers + ``\\n``."""
    text = f"/{api}\nPOST\n\n" + _ots_headers_string(headers, skip=("x-ots-signature",)) + "\n"
    return _hmac_sha1(secret, text)


def response_signature(api: str, headers: dict[str, str], secret: str) -> str:
    """Sorted ``k:v`` of the reply's ``x-ots-*`` headers + ``\\n/<Api>``, HMAC-SHA1 with the same secret."""
    return _hmac_sha1(secret, _ots_headers_string(headers) + f"\n/{api}")


def _reply(api: str, status: int, body: bytes, signer: tuple[str, str] | None) -> Reply:
    """Status, headers and body; signed with (access key id, secret) when the caller was authenticated."""
    now = datetime.now(timezone.utc)
    headers = {
        "x-ots-contentmd5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        "x-ots-requestid": str(uuid.uuid4()),
        "x-ots-date": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "x-ots-contenttype": "protocol buffer",
    }
    if signer is not None:
        key_id, secret = signer
        headers["authorization"] = f"OTS {key_id}:{response_signature(api, headers, secret)}"
    headers["content-type"] = "application/x-protobuf"
    return status, headers, body


def error_response(api: str, status: int, code: str, message: str) -> Reply:
    """An error reply (protobuf ``Error``) for fault injection, e.g. ``503 OTSServerBusy``."""
    return _reply(api.lstrip("/"), status, pb.Error(code=code, message=message).SerializeToString(), None)


def _authenticate(api: str, headers: dict[str, str], body: bytes, secret_for: SecretFor) -> tuple[str, str]:
    """The (access key id, secret) that signed this request, or OtsError(403 OTSAuthFailed)."""
    def denied(message: str) -> OtsError:
        return OtsError(403, "OTSAuthFailed", message)

    if "x-ots-signaturev4" in headers:
        raise denied("localcloud verifies SignV2 only: create the OTSClient without region= "
                     "(region= switches the SDK to SignV4).")
    key_id = headers.get("x-ots-accesskeyid")
    signature = headers.get("x-ots-signature")
    if not key_id or not signature:
        raise denied("The request is not signed: x-ots-accesskeyid and x-ots-signature are required.")
    secret = secret_for(key_id, headers.get("x-ots-ststoken"))
    if secret is None:
        raise denied(f"The AccessKeyId {key_id} is not known to localcloud (or its STS token is invalid or "
                     "expired); use a key from the scenario.")
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    if headers.get("x-ots-contentmd5", md5) != md5:
        raise OtsError(400, "OTSParameterInvalid", "The x-ots-contentmd5 header does not match the body.")
    date = headers.get("x-ots-date", "")
    try:
        sent = calendar.timegm(time.strptime(date.split(".")[0], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise denied(f"Invalid x-ots-date {date!r}; expected YYYY-MM-DDThh:mm:ss.000Z.") from None
    if abs(sent - time.time()) > MAX_SKEW_SECONDS:
        raise denied(f"Mismatch between system time and x-ots-date: {date}. Fix the local clock.")
    if not hmac.compare_digest(signature, request_signature(api, headers, secret)):
        raise denied("Signature mismatch. Check the AccessKeySecret.")
    return key_id, secret


# --- request pieces --------------------------------------------------------------------------------


def _condition(msg: pb.Condition) -> RowCondition:
    column = flt.parse(msg.column_condition) if msg.column_condition else None
    return RowCondition(existence=msg.row_existence, column=column)


def _read_spec(msg: Message) -> ReadSpec:
    time_range = None
    if msg.HasField("time_range"):
        tr = msg.time_range
        if tr.HasField("specific_time"):
            time_range = (tr.specific_time, tr.specific_time + 1)
        else:
            time_range = (tr.start_time if tr.HasField("start_time") else 0,
                          tr.end_time if tr.HasField("end_time") else 2**63 - 1)
    return ReadSpec(
        columns_to_get=tuple(msg.columns_to_get),
        row_filter=flt.parse(msg.filter) if msg.filter else None,
        time_range=time_range,
        start_column=msg.start_column if msg.HasField("start_column") else None,
        end_column=msg.end_column if msg.HasField("end_column") else None,
    )


def _no_transaction(msg: Message) -> None:
    if msg.HasField("transaction_id") and msg.transaction_id:
        raise OtsError(400, "OTSUnsupportOperation",
                       "Local transactions are not emulated by localcloud; write without transaction_id.")


def _consumed(msg: pb.ConsumedCapacity, read: int = 0, write: int = 0) -> None:
    msg.capacity_unit.read = read
    msg.capacity_unit.write = write


def _returned_pk(msg: Message, pk) -> bytes:
    """RT_PK asks for the written primary key back (the only way to learn an auto-increment value)."""
    wants = msg.HasField("return_content") and msg.return_content.return_type != pb.RT_NONE
    return write_row(pk) if wants else b""


# --- operations ------------------------------------------------------------------------------------


def _create_table(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.CreateTableRequest.FromString(body)
    meta = req.table_meta
    pk = [PkColumn(c.name, PK_TYPE_NAMES.get(c.type, str(c.type)),
                   c.HasField("option") and c.option == pb.AUTO_INCREMENT) for c in meta.primary_key]
    opts = req.table_options
    table = table_from_schema(
        meta.table_name, pk,
        defined={d.name: DEFINED_TYPE_NAMES.get(d.type, str(d.type)) for d in meta.defined_column},
        time_to_live=opts.time_to_live if opts.HasField("time_to_live") else -1,
        max_versions=opts.max_versions if opts.HasField("max_versions") else 1,
        deviation=(opts.deviation_cell_version_in_sec if opts.HasField("deviation_cell_version_in_sec")
                   else 86400),
        read=req.reserved_throughput.capacity_unit.read, write=req.reserved_throughput.capacity_unit.write)
    backend.create_table(instance, table)
    return pb.CreateTableResponse()


def _describe_table(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.DescribeTableRequest.FromString(body)
    table = backend.describe_table(instance, req.table_name)
    resp = pb.DescribeTableResponse()
    resp.table_meta.table_name = table.name
    for col in table.primary_key:
        item = resp.table_meta.primary_key.add(name=col.name, type=PK_TYPE_ENUMS[col.type])
        if col.auto_increment:
            item.option = pb.AUTO_INCREMENT
    for name, type_name in table.defined_columns:
        if type_name in DEFINED_TYPE_ENUMS:
            resp.table_meta.defined_column.add(name=name, type=DEFINED_TYPE_ENUMS[type_name])
    details = resp.reserved_throughput_details
    details.capacity_unit.read = table.reserved_read
    details.capacity_unit.write = table.reserved_write
    details.last_increase_time = int(table.created_at)
    resp.table_options.time_to_live = table.time_to_live
    resp.table_options.max_versions = table.max_versions
    resp.table_options.deviation_cell_version_in_sec = table.deviation
    resp.table_options.allow_update = True
    return resp


def _list_table(backend: OtsBackend, instance: str, body: bytes) -> Message:
    return pb.ListTableResponse(table_names=backend.list_tables(instance))


def _delete_table(backend: OtsBackend, instance: str, body: bytes) -> Message:
    backend.delete_table(instance, pb.DeleteTableRequest.FromString(body).table_name)
    return pb.DeleteTableResponse()


def _single_write(backend: OtsBackend, instance: str, req: Message, op: str, change_bytes: bytes,
                  resp: Message) -> Message:
    _no_transaction(req)
    pk = backend.write_row(instance, req.table_name, op, read_row(change_bytes), _condition(req.condition))
    _consumed(resp.consumed, write=1)
    row = _returned_pk(req, pk)
    if row:
        resp.row = row
    return resp


def _put_row(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.PutRowRequest.FromString(body)
    return _single_write(backend, instance, req, "PUT", req.row, pb.PutRowResponse())


def _update_row(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.UpdateRowRequest.FromString(body)
    return _single_write(backend, instance, req, "UPDATE", req.row_change, pb.UpdateRowResponse())


def _delete_row(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.DeleteRowRequest.FromString(body)
    return _single_write(backend, instance, req, "DELETE", req.primary_key, pb.DeleteRowResponse())


def _get_row(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.GetRowRequest.FromString(body)
    _no_transaction(req)
    found = backend.get_row(instance, req.table_name, read_row(req.primary_key).primary_key, _read_spec(req))
    resp = pb.GetRowResponse(row=write_row(*found) if found else b"")
    _consumed(resp.consumed, read=1)
    return resp


def _get_range(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.GetRangeRequest.FromString(body)
    _no_transaction(req)
    rows, next_pk = backend.get_range(
        instance, req.table_name, req.direction,
        read_row(req.inclusive_start_primary_key).primary_key,
        read_row(req.exclusive_end_primary_key).primary_key,
        req.limit if req.HasField("limit") else None, _read_spec(req))
    resp = pb.GetRangeResponse(rows=write_rows(rows))
    if next_pk is not None:
        resp.next_start_primary_key = write_row(next_pk)
    _consumed(resp.consumed, read=max(1, len(rows)))
    return resp


def _batch_get_row(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.BatchGetRowRequest.FromString(body)
    requests = [(t.table_name, [read_row(pk).primary_key for pk in t.primary_key], _read_spec(t))
                for t in req.tables]
    resp = pb.BatchGetRowResponse()
    answers = backend.batch_get(instance, requests)
    for (table_name, _keys, _spec), results in zip(requests, answers, strict=True):
        table_out = resp.tables.add(table_name=table_name)
        for found, error in results:
            row = table_out.rows.add(is_ok=error is None)
            if error is not None:
                row.error.code = error.code
                row.error.message = error.message
                continue
            _consumed(row.consumed, read=1)
            row.row = write_row(*found) if found else b""
    return resp


def _batch_write_row(backend: OtsBackend, instance: str, body: bytes) -> Message:
    req = pb.BatchWriteRowRequest.FromString(body)
    _no_transaction(req)
    items, wants_pk = [], []
    for t in req.tables:
        for r in t.rows:
            items.append(WriteItem(t.table_name, WRITE_OPS.get(r.type, "PUT"), read_row(r.row_change),
                                   _condition(r.condition)))
            wants_pk.append(r.HasField("return_content") and r.return_content.return_type != pb.RT_NONE)
    results = iter(zip(backend.batch_write(instance, items), wants_pk, strict=True))
    resp = pb.BatchWriteRowResponse()
    for t in req.tables:
        table_out = resp.tables.add(table_name=t.table_name)
        for _r in t.rows:
            result, want = next(results)
            row = table_out.rows.add(is_ok=result.ok)
            if result.ok:
                _consumed(row.consumed, write=1)
                if want:
                    row.row = write_row(result.primary_key)
            else:
                row.error.code = result.error.code
                row.error.message = result.error.message
    return resp


OPERATIONS: dict[str, Callable[[OtsBackend, str, bytes], Message]] = {
    "CreateTable": _create_table,
    "DescribeTable": _describe_table,
    "ListTable": _list_table,
    "DeleteTable": _delete_table,
    "PutRow": _put_row,
    "UpdateRow": _update_row,
    "DeleteRow": _delete_row,
    "GetRow": _get_row,
    "GetRange": _get_range,
    "BatchGetRow": _batch_get_row,
    "BatchWriteRow": _batch_write_row,
}


def handle(world: World, api: str, headers: dict[str, str], body: bytes, secret_for: SecretFor) -> Reply:
    """One Tablestore request: verify the request signature (``secret_for(access_key_id, sts_token)`` gives
    the secret, or None for an unknown key -> 403 OTSAuthFailed), run it, return (status, headers, body)
    with the reply signed as the SDK checks it."""
    api = api.strip("/")
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        signer = _authenticate(api, headers, body, secret_for)
    except OtsError as exc:
        return error_response(api, exc.status, exc.code, exc.message)
    try:
        operation = OPERATIONS.get(api)
        if operation is None:
            raise OtsError(400, "OTSUnsupportOperation",
                           f"localcloud does not emulate the Tablestore API {api!r}; emulated: "
                           f"{', '.join(sorted(OPERATIONS))}.")
        instance = headers.get("x-ots-instancename", "")
        if not instance:
            raise invalid("The x-ots-instancename header is required.")
        access.check(world, api, signer[0], headers.get("x-ots-ststoken") or None, instance, body)
        message = operation(backend_for(world), instance, body)
        return _reply(api, 200, message.SerializeToString(), signer)
    except OtsError as exc:
        status, code, message_text = exc.status, exc.code, exc.message
    except (PlainBufferError, flt.FilterError) as exc:
        status, code, message_text = 400, "OTSParameterInvalid", str(exc)
    except DecodeError as exc:
        status, code, message_text = 400, "OTSParameterInvalid", f"The {api} request body is not valid: {exc}"
    return _reply(api, status, pb.Error(code=code, message=message_text).SerializeToString(), signer)
