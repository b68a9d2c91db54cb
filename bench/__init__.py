"""`make bench`: acrsync's figures against localcloud, each a ratio to a floor measured in the same run.

This module holds what every figure shares: the demo world (scenarios/demo.yaml, manual clock), an App
wired to it through the real SDK clients, and a bare SDK client for the floors. Run ``python -m bench``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from acrsync.demo import LocalCloudProcess

ROOT = Path(__file__).resolve().parents[1]
DEMO_SCENARIO = ROOT / "scenarios" / "demo.yaml"

# Made-up demo accounts and keys from scenarios/demo.yaml: they exist only inside localcloud.
ACCOUNT_A = "1111111111111111"
ACCOUNT_B = "2222222222222222"
# The RAM user the acrsync CLI runs as (an account root may not assume the reader role).
CLI_KEY_ID, CLI_SECRET = "LTAIDEMOACRSYNCCLI0001", "made-up-demo-secret-acrsync-cli-not-a-real-key"
SOURCE_INSTANCE, SOURCE_REGION = "cri-demosource01", "cn-hangzhou"
TARGET_INSTANCE, TARGET_REGION = "cri-demotarget01", "cn-beijing"
READER_ROLE_ARN = f"acs:ram::{ACCOUNT_B}:role/acrsync-reader"
TARGET = "beijing"


def demo_cloud():
    """A started LocalCloud on the demo scenario with a manual clock (tasks move only when told)."""
    from localcloud.server import LocalCloud

    return LocalCloud(DEMO_SCENARIO, clock="manual").start()


class ProcessCloud(LocalCloudProcess):
    """localcloud in its own process, as the real cloud is: the server's work does not compete with the
    client for one interpreter lock, so a client-side figure measures the client. Adds the parts of
    LocalCloud's API the benchmarks use, over the control API."""

    def __init__(self, scenario: Path = DEMO_SCENARIO):
        super().__init__(scenario)
        self.world = SimpleNamespace(clock=None)      # acrsync's own (system) clock is used

    def push(self, instance_id: str, namespace: str, repo: str, tag: str, digest: str | None = None) -> dict:
        body = {"instance_id": instance_id, "namespace": namespace, "repo": repo, "tag": tag}
        if digest:
            body["digest"] = digest
        return self.control("push", body)

    def stats(self) -> dict[str, int]:
        return self.control("stats", method="GET")["stats"]


def config_doc(ledger_path: Path, namespaces: list[str]) -> dict:
    """One target, account B's instance: team-a has no sync rule there, team-b has a PASSIVE one."""
    return {
        "source": {"account_id": ACCOUNT_A, "region": SOURCE_REGION, "instance_id": SOURCE_INSTANCE},
        "targets": [{"name": TARGET, "account_id": ACCOUNT_B, "region": TARGET_REGION,
                     "instance_id": TARGET_INSTANCE, "namespaces": namespaces, "tag_filter": r"v.*",
                     "reader_role_arn": READER_ROLE_ARN}],
        "ledger": {"backend": "sqlite", "path": str(ledger_path)},
    }


def make_app(cloud, ledger_path: Path, namespaces: list[str] | None = None):
    """An App as a function instance builds it, its clients pointed at ``cloud`` on the emulator clock."""
    from acrsync.app import App
    from acrsync.clock import SYSTEM
    from acrsync.cloud import CloudSession
    from acrsync.config import parse_config
    from acrsync.ledger.factory import open_ledger

    cfg = parse_config(config_doc(ledger_path, namespaces or ["team-a", "team-b"]))
    clock = cloud.world.clock or SYSTEM
    session = CloudSession.from_keys(CLI_KEY_ID, CLI_SECRET, env={"ACRSYNC_ENDPOINT": cloud.url},
                                     clock=clock, region=SOURCE_REGION)
    return App(cfg, session, open_ledger(cfg.ledger, session), clock=clock)


def fc_context(timeout: float = 600) -> SimpleNamespace:
    """What FC hands a handler, minus credentials (the App's session already has the demo keys)."""
    return SimpleNamespace(request_id="req-bench", credentials=None, region=SOURCE_REGION,
                           function=SimpleNamespace(name="bench", timeout=timeout))


def bare_cr_client(cloud):
    """The cr 2018-12-01 SDK client with nothing of acrsync around it: the floors' client."""
    from alibabacloud_cr20181201.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(access_key_id=CLI_KEY_ID, access_key_secret=CLI_SECRET, region_id=SOURCE_REGION,
                         endpoint=f"127.0.0.1:{cloud.port}", protocol="http", read_timeout=10000,
                         connect_timeout=3000))


@contextlib.contextmanager
def decision_logs_on() -> Iterator[None]:
    """Log acrsync's decisions at INFO, as in Function Compute, into /dev/null: their cost is the
    product's."""
    logger = logging.getLogger("acrsync")
    sink = open(os.devnull, "w")
    handler = logging.StreamHandler(sink)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
        sink.close()
