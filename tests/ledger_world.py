"""The made-up Tablestore world of the ledger tests, and how a test or a worker process opens a ledger.

The fixtures that use it (``ledger_spec``, ``ledger``, ``localcloud_ots``, ``ots_cloud``) are in
tests/conftest.py. Every key here exists only inside localcloud: never a real Alibaba Cloud credential.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acrsync.ledger import Ledger

# Made-up demo account and key: localcloud only, never a real Alibaba Cloud credential.
DEMO_ACCOUNT = "1000000000000001"
DEMO_KEY_ID = "LTAIcontractdemo0001"
DEMO_KEY_SECRET = "contract-demo-secret-not-real"
OTS_INSTANCE = "acrsync-test"

# The one account localcloud serves Tablestore to in these tests.
OTS_SCENARIO = {"accounts": [{"id": DEMO_ACCOUNT,
                              "access_keys": [{"id": DEMO_KEY_ID, "secret": DEMO_KEY_SECRET}]}]}


def open_from_spec(spec: dict) -> Ledger:
    """Open the same ledger the parent test uses, from plain picklable settings."""
    if spec["backend"] == "sqlite":
        from acrsync.ledger.sqlite import SqliteLedger

        return SqliteLedger(spec["path"])
    from acrsync.ledger.tablestore import TablestoreLedger

    return TablestoreLedger.from_keys(spec["endpoint"], spec["instance"], spec["access_key_id"],
                                      spec["access_key_secret"], table_prefix=spec["table_prefix"])
