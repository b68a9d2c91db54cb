"""Every error acrsync raises on purpose derives from one root, so the CLI catches it in one place."""

from acrsync.cloud.errors import BudgetExhausted, CloudError, NetworkError, NotFound, Throttled
from acrsync.config import ConfigError
from acrsync.errors import AcrsyncError
from acrsync.ledger.base import LedgerError
from acrsync.packaging import PackagingError
from acrsync.push import DeliveryFailed


def test_every_purposeful_error_has_the_one_root():
    for cls in (CloudError, Throttled, NetworkError, NotFound, BudgetExhausted, ConfigError, LedgerError,
                DeliveryFailed, PackagingError):
        assert issubclass(cls, AcrsyncError), cls


def test_config_error_is_still_a_value_error():
    # pydantic validators and older callers catch ValueError; keep that working.
    assert issubclass(ConfigError, ValueError)
