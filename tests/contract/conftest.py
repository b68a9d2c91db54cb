"""Ledger backends for the contract suite: SQLite in a temp dir, Tablestore against localcloud.

Tablestore runs through the real ``tablestore.OTSClient`` over HTTP; localcloud is started once per
module and every test gets its own table prefix, so tests never see each other's rows.
"""

from __future__ import annotations

import itertools

import pytest

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
    from tests.contract._workers import open_from_spec

    led = open_from_spec(ledger_spec)
    led.init()
    yield led
    led.close()


# Made-up demo account and key: localcloud only, never a real Alibaba Cloud credential.
DEMO_ACCOUNT = "1000000000000001"
DEMO_KEY_ID = "LTAIcontractdemo0001"
DEMO_KEY_SECRET = "contract-demo-secret-not-real"
OTS_INSTANCE = "acrsync-test"


@pytest.fixture(scope="module")
def localcloud_ots():
    """One localcloud per test module, serving Tablestore on 127.0.0.1."""
    # first: importing the backend quiets tablestore's import warnings before localcloud loads the SDK
    import acrsync.ledger.tablestore  # noqa: F401
    from localcloud.server import LocalCloud

    scenario = {"accounts": [{"id": DEMO_ACCOUNT,
                              "access_keys": [{"id": DEMO_KEY_ID, "secret": DEMO_KEY_SECRET}]}]}
    with LocalCloud(scenario).start() as cloud:
        yield cloud


@pytest.fixture
def ots_cloud(localcloud_ots) -> dict:
    return {"endpoint": localcloud_ots.url, "instance": OTS_INSTANCE,
            "access_key_id": DEMO_KEY_ID, "access_key_secret": DEMO_KEY_SECRET}
