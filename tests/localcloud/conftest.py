"""Fixtures for tests that talk to localcloud through the real Alibaba Cloud SDKs.

- ``cloud``: a started LocalCloud on scenarios/demo.yaml (manual clock, free port), stopped afterwards.
- ``cloud_factory(scenario, **kw)``: start more (a dict or a path); all stopped afterwards.
- ``sdk_config(cloud, key_id, secret, token=None, **kw)``: an SDK Config pointed at a cloud over http.
- ``demo``: the demo scenario's made-up accounts, keys, instances and roles (also importable as constants).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from alibabacloud_tea_openapi.utils_models import Config

from localcloud.server import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
DEMO_SCENARIO = ROOT / "scenarios" / "demo.yaml"

# Made-up demo accounts and keys from scenarios/demo.yaml: they exist only inside localcloud.
ACCOUNT_A = "1111111111111111"
ACCOUNT_B = "2222222222222222"
A_KEY_ID, A_SECRET = "LTAIDEMOACCOUNTAROOT0001", "made-up-demo-secret-account-a-root"
A_OPERATOR_KEY_ID, A_OPERATOR_SECRET = "LTAIDEMOACCOUNTAOPER001", "made-up-demo-secret-account-a-operator"
B_KEY_ID, B_SECRET = "LTAIDEMOACCOUNTBROOT0001", "made-up-demo-secret-account-b-root"
SOURCE_INSTANCE, SOURCE_REGION = "cri-demosource01", "cn-hangzhou"
TARGET_INSTANCE, TARGET_REGION = "cri-demotarget01", "cn-beijing"
SYNC_ROLE = "aliyuncontainerregistrycrossaccoutsyncrole"
SYNC_POLICY = "acr-cross-account-sync-from-a"
READER_ROLE = "acrsync-reader"
READER_ROLE_ARN = f"acs:ram::{ACCOUNT_B}:role/{READER_ROLE}"
FC_ROLE = "acrsync-fc"
FC_ROLE_ARN = f"acs:ram::{ACCOUNT_A}:role/{FC_ROLE}"
START_TIME = "2026-11-28T00:00:00Z"


def make_sdk_config(cloud: LocalCloud, key_id: str, secret: str, token: str | None = None, *,
                    region_id: str = SOURCE_REGION, read_timeout: int = 5000, connect_timeout: int = 2000,
                    **extra) -> Config:
    """A tea-openapi Config for any product client (cr, ram, sts, fc) that talks to ``cloud`` over http."""
    return Config(access_key_id=key_id, access_key_secret=secret, security_token=token, region_id=region_id,
                  endpoint=f"127.0.0.1:{cloud.port}", protocol="http", read_timeout=read_timeout,
                  connect_timeout=connect_timeout, **extra)


@pytest.fixture
def cloud():
    with LocalCloud(DEMO_SCENARIO, clock="manual") as running:
        yield running


@pytest.fixture
def cloud_factory():
    started: list[LocalCloud] = []

    def make(scenario: dict | str | Path = DEMO_SCENARIO, **kw) -> LocalCloud:
        kw.setdefault("clock", "manual")
        running = LocalCloud(scenario, **kw).start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def sdk_config():
    return make_sdk_config


@pytest.fixture
def demo() -> SimpleNamespace:
    return SimpleNamespace(
        scenario=DEMO_SCENARIO, account_a=ACCOUNT_A, account_b=ACCOUNT_B,
        a_key_id=A_KEY_ID, a_secret=A_SECRET, a_operator_key_id=A_OPERATOR_KEY_ID,
        a_operator_secret=A_OPERATOR_SECRET, b_key_id=B_KEY_ID, b_secret=B_SECRET,
        source_instance=SOURCE_INSTANCE, source_region=SOURCE_REGION,
        target_instance=TARGET_INSTANCE, target_region=TARGET_REGION,
        sync_role=SYNC_ROLE, sync_policy=SYNC_POLICY, reader_role=READER_ROLE, reader_role_arn=READER_ROLE_ARN,
        fc_role=FC_ROLE, fc_role_arn=FC_ROLE_ARN, start_time=START_TIME,
    )
