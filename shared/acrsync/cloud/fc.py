"""Function Compute 3.0 (API 2023-03-30, alibabacloud_fc20230330) adapter.

FC 3.0 has no services: a function is addressed by name alone (``POST /2023-03-30/functions/{name}/
invocations``). The 2.0 API (fc-open 2021-04-06) is built around services and is not used.
"""

from __future__ import annotations

from typing import Any

from alibabacloud_fc20230330 import models as m

from acrsync.cloud.clients import Adapter, CloudSession
from acrsync.cloud.errors import CloudError

ERROR_TYPE_HEADER = "x-fc-error-type"


def _read(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return body.read() or b""


class Fc(Adapter):
    service = "fc"

    def __init__(self, session: CloudSession, region: str):
        super().__init__(session, region, None)

    def invoke_function(self, name: str, payload: bytes, *, async_: bool = False,
                        qualifier: str | None = None) -> bytes:
        """The function's reply (empty for an async invocation, which FC only queues).

        A function that raised is reported by FC with HTTP 200 and an ``x-fc-error-type`` header; that
        becomes a CloudError with code ``FunctionError.<type>`` and the reply as message.
        """
        req = m.InvokeFunctionRequest(body=payload, qualifier=qualifier)
        headers = m.InvokeFunctionHeaders(x_fc_invocation_type="Async" if async_ else "Sync")
        resp = self._call("invoke_function", name, req, headers)
        out = _read(resp.body)
        lowered = {k.lower(): v for k, v in (resp.headers or {}).items()}
        error_type = lowered.get(ERROR_TYPE_HEADER)
        if error_type:
            raise CloudError(out.decode("utf-8", "replace")[:2000], service="fc", action="InvokeFunction",
                             code=f"FunctionError.{error_type}", request_id=lowered.get("x-fc-request-id"),
                             http_status=resp.status_code)
        return out

    def get_function(self, name: str) -> dict[str, Any]:
        """The function's configuration as FC returns it (camelCase keys: functionName, runtime, ...)."""
        resp = self._call("get_function", name, m.GetFunctionRequest(), {})
        return resp.body.to_map() if resp.body is not None else {}

    def list_triggers(self, function_name: str) -> list[dict[str, Any]]:
        """Every trigger of a function (camelCase keys; ``triggerConfig`` is a JSON string), all pages.

        https://www.alibabacloud.com/help/en/functioncompute/fc/developer-reference/api-fc-2023-03-30-listtriggers
        """
        out: list[dict[str, Any]] = []
        token = None
        while True:
            resp = self._call("list_triggers", function_name,
                              m.ListTriggersRequest(limit=100, next_token=token), {})
            body = resp.body.to_map() if resp.body is not None else {}
            out.extend(body.get("triggers") or [])
            token = body.get("nextToken")
            if not token:
                return out

    def get_trigger(self, function_name: str, trigger_name: str) -> dict[str, Any]:
        resp = self._call("get_trigger", function_name, trigger_name, {})
        return resp.body.to_map() if resp.body is not None else {}
