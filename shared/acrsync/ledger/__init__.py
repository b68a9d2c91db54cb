"""The ledger: replication records and versioned items, SQLite (default) or Tablestore (production).

The record types are domain types in ``acrsync.records``; they are re-exported here for code that
still imports them from the ledger (import them from ``acrsync.records`` in new code).
"""

from acrsync.ledger.base import Item, Ledger, LedgerError, Page, VersionConflict
from acrsync.ledger.factory import open_ledger as open_ledger
from acrsync.records import (
    OPEN_STATUSES,
    Attempt,
    Checkpoint,
    ErrorInfo,
    ImageRef,
    Origin,
    Record,
    RejectedEvent,
    Report,
    Status,
    record_key,
)

__all__ = [
    "OPEN_STATUSES", "Attempt", "Checkpoint", "ErrorInfo", "ImageRef", "Item", "Ledger", "LedgerError",
    "Origin", "Page", "Record", "RejectedEvent", "Report", "Status", "VersionConflict", "record_key",
]
