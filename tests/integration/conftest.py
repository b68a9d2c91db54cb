"""Fixtures for acrsync-side integration tests: acrsync's CloudSession, with the real SDK clients, talking
to localcloud over HTTP (scenarios/demo.yaml; all accounts and keys there are made up).

- ``cloud``, ``cloud_factory``, ``demo``, ``sdk_config``: localcloud itself (from tests/localcloud).
- ``make_session(key_id=A, secret=A, token=None, *, cloud=None, budget=None, **kw)``: a CloudSession routed
  to a localcloud through ACRSYNC_ENDPOINT, with fast retries and the emulator's clock for STS expiry.
- ``session``: ``make_session()`` as account A's root (the demo's stand-in for the functions' role).
- ``session_b``: account B's root (the administrator who runs `grants apply`).
"""

from __future__ import annotations

import pytest

from acrsync.cloud import CloudSession, RetryPolicy
from tests.localcloud.conftest import (  # noqa: F401  (fixtures re-exported for this folder)
    A_KEY_ID,
    A_SECRET,
    ACCOUNT_A,
    ACCOUNT_B,
    B_KEY_ID,
    B_SECRET,
    READER_ROLE,
    READER_ROLE_ARN,
    SOURCE_INSTANCE,
    SOURCE_REGION,
    SYNC_POLICY,
    SYNC_ROLE,
    TARGET_INSTANCE,
    TARGET_REGION,
    cloud,
    cloud_factory,
    demo,
    sdk_config,
)

# Short back-off so retry tests take milliseconds; the schedule itself is unit-tested.
FAST_RETRIES = RetryPolicy(max_attempts=5, base=0.01, cap=0.05, min_attempt=0.05)


@pytest.fixture
def make_session(cloud):  # noqa: F811
    default_cloud = cloud

    def make(key_id: str = A_KEY_ID, secret: str = A_SECRET, token: str | None = None, *, cloud=None,
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
