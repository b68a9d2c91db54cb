"""Test-wide settings. Each test folder keeps its own fixtures in its own conftest.py."""

import os

# Never let the default credential chain reach for the ECS metadata service from a test.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
