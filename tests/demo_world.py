"""The made-up accounts, keys, instances and roles of scenarios/demo.yaml, and how an SDK client reaches a
localcloud. Plain values and helpers for every test folder; the fixtures built on them live in
tests/conftest.py. Every key here is a demo value that exists only inside localcloud."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from alibabacloud_tea_openapi.utils_models import Config

ROOT = Path(__file__).resolve().parents[1]
DEMO_SCENARIO = ROOT / "scenarios" / "demo.yaml"

ACCOUNT_A = "1111111111111111"
ACCOUNT_B = "2222222222222222"
ACCOUNT_C = "3333333333333333"
# Account roots: they may manage their own account, but STS refuses them AssumeRole, so acrsync never uses
# them.
A_KEY_ID, A_SECRET = "LTAIDEMOACCOUNTAROOT0001", "made-up-demo-secret-account-a-root"
B_KEY_ID, B_SECRET = "LTAIDEMOACCOUNTBROOT0001", "made-up-demo-secret-account-b-root"
# RAM users of account A: the read-only operator, and the user the acrsync CLI runs as.
A_OPERATOR_KEY_ID, A_OPERATOR_SECRET = "LTAIDEMOACCOUNTAOPER001", "made-up-demo-secret-account-a-operator"
CLI_USER = "acrsync-cli"
CLI_KEY_ID, CLI_SECRET = "LTAIDEMOACRSYNCCLI0001", "made-up-demo-secret-acrsync-cli-not-a-real-key"
# Account C's administrator (RAM user) who runs `acrsync grants apply` there.
C_ADMIN_KEY_ID = "LTAIDEMOACCOUNTCADMIN01"
C_ADMIN_SECRET = "made-up-demo-secret-account-c-admin-not-a-real-key"
SOURCE_INSTANCE, SOURCE_REGION = "cri-demosource01", "cn-hangzhou"
TARGET_INSTANCE, TARGET_REGION = "cri-demotarget01", "cn-beijing"
SYNC_ROLE = "aliyuncontainerregistrycrossaccoutsyncrole"
SYNC_POLICY = "acr-cross-account-sync-from-a"
READER_ROLE = "acrsync-reader"
READER_ROLE_ARN = f"acs:ram::{ACCOUNT_B}:role/{READER_ROLE}"
FC_ROLE = "acrsync-fc"
FC_ROLE_ARN = f"acs:ram::{ACCOUNT_A}:role/{FC_ROLE}"
START_TIME = "2026-11-28T00:00:00Z"

# The two accounts of the small scenarios a test builds for one rule (made up, like everything here).
SMALL_A = "1000000000000001"
SMALL_B = "2000000000000002"


def make_sdk_config(cloud, key_id: str, secret: str, token: str | None = None, *,
                    region_id: str = SOURCE_REGION, read_timeout: int = 5000, connect_timeout: int = 2000,
                    **extra) -> Config:
    """A tea-openapi Config for any product client (cr, ram, sts, fc) that talks to ``cloud`` over http."""
    return Config(access_key_id=key_id, access_key_secret=secret, security_token=token, region_id=region_id,
                  endpoint=f"127.0.0.1:{cloud.port}", protocol="http", read_timeout=read_timeout,
                  connect_timeout=connect_timeout, **extra)


def fc_role_credentials(cloud, function: str = "acrsync-on-push"):
    """The temporary keys localcloud's Function Compute hands a demo function (its role acrsync-fc, which
    trusts fc.aliyuncs.com only): how a test acts as the functions' role."""
    from localcloud.fc.models import backend_of

    backend = backend_of(cloud.world)
    return backend.role_credentials(backend.function(ACCOUNT_A, function))


def http_json(cloud, method: str, path: str, body: dict | bytes | None = None,
              headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict]:
    """One HTTP request to ``cloud`` (a path below its URL); the status and the JSON reply, errors
    included."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(cloud.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def control(cloud, path: str, body: dict | None = None, timeout: float = 10) -> dict:
    """POST to localcloud's control API (``path`` below /_localcloud/, e.g. ``acr/tasks``); must succeed."""
    status, reply = http_json(cloud, "POST", f"/_localcloud/{path}", body or {}, timeout=timeout)
    assert status == 200, (status, reply)
    return reply


def cr_client(cloud, key_id: str, secret: str, region: str = SOURCE_REGION):
    """A real ``alibabacloud_cr20181201`` client for ``cloud``."""
    from alibabacloud_cr20181201.client import Client

    return Client(make_sdk_config(cloud, key_id, secret, region_id=region))
