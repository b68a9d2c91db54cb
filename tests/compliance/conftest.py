"""Fixtures for compliance tests: localcloud (tests/localcloud) and both ledger backends (tests/contract)."""

from __future__ import annotations

from tests.contract.conftest import ledger, ledger_spec, localcloud_ots, ots_cloud  # noqa: F401
from tests.localcloud.conftest import cloud, cloud_factory  # noqa: F401  (fixtures re-exported)
