"""Fixtures for acrsync-side integration tests: acrsync's CloudSession, with the real SDK clients, talking
to localcloud over HTTP (scenarios/demo.yaml; all accounts and keys there are made up). ``cloud``,
``cloud_factory``, ``demo`` and ``sdk_config`` come from tests/conftest.py.

acrsync runs as the real deployment runs it, never with an account's root key:
- ``make_session(key_id=CLI, secret=CLI, token=None, *, cloud=None, budget=None, **kw)``: a CloudSession
  routed to a localcloud through ACRSYNC_ENDPOINT, with fast retries and the emulator's clock for STS expiry.
- ``session``: ``make_session()`` as the RAM user acrsync-cli of account A (what the CLI runs as; it holds the
  same acrsync-access policy as the functions' role).
- ``session_b``: account B's administrator (its root: the one who runs `grants apply` there).
"""

from __future__ import annotations

import pytest

from acrsync.cloud import CloudSession, RetryPolicy
from tests.demo_world import B_KEY_ID, B_SECRET, CLI_KEY_ID, CLI_SECRET, SOURCE_REGION

# Short back-off so retry tests take milliseconds; the schedule itself is unit-tested.
FAST_RETRIES = RetryPolicy(max_attempts=5, base=0.01, cap=0.05, min_attempt=0.05)


@pytest.fixture
def make_session(cloud):
    default_cloud = cloud

    def make(key_id: str = CLI_KEY_ID, secret: str = CLI_SECRET, token: str | None = None, *, cloud=None,
             budget=None, **kw) -> CloudSession:
        target = cloud or default_cloud
        kw.setdefault("policy", FAST_RETRIES)
        kw.setdefault("clock", target.world.clock)       # STS Expiration is in emulator time
        kw.setdefault("region", SOURCE_REGION)
        return CloudSession.from_keys(key_id, secret, token, env={"ACRSYNC_ENDPOINT": target.url},
                                      budget=budget, **kw)

    return make


@pytest.fixture
def session(make_session) -> CloudSession:
    return make_session()


@pytest.fixture
def session_b(make_session) -> CloudSession:
    return make_session(B_KEY_ID, B_SECRET)
