"""Test-wide settings and the localcloud fixtures every folder shares (values in tests/demo_world.py).

- ``cloud``: a started LocalCloud on scenarios/demo.yaml (manual clock, free port), stopped afterwards.
- ``cloud_factory(scenario, **kw)``: start more (a dict or a path); all stopped afterwards.
- ``sdk_config(cloud, key_id, secret, token=None, **kw)``: an SDK Config pointed at a cloud over http.
- ``demo``: the demo scenario's made-up accounts, keys, instances and roles.
- ``ledger_spec`` / ``ledger``: each ledger backend in turn (SQLite in a temp dir, Tablestore through the real
  ``tablestore.OTSClient`` against localcloud), as plain settings and opened; ``localcloud_ots`` (one
  localcloud per test module) and ``ots_cloud`` (its endpoint and keys) serve the Tablestore one. Every test
  gets its own table prefix, so tests never see each other's rows. Values in tests/ledger_world.py.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import demo_world as w
from tests import ledger_world

# Never let the default credential chain reach for the ECS metadata service from a test.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


@pytest.fixture
def cloud():
    from localcloud.server import LocalCloud

    with LocalCloud(w.DEMO_SCENARIO, clock="manual") as running:
        yield running


@pytest.fixture
def cloud_factory():
    from localcloud.server import LocalCloud

    started: list[LocalCloud] = []

    def make(scenario: dict | str | Path = w.DEMO_SCENARIO, **kw) -> LocalCloud:
        kw.setdefault("clock", "manual")
        running = LocalCloud(scenario, **kw).start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def sdk_config():
    return w.make_sdk_config


@pytest.fixture
def demo() -> SimpleNamespace:
    return SimpleNamespace(
        scenario=w.DEMO_SCENARIO, account_a=w.ACCOUNT_A, account_b=w.ACCOUNT_B,
        a_key_id=w.A_KEY_ID, a_secret=w.A_SECRET, a_operator_key_id=w.A_OPERATOR_KEY_ID,
        a_operator_secret=w.A_OPERATOR_SECRET, cli_key_id=w.CLI_KEY_ID, cli_secret=w.CLI_SECRET,
        b_key_id=w.B_KEY_ID, b_secret=w.B_SECRET,
        source_instance=w.SOURCE_INSTANCE, source_region=w.SOURCE_REGION,
        target_instance=w.TARGET_INSTANCE, target_region=w.TARGET_REGION,
        sync_role=w.SYNC_ROLE, sync_policy=w.SYNC_POLICY, reader_role=w.READER_ROLE,
        reader_role_arn=w.READER_ROLE_ARN, fc_role=w.FC_ROLE, fc_role_arn=w.FC_ROLE_ARN,
        start_time=w.START_TIME,
    )


# ------------------------------------------------------------------ ledgers (both backends)

_prefixes = itertools.count()


@pytest.fixture(params=["sqlite", "tablestore"])
def ledger_spec(request, tmp_path) -> dict:
    """Plain settings from which the test and its worker processes open the same ledger."""
    if request.param == "sqlite":
        return {"backend": "sqlite", "path": str(tmp_path / "ledger.db")}
    cloud = request.getfixturevalue("ots_cloud")
    return {"backend": "tablestore", "table_prefix": f"t{next(_prefixes)}", **cloud}


@pytest.fixture
def ledger(ledger_spec):
    led = ledger_world.open_from_spec(ledger_spec)
    led.init()
    yield led
    led.close()


@pytest.fixture(scope="module")
def localcloud_ots():
    """One localcloud per test module, serving Tablestore on 127.0.0.1."""
    # first: importing the backend quiets tablestore's import warnings before localcloud loads the SDK
    import acrsync.ledger.tablestore  # noqa: F401
    from localcloud.server import LocalCloud

    with LocalCloud(ledger_world.OTS_SCENARIO).start() as cloud:
        yield cloud


@pytest.fixture
def ots_cloud(localcloud_ots) -> dict:
    return {"endpoint": localcloud_ots.url, "instance": ledger_world.OTS_INSTANCE,
            "access_key_id": ledger_world.DEMO_KEY_ID, "access_key_secret": ledger_world.DEMO_KEY_SECRET}
