"""Fixtures for compliance tests: localcloud worlds with the checker user (tests/compliance/helpers.py),
manual clock, stopped afterwards. Both ledger backends (``ledger``, ``ots_cloud``) come from
tests/conftest.py."""

from __future__ import annotations

import pytest

from localcloud.server import LocalCloud
from tests.compliance.helpers import scenario


@pytest.fixture
def cloud_factory():
    started: list[LocalCloud] = []

    def make(doc: dict | None = None, **kw) -> LocalCloud:
        kw.setdefault("clock", "manual")
        running = LocalCloud(doc or scenario(), **kw).start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def cloud(cloud_factory) -> LocalCloud:
    """The demo world plus the checker user."""
    return cloud_factory()
