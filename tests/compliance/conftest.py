"""Fixtures for compliance tests: localcloud (tests/localcloud), and an App that runs as the functions' role
(acrsync-fc, assumed from account A through STS), never with an account's root keys."""

from __future__ import annotations

from tests.localcloud.conftest import cloud, cloud_factory  # noqa: F401  (fixtures re-exported)
