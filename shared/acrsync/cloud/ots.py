"""Tablestore (OTS) adapter: the ledger's calls, made through the session like every other cloud call.

Each call goes through ``CloudSession.call``: the RAM action must be declared in
``cloud/permissions.py``, every HTTP attempt is counted in ``session.calls`` ("ots:PutRow"), failures
become ``CloudError`` subclasses, and the one retry decision (``cloud/retry.py``) runs inside the
session's Budget. The SDK's own retries are off (its ``NoRetryPolicy``, and no urllib3 retries), so
nothing sleeps outside the budget. Batch operations retry only the rows that failed for a passing
reason (https://www.alibabacloud.com/help/en/tablestore/developer-reference/batchwriterow: a batch can
succeed in part; each row carries its own error).

Writes are safe to repeat for the ledger: record writes are conditional and carry a writer token, the
rest are idempotent puts and deletes, so write actions are declared idempotent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from acrsync.cloud import errors

# tablestore logs "Native C++ encoder/decoder not available" at import on Python != 3.12: one warning per
# cold start in every FC log. Silence exactly those loggers before the import.
for _name in ("tablestore.encoder", "tablestore.decoder"):
    logging.getLogger(_name).setLevel(logging.ERROR)
# The SDK client logs every error reply at ERROR, including the failed conditions that are the ledger's
# normal answer to a duplicate or a lost race; failures reach callers as CloudError with the details.
SDK_LOGGER = "acrsync.cloud.ots.sdk"
logging.getLogger(SDK_LOGGER).setLevel(logging.CRITICAL)

import urllib3  # noqa: E402
from tablestore import (  # noqa: E402
    INF_MAX,
    INF_MIN,
    BatchGetRowRequest,
    BatchWriteRowRequest,
    CapacityUnit,
    ComparatorType,
    Condition,
    DeleteRowItem,
    Direction,
    OTSClient,
    OTSClientError,
    OTSServiceError,
    PutRowItem,
    ReservedThroughput,
    Row,
    RowExistenceExpectation,
    SingleColumnCondition,
    TableInBatchGetRowItem,
    TableInBatchWriteRowItem,
    TableMeta,
    TableOptions,
    UpdateRowItem,
)
from tablestore.credentials import Credentials, CredentialsProvider  # noqa: E402
from tablestore.retry import NoRetryPolicy  # noqa: E402

from acrsync.value import Frozen, dataclass  # noqa: E402

if TYPE_CHECKING:
    from acrsync.cloud.clients import CloudSession

__all__ = [
    "INF_MAX", "INF_MIN", "ComparatorType", "Condition", "ConditionFailed", "DeleteRowItem", "Ots",
    "PutRowItem", "Row", "RowExistenceExpectation", "RowResult", "SingleColumnCondition", "UpdateRowItem",
]

T = TypeVar("T")
CONDITION_FAILED = "OTSConditionCheckFail"
MAX_BATCH_WRITE = 200         # rows per BatchWriteRow (Tablestore limits: 200 rows per request)
MAX_BATCH_GET = 100           # rows per BatchGetRow (100 rows per request)
# https://www.alibabacloud.com/help/en/tablestore/support/error-codes-1
_THROTTLED = frozenset({"OTSServerBusy", "OTSNotEnoughCapacityUnit", "OTSOperationThrottled",
                        "OTSQuotaExhausted", "OTSCapacityUnitExhausted",
                        "OTSTooFrequentReservedThroughputAdjustment"})
_PASSING = frozenset({"OTSTimeout", "OTSInternalServerError", "OTSServerUnavailable",
                      "OTSPartitionUnavailable", "OTSRowOperationConflict", "OTSTableNotReady"})
_DENIED = frozenset({"OTSNoPermissionAccess", "OTSAccessDenied"})
_READ_TIMEOUT = r"(?i)read ?timed? ?out|timed out"   # compiled (and cached) by re on first use
PK = tuple[Any, ...]  # primary key values, in schema order
PrimaryKey = list[tuple[str, Any]]  # the SDK's primary key: (column name, value) in schema order


class ConditionFailed(errors.CloudError):
    """The row condition did not hold (exists / does not exist / column value): the ledger's lost race."""


@dataclass(frozen=True)
class RowResult(Frozen):
    ok: bool
    code: str | None = None
    message: str | None = None


def classify(code: str | None, http_status: int | None, message: str, *, action: str,
             request_id: str | None = None) -> errors.CloudError:
    """The CloudError for a Tablestore error code (a reply, or one row of a batch)."""
    kw: dict[str, Any] = dict(service="ots", action=action, code=code or f"HTTP{http_status}",
                              request_id=request_id or None, http_status=http_status)
    if code == CONDITION_FAILED:
        return ConditionFailed(message, **kw)
    if code in _THROTTLED or http_status == 429:
        return errors.Throttled(message, **kw)
    if code in _PASSING or (http_status is not None and http_status >= 500):
        return errors.ServerError(message, **kw)
    if code == "OTSObjectNotExist":
        return errors.NotFound(message, **kw)
    if code in _DENIED:
        return errors.AccessDenied(message, **kw)
    return errors.CloudError(message, **kw)


def translate(exc: BaseException, action: str) -> errors.CloudError | None:
    """An exception of the SDK (or of urllib3 under it) as a CloudError; None: not a cloud failure."""
    if isinstance(exc, OTSServiceError):
        status = exc.get_http_status()
        return classify(exc.get_error_code(), int(status) if status else None, exc.get_error_message() or "",
                        action=action, request_id=exc.get_request_id())
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        text = f"{type(exc).__name__}: {exc}"
        applied = isinstance(exc, urllib3.exceptions.ReadTimeoutError) or bool(re.search(_READ_TIMEOUT, text))
        return errors.NetworkError(text, maybe_applied=applied, service="ots", action=action,
                                   code="NetworkError")
    if isinstance(exc, OTSClientError):
        status = exc.get_http_status()
        if status and int(status) >= 500:   # a reply the SDK could not parse (a gateway page)
            return errors.ServerError(str(exc), service="ots", action=action, code="InvalidResponse",
                                      http_status=int(status))
        return errors.CloudError(str(exc), service="ots", action=action, code="ClientError")
    return None


class _SessionCredentials(CredentialsProvider):  # type: ignore[misc]  # the SDK ships no types
    """The session's current keys on every request: a long-lived FC instance follows its role's
    refreshed STS keys instead of signing with an expired token."""

    def __init__(self, session: CloudSession):
        self._session = session

    def get_credentials(self) -> Credentials:
        c = self._session.credentials()
        return Credentials(c.access_key_id, c.access_key_secret, c.security_token or None)


def build_client(session: CloudSession, endpoint: str, instance: str) -> OTSClient:
    """An OTSClient whose own retries are off: the session's retry decision is the only one."""
    # No region=: that switches the SDK to SignV4, which localcloud (and SignV2 users) do not speak.
    client = OTSClient(endpoint, instance_name=instance, credentials_provider=_SessionCredentials(session),
                       retry_policy=NoRetryPolicy(), socket_timeout=session.timeouts.read,
                       logger_name=SDK_LOGGER)
    pool = getattr(getattr(client, "connection", None), "pool", None)
    if pool is not None and hasattr(pool, "connection_pool_kw"):
        pool.connection_pool_kw["retries"] = False   # urllib3 would retry connection errors unseen
    return client


class Ots:
    """Typed calls on one Tablestore instance; rows are (primary key values, {column: value})."""

    service = "ots"

    def __init__(self, session: CloudSession, endpoint: str, instance: str):
        self.session = session
        self.endpoint = endpoint
        self.instance = instance
        self._client = session.client_for(("ots", endpoint, instance),
                                          lambda: build_client(session, endpoint, instance))

    def scoped(self, session: CloudSession) -> Ots:
        """The same client under another session (e.g. one invocation's budget)."""
        return Ots(session, self.endpoint, self.instance)

    def _call(self, action: str, fn: Callable[..., T], *args: Any) -> T:
        return self.session.call("ots", action, lambda _remaining: fn(*args), translate=translate)

    # ---- single rows ------------------------------------------------------------------------------
    def get_row(self, table: str, pk: PrimaryKey, columns: list[str] | None = None) -> dict[str, Any] | None:
        _, row, _ = self._call("GetRow", self._client.get_row, table, pk, columns, None, 1)
        return _cols(row) if row is not None else None

    def put_row(self, table: str, row: Row, condition: Condition) -> None:
        """Raises ConditionFailed when ``condition`` does not hold."""
        self._call("PutRow", self._client.put_row, table, row, condition)

    def update_row(self, table: str, row: Row, condition: Condition) -> None:
        self._call("UpdateRow", self._client.update_row, table, row, condition)

    def delete_row(self, table: str, row: Row, condition: Condition) -> None:
        self._call("DeleteRow", self._client.delete_row, table, row, condition)

    # ---- ranges and batches -----------------------------------------------------------------------
    def get_range(self, table: str, start: PrimaryKey, end: PrimaryKey, *, columns: list[str] | None = None,
                  limit: int | None = None, backward: bool = False,
                  batch: int | None = None) -> Iterator[tuple[PK, dict[str, Any]]]:
        """Rows from ``start`` to ``end`` (exclusive), following next_start_primary_key across replies."""
        direction = Direction.BACKWARD if backward else Direction.FORWARD
        got = 0
        while True:
            want = batch if limit is None else min(limit - got, batch or limit - got)
            _, next_pk, rows, _ = self._call("GetRange", self._client.get_range, table, direction, start, end,
                                             columns, want)
            for row in rows:
                got += 1
                yield tuple(v for _, v in row.primary_key), _cols(row)
            if next_pk is None or (limit is not None and got >= limit):
                return
            start = next_pk

    def batch_get(self, table: str, pks: list[PrimaryKey],
                  columns: list[str] | None = None) -> list[dict[str, Any] | None]:
        """BatchGetRow: per primary key, the row's columns or None; rows that fail for a passing reason
        are asked again (inside the session's retry decision)."""
        out: list[dict[str, Any] | None] = [None] * len(pks)
        for first in range(0, len(pks), MAX_BATCH_GET):
            pending = list(range(first, min(first + MAX_BATCH_GET, len(pks))))

            def attempt(_remaining: float, pending: list[int] = pending) -> None:
                request = BatchGetRowRequest()
                request.add(TableInBatchGetRowItem(table, [pks[i] for i in pending], columns, max_version=1))
                response = self._client.batch_get_row(request)
                items = response.get_result_by_table(table) or []
                again: list[int] = []
                last: errors.CloudError | None = None
                for i, item in zip(pending, items, strict=True):
                    if item.is_ok:
                        found = item.row is not None and item.row.attribute_columns
                        out[i] = _cols(item.row) if found else None
                        continue
                    err = classify(item.error_code, None, item.error_message or "", action="BatchGetRow")
                    if not err.retryable:
                        raise err
                    again.append(i)
                    last = err
                if last is not None:
                    pending[:] = again
                    raise last

            self.session.call("ots", "BatchGetRow", attempt, translate=translate)
        return out

    def batch_write(self, items: list[tuple[str, Any]]) -> list[RowResult]:
        """BatchWriteRow over several tables (at most ``MAX_BATCH_WRITE`` rows); per item, in order.

        A failed condition fails only its row; rows that failed for a passing reason (throttling, a
        busy partition) are sent again, inside the session's retry decision.
        """
        if len(items) > MAX_BATCH_WRITE:
            raise ValueError(f"BatchWriteRow takes at most {MAX_BATCH_WRITE} rows, got {len(items)}")
        results = [RowResult(False, "NotSent", "")] * len(items)
        pending = list(range(len(items)))

        def attempt(_remaining: float) -> None:
            request = BatchWriteRowRequest()
            by_table: dict[str, list[int]] = {}
            for i in pending:
                by_table.setdefault(items[i][0], []).append(i)
            for table, idxs in by_table.items():
                request.add(TableInBatchWriteRowItem(table, [items[i][1] for i in idxs]))
            response = self._client.batch_write_row(request)
            again: list[int] = []
            last: errors.CloudError | None = None
            for table, idxs in by_table.items():
                got = sorted(response.get_put_by_table(table) + response.get_update_by_table(table)
                             + response.get_delete_by_table(table), key=lambda r: r.index)
                for i, item in zip(idxs, got, strict=True):
                    results[i] = RowResult(item.is_ok, item.error_code, item.error_message)
                    if not item.is_ok:
                        err = classify(item.error_code, None, item.error_message or "",
                                       action="BatchWriteRow")
                        if err.retryable:
                            again.append(i)
                            last = err
            if last is not None:
                pending[:] = again
                raise last

        self.session.call("ots", "BatchWriteRow", attempt, translate=translate)
        return results

    # ---- tables -----------------------------------------------------------------------------------
    def create_table(self, table: str, schema: list[tuple[str, str]]) -> bool:
        """Create a table (no expiry, one version); False when it exists already."""
        try:
            self._call("CreateTable", self._client.create_table, TableMeta(table, schema),
                       TableOptions(time_to_live=-1, max_version=1), ReservedThroughput(CapacityUnit(0, 0)))
            return True
        except errors.CloudError as e:
            if e.code == "OTSObjectAlreadyExist":
                return False
            raise

    def describe_table(self, table: str) -> None:
        """Raises NotFound until the table exists (and a CloudError while it cannot be described)."""
        self._call("DescribeTable", self._client.describe_table, table)


def _cols(row: Any) -> dict[str, Any]:
    return {c[0]: c[1] for c in (row.attribute_columns or [])} if row is not None else {}
