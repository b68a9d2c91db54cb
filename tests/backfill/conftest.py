"""Fixtures for backfill and rule-advisor tests (the worlds and helpers are in tests/backfill/world.py)."""

from __future__ import annotations

import pytest

from localcloud.server import LocalCloud
from tests.backfill.world import bulk_world


@pytest.fixture
def bulk_cloud(cloud_factory):
    def make(repos: int, tags: int, **kw) -> LocalCloud:
        return cloud_factory(bulk_world(repos, tags, **kw), clock="wall")
    return make
